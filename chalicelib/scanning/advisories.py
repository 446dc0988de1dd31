"""Offline OSV advisory database (e.g. the PyPA advisory database).

Public interface::

    db = AdvisoryDatabase.load(source, cache_dir=None)   # raises ScanUnavailable
    db.match(name, version) -> PackageMatch                # .findings, .problem
    db.key, db.source, db.record_count, db.withdrawn_count, db.package_count,
    db.as_of, db.snapshot, db.loaded_from, db.loaded_from_cache, db.describe() -> dict
    db.freshness(now, max_age_days) -> dict                # as_of, age_days, warning
    EMBEDDED_DATABASE                                      # the snapshot shipped in data/

``source`` is a directory (searched recursively, hidden entries skipped), a
zip file or a tar archive (``.tar.xz``, ``.tar.gz``, ...) of OSV records in
YAML (``.yaml``/``.yml``) or JSON (``.json``); see ``advisory_sources``.
Only ``PyPI`` entries are used; package names are compared PEP 503
normalized. A version is affected when it is listed in ``versions`` or falls
in an ``ECOSYSTEM`` (or ``SEMVER``) range, evaluated as the OSV schema says
(events sorted; ``introduced`` opens, ``fixed``/``limit`` close at that
version, ``last_affected`` closes after it). Withdrawn records are skipped.

Records are compiled into a compact JSON index. An archive made by ``make
advisories`` carries its index (used when its key matches the records in
it, so even a first start parses no YAML); the index is written under
``cache_dir`` keyed by the database's fingerprint (a tar archive's: its
file's path, size and mtime), so a warm start reads one file instead of
unpacking an archive or parsing thousands of YAML documents. A damaged
index is rebuilt.

Age: ``as_of`` is the newest ``modified`` time of any record (what the data
knows, whoever copied it when); ``snapshot`` is the archive's provenance
note (upstream, commit, when it was made), when there is one.

Fail closed: a missing, unreadable, empty or corrupt database raises
:class:`~chalicelib.errors.ScanUnavailable` naming what is wrong; it never
degrades to "no vulnerabilities".

Invalid versions: record versions that are not PEP 440 are kept verbatim in
``versions`` lists (string comparison). A range event with an invalid
version is dropped from a range whose entry also has a ``versions`` list
(the list already says which releases are affected); otherwise an invalid
``introduced`` counts as ``0`` and an invalid ``fixed``/``last_affected``
leaves the range open, so the doubt falls on the side of "affected". A pinned
version that is not PEP 440 cannot be compared with ranges: ``match`` then
reports it as a ``problem`` (the caller marks the pin unaudited).
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml
from packaging.utils import canonicalize_name, canonicalize_version
from packaging.version import InvalidVersion, Version

from chalicelib.errors import ScanUnavailable
from chalicelib.scanning.advisory_sources import RecordSource, open_source, tar_stat_key
from chalicelib.scanning.models import VulnerabilityFinding

log = logging.getLogger(__name__)

#: bump when the compiled layout or the compile rules change (invalidates caches and bundled indexes)
INDEX_FORMAT = 4
INDEX_FORMAT_TAG = f"osv-index/{INDEX_FORMAT}"
#: the snapshot shipped with the project (``make advisories`` refreshes it; see data/PROVENANCE.md)
EMBEDDED_DATABASE = Path(__file__).resolve().parent / "data" / "advisory-db.tar.xz"
SOURCE_NAME = "osv-offline"
_RANGE_TYPES = ("ECOSYSTEM", "SEMVER")
_CLOSING_EVENTS = ("fixed", "last_affected", "limit")
_EVENT_KINDS = ("introduced", *_CLOSING_EVENTS)
_SUMMARY_MAX = 240

# BaseLoader keeps every scalar a string: an unquoted `fixed: 1.10` must not
# become the float 1.1, nor `2019-09-12` a date.
_YAML_LOADER = getattr(yaml, "CBaseLoader", yaml.BaseLoader)


@dataclass(frozen=True)
class PackageMatch:
    findings: list[VulnerabilityFinding]
    problem: str | None = None  # set when the version could not be fully checked


# --- reading the database ----------------------------------------------------


def _parse_yaml(data: bytes) -> Any:
    return yaml.load(data, Loader=_YAML_LOADER)


def _parse_json(data: bytes) -> Any:
    return json.loads(data)


def _parse_record(name: str, data: bytes) -> Any:
    return _parse_json(data) if name.lower().endswith(".json") else _parse_yaml(data)


# --- compiling records into the index ----------------------------------------


def _normal(version: str) -> str:
    """Canonical text of a version for list lookups: PEP 440 equal versions
    (``3.0``, ``3.0.0``, ``3.00``) get one spelling; invalid ones stay verbatim."""
    return canonicalize_version(version.strip())


def _valid(version: str) -> bool:
    try:
        Version(version)
    except InvalidVersion:
        return False
    return True


def _summary(record: dict[str, Any]) -> str:
    text = str(record.get("summary") or record.get("details") or "").strip()
    text = " ".join(text.split())
    if len(text) > _SUMMARY_MAX:
        cut = text[:_SUMMARY_MAX].rsplit(" ", 1)[0]
        text = cut + " ..."
    return text


def _compile_ranges(affected: dict[str, Any], has_versions: bool) -> list[list[list[str]]]:
    ranges: list[list[list[str]]] = []
    for rng in affected.get("ranges") or []:
        if not isinstance(rng, dict) or str(rng.get("type", "")).upper() not in _RANGE_TYPES:
            continue
        events: list[list[str]] = []
        doubtful = False
        for event in rng.get("events") or []:
            if not isinstance(event, dict):
                raise ValueError(f"range event {event!r} is not a mapping")
            for kind in _EVENT_KINDS:
                if kind not in event:
                    continue
                value = str(event[kind]).strip()
                if value == "0" and kind == "introduced":
                    events.append([kind, "0"])
                elif _valid(value):
                    events.append([kind, value])
                else:
                    doubtful = True
                    if kind == "introduced":
                        events.append([kind, "0"])  # open from the start: err towards affected
                    # an unusable closing event is dropped: the range stays open
        if doubtful and has_versions:
            continue  # the explicit versions list is the better evidence
        if events:
            ranges.append(events)
    return ranges


def _modified(record: dict[str, Any]) -> datetime | None:
    try:
        moment = datetime.fromisoformat(str(record.get("modified") or "").strip())
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def compile_index(source: RecordSource) -> dict[str, Any]:
    """The index of ``source`` (raises ScanUnavailable naming the first bad record)."""
    packages: dict[str, dict[str, list[Any]]] = {}
    records = withdrawn = 0
    newest: datetime | None = None
    for name, data in source.records():
        try:
            record = _parse_record(name, data)
            if not isinstance(record, dict) or not isinstance(record.get("id"), str) or not record["id"].strip():
                raise ValueError("not a mapping with an 'id'")
            affected_list = record.get("affected") or []
            if not isinstance(affected_list, list):
                raise ValueError("'affected' is not a list")
            records += 1
            modified = _modified(record)
            if modified is not None and (newest is None or modified > newest):
                newest = modified
            if record.get("withdrawn"):
                withdrawn += 1
                continue
            advisory_id = record["id"].strip()
            aliases = [str(a) for a in record.get("aliases") or [] if str(a) != advisory_id]
            for affected in affected_list:
                if not isinstance(affected, dict):
                    raise ValueError("an 'affected' entry is not a mapping")
                package = affected.get("package") or {}
                ecosystem = str(package.get("ecosystem", "")).split(":", 1)[0]
                if ecosystem.lower() != "pypi" or not package.get("name"):
                    continue
                versions = affected.get("versions") or []
                if not isinstance(versions, list):
                    raise ValueError("'versions' is not a list")
                normal_versions = sorted({_normal(str(v)) for v in versions})
                ranges = _compile_ranges(affected, bool(normal_versions))
                per_package = packages.setdefault(canonicalize_name(str(package["name"])), {})
                entry = per_package.get(advisory_id)
                if entry is None:
                    per_package[advisory_id] = [advisory_id, aliases, _summary(record), normal_versions, ranges]
                else:  # several 'affected' entries for one package: union them
                    entry[3] = sorted(set(entry[3]) | set(normal_versions))
                    entry[4].extend(ranges)
        except ScanUnavailable:
            raise
        except Exception as exc:  # any parse or shape error: the database is corrupt
            raise ScanUnavailable(
                f"advisory database {source.path}: {name} is not a valid OSV record ({type(exc).__name__}: {exc})"
            ) from exc
    return {
        "format": INDEX_FORMAT,
        "key": source.key,
        "records": records,
        "withdrawn": withdrawn,
        "as_of": newest.astimezone(timezone.utc).isoformat().replace("+00:00", "Z") if newest else None,
        "packages": {pkg: list(entries.values()) for pkg, entries in packages.items()},
    }


# --- evaluating ----------------------------------------------------------------

_ORDER = {"introduced": 0, "fixed": 1, "limit": 1, "last_affected": 2}
_ZERO = Version("0")


@dataclass(slots=True)
class _Advisory:
    id: str
    aliases: tuple[str, ...]
    summary: str
    versions: frozenset[str]
    # sorted (version, kind) events per range; "0" introduced is Version("0")
    ranges: list[list[tuple[Version, str]]] = field(default_factory=list)
    fixed: list[tuple[Version, str]] = field(default_factory=list)

    @classmethod
    def from_index(cls, entry: list[Any]) -> _Advisory:
        advisory_id, aliases, summary, versions, ranges = entry
        compiled: list[list[tuple[Version, str]]] = []
        fixed: list[tuple[Version, str]] = []
        for events in ranges:
            parsed = [(_ZERO if text == "0" else Version(text), kind, text) for kind, text in events]
            parsed.sort(key=lambda item: (item[0], _ORDER[item[1]]))
            compiled.append([(at, kind) for at, kind, _ in parsed])
            fixed.extend((at, text) for at, kind, text in parsed if kind == "fixed")
        fixed.sort(key=lambda item: item[0])
        return cls(advisory_id, tuple(aliases), summary, frozenset(versions), compiled, fixed)

    def affects(self, normal: str, version: Version | None) -> bool:
        if normal in self.versions:
            return True
        if version is None:
            return False
        for events in self.ranges:
            affected = False
            for at, kind in events:
                if kind == "introduced":
                    if version >= at:
                        affected = True
                elif kind == "last_affected":
                    if version > at:
                        affected = False
                elif version >= at:  # fixed, limit
                    affected = False
            if affected:
                return True
        return False

    def fixed_after(self, version: Version | None) -> str | None:
        if version is None:
            return None
        for at, text in self.fixed:
            if at > version:
                return text
        return None


class AdvisoryDatabase:
    """Compiled, queryable OSV records for PyPI packages (see module doc)."""

    def __init__(self, index: dict[str, Any], *, source: Path, loaded_from: str, snapshot: dict[str, Any] | None = None):
        self.source = source
        self.key: str = index["key"]
        self.record_count: int = index["records"]
        self.withdrawn_count: int = index["withdrawn"]
        self.as_of: str | None = index.get("as_of")
        self.snapshot = snapshot
        self.loaded_from = loaded_from  # "bundled index" | "cache" | "records"
        self._raw: dict[str, list[list[Any]]] = index["packages"]
        self._compiled: dict[str, list[_Advisory]] = {}

    @property
    def loaded_from_cache(self) -> bool:
        return self.loaded_from == "cache"

    @property
    def package_count(self) -> int:
        return len(self._raw)

    @property
    def embedded(self) -> bool:
        return self.source == EMBEDDED_DATABASE

    def describe(self) -> dict[str, Any]:
        return {
            "source": "embedded snapshot" if self.embedded else str(self.source),
            "key": self.key,
            "records": self.record_count,
            "withdrawn": self.withdrawn_count,
            "packages": self.package_count,
            "as_of": self.as_of,
            "snapshot": self.snapshot,
            "loaded_from": self.loaded_from,
        }

    def freshness(self, now: datetime, max_age_days: float) -> dict[str, Any]:
        """How old the data is, with a warning past ``max_age_days``."""
        as_of = datetime.fromisoformat(self.as_of) if self.as_of else None
        if as_of is None:
            return {"as_of": None, "age_days": None,
                    "warning": "the advisory database says nowhere how recent it is (no record has a 'modified' time)"}  # fmt: skip
        age_days = max(0, (now - as_of).days)
        warning = None
        if age_days > max_age_days:
            refresh = "make advisories" if self.embedded else "point SKILLHARBOR_ADVISORY_DB at a newer copy"
            warning = (f"the advisory database is {age_days} days old (newest record {as_of.date().isoformat()}): "
                       f"advisories published since are unknown to the scan; refresh it ({refresh})")  # fmt: skip
        return {"as_of": self.as_of, "age_days": age_days, "warning": warning}

    @classmethod
    def load(cls, source: Path | str, cache_dir: Path | str | None = None) -> AdvisoryDatabase:
        """Open ``source``: a current index in ``cache_dir``, else the archive's bundled index when
        it matches, else compile the records; the index is then cached in ``cache_dir``."""
        path = Path(source).expanduser()
        cache = Path(cache_dir) if cache_dir else None
        # a tar archive is unpacked to be fingerprinted: its file's stat finds its cached index first
        stat_key = tar_stat_key(path, INDEX_FORMAT_TAG) if cache else None
        if cache and stat_key:
            index = _read_cached_index(cache / f"osv-archive-{stat_key[:40]}.json", stat_key, field="stat_key")
            if index is not None:
                return cls(index, source=path, loaded_from="cache", snapshot=index.get("snapshot"))
        db_source = open_source(path, INDEX_FORMAT_TAG)
        cache_file = cache / f"osv-index-{db_source.key[:40]}.json" if cache and not stat_key else None
        loaded_from = "records"
        try:
            metadata = db_source.metadata
            index = _valid_index(db_source.bundled_index, db_source.key)
            if index is not None:
                loaded_from = "bundled index"
            elif cache_file:
                index = _read_cached_index(cache_file, db_source.key)
                if index is not None:
                    return cls(index, source=path, loaded_from="cache", snapshot=metadata)
            if index is None:
                index = compile_index(db_source)
        finally:
            db_source.close()
        if cache and stat_key:
            cache_file = cache / f"osv-archive-{stat_key[:40]}.json"
            index = {**index, "stat_key": stat_key, "snapshot": metadata}
        if cache_file:
            _write_cached_index(cache_file, index)
        return cls(index, source=path, loaded_from=loaded_from, snapshot=metadata)

    def _advisories(self, package: str) -> list[_Advisory]:
        compiled = self._compiled.get(package)
        if compiled is None:
            compiled = [_Advisory.from_index(entry) for entry in self._raw.get(package, ())]
            self._compiled[package] = compiled
        return compiled

    def match(self, name: str, version: str) -> PackageMatch:
        """Advisories affecting ``name`` at exactly ``version``."""
        package = canonicalize_name(name)
        advisories = self._advisories(package)
        if not advisories:
            return PackageMatch([])
        try:
            parsed: Version | None = Version(version)
        except InvalidVersion:
            parsed = None
        normal = _normal(version)
        findings = [
            VulnerabilityFinding(
                package=package,
                version=version,
                id=adv.id,
                aliases=adv.aliases,
                summary=adv.summary,
                fixed_in=adv.fixed_after(parsed),
                source=SOURCE_NAME,
            )
            for adv in advisories
            if adv.affects(normal, parsed)
        ]
        problem = None
        if parsed is None and any(adv.ranges for adv in advisories):
            problem = (
                f"version {version!r} is not a valid PEP 440 version, so it cannot be compared "
                f"with the version ranges of {package}'s advisories"
            )
        return PackageMatch(findings, problem)


def _read_cached_index(cache_file: Path, key: str, *, field: str = "key") -> dict[str, Any] | None:
    try:
        index = json.loads(cache_file.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.warning("advisory index %s is unreadable (%s); rebuilding it", cache_file, exc)
        return None
    valid = _valid_index(index, key, field=field)
    if valid is None:
        log.warning("advisory index %s does not match the database; rebuilding it", cache_file)
    return valid


def _valid_index(index: Any, key: str, *, field: str = "key") -> dict[str, Any] | None:
    """``index`` when it is one of this format, compiled from exactly the records with ``key``
    (or, ``field="stat_key"``, cached for the archive file with that stat key)."""
    if not isinstance(index, dict) or index.get("format") != INDEX_FORMAT or index.get(field) != key:
        return None
    if not isinstance(index.get("packages"), dict):
        return None
    return index


def _write_cached_index(cache_file: Path, index: dict[str, Any]) -> None:
    """Best effort: a read-only cache only costs the next start a recompile."""
    tmp = cache_file.with_name(f"{cache_file.name}.{os.getpid()}.tmp")
    try:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(json.dumps(index, separators=(",", ":")))
        os.replace(tmp, cache_file)
    except OSError as exc:
        log.warning("cannot write advisory index %s: %s", cache_file, exc)
        try:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass

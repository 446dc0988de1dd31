"""Offline OSV advisory database (e.g. the PyPA advisory database).

Public interface::

    db = AdvisoryDatabase.load(source, cache_dir=None)   # raises ScanUnavailable
    db.match(name, version) -> PackageMatch                # .findings, .problem
    db.key, db.source, db.record_count, db.withdrawn_count,
    db.package_count, db.loaded_from_cache, db.describe() -> dict

``source`` is a directory (searched recursively, hidden entries skipped) or a
zip file of OSV records in YAML (``.yaml``/``.yml``) or JSON (``.json``).
Only ``PyPI`` entries are used; package names are compared PEP 503
normalized. A version is affected when it is listed in ``versions`` or falls
in an ``ECOSYSTEM`` (or ``SEMVER``) range, evaluated as the OSV schema says
(events sorted; ``introduced`` opens, ``fixed``/``limit`` close at that
version, ``last_affected`` closes after it). Withdrawn records are skipped.

Records are compiled into a compact JSON index written under ``cache_dir``
and keyed by the database's fingerprint (file names, sizes and mtimes for a
directory; member names, CRC-32s and sizes for a zip), so a warm start reads
one file instead of thousands of YAML documents. A damaged index is rebuilt.

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

import hashlib
import json
import logging
import os
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from packaging.utils import canonicalize_name, canonicalize_version
from packaging.version import InvalidVersion, Version

from chalicelib.errors import ScanUnavailable
from chalicelib.scanning.models import VulnerabilityFinding

log = logging.getLogger(__name__)

#: bump when the compiled layout or the compile rules change (invalidates caches)
INDEX_FORMAT = 3
RECORD_SUFFIXES = (".yaml", ".yml", ".json")
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


def _is_record_name(relpath: str) -> bool:
    parts = relpath.replace("\\", "/").split("/")
    return not any(p.startswith(".") for p in parts) and relpath.lower().endswith(RECORD_SUFFIXES)


def _walk_directory(root: Path) -> list[tuple[str, int, int]]:
    """(relative path, size, mtime_ns) of every record file, sorted."""
    found: list[tuple[str, int, int]] = []
    stack = [("", str(root))]
    while stack:
        prefix, directory = stack.pop()
        with os.scandir(directory) as entries:
            for entry in entries:
                if entry.name.startswith("."):
                    continue
                rel = prefix + entry.name
                if entry.is_dir():
                    stack.append((rel + "/", entry.path))
                elif entry.name.lower().endswith(RECORD_SUFFIXES):
                    st = entry.stat()
                    found.append((rel, st.st_size, st.st_mtime_ns))
    found.sort()
    return found


class _Source:
    """A directory or zip of records, with a content fingerprint."""

    def __init__(self, path: Path):
        self.path = path
        self.zip: zipfile.ZipFile | None = None
        try:
            if path.is_dir():
                listing = _walk_directory(path)
                self.names = [rel for rel, _, _ in listing]
                lines = [f"{rel}\t{size}\t{mtime}" for rel, size, mtime in listing]
            elif path.is_file():
                if not zipfile.is_zipfile(path):
                    raise ScanUnavailable(f"advisory database {path} is neither a directory nor a zip file")
                self.zip = zipfile.ZipFile(path)
                members = [i for i in self.zip.infolist() if not i.is_dir() and _is_record_name(i.filename)]
                members.sort(key=lambda i: i.filename)
                self.names = [i.filename for i in members]
                lines = [f"{i.filename}\t{i.file_size}\t{i.CRC:08x}" for i in members]
            else:
                raise ScanUnavailable(f"advisory database {path} does not exist")
        except ScanUnavailable:
            raise
        except (OSError, zipfile.BadZipFile) as exc:
            raise ScanUnavailable(f"advisory database {path} cannot be read: {exc}") from exc
        if not self.names:
            raise ScanUnavailable(
                f"advisory database {path} holds no OSV records ({', '.join(RECORD_SUFFIXES)} files)"
            )
        digest = hashlib.sha256(f"osv-index/{INDEX_FORMAT}\n".encode())
        digest.update("\n".join(lines).encode())
        self.key = digest.hexdigest()

    def records(self) -> Iterator[tuple[str, bytes]]:
        for name in self.names:
            try:
                data = self.zip.read(name) if self.zip else (self.path / name).read_bytes()
            except (OSError, zipfile.BadZipFile, KeyError) as exc:
                raise ScanUnavailable(f"advisory database {self.path}: cannot read {name}: {exc}") from exc
            yield name, data

    def close(self) -> None:
        if self.zip:
            self.zip.close()


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


def _compile(source: _Source) -> dict[str, Any]:
    packages: dict[str, dict[str, list[Any]]] = {}
    records = withdrawn = 0
    for name, data in source.records():
        try:
            record = _parse_record(name, data)
            if not isinstance(record, dict) or not isinstance(record.get("id"), str) or not record["id"].strip():
                raise ValueError("not a mapping with an 'id'")
            affected_list = record.get("affected") or []
            if not isinstance(affected_list, list):
                raise ValueError("'affected' is not a list")
            records += 1
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

    def __init__(self, index: dict[str, Any], *, source: Path, loaded_from_cache: bool):
        self.source = source
        self.key: str = index["key"]
        self.record_count: int = index["records"]
        self.withdrawn_count: int = index["withdrawn"]
        self.loaded_from_cache = loaded_from_cache
        self._raw: dict[str, list[list[Any]]] = index["packages"]
        self._compiled: dict[str, list[_Advisory]] = {}

    @property
    def package_count(self) -> int:
        return len(self._raw)

    def describe(self) -> dict[str, Any]:
        return {
            "source": str(self.source),
            "key": self.key,
            "records": self.record_count,
            "withdrawn": self.withdrawn_count,
            "packages": self.package_count,
            "loaded_from_cache": self.loaded_from_cache,
        }

    @classmethod
    def load(cls, source: Path | str, cache_dir: Path | str | None = None) -> AdvisoryDatabase:
        """Open ``source``, reusing the compiled index in ``cache_dir`` when current."""
        path = Path(source).expanduser()
        db_source = _Source(path)
        try:
            cache_file = Path(cache_dir) / f"osv-index-{db_source.key[:40]}.json" if cache_dir else None
            index = _read_cached_index(cache_file, db_source.key) if cache_file else None
            if index is not None:
                return cls(index, source=path, loaded_from_cache=True)
            index = _compile(db_source)
        finally:
            db_source.close()
        if cache_file:
            _write_cached_index(cache_file, index)
        return cls(index, source=path, loaded_from_cache=False)

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


def _read_cached_index(cache_file: Path, key: str) -> dict[str, Any] | None:
    try:
        index = json.loads(cache_file.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        log.warning("advisory index %s is unreadable (%s); rebuilding it", cache_file, exc)
        return None
    if not isinstance(index, dict) or index.get("format") != INDEX_FORMAT or index.get("key") != key:
        log.warning("advisory index %s does not match the database; rebuilding it", cache_file)
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

"""``make advisories``: refresh the embedded advisory snapshot.

Usage::

    python -m chalicelib.scanning.advisory_snapshot [--from SOURCE] [--commit SHA] [--upstream URL]
                                                    [--licence FILE] [--output PATH]

``SOURCE`` is a directory (a checkout of pypa/advisory-database, say), a zip
or tar archive of OSV records, or an http(s) URL of one; the default is the
OSV.dev PyPI export. Every record is compiled first (one bad record and
nothing is written), then the records go verbatim, sorted, with fixed
timestamps, into a ``.tar.xz`` with the source's licence, a provenance note
(``.skillharbor/snapshot.json``) and the compiled index
(``.skillharbor/index.json``); every member carries the data's own date, so
two snapshots of the same records differ only in their note's ``made_at``.
With the default output, the licence is also written beside the archive and
the snapshot's section of ``data/PROVENANCE.md`` is rewritten.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import lzma
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import urllib.error
import urllib.request
import zipfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from chalicelib.errors import ScanUnavailable
from chalicelib.scanning import advisories
from chalicelib.scanning.advisory_sources import INDEX_MEMBER, SNAPSHOT_MEMBER, content_key, open_source

OSV_PYPI_EXPORT = "https://osv-vulnerabilities.storage.googleapis.com/PyPI/all.zip"
DATA_DIR = Path(__file__).resolve().parent / "data"
LICENCE_FILE = DATA_DIR / "advisory-db.LICENSE"
PROVENANCE_FILE = DATA_DIR / "PROVENANCE.md"
SECTION_BEGIN, SECTION_END = "<!-- advisory-db:begin -->", "<!-- advisory-db:end -->"
DOWNLOAD_TIMEOUT_SECONDS = 60
LICENCE_NAMES = ("LICENSE", "LICENSE.txt", "LICENSE.md", "LICENCE", "COPYING")
OSV_EXPORT_LICENCE = """\
Records from the OSV.dev PyPI export (https://osv.dev, {url}).

OSV.dev aggregates several advisory databases and passes each record on
under the licence of the database it comes from; the record's id prefix
names that database (PYSEC: the PyPA advisory database, CC-BY-4.0; GHSA:
the GitHub Advisory Database, CC-BY-4.0; MAL: OpenSSF Malicious Packages,
Apache-2.0; others: see https://google.github.io/osv.dev/data/). The records
are unchanged; they were only packed into this archive.
"""


class SnapshotError(Exception):
    """Why no snapshot was written (printed as is, exit status 1)."""


def download(url: str, target: Path, timeout: float = DOWNLOAD_TIMEOUT_SECONDS) -> None:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response, open(target, "wb") as out:
            shutil.copyfileobj(response, out)
    except (urllib.error.URLError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", None) or exc
        raise SnapshotError(
            f"cannot download {url}: {reason}\n"
            "Without network access to it, refresh from a local copy instead:\n"
            "  make advisories FROM=path/to/advisory-database   (a checkout, or a zip or tar of OSV records)"
        ) from exc


def _git(directory: Path, *args: str) -> str | None:
    if not (directory / ".git").exists():
        return None
    try:
        done = subprocess.run(["git", "-C", str(directory), *args], capture_output=True, text=True, timeout=30, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.strip() or None


def _archived_licence(path: Path) -> str | None:
    """A licence file at the top (or one folder down) of a zip or tar archive."""

    def is_licence(name: str) -> bool:
        parts = name.strip("/").split("/")
        return len(parts) <= 2 and parts[-1] in LICENCE_NAMES

    try:
        if zipfile.is_zipfile(path):
            with zipfile.ZipFile(path) as archive:
                found = sorted((n for n in archive.namelist() if is_licence(n)), key=len)
                return archive.read(found[0]).decode("utf-8", "replace") if found else None
        with tarfile.open(path, "r:*") as archive:
            for member in archive:
                if member.isfile() and is_licence(member.name.removeprefix("./")):
                    handle = archive.extractfile(member)
                    return handle.read().decode("utf-8", "replace") if handle else None
    except (OSError, zipfile.BadZipFile, tarfile.TarError, lzma.LZMAError, EOFError):
        return None
    return None


def _licence_text(source_path: Path, licence: Path | None, url: str | None) -> str:
    if licence is not None:
        return licence.read_text()
    if source_path.is_dir():
        for name in LICENCE_NAMES:
            if (source_path / name).is_file():
                return (source_path / name).read_text()
    elif source_path.is_file() and (text := _archived_licence(source_path)):
        return text
    if url == OSV_PYPI_EXPORT:
        return OSV_EXPORT_LICENCE.format(url=url)
    raise SnapshotError(
        f"{url or source_path} comes without a licence file ({', '.join(LICENCE_NAMES)}): the snapshot is "
        "redistributed with the project, so name the data's licence with --licence FILE (LICENCE=FILE for make)"
    )


def licence_name(text: str) -> str:
    """A short name for the licence text (what the provenance note says), or a pointer to it."""
    head = " ".join(text.split()[:12])
    if head.startswith("Attribution 4.0 International"):
        return "CC-BY-4.0"
    if head.startswith("Apache License Version 2.0"):
        return "Apache-2.0"
    if text == OSV_EXPORT_LICENCE.format(url=OSV_PYPI_EXPORT):
        return "each record under its source database's licence (see LICENSE)"
    return "see LICENSE"


def _previous_note(path: Path) -> dict[str, Any]:
    """The snapshot note of an archive made here before (empty for anything else)."""
    try:
        source = open_source(path, advisories.INDEX_FORMAT_TAG)
    except ScanUnavailable:
        return {}  # build_snapshot says what is wrong with it
    try:
        return dict(source.metadata or {})
    finally:
        source.close()


def _tar_member(archive: tarfile.TarFile, name: str, data: bytes, mtime: int) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), mtime, 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    archive.addfile(info, io.BytesIO(data))


def build_snapshot(source_path: Path, output: Path, *, made_from: str, licence_text: str,
                   commit: str | None = None, upstream: str | None = None,
                   readme: bytes | None = None, now: datetime | None = None) -> dict[str, Any]:  # fmt: skip
    """Compile ``source_path``'s records and write them, with the index and a note, to ``output``."""
    try:
        source = open_source(source_path, advisories.INDEX_FORMAT_TAG)
        try:
            records = list(source.records())
            index = advisories.compile_index(source)
        finally:
            source.close()
    except ScanUnavailable as exc:
        raise SnapshotError(f"nothing written: {exc.message}") from exc
    index["key"] = content_key(advisories.INDEX_FORMAT_TAG, records)  # what the loader computes from the archive
    as_of = index.get("as_of")
    metadata = {
        "upstream": upstream, "commit": commit, "licence": licence_name(licence_text), "made_from": made_from,
        "as_of": as_of, "records": index["records"], "withdrawn": index["withdrawn"], "packages": len(index["packages"]),
        "made_at": (now or datetime.now(timezone.utc)).replace(microsecond=0).isoformat().replace("+00:00", "Z"),
        "made_by": "make advisories (python -m chalicelib.scanning.advisory_snapshot)",
    }  # fmt: skip
    # fixed member times (the data's own date): the same records always give the same bytes
    mtime = int(datetime.fromisoformat(as_of).timestamp()) if as_of else 0
    output.parent.mkdir(parents=True, exist_ok=True)
    partial = output.with_name(f".{output.name}.{os.getpid()}.partial")
    try:
        with lzma.open(partial, "wb", preset=9 | lzma.PRESET_EXTREME) as packed:
            with tarfile.open(fileobj=packed, mode="w", format=tarfile.PAX_FORMAT) as archive:
                _tar_member(archive, "LICENSE", licence_text.encode(), mtime)
                if readme is not None:
                    _tar_member(archive, "README.md", readme, mtime)
                _tar_member(archive, SNAPSHOT_MEMBER, json.dumps(metadata, indent=2).encode() + b"\n", mtime)
                for name, data in sorted(records):
                    _tar_member(archive, name, data, mtime)
                _tar_member(archive, INDEX_MEMBER, json.dumps(index, separators=(",", ":")).encode(), mtime)
        os.replace(partial, output)
    finally:
        partial.unlink(missing_ok=True)
    data = output.read_bytes()
    return {**metadata, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}


def provenance_section(summary: dict[str, Any]) -> str:
    upstream = summary.get("upstream") or "(not recorded)"
    commit = summary.get("commit") or "(not recorded)"
    return f"""{SECTION_BEGIN}
## advisory-db.tar.xz

- What: the OSV advisory records for PyPI packages that the scan checks every
  pin against when `SKILLHARBOR_ADVISORY_DB` is not set: {summary['records']} records
  ({summary['withdrawn']} withdrawn) about {summary['packages']} packages, unchanged, in a
  `.tar.xz` with their licence, {summary['licence']} (`LICENSE`, also beside it as `advisory-db.LICENSE`),
  this note as `.skillharbor/snapshot.json` and the compiled index
  (`.skillharbor/index.json`, so a first start parses no YAML).
- Source: {upstream}, commit {commit}.
- As of: {summary['as_of']} (the newest `modified` time of any record; the
  scan report and `GET /api/health` give the age and warn past
  `SKILLHARBOR_ADVISORY_DB_MAX_AGE_DAYS`).
- Made: {summary['made_at']} from `{summary['made_from']}` by `make advisories`
  ({summary['bytes']} bytes, sha256 `{summary['sha256']}`).
- Refresh: `make advisories` (the OSV.dev PyPI export, where the network
  allows) or `make advisories FROM=<directory, zip or tar>`; commit the
  archive, its licence and this file together.
{SECTION_END}"""


def update_provenance(summary: dict[str, Any], path: Path = PROVENANCE_FILE) -> None:
    text = path.read_text() if path.exists() else "# Data shipped with the scanner\n"
    section = provenance_section(summary)
    if SECTION_BEGIN in text and SECTION_END in text:
        head, rest = text.split(SECTION_BEGIN, 1)
        text = head + section + rest.split(SECTION_END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    path.write_text(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="make advisories", description=__doc__.split("\n\n")[0])
    parser.add_argument("--from", dest="source", default=OSV_PYPI_EXPORT,
                        help="directory, zip or tar of OSV records, or an http(s) URL of one (default: %(default)s)")
    parser.add_argument("--commit", help="upstream commit of the records (read from git for a checkout)")
    parser.add_argument("--upstream", help="where the records come from (default: the git remote, or the URL)")
    parser.add_argument("--licence", type=Path, help="the data's licence, when the source has no LICENSE file")
    parser.add_argument("--output", type=Path, default=advisories.EMBEDDED_DATABASE)
    args = parser.parse_args(argv)
    try:
        with tempfile.TemporaryDirectory(prefix="skillharbor-advisories-") as scratch:
            url = args.source if args.source.startswith(("http://", "https://")) else None
            if url:
                source_path = Path(scratch) / "download"
                print(f"downloading {url} ...", flush=True)
                download(url, source_path)
            else:
                source_path = Path(args.source).expanduser().resolve()
            readme = source_path / "README.md"
            previous = _previous_note(source_path)  # re-packing a snapshot (a new index format) keeps its provenance
            summary = build_snapshot(
                source_path, args.output, made_from=url or str(source_path),
                licence_text=_licence_text(source_path, args.licence, url),
                commit=args.commit or _git(source_path, "rev-parse", "HEAD") or previous.get("commit"),
                upstream=args.upstream or (url if url else _git(source_path, "remote", "get-url", "origin"))
                or previous.get("upstream"),
                readme=readme.read_bytes() if source_path.is_dir() and readme.is_file() else None,
            )  # fmt: skip
            if args.output.resolve() == advisories.EMBEDDED_DATABASE:
                LICENCE_FILE.write_text(_licence_text(source_path, args.licence, url))
                update_provenance(summary)
    except SnapshotError as exc:
        print(f"make advisories: {exc}", file=sys.stderr)
        return 1
    print(f"wrote {args.output}: {summary['records']} records about {summary['packages']} packages, "
          f"as of {summary['as_of']}, {summary['bytes']} bytes")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

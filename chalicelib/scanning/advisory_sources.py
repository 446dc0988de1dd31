"""Where OSV records come from: a directory, a zip, or a tar archive (``.tar.xz`` and friends).

Public interface::

    source = open_source(path)        # raises ScanUnavailable naming what is wrong
    source.names, source.key          # record names; a fingerprint of the records
    source.records()                  # (name, bytes) of every record, in name order
    source.metadata                   # the archive's snapshot.json (dict) or None
    source.bundled_index              # the archive's compiled index (dict) or None, not yet checked
    source.close()
    tar_stat_key(path, format_tag)    # a cheap key of a tar archive file (its path, size, mtime), or None

Records are ``.yaml``, ``.yml`` or ``.json`` files anywhere below the root;
hidden entries (a name part starting with ``.``) are never records. An
archive made by ``make advisories`` keeps two hidden members:
``.skillharbor/snapshot.json`` (where the records came from, when, how) and
``.skillharbor/index.json`` (the compiled index, so a first load needs no
parsing; the loader uses it only when its key matches the records beside it).

Fingerprints: a directory's names, sizes and mtimes and a zip's names, CRCs
and sizes are cheap and change with the content. A tar archive is read
whole anyway (it has no central directory), so its key is the names and
sha256 of the records themselves: the same records give the same key
wherever the archive was made. :func:`content_key` is that computation.
Unpacking one costs about 0.15 s, so a cache can be keyed by the archive
file's path, size and mtime instead (:func:`tar_stat_key`), as a directory's
is by its files'.
"""

from __future__ import annotations

import hashlib
import json
import lzma
import os
import tarfile
import zipfile
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from chalicelib.errors import ScanUnavailable

RECORD_SUFFIXES = (".yaml", ".yml", ".json")
META_DIR = ".skillharbor"
SNAPSHOT_MEMBER = f"{META_DIR}/snapshot.json"
INDEX_MEMBER = f"{META_DIR}/index.json"
#: a tar archive may not unpack to more than this (a database is tens of MB; this stops a bomb)
MAX_ARCHIVE_BYTES = 1024 * 1024 * 1024


def is_record_name(relpath: str) -> bool:
    parts = relpath.replace("\\", "/").split("/")
    return not any(p.startswith(".") for p in parts) and relpath.lower().endswith(RECORD_SUFFIXES)


def content_key(format_tag: str, records: Iterable[tuple[str, bytes]]) -> str:
    """Fingerprint of records by name and content (tar archives, and the archive builder)."""
    lines = [f"{name}\t{len(data)}\t{hashlib.sha256(data).hexdigest()}" for name, data in sorted(records)]
    return _key(format_tag, lines)


def _key(format_tag: str, lines: list[str]) -> str:
    digest = hashlib.sha256(f"{format_tag}\n".encode())
    digest.update("\n".join(lines).encode())
    return digest.hexdigest()


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


def _json_or_none(data: bytes | None) -> dict[str, Any] | None:
    if data is None:
        return None
    try:
        value = json.loads(data)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


class RecordSource:
    """Records of one database, listed and fingerprinted (see the module doc)."""

    path: Path
    names: list[str]
    key: str
    metadata: dict[str, Any] | None = None
    bundled_index: dict[str, Any] | None = None

    def records(self) -> Iterator[tuple[str, bytes]]:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def _read_failed(self, name: str, exc: Exception) -> ScanUnavailable:
        return ScanUnavailable(f"advisory database {self.path}: cannot read {name}: {exc}")


class _DirectorySource(RecordSource):
    def __init__(self, path: Path, format_tag: str):
        self.path = path
        listing = _walk_directory(path)
        self.names = [rel for rel, _, _ in listing]
        self.key = _key(format_tag, [f"{rel}\t{size}\t{mtime}" for rel, size, mtime in listing])
        snapshot = path / SNAPSHOT_MEMBER
        self.metadata = _json_or_none(snapshot.read_bytes()) if snapshot.is_file() else None

    def records(self) -> Iterator[tuple[str, bytes]]:
        for name in self.names:
            try:
                data = (self.path / name).read_bytes()
            except OSError as exc:
                raise self._read_failed(name, exc) from exc
            yield name, data


class _ZipSource(RecordSource):
    def __init__(self, path: Path, format_tag: str):
        self.path = path
        self.zip = zipfile.ZipFile(path)
        members = [i for i in self.zip.infolist() if not i.is_dir() and is_record_name(i.filename)]
        members.sort(key=lambda i: i.filename)
        self.names = [i.filename for i in members]
        self.key = _key(format_tag, [f"{i.filename}\t{i.file_size}\t{i.CRC:08x}" for i in members])
        self.metadata = _json_or_none(self._member(SNAPSHOT_MEMBER))

    def _member(self, name: str) -> bytes | None:
        try:
            return self.zip.read(name)
        except KeyError:
            return None

    def records(self) -> Iterator[tuple[str, bytes]]:
        for name in self.names:
            try:
                data = self.zip.read(name)
            except (OSError, zipfile.BadZipFile, KeyError) as exc:
                raise self._read_failed(name, exc) from exc
            yield name, data

    def close(self) -> None:
        self.zip.close()


class _TarSource(RecordSource):
    """Read whole into memory once: the records, the snapshot note and the bundled index."""

    def __init__(self, path: Path, format_tag: str):
        self.path = path
        records: dict[str, bytes] = {}
        extra: dict[str, bytes] = {}
        total = 0
        with tarfile.open(path, "r:*") as archive:
            for member in archive:
                if not member.isfile():
                    continue
                name = member.name.removeprefix("./")
                wanted = is_record_name(name) or name in (SNAPSHOT_MEMBER, INDEX_MEMBER)
                if not wanted:
                    continue
                total += member.size
                if total > MAX_ARCHIVE_BYTES:
                    raise ScanUnavailable(f"advisory database {path} unpacks to more than {MAX_ARCHIVE_BYTES} bytes")
                handle = archive.extractfile(member)
                data = handle.read() if handle is not None else b""
                (records if is_record_name(name) else extra)[name] = data
        self._records = dict(sorted(records.items()))
        self.names = list(self._records)
        self.key = content_key(format_tag, self._records.items())
        self.metadata = _json_or_none(extra.get(SNAPSHOT_MEMBER))
        self.bundled_index = _json_or_none(extra.get(INDEX_MEMBER))

    def records(self) -> Iterator[tuple[str, bytes]]:
        yield from self._records.items()


def tar_stat_key(path: Path, format_tag: str) -> str | None:
    try:
        if path.is_dir() or not path.is_file() or zipfile.is_zipfile(path) or not tarfile.is_tarfile(path):
            return None
        st = path.stat()
    except (OSError, tarfile.TarError, lzma.LZMAError, EOFError, zlib.error):
        return None  # open_source will say what is wrong
    return _key(format_tag, [f"tar\t{path.resolve()}\t{st.st_size}\t{st.st_mtime_ns}"])


def open_source(path: Path, format_tag: str) -> RecordSource:
    """The records at ``path`` (``format_tag`` goes into the key: a new index format, a new key)."""
    try:
        if path.is_dir():
            source: RecordSource = _DirectorySource(path, format_tag)
        elif path.is_file():
            if zipfile.is_zipfile(path):
                source = _ZipSource(path, format_tag)
            elif tarfile.is_tarfile(path):
                source = _TarSource(path, format_tag)
            else:
                raise ScanUnavailable(f"advisory database {path} is neither a directory, a zip nor a tar archive")
        else:
            raise ScanUnavailable(f"advisory database {path} does not exist")
    except ScanUnavailable:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, tarfile.TarError, lzma.LZMAError, zlib.error) as exc:
        raise ScanUnavailable(f"advisory database {path} cannot be read: {exc}") from exc
    if not source.names:
        source.close()
        raise ScanUnavailable(f"advisory database {path} holds no OSV records ({', '.join(RECORD_SUFFIXES)} files)")
    return source

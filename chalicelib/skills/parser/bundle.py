"""Reading a bundle: the files of a zip or folder, checked for unsafe paths and size, and which to keep."""

from __future__ import annotations

import io
import os
import re
import stat
import zipfile
from collections.abc import Mapping
from pathlib import Path

from chalicelib.skills.parser.common import ParseLimits, fail, one_line
from chalicelib.skills.zip_directory import entries_over

IGNORED_NAMES = frozenset({"__MACOSX", "__pycache__", ".git", ".hg", ".svn", ".venv", ".DS_Store", "Thumbs.db"})


def read_zip(data: bytes, *, limits: ParseLimits, label: str) -> tuple[dict[str, bytes], list[str]]:
    """The files of a zip (path -> bytes) and the problems of its entries; fails on a zip past the limits."""
    if len(data) > limits.max_zip_bytes:
        fail(label, [f"the zip is {len(data)} bytes, over the limit of {limits.max_zip_bytes} bytes"])
    too_many = entries_over(data, limits.max_entries)  # before zipfile builds an object per entry
    if too_many:
        fail(label, [too_many])
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except Exception as exc:  # zipfile raises a wide, undocumented range of errors on corrupt input
        fail(label, [f"not a valid zip archive: {one_line(exc)}"])
    problems: list[str] = []
    with archive:
        try:
            infos = archive.infolist()
        except Exception as exc:  # same reason as above
            fail(label, [f"not a valid zip archive: {one_line(exc)}"])
        if len(infos) > limits.max_entries:
            fail(label, [f"the zip has {len(infos)} entries, over the limit of {limits.max_entries}"])

        wanted: list[zipfile.ZipInfo] = []
        seen: set[str] = set()
        for info in infos:
            name = info.filename
            is_dir = name.endswith("/")  # not info.is_dir(): it fails on an empty name
            reason = unsafe_path_reason(name[:-1] if is_dir else name)
            if reason is None and stat.S_ISLNK(info.external_attr >> 16):
                reason = "is a symbolic link"
            if reason is None and info.flag_bits & 0x1:
                reason = "is encrypted"
            if reason:
                problems.append(f"zip entry {name!r} {reason}")
                continue
            if is_dir or is_ignored(name):
                continue
            if name in seen:
                problems.append(f"zip entry {name!r} appears more than once")
                continue
            seen.add(name)
            wanted.append(info)

        declared_total = sum(info.file_size for info in wanted)
        if declared_total > limits.max_total_uncompressed_bytes:
            problems.append(
                f"the zip would unpack to {declared_total} bytes, over the limit of "
                f"{limits.max_total_uncompressed_bytes} bytes"
            )
            fail(label, problems)

        files: dict[str, bytes] = {}
        budget = limits.max_total_uncompressed_bytes
        for info in wanted:
            try:
                content = _read_bounded(archive, info, min(budget, info.file_size))
            except _TooLarge:
                problems.append(f"zip entry {info.filename!r} unpacks to more than its declared size")
                continue
            except Exception as exc:  # corrupt member data (CRC, zlib, truncation, method)
                problems.append(f"zip entry {info.filename!r} cannot be read: {one_line(exc)}")
                continue
            budget -= len(content)
            files[info.filename] = content
    return files, problems


def read_folder(root: Path, *, limits: ParseLimits, label: str) -> tuple[dict[str, bytes], list[str]]:
    """The files of a skill folder (the CLI's form of a zip), with the same rules as :func:`read_zip`."""
    if root.is_symlink() or not root.is_dir():
        fail(label, [f"{label} is not a folder"])
    problems: list[str] = []
    files: dict[str, bytes] = {}
    total = 0
    entries = 0
    for directory, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        for name in list(dirnames) + sorted(filenames):
            full = Path(directory, name)
            relative = full.relative_to(root).as_posix()
            if name in IGNORED_NAMES or (name.endswith(".pyc") and name in filenames):
                if name in dirnames:
                    dirnames.remove(name)
                continue
            entries += 1
            if entries > limits.max_entries:
                fail(label, [*problems, f"the folder has more than {limits.max_entries} entries"])
            if full.is_symlink():
                problems.append(f"{relative!r} is a symbolic link")
                if name in dirnames:
                    dirnames.remove(name)
                continue
            if name in dirnames:
                continue
            if not full.is_file():
                problems.append(f"{relative!r} is not a regular file")
                continue
            size = full.stat().st_size
            total += size
            if total > limits.max_total_uncompressed_bytes:
                fail(label, [*problems, f"the folder holds more than {limits.max_total_uncompressed_bytes} bytes"])
            files[relative] = full.read_bytes()
    return files, problems



def unsafe_path_reason(name: str) -> str | None:
    """Why a bundle path is unsafe to unpack, or None when it is a plain relative path."""
    if not name:
        return "has an empty name"
    if "\x00" in name:
        return "contains a NUL character"
    if "\\" in name:
        return "uses backslashes (only '/' separators are accepted)"
    if name.startswith("/"):
        return "is an absolute path"
    if re.match(r"^[A-Za-z]:", name):
        return "starts with a drive letter"
    parts = name.split("/")
    if ".." in parts:
        return "contains a '..' component"
    if any(part in ("", ".") for part in parts):
        return "is not a normalized relative path (empty or '.' components)"
    return None


# --- bundles -------------------------------------------------------------------


class _TooLarge(Exception):
    pass


def _read_bounded(archive: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> bytes:
    """Read one member, never more than ``limit`` bytes (a lying header cannot inflate it)."""
    chunks: list[bytes] = []
    size = 0
    with archive.open(info) as member:
        while True:
            chunk = member.read(64 * 1024)
            if not chunk:
                break
            size += len(chunk)
            if size > limit:
                raise _TooLarge
            chunks.append(chunk)
    return b"".join(chunks)


def is_ignored(path: str) -> bool:
    parts = path.rstrip("/").split("/")
    return any(part in IGNORED_NAMES for part in parts) or parts[-1].endswith(".pyc")



def find_skill_root(files: Mapping[str, bytes]) -> str | None:
    if "SKILL.md" in files:
        return ""
    tops = {path.split("/", 1)[0] for path in files}
    if len(tops) == 1 and all("/" in path for path in files):
        top = tops.pop() + "/"
        if f"{top}SKILL.md" in files:
            return top
    return None



def bundled_files(bundle: dict[str, bytes] | None, limits: ParseLimits) -> tuple[dict[str, str], dict[str, str]]:
    files: dict[str, str] = {}
    skipped: dict[str, str] = {}
    for path in sorted(bundle or {}):
        if path == "SKILL.md":
            continue
        content = bundle[path]  # type: ignore[index]
        if len(content) > limits.max_bundled_text_bytes:
            skipped[path] = f"larger than {limits.max_bundled_text_bytes} bytes"
            continue
        try:
            text = content.decode("utf-8")
        except UnicodeDecodeError:
            skipped[path] = "not UTF-8 text"
            continue
        if "\x00" in text:
            skipped[path] = "binary (contains NUL bytes)"
            continue
        files[path] = text
    return files, skipped

"""Command runs inside the container: the workspace's files in and out (stdlib only; installed beside harness.py).

The workspace is its own tmpfs (``/workspace``, ``size=`` the workspace's cap), so the kernel holds the
size cap whatever the command writes; the skill's folder is a tmpfs (``/skill``) owned by the supervisor,
read-only to the skill. The supervisor writes the files it was sent before the command starts and reads
the workspace back after every process of the skill is dead, so nothing can swap a file for a link while
it is read. Links are never followed: a symbolic link in the workspace is neither kept nor collected.
"""

from __future__ import annotations

import base64
import binascii
import fnmatch
import os
import stat

WORKSPACE_DIR = "/workspace"
COMMAND_SKILL_DIR = "/skill"
#: more files than this in a workspace are not kept (the result line would grow without bound)
MAX_WORKSPACE_FILES = 2000


def path_problem(rel: str) -> str | None:
    """Why ``rel`` is not a relative path inside a directory, or None."""
    if not isinstance(rel, str) or not rel:
        return "a file path must be a non-empty string"
    parts = rel.split("/")
    if rel.startswith("/") or "\\" in rel or "\x00" in rel or any(p in ("", ".", "..") for p in parts):
        return f"file path {rel[:200]!r} must be relative, with '/' separators and no '..', '.' or empty parts"
    if any(len(p.encode()) > 255 for p in parts) or len(rel) > 1024:
        return f"file path {rel[:200]!r} is too long"
    return None


def write_workspace(root: str, files: dict) -> str | None:
    """Write ``files`` (path -> base64) under ``root``, readable and writable by the skill; a problem or None."""
    for rel, encoded in sorted(files.items()):
        problem = path_problem(rel)
        if problem:
            return problem
        try:
            data = base64.b64decode(encoded, validate=True)
        except (binascii.Error, TypeError, ValueError):
            return f"workspace file {rel!r} is not valid base64"
        # every step opened relative to its parent's fd with O_NOFOLLOW: a pooled skill process (alive while
        # the files go in) cannot swap a directory for a link between a check and a write
        problem = _write_one(root, rel, data)
        if problem:
            return problem
    return None


def _write_one(root: str, rel: str, data: bytes) -> str | None:
    parts = rel.split("/")
    fds = [os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)]
    try:
        for part in parts[:-1]:
            try:
                os.mkdir(part, 0o777, dir_fd=fds[-1])
            except FileExistsError:
                pass
            try:
                fds.append(os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=fds[-1]))
            except OSError:
                return f"workspace file {rel!r}: {part!r} is not a directory"
            try:
                os.chmod(fds[-1], 0o777)  # ours: writable by the skill; one the skill made is its own already
            except OSError:
                pass
        try:
            fd = os.open(parts[-1], os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o666, dir_fd=fds[-1])
        except OSError as exc:
            return f"workspace file {rel!r} cannot be written: {exc.strerror}"
        with os.fdopen(fd, "wb") as fh:
            try:
                fh.write(data)
            except OSError as exc:
                return f"workspace file {rel!r} cannot be written: {exc.strerror}"
            try:
                os.chmod(fh.fileno(), 0o666)
            except OSError:
                pass
        return None
    finally:
        for fd in fds:
            os.close(fd)


def _walk(root: str) -> tuple[list[str], list[str]]:
    """Regular files under ``root`` (relative paths) and what was skipped (links, devices, unreadable dirs)."""
    found, skipped = [], []
    for directory, dirs, names in os.walk(root, followlinks=False, onerror=lambda e: skipped.append(f"{e.filename}: {e.strerror}")):
        for name in dirs + names:
            path = os.path.join(directory, name)
            rel = os.path.relpath(path, root)
            mode = os.lstat(path).st_mode
            if stat.S_ISLNK(mode):
                skipped.append(f"{rel} is a symbolic link")
            elif stat.S_ISREG(mode):
                found.append(rel)
            elif not stat.S_ISDIR(mode):
                skipped.append(f"{rel} is not a regular file")
    return sorted(found), skipped


def _read(root: str, rel: str) -> bytes | None:
    try:
        fd = os.open(os.path.join(root, rel), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as fh:
        return fh.read()


def matches(rel: str, pattern: str) -> bool:
    """Glob match on the whole relative path (``*`` also crosses ``/``; ``**/`` may match nothing)."""
    return fnmatch.fnmatchcase(rel, pattern) or (pattern.startswith("**/") and fnmatch.fnmatchcase(rel, pattern[3:]))


def read_workspace(root: str, patterns: list, max_file_bytes: int, max_total_bytes: int) -> dict:
    """Everything kept (``workspace``: path -> base64), what ``patterns`` collect and what went wrong.

    ``collect_error`` names the first collected file over a cap, or a pattern that names a link."""
    files, skipped = _walk(root)
    report: dict = {"workspace": {}, "collected": [], "collect_error": None, "skipped": skipped[:20]}
    if len(files) > MAX_WORKSPACE_FILES:
        report["skipped"].append(f"{len(files) - MAX_WORKSPACE_FILES} file(s) past the first {MAX_WORKSPACE_FILES} were not kept")
        files = files[:MAX_WORKSPACE_FILES]
    total = 0
    for rel in files:
        data = _read(root, rel)
        if data is None:
            report["skipped"].append(f"{rel} is not readable by the runner")
            continue
        report["workspace"][rel] = base64.b64encode(data).decode("ascii")
        if not any(matches(rel, p) for p in patterns):
            continue
        if report["collect_error"] is None and len(data) > max_file_bytes:
            report["collect_error"] = f"collected file {rel!r} is {len(data)} bytes, over the {max_file_bytes}-byte cap per file"
        total += len(data)
        if report["collect_error"] is None and total > max_total_bytes:
            report["collect_error"] = f"collected files exceed the {max_total_bytes}-byte cap in total (at {rel!r})"
        report["collected"].append(rel)
    for line in skipped:
        rel = line.split(" ", 1)[0]
        if report["collect_error"] is None and any(matches(rel, p) for p in patterns):
            report["collect_error"] = f"{line}: only regular files inside the workspace are collected"
    return report

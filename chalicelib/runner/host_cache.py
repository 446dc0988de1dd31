"""Expiry of the host-side build cache: downloaded wheels and their staged trees.

The wheelhouse (``<root>/<sha256>/<file>.whl``) and the staged trees
(``<root>/.staged/<key>/``) only speed builds up; every entry can be made again
from the pins. Without expiry they grow with every package set ever built, so
the schedule's cleanup removes entries unused for longer than the image TTL.

An entry's last use is its directory's mtime, refreshed by ``touch`` when a
build reuses it. Builds hold a shared lock on the cache for their whole
fetch-stage-layer span and pruning takes it exclusively without waiting: a
prune never deletes a tree a build is reading, and a busy cache is simply
pruned on the next round. The lock is a file lock, so several worker
processes sharing one cache directory respect it too.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

STAGED_DIR = ".staged"
LOCK_FILE = ".lock"
#: a download or staging that crashed leaves a ``*.partial`` file or a ``.<sha>-`` work dir
ABANDONED_AFTER_SECONDS = 3600.0


@dataclass
class PruneReport:
    removed_wheels: list[str] = field(default_factory=list)
    removed_staged: list[str] = field(default_factory=list)
    removed_leftovers: int = 0
    freed_bytes: int = 0
    busy: bool = False  # a build held the cache: nothing was looked at

    def as_dict(self) -> dict[str, object]:
        return {
            "removed_wheels": len(self.removed_wheels),
            "removed_staged_trees": len(self.removed_staged),
            "removed_leftovers": self.removed_leftovers,
            "freed_bytes": self.freed_bytes,
            "skipped_busy": self.busy,
        }


def touch(path: Path) -> None:
    """Mark a cache entry used now (a missing one is left for the caller to make)."""
    try:
        os.utime(path)
    except FileNotFoundError:
        pass


@contextmanager
def build_lease(root: Path) -> Iterator[None]:
    """Held by a build while it reads or adds cache entries; pruning waits for no lease."""
    with _locked(root, fcntl.LOCK_SH) as held:
        assert held  # a blocking shared lock is always granted
        yield


def prune(root: Path, max_age_seconds: float, *, now: float | None = None, dry_run: bool = False) -> PruneReport:
    """Remove wheels and staged trees unused for more than ``max_age_seconds``."""
    report = PruneReport()
    if not root.is_dir():
        return report
    now = time.time() if now is None else now
    with _locked(root, fcntl.LOCK_EX | fcntl.LOCK_NB) as held:
        if not held:
            report.busy = True
            return report
        for entry in _entries(root):
            if entry.name.startswith("."):
                if _is_leftover(entry, now):
                    report.removed_leftovers += 1
                    report.freed_bytes += _remove(entry, dry_run)
                continue
            if now - entry.stat().st_mtime <= max_age_seconds:
                _remove_partials(entry, now, report, dry_run)
                continue
            report.freed_bytes += _remove(entry, dry_run)
            (report.removed_staged if entry.parent.name == STAGED_DIR else report.removed_wheels).append(entry.name)
    return report


def _entries(root: Path) -> Iterator[Path]:
    for entry in root.iterdir():
        if entry.name in (STAGED_DIR, LOCK_FILE) or not entry.is_dir():
            continue
        yield entry
    staged = root / STAGED_DIR
    if staged.is_dir():
        yield from (entry for entry in staged.iterdir() if entry.is_dir())


def _is_leftover(entry: Path, now: float) -> bool:
    return now - entry.stat().st_mtime > ABANDONED_AFTER_SECONDS


def _remove_partials(entry: Path, now: float, report: PruneReport, dry_run: bool) -> None:
    for partial in entry.glob("*.partial"):
        if now - partial.stat().st_mtime > ABANDONED_AFTER_SECONDS:
            report.removed_leftovers += 1
            report.freed_bytes += _remove(partial, dry_run)


def _remove(path: Path, dry_run: bool) -> int:
    size = _size(path)
    if not dry_run:
        if path.is_dir():
            shutil.rmtree(path, ignore_errors=True)
        else:
            path.unlink(missing_ok=True)
    return size


def _size(path: Path) -> int:
    if path.is_file():
        return path.stat().st_size
    total = 0
    for folder, _, files in os.walk(path):
        for name in files:
            try:
                total += os.lstat(os.path.join(folder, name)).st_size
            except FileNotFoundError:
                pass
    return total


@contextmanager
def _locked(root: Path, mode: int) -> Iterator[bool]:
    root.mkdir(parents=True, exist_ok=True)
    with open(root / LOCK_FILE, "a+") as handle:
        try:
            fcntl.flock(handle, mode)
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)

"""Expiry of the host build cache: wheels and staged trees unused past the TTL go, busy caches wait."""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path

from chalicelib.runner import host_cache

DAY = 86400.0


def _wheel(root: Path, sha: str, age_days: float, now: float) -> Path:
    folder = root / sha
    folder.mkdir(parents=True)
    (folder / f"pkg-{sha[:4]}-1.0-py3-none-any.whl").write_bytes(b"x" * 1000)
    os.utime(folder, (now - age_days * DAY, now - age_days * DAY))
    return folder


def _staged(root: Path, key: str, age_days: float, now: float) -> Path:
    tree = root / host_cache.STAGED_DIR / key / "opt" / "skillharbor" / "venv" / "lib"
    tree.mkdir(parents=True)
    (tree / "module.py").write_text("x = 1\n")
    top = root / host_cache.STAGED_DIR / key
    os.utime(top, (now - age_days * DAY, now - age_days * DAY))
    return top


def test_entries_unused_past_the_ttl_are_removed_and_recent_ones_kept(tmp_path: Path) -> None:
    now = time.time()
    old_wheel, new_wheel = _wheel(tmp_path, "a" * 64, 40, now), _wheel(tmp_path, "b" * 64, 2, now)
    old_tree, new_tree = _staged(tmp_path, "a" * 64 + "-py3.11-c2", 40, now), _staged(tmp_path, "b" * 64 + "-py3.11-c2", 2, now)

    report = host_cache.prune(tmp_path, 30 * DAY, now=now)

    assert not old_wheel.exists() and not old_tree.exists()
    assert new_wheel.is_dir() and new_tree.is_dir()
    assert report.as_dict()["removed_wheels"] == 1 and report.as_dict()["removed_staged_trees"] == 1
    assert report.freed_bytes >= 1000 + len("x = 1\n")


def test_a_dry_run_reports_without_removing(tmp_path: Path) -> None:
    now = time.time()
    old = _wheel(tmp_path, "c" * 64, 40, now)
    report = host_cache.prune(tmp_path, 30 * DAY, now=now, dry_run=True)
    assert old.is_dir() and report.removed_wheels == ["c" * 64]


def test_reuse_refreshes_an_entry_so_it_survives(tmp_path: Path) -> None:
    now = time.time()
    used = _wheel(tmp_path, "d" * 64, 40, now)
    host_cache.touch(used)  # what a build does when it reuses the wheel
    host_cache.prune(tmp_path, 30 * DAY)
    assert used.is_dir()


def test_abandoned_downloads_and_staging_dirs_are_cleared_but_fresh_ones_left(tmp_path: Path) -> None:
    now = time.time()
    wheel = _wheel(tmp_path, "e" * 64, 1, now)
    stale_partial, fresh_partial = wheel / "x.whl.partial", wheel / "y.whl.partial"
    stale_partial.write_bytes(b"p")
    fresh_partial.write_bytes(b"p")
    os.utime(stale_partial, (now - 2 * 3600, now - 2 * 3600))
    stale_work = tmp_path / host_cache.STAGED_DIR / ".eeee-abc"
    fresh_work = tmp_path / host_cache.STAGED_DIR / ".eeee-def"
    stale_work.mkdir(parents=True)
    fresh_work.mkdir()
    os.utime(stale_work, (now - 2 * 3600, now - 2 * 3600))

    report = host_cache.prune(tmp_path, 30 * DAY, now=now)

    assert not stale_partial.exists() and not stale_work.exists()
    assert fresh_partial.exists() and fresh_work.exists()  # a build may be writing those right now
    assert report.removed_leftovers == 2 and wheel.is_dir()


def test_a_build_in_progress_holds_off_the_prune(tmp_path: Path) -> None:
    now = time.time()
    old = _wheel(tmp_path, "f" * 64, 40, now)
    entered, release = threading.Event(), threading.Event()

    def build() -> None:
        with host_cache.build_lease(tmp_path):
            entered.set()
            release.wait(5)

    builder = threading.Thread(target=build)
    builder.start()
    entered.wait(5)
    try:
        report = host_cache.prune(tmp_path, 30 * DAY, now=now)
        assert report.busy and old.is_dir()
    finally:
        release.set()
        builder.join()
    assert not host_cache.prune(tmp_path, 30 * DAY, now=now).busy
    assert not old.exists()


def test_a_missing_cache_is_nothing_to_do(tmp_path: Path) -> None:
    report = host_cache.prune(tmp_path / "never-built", 30 * DAY)
    assert report.as_dict() == {"removed_wheels": 0, "removed_staged_trees": 0, "removed_leftovers": 0,
                                "freed_bytes": 0, "skipped_busy": False}  # fmt: skip

"""The sustained-load benchmark's pure parts: arrival schedules, a step's figures, the rate search,
and how the CPU meter reads /proc and cgroup files."""

from __future__ import annotations

import pytest

from bench import sustained_plan
from bench.engine_cpu import fuse_mount_id, parse_usage, shim_container


def test_fixed_arrivals_are_evenly_spaced() -> None:
    assert sustained_plan.arrivals(4, 1.0, "fixed") == [0.0, 0.25, 0.5, 0.75]


def test_poisson_arrivals_average_the_rate_and_repeat_with_the_seed() -> None:
    offsets = sustained_plan.arrivals(5, 200.0, "poisson", seed=3)
    assert offsets == sorted(offsets) and 0 < offsets[0] and offsets[-1] < 200.0
    assert 900 < len(offsets) < 1100
    assert offsets == sustained_plan.arrivals(5, 200.0, "poisson", seed=3)
    assert offsets != sustained_plan.arrivals(5, 200.0, "poisson", seed=4)


@pytest.mark.parametrize("rate, seconds, mode", [(0, 1, "fixed"), (1, 0, "poisson"), (1, 1, "bursty")])
def test_bad_schedules_are_refused(rate: float, seconds: float, mode: str) -> None:
    with pytest.raises(ValueError):
        sustained_plan.arrivals(rate, seconds, mode)


def test_arrivals_go_round_robin_over_the_skills() -> None:
    assigned = sustained_plan.assign([0.0, 0.1, 0.2, 0.3], ["a", "b", "c"], seed=1)
    names = [skill for _, skill in assigned]
    assert sorted(names[:3]) == ["a", "b", "c"] and names[3] == names[0]
    assert [skill for _, skill in sustained_plan.assign([0.0, 0.5], ["only"])] == ["only", "only"]


def outcome(offset: float, api_ms: float, warm: bool | None = True, ok: bool = True) -> dict:
    return {"offset": offset, "api_ms": api_ms, "lag_ms": 1.0, "ok": ok, "warm": warm, "duration_ms": 10,
            "error": None if ok else "503"}  # fmt: skip


def test_a_step_leaves_out_its_warmup_and_counts_cold_runs() -> None:
    outcomes = [outcome(0.5, 900.0, warm=False)] + [outcome(2 + n / 10, 20.0 + n) for n in range(19)]
    figures = sustained_plan.step_figures(5.0, outcomes, warmup_s=1.0)
    assert figures["arrivals"] == 19 and figures["cold"] == 0 and figures["cold_share"] == 0.0
    assert figures["api"]["p50_ms"] == 29.0 and figures["api"]["p95_ms"] == 38.0
    assert figures["holds"] is True

    with_cold = outcomes + [outcome(4.0, 30.0, warm=False)]
    figures = sustained_plan.step_figures(5.0, with_cold, warmup_s=1.0)
    assert figures["cold"] == 1 and figures["cold_share"] == 0.05 and figures["holds"] is False


def test_a_step_fails_on_errors_or_a_slow_p95() -> None:
    slow = [outcome(n, 20.0) for n in range(18)] + [outcome(18, 150.0), outcome(19, 160.0)]
    assert sustained_plan.step_figures(5.0, slow, warmup_s=0)["holds"] is False
    failed = [outcome(n, 20.0) for n in range(19)] + [outcome(19, 20.0, warm=None, ok=False)]
    figures = sustained_plan.step_figures(5.0, failed, warmup_s=0)
    assert figures["errors"] == 1 and figures["error_examples"] == ["503"] and figures["holds"] is False
    assert sustained_plan.step_figures(5.0, [], warmup_s=0)["holds"] is False


def step(rate: float, held: bool) -> dict:
    return {"rate_per_s": rate, "holds": held}


def test_the_highest_held_rate_is_the_top_of_the_unbroken_run_from_below() -> None:
    assert sustained_plan.highest_held([step(1, True), step(2, True), step(4, False), step(6, True)]) == 2
    assert sustained_plan.highest_held([step(1, False), step(2, True)]) is None
    assert sustained_plan.highest_held([]) is None


def test_the_search_stops_after_two_misses_in_a_row() -> None:
    assert sustained_plan.keep_going([])
    assert sustained_plan.keep_going([step(1, True), step(2, False)])
    assert sustained_plan.keep_going([step(1, False), step(2, True)])
    assert not sustained_plan.keep_going([step(1, True), step(2, False), step(3, False)])


def test_cgroup_usage_files_are_read_in_seconds() -> None:
    assert parse_usage("2500000000\n", "cpuacct.usage", 1e-9) == 2.5
    assert parse_usage("usage_usec 1500000\nuser_usec 1000000\n", "cpu.stat", 1e-6) == 1.5
    assert parse_usage("user_usec 1\n", "cpu.stat", 1e-6) == 0.0


def test_a_shims_container_is_its_id_argument() -> None:
    cmdline = b"/usr/bin/containerd-shim-runc-v2\0-namespace\0moby\0-id\0abc123\0-address\0/run/c.sock\0"
    assert shim_container(cmdline) == "abc123"
    assert shim_container(b"/usr/bin/containerd-shim-runc-v2\0-namespace\0moby\0") is None


def test_a_fuse_overlayfs_process_names_its_layer_by_the_upper_directory() -> None:
    options = b"lowerdir=/var/lib/docker/fuse-overlayfs/l/A:/var/lib/docker/fuse-overlayfs/l/B,"
    options += b"upperdir=/var/lib/docker/fuse-overlayfs/0f1e2d/diff,workdir=/var/lib/docker/fuse-overlayfs/0f1e2d/work"
    assert fuse_mount_id(b"fuse-overlayfs\0-o\0" + options + b"\0/var/lib/docker/fuse-overlayfs/0f1e2d/merged\0") == "0f1e2d"
    assert fuse_mount_id(b"fuse-overlayfs\0-o\0lowerdir=/a\0/mnt\0") is None

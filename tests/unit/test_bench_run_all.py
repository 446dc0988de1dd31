"""`make bench` runs the benchmarks other work adds once their module is there, and only then."""

from __future__ import annotations

from pathlib import Path

from bench import run_all


def test_optional_benchmarks_run_only_when_their_module_exists(tmp_path: Path) -> None:
    assert run_all.optional_steps(quick=True, root=tmp_path) == []
    (tmp_path / "bench").mkdir()
    (tmp_path / "bench" / "bench_fleet.py").write_text("")
    (tmp_path / "bench" / "bench_scan.py").write_text("")
    found = {name: command[1:] for name, command, _ in run_all.optional_steps(quick=True, root=tmp_path)}
    assert found == {"scan": ["-m", "bench.bench_scan", "--runs", "3"], "fleet": ["-m", "bench.bench_fleet", "--runs", "20", "--first-run-rounds", "1"]}


def test_every_step_has_its_own_name_and_the_sustained_load_is_one() -> None:
    for quick in (True, False):
        names = [name for name, _, _ in run_all.steps(quick)]
        assert len(names) == len(set(names)) and "sustained" in names and "peers" in names and "build" in names


def test_a_partial_run_carries_the_other_steps_and_says_from_which_run() -> None:
    earlier = {"started": "2026-12-03T16:21:53+00:00", "steps": {"peers": 1149.2, "build": 257.5},
               "errors": {"build": "exit 1"}, "peers": {"fastest": 1}, "build": {}, "carried": {"b1": "2026-11-22"}}
    results = {"steps": {"api": 60.0}, "errors": {}, "api": {"b5": 2}}
    run_all.carry(results, earlier, ["peers", "build", "sustained"])
    assert results["peers"] == {"fastest": 1} and results["errors"] == {"build": "exit 1"}
    assert results["carried"] == {"peers": "2026-12-03T16:21:53+00:00", "build": "2026-12-03T16:21:53+00:00"}
    assert "sustained" not in results and results["duration_s"] == 1466.7
    page = run_all.report._carried_note(results["carried"])
    assert "build (run started 2026-12-03T16:21:53+00:00)" in page and "peers" in page

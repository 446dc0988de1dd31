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

"""docs/BENCHMARKS.md renders with and without the optional benchmarks' results (B8, sustained load,
fleet, scanning, behaviour check), so the page works before and after those benchmarks are merged."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench import report, report_runtimes


def stats(p50: float, n: int = 5) -> dict:
    return {"n": n, "p50_ms": p50, "p95_ms": p50 * 1.5, "mean_ms": p50 * 1.1, "min_ms": p50 * 0.9, "max_ms": p50 * 2,
            "samples_ms": [p50] * n}  # fmt: skip


BASE = {"started": "2026-12-03T15:00:00+00:00", "environment": {"cpu_count": 2, "load_average": [3.0, 2.0, 1.0]},
        "steps": {"b1": 1.0}, "errors": {}, "duration_s": 1.0}  # fmt: skip

SUSTAINED = {
    "arrivals": "poisson", "seconds": 15, "warmup_s": 4, "p95_limit_ms": 100.0, "target_rate_per_s": 5.0,
    "pool_settings": {"size_per_image": 2, "max_total": 10}, "setup_errors": {"ten_skills": "approve six: refused"},
    "environment": {"cpu_count": 2, "load_average": [1.0, 1.0, 1.0]},
    "headline": {"one_skill_highest_per_s": 3.0, "ten_skills_highest_per_s": None},
    "scenarios": {"one_skill": {"skills": ["steady-hello"], "highest_held_per_s": 3.0, "steps": [
        {"rate_per_s": rate, "offered_per_s": rate, "ok": 60, "errors": 0, "cold": cold, "cold_share": cold / 60, "holds": cold == 0,
         "api": stats(40.0 * rate), "runner": stats(11.0), "cpu_window": {"load_average": [1.5, 1.0, 1.0]},
         "cpu_ms_per_run": {"engine": 300.0, "daemons": 80.0, "shims": 15.0, "fuse": 60.0, "containers": 145.0, "api": 90.0, "worker": 30.0},
         "pool": {"ready_mean": 2.5, "ready_min": 1, "target_max": 6, "parallelism_max": 3, "refill_ms": 500}}
        for rate, cold in ((1.0, 0), (3.0, 0), (5.0, 4))]}},
}  # fmt: skip

OPTIONAL = {
    "commands": {"b8": {"rounds": 5, "path": "direct", "warm_command": stats(30.0), "round_trip_1mib": stats(80.0),
                        "runner_duration": {"warm_command": stats(12.0), "round_trip_1mib": stats(40.0)}}},
    "fleet": {"workers": {"1": {"runs": 40, "errors": 0, "throughput_per_s": 4.0, "p50_ms": 50.0, "p95_ms": 90.0},
                          "3": {"runs": 40, "errors": 0, "throughput_per_s": 10.0, "p50_ms": 55.0, "p95_ms": 95.0}},
              "notes": "three workers on one engine."},
    "scan": {"advisory_db": {"cold_load_ms": 4000.0, "warm_load": {"median_ms": 120.0}}, "scan_200_pins": {"audit": {"median_ms": 6.0}},
             "import_scan_step": {"skills": 68, "p50_ms": 18.0, "p90_ms": 65.8, "max_ms": 100.1, "slowest": {"benign/a": 100.1}},
             "targets": {"warm_load_ms": 200.0, "scan_200_pins_ms": 20.0, "import_scan_step_p50_ms": 100.0},
             "meets_targets": {"warm_load": True, "scan_200_pins": True, "import_scan_step": True}},
    "behaviour": {"rounds": 3, "probe_ms": {"code/runc": stats(700.0), "code/runsc": stats(1400.0), "runsc_over_runc_code": 2.0}},
}  # fmt: skip


@pytest.fixture()
def render(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    images, results_dir = tmp_path / "img", tmp_path / "results"
    images.mkdir()
    results_dir.mkdir()
    monkeypatch.setattr(report_runtimes, "newest", lambda: (None, {}))  # the repository's own runtimes file is not this test's

    def go(results: dict) -> str:
        source = tmp_path / "2026-12-03.json"
        source.write_text(json.dumps(results))
        page = report.generate(results, source, out=tmp_path / "BENCHMARKS.md", images=images, results_dir=results_dir)
        return page.read_text()

    go.images, go.results_dir = images, results_dir  # type: ignore[attr-defined]
    return go


def test_without_the_optional_results_their_sections_are_left_out(render) -> None:
    page = render(dict(BASE))
    for heading in ("## B8", "## Sustained load", "## Fleet", "## Scanning cost", "### Behaviour check"):
        assert heading not in page
    assert "| Sustained highest steady rate on one skill" in page and "not measured" in page
    assert not any(render.images.glob("bench-b8.png"))


def test_the_sustained_section_gives_the_highest_rate_the_cold_share_and_the_cpu(render) -> None:
    page = render({**BASE, "sustained": SUSTAINED})
    assert "highest rate that held, one skill: **3/s**" in page
    assert "| Sustained highest steady rate on one skill with API p95 ≤ 100 ms and no cold run | ≥ 5 /s | 3.00 /s | **no** |" in page
    assert "| 5/s | 5.0/s | 60 | 0 | 200.0 ms | 300.0 ms | 4 (7%) |" in page
    assert "300 (80 + 15 + 60 + 145)" in page and "| 90.0 / 30.0 |" in page
    assert "420 ms of CPU per run in all, so 2 CPUs serve at most 4.8 runs/s (the target of 5/s leaves 400 ms of CPU per run" in page
    assert "ten skills, ten images: not measured, approve six: refused" in page
    assert "![sustained load: p95 and cold share by rate](img/bench-sustained.png)" in page
    assert (render.images / "bench-sustained.png").stat().st_size > 0


def test_each_optional_result_renders_its_section_and_plot(render) -> None:
    page = render({**BASE, **OPTIONAL})
    assert "## B8 command runs through the HTTP API" in page and "| warm_command | 5 | 30.0 ms |" in page
    assert "## Fleet throughput" in page and "| 3 | 40 | 0 | 10.0 /s | 2.50x |" in page and "three workers on one engine." in page
    assert "| import scan step, skill without packages (p50 over the corpus) | 18.0 ms | ≤ 100 ms | yes |" in page
    assert "### Behaviour check per import" in page and "runsc / runc, code skill: 2.00x." in page
    for plot in ("bench-b8.png", "bench-fleet.png", "bench-behaviour.png"):
        assert (render.images / plot).exists(), plot


def test_an_optional_benchmark_run_on_its_own_is_read_from_its_newest_file(render) -> None:
    (render.results_dir / "scan-2026-12-01.json").write_text(json.dumps({"advisory_db": {"warm_load": {"median_ms": 999.0}}}))
    (render.results_dir / "scan-2026-12-02.json").write_text(json.dumps(OPTIONAL["scan"]))
    (render.results_dir / "scan-2026-12-02-cpus2.json").write_text(json.dumps({"advisory_db": {"warm_load": {"median_ms": 1.0}}}))
    page = render(dict(BASE))
    assert "scan-2026-12-02.json` (run on its own)" in page and "| advisory database, warm load (median) | 120.0 ms |" in page
    page = render({**BASE, "scan": {"advisory_db": {"warm_load": {"median_ms": 50.0}}}})
    assert "from this run." in page and "| 50.0 ms |" in page


def test_the_cpu_ceiling_leaves_out_what_the_processes_spend_idle() -> None:
    from bench.report_sustained import ceiling

    step = {"cpu_ms_per_run": {"engine": 300.0, "api": 90.0, "worker": 30.0},
            "cpu_ms_per_run_above_idle": {"engine": 250.0, "api": 50.0, "worker": 20.0}}  # fmt: skip
    idle = {"engine_s": 0.05, "api_s": 0.1, "worker_s": 0.05}
    assert ceiling(step, 2, idle).endswith("320 ms above what the same processes spend idle (200 ms per second); so 2 CPUs serve at most 5.6 runs/s")
    assert ceiling({"cpu_ms_per_run": {}}, 2) == ""


def test_the_targets_show_the_previous_full_run_beside_this_one(render) -> None:
    earlier = {**BASE, "sustained": {**SUSTAINED, "headline": {"one_skill_highest_per_s": 2.0}}}
    (render.results_dir / "2026-12-01.json").write_text(json.dumps(earlier))
    (render.results_dir / "2026-12-09.json").write_text(json.dumps({}))  # a later run is not "previous"
    page = render({**BASE, "sustained": SUSTAINED})
    assert "| target | limit | measured | met | previous run (2026-12-01) |" in page
    assert "| ≥ 5 /s | 3.00 /s | **no** | 2.00 /s |" in page

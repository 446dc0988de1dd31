"""Run limits, requests and results (no Docker)."""

from __future__ import annotations

import json

import pytest

from chalicelib.errors import BadRequest
from chalicelib.runner.spec import RunLimits, RunRequest, RunResult, RunStatus
from chalicelib.settings import Settings


def test_defaults_match_the_design():
    limits = RunLimits()
    assert (limits.memory_mb, limits.cpus, limits.pids, limits.timeout_seconds, limits.tmpfs_mb) == (256, 0.5, 128, 30.0, 64)
    assert limits.max_output_bytes == 1024 * 1024


def test_limits_from_settings_and_within_maxima():
    settings = Settings(run_memory_mb=128, max_memory_mb=512)
    limits = RunLimits.from_settings(settings)
    assert limits.memory_mb == 128
    assert limits.validated(settings) is limits


def test_values_over_the_admin_maxima_are_rejected_naming_each_limit():
    settings = Settings(max_memory_mb=512, max_cpus=1.0, max_timeout_seconds=60)
    with pytest.raises(BadRequest) as caught:
        RunLimits().with_overrides(settings, memory_mb=1024, cpus=4, timeout_seconds=61)
    message = caught.value.message
    assert "memory_mb=1024" in message and "cpus=4" in message and "timeout_seconds=61" in message
    assert len(caught.value.problems) == 3


def test_overrides_none_keeps_the_default():
    limits = RunLimits().with_overrides(Settings(), timeout_seconds=None, memory_mb=300)
    assert limits.timeout_seconds == 30.0 and limits.memory_mb == 300


@pytest.mark.parametrize("field,value", [("memory_mb", 1), ("cpus", 0), ("timeout_seconds", 0), ("pids", 1), ("tmpfs_mb", 0)])
def test_values_below_the_floor_are_rejected(field, value):
    with pytest.raises(BadRequest, match=field):
        RunLimits().with_overrides(Settings(), **{field: value})


def test_unknown_or_invalid_override():
    with pytest.raises(BadRequest, match="unknown run limit"):
        RunLimits().with_overrides(Settings(), gpus=1)
    with pytest.raises(BadRequest, match="invalid run limits"):
        RunLimits().with_overrides(Settings(), cpus="lots")
    with pytest.raises(BadRequest):
        RunLimits().with_overrides(Settings(), timeout_seconds=float("inf"))


def test_request_validates_entrypoint_and_file_paths():
    RunRequest(image="img", code="", files={"pkg/mod.py": ""})
    with pytest.raises(ValueError, match="identifier"):
        RunRequest(image="img", code="", entrypoint="main; import os")
    for bad in ("../escape.py", "/etc/passwd", "a//b.py", "./x.py"):
        with pytest.raises(ValueError, match="relative"):
            RunRequest(image="img", code="", files={bad: ""})


def test_result_is_json_with_success():
    result = RunResult(status=RunStatus.OK, output={"x": 1}, duration_ms=12)
    body = json.loads(json.dumps(result.to_dict()))
    assert body["success"] is True and body["status"] == "ok" and body["output"] == {"x": 1}
    failed = RunResult(status="timeout")
    assert failed.success is False and failed.to_dict()["status"] == "timeout"
    assert RunResult.model_validate(body).status == RunStatus.OK

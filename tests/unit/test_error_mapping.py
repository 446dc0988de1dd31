"""Each error's mapping is declared once (chalicelib/errors.py), and the state machine agrees with it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from chalicelib import errors
from chalicelib.workflow.imports import _status_for

ASL = Path(__file__).resolve().parents[2] / "infra" / "state_machine.asl.json"
AWS_NAMES = ("States.", "Lambda.")


def _clauses(states: dict[str, Any], kind: str) -> list[tuple[str, list[str]]]:
    found = []
    for name, state in states.items():
        for clause in state.get(kind, []):
            found.append((name, clause["ErrorEquals"]))
        for branch in state.get("Branches", []):
            found += _clauses(branch["States"], kind)
    return found


def _machine() -> dict[str, Any]:
    return json.loads(ASL.read_text())["States"]


def test_every_error_name_the_state_machine_matches_is_declared_by_an_error_class():
    declared = {cls.asl_name for cls in errors.error_classes() if cls.asl_name}
    for kind in ("Retry", "Catch"):
        for state, names in _clauses(_machine(), kind):
            ours = [n for n in names if not n.startswith(AWS_NAMES)]
            assert set(ours) <= declared, f"{state} {kind} matches {ours}; errors.py declares {sorted(declared)}"


def test_an_asl_name_is_the_class_name_lambda_reports():
    for cls in errors.error_classes():
        if cls.asl_name:
            assert cls.asl_name == cls.__name__, cls


def test_every_task_retries_exactly_the_declared_transient_errors():
    for name, state in _machine().items():
        if state.get("Type") != "Task" or name == "RecordFailure":  # the failure record retries anything
            continue
        lists = [tuple(names) for _, names in _clauses({name: state}, "Retry")]
        assert errors.RETRYABLE_ASL_ERRORS in lists, f"{name} does not retry {errors.RETRYABLE_ASL_ERRORS}"
        assert any("States.ALL" in names for _, names in _clauses({name: state}, "Catch")), name


def test_a_failed_step_leaves_the_status_and_reason_its_error_declares():
    assert _status_for("Blocked") == ("blocked", "blocked")
    assert _status_for("ScanUnavailable") == ("failed", "scan_unavailable")
    assert _status_for("ResolutionFailed") == ("failed", "resolution_failed")
    assert _status_for("States.Timeout") == ("failed", "internal_error")
    for cls in errors.error_classes():
        assert _status_for(cls.__name__) == (cls.record_status, cls.reason)


def test_each_reason_names_one_class_and_each_status_is_an_http_error():
    reasons = [cls.reason for cls in errors.error_classes()]
    assert len(reasons) == len(set(reasons))
    assert all(400 <= cls.http_status < 600 for cls in errors.error_classes())

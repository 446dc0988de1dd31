"""Granted secrets on the runner: values read from the store just before the run, and redacted after it.

The job carries references only (``RunJob.secrets``: secret name, variable
name), so no queue message, run record or log holds a value. Whatever the
skill echoes of a value (stdout, stderr, its return value, an error or
traceback) is replaced by ``[redacted]`` before the result leaves the runner.
"""

from __future__ import annotations

from typing import Any

from chalicelib.governance.secrets import redact_values
from chalicelib.runner.spec import RunResult


def granted_env(references: list[dict[str, Any]], values: Any) -> dict[str, str]:
    return {str(ref["env_name"]): values.get(str(ref["secret_name"])) for ref in references}


def _walk(value: Any, secrets: list[str]) -> Any:
    if isinstance(value, str):
        return redact_values(value, secrets)
    if isinstance(value, list):
        return [_walk(item, secrets) for item in value]
    if isinstance(value, dict):
        return {_walk(key, secrets): _walk(item, secrets) for key, item in value.items()}
    return value


def redact_result(result: RunResult, secrets: list[str]) -> RunResult:
    if not secrets:
        return result
    for name in ("stdout", "stderr", "error", "traceback", "output", "notes", "network"):
        setattr(result, name, _walk(getattr(result, name), secrets))
    return result

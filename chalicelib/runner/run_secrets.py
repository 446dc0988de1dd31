"""Granted secrets on the runner: values read from the store just before the run, and redacted after it.

The job carries references only (``RunJob.secrets``: secret name, mode,
variable or header name, hosts), so no queue message, run record or log
holds a value. An ``env`` secret becomes an environment variable of the
skill's process; an ``inject`` secret goes to the run's egress proxy only
(``RunRequest.inject_headers``), which adds it as a header for its bound
hosts, so it never enters the container. Whatever the skill echoes of any
granted value (stdout, stderr, its return value, an error or traceback; an
upstream could echo an injected header back) is replaced by ``[redacted]``
before the result leaves the runner.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from chalicelib.governance.secrets import PLACEHOLDER, SecretMode, redact_values
from chalicelib.runner.spec import RunRequest, RunResult


@dataclass
class Grant:
    env: dict[str, str] = field(default_factory=dict)
    inject_headers: list[dict[str, Any]] = field(default_factory=list)  # {"hosts", "name", "value"} for the proxy
    values: list[str] = field(default_factory=list)  # every granted value: what redaction looks for

    def apply(self, request: RunRequest) -> RunRequest:
        return request.model_copy(update={"env": self.env, "inject_headers": self.inject_headers})

    def __bool__(self) -> bool:
        return bool(self.values)


def grant(references: list[dict[str, Any]], values: Any) -> Grant:
    """The run's secrets, read from ``values`` (Secrets Manager): variables for the skill, headers for its proxy."""
    granted = Grant()
    for ref in references:
        value = values.get(str(ref["secret_name"]))
        granted.values.append(value)
        if ref.get("mode", SecretMode.ENV) == SecretMode.INJECT:
            rendered = str(ref.get("format") or PLACEHOLDER).replace(PLACEHOLDER, value)
            granted.inject_headers.append({"hosts": list(ref["hosts"]), "name": str(ref["header"]), "value": rendered})
        else:
            granted.env[str(ref["env_name"])] = value
    return granted


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

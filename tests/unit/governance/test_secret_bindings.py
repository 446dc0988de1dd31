"""Secret bindings: which runs get a secret, bad bindings refused, echoed values redacted."""

from __future__ import annotations

import pytest

from chalicelib.errors import BadRequest
from chalicelib.governance.secrets import SecretBinding, applicable
from chalicelib.runner.run_secrets import redact_result
from chalicelib.runner.spec import RunResult, RunStatus


def binding(hosts: list[str], agent_id: str | None = None) -> SecretBinding:
    return SecretBinding.new("weather", "WEATHER_KEY", hosts, "admin", agent_id=agent_id)


def test_a_run_gets_a_binding_only_for_its_agent_and_approved_hosts() -> None:
    everyone, mine = binding(["api.weather.example:443"]), binding(["api.weather.example:443"], agent_id="bot-1")
    elsewhere = binding(["other.example.com"])
    assert applicable([everyone, mine, elsewhere], "bot-1", ["*.weather.example"]) == [everyone, mine]
    assert applicable([everyone, mine], "bot-2", ["api.weather.example:443"]) == [everyone]
    assert applicable([everyone], "bot-1", ["api.weather.example:80"]) == []


@pytest.mark.parametrize(
    ("env_name", "hosts"), [("PATH", ["a.example.com"]), ("lower", ["a.example.com"]), ("KEY", []), ("KEY", ["10.0.0.1"])]
)
def test_bad_bindings_are_refused(env_name: str, hosts: list[str]) -> None:
    with pytest.raises(BadRequest):
        SecretBinding.new("weather", env_name, hosts, "admin")


def test_echoed_values_are_redacted_everywhere_in_the_result() -> None:
    result = RunResult(status=RunStatus.EXCEPTION, stdout="key=s3cr3t-value\n", stderr="s3cr3t-value", error="bad s3cr3t-value",
                       traceback="...s3cr3t-value", output={"s3cr3t-value": ["s3cr3t-value", 1]})  # fmt: skip
    redacted = redact_result(result, ["s3cr3t-value"])
    assert "s3cr3t-value" not in redacted.model_dump_json()
    assert redacted.output == {"[redacted]": ["[redacted]", 1]}

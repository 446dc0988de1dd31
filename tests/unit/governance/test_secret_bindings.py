"""Secret bindings: which runs get a secret, bad bindings refused, echoed values redacted."""

from __future__ import annotations

import json
import re

import pytest

from chalicelib.errors import BadRequest
from chalicelib.governance.secrets import SecretBinding, SecretMode, applicable, check_value
from chalicelib.runner.run_secrets import grant, redact_result
from chalicelib.runner.spec import RunRequest, RunResult, RunStatus


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


def test_an_inject_binding_names_a_header_and_a_format_and_no_variable() -> None:
    bound = SecretBinding.new("weather", None, ["api.weather.example:443"], "admin", mode="inject", header="Authorization",
                              format="Bearer {value}")  # fmt: skip
    assert (bound.mode, bound.env_name, bound.header) == (SecretMode.INJECT, None, "Authorization")
    assert bound.render("{0.__class__}") == "Bearer {0.__class__}"  # replaced, never interpreted as a format string
    plain = SecretBinding.new("weather", None, ["api.weather.example"], "admin", mode="inject", header="X-Api-Key")
    assert plain.render("k-123456") == "k-123456"
    assert SecretBinding.new("weather", "WEATHER_KEY", ["a.example.com"], "admin").mode == SecretMode.ENV


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"header": "Host"}, "header must be"),
        ({"header": "Content-Length"}, "header must be"),
        ({"header": "X Key"}, "header must be"),
        ({"header": "X-Key", "format": "Bearer"}, "format must hold {value} once"),
        ({"header": "X-Key", "format": "{value} {value}"}, "format must hold {value} once"),
        ({"header": "X-Key", "format": "a\r\nX-Other: {value}"}, "format must hold"),
        ({"header": "X-Key", "env_name": "KEY"}, "env_name belongs to mode env"),
        ({"mode": "file"}, "mode must be env"),
        ({"mode": ["inject"]}, "mode must be env"),
        ({"mode": "env", "env_name": "KEY", "header": "X-Key"}, "header and format belong to mode inject"),
    ],
)
def test_bad_inject_bindings_are_refused_with_the_reason(fields: dict, problem: str) -> None:
    chosen = {"mode": "inject", "env_name": None, **fields}
    env_name = chosen.pop("env_name")
    with pytest.raises(BadRequest, match=re.escape(problem)):
        SecretBinding.new("weather", env_name, ["a.example.com"], "admin", **chosen)


def test_an_injected_value_must_fit_in_a_header_line() -> None:
    assert check_value("tok-123456", SecretMode.INJECT) == "tok-123456"
    with pytest.raises(BadRequest, match="visible ASCII"):
        check_value("tok-123\r\nX-Evil: 1", SecretMode.INJECT)
    assert check_value("line one\nline two", SecretMode.ENV)  # a variable may hold any text


def test_a_grant_gives_env_secrets_to_the_skill_and_injected_ones_to_the_proxy_only() -> None:
    values = {"skillharbor/w/a": "env-value-1", "skillharbor/w/b": "inj-value-2"}
    references = [
        {"secret_name": "skillharbor/w/a", "mode": "env", "env_name": "KEY", "header": None, "format": None, "hosts": ["a.example.com"]},
        {"secret_name": "skillharbor/w/b", "mode": "inject", "env_name": None, "header": "Authorization",
         "format": "Bearer {value}", "hosts": ["b.example.com:443"]},
        {"secret_name": "skillharbor/w/a", "env_name": "OLD_JOB"},  # a job queued before modes existed
    ]  # fmt: skip
    granted = grant(references, values)
    assert granted.env == {"KEY": "env-value-1", "OLD_JOB": "env-value-1"}
    assert granted.inject_headers == [{"hosts": ["b.example.com:443"], "name": "Authorization", "value": "Bearer inj-value-2"}]
    assert set(granted.values) == {"env-value-1", "inj-value-2"}
    request = granted.apply(RunRequest(image="img", code="def main(): pass", egress=["b.example.com:443"]))
    assert "inj-value-2" not in json.dumps(request.env) and "inj-value-2" not in repr(request)

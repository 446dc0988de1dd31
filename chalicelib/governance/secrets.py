"""Brokered secrets: bindings of a stored secret to a skill (optionally one agent) and hosts (no I/O).

A binding names the secret (its value lives in Secrets Manager, never in a
record), the skill, an optional agent, the hosts the value may be sent to,
and how the run gets it (``mode``):

* ``env``: as the environment variable ``env_name`` of the skill's process;
* ``inject``: never inside the container: the egress proxy adds the header
  ``header: <format with {value} replaced>`` to every request to a bound
  host (over TLS by terminating it with the run's own CA, runner/egress_tls.py).

A run gets it only when its skill version passed its checks, its agent is
the bound one (or the binding is for every agent), and every bound host is
among the hosts approved for this run; otherwise the run simply does not get it.
"""

from __future__ import annotations

import re
import secrets
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field

from chalicelib.errors import BadRequest
from chalicelib.governance.timeutil import now_iso
from chalicelib.skills.network import parse_host_entry, patterns_from_strings

_ENV_NAME = re.compile(r"^[A-Z_][A-Z0-9_]{0,63}$")
#: variables the harness sets or the interpreter reads: a secret must not replace them
RESERVED_NAMES = frozenset({"PATH", "HOME", "LANG", "PYTHONDONTWRITEBYTECODE", "PYTHONIOENCODING", "HTTP_PROXY", "HTTPS_PROXY",
                            "ALL_PROXY", "NO_PROXY", "PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "LD_PRELOAD", "LD_LIBRARY_PATH",
                            "SSL_CERT_FILE", "SSL_CERT_DIR", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE"})  # fmt: skip
MAX_SECRET_BYTES = 16 * 1024
_HEADER_NAME = re.compile(r"^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}$")
#: headers the proxy sets or HTTP framing depends on: an injected secret must not replace them
RESERVED_HEADERS = frozenset({"host", "content-length", "transfer-encoding", "connection", "keep-alive", "te", "trailer",
                              "upgrade", "expect", "proxy-authorization", "proxy-connection", "proxy-authenticate"})  # fmt: skip
PLACEHOLDER = "{value}"
MAX_FORMAT_CHARS = 256


class SecretMode(StrEnum):
    ENV = "env"  # an environment variable of the skill's process
    INJECT = "inject"  # a header the egress proxy adds for the bound hosts; never inside the container


def _header_safe(text: str) -> bool:
    """Visible ASCII and spaces only: nothing that could end a header line or smuggle another."""
    return all(" " <= ch <= "~" for ch in text)


class SecretBinding(BaseModel):
    model_config = ConfigDict(frozen=True)

    binding_id: str
    skill_id: str
    agent_id: str | None = None
    mode: SecretMode = SecretMode.ENV
    env_name: str | None = None  # env mode
    header: str | None = None  # inject mode: the header name
    format: str | None = None  # inject mode: the header value, "{value}" standing for the secret (e.g. "Bearer {value}")
    hosts: list[str]
    secret_name: str  # the Secrets Manager name holding the value
    created_by: str
    created_at: str = Field(default_factory=now_iso)

    @classmethod
    def new(cls, skill_id: object, env_name: object, hosts: object, created_by: str, agent_id: object = None,
            mode: object = None, header: object = None, format: object = None) -> SecretBinding:  # noqa: A002 - the API's word
        problems = []
        if not isinstance(skill_id, str) or not re.fullmatch(r"[a-z0-9-]{1,64}", skill_id):
            problems.append("skill_id must be a skill id (lower-case letters, digits and dashes)")
        chosen = mode if mode is not None else SecretMode.ENV.value
        if not isinstance(chosen, str) or chosen not in {m.value for m in SecretMode}:
            problems.append("mode must be env (an environment variable) or inject (a header the proxy adds)")
        elif chosen == SecretMode.ENV:
            if not isinstance(env_name, str) or not _ENV_NAME.match(env_name) or env_name in RESERVED_NAMES or env_name.startswith("SKILLHARBOR"):
                problems.append("env_name must be an upper-case environment variable name the runtime does not use itself")
            if header is not None or format is not None:
                problems.append("header and format belong to mode inject")
        else:
            problems += _inject_problems(env_name, header, format)
        if agent_id is not None and (not isinstance(agent_id, str) or not agent_id.strip()):
            problems.append("agent_id must be an agent id, or left out for every agent")
        entries: list[str] = []
        if not isinstance(hosts, list) or not hosts:
            problems.append("hosts must list the hosts the secret may be sent to")
        else:
            for entry in hosts:
                pattern, problem = parse_host_entry(entry)
                if pattern is None:
                    problems.append(f"hosts: {problem}")
                else:
                    entries.append(str(entry).strip().lower())
        if problems:
            raise BadRequest("invalid secret binding: " + "; ".join(problems), problems=problems)
        binding_id = "sec-" + secrets.token_hex(8)
        inject = chosen == SecretMode.INJECT
        return cls(binding_id=binding_id, skill_id=str(skill_id), agent_id=agent_id, mode=SecretMode(chosen),
                   env_name=None if inject else str(env_name), header=str(header) if inject else None,
                   format=(format or PLACEHOLDER) if inject else None, hosts=entries,
                   secret_name=f"skillharbor/{skill_id}/{binding_id}", created_by=created_by)  # fmt: skip

    def render(self, value: str) -> str:
        """The injected header's value (plain replacement: a format is never interpreted as a format string)."""
        return (self.format or PLACEHOLDER).replace(PLACEHOLDER, value)

    def public(self) -> dict[str, object]:
        return self.model_dump(mode="json")


def _inject_problems(env_name: object, header: object, format: object) -> list[str]:  # noqa: A002
    problems = []
    if env_name is not None:
        problems.append("env_name belongs to mode env: an injected secret never enters the container")
    if not isinstance(header, str) or not _HEADER_NAME.match(header) or header.lower() in RESERVED_HEADERS:
        problems.append("header must be an HTTP header name (letters, digits, dashes) other than Host, the framing "
                        "and the proxy headers, e.g. Authorization or X-Api-Key")  # fmt: skip
    if format is not None and (not isinstance(format, str) or format.count(PLACEHOLDER) != 1 or not _header_safe(format)
                               or len(format) > MAX_FORMAT_CHARS):  # fmt: skip
        problems.append(f"format must hold {PLACEHOLDER} once, in at most {MAX_FORMAT_CHARS} visible ASCII characters "
                        "(e.g. \"Bearer {value}\")")  # fmt: skip
    return problems


def check_value(value: object, mode: SecretMode = SecretMode.ENV) -> str:
    if not isinstance(value, str) or not value or len(value.encode()) > MAX_SECRET_BYTES:
        raise BadRequest(f"value must be a non-empty string of at most {MAX_SECRET_BYTES} bytes", field="value")
    if len(value) < 6:
        raise BadRequest("value must be at least 6 characters (shorter values cannot be redacted from output safely)", field="value")
    if mode == SecretMode.INJECT and not _header_safe(value):
        raise BadRequest("value of an injected secret must be visible ASCII (it becomes part of a header line)", field="value")
    return value


def applicable(bindings: list[SecretBinding], agent_id: str, approved_hosts: list[str]) -> list[SecretBinding]:
    """The bindings a run of this agent gets, given the hosts approved for it."""
    approved = patterns_from_strings(approved_hosts)
    chosen = []
    for binding in bindings:
        if binding.agent_id not in (None, agent_id):
            continue
        if all(any(a.covers(b) for a in approved) for b in patterns_from_strings(binding.hosts)):
            chosen.append(binding)
    return chosen


def redact_values(text: str, values: list[str]) -> str:
    for value in sorted(values, key=len, reverse=True):
        text = text.replace(value, "[redacted]")
    return text

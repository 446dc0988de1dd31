"""What every command shares: the session (URL, key, ``--json``), the error that exits 1, and small output helpers."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import click

from chalicelib.cli import output
from chalicelib.cli.client import DEFAULT_URL, ApiClient, ApiError

IMPORT_STEPS = ("parse", "resolve", "check", "scan", "install", "behaviour", "finalize")
IMPORT_END_STATES = ("SUCCEEDED", "FAILED", "PENDING_APPROVAL")
MATURITIES = ("STUDENT", "INTERN", "SUPERVISED", "AUTONOMOUS")
POLL_SECONDS = 0.5


# --- errors -------------------------------------------------------------------------


class CliError(click.ClickException):
    """Exit 1 with ``error: <message>`` and the problems, one per line, on stderr."""

    exit_code = 1

    def __init__(self, message: str, problems: list[str] | None = None, body: Any = None):
        super().__init__(message)
        self.problems = problems or []
        self.body = body

    def show(self, file: Any = None) -> None:
        click.echo(f"error: {self.message}", err=True)
        for problem in self.problems:
            click.echo(f"  - {problem}", err=True)


def _detail_lines(details: dict[str, Any]) -> list[str]:
    """Per-package reasons and similar lists in an error's details, as problem lines."""
    lines: list[str] = []
    for key, value in details.items():
        if isinstance(value, list):
            for item in value:
                if isinstance(item, dict):
                    name = item.get("package") or item.get("name") or item.get("package_name") or ""
                    version = item.get("version") or ""
                    reason = item.get("reason") or item.get("message") or output.compact(item)
                    label = " ".join(part for part in (name, version) if part)
                    lines.append(f"{label}: {reason}" if label else str(reason))
                elif key not in ("field", "requirements"):  # an invalid skill's details list its (valid) requirements
                    lines.append(str(item))
        elif key == "reason" and isinstance(value, str):
            lines.append(value)
    return lines


def without_repeated_problems(message: str, problems: list[str]) -> str:
    """The message may repeat the problems listed under it: keep its first line of its own."""
    if problems and message.find(problems[0]) > 0:
        message = message[: message.find(problems[0])].rstrip(" :;-\n")
    return message


def error_from_api(error: ApiError, *, hint: str | None = None) -> CliError:
    problems = list(error.problems) + [line for line in _detail_lines(error.details) if line not in error.problems]
    message = without_repeated_problems(error.message, problems)
    if error.status == 401 and hint:
        message = f"{message} ({hint})"
    return CliError(message, problems, body=error.body)


# --- context ------------------------------------------------------------------------


@dataclass
class Session:
    url: str = DEFAULT_URL
    key: str | None = None
    json_output: bool = False
    timeout: float = 60.0
    _client: ApiClient | None = field(default=None, repr=False)

    @property
    def client(self) -> ApiClient:
        if self._client is None:
            self._client = ApiClient(self.url, self.key, timeout=self.timeout)
        return self._client

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """One API call; an API error becomes exit 1 with its message and problems."""
        try:
            return self.client.request(method, path, **kwargs)
        except ApiError as error:
            hint = None if self.key else "no API key: pass --key or set SKILLHARBOR_API_KEY"
            cli_error = error_from_api(error, hint=hint)
            if self.json_output and error.body is not None:
                output.print_json(error.body)
            raise cli_error from None

    def show(self, data: Any, render: Callable[[Any], None]) -> None:
        if self.json_output:
            output.print_json(data)
        else:
            render(data)


pass_session = click.make_pass_decorator(Session, ensure=True)


def _set_json(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value:
        ctx.ensure_object(Session).json_output = True


def json_option(command: Callable[..., Any]) -> Callable[..., Any]:
    """``--json`` on every command (also accepted before the command name)."""
    return click.option(
        "--json",
        "json_flag",
        is_flag=True,
        expose_value=False,
        callback=_set_json,
        is_eager=True,
        help="Print the API's answer as JSON (for scripts).",
    )(command)


def echo_ok(message: str) -> None:
    output.stdout_console().print(message)


def print_warnings(warnings: list[str]) -> None:
    for warning in warnings:
        output.stderr_console().print(f"[yellow]warning:[/] {warning}")

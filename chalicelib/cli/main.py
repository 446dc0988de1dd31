"""``skillharbor``: import, inspect, govern and run skills from a terminal.

Every command talks to the HTTP API (``--url`` / ``SKILLHARBOR_URL``) with an
API key (``--key`` / ``SKILLHARBOR_API_KEY``, falling back to
``SKILLHARBOR_ADMIN_KEY``). ``--json`` (before or after the command) prints
the API's answer as JSON for scripts.

Exit codes: 0 ok; 1 the API said no (any 4xx/5xx), a permission check was
denied, or an import ended failed/blocked; 2 bad usage (click's own).
Errors are one line on stderr, ``error: <message>``, then the problems;
with ``--json`` the API's error body is also printed on stdout.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NoReturn

import click

from chalicelib.cli import output
from chalicelib.cli.bundle import BundleError, Upload, load_upload
from chalicelib.cli.client import DEFAULT_URL, ApiClient, ApiError

IMPORT_STEPS = ("parse", "resolve", "check", "scan", "install", "finalize")
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


def _without_repeated_problems(message: str, problems: list[str]) -> str:
    """The message may repeat the problems listed under it: keep its first line of its own."""
    if problems and message.find(problems[0]) > 0:
        message = message[: message.find(problems[0])].rstrip(" :;-\n")
    return message


def error_from_api(error: ApiError, *, hint: str | None = None) -> CliError:
    problems = list(error.problems) + [line for line in _detail_lines(error.details) if line not in error.problems]
    message = _without_repeated_problems(error.message, problems)
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


def _echo_ok(message: str) -> None:
    output.stdout_console().print(message)


# --- the group ----------------------------------------------------------------------


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option(
    "--url",
    envvar="SKILLHARBOR_URL",
    default=DEFAULT_URL,
    show_default=True,
    help="API base URL (env SKILLHARBOR_URL).",
)
@click.option("--key", help="API key (env SKILLHARBOR_API_KEY, else SKILLHARBOR_ADMIN_KEY).")
@click.option("--timeout", type=float, default=60.0, show_default=True, help="Seconds to wait for one HTTP answer.")
@json_option
@click.version_option("0.1.0", prog_name="skillharbor")
@click.pass_context
def cli(ctx: click.Context, url: str, key: str | None, timeout: float) -> None:
    """skillharbor: import community agent skills, govern their packages, run them safely."""
    session = ctx.ensure_object(Session)
    session.url = url
    session.key = key or os.environ.get("SKILLHARBOR_API_KEY") or os.environ.get("SKILLHARBOR_ADMIN_KEY") or None
    session.timeout = timeout


# --- health -------------------------------------------------------------------------


@cli.command()
@json_option
@pass_session
def health(session: Session) -> None:
    """Is every part of the stack reachable? (no key needed)"""
    try:
        report = session.client.get("/api/health")
    except ApiError as error:
        if not isinstance(error.body, dict) or "status" not in error.body:
            raise error_from_api(error) from None
        report = error.body
    session.show(report, _render_health)
    if report.get("status") != "ok":
        raise CliError(
            f"the stack is {report.get('status', 'unhealthy')}",
            [
                f"{name}: {part.get('error')}"
                for name, part in (report.get("parts") or {}).items()
                if not part.get("ok")
            ],
        )


def _render_health(report: dict[str, Any]) -> None:
    console = output.stdout_console()
    if "parts" not in report:  # the answer to a key that is not an admin's, or to none
        console.print(f"stack: {report.get('status')}")
        if report.get("detail"):
            output.stderr_console().print(f"[dim]{report['detail']}[/]")
        return
    rows = [
        (name, output.styled("ok" if part.get("ok") else "failed"), part.get("error") or "")
        for name, part in sorted((report.get("parts") or {}).items())
    ]
    console.print(output.table(("part", "state", "error"), rows, title=f"stack: {report.get('status')}"))
    database = report.get("advisory_db") or {}
    if database.get("ok"):
        console.print(f"advisory database: {database.get('source')}, {database.get('records')} records, "
                      f"as of {str(database.get('as_of'))[:10]} ({database.get('age_days')} days old)")  # fmt: skip
    elif database:
        console.print(f"advisory database: [red]unavailable[/]: {database.get('error')}")
    _print_warnings([database["warning"]] if database.get("warning") else [])


def _print_warnings(warnings: list[str]) -> None:
    for warning in warnings:
        output.stderr_console().print(f"[yellow]warning:[/] {warning}")


# --- import -------------------------------------------------------------------------


@cli.command("import")
@click.argument("path", type=click.Path(exists=True, path_type=str))
@click.option("--s3", "via_s3", is_flag=True, help="Upload to the inbox bucket instead of POST /api/skills.")
@click.option(
    "--bucket",
    envvar="SKILLHARBOR_INBOX_BUCKET",
    default="skillharbor-inbox",
    show_default=True,
    help="Inbox bucket for --s3 (env SKILLHARBOR_INBOX_BUCKET).",
)
@click.option(
    "--prefix",
    default="cli/",
    show_default=True,
    help="Inbox folder for --s3 (an admin maps it to an owner: skillharbor inbox map).",
)
@click.option("--wait/--no-wait", default=True, show_default=True, help="Follow the import until it ends.")
@click.option(
    "--wait-timeout", type=float, default=900.0, show_default=True, help="Give up following after this many seconds."
)
@click.option("--requirements", "requirements", multiple=True, metavar="PEP508",
              help="Add requirements the skill does not declare (repeat, or separate with commas); owner or admin.")
@click.option("--accept-proposed", is_flag=True,
              help="Add the requirements proposed for the skill's undeclared imports; owner or admin.")
@json_option
@pass_session
def import_skill(
    session: Session, path: str, via_s3: bool, bucket: str, prefix: str, wait: bool, wait_timeout: float,
    requirements: tuple[str, ...], accept_proposed: bool,
) -> None:  # fmt: skip
    """Import a skill: a SKILL.md, a skill folder (zipped in memory) or a zip."""
    try:
        upload = load_upload(path)
    except BundleError as error:
        raise CliError(str(error)) from None
    params = {"requirements": ",".join(requirements) or None, "accept_proposed": "true" if accept_proposed else None}
    if via_s3:
        if requirements or accept_proposed:
            raise CliError("--requirements and --accept-proposed go with the API upload, not --s3")
        accepted = _submit_via_s3(session, upload, bucket, prefix, wait_timeout)
    else:
        try:
            accepted = session.call("POST", "/api/skills", data=upload.data, content_type=upload.content_type,
                                    params=params)  # fmt: skip
        except CliError as error:
            # the API saw the zip the folder was packed into: name what the user gave
            if upload.is_zip and error.message.startswith("zip is not a valid skill"):
                error.message = upload.label + error.message[len("zip"):]
            raise
    if not session.json_output:
        _echo_proposal(accepted)
    if not wait:
        session.show(
            accepted,
            lambda a: _echo_ok(
                f"import [bold]{a['import_id']}[/] started for [bold]{a.get('skill_id')}[/] (version {output.short(a.get('version'))})"
            ),
        )
        return
    _follow_import(session, accepted["import_id"], wait_timeout)


def _echo_proposal(accepted: dict[str, Any]) -> None:
    """Undeclared imports of the skill's scripts, and how to accept what is proposed for them."""
    undeclared = [e for e in accepted.get("undeclared_imports") or [] if not e.get("accepted")]
    if not undeclared:
        return
    shown = ", ".join(f"{e['import']} -> {e.get('distribution') or '(unknown)'}" for e in undeclared)
    click.echo(f"undeclared imports: {shown}", err=True)
    if accepted.get("proposed_requirements"):
        click.echo(f"proposed: {' '.join(accepted['proposed_requirements'])} (accept with --accept-proposed)", err=True)


def _submit_via_s3(session: Session, upload: Upload, bucket: str, prefix: str, wait_timeout: float) -> dict[str, Any]:
    """Parse locally (the same parser the pipeline runs), upload, then find the import it started."""
    from chalicelib.errors import InvalidSkill

    try:
        parsed = upload.parse()
    except InvalidSkill as error:
        raise CliError(_without_repeated_problems(error.message, error.problems), error.problems) from None
    name = "skill.zip" if upload.is_zip else "SKILL.md"
    folder = "" if prefix in ("", "/") else prefix.rstrip("/") + "/"
    # a fresh key per upload: re-sending the same content is a new import, not a redelivered event
    key = f"{folder}{parsed.skill_id}/{parsed.version[:16]}-{secrets.token_hex(4)}/{name}"
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        endpoint = os.environ.get("SKILLHARBOR_AWS_ENDPOINT_URL") or os.environ.get("AWS_ENDPOINT_URL") or None
        aws = boto3.session.Session(
            region_name=os.environ.get("SKILLHARBOR_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
        )
        if endpoint and aws.get_credentials() is None:
            # the local stack (moto) takes any credentials; a fresh shell has none
            aws = boto3.session.Session(
                aws_access_key_id="local", aws_secret_access_key="local", region_name=aws.region_name
            )
        client = aws.client("s3", endpoint_url=endpoint)
        client.put_object(Bucket=bucket, Key=key, Body=upload.data, ContentType=upload.content_type)
    except (BotoCoreError, ClientError) as error:
        raise CliError(f"upload to s3://{bucket}/{key} failed: {error}") from None
    if not session.json_output:
        output.stderr_console().print(f"uploaded to s3://{bucket}/{key}; waiting for the import to start…")
    deadline = time.monotonic() + wait_timeout
    while time.monotonic() < deadline:
        started = session.call("GET", "/api/imports", params={"source": f"s3://{bucket}/{key}"}).get("imports") or []
        if started:  # also an upload refused at once (its folder is mapped to no owner): following it says why
            return {"skill_id": parsed.skill_id, "version": parsed.version, "import_id": started[0]["import_id"], "s3_key": key}
        time.sleep(POLL_SECONDS)
    raise CliError(
        f"no import started for s3://{bucket}/{key} within {wait_timeout:.0f}s; is the inbox poller running?"
    )


def _follow_import(session: Session, import_id: str, wait_timeout: float) -> None:
    """Poll the import (and its skill record for per-step detail) until it ends, showing each step."""
    from rich.live import Live

    deadline = time.monotonic() + wait_timeout
    state: dict[str, Any] = {}
    skill: dict[str, Any] = {}

    def refresh() -> None:
        nonlocal state, skill
        state = session.call("GET", f"/api/imports/{import_id}")
        if state.get("skill_id"):
            params = {"version": state["version"]} if state.get("version") else None
            try:
                skill = session.client.get(f"/api/skills/{state['skill_id']}", params=params)
            except ApiError:
                skill = {}  # the record appears once parse has run

    refresh()
    if session.json_output:
        while state.get("status") not in IMPORT_END_STATES and time.monotonic() < deadline:
            time.sleep(POLL_SECONDS)
            refresh()
    else:
        console = output.stdout_console()
        with Live(_import_view(import_id, state, skill), console=console, refresh_per_second=8) as live:
            while state.get("status") not in IMPORT_END_STATES and time.monotonic() < deadline:
                time.sleep(POLL_SECONDS)
                refresh()
                live.update(_import_view(import_id, state, skill))
        if not console.is_terminal:
            console.line()  # Live leaves its last frame without a newline when not on a terminal
    _finish_import(session, import_id, state, skill, wait_timeout)


def _step_rows(state: dict[str, Any], skill: dict[str, Any]) -> list[tuple[str, Any, str]]:
    steps = skill.get("steps") or {}
    status = state.get("status")
    current = state.get("current_step")
    failed = state.get("failed_step")
    rows = []
    for name in IMPORT_STEPS:
        record = steps.get(name) or {}
        if record.get("status"):
            label = record["status"]
        elif name == failed:
            label = "failed"
        elif name == current and status == "RUNNING":
            label = "running"
        elif status in IMPORT_END_STATES:
            label = "skipped"
        else:
            label = "pending"
        detail = {k: v for k, v in record.items() if k not in ("status", "at")}
        rows.append((name, output.styled(label), output.compact(detail, 90)))
    return rows


def _import_view(import_id: str, state: dict[str, Any], skill: dict[str, Any]) -> Any:
    from rich.console import Group
    from rich.spinner import Spinner

    grid = output.table(
        ("step", "status", "detail"),
        _step_rows(state, skill),
        title=f"import {import_id}  {state.get('skill_id') or ''} {output.short(state.get('version'))}",
    )
    if state.get("status") in IMPORT_END_STATES:
        return grid
    return Group(grid, Spinner("dots", text=f" {state.get('status', 'RUNNING').lower()}…"))


def _finish_import(
    session: Session, import_id: str, state: dict[str, Any], skill: dict[str, Any], wait_timeout: float
) -> None:
    status = state.get("status")
    skill_status = skill.get("status")
    if session.json_output:
        output.print_json(dict(state, skill_status=skill_status))
    if status not in IMPORT_END_STATES:
        raise CliError(
            f"import {import_id} still {status} after {wait_timeout:.0f}s; "
            f"check later with: skillharbor imports show {import_id}"
        )
    if not session.json_output:
        _print_warnings([str(w) for w in (skill.get("scan") or {}).get("warnings") or []])
    if status == "SUCCEEDED":
        if not session.json_output:
            _echo_ok(f"[green]✓[/] {state.get('skill_id')} {output.short(state.get('version'))} is ready")
        return
    if status == "PENDING_APPROVAL":
        if not session.json_output:
            console = output.stdout_console()
            console.print(
                f"[yellow]…[/] {state.get('skill_id')} {output.short(state.get('version'))} is waiting for "
                "package approvals (an admin approves; the import then resumes by itself):"
            )
            check = (skill.get("steps") or {}).get("check") or {}
            for item in check.get("unapproved") or [{"package": name} for name in state.get("waiting_for") or []]:
                console.print(f"  - {output.compact(item)}" + (f": {item['why']}" if item.get("why") else ""))
            console.print("  approve with: skillharbor packages approve PACKAGE SPECIFIER --min-maturity LEVEL")
        return
    error = skill.get("error") or {}
    reason = state.get("reason") or error.get("reason") or "unknown reason"
    first, *rest = str(reason).splitlines() or [""]
    problems = [str(p) for p in error.get("problems") or []] or [
        line.lstrip("- ").strip() for line in rest if line.strip()
    ]
    outcome = "blocked" if skill_status == "blocked" else "failed"
    raise CliError(
        f"import {import_id} {outcome} at step {state.get('failed_step') or error.get('step') or '?'}: {first}",
        problems,
    )


@cli.group()
def imports() -> None:
    """Follow imports started elsewhere (e.g. an S3 upload)."""


@imports.command("show")
@click.argument("import_id")
@click.option("--follow", is_flag=True, help="Keep watching until the import ends.")
@click.option("--wait-timeout", type=float, default=900.0, show_default=True)
@json_option
@pass_session
def imports_show(session: Session, import_id: str, follow: bool, wait_timeout: float) -> None:
    """One import: its status, current or failed step and reason."""
    if follow:
        _follow_import(session, import_id, wait_timeout)
        return
    record = session.call("GET", f"/api/imports/{import_id}")
    session.show(
        record,
        lambda r: output.stdout_console().print(
            output.key_values(
                (k, r.get(k))
                for k in ("import_id", "status", "skill_id", "version", "current_step", "failed_step", "reason")
            )
        ),
    )
    if record.get("status") == "FAILED":
        raise CliError(f"import {import_id} failed at step {record.get('failed_step')}: {record.get('reason')}")


# --- skills -------------------------------------------------------------------------


@cli.group()
def skills() -> None:
    """Read the skill registry."""


@skills.command("list")
@json_option
@pass_session
def skills_list(session: Session) -> None:
    """Every skill (latest version) with its status."""
    body = session.call("GET", "/api/skills")

    def render(data: dict[str, Any]) -> None:
        rows = [
            (
                s.get("skill_id"),
                s.get("name"),
                output.short(s.get("version")),
                output.styled(s.get("status")),
                s.get("skill_type"),
                s.get("status_reason") or "",
                s.get("updated_at"),
            )
            for s in data.get("skills", [])
        ]
        if not rows:
            _echo_ok("no skills yet: import one with  skillharbor import examples/hello")
            return
        output.stdout_console().print(
            output.table(("skill", "name", "version", "status", "type", "reason", "updated"), rows)
        )

    session.show(body, render)


@skills.command("show")
@click.argument("skill_id")
@click.option("--version", "version", help="A specific version (default: the latest).")
@json_option
@pass_session
def skills_show(session: Session, skill_id: str, version: str | None) -> None:
    """One skill: status, requirements, pinned packages, pipeline steps, error."""
    record = session.call("GET", f"/api/skills/{skill_id}", params={"version": version})
    session.show(record, _render_skill)


def _render_skill(record: dict[str, Any]) -> None:
    console = output.stdout_console()
    error = record.get("error") or {}
    console.print(
        output.key_values(
            [
                ("skill", record.get("skill_id")),
                ("name", record.get("name")),
                ("description", record.get("description")),
                ("version", record.get("version")),
                ("status", record.get("status")),
                ("reason", record.get("status_reason")),
                ("type", record.get("skill_type")),
                ("active version", record.get("active_version")),  # the newest ready one: what runs use
                ("owner", record.get("owner")),
                ("code", (record.get("code_choice") or {}).get("reason")),
                ("scripts", ", ".join(record.get("scripts") or [])),
                ("requirements", ", ".join(record.get("requirements") or [])),
                ("undeclared", ", ".join(f"{e['import']} -> {e.get('distribution') or '?'}"
                                         for e in record.get("undeclared_imports") or [] if not e.get("accepted"))),
                ("sandbox lacks", ", ".join(f"{n['kind']} {n['spec']}" for n in record.get("sandbox_needs") or []
                                            if n.get("status") != "available")),
                ("image", record.get("image_tag")),
                ("import", record.get("import_id")),
                ("updated", record.get("updated_at")),
            ]
        )
    )
    pins = record.get("pins") or []
    if pins:
        console.print(
            output.table(
                ("package", "version", "direct", "sha256"),
                [
                    (
                        p.get("name"),
                        p.get("version"),
                        "yes" if p.get("direct") else "",
                        output.short(p.get("sha256"), 16),
                    )
                    for p in pins
                ],
                title="pinned packages",
            )
        )
    steps = record.get("steps") or {}
    if steps:
        console.print(
            output.table(
                ("step", "status", "at", "detail"),
                [
                    (
                        name,
                        output.styled((steps.get(name) or {}).get("status")),
                        (steps.get(name) or {}).get("at"),
                        output.compact(
                            {k: v for k, v in (steps.get(name) or {}).items() if k not in ("status", "at")}, 90
                        ),
                    )
                    for name in list(IMPORT_STEPS) + sorted(set(steps) - set(IMPORT_STEPS))
                    if name in steps
                ],
                title="pipeline",
            )
        )
    if error:
        console.print(
            f"[red]error at {error.get('step')}:[/] {str(error.get('reason', '')).splitlines()[0] if error.get('reason') else ''}"
        )
        for problem in error.get("problems") or []:
            console.print(f"  - {problem}")


@skills.command("sbom")
@click.argument("skill_id")
@click.option(
    "-o", "--output", "output_file", type=click.Path(dir_okay=False, writable=True), help="Write to this file."
)
@json_option
@pass_session
def skills_sbom(session: Session, skill_id: str, output_file: str | None) -> None:
    """The skill's CycloneDX SBOM (JSON)."""
    sbom = session.call("GET", f"/api/skills/{skill_id}/sbom")
    text = json.dumps(sbom, indent=2, sort_keys=True)
    if output_file:
        with open(output_file, "w", encoding="utf-8") as handle:
            handle.write(text + "\n")
        if not session.json_output:
            _echo_ok(f"wrote {output_file} ({len(sbom.get('components') or [])} components)")
    else:
        click.echo(text)


@skills.command("approve-code")
@click.argument("skill_id")
@click.option("--reason", required=True, help="Why the flagged code is acceptable.")
@click.option("--version", "version", help="The version reviewed (default: the latest).")
@json_option
@pass_session
def skills_approve_code(session: Session, skill_id: str, reason: str, version: str | None) -> None:
    """Accept the HIGH code findings of one skill version (a blocked import resumes)."""
    body = {"reason": reason, **({"version": version} if version else {})}
    approval = session.call("POST", f"/api/skills/{skill_id}/approve-code", json_body=body)

    def render(a: dict[str, Any]) -> None:
        _echo_ok(f"approved the code of {skill_id} {output.short(a.get('version'))}")
        if a.get("resumed_import"):
            _echo_ok(
                f"  resumed import {a['resumed_import']}  (follow: skillharbor imports show {a['resumed_import']} --follow)"
            )

    session.show(approval, render)


# --- run ----------------------------------------------------------------------------


def parse_inputs(pairs: tuple[str, ...], input_json: str | None) -> dict[str, Any]:
    """``--input-json`` first, then each ``key=value`` (a value is JSON when it parses, else a string)."""
    inputs: dict[str, Any] = {}
    if input_json:
        try:
            loaded = json.loads(input_json)
        except ValueError as error:
            raise click.BadParameter(f"not valid JSON: {error}", param_hint="--input-json") from None
        if not isinstance(loaded, dict):
            raise click.BadParameter("must be a JSON object", param_hint="--input-json")
        inputs.update(loaded)
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"{pair!r} is not key=value", param_hint="--input")
        try:
            inputs[key.strip()] = json.loads(raw)
        except ValueError:
            inputs[key.strip()] = raw
    return inputs


@cli.command("run")
@click.argument("skill_id")
@click.option(
    "--input",
    "-i",
    "pairs",
    multiple=True,
    metavar="KEY=VALUE",
    help="An input; VALUE is JSON if it parses. Repeatable.",
)
@click.option("--input-json", help="All inputs as one JSON object (then --input values override).")
@click.option("--agent", "agent_id", help="Run as this agent (admin keys; agent keys always run as themselves).")
@click.option("--timeout-seconds", type=float, help="Wall-clock limit for this run.")
@json_option
@pass_session
def run_skill(
    session: Session,
    skill_id: str,
    pairs: tuple[str, ...],
    input_json: str | None,
    agent_id: str | None,
    timeout_seconds: float | None,
) -> None:
    """Run a ready skill in a fresh isolated container and print its result."""
    body: dict[str, Any] = {"inputs": parse_inputs(pairs, input_json)}
    if agent_id:
        body["agent_id"] = agent_id
    if timeout_seconds is not None:
        body["timeout_seconds"] = timeout_seconds
    result = session.call("POST", f"/api/skills/{skill_id}/execute", json_body=body)
    while result.get("result_url") and "success" not in result:  # 202: a long run; its result comes at the URL
        time.sleep(POLL_SECONDS)
        result = session.call("GET", result["result_url"])
    session.show(result, _render_run)
    if not result.get("success"):
        if result.get("traceback") and not session.json_output:
            output.stderr_console().print(result["traceback"], markup=False, highlight=False)
        raise CliError(
            f"{skill_id} did not succeed: {result.get('status')}"
            + (f": {result['error']}" if result.get("error") else "")
        )


def _render_run(result: dict[str, Any]) -> None:
    console = output.stdout_console()
    value = result.get("output")
    if result.get("success"):
        click.echo(value if isinstance(value, str) else json.dumps(value, indent=2, default=str))
    for stream in ("stdout", "stderr"):
        if result.get(stream):
            console.print(f"[dim]--- {stream} ---[/]")
            console.print(result[stream], markup=False, highlight=False)
    packages = ", ".join(
        f"{p.get('name')}=={p.get('version')}" if isinstance(p, dict) else str(p) for p in result.get("packages") or []
    )
    output.stderr_console().print(
        f"[dim]{result.get('status')} in {result.get('duration_ms')} ms · image {result.get('image_tag') or 'base'}"
        + (f" · {packages}" if packages else "")
        + "[/]"
    )


# --- packages -----------------------------------------------------------------------


@cli.group()
def packages() -> None:
    """Package governance: check, request, approve, ban, rules, requests."""


def _split_pin(package: str, version: str | None) -> tuple[str, str | None]:
    if version is None and "==" in package:
        name, _, version = package.partition("==")
        return name.strip(), version.strip()
    return package, version


@packages.command("check")
@click.argument("package")
@click.argument("version", required=False)
@click.option("--agent", "agent_id", help="The agent to check for (agent keys: themselves).")
@json_option
@pass_session
def packages_check(session: Session, package: str, version: str | None, agent_id: str | None) -> None:
    """May AGENT use PACKAGE VERSION (or PACKAGE==VERSION)? Exit 1 when denied."""
    package, version = _split_pin(package, version)
    if not version:
        raise click.UsageError("give the exact version: PACKAGE VERSION or PACKAGE==VERSION")
    decision = session.call(
        "GET", "/api/packages/check", params={"agent_id": agent_id, "package_name": package, "version": version}
    )
    if decision.get("allowed") or session.json_output:
        session.show(decision, lambda d: _echo_ok(f"[green]allowed[/]: {d.get('reason')}"))
    if not decision.get("allowed"):
        raise CliError(f"denied: {decision.get('reason')}")


@packages.command("request")
@click.argument("package")
@click.argument("version", required=False)
@click.option("--reason", required=True, help="Why the skill needs it (shown to the admin).")
@click.option("--agent", "agent_id", help="The agent the request is for.")
@click.option("--skill", "skill_id", help="The skill that needs it.")
@json_option
@pass_session
def packages_request(
    session: Session, package: str, version: str | None, reason: str, agent_id: str | None, skill_id: str | None
) -> None:
    """Ask an admin to approve PACKAGE VERSION."""
    package, version = _split_pin(package, version)
    if not version:
        raise click.UsageError("give the version to approve: PACKAGE VERSION or PACKAGE==VERSION")
    body = {"package_name": package, "version": version, "reason": reason}
    if agent_id:
        body["agent_id"] = agent_id
    if skill_id:
        body["skill_id"] = skill_id
    created = session.call("POST", "/api/packages/request", json_body=body)
    session.show(created, lambda c: _echo_ok(f"request [bold]{c.get('request_id')}[/] is {c.get('status')}"))


@packages.command("approve")
@click.argument("package")
@click.argument("specifier", required=False, default="")
@click.option(
    "--min-maturity",
    "--maturity",
    "min_maturity",
    required=True,
    type=click.Choice(MATURITIES, case_sensitive=False),
    help="The lowest maturity allowed to use it.",
)
@json_option
@pass_session
def packages_approve(session: Session, package: str, specifier: str, min_maturity: str) -> None:
    """Approve PACKAGE versions in SPECIFIER (e.g. '==2.2.2', '>=1.26,<2'; empty = all versions)."""
    package, pinned = _split_pin(package, None)
    if pinned and not specifier:
        specifier = f"=={pinned}"
    body = {"package_name": package, "version": specifier, "min_maturity": min_maturity.upper()}
    approved = session.call("POST", "/api/packages/approve", json_body=body)

    def render(data: dict[str, Any]) -> None:
        rule = data.get("approval") or data.get("rule") or data
        _echo_ok(
            f"approved {rule.get('package', package)} {rule.get('specifier', specifier) or '(all versions)'} "
            f"for {rule.get('min_maturity', min_maturity.upper())} and above · rule {rule.get('rule_id', '?')}"
        )
        for request_id in data.get("fulfilled_requests") or []:
            _echo_ok(f"  fulfilled request {request_id}")
        for import_id in data.get("resumed_imports") or []:
            _echo_ok(f"  resumed import {import_id}  (follow: skillharbor imports show {import_id} --follow)")

    session.show(approved, render)


@packages.command("ban")
@click.argument("package")
@click.argument("specifier", required=False, default="")
@click.option("--reason", required=True, help="Shown to everyone the ban stops.")
@json_option
@pass_session
def packages_ban(session: Session, package: str, specifier: str, reason: str) -> None:
    """Ban PACKAGE versions in SPECIFIER (empty = every version) for every agent."""
    package, pinned = _split_pin(package, None)
    if pinned and not specifier:
        specifier = f"=={pinned}"
    body: dict[str, Any] = {"package_name": package, "reason": reason}
    if specifier:
        body["version"] = specifier
    banned = session.call("POST", "/api/packages/ban", json_body=body)

    def render(data: dict[str, Any]) -> None:
        rule = data.get("ban") or data.get("rule") or data
        _echo_ok(
            f"banned {rule.get('package', package)} {rule.get('specifier', specifier) or '(all versions)'} "
            f"· rule {rule.get('rule_id', '?')}"
        )

    session.show(banned, render)


@packages.command("rules")
@click.option("--package", help="Only this package's rules.")
@click.option("--all", "include_revoked", is_flag=True, help="Include revoked rules.")
@json_option
@pass_session
def packages_rules(session: Session, package: str | None, include_revoked: bool) -> None:
    """Approvals and bans."""
    params = {"package_name": package, "include_revoked": "true" if include_revoked else None}
    body = session.call("GET", "/api/packages/rules", params=params)

    def render(data: Any) -> None:
        rules = data.get("rules", []) if isinstance(data, dict) else data
        rows = [
            (
                r.get("rule_id"),
                output.styled("ban" if r.get("kind") == "ban" else "approval"),
                r.get("package"),
                r.get("specifier") or "(all)",
                r.get("min_maturity") or "",
                r.get("reason") or "",
                "revoked" if r.get("revoked_at") else "active",
            )
            for r in rules
        ]
        if not rows:
            _echo_ok("no rules")
            return
        output.stdout_console().print(
            output.table(("rule", "kind", "package", "versions", "min maturity", "reason", "state"), rows)
        )

    session.show(body, render)


@packages.command("requests")
@click.option(
    "--status", type=click.Choice(("pending", "approved", "rejected"), case_sensitive=False), help="Only these."
)
@json_option
@pass_session
def packages_requests(session: Session, status: str | None) -> None:
    """Approval requests."""
    body = session.call("GET", "/api/packages/requests", params={"status": status.lower() if status else None})

    def render(data: Any) -> None:
        requests = data.get("requests", []) if isinstance(data, dict) else data
        rows = [
            (
                r.get("request_id"),
                r.get("package"),
                r.get("version"),
                output.styled(r.get("status")),
                r.get("agent_id") or "",
                r.get("skill_id") or "",
                r.get("requested_by"),
                (r.get("reason") or "") + (f" ({r.get('status')}: {r['decision_reason']})" if r.get("decision_reason") else ""),
            )
            for r in requests
        ]
        if not rows:
            _echo_ok("no requests")
            return
        output.stdout_console().print(
            output.table(("request", "package", "version", "status", "agent", "skill", "by", "reason"), rows)
        )

    session.show(body, render)


@packages.command("reject")
@click.argument("request_id")
@click.option("--reason", default="", help="Why (the requester sees it).")
@json_option
@pass_session
def packages_reject(session: Session, request_id: str, reason: str) -> None:
    """Turn down the pending approval request REQUEST_ID."""
    rejected = session.call("POST", f"/api/packages/requests/{request_id}/reject", json_body={"reason": reason})
    session.show(rejected, lambda r: _echo_ok(f"request [bold]{r.get('request_id')}[/] for {r.get('package')} is {r.get('status')}"))


@packages.command("revoke")
@click.argument("rule_id")
@json_option
@pass_session
def packages_revoke(session: Session, rule_id: str) -> None:
    """Revoke an approval or a ban."""
    body = session.call("DELETE", f"/api/packages/rules/{rule_id}")
    session.show(body, lambda _b: _echo_ok(f"revoked {rule_id}"))


@packages.command("ignore")
@click.argument("advisory_id")
@click.option("--reason", required=True, help="Why the advisory does not apply.")
@click.option("--expires", "expires_at", required=True, help="ISO 8601 date or time the ignore ends, e.g. 2026-03-01.")
@click.option("--package", help="Only for this package (default: every package the advisory names).")
@json_option
@pass_session
def packages_ignore(session: Session, advisory_id: str, reason: str, expires_at: str, package: str | None) -> None:
    """Accept one vulnerability advisory (id or alias) until a date."""
    body = {"advisory_id": advisory_id, "reason": reason, "expires_at": expires_at}
    if package:
        body["package"] = package
    ignore = session.call("POST", "/api/packages/ignores", json_body=body)
    session.show(
        ignore,
        lambda i: _echo_ok(
            f"ignoring {i.get('advisory_id')}{' for ' + i['package'] if i.get('package') else ''} until {i.get('expires_at')}"
        ),
    )


@packages.command("ignores")
@json_option
@pass_session
def packages_ignores(session: Session) -> None:
    """Advisory ignores (expired ones included)."""
    body = session.call("GET", "/api/packages/ignores")

    def render(data: dict[str, Any]) -> None:
        rows = [
            (
                i.get("advisory_id"),
                i.get("package") or "(all)",
                i.get("expires_at"),
                i.get("created_by"),
                i.get("reason"),
            )
            for i in data.get("ignores", [])
        ]
        if not rows:
            _echo_ok("no ignores")
            return
        output.stdout_console().print(output.table(("advisory", "package", "expires", "by", "reason"), rows))

    session.show(body, render)


@packages.command("scan")
@click.argument("requirements", nargs=-1, required=True)
@json_option
@pass_session
def packages_scan(session: Session, requirements: tuple[str, ...]) -> None:
    """Resolve and scan REQUIREMENTS (PEP 508) without importing a skill. Exit 1 unless it passes."""
    report = session.call("POST", "/api/packages/scan", json_body={"requirements": list(requirements)})
    status = str(report.get("scan_status") or report.get("status") or "")

    def render(r: dict[str, Any]) -> None:
        console = output.stdout_console()
        pins = r.get("pins") or []
        if pins:
            console.print(
                output.table(
                    ("package", "version", "direct"),
                    [(p.get("name"), p.get("version"), "yes" if p.get("direct") else "") for p in pins],
                )
            )
        if status == "passed":
            console.print(f"[green]passed[/]: {len(pins)} package(s), no known vulnerabilities, no typosquats")
        _print_warnings([str(w) for w in r.get("warnings") or []])

    session.show(report, render)
    if status != "passed":
        raise CliError(f"scan result: {status or 'failed'}", [str(reason) for reason in report.get("reasons") or []])


# --- agents and keys ----------------------------------------------------------------


@cli.group()
def agents() -> None:
    """Agents and their maturity."""


def _render_agent(agent: dict[str, Any]) -> None:
    output.stdout_console().print(
        output.key_values(
            (k, agent.get(k)) for k in ("agent_id", "maturity", "key_id", "created_at", "updated_at", "version")
        )
    )
    if agent.get("api_key"):
        output.stdout_console().print(f"api key (shown once): [bold]{agent['api_key']}[/]", soft_wrap=True)


@agents.command("create")
@click.argument("agent_id")
@click.option("--maturity", type=click.Choice(MATURITIES, case_sensitive=False), default="STUDENT", show_default=True)
@json_option
@pass_session
def agents_create(session: Session, agent_id: str, maturity: str) -> None:
    """Register an agent and issue its API key."""
    agent = session.call("POST", "/api/agents", json_body={"agent_id": agent_id, "maturity": maturity.upper()})
    session.show(agent, _render_agent)


@agents.command("show")
@click.argument("agent_id")
@json_option
@pass_session
def agents_show(session: Session, agent_id: str) -> None:
    """One agent and its maturity."""
    session.show(session.call("GET", f"/api/agents/{agent_id}"), _render_agent)


@agents.command("set-maturity")
@click.argument("agent_id")
@click.argument("maturity", type=click.Choice(MATURITIES, case_sensitive=False))
@json_option
@pass_session
def agents_set_maturity(session: Session, agent_id: str, maturity: str) -> None:
    """Move an agent up or down the maturity ladder."""
    agent = session.call("PATCH", f"/api/agents/{agent_id}", json_body={"maturity": maturity.upper()})
    session.show(agent, _render_agent)


@cli.group()
def keys() -> None:
    """Admin and publisher API keys (agent keys come with their agent)."""


@keys.command("create")
@click.option("--role", type=click.Choice(("admin", "publisher", "agent"), case_sensitive=False), required=True)
@click.option("--name", required=True, help="Who or what holds the key.")
@click.option("--team", help="Publisher keys: publish for this team (its keys share the team's skills).")
@click.option("--agent", "agent_id", help="Agent keys: a further key for this existing agent.")
@json_option
@pass_session
def keys_create(session: Session, role: str, name: str, team: str | None, agent_id: str | None) -> None:
    """Issue a key (the secret is shown once)."""
    body = {"role": role.lower(), "name": name, **({"team": team} if team else {}), **({"agent_id": agent_id} if agent_id else {})}
    issued = session.call("POST", "/api/keys", json_body=body)
    session.show(
        issued,
        lambda k: (
            output.stdout_console().print(output.key_values((f, k.get(f)) for f in ("key_id", "role", "name", "agent_id", "owner")
                                                            if k.get(f))),  # fmt: skip
            output.stdout_console().print(f"api key (shown once): [bold]{k.get('api_key')}[/]", soft_wrap=True),
        ),
    )


@keys.command("revoke")
@click.argument("key_id")
@json_option
@pass_session
def keys_revoke(session: Session, key_id: str) -> None:
    """Revoke a key: it stops working at once.

    ``bootstrap-admin`` retires SKILLHARBOR_ADMIN_KEY (allowed once another admin key exists).
    """
    body = session.call("DELETE", f"/api/keys/{key_id}")
    session.show(body, lambda _b: _echo_ok(f"revoked key {key_id}"))


# --- audit --------------------------------------------------------------------------


@cli.command()
@click.option("--agent", "agent_id", help="Only events of this agent.")
@click.option("--skill", "skill_id", help="Only events of this skill.")
@click.option("--action", help="Only this action, e.g. package.check, skill.execute, package.approve.")
@click.option("--since", help="ISO 8601 time, e.g. 2026-01-31T00:00:00Z.")
@click.option("--limit", type=click.IntRange(1, 1000), help="At most this many events (newest first).")
@click.option("--next-token", help="Continue from a previous page.")
@click.option("--network", is_flag=True, help="Only connections through runs' egress proxies (network.connect), as a table of hosts.")
@json_option
@pass_session
def audit(
    session: Session,
    agent_id: str | None,
    skill_id: str | None,
    action: str | None,
    since: str | None,
    limit: int | None,
    next_token: str | None,
    network: bool = False,
) -> None:
    """The audit trail as a table, newest first."""
    if network and action and action != "network.connect":
        raise click.UsageError("--network lists network.connect events; leave out --action")
    params = {
        "agent_id": agent_id,
        "skill_id": skill_id,
        "action": "network.connect" if network else action,
        "since": since,
        "limit": limit,
        "next_token": next_token,
    }
    page = session.call("GET", "/api/packages/audit", params=params)

    def render_network(data: dict[str, Any]) -> None:
        rows = []
        for e in data.get("events", []):
            d = e.get("detail") or {}
            rows.append((e.get("time"), e.get("skill_id") or "", e.get("agent_id") or "", f"{d.get('host')}:{d.get('port')}",
                         output.styled(e.get("outcome")), str(d.get("bytes_sent", 0)), str(d.get("bytes_received", 0)),
                         output.compact(d.get("reason"), 50)))  # fmt: skip
        if not rows:
            _echo_ok("no connections")
        else:
            output.stdout_console().print(
                output.table(("time", "skill", "agent", "host", "outcome", "sent", "received", "reason"), rows)
            )
        if data.get("next_token"):
            output.stdout_console().print(f"more: --next-token {data['next_token']}", soft_wrap=True)

    def render(data: dict[str, Any]) -> None:
        rows = [
            (
                e.get("time"),
                e.get("action"),
                e.get("actor"),
                e.get("agent_id") or "",
                e.get("skill_id") or "",
                e.get("package") or "",
                output.styled(e.get("outcome")),
                output.compact(e.get("detail"), 70),
            )
            for e in data.get("events", [])
        ]
        if not rows:
            _echo_ok("no events")
        else:
            output.stdout_console().print(
                output.table(("time", "action", "actor", "agent", "skill", "package", "outcome", "detail"), rows)
            )
        if data.get("next_token"):
            output.stdout_console().print(f"more: --next-token {data['next_token']}", soft_wrap=True)

    session.show(page, render_network if network else render)


# --- images -------------------------------------------------------------------------


@cli.group()
def images() -> None:
    """Sandbox images built for skills."""


@images.command("list")
@json_option
@pass_session
def images_list(session: Session) -> None:
    """Every image with its packages and last use."""
    body = session.call("GET", "/api/images")

    def render(data: Any) -> None:
        items = data.get("images", []) if isinstance(data, dict) else data
        rows = [
            (
                i.get("tag") or i.get("image_tag"),
                len(i.get("pins") or []),
                ", ".join(i.get("skill_ids") or []),
                i.get("last_used") or "",
                _size(i.get("size") or i.get("size_bytes")),
            )
            for i in items
        ]
        if not rows:
            _echo_ok("no images")
            return
        output.stdout_console().print(output.table(("image", "packages", "skills", "last used", "size"), rows))

    session.show(body, render)


def _size(value: Any) -> str:
    if not isinstance(value, (int, float)) or isinstance(value, bool):
        return ""
    return f"{value / (1024 * 1024):.1f} MiB"


@images.command("status")
@click.argument("skill_id")
@json_option
@pass_session
def images_status(session: Session, skill_id: str) -> None:
    """Where a skill's packages and image stand."""
    body = session.call("GET", f"/api/packages/{skill_id}/status")
    session.show(body, lambda b: output.stdout_console().print(output.key_values(sorted(b.items()))))


@images.command("cleanup")
@click.option("--dry-run", is_flag=True, help="Only list what would be removed.")
@click.option("--ttl-days", type=float, help="Remove images unused for this many days (default: IMAGE_TTL_DAYS).")
@json_option
@pass_session
def images_cleanup(session: Session, dry_run: bool, ttl_days: float | None) -> None:
    """Remove images no skill used recently."""
    body: dict[str, Any] = {"dry_run": dry_run}
    if ttl_days is not None:
        body["ttl_days"] = ttl_days
    result = session.call("POST", "/api/images/cleanup", json_body=body)

    def render(data: dict[str, Any]) -> None:
        removed = data.get("removed") or data.get("images") or []
        verb = "would remove" if dry_run else "removed"
        _echo_ok(f"{verb} {len(removed)} image(s)")
        for item in removed:
            _echo_ok(f"  {item.get('image_tag') if isinstance(item, dict) else item}")

    session.show(result, render)


@images.command("remove")
@click.argument("skill_id")
@json_option
@pass_session
def images_remove(session: Session, skill_id: str) -> None:
    """Remove a skill's image now (it is rebuilt from the same pins when needed)."""
    body = session.call("DELETE", f"/api/packages/{skill_id}")
    session.show(body, lambda b: _echo_ok(f"removed {b.get('image_tag')}"))


# --- entry point --------------------------------------------------------------------


from chalicelib.cli import admin as _admin  # noqa: E402,F401  (registers skills owner/transfer, inbox, keys list/rotate)
from chalicelib.cli import isolation as _isolation  # noqa: E402,F401  (registers isolation list/add/remove)
from chalicelib.cli import exec_cmd as _exec_cmd  # noqa: E402,F401  (registers exec and workspaces)
from chalicelib.cli.scan import scan_command  # noqa: E402  (offline, no stack)

cli.add_command(scan_command)


def main(argv: list[str] | None = None) -> NoReturn:
    """The console script ``skillharbor``."""
    cli.main(args=argv, prog_name="skillharbor")
    raise SystemExit(0)  # cli.main exits itself; this keeps the signature honest


if __name__ == "__main__":
    main()

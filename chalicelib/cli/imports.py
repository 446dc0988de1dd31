"""``skillharbor import`` (through the API or the S3 inbox) and ``skillharbor imports``: start and follow imports."""

from __future__ import annotations

import os
import secrets
import time
from typing import Any

import click

from chalicelib.cli import output
from chalicelib.cli.bundle import BundleError, Upload, load_upload
from chalicelib.cli.client import ApiError
from chalicelib.cli.common import (
    IMPORT_END_STATES,
    IMPORT_STEPS,
    POLL_SECONDS,
    CliError,
    Session,
    echo_ok,
    json_option,
    pass_session,
    print_warnings,
    without_repeated_problems,
)  # fmt: skip


@click.command("import")
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
            lambda a: echo_ok(
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
        raise CliError(without_repeated_problems(error.message, error.problems), error.problems) from None
    name = "skill.zip" if upload.is_zip else "SKILL.md"
    folder = "" if prefix in ("", "/") else prefix.rstrip("/") + "/"
    # a fresh key per upload: re-sending the same content is a new import, not a redelivered event
    key = f"{folder}{parsed.skill_id}/{parsed.version[:16]}-{secrets.token_hex(4)}/{name}"
    from chalicelib.errors import TransientError
    from chalicelib.store.blobs import upload_with_own_credentials

    endpoint = os.environ.get("SKILLHARBOR_AWS_ENDPOINT_URL") or os.environ.get("AWS_ENDPOINT_URL") or None
    region = os.environ.get("SKILLHARBOR_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1"
    try:
        upload_with_own_credentials(bucket, key, upload.data, upload.content_type, region=region, endpoint_url=endpoint)
    except TransientError as error:
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
        print_warnings([str(w) for w in (skill.get("scan") or {}).get("warnings") or []])
    if status == "SUCCEEDED":
        if not session.json_output:
            echo_ok(f"[green]✓[/] {state.get('skill_id')} {output.short(state.get('version'))} is ready")
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


@click.group()
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

"""``skillharbor exec`` (a command in a skill's sandbox, files in and out) and ``skillharbor workspaces``.

Registered on the ``skillharbor`` group by ``chalicelib.cli.main``.
"""

from __future__ import annotations

import base64
import sys
import time
import urllib.parse
from pathlib import Path, PurePosixPath
from typing import Any

import click

from chalicelib.cli import output
from chalicelib.cli.common import POLL_SECONDS, CliError, Session, echo_ok, json_option, pass_session


def _file_option(value: str) -> tuple[Path, str]:
    """``LOCAL`` or ``LOCAL=NAME``: the local file and its path in the workspace (default: its base name)."""
    local, sep, name = value.partition("=")
    path = Path(local).expanduser()
    if not path.is_file():
        raise click.BadParameter(f"{local!r} is not a readable file", param_hint="--file")
    return path, name if sep else path.name


def _safe_target(out_dir: Path, name: str) -> Path:
    """Where a collected file goes under ``out_dir``; refuses names that would leave it."""
    pure = PurePosixPath(name)
    if pure.is_absolute() or any(part in ("", "..") for part in pure.parts):
        raise CliError(f"the API returned a file name that leaves the output directory: {name!r}")
    return out_dir.joinpath(*pure.parts)


def _env_pairs(pairs: tuple[str, ...]) -> dict[str, str]:
    env = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{pair!r} is not NAME=VALUE", param_hint="--env")
        env[key] = value
    return env


@click.command("exec", context_settings={"ignore_unknown_options": True})
@click.argument("skill_id")
@click.argument("argv", nargs=-1, required=True, type=click.UNPROCESSED)
@click.option("--file", "-f", "files", multiple=True, metavar="LOCAL[=NAME]", help="Send a file into the workspace. Repeatable.")
@click.option("--collect", "-c", "collect", multiple=True, metavar="GLOB", help="Bring back workspace files matching. Repeatable.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=Path("."), show_default=True,
              help="Where collected files are written.")  # fmt: skip
@click.option("--workspace", "-w", "workspace_id", help="Run in this workspace (its files persist between commands).")
@click.option("--stdin", "stdin_file", type=click.File("r"), help="Feed this file (or - for stdin) to the command.")
@click.option("--env", "-e", "env_pairs", multiple=True, metavar="NAME=VALUE", help="An allowed environment variable.")
@click.option("--agent", "agent_id", help="Run as this agent (admin keys).")
@click.option("--timeout-seconds", type=float, help="Wall-clock limit for the command.")
@json_option
@pass_session
def exec_command(session: Session, skill_id: str, argv: tuple[str, ...], files: tuple[str, ...], collect: tuple[str, ...],
                 out_dir: Path, workspace_id: str | None, stdin_file: Any, env_pairs: tuple[str, ...], agent_id: str | None,
                 timeout_seconds: float | None) -> None:  # fmt: skip
    """Run ARGV in SKILL_ID's sandbox: the skill's folder at /skill, the workspace as the working directory.

    \b
      skillharbor exec pdf -f form.pdf -c 'out/*' -- python scripts/fill.py form.pdf values.json out/filled.pdf

    The command's stdout and stderr are printed as they were; the exit code is the command's own
    (1 when the API refused the request or the run did not end normally)."""
    argv = argv[1:] if argv[:1] == ("--",) else argv
    body: dict[str, Any] = {"argv": list(argv), "collect": list(collect)}
    if files:
        body["files"] = {name: base64.b64encode(path.read_bytes()).decode("ascii") for path, name in map(_file_option, files)}
    for key, value in (("workspace_id", workspace_id), ("agent_id", agent_id), ("timeout_seconds", timeout_seconds)):
        if value is not None:
            body[key] = value
    if stdin_file is not None:
        body["stdin"] = stdin_file.read()
    if env_pairs:
        body["env"] = _env_pairs(env_pairs)
    result = session.call("POST", f"/api/skills/{skill_id}/commands", json_body=body)
    while result.get("result_url") and "success" not in result:  # 202: still running; its outcome comes at the URL
        time.sleep(POLL_SECONDS)
        result = session.call("GET", result["result_url"])
    written = []
    for name, encoded in (result.get("files") or {}).items():
        target = _safe_target(out_dir, name)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(base64.b64decode(encoded))
        written.append(str(target))
    if session.json_output:
        output.print_json({**result, "files": {name: "(written)" for name in result.get("files") or {}}, "written": written})
    else:
        sys.stdout.write(result.get("stdout") or "")
        sys.stderr.write(result.get("stderr") or "")
        for path in written:
            output.stderr_console().print(f"[dim]collected {path}[/]")
        output.stderr_console().print(f"[dim]{result.get('status')} (exit {result.get('exit_code')}) in {result.get('duration_ms')} ms[/]")
    if result.get("status") in ("ok", "output_truncated"):
        return
    if result.get("status") == "exit_nonzero" and isinstance(result.get("exit_code"), int) and result["exit_code"] > 0:
        if result.get("error") and not session.json_output:
            click.echo(f"error: {result['error']}", err=True)
        raise SystemExit(result["exit_code"])
    raise CliError(f"the command did not finish normally: {result.get('status')}" + (f": {result['error']}" if result.get("error") else ""))


# --- workspaces ----------------------------------------------------------------------------


@click.group()
def workspaces() -> None:
    """Workspaces: files kept between command runs of one agent."""


def _quoted(path: str) -> str:
    return urllib.parse.quote(path, safe="")


def _render_workspace(ws: dict[str, Any]) -> None:
    output.stdout_console().print(output.key_values((k, ws.get(k)) for k in ("workspace_id", "skill_id", "agent_id", "size_mb",
                                                                             "expires_at", "used_bytes")))  # fmt: skip
    for item in ws.get("files") or []:
        echo_ok(f"  {item['path']}  {item['size']} bytes")


@workspaces.command("create")
@click.argument("skill_id")
@click.option("--ttl-seconds", type=int, help="Lifetime (default: the platform's, 1 hour).")
@click.option("--size-mb", type=int, help="Size cap (default: the platform's, 16 MiB).")
@click.option("--agent", "agent_id", help="For this agent (admin keys).")
@json_option
@pass_session
def workspaces_create(session: Session, skill_id: str, ttl_seconds: int | None, size_mb: int | None, agent_id: str | None) -> None:
    """Create a workspace for SKILL_ID; prints its id."""
    body: dict[str, Any] = {"skill_id": skill_id}
    for key, value in (("ttl_seconds", ttl_seconds), ("size_mb", size_mb), ("agent_id", agent_id)):
        if value is not None:
            body[key] = value
    session.show(session.call("POST", "/api/workspaces", json_body=body), lambda ws: click.echo(ws["workspace_id"]))


@workspaces.command("show")
@click.argument("workspace_id")
@json_option
@pass_session
def workspaces_show(session: Session, workspace_id: str) -> None:
    """A workspace and its files."""
    session.show(session.call("GET", f"/api/workspaces/{workspace_id}"), _render_workspace)


@workspaces.command("put")
@click.argument("workspace_id")
@click.argument("local", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("name", required=False)
@json_option
@pass_session
def workspaces_put(session: Session, workspace_id: str, local: Path, name: str | None) -> None:
    """Upload LOCAL into the workspace (as NAME, default its base name)."""
    target = name or local.name
    answer = session.call("PUT", f"/api/workspaces/{workspace_id}/files/{_quoted(target)}", data=local.read_bytes(),
                          content_type="application/octet-stream")  # fmt: skip
    session.show(answer, lambda a: echo_ok(f"stored {a['path']} ({a['size']} bytes)"))


@workspaces.command("get")
@click.argument("workspace_id")
@click.argument("name")
@click.option("--out", "out_file", type=click.Path(dir_okay=False, path_type=Path), help="Write here (default: NAME's base name).")
@pass_session
def workspaces_get(session: Session, workspace_id: str, name: str, out_file: Path | None) -> None:
    """Download one file of the workspace."""
    data = session.call("GET", f"/api/workspaces/{workspace_id}/files/{_quoted(name)}", raw=True)
    target = out_file or Path(PurePosixPath(name).name)
    target.write_bytes(data)
    echo_ok(f"wrote {target} ({len(data)} bytes)")


@workspaces.command("rm")
@click.argument("workspace_id")
@json_option
@pass_session
def workspaces_rm(session: Session, workspace_id: str) -> None:
    """Delete a workspace and its files."""
    session.show(session.call("DELETE", f"/api/workspaces/{workspace_id}"), lambda a: echo_ok(f"deleted {a['workspace_id']}"))

"""``skillharbor run``: run a ready skill's function with inputs."""

from __future__ import annotations

import json
import time
from typing import Any

import click

from chalicelib.cli import output
from chalicelib.cli.common import POLL_SECONDS, CliError, Session, json_option, pass_session


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


@click.command("run")
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

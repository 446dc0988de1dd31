"""``skillharbor runners``: the runner fleet (admin)."""

from __future__ import annotations

from typing import Any

import click

from chalicelib.cli import output
from chalicelib.cli.common import Session, echo_ok, json_option, pass_session


@click.group(invoke_without_command=True)
@json_option
@click.pass_context
def runners(ctx: click.Context) -> None:
    """Runner workers: where they take runs, how much room they have, what they hold (same as `runners list`)."""
    if ctx.invoked_subcommand is None:
        ctx.invoke(runners_list)


@runners.command("list")
@json_option
@pass_session
def runners_list(session: Session) -> None:
    """Every worker seen in the last hour: up, gone (3 heartbeats missed) or stopped."""
    body = session.call("GET", "/api/runners")

    def render(data: dict[str, Any]) -> None:
        members = data.get("runners") or []
        if not members:
            echo_ok("no runner worker has registered")
            return
        rows = [
            (m.get("worker_id"), output.styled(m.get("state")),
             m.get("endpoint") or "queue only", ",".join(m.get("runtimes") or []), f"{m.get('free_slots', 0)}/{m.get('slots', 0)}",
             len(m.get("images") or []), len(m.get("warm") or []), f"{m.get('age_seconds', 0):g}s ago")
            for m in members
        ]  # fmt: skip
        console = output.stdout_console()
        console.print(output.table(("worker", "state", "direct endpoint", "runtimes", "free slots", "images", "warm pools", "seen"),
                                   rows, title=f"{data.get('up', 0)} up, {data.get('free_slots', 0)}/{data.get('slots', 0)} slots free"))  # fmt: skip

    session.show(body, render)

"""``skillharbor audit``: the audit trail, filtered and paged."""

from __future__ import annotations

from typing import Any

import click

from chalicelib.cli import output
from chalicelib.cli.common import Session, echo_ok, json_option, pass_session


@click.command()
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
            echo_ok("no connections")
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
            echo_ok("no events")
        else:
            output.stdout_console().print(
                output.table(("time", "action", "actor", "agent", "skill", "package", "outcome", "detail"), rows)
            )
        if data.get("next_token"):
            output.stdout_console().print(f"more: --next-token {data['next_token']}", soft_wrap=True)

    session.show(page, render_network if network else render)

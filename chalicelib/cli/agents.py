"""``skillharbor agents``: agents and their maturity."""

from __future__ import annotations

from typing import Any

import click

from chalicelib.cli import output
from chalicelib.cli.common import MATURITIES, Session, json_option, pass_session


@click.group()
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

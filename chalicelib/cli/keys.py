"""``skillharbor keys``: issue and revoke API keys (list and rotate: cli/admin.py)."""

from __future__ import annotations

import click

from chalicelib.cli import output
from chalicelib.cli.common import Session, echo_ok, json_option, pass_session


@click.group()
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
    """Revoke a key: it stops working at once (on other API instances within SKILLHARBOR_RECORD_CACHE_SECONDS).

    ``bootstrap-admin`` retires SKILLHARBOR_ADMIN_KEY (allowed once another admin key exists).
    """
    body = session.call("DELETE", f"/api/keys/{key_id}")
    session.show(body, lambda _b: echo_ok(f"revoked key {key_id}"))

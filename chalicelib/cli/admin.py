"""Admin commands for who may publish and with which key: skill owners, inbox folders, key lists and rotation.

Adds ``owner`` and ``transfer`` to ``skills``, ``list`` and ``rotate`` to ``keys``; ``inbox`` is a group of its own.
"""

from __future__ import annotations

from typing import Any

import click

from chalicelib.cli import output
from chalicelib.cli.common import CliError, Session, echo_ok, json_option, pass_session
from chalicelib.cli.keys import keys
from chalicelib.cli.skills import skills
from chalicelib.governance.keys import key_id_of

# --- skill owners ---------------------------------------------------------------------------


def _render_owner(owner: dict[str, Any]) -> None:
    output.stdout_console().print(output.key_values(
        (k, owner.get(k)) for k in ("skill_id", "owner", "previous_owner", "via", "assigned_by", "assigned_at")
        if k in owner
    ))  # fmt: skip


@skills.command("owner")
@click.argument("skill_id")
@json_option
@pass_session
def skills_owner(session: Session, skill_id: str) -> None:
    """Who owns SKILL_ID: only that owner (or an admin) may publish its versions. Admin keys."""
    session.show(session.call("GET", f"/api/skills/{skill_id}/owner"), _render_owner)


@skills.command("transfer")
@click.argument("skill_id")
@click.option("--to", "owner", required=True, metavar="OWNER", help="team:<name> or key:<key id>.")
@click.option("--expected", "expected_owner", metavar="OWNER", help="Only if the current owner is still this one.")
@json_option
@pass_session
def skills_transfer(session: Session, skill_id: str, owner: str, expected_owner: str | None) -> None:
    """Give SKILL_ID (also one not published yet) to another owner. Admin keys."""
    body = {"owner": owner, **({"expected_owner": expected_owner} if expected_owner else {})}
    session.show(session.call("PUT", f"/api/skills/{skill_id}/owner", json_body=body), _render_owner)


def _render_rescan(outcome: dict[str, Any]) -> None:
    console = output.stdout_console()
    console.print(output.key_values([("basis", outcome.get("basis")), ("rescanned", outcome.get("rescanned")),
                                     ("remaining", outcome.get("remaining"))]))  # fmt: skip
    for action in ("blocked", "flagged", "unavailable"):
        for entry in outcome.get(action) or []:
            console.print(f"{action}: {entry}")


@skills.command("rescan")
@click.option("--force", is_flag=True, help="Every ready version, not only those scanned under another rule pack or advisory database.")
@click.option("--limit", type=click.IntRange(1, 10000), default=None, help="At most this many versions now (the schedule does the rest).")
@json_option
@pass_session
def skills_rescan(session: Session, force: bool, limit: int | None) -> None:
    """Scan ready skill versions again now: a new CRITICAL blocks a version, a new vulnerability or HIGH flags it. Admin keys."""
    body: dict[str, Any] = {"force": force, **({"limit": limit} if limit else {})}
    session.show(session.call("POST", "/api/scans/rescan", json_body=body), _render_rescan)


# --- the inbox's folders ---------------------------------------------------------------------


@click.group()
def inbox() -> None:
    """Which owner each folder of the S3 inbox publishes as (uploads elsewhere are refused)."""


@inbox.command("list")
@json_option
@pass_session
def inbox_list(session: Session) -> None:
    """Every mapped inbox folder and its owner."""

    def render(data: dict[str, Any]) -> None:
        rows = [(m.get("prefix"), m.get("owner_id"), m.get("mapped_by"), m.get("mapped_at")) for m in data.get("prefixes", [])]
        if not rows:
            echo_ok("no inbox folder is mapped: every upload is refused (map one with: skillharbor inbox map PREFIX --owner OWNER)")
            return
        output.stdout_console().print(output.table(("prefix", "owner", "by", "at"), rows))

    session.show(session.call("GET", "/api/inbox/prefixes"), render)


@inbox.command("map")
@click.argument("prefix")
@click.option("--owner", required=True, metavar="OWNER", help="team:<name> or key:<key id>.")
@json_option
@pass_session
def inbox_map(session: Session, prefix: str, owner: str) -> None:
    """Let uploads under PREFIX (a folder ending in '/', or '/' for the whole bucket) publish as OWNER."""
    mapping = session.call("PUT", "/api/inbox/prefixes", json_body={"prefix": prefix, "owner": owner})
    session.show(mapping, lambda m: echo_ok(
        f"uploads under [bold]{m.get('prefix')}[/] publish as {m.get('owner_id')}"
        + (f" (was {m['previous_owner']})" if m.get("previous_owner") else "")
    ))  # fmt: skip


@inbox.command("unmap")
@click.argument("prefix")
@json_option
@pass_session
def inbox_unmap(session: Session, prefix: str) -> None:
    """Refuse uploads under PREFIX from now on."""
    removed = session.call("DELETE", "/api/inbox/prefixes", params={"prefix": prefix})
    session.show(removed, lambda m: echo_ok(f"unmapped {m.get('prefix')} (it published as {m.get('owner_id')})"))


# --- keys -------------------------------------------------------------------------------------


@keys.command("list")
@click.option("--agent", "agent_id", help="Only this agent's keys.")
@click.option("--active", is_flag=True, help="Leave out revoked keys.")
@json_option
@pass_session
def keys_list(session: Session, agent_id: str | None, active: bool) -> None:
    """Keys (never their secrets): admin keys see all, an agent key its agent's."""
    body = session.call("GET", "/api/keys", params={"agent_id": agent_id, "include_revoked": "false" if active else None})

    def render(data: dict[str, Any]) -> None:
        rows = [(k.get("key_id"), k.get("role"), k.get("name"), k.get("agent_id") or k.get("owner") or "", k.get("created_at"),
                 output.styled("revoked" if k.get("revoked_at") else "active")) for k in data.get("keys", [])]  # fmt: skip
        if not rows:
            echo_ok("no keys")
            return
        output.stdout_console().print(output.table(("key", "role", "name", "agent / owner", "created", "state"), rows))

    session.show(body, render)


def _key_to_rotate(session: Session, key_id: str | None, agent_id: str | None) -> str:
    if key_id and agent_id:
        raise click.UsageError("give KEY_ID or --agent, not both")
    if key_id:
        return key_id
    if agent_id:
        active = session.call("GET", "/api/keys", params={"agent_id": agent_id, "include_revoked": "false"}).get("keys", [])
        if len(active) != 1:
            found = ", ".join(k["key_id"] for k in active) or "none"
            raise CliError(f"agent {agent_id} has {len(active)} active keys ({found}): name the one to rotate"
                           if active else f"agent {agent_id} has no active key: issue one with "
                           f"skillharbor keys create --role agent --agent {agent_id} --name NAME")  # fmt: skip
        return str(active[0]["key_id"])
    own = key_id_of(session.key or "")
    if own is None:
        raise CliError("the key in use is not an issued key (the bootstrap admin key cannot be rotated: "
                       "retire it with: skillharbor keys revoke bootstrap-admin); name KEY_ID or --agent")  # fmt: skip
    return own


@keys.command("rotate")
@click.argument("key_id", required=False)
@click.option("--agent", "agent_id", help="Rotate this agent's (only active) key.")
@json_option
@pass_session
def keys_rotate(session: Session, key_id: str | None, agent_id: str | None) -> None:
    """Replace a key (default: the one in use) with a new secret; the old key stops working at once
    (on other API instances within SKILLHARBOR_RECORD_CACHE_SECONDS).

    Any key may rotate itself; admin keys may rotate any key.
    """
    target = _key_to_rotate(session, key_id, agent_id)
    rotated = session.call("POST", f"/api/keys/{target}/rotate")

    def render(k: dict[str, Any]) -> None:
        console = output.stdout_console()
        console.print(output.key_values((f, k.get(f)) for f in ("key_id", "role", "name", "agent_id", "replaces")))
        console.print(f"api key (shown once): [bold]{k.get('api_key')}[/]", soft_wrap=True)
        if target == key_id_of(session.key or ""):
            console.print("the key you used is now revoked: set SKILLHARBOR_API_KEY to the new one")

    session.show(rotated, render)

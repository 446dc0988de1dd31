"""``skillharbor images``: managed images, their status, cleanup and removal."""

from __future__ import annotations

from typing import Any

import click

from chalicelib.cli import output
from chalicelib.cli.common import Session, echo_ok, json_option, pass_session


@click.group()
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
            echo_ok("no images")
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
        echo_ok(f"{verb} {len(removed)} image(s)")
        for item in removed:
            echo_ok(f"  {item.get('image_tag') if isinstance(item, dict) else item}")

    session.show(result, render)


@images.command("remove")
@click.argument("skill_id")
@json_option
@pass_session
def images_remove(session: Session, skill_id: str) -> None:
    """Remove a skill's image now (it is rebuilt from the same pins when needed)."""
    body = session.call("DELETE", f"/api/packages/{skill_id}")
    session.show(body, lambda b: echo_ok(f"removed {b.get('image_tag')}"))

"""``skillharbor skills``: read the skill registry, its SBOMs, and approve flagged code."""

from __future__ import annotations

import json
from typing import Any

import click

from chalicelib.cli import output
from chalicelib.cli.common import IMPORT_STEPS, Session, echo_ok, json_option, pass_session


@click.group()
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
            echo_ok("no skills yet: import one with  skillharbor import examples/hello")
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
            echo_ok(f"wrote {output_file} ({len(sbom.get('components') or [])} components)")
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
        echo_ok(f"approved the code of {skill_id} {output.short(a.get('version'))}")
        if a.get("resumed_import"):
            echo_ok(
                f"  resumed import {a['resumed_import']}  (follow: skillharbor imports show {a['resumed_import']} --follow)"
            )

    session.show(approval, render)

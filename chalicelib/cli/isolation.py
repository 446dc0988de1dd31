"""Admin commands for the isolation rules: which container runtime (runc, or gVisor's runsc) runs a skill.

Registered on the ``skillharbor`` group by ``chalicelib.cli.main``.
"""

from __future__ import annotations

from typing import Any

import click

from chalicelib.cli import output
from chalicelib.cli.common import MATURITIES, Session, echo_ok, json_option, pass_session

FINDINGS = ("high_code", "code", "vulnerability", "behaviour")


def _describe(match: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in match.items()) or "every run"


@click.group()
def isolation() -> None:
    """Isolation rules: the runtime of matching runs (the most specific rule wins; no rule: runc)."""


@isolation.command("list")
@json_option
@pass_session
def isolation_list(session: Session) -> None:
    """Every isolation rule. Admin keys."""

    def render(data: dict[str, Any]) -> None:
        rows = [(r.get("rule_id"), _describe(r.get("match") or {}), r.get("runtime"), r.get("created_by"), r.get("created_at"))
                for r in data.get("rules", [])]  # fmt: skip
        if not rows:
            echo_ok("no isolation rules: every run uses runc (add one with: skillharbor isolation add --maturity STUDENT --runtime runsc)")
            return
        output.stdout_console().print(output.table(("rule", "match", "runtime", "by", "at"), rows))

    session.show(session.call("GET", "/api/isolation/rules"), render)


@isolation.command("add")
@click.option("--runtime", required=True, type=click.Choice(("runsc", "runc")), help="runsc (gVisor) or runc.")
@click.option("--maturity", type=click.Choice(MATURITIES, case_sensitive=False), help="Agents of this maturity.")
@click.option("--skill", "skill_id", metavar="SKILL_ID", help="This skill (an override beats every broader rule).")
@click.option("--finding", type=click.Choice(FINDINGS), help="Skill versions whose scan found this.")
@click.option("--egress/--no-egress", default=None, help="Skills that do (or do not) reach outside hosts.")
@click.option("--note", help="Why (kept with the rule).")
@json_option
@pass_session
def isolation_add(session: Session, runtime: str, maturity: str | None, skill_id: str | None, finding: str | None,
                  egress: bool | None, note: str | None) -> None:  # fmt: skip
    """Run every run that matches under RUNTIME. Admin keys."""
    match = {k: v for k, v in {"maturity": maturity.upper() if maturity else None, "skill_id": skill_id,
                               "finding": finding, "egress": egress}.items() if v is not None}  # fmt: skip
    body = {"match": match, "runtime": runtime, **({"note": note} if note else {})}
    rule = session.call("POST", "/api/isolation/rules", json_body=body)
    session.show(rule, lambda r: echo_ok(f"{r.get('rule_id')}: {_describe(r.get('match') or {})} → {r.get('runtime')}"))


@isolation.command("remove")
@click.argument("rule_id")
@json_option
@pass_session
def isolation_remove(session: Session, rule_id: str) -> None:
    """Remove the isolation rule RULE_ID. Admin keys."""
    removed = session.call("DELETE", f"/api/isolation/rules/{rule_id}")
    session.show(removed, lambda r: echo_ok(f"removed {rule_id} ({_describe((r.get('removed') or {}).get('match') or {})})"))

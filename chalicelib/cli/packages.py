"""``skillharbor packages``: permission checks, approval requests, approvals, bans, advisory ignores and scans."""

from __future__ import annotations

from typing import Any

import click

from chalicelib.cli import output
from chalicelib.cli.common import MATURITIES, CliError, Session, echo_ok, json_option, pass_session, print_warnings


@click.group()
def packages() -> None:
    """Package governance: check, request, approve, ban, rules, requests."""


def _split_pin(package: str, version: str | None) -> tuple[str, str | None]:
    if version is None and "==" in package:
        name, _, version = package.partition("==")
        return name.strip(), version.strip()
    return package, version


@packages.command("check")
@click.argument("package")
@click.argument("version", required=False)
@click.option("--agent", "agent_id", help="The agent to check for (agent keys: themselves).")
@json_option
@pass_session
def packages_check(session: Session, package: str, version: str | None, agent_id: str | None) -> None:
    """May AGENT use PACKAGE VERSION (or PACKAGE==VERSION)? Exit 1 when denied."""
    package, version = _split_pin(package, version)
    if not version:
        raise click.UsageError("give the exact version: PACKAGE VERSION or PACKAGE==VERSION")
    decision = session.call(
        "GET", "/api/packages/check", params={"agent_id": agent_id, "package_name": package, "version": version}
    )
    if decision.get("allowed") or session.json_output:
        session.show(decision, lambda d: echo_ok(f"[green]allowed[/]: {d.get('reason')}"))
    if not decision.get("allowed"):
        raise CliError(f"denied: {decision.get('reason')}")


@packages.command("request")
@click.argument("package")
@click.argument("version", required=False)
@click.option("--reason", required=True, help="Why the skill needs it (shown to the admin).")
@click.option("--agent", "agent_id", help="The agent the request is for.")
@click.option("--skill", "skill_id", help="The skill that needs it.")
@json_option
@pass_session
def packages_request(
    session: Session, package: str, version: str | None, reason: str, agent_id: str | None, skill_id: str | None
) -> None:
    """Ask an admin to approve PACKAGE VERSION."""
    package, version = _split_pin(package, version)
    if not version:
        raise click.UsageError("give the version to approve: PACKAGE VERSION or PACKAGE==VERSION")
    body = {"package_name": package, "version": version, "reason": reason}
    if agent_id:
        body["agent_id"] = agent_id
    if skill_id:
        body["skill_id"] = skill_id
    created = session.call("POST", "/api/packages/request", json_body=body)
    session.show(created, lambda c: echo_ok(f"request [bold]{c.get('request_id')}[/] is {c.get('status')}"))


@packages.command("approve")
@click.argument("package")
@click.argument("specifier", required=False, default="")
@click.option(
    "--min-maturity",
    "--maturity",
    "min_maturity",
    required=True,
    type=click.Choice(MATURITIES, case_sensitive=False),
    help="The lowest maturity allowed to use it.",
)
@json_option
@pass_session
def packages_approve(session: Session, package: str, specifier: str, min_maturity: str) -> None:
    """Approve PACKAGE versions in SPECIFIER (e.g. '==2.2.2', '>=1.26,<2'; empty = all versions)."""
    package, pinned = _split_pin(package, None)
    if pinned and not specifier:
        specifier = f"=={pinned}"
    body = {"package_name": package, "version": specifier, "min_maturity": min_maturity.upper()}
    approved = session.call("POST", "/api/packages/approve", json_body=body)

    def render(data: dict[str, Any]) -> None:
        rule = data.get("approval") or data.get("rule") or data
        echo_ok(
            f"approved {rule.get('package', package)} {rule.get('specifier', specifier) or '(all versions)'} "
            f"for {rule.get('min_maturity', min_maturity.upper())} and above · rule {rule.get('rule_id', '?')}"
        )
        for request_id in data.get("fulfilled_requests") or []:
            echo_ok(f"  fulfilled request {request_id}")
        for import_id in data.get("resumed_imports") or []:
            echo_ok(f"  resumed import {import_id}  (follow: skillharbor imports show {import_id} --follow)")

    session.show(approved, render)


@packages.command("ban")
@click.argument("package")
@click.argument("specifier", required=False, default="")
@click.option("--reason", required=True, help="Shown to everyone the ban stops.")
@json_option
@pass_session
def packages_ban(session: Session, package: str, specifier: str, reason: str) -> None:
    """Ban PACKAGE versions in SPECIFIER (empty = every version) for every agent."""
    package, pinned = _split_pin(package, None)
    if pinned and not specifier:
        specifier = f"=={pinned}"
    body: dict[str, Any] = {"package_name": package, "reason": reason}
    if specifier:
        body["version"] = specifier
    banned = session.call("POST", "/api/packages/ban", json_body=body)

    def render(data: dict[str, Any]) -> None:
        rule = data.get("ban") or data.get("rule") or data
        echo_ok(
            f"banned {rule.get('package', package)} {rule.get('specifier', specifier) or '(all versions)'} "
            f"· rule {rule.get('rule_id', '?')}"
        )

    session.show(banned, render)


@packages.command("rules")
@click.option("--package", help="Only this package's rules.")
@click.option("--all", "include_revoked", is_flag=True, help="Include revoked rules.")
@json_option
@pass_session
def packages_rules(session: Session, package: str | None, include_revoked: bool) -> None:
    """Approvals and bans."""
    params = {"package_name": package, "include_revoked": "true" if include_revoked else None}
    body = session.call("GET", "/api/packages/rules", params=params)

    def render(data: Any) -> None:
        rules = data.get("rules", []) if isinstance(data, dict) else data
        rows = [
            (
                r.get("rule_id"),
                output.styled("ban" if r.get("kind") == "ban" else "approval"),
                r.get("package"),
                r.get("specifier") or "(all)",
                r.get("min_maturity") or "",
                r.get("reason") or "",
                "revoked" if r.get("revoked_at") else "active",
            )
            for r in rules
        ]
        if not rows:
            echo_ok("no rules")
            return
        output.stdout_console().print(
            output.table(("rule", "kind", "package", "versions", "min maturity", "reason", "state"), rows)
        )

    session.show(body, render)


@packages.command("requests")
@click.option(
    "--status", type=click.Choice(("pending", "approved", "rejected"), case_sensitive=False), help="Only these."
)
@json_option
@pass_session
def packages_requests(session: Session, status: str | None) -> None:
    """Approval requests."""
    body = session.call("GET", "/api/packages/requests", params={"status": status.lower() if status else None})

    def render(data: Any) -> None:
        requests = data.get("requests", []) if isinstance(data, dict) else data
        rows = [
            (
                r.get("request_id"),
                r.get("package"),
                r.get("version"),
                output.styled(r.get("status")),
                r.get("agent_id") or "",
                r.get("skill_id") or "",
                r.get("requested_by"),
                (r.get("reason") or "") + (f" ({r.get('status')}: {r['decision_reason']})" if r.get("decision_reason") else ""),
            )
            for r in requests
        ]
        if not rows:
            echo_ok("no requests")
            return
        output.stdout_console().print(
            output.table(("request", "package", "version", "status", "agent", "skill", "by", "reason"), rows)
        )

    session.show(body, render)


@packages.command("reject")
@click.argument("request_id")
@click.option("--reason", default="", help="Why (the requester sees it).")
@json_option
@pass_session
def packages_reject(session: Session, request_id: str, reason: str) -> None:
    """Turn down the pending approval request REQUEST_ID."""
    rejected = session.call("POST", f"/api/packages/requests/{request_id}/reject", json_body={"reason": reason})
    session.show(rejected, lambda r: echo_ok(f"request [bold]{r.get('request_id')}[/] for {r.get('package')} is {r.get('status')}"))


@packages.command("revoke")
@click.argument("rule_id")
@json_option
@pass_session
def packages_revoke(session: Session, rule_id: str) -> None:
    """Revoke an approval or a ban."""
    body = session.call("DELETE", f"/api/packages/rules/{rule_id}")
    session.show(body, lambda _b: echo_ok(f"revoked {rule_id}"))


@packages.command("ignore")
@click.argument("advisory_id")
@click.option("--reason", required=True, help="Why the advisory does not apply.")
@click.option("--expires", "expires_at", required=True, help="ISO 8601 date or time the ignore ends, e.g. 2026-03-01.")
@click.option("--package", help="Only for this package (default: every package the advisory names).")
@json_option
@pass_session
def packages_ignore(session: Session, advisory_id: str, reason: str, expires_at: str, package: str | None) -> None:
    """Accept one vulnerability advisory (id or alias) until a date."""
    body = {"advisory_id": advisory_id, "reason": reason, "expires_at": expires_at}
    if package:
        body["package"] = package
    ignore = session.call("POST", "/api/packages/ignores", json_body=body)
    session.show(
        ignore,
        lambda i: echo_ok(
            f"ignoring {i.get('advisory_id')}{' for ' + i['package'] if i.get('package') else ''} until {i.get('expires_at')}"
        ),
    )


@packages.command("ignores")
@json_option
@pass_session
def packages_ignores(session: Session) -> None:
    """Advisory ignores (expired ones included)."""
    body = session.call("GET", "/api/packages/ignores")

    def render(data: dict[str, Any]) -> None:
        rows = [
            (
                i.get("advisory_id"),
                i.get("package") or "(all)",
                i.get("expires_at"),
                i.get("created_by"),
                i.get("reason"),
            )
            for i in data.get("ignores", [])
        ]
        if not rows:
            echo_ok("no ignores")
            return
        output.stdout_console().print(output.table(("advisory", "package", "expires", "by", "reason"), rows))

    session.show(body, render)


@packages.command("scan")
@click.argument("requirements", nargs=-1, required=True)
@json_option
@pass_session
def packages_scan(session: Session, requirements: tuple[str, ...]) -> None:
    """Resolve and scan REQUIREMENTS (PEP 508) without importing a skill. Exit 1 unless it passes."""
    report = session.call("POST", "/api/packages/scan", json_body={"requirements": list(requirements)})
    status = str(report.get("scan_status") or report.get("status") or "")

    def render(r: dict[str, Any]) -> None:
        console = output.stdout_console()
        pins = r.get("pins") or []
        if pins:
            console.print(
                output.table(
                    ("package", "version", "direct"),
                    [(p.get("name"), p.get("version"), "yes" if p.get("direct") else "") for p in pins],
                )
            )
        if status == "passed":
            console.print(f"[green]passed[/]: {len(pins)} package(s), no known vulnerabilities, no typosquats")
        print_warnings([str(w) for w in r.get("warnings") or []])

    session.show(report, render)
    if status != "passed":
        raise CliError(f"scan result: {status or 'failed'}", [str(reason) for reason in report.get("reasons") or []])

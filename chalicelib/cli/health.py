"""``skillharbor health``: is every part of the stack reachable?"""

from __future__ import annotations

from typing import Any

import click

from chalicelib.cli import output
from chalicelib.cli.client import ApiError
from chalicelib.cli.common import CliError, Session, error_from_api, json_option, pass_session, print_warnings


@click.command()
@json_option
@pass_session
def health(session: Session) -> None:
    """Is every part of the stack reachable? (no key needed)"""
    try:
        report = session.client.get("/api/health")
    except ApiError as error:
        if not isinstance(error.body, dict) or "status" not in error.body:
            raise error_from_api(error) from None
        report = error.body
    session.show(report, _render_health)
    if report.get("status") != "ok":
        raise CliError(
            f"the stack is {report.get('status', 'unhealthy')}",
            [
                f"{name}: {part.get('error')}"
                for name, part in (report.get("parts") or {}).items()
                if not part.get("ok")
            ],
        )


def _render_health(report: dict[str, Any]) -> None:
    console = output.stdout_console()
    if "parts" not in report:  # the answer to a key that is not an admin's, or to none
        console.print(f"stack: {report.get('status')}")
        if report.get("detail"):
            output.stderr_console().print(f"[dim]{report['detail']}[/]")
        return
    rows = [
        (name, output.styled("ok" if part.get("ok") else "failed"), part.get("error") or "")
        for name, part in sorted((report.get("parts") or {}).items())
    ]
    console.print(output.table(("part", "state", "error"), rows, title=f"stack: {report.get('status')}"))
    database = report.get("advisory_db") or {}
    if database.get("ok"):
        console.print(f"advisory database: {database.get('source')}, {database.get('records')} records, "
                      f"as of {str(database.get('as_of'))[:10]} ({database.get('age_days')} days old)")  # fmt: skip
    elif database:
        console.print(f"advisory database: [red]unavailable[/]: {database.get('error')}")
    print_warnings([database["warning"]] if database.get("warning") else [])

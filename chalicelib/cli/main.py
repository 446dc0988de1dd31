"""``skillharbor``: import, inspect, govern and run skills from a terminal.

Every command talks to the HTTP API (``--url`` / ``SKILLHARBOR_URL``) with an
API key (``--key`` / ``SKILLHARBOR_API_KEY``, falling back to
``SKILLHARBOR_ADMIN_KEY``). ``--json`` (before or after the command) prints
the API's answer as JSON for scripts.

Exit codes: 0 ok; 1 the API said no (any 4xx/5xx), a permission check was
denied, or an import ended failed/blocked; 2 bad usage (click's own).
Errors are one line on stderr, ``error: <message>``, then the problems;
with ``--json`` the API's error body is also printed on stdout.
"""

from __future__ import annotations

import os
from typing import NoReturn

import click

from chalicelib.cli.admin import inbox  # also adds skills owner/transfer and keys list/rotate
from chalicelib.cli.agents import agents
from chalicelib.cli.audit import audit
from chalicelib.cli.client import DEFAULT_URL
from chalicelib.cli.common import CliError, Session, echo_ok, json_option, pass_session  # noqa: F401 (see below)
from chalicelib.cli.exec_cmd import exec_command, workspaces
from chalicelib.cli.health import health
from chalicelib.cli.images import images
from chalicelib.cli.imports import import_skill, imports
from chalicelib.cli.isolation import isolation
from chalicelib.cli.keys import keys
from chalicelib.cli.packages import packages
from chalicelib.cli.run import run_skill
from chalicelib.cli.runners import runners
from chalicelib.cli.scan import scan_command
from chalicelib.cli.skills import skills

# CliError, echo_ok (also as _echo_ok) and pass_session are re-exported: a command module that registers
# itself with ``@cli`` and is imported below the group's definition still finds them here
_echo_ok = echo_ok


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.option(
    "--url",
    envvar="SKILLHARBOR_URL",
    default=DEFAULT_URL,
    show_default=True,
    help="API base URL (env SKILLHARBOR_URL).",
)
@click.option("--key", help="API key (env SKILLHARBOR_API_KEY, else SKILLHARBOR_ADMIN_KEY).")
@click.option("--timeout", type=float, default=60.0, show_default=True, help="Seconds to wait for one HTTP answer.")
@json_option
@click.version_option("0.1.0", prog_name="skillharbor")
@click.pass_context
def cli(ctx: click.Context, url: str, key: str | None, timeout: float) -> None:
    """skillharbor: import community agent skills, govern their packages, run them safely."""
    session = ctx.ensure_object(Session)
    session.url = url
    session.key = key or os.environ.get("SKILLHARBOR_API_KEY") or os.environ.get("SKILLHARBOR_ADMIN_KEY") or None
    session.timeout = timeout


for command in (health, import_skill, imports, skills, run_skill, packages, agents, keys, audit, images, inbox, isolation,
                exec_command, workspaces, scan_command, runners):  # fmt: skip
    cli.add_command(command)


def main(argv: list[str] | None = None) -> NoReturn:
    """The console script ``skillharbor``."""
    cli.main(args=argv, prog_name="skillharbor")
    raise SystemExit(0)  # cli.main exits itself; this keeps the signature honest


if __name__ == "__main__":
    main()

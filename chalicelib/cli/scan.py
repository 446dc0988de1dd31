"""``skillharbor scan PATH``: the import's malicious-skill analysis, offline, on a folder, zip or SKILL.md.

No stack, no API key, no network: for skill authors' CI and registry operators. The findings are the
ones the import stores under ``scan.malice_findings`` (same rule pack, same walk over every file).
Exit code: 0 when no finding reaches ``--fail-on`` (default ``high``), 1 when one does, 2 on bad usage
or an unreadable path. This is the click command the full CLI lists; the console script runs ``scan``
through :mod:`chalicelib.cli.scan_run` without importing click, so start-up stays short.
"""

from __future__ import annotations

import click

from chalicelib.cli.scan_run import FORMATS, LEVELS, ScanUsageError, run


@click.command("scan", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("path", type=click.Path(exists=True, dir_okay=True, file_okay=True))
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True)
@click.option("--fail-on", type=click.Choice(LEVELS), default="high", show_default=True,
              help="exit 1 when a finding is at least this severe")  # fmt: skip
def scan_command(path: str, fmt: str, fail_on: str) -> None:
    """Scan a skill folder, .zip or SKILL.md for malicious content, offline."""
    try:
        code = run(path, fmt, fail_on)
    except ScanUsageError as exc:
        raise click.UsageError(str(exc)) from exc
    if code:
        raise SystemExit(code)

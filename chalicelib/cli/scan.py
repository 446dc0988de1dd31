"""``skillharbor scan PATH``: the import's malicious-skill analysis, offline, on a folder, zip or SKILL.md.

No stack, no API key, no network: for skill authors' CI and registry operators. The findings are the
ones the import stores under ``scan.malice_findings`` (same rule pack, same walk over every file).
Exit code: 0 when no finding reaches ``--fail-on`` (default ``high``), 1 when one does, 2 on bad usage
or an unreadable path. Heavy modules load only when the command runs, so start-up stays short.
"""

from __future__ import annotations

import json
from typing import Any

import click

LEVELS = ("low", "medium", "high", "critical")
_SARIF_LEVEL = {"CRITICAL": "error", "HIGH": "error", "MEDIUM": "warning", "LOW": "note"}


def _sarif(findings: list[Any], rules: tuple[Any, ...]) -> dict[str, Any]:
    used = {f.rule_id for f in findings}
    described = [
        {"id": r.id, "shortDescription": {"text": r.message}, "fullDescription": {"text": r.rationale},
         "help": {"text": r.fix}, "helpUri": r.references[0] if r.references else None,
         "properties": {"category": r.category, "severity": r.severity}}
        for r in rules if r.id in used
    ]  # fmt: skip
    described += [{"id": i, "shortDescription": {"text": next(f.message for f in findings if f.rule_id == i)}}
                  for i in sorted(used - {r.id for r in rules})]  # fmt: skip
    results = [
        {"ruleId": f.rule_id, "level": _SARIF_LEVEL[f.severity], "message": {"text": f"{f.message}: {f.matched}"},
         "locations": [{"physicalLocation": {"artifactLocation": {"uri": f.file}, "region": {"startLine": f.line}}}],
         "properties": {"severity": f.severity, "category": f.category, "fix": f.fix}}
        for f in findings
    ]  # fmt: skip
    tool = {"driver": {"name": "skillharbor-scan", "rules": described}}
    return {"version": "2.1.0", "$schema": "https://json.schemastore.org/sarif-2.1.0.json",
            "runs": [{"tool": tool, "results": results}]}  # fmt: skip


@click.command("scan", context_settings={"help_option_names": ["-h", "--help"]})
@click.argument("path", type=click.Path(exists=True, dir_okay=True, file_okay=True))
@click.option("--format", "fmt", type=click.Choice(["text", "json", "sarif"]), default="text", show_default=True)
@click.option("--fail-on", type=click.Choice(LEVELS), default="high", show_default=True,
              help="exit 1 when a finding is at least this severe")  # fmt: skip
def scan_command(path: str, fmt: str, fail_on: str) -> None:
    """Scan a skill folder, .zip or SKILL.md for malicious content, offline."""
    from chalicelib.scanning.malice import load_rules, scan_path

    try:
        findings = scan_path(path)
    except (OSError, ValueError) as exc:
        raise click.UsageError(f"cannot scan {path}: {exc}") from exc
    worst = max((LEVELS.index(f.severity.lower()) for f in findings), default=-1)
    failed = worst >= LEVELS.index(fail_on)
    if fmt == "json":
        verdict = "malicious" if worst == 3 else "needs_approval" if worst == 2 else "passed"
        click.echo(json.dumps({"path": path, "verdict": verdict, "findings": [f.to_dict() for f in findings]}, indent=2))
    elif fmt == "sarif":
        click.echo(json.dumps(_sarif(findings, load_rules()), indent=2))
    else:
        for f in findings:
            via = f" (decoded x{f.decoded})" if f.decoded else ""
            click.echo(f"{f.severity:<8} {f.file}:{f.line} {f.rule_id} {f.message}{via}\n         {f.matched}\n         fix: {f.fix}")
        counts = {s: sum(f.severity == s for f in findings) for s in ("CRITICAL", "HIGH", "MEDIUM", "LOW")}
        click.echo(f"{len(findings)} finding(s): " + ", ".join(f"{n} {s}" for s, n in counts.items() if n) if findings
                   else "no findings")  # fmt: skip
    if failed:
        raise SystemExit(1)

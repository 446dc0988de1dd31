"""``skillharbor scan`` without click: argument parsing, the report and the exit code.

``skillharbor scan`` runs in CI on every commit, so its start-up counts: importing click alone costs about
as much as the scan of a small skill. The console script's entry point parses ``scan``'s three arguments
itself when they are in the plain form (argparse, loaded only then, handles anything else) and calls
:func:`run`; the click command in :mod:`chalicelib.cli.scan` (listed by ``skillharbor --help``) calls
the same function.

Exit code: 0 when no finding reaches ``--fail-on`` (default ``high``), 1 when one does, 2 on bad usage
or an unreadable path.
"""

from __future__ import annotations

import json
import os
import sys

TYPE_CHECKING = False  # typing is not imported at run time: a tenth of the scan's start-up CPU
if TYPE_CHECKING:
    from typing import Any, TextIO

LEVELS = ("low", "medium", "high", "critical")
FORMATS = ("text", "json", "sarif")
_SARIF_LEVEL = {"CRITICAL": "error", "HIGH": "error", "MEDIUM": "warning", "LOW": "note"}


class ScanUsageError(Exception):
    """The path cannot be scanned (missing, unreadable, not a skill)."""


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


def run(path: str, fmt: str = "text", fail_on: str = "high", out: TextIO | None = None) -> int:
    """Scan ``path``, write the report to ``out`` (stdout), return the exit code (0 or 1)."""
    from chalicelib.scanning.malice import load_rules, scan_path

    out = out or sys.stdout
    try:
        findings = scan_path(path)
    except (OSError, ValueError) as exc:
        raise ScanUsageError(f"cannot scan {path}: {exc}") from exc
    worst = max((LEVELS.index(f.severity.lower()) for f in findings), default=-1)
    if fmt == "json":
        verdict = "malicious" if worst == 3 else "needs_approval" if worst == 2 else "passed"
        print(json.dumps({"path": path, "verdict": verdict, "findings": [f.to_dict() for f in findings]}, indent=2), file=out)
    elif fmt == "sarif":
        print(json.dumps(_sarif(findings, load_rules()), indent=2), file=out)
    else:
        for f in findings:
            via = f" (decoded x{f.decoded})" if f.decoded else ""
            print(f"{f.severity:<8} {f.file}:{f.line} {f.rule_id} {f.message}{via}\n         {f.matched}\n         fix: {f.fix}", file=out)
        counts = {s: sum(f.severity == s for f in findings) for s in ("CRITICAL", "HIGH", "MEDIUM", "LOW")}
        summary = ", ".join(f"{n} {s}" for s, n in counts.items() if n)
        print(f"{len(findings)} finding(s): {summary}" if findings else "no findings", file=out)
    return 1 if worst >= LEVELS.index(fail_on) else 0


def _plain(argv: list[str]) -> tuple[str, str, str] | None:
    """(path, format, fail-on) when ``argv`` is the plain form ``PATH [--format F] [--fail-on L]`` (either
    option also as ``--opt=value``) with valid values and an existing path; None for anything else, which
    argparse then handles with its usual help and messages. argparse with the modules it loads (gettext,
    locale, shutil) was a tenth of the start-up of a CI scan, whose arguments are nearly always plain."""
    values = {"--format": "text", "--fail-on": "high"}
    choices = {"--format": FORMATS, "--fail-on": LEVELS}
    paths: list[str] = []
    rest = list(argv)
    while rest:
        arg = rest.pop(0)
        name, eq, value = arg.partition("=")
        if name in values:
            if not eq:
                if not rest:
                    return None
                value = rest.pop(0)
            if value not in choices[name]:
                return None
            values[name] = value
        elif arg.startswith("-") or paths:
            return None
        else:
            paths.append(arg)
    if len(paths) != 1 or not os.path.exists(paths[0]):
        return None
    return paths[0], values["--format"], values["--fail-on"]


def main(argv: list[str], prog: str = "skillharbor scan") -> int:
    plain = _plain(argv)
    if plain is not None:
        try:
            return run(*plain)
        except ScanUsageError:
            pass  # argparse reports it below, as for any other bad usage
    import argparse

    parser = argparse.ArgumentParser(prog=prog, description="Scan a skill folder, .zip or SKILL.md for malicious content, offline.")
    parser.add_argument("path")
    parser.add_argument("--format", dest="fmt", choices=FORMATS, default="text", help="report format (default: text)")
    parser.add_argument("--fail-on", choices=LEVELS, default="high",
                        help="exit 1 when a finding is at least this severe (default: high)")  # fmt: skip
    args = parser.parse_args(argv)
    if not os.path.exists(args.path):
        parser.error(f"Path '{args.path}' does not exist.")
    try:
        return run(args.path, args.fmt, args.fail_on)
    except ScanUsageError as exc:
        parser.error(str(exc))
    return 2  # not reached: parser.error exits

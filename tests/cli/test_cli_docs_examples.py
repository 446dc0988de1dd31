"""The docs stay true: every ``$ skillharbor ...`` line of a ```console block runs, in order, against the stack.

A line may end with ``# exit N`` when the example shows a refusal; any other
trailing ``# comment`` is ignored. Lines under a command that do not start
with ``$`` are output the command must print (each one, anywhere in its
stdout or stderr). Blocks fenced as ``text`` are not run (they need Docker or
the package index).
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs"
DOCUMENTS = ("PYTHON_PACKAGES.md", "PACKAGE_GOVERNANCE.md", "PACKAGE_SECURITY.md")
#: list items indent their fences, so leading blanks are allowed
_CONSOLE_BLOCK = re.compile(r"^[ \t]*```console[ \t]*\n(.*?)^[ \t]*```[ \t]*$", re.MULTILINE | re.DOTALL)
_EXPECTED_EXIT = re.compile(r"#\s*exit\s+(\d+)\s*$")


@dataclass
class DocCommand:
    argv: list[str]  # after "skillharbor"
    exit_code: int
    line: str
    output: list[str] = field(default_factory=list)


def console_commands(markdown: str) -> list[DocCommand]:
    """The documented commands, in document order."""
    commands: list[DocCommand] = []
    for block in _CONSOLE_BLOCK.findall(markdown):
        current: DocCommand | None = None
        for line in block.splitlines():
            stripped = line.strip()
            if stripped.startswith("$ "):
                current = None
                if stripped.startswith("$ skillharbor"):
                    match = _EXPECTED_EXIT.search(stripped)
                    argv = shlex.split(stripped[2:], comments=True)
                    current = DocCommand(argv[1:], int(match.group(1)) if match else 0, stripped)
                    commands.append(current)
            elif stripped and current is not None:
                current.output.append(stripped)
    return commands


def test_the_extractor_reads_exit_codes_quotes_and_output():
    sample = (
        '```console\n$ skillharbor packages approve numpy ">=1,<3" --min-maturity INTERN\n'
        "$ skillharbor packages check numpy==2 --agent a   # exit 1\nerror: denied: no\n```\n"
        "```text\n$ skillharbor run x\n```\n"
        "1. a step\n\n   ```console\n   $ export X=1\n   ignored\n   $ skillharbor audit --limit 5\n   ```\n"
    )
    assert console_commands(sample) == [
        DocCommand(
            ["packages", "approve", "numpy", ">=1,<3", "--min-maturity", "INTERN"],
            0,
            '$ skillharbor packages approve numpy ">=1,<3" --min-maturity INTERN',
        ),
        DocCommand(
            ["packages", "check", "numpy==2", "--agent", "a"],
            1,
            "$ skillharbor packages check numpy==2 --agent a   # exit 1",
            ["error: denied: no"],
        ),
        DocCommand(["audit", "--limit", "5"], 0, "$ skillharbor audit --limit 5"),
    ]


@pytest.mark.parametrize("document", DOCUMENTS)
def test_every_console_example_runs(document, run_cli, monkeypatch):
    commands = console_commands((DOCS / document).read_text(encoding="utf-8"))
    assert commands, f"{document} has no runnable examples"
    monkeypatch.chdir(DOCS.parent)  # examples name paths relative to the project root
    for command in commands:
        assert command.argv, f"{document}: {command.line!r} names no command"
        result = run_cli(*command.argv, expect=command.exit_code)
        printed = " ".join(result.output.split())
        for expected in command.output:
            assert " ".join(expected.split()) in printed, (
                f"{document}: {command.line!r} did not print {expected!r}:\n{result.output}"
            )

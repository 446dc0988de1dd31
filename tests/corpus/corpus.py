"""The labelled skill corpus: malicious cases with their labels, benign skills with their sources.

Pure Python, no project imports, so benchmarks, tests and one-off scripts can all load it by path.
See README.md beside this file for the layout and the rules for adding cases.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

CORPUS_DIR = Path(__file__).resolve().parent
MALICIOUS_DIR = CORPUS_DIR / "malicious"
BENIGN_DIR = CORPUS_DIR / "benign"
AUTHORED_DIR = BENIGN_DIR / "authored"
SOURCES_FILE = BENIGN_DIR / "SOURCES.json"
LABEL_FILE = "label.json"  # a malicious case's label, beside the skill's files: not part of the skill

# Real published skills are never committed (see README.md, "Licences and provenance"); a local copy
# is looked for here, first match wins.
REAL_DIR_ENV = "SKILLHARBOR_CORPUS_REAL_DIR"
_REAL_DIR_CANDIDATES = (
    BENIGN_DIR / "real",
    CORPUS_DIR.parents[1].parent / "shared" / "corpus" / "benign-real",
)

CATEGORIES = (
    "dropper",
    "reverse-shell",
    "credential-theft",
    "exfiltration",
    "obfuscation",
    "persistence",
    "privilege-escalation",
    "destructive",
    "prompt-injection",
    "unicode-smuggling",
    "typosquat",
    "hidden-payload",
)
SEVERITIES = ("CRITICAL", "HIGH")
BENIGN_KINDS = ("real", "authored", "reference-only")
_WHERE = re.compile(r"^(?P<file>[^:]+):(?P<line>[1-9][0-9]*)$")


@dataclass(frozen=True)
class Case:
    """One skill folder of the corpus and what we know about it."""

    id: str  # "malicious/<category>/<case>", "benign/authored/<name>" or "benign/<repo-slug>/<name>"
    path: Path
    malicious: bool
    label: dict[str, Any] | None = None  # label.json, malicious cases only
    source: dict[str, Any] | None = None  # the SOURCES.json entry, benign skills only

    @property
    def skill_md(self) -> Path:
        return self.path / "SKILL.md"

    @property
    def category(self) -> str:
        return self.label["category"] if self.label else "benign"

    def skill_files(self) -> dict[str, bytes]:
        """The skill as a scanner receives it: every file of the folder except our label.json, whose notes
        describe the payload (a decoded command, a technique) and would be found by the scan themselves."""
        return {
            p.relative_to(self.path).as_posix(): p.read_bytes()
            for p in sorted(self.path.rglob("*"))
            if p.is_file() and not p.is_symlink() and p.relative_to(self.path).as_posix() != LABEL_FILE
        }


def malicious_cases() -> list[Case]:
    cases = []
    for folder in sorted(p for p in MALICIOUS_DIR.glob("*/*") if p.is_dir()):
        label_file = folder / LABEL_FILE
        label = json.loads(label_file.read_text(encoding="utf-8")) if label_file.exists() else None
        cases.append(Case(f"malicious/{folder.parent.name}/{folder.name}", folder, True, label=label))
    return cases


def sources() -> list[dict[str, Any]]:
    return json.loads(SOURCES_FILE.read_text(encoding="utf-8"))["skills"]


def real_skills_dir() -> Path | None:
    """Where the local copy of the real published skills is, or None when this machine has none."""
    configured = os.environ.get(REAL_DIR_ENV)
    candidates = (Path(configured),) if configured else _REAL_DIR_CANDIDATES
    return next((c for c in candidates if c.is_dir()), None)


def benign_cases(*, include_real: bool = True) -> list[Case]:
    """Authored hard negatives always; real published skills where a local copy exists."""
    real_dir = real_skills_dir() if include_real else None
    cases = []
    for entry in sources():
        if entry["kind"] == "authored":
            folder = AUTHORED_DIR / entry["id"].split("/", 1)[1]
        elif entry["kind"] == "real" and real_dir is not None:
            folder = real_dir / entry["id"]
        else:
            continue
        if folder.is_dir():
            cases.append(Case(f"benign/{entry['id']}", folder, False, source=entry))
    return cases


def all_cases(*, include_real: bool = True) -> list[Case]:
    return malicious_cases() + benign_cases(include_real=include_real)


def label_problems(case: Case) -> list[str]:
    """What is wrong with a malicious case's label.json (empty when it is sound)."""
    label = case.label
    if label is None:
        return ["no label.json"]
    problems = []
    if label.get("category") != case.path.parent.name:
        problems.append(f"category {label.get('category')!r} is not the folder's {case.path.parent.name!r}")
    if label.get("category") not in CATEGORIES:
        problems.append(f"unknown category {label.get('category')!r}")
    if not str(label.get("technique") or "").strip():
        problems.append("technique is empty")
    if label.get("expected_min_severity") not in SEVERITIES:
        problems.append(f"expected_min_severity {label.get('expected_min_severity')!r} not in {SEVERITIES}")
    if not isinstance(label.get("notes", ""), str):
        problems.append("notes is not a string")
    match = _WHERE.match(str(label.get("where") or ""))
    if not match:
        return problems + [f"where {label.get('where')!r} is not 'file:line'"]
    target = case.path / match["file"]
    if not target.is_file():
        return problems + [f"where names {match['file']}, which is not in the case"]
    lines = target.read_text(encoding="utf-8", errors="replace").splitlines()
    if int(match["line"]) > len(lines):
        problems.append(f"where line {match['line']} is past the end of {match['file']} ({len(lines)} lines)")
    return problems


def real_copy_problems(entry: dict[str, Any], folder: Path) -> list[str]:
    """Files of a local real-skill copy that are missing or differ from the pinned commit."""
    problems = []
    for f in entry["files"]:
        path = folder / f["path"]
        if not path.is_file():
            problems.append(f"{f['path']} missing")
        elif hashlib.sha256(path.read_bytes()).hexdigest() != f["sha256"]:
            problems.append(f"{f['path']} differs from {entry['repo']}@{entry['commit'][:12]}")
    return problems

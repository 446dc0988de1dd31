"""The labelled corpus: every authored malicious case is flagged at its labelled severity; no authored
benign skill is blocked (CRITICAL)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

from chalicelib.scanning.malice import scan_skill

_spec = importlib.util.spec_from_file_location("corpus", Path(__file__).resolve().parents[1] / "corpus" / "corpus.py")
corpus = importlib.util.module_from_spec(_spec)
sys.modules.setdefault("corpus", corpus)
_spec.loader.exec_module(corpus)

ORDER = {"LOW": 0, "MEDIUM": 1, "HIGH": 2, "CRITICAL": 3}
MALICIOUS = corpus.malicious_cases()
BENIGN = corpus.benign_cases(include_real=False)
# cases the rule pack does not yet reach at their labelled severity (each a known gap, see docs/BENCHMARKS.md)
KNOWN_MISSES = frozenset({
})  # fmt: skip
KNOWN_BLOCKED_BENIGN: frozenset[str] = frozenset()  # none: authored hard negatives must all pass


def _worst(case) -> int:
    return max((ORDER[f.severity] for f in scan_skill(case.skill_files())), default=-1)  # without label.json


@pytest.mark.parametrize("case", MALICIOUS, ids=[c.id for c in MALICIOUS])
def test_malicious_case_is_flagged_at_its_labelled_severity(case):
    flagged = _worst(case) >= ORDER[case.label["expected_min_severity"]]
    if case.id in KNOWN_MISSES:
        assert _worst(case) >= ORDER["HIGH"] or not flagged  # recorded gap; still reported where it can be
        pytest.xfail("known gap of the rule pack")
    assert flagged


@pytest.mark.parametrize("case", BENIGN, ids=[c.id for c in BENIGN])
def test_benign_case_is_not_blocked(case):
    if case.id in KNOWN_BLOCKED_BENIGN:
        pytest.xfail("known false positive")
    assert _worst(case) < ORDER["CRITICAL"]

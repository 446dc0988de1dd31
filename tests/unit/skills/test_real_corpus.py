"""The parser over the real published skills of tests/corpus (a local copy; see tests/corpus/README.md).

Skipped unless SKILLHARBOR_CORPUS_REAL_DIR names the copy. Every spec-valid SKILL.md must parse;
the one exception is a SKILL.md without frontmatter, which is not spec-valid.
"""

from __future__ import annotations

import os
import sys
from collections import Counter
from pathlib import Path

import pytest

from chalicelib.errors import InvalidSkill
from chalicelib.skills import parse_folder

pytestmark = pytest.mark.skipif(not os.environ.get("SKILLHARBOR_CORPUS_REAL_DIR"),
                                reason="SKILLHARBOR_CORPUS_REAL_DIR is not set")  # fmt: skip

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "corpus"))
import corpus  # noqa: E402

NOT_SPEC_VALID = {"benign/openclaw/canvas": "has no YAML frontmatter"}


def test_every_spec_valid_real_skill_parses_and_examples_never_refuse_one(capsys: pytest.CaptureFixture[str]) -> None:
    cases = [case for case in corpus.benign_cases() if case.source and case.source["kind"] == "real"]
    assert cases, "the local copy holds no real skills"
    kinds: Counter[str] = Counter()
    refused = {}
    for case in cases:
        assert not corpus.real_copy_problems(case.source, case.path), case.id
        try:
            kinds[parse_folder(case.path).skill_type] += 1
        except InvalidSkill as error:
            refused[case.id] = error.problems
    assert set(refused) == set(NOT_SPEC_VALID), refused
    for case_id, reason in NOT_SPEC_VALID.items():
        assert reason in refused[case_id][0]
    with capsys.disabled():
        print(f"\nreal corpus: {len(cases)} skills, {sum(kinds.values())} accepted {dict(kinds)}, {len(refused)} refused")

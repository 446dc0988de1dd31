"""Every rule in the malicious-skill rule pack fires on its positive examples and not on its negatives."""

from __future__ import annotations

import pytest

from chalicelib.scanning.malice.engine import SEVERITIES, fires, load_rules

RULES = load_rules()


def test_rule_pack_is_complete():
    assert len(RULES) >= 20
    categories = {r.category for r in RULES}
    for wanted in ("dropper", "reverse-shell", "credential-theft", "exfiltration", "obfuscation", "persistence",
                   "privilege-escalation", "destructive", "prompt-injection", "unicode-smuggling"):  # fmt: skip
        assert wanted in categories
    for rule in RULES:
        assert rule.severity in SEVERITIES and rule.rationale and rule.fix and rule.references, rule.id
        assert rule.positive and rule.negative, f"{rule.id} needs positive and negative examples"


@pytest.mark.parametrize("rule", RULES, ids=[r.id for r in RULES])
def test_rule_examples(rule):
    missed = [e for e in rule.positive if not fires(rule, e)]
    wrong = [e for e in rule.negative if fires(rule, e)]
    assert not missed, f"{rule.id} misses its positive examples: {missed}"
    assert not wrong, f"{rule.id} fires on its negative examples: {wrong}"

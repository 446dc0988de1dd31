"""Patterns skipped by their required literals: a skip never hides a match the regex would find."""

from __future__ import annotations

import importlib.util
import re
import sys
from pathlib import Path

from chalicelib.scanning.malice import engine
from chalicelib.scanning.malice.needs import needs_of

_spec = importlib.util.spec_from_file_location("corpus", Path(__file__).resolve().parents[1] / "corpus" / "corpus.py")
corpus = importlib.util.module_from_spec(_spec)
sys.modules.setdefault("corpus", corpus)
_spec.loader.exec_module(corpus)

_LOOKALIKES = str.maketrans({"s": "\u017f", "k": "\u212a", "i": "\u0131", "I": "\u0130"})


def _texts(*, variants: bool = True) -> list[str]:
    """The rules' examples and the corpus' files; with variants also upper-cased and with look-alikes."""
    texts = [t for rule in engine.load_rules() for t in rule.positive + rule.negative]
    for case in corpus.malicious_cases() + corpus.benign_cases(include_real=False):
        texts += [data.decode("utf-8", errors="replace") for data in case.skill_files().values()]
    return texts + ([t.upper() for t in texts] + [t.translate(_LOOKALIKES) for t in texts] if variants else [])


def _eager_rules() -> tuple[engine.Rule, ...]:
    """The pack as it was before required literals: every pattern compiled, none skipped."""
    return tuple(engine._rule(raw, name) for name, raw in engine.read_packs())


def test_the_fold_covers_every_character_an_ascii_literal_matches():
    any_ascii = re.compile(r"[\x00-\x7f]", re.IGNORECASE)
    matched = {chr(c) for c in range(0x80, sys.maxunicode + 1) if any_ascii.fullmatch(chr(c))}
    assert matched == {chr(c) for c in engine._FOLD}
    assert all(re.fullmatch(engine._FOLD[ord(ch)], ch, re.IGNORECASE) for ch in matched)


def test_a_pattern_that_matches_a_text_is_never_ruled_out_for_it():
    patterns = [p for rule in engine.load_rules() for p in rule.patterns + rule.all_of + rule.unless]
    assert sum(bool(p.needs) for p in patterns) > len(patterns) * 0.9  # the pack really is filtered
    for text in _texts():
        folded = engine.fold(text)
        for pattern in patterns:
            if pattern.search(text):
                assert pattern.possible(folded), (pattern.pattern, text[:200])


def test_findings_are_those_of_the_whole_pack_compiled():
    lazy, eager = engine.load_rules(), _eager_rules()
    for text in _texts(variants=False):
        assert engine.scan_text("f", text, rules=lazy) == engine.scan_text("f", text, rules=eager)


def test_only_certain_literals_are_required():
    flags = engine.FLAGS
    assert needs_of(r"\bcurl\s+-sSL\s+http", flags) == [["-ssl"], ["curl"], ["http"]]
    assert needs_of(r"(?:wget|curl)\b.{0,9}\|\s*sh", flags) == [["curl", "wget"], ["sh"]]
    assert needs_of(r"(?:bash|)\s+-c|(?:eval)?x", flags) == []  # an empty branch, an optional group
    assert needs_of(r"(?:abc){0,3}[xy]+(?=secret)", flags) == []  # optional repeat, class, lookahead
    assert needs_of(r"(?:token){2,}\u00e9t\u00e9", flags) == [["token"]]  # non-ASCII literals add nothing

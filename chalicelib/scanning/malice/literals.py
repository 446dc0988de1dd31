"""Literals a regex cannot match without: a cheap test that lets a scan skip a rule.

Python's ``re`` tries a case-insensitive pattern that starts with an
alternation at every position of the text, so ~180 rules over a skill of a few
hundred kilobytes took seconds. Most rules need some word (``curl``,
``environ``, ``authorized_keys``): when none of a pattern's required literals
is in the case-folded text, the pattern cannot match there and is not run.

``required_literals`` reads the pattern's parse tree and returns a set of
strings such that every match contains at least one of them (compared
case-folded), or ``None`` when it cannot say (the pattern then always runs).
It errs toward ``None``: anything it does not understand is no literal.
"""

from __future__ import annotations

import re
from typing import Any

try:  # the parser's home since 3.11 (the old sre_parse name warns)
    from re import _constants as _c
    from re import _parser as _sre_parse
except ImportError:  # pragma: no cover - older interpreters
    import sre_constants as _c  # type: ignore[no-redef]
    import sre_parse as _sre_parse  # type: ignore[no-redef]

#: a set whose shortest member is this short filters too little to be worth the test
MIN_USEFUL = 3
_ATOMIC = getattr(_c, "ATOMIC_GROUP", None)
_REPEATS = {_c.MAX_REPEAT, _c.MIN_REPEAT, *([_c.POSSESSIVE_REPEAT] if hasattr(_c, "POSSESSIVE_REPEAT") else [])}


def required_literals(pattern: str, flags: int = re.IGNORECASE | re.MULTILINE) -> frozenset[str] | None:
    """Case-folded strings of which every match of ``pattern`` contains one, or ``None``."""
    try:
        parsed = _sre_parse.parse(pattern, flags)
    except re.error:
        return None
    found = _of_sequence(list(parsed))
    if found is None or min(len(s) for s in found) < MIN_USEFUL:
        return None
    return frozenset(s.casefold() for s in found)


def _of_sequence(items: list[tuple[Any, Any]]) -> set[str] | None:
    """The best literal set among the mandatory parts of a sequence (each part alone is a valid answer)."""
    candidates: list[set[str]] = []
    run: list[str] = []
    for op, arg in items:
        if op is _c.LITERAL:
            run.append(chr(arg))
            continue
        if run:
            candidates.append({"".join(run)})
            run = []
        part = _of_part(op, arg)
        if part:
            candidates.append(part)
    if run:
        candidates.append({"".join(run)})
    if not candidates:
        return None
    return max(candidates, key=lambda s: (min(len(x) for x in s), -len(s)))


def _of_part(op: Any, arg: Any) -> set[str] | None:
    if op is _c.SUBPATTERN:
        return _of_sequence(list(arg[-1]))
    if _ATOMIC is not None and op is _ATOMIC:
        return _of_sequence(list(arg))
    if op is _c.BRANCH:
        union: set[str] = set()
        for branch in arg[1]:
            found = _of_sequence(list(branch))
            if found is None:  # one branch without a literal: the alternation guarantees none
                return None
            union |= found
        return union
    if op in _REPEATS and arg[0] >= 1:
        return _of_sequence(list(arg[2]))
    return None  # a class, any char, an anchor, a look-around, a back-reference: no literal promised

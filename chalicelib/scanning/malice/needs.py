"""The literals a regex's every match contains: what lets the engine skip (and never compile) a pattern
that cannot match a text.

:func:`needs_of` walks the parsed pattern (``re``'s own parser) and returns groups of lower-case ASCII
strings: every match of the pattern contains at least one string of each group, compared with the
text folded as :func:`chalicelib.scanning.malice.engine.fold` does (lower case, and the four non-ASCII
characters that match an ASCII letter under ``re.IGNORECASE`` folded to it). Only what is certain is
kept: runs of literal characters in sequence, inside groups and repeats of at least one, and an
alternation when each branch has a requirement. Anything else (classes, lookarounds, optional parts,
backreferences, non-ASCII literals) breaks a run and adds nothing, so a pattern with no certain literal
has no needs and is always tried. Run when ``rules/compiled.json`` is written, not at scan time.
"""

from __future__ import annotations

from re import _constants as C  # noqa: N812  (the parser's opcodes)
from re import _parser

MIN_LENGTH = 2  # a one-character requirement filters nothing
MAX_GROUPS = 4  # the most selective ones are plenty

_REPEATS = tuple(op for op in (C.MAX_REPEAT, C.MIN_REPEAT, getattr(C, "POSSESSIVE_REPEAT", None)) if op is not None)


def _shortest(group: list[str]) -> int:
    return min(map(len, group))


def _sequence(items: list[tuple[object, object]]) -> list[list[str]]:
    """Groups every match of this sequence of parsed items holds (one string of each)."""
    needs: list[list[str]] = []
    run: list[str] = []

    def flush() -> None:
        if run:
            needs.append(["".join(run)])
            run.clear()

    for op, av in items:
        if op is C.LITERAL and av < 128:  # type: ignore[operator]
            run.append(chr(av).lower())  # type: ignore[arg-type]
            continue
        flush()
        if op is C.SUBPATTERN:
            needs += _sequence(av[-1])  # type: ignore[index]
        elif op is C.ATOMIC_GROUP:
            needs += _sequence(av)  # type: ignore[arg-type]
        elif op in _REPEATS and av[0] >= 1:  # type: ignore[index]
            needs += _sequence(av[2])  # type: ignore[index]
        elif op is C.BRANCH:
            alternatives: list[str] = []
            for branch in av[1]:  # type: ignore[index]
                found = [g for g in _sequence(branch) if _shortest(g) >= MIN_LENGTH]
                if not found:
                    break  # a branch without a requirement: the alternation has none
                alternatives += max(found, key=_shortest)
            else:
                needs.append(sorted(set(alternatives)))
    flush()
    return needs


def needs_of(pattern: str, flags: int) -> list[list[str]]:
    """Groups of literals (see the module docstring); ``[]`` when nothing is certain."""
    found = [sorted(set(g)) for g in _sequence(list(_parser.parse(pattern, flags))) if _shortest(g) >= MIN_LENGTH]
    found.sort(key=lambda g: (-_shortest(g), g))
    unique = [g for i, g in enumerate(found) if g not in found[:i]]
    return unique[:MAX_GROUPS]

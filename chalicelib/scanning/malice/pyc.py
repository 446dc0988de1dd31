"""Does a bundled ``.pyc`` match the ``.py`` beside it? Compare the strings the compiled file holds.

Public interface::

    pyc_strings(data: bytes) -> list[str]             # the text constants and names a .pyc holds
    unexplained(strings, source: str) -> list[str]    # those its source does not contain

Python runs a ``__pycache__`` file instead of its source when the file's header matches, so a clean
``.py`` beside a compiled payload is a disguise. Every string constant, name and docstring of a module
is stored in its ``.pyc`` as a marshal string record; a record whose text appears nowhere in the source
was compiled from different code. The records are read from the marshal format's string types, which
have been stable across CPython 3 versions, so a ``.pyc`` of another interpreter version still reads.
"""

from __future__ import annotations

import ast
import re

_HEADER = 16  # magic, flags, and mtime+size or a source hash (PEP 552)
_SHORT = frozenset(b"zZ")  # short ASCII (interned or not): 1-byte length
_LONG = frozenset(b"aAut")  # ASCII / unicode / interned: 4-byte little-endian length
_FLAG_REF = 0x80
_CODE, _BYTES = ord("c"), ord("s")
_MIN_LEN = 6
_COMPILER = frozenset({"return"})  # the key of a return annotation in __annotations__
_WORD = re.compile(r"[A-Za-z0-9]{3,}")  # shorter records are names and noise in any module


def _skip_bytecode(data: bytes, i: int) -> int | None:
    """Past the instruction bytes of a code object starting at ``i``, if it is one: its integer fields
    (5 of them since 3.11, 6 before) are followed by the bytecode as a bytes record, which holds no
    text but often looks like some."""
    for fields in (5, 6):
        at = i + 1 + 4 * fields
        if at + 5 <= len(data) and data[at] & ~_FLAG_REF == _BYTES:
            size = int.from_bytes(data[at + 1 : at + 5], "little")
            if 0 < size <= len(data) - at - 5 and size % 2 == 0:
                return at + 5 + size
    return None


def pyc_strings(data: bytes) -> list[str]:
    """Text of every marshal string record after the header (a coarse, version-independent walk)."""
    out: list[str] = []
    i, end = _HEADER, len(data)
    while i < end:
        kind = data[i] & ~_FLAG_REF
        if kind == _CODE:
            skipped = _skip_bytecode(data, i)
            if skipped:
                i = skipped
                continue
        if kind in _SHORT and i + 1 < end:
            start, size = i + 2, data[i + 1]
        elif kind in _LONG and i + 5 <= end:
            start, size = i + 5, int.from_bytes(data[i + 1 : i + 5], "little")
        else:
            i += 1
            continue
        raw = data[start : start + size]
        if size and len(raw) == size:
            try:
                text = raw.decode("ascii" if kind in _SHORT else "utf-8")
            except UnicodeDecodeError:
                text = ""
            if text and text.replace("\n", "").replace("\t", "").isprintable():
                out.append(text)
                i = start + size
                continue
        i += 1
    return out


def _source_words(source: str) -> set[str]:
    """Identifiers of the source and the words of its string constants (as Python evaluates them)."""
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return set()
    words: set[str] = set()
    for node in ast.walk(tree):
        for field in ("id", "attr", "arg", "name", "asname", "module"):
            value = getattr(node, field, None)
            if isinstance(value, str):
                words.update(value.split("."))
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            words.update(node.value.split())
    return words


def _in_source(run: str, source: str) -> bool:
    """A word of the source, or a repetition of one (the compiler folds ``"-" * 60`` into one constant)."""
    if run in source:
        return True
    unit = next(run[:n] for n in range(1, len(run) + 1) if run[:n] * (len(run) // n) == run[: len(run) // n * n])
    return unit in source


def _explained(token: str, words: set[str], source: str) -> bool:
    if len(token) < 3 or token in words or token in source or token in _COMPILER:
        return True
    if all(_in_source(run, source) for run in _WORD.findall(token)):
        return True  # a folded or concatenated constant whose words are all in the source
    parts = [p for p in token.split(".") if p and not (p.startswith("<") and p.endswith(">"))]
    # qualified names (Class.method.<locals>.<listcomp>), mangled private names (_Class__attr), and the
    # dunders the compiler adds (__module__, __qualname__, __classcell__)
    return all(
        p in words or (p.startswith("__") and p.endswith("__")) or "__" + p.partition("__")[2] in words for p in parts
    )


def unexplained(strings: list[str], source: str, *, source_name: str = "") -> list[str]:
    """Strings of a .pyc that its source does not explain: some word of it is neither in the source's text
    nor one of its names or constants (implicit concatenation and f-strings split and join literals, so
    words are compared, not whole strings)."""
    words = _source_words(source)
    found = []
    for text in strings:
        if len(text) < _MIN_LEN or text.endswith(".py") or (source_name and text.endswith(source_name)):
            continue  # short names and noise; co_filename, the path where it was compiled
        if not all(_explained(token, words, source) for token in text.split()):
            found.append(text)
    return found

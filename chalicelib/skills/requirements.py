"""Reading the Python requirements a skill declares, and refusing unsafe ones.

A skill may declare requirements in four places (``source`` names them):

``packages``
    the seed form's top-level YAML list; every item is exactly one PEP 508
    requirement (``"numpy>=1.26,<2"`` is one entry, commas and all).
``requirements.txt``
    a file next to SKILL.md in a zip or folder; one requirement per line,
    ``#`` comments, blank lines and ``\\`` line continuations as pip reads them.
``metadata``
    a string under ``metadata.requirements`` (or ``metadata.dependencies``).
``openclaw``
    the ``package`` string of an OpenClaw ``install`` entry of kind ``uv``.

The two string sources (``metadata`` and ``openclaw``) may hold several
requirements. They are split on newlines, on commas and on whitespace, with
the exceptions that keep PEP 508 intact: a piece that starts with a version
operator (``<``, ``>``, ``=``, ``!``, ``~``), an extras bracket or ``@``
continues the previous requirement (``numpy >= 1.26, <2`` stays one entry),
and after a ``;`` the environment marker runs to the next comma or newline.
Text inside brackets, parentheses and quotes is never split. ``#`` starts a
comment when it begins a line or follows whitespace.

Every entry either becomes a requirement or a problem naming the entry and
the reason; nothing is dropped. What is refused, and why, is
``requirement_check``'s business: anything that is not plain PEP 508 naming
a project of the configured index (pip options, URLs, VCS references, local
paths and archives in any spelling, ``$``, arbitrary ``===`` text, control
characters and line separators). Extras and environment markers are kept.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

from chalicelib.skills.requirement_check import check_requirement, normalize_requirement

__all__ = [
    "DeclaredRequirement", "check_requirement", "merge_requirements", "normalize_requirement",
    "parse_requirement_entries", "parse_requirement_list", "parse_requirement_string", "parse_requirements_txt",
    "split_requirement_string",
]  # fmt: skip

RequirementSource = Literal[
    "packages", "requirements.txt", "metadata", "openclaw", "dependencies", "pep723", "pyproject.toml", "override"
]

#: characters that begin a version specifier
_OPERATOR_CHARS = "<>=!~"
_QUOTED = re.compile(r"\"[^\"]*\"|'[^']*'")
#: the line ends of a requirements file as an editor shows them; other ``str.splitlines``
#: breaks (U+2028, U+0085, ...) stay inside the line, where check_requirement refuses them
_LINE_END = re.compile(r"\r\n|\r|\n")


@dataclass(frozen=True)
class DeclaredRequirement:
    """One accepted entry, with where it was written."""

    text: str  # as the author wrote it
    requirement: Requirement
    source: RequirementSource
    where: str  # e.g. "SKILL.md line 6, packages[0]" or "requirements.txt line 3"

    @property
    def normalized(self) -> str:
        return normalize_requirement(self.requirement)


def _problem(where: str, text: str, reason: str) -> str:
    shown = text.strip()
    if len(shown) > 200:
        shown = shown[:200] + "..."
    return f"{where} {shown!r}: {reason}"


def parse_requirement_entries(
    entries: Iterable[tuple[str, str]], *, source: RequirementSource
) -> tuple[list[DeclaredRequirement], list[str]]:
    """Check ``(where, text)`` pairs; return the accepted ones and a problem per refused one."""
    accepted: list[DeclaredRequirement] = []
    problems: list[str] = []
    for where, text in entries:
        requirement, reason = check_requirement(text)
        if requirement is None:
            problems.append(_problem(where, text, reason or "invalid"))
        else:
            accepted.append(DeclaredRequirement(text=text.strip(), requirement=requirement, source=source, where=where))
    return accepted, problems


def parse_requirement_list(
    items: Sequence[object],
    *,
    source: RequirementSource = "packages",
    where: str = "packages",
    item_lines: Sequence[int | None] | None = None,
    file_label: str = "SKILL.md",
) -> tuple[list[DeclaredRequirement], list[str]]:
    """A YAML list where each item is one requirement (the seed ``packages:`` form)."""
    entries: list[tuple[str, str]] = []
    problems: list[str] = []
    for index, item in enumerate(items):
        line = item_lines[index] if item_lines is not None and index < len(item_lines) else None
        label = f"{file_label} line {line}, {where}[{index}]" if line else f"{file_label}: {where}[{index}]"
        if not isinstance(item, str):
            problems.append(f"{label}: must be a requirement string, got {type(item).__name__} {item!r}")
            continue
        if not item.strip():
            problems.append(f"{label}: empty requirement")
            continue
        entries.append((label, item))
    accepted, entry_problems = parse_requirement_entries(entries, source=source)
    return accepted, problems + entry_problems


def _strip_comment(line: str) -> str:
    """Drop a ``#`` comment that starts the line or follows whitespace (outside quotes)."""
    quote: str | None = None
    for index, char in enumerate(line):
        if quote:
            if char == quote:
                quote = None
        elif char in "\"'":
            quote = char
        elif char == "#" and (index == 0 or line[index - 1].isspace()):
            return line[:index]
    return line


def parse_requirements_txt(
    text: str, *, label: str = "requirements.txt", source: RequirementSource = "requirements.txt"
) -> tuple[list[DeclaredRequirement], list[str]]:
    """pip's requirements file format: one requirement per (logical) line."""
    logical_lines: list[tuple[int, str]] = []
    buffer = ""
    first_line: int | None = None
    physical = _LINE_END.split(text)
    if physical and physical[-1] == "":
        physical.pop()  # the newline that ends the file starts no line
    for number, raw in enumerate(physical, start=1):
        if first_line is None:
            first_line = number
        if raw.rstrip().endswith("\\"):  # pip joins a line ending in a backslash with the next
            buffer += raw.rstrip()[:-1] + " "
            continue
        logical_lines.append((first_line, buffer + raw))
        buffer, first_line = "", None
    if first_line is not None:
        logical_lines.append((first_line, buffer))

    entries = [
        (f"{label} line {number}", _strip_comment(line))
        for number, line in logical_lines
        if _strip_comment(line).strip()
    ]
    return parse_requirement_entries(entries, source=source)


def split_requirement_string(text: str) -> list[str]:
    """Split a string naming several requirements (see the module docstring for the rules)."""
    tokens: list[tuple[str, str]] = []  # (separator before the token: line|comma|space, token)
    for line in _LINE_END.split(text):
        separator = "line"
        current = ""
        quote: str | None = None
        depth = 0
        for char in _strip_comment(line):
            if quote:
                current += char
                if char == quote:
                    quote = None
                continue
            if char in "\"'":
                quote = char
            elif char in "[(":
                depth += 1
            elif char in "])":
                depth = max(0, depth - 1)
            elif depth == 0 and char in ", \t":  # ASCII only: U+2028 and friends stay in the entry, to be refused
                if current:
                    tokens.append((separator, current))
                    current = ""
                    separator = "space"
                if char == "," and separator != "line":
                    separator = "comma"
                continue
            current += char
        if current:
            tokens.append((separator, current))

    entries: list[str] = []
    for separator, token in tokens:
        if entries and separator != "line" and _continues(entries[-1], separator, token):
            entries[-1] += ("," if separator == "comma" else " ") + token
        else:
            entries.append(token)
    return entries


def _continues(current: str, separator: str, token: str) -> bool:
    """Whether ``token`` belongs to the requirement being built in ``current``."""
    if ";" in _QUOTED.sub("", current):
        return separator == "space"  # a marker runs to the next comma or newline
    if token[0] in _OPERATOR_CHARS + "[(@;":
        return True
    if current[-1] in _OPERATOR_CHARS + "@(;,":
        return True
    # a pip option swallows its value, so the whole option is reported once
    return current.startswith("-") and " " not in current and separator == "space"


def parse_requirement_string(
    text: str, *, where: str, source: RequirementSource
) -> tuple[list[DeclaredRequirement], list[str]]:
    """A ``metadata``/``openclaw`` string that may name several requirements."""
    pieces = split_requirement_string(text)
    if len(pieces) == 1:
        return parse_requirement_entries([(where, pieces[0])], source=source)
    return parse_requirement_entries(
        [(f"{where} (entry {index + 1})", piece) for index, piece in enumerate(pieces)], source=source
    )


def merge_requirements(
    declared: Iterable[DeclaredRequirement],
) -> tuple[list[str], dict[str, list[str]]]:
    """Merge duplicates deterministically.

    Entries for the same project under the same environment marker become one:
    extras are united and specifiers intersected (``numpy>=1.26`` and
    ``numpy<2`` give ``numpy<2,>=1.26``). Entries with different markers stay
    apart, because only the resolver knows which marker applies. The result is
    sorted by (name, marker); sources map each final string to where it came from.
    """
    groups: dict[tuple[str, str], tuple[set[str], SpecifierSet, Requirement, set[str]]] = {}
    for item in declared:
        requirement = item.requirement
        key = (canonicalize_name(requirement.name), str(requirement.marker) if requirement.marker else "")
        if key in groups:
            extras, specifier, first, sources = groups[key]
            groups[key] = (
                extras | set(requirement.extras),
                specifier & requirement.specifier,
                first,
                sources | {item.source},
            )
        else:
            groups[key] = (
                set(requirement.extras),
                SpecifierSet(str(requirement.specifier)),
                requirement,
                {item.source},
            )

    requirements: list[str] = []
    sources_by_requirement: dict[str, list[str]] = {}
    for key in sorted(groups):
        extras, specifier, first, sources = groups[key]
        merged = Requirement(first.name)
        merged.extras = extras
        merged.specifier = specifier
        merged.marker = first.marker
        text = normalize_requirement(merged)
        requirements.append(text)
        sources_by_requirement[text] = sorted(sources)
    return requirements, sources_by_requirement

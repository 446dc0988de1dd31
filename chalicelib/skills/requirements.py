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
the reason; nothing is dropped. Refused: anything that is not PEP 508, direct
URLs (``name @ https://...`` and bare URLs), VCS references (``git+...``),
local paths and archives (``./x``, ``/abs``, ``file:``, ``x.whl``), editable
installs (``-e``) and every pip option (any entry starting with ``-``, or
carrying ``--hash=...`` and the like after the requirement), because packages
come only from the configured index and are pinned by skillharbor's resolver.
Extras and environment markers are valid and kept.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import SpecifierSet
from packaging.utils import canonicalize_name

RequirementSource = Literal["packages", "requirements.txt", "metadata", "openclaw"]

#: characters that begin a version specifier
_OPERATOR_CHARS = "<>=!~"
_VCS_PREFIXES = ("git+", "hg+", "svn+", "bzr+")
_ARCHIVE_SUFFIXES = (".whl", ".tar.gz", ".tgz", ".tar.bz2", ".tar.xz", ".zip", ".egg")
_QUOTED = re.compile(r"\"[^\"]*\"|'[^']*'")
_OPTION_TOKEN = re.compile(r"(?:^|\s)(-{1,2}[A-Za-z][\w-]*|-{1,2}(?=\s|$))")
_DRIVE_LETTER = re.compile(r"^[A-Za-z]:[\\/]")

_INDEX_OPTIONS = {
    "-i",
    "--index-url",
    "--extra-index-url",
    "--no-index",
    "-f",
    "--find-links",
    "--trusted-host",
    "--pre",
    "--only-binary",
    "--no-binary",
    "--prefer-binary",
}
_FILE_OPTIONS = {"-r", "--requirement", "-c", "--constraint"}
_EDITABLE_OPTIONS = {"-e", "--editable"}


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


def normalize_requirement(requirement: Requirement) -> str:
    """Canonical text: normalized name, sorted extras, sorted specifiers, marker."""
    text = canonicalize_name(requirement.name)
    if requirement.extras:
        text += "[" + ",".join(sorted(canonicalize_name(extra) for extra in requirement.extras)) + "]"
    text += str(requirement.specifier)
    if requirement.marker is not None:
        text += f"; {requirement.marker}"
    return text


def _pip_option_reason(option: str) -> str:
    if option in _EDITABLE_OPTIONS:
        return "editable installs (-e/--editable) are not allowed"
    if option in _FILE_OPTIONS:
        return f"pip option '{option}' is not allowed: other requirement or constraint files are not followed"
    if option in _INDEX_OPTIONS:
        return f"pip option '{option}' is not allowed: packages come only from the configured index"
    if option == "--hash":
        return "pip option '--hash' is not allowed: skillharbor's resolver pins the hashes itself"
    return f"pip option '{option}' is not allowed in requirements"


def _find_pip_option(text: str) -> str | None:
    """The first pip option in ``text`` (outside quoted marker values), if any."""
    unquoted = _QUOTED.sub('""', text)
    stripped = unquoted.lstrip()
    if stripped.startswith("-"):
        token = re.split(r"[\s=]", stripped, maxsplit=1)[0]
        # short options may be glued to their value: "-ihttp://..."
        return token if token.startswith("--") else token[:2]
    match = _OPTION_TOKEN.search(unquoted)
    if match:
        return match.group(1)
    return None


def _looks_like_local_path(head: str) -> bool:
    return (
        head in {".", ".."}
        or head.startswith(("./", "../", "/", "~", "\\", ".\\", "..\\"))
        or bool(_DRIVE_LETTER.match(head))
        or "/" in head
        or "\\" in head
        or head.lower().endswith(_ARCHIVE_SUFFIXES)
    )


def check_requirement(text: str) -> tuple[Requirement | None, str | None]:
    """Validate one requirement entry: ``(requirement, None)`` or ``(None, reason)``."""
    entry = text.strip()
    if not entry:
        return None, "empty requirement"
    option = _find_pip_option(entry)
    if option is not None:
        return None, _pip_option_reason(option)
    lowered = entry.lower()
    # the part before any marker, without spaces: what would name the package
    head = _QUOTED.sub("", entry).split(";", 1)[0].strip()
    if lowered.startswith(_VCS_PREFIXES) or any(
        f" {prefix}" in lowered or f"@{prefix}" in lowered for prefix in _VCS_PREFIXES
    ):
        return None, "VCS requirements (git+, hg+, svn+, bzr+) are not allowed: name a released package from the index"
    if lowered.startswith("file:") or re.search(r"@\s*file:", lowered):
        return None, "local path requirements (file:) are not allowed"
    if "://" in head and "@" not in head:
        return None, "URL requirements are not allowed: name a package from the index instead"
    if "@" not in head and _looks_like_local_path(head.split()[0] if head.split() else head):
        return None, "local path requirements are not allowed: name a package from the index instead"
    try:
        requirement = Requirement(entry)
    except InvalidRequirement as exc:
        first_line = str(exc).splitlines()[0] if str(exc) else "unparseable"
        return None, f"invalid PEP 508 requirement: {first_line}"
    if requirement.url:
        url = requirement.url.lower()
        if url.startswith("file:"):
            return None, "local path requirements (name @ file:...) are not allowed"
        if url.startswith(_VCS_PREFIXES):
            return None, "VCS requirements (name @ git+...) are not allowed: name a released package from the index"
        return (
            None,
            "direct URL requirements (name @ url) are not allowed: packages come only from the configured index",
        )
    return requirement, None


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
    for number, raw in enumerate(text.splitlines(), start=1):
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
    for line in text.splitlines():
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
            elif depth == 0 and (char == "," or char.isspace()):
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

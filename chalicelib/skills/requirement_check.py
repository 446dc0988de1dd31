"""Whether one requirement entry is safe to hand to the resolver, and why not.

The resolver passes requirements to pip, which reads more into a string than
PEP 508 says: in a requirements file it expands ``${NAME}`` from its
environment and starts a new line wherever ``str.splitlines`` does (U+2028
included), and any requirement whose text looks like a path, an archive name
or a URL is installed from there, running that project's build backend on
the host. So an entry is accepted only when it is plain PEP 508 naming a
project of the index:

* printable ASCII only (no control characters, no line or paragraph
  separators, no invisible formatting characters, no other non-ASCII);
* no ``$``, no pip option, no ``@`` (direct references), no ``://``, no
  ``file:``, no path separators, no leading ``.`` or ``~``, no archive names;
* a specifier's version is a PEP 440 version, also after ``===`` (arbitrary
  equality otherwise compares against any text);
* its canonical text (:func:`normalize_requirement`), which is what the
  resolver passes on, must not look like a file to pip either.

Each refusal says which rule and where, so an author can fix the entry.
"""

from __future__ import annotations

import re
import unicodedata

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

#: longest accepted entry; real requirements are far shorter
MAX_REQUIREMENT_LENGTH = 500
#: every character ``str.splitlines`` ends a line at (pip splits its files with it)
LINE_BREAKS = frozenset("\n\r\x0b\x0c\x1c\x1d\x1e\x85\u2028\u2029")
#: what pip treats as an archive when a requirement's text ends with it (pip's ARCHIVE_EXTENSIONS and more)
ARCHIVE_SUFFIXES = (
    ".whl", ".zip", ".egg", ".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz", ".tbz2", ".tar.xz", ".txz",
    ".tlz", ".tar.lz", ".tar.lzma", ".tar.zst", ".tzst", ".pybundle", ".pyz",
)  # fmt: skip

_VCS_PREFIXES = ("git+", "hg+", "svn+", "bzr+")
_QUOTED = re.compile(r"\"[^\"]*\"|'[^']*'")
_OPTION_TOKEN = re.compile(r"(?:^|\s)(-{1,2}[A-Za-z][\w-]*|-{1,2}(?=\s|$))")
_DRIVE_LETTER = re.compile(r"(?:^|[\s\[,(])[A-Za-z]:")
_INDEX_OPTIONS = {
    "-i", "--index-url", "--extra-index-url", "--no-index", "-f", "--find-links", "--trusted-host", "--pre",
    "--only-binary", "--no-binary", "--prefer-binary",
}  # fmt: skip
_FILE_OPTIONS = {"-r", "--requirement", "-c", "--constraint"}
_EDITABLE_OPTIONS = {"-e", "--editable"}
_FROM_INDEX = "name a package from the index instead"


def normalize_requirement(requirement: Requirement) -> str:
    """Canonical text: normalized name, sorted extras, sorted specifiers, marker."""
    text = canonicalize_name(requirement.name)
    if requirement.extras:
        text += "[" + ",".join(sorted(canonicalize_name(extra) for extra in requirement.extras)) + "]"
    text += str(requirement.specifier)
    if requirement.marker is not None:
        text += f"; {requirement.marker}"
    return text


def character_problem(text: str) -> str | None:
    """The first character that has no place in a requirement, described; None when all are fine."""
    for index, char in enumerate(text):
        if " " <= char <= "~" or char == "\t":
            continue
        name = unicodedata.name(char, "")
        code = f"U+{ord(char):04X}" + (f" ({name})" if name else "")
        where = f"at position {index + 1}"
        if char in LINE_BREAKS or unicodedata.category(char) in ("Zl", "Zp"):
            return (f"line break {code} {where}: pip starts a new line there, so one entry "
                    "would become several; write one requirement per entry")  # fmt: skip
        if unicodedata.category(char) == "Cc":
            return f"control character {code} {where} is not allowed"
        if unicodedata.category(char) == "Cf":
            return f"invisible formatting character {code} {where}: the text shown is not the text read"
        return f"non-ASCII character {code} {where}: requirements are ASCII (PEP 508 names, PEP 440 versions)"
    return None


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


def _find_pip_option(unquoted: str) -> str | None:
    """The first pip option in ``unquoted`` (marker values already blanked), if any."""
    stripped = unquoted.lstrip()
    if stripped.startswith("-"):
        token = re.split(r"[\s=]", stripped, maxsplit=1)[0]
        # short options may be glued to their value: "-ihttp://..."
        return token if token.startswith("--") else token[:2]
    match = _OPTION_TOKEN.search(unquoted)
    return match.group(1) if match else None


def looks_like_a_file_to_pip(text: str) -> bool:
    """Whether pip would read ``text`` (the part before any marker) as a path, an archive or a URL."""
    head = text.split(";", 1)[0].strip()
    bare = re.sub(r"\[[^\]]*\]", "", head).lower()  # pip strips extras before testing the file name
    return (
        "/" in head or "\\" in head or ":" in head or head.startswith((".", "~"))
        or any(part.endswith(ARCHIVE_SUFFIXES) for part in (head.lower(), bare))
    )  # fmt: skip


def _reference_problem(unquoted: str) -> str | None:
    """Paths, archives, URLs and VCS references, in any spelling (outside quoted marker values)."""
    lowered = unquoted.lower()
    head = unquoted.split(";", 1)[0]
    if any(lowered.startswith(prefix) or f" {prefix}" in lowered or f"@{prefix}" in lowered for prefix in _VCS_PREFIXES):
        return f"VCS requirements (git+, hg+, svn+, bzr+) are not allowed: {_FROM_INDEX}"
    if "file:" in lowered:
        return f"local path requirements (file:) are not allowed: {_FROM_INDEX}"
    if "@" in unquoted:
        if "://" in unquoted:
            return "direct URL requirements (name @ url) are not allowed: packages come only from the configured index"
        return f"direct references (name @ path or url) are not allowed: {_FROM_INDEX}"
    if "://" in unquoted:
        return f"URL requirements are not allowed: {_FROM_INDEX}"
    tokens = [t for t in re.split(r"[\s,\[\]()]+", head) if t]
    if (
        "/" in head or "\\" in head or _DRIVE_LETTER.search(head)
        or any(t.startswith((".", "~")) or t.lower().endswith(ARCHIVE_SUFFIXES) for t in tokens)
    ):  # fmt: skip
        return f"local path requirements are not allowed: {_FROM_INDEX}"
    return None


def _specifier_problem(requirement: Requirement) -> str | None:
    for specifier in requirement.specifier:
        if specifier.operator == "===":
            try:
                Version(specifier.version)
            except InvalidVersion:
                return (f"arbitrary equality '==={specifier.version}' is not allowed: '===' must name a "
                        f"PEP 440 version, e.g. {requirement.name}===1.0")  # fmt: skip
    return None


def check_requirement(text: str) -> tuple[Requirement | None, str | None]:
    """Validate one requirement entry: ``(requirement, None)`` or ``(None, reason)``."""
    if not isinstance(text, str):
        return None, f"must be a requirement string, got {type(text).__name__}"
    entry = text.strip(" \t\r\n")
    if not entry:
        return None, "empty requirement"
    if len(entry) > MAX_REQUIREMENT_LENGTH:
        return None, f"longer than {MAX_REQUIREMENT_LENGTH} characters"
    problem = character_problem(entry)
    if problem:
        return None, problem
    if "$" in entry:
        return None, "'$' is not allowed: pip expands ${NAME} from its environment, which would put secrets in a requirement"
    unquoted = _QUOTED.sub('""', entry)
    option = _find_pip_option(unquoted)
    if option is not None:
        return None, _pip_option_reason(option)
    problem = _reference_problem(unquoted)
    if problem:
        return None, problem
    try:
        requirement = Requirement(entry)
    except InvalidRequirement as exc:
        first_line = str(exc).splitlines()[0] if str(exc) else "unparseable"
        return None, f"invalid PEP 508 requirement: {first_line}"
    if requirement.url:  # unreachable after the checks above; kept so no parser change can let one through
        return None, "direct URL requirements (name @ url) are not allowed: packages come only from the configured index"
    problem = _specifier_problem(requirement)
    if problem:
        return None, problem
    if looks_like_a_file_to_pip(normalize_requirement(requirement)):
        return None, f"pip would read {normalize_requirement(requirement)!r} as a file name: {_FROM_INDEX}"
    return requirement, None

"""Turning an uploaded SKILL.md, zip or folder into a :class:`ParsedSkill`.

Entry points: :func:`parse_skill_md`, :func:`parse_zip`, :func:`parse_folder`
and :func:`parse_path`. Each returns a ``ParsedSkill`` or raises
:class:`chalicelib.errors.InvalidSkill` whose ``problems`` lists every
problem found (the parser collects them instead of stopping at the first).

SKILL.md
--------
YAML frontmatter between two ``---`` lines, then a markdown body. The
frontmatter is parsed with a hardened YAML loader: anchors and aliases are
refused (no "billion laughs"), and nesting depth, node count and frontmatter
size are capped (:class:`ParseLimits`). ``name`` and ``description`` are
required non-empty strings; ``skill_id`` is the slug of ``name``.

Where requirements come from (all are read and merged; see requirements.py
for the entry syntax and what is refused)
--------------------------------------------------------------------------
* **seed form** (``declared_form="seed"``): a top-level ``packages:`` list of
  PEP 508 strings, one requirement per item.
* **Agent Skills form** (``"agent_skills"``; the recommended, spec-friendly
  form since the spec only allows name, description, license, allowed-tools,
  metadata and compatibility): a ``requirements.txt`` next to SKILL.md in
  the zip/folder, and/or a string under ``metadata.requirements`` (alias
  ``metadata.dependencies``), e.g. ``metadata: {requirements: "numpy>=1.26,
  pandas"}``. The string may name several requirements separated by commas,
  whitespace or newlines. A list of strings is accepted there too.
* **OpenClaw form** (``"openclaw"``): ``metadata.openclaw.install`` entries
  (legacy keys ``clawdbot``/``clawdis`` too). Kind ``uv`` entries give Python
  requirements through their ``package`` string (several names allowed, as
  above). Other kinds (brew, node, go, download, ...) and
  ``metadata.openclaw.requires`` (bins, anyBins, env, config) become
  ``non_python_requirements``, which the runner reports as unmet.
* ``metadata`` (and ``metadata.openclaw``) may also be a JSON object string,
  as OpenClaw skills often write it.
* A top-level ``requirements:`` or ``dependencies:`` key is a problem rather
  than being ignored, so a misplaced declaration never disappears silently.

``declared_form`` names the first of seed, openclaw, agent_skills that
declared anything, else ``"none"``.

Code and entrypoint
-------------------
``entrypoint`` (top-level, or ``metadata.entrypoint`` for spec-strict
skills) is either a function name (``run``), a bundled script
(``scripts/run.py``) or both (``scripts/run.py:run``). The code is chosen in
this order:

1. the script named by ``entrypoint`` (zip/folder only; an explicit choice
   beats an example block in the body);
2. the first fenced ```` ```python ```` (or ``py``/``python3``) block of the body;
3. in a zip/folder, the only ``.py`` file of the bundle, if there is exactly one.

With code the skill is ``python_code``; without, ``prompt_only`` and the body
is its ``template``. The function to call is the one ``entrypoint`` names,
else ``execute``, else the only public (non-underscore) top-level function.
The code is parsed with ``ast``; syntax errors are problems with their line.
``preimport: false`` (top-level or in ``metadata``) stops warm containers
from importing the skill's packages before its job arrives.

Zip and folder
--------------
SKILL.md sits at the root or inside exactly one top-level folder; that
location is the skill root, and ``requirements.txt`` is read only from it.
Unsafe entries are refused (absolute paths, ``..``, backslashes, drive
letters, symlinks, encrypted or duplicate entries), as are archives over the
size, total uncompressed size or entry-count limits. Housekeeping files are
ignored everywhere (not hashed, not kept): ``__MACOSX/``, ``__pycache__/``,
``.git/``, ``.hg/``, ``.svn/``, ``.venv/``, ``.DS_Store``, ``Thumbs.db``
and ``*.pyc``. UTF-8 text files up to ``max_bundled_text_bytes`` are kept
in ``files``; the others are listed in ``skipped_files`` with the reason.

``version`` is :func:`chalicelib.skills.model.content_version` of the
uploaded bytes (the same content always gives the same version).
"""

from __future__ import annotations

import ast
import base64
import datetime
import io
import json
import keyword
import math
import os
import re
import stat
import unicodedata
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NoReturn

import yaml

from chalicelib.errors import InvalidSkill
from chalicelib.skills.model import NonPythonRequirement, ParsedSkill, content_version, slugify_skill_id
from chalicelib.skills.requirements import (
    DeclaredRequirement,
    merge_requirements,
    parse_requirement_list,
    parse_requirement_string,
    parse_requirements_txt,
)
from chalicelib.skills.zip_directory import entries_over

MiB = 1024 * 1024

METADATA_REQUIREMENT_KEYS = ("requirements", "dependencies")
OPENCLAW_METADATA_KEYS = ("openclaw", "clawdbot", "clawdis")
#: the field holding the thing to install, per OpenClaw install kind
OPENCLAW_SPEC_FIELDS = {"brew": ("formula", "cask"), "node": ("package",), "go": ("module",), "download": ("url",)}
_MISPLACED_REQUIREMENT_KEYS = ("requirements", "dependencies")
_IGNORED_NAMES = frozenset({"__MACOSX", "__pycache__", ".git", ".hg", ".svn", ".venv", ".DS_Store", "Thumbs.db"})
_PYTHON_FENCE_INFO = frozenset({"python", "py", "python3"})
_FENCE_OPEN = re.compile(r"^( {0,3})(`{3,}|~{3,})(.*)$")


@dataclass(frozen=True)
class ParseLimits:
    """Size limits; the defaults match the settings' defaults."""

    max_skill_md_bytes: int = 1 * MiB
    max_zip_bytes: int = 20 * MiB
    max_total_uncompressed_bytes: int = 50 * MiB
    max_entries: int = 1000
    max_bundled_text_bytes: int = 1 * MiB  # larger bundled files go to skipped_files
    max_frontmatter_bytes: int = 64 * 1024
    max_yaml_depth: int = 32
    max_yaml_nodes: int = 10_000

    @classmethod
    def from_settings(cls, settings: Any) -> ParseLimits:
        """Take the limits that ``chalicelib.settings.Settings`` defines, defaults for the rest."""
        defaults = cls()
        return cls(
            max_skill_md_bytes=getattr(settings, "max_skill_md_bytes", defaults.max_skill_md_bytes),
            max_zip_bytes=getattr(settings, "max_zip_bytes", defaults.max_zip_bytes),
        )


# --- public entry points -------------------------------------------------------


def parse_skill_md(
    data: bytes,
    *,
    extra_files: Mapping[str, bytes] | None = None,
    limits: ParseLimits | None = None,
    label: str = "SKILL.md",
) -> ParsedSkill:
    """Parse a SKILL.md; ``extra_files`` are the other files of its bundle (paths relative to the skill root)."""
    limits = limits or ParseLimits()
    problems: list[str] = []
    bundle: dict[str, bytes] | None = None
    if extra_files is not None:
        bundle = {}
        for path, content in extra_files.items():
            reason = unsafe_path_reason(path)
            if reason:
                problems.append(f"bundled file {path!r} {reason}")
            elif path != "SKILL.md":
                bundle[path] = bytes(content)
        bundle["SKILL.md"] = bytes(data)
    return _parse_skill(bytes(data), bundle, limits=limits, label=label, problems=problems)


def parse_zip(data: bytes, *, limits: ParseLimits | None = None, label: str = "zip") -> ParsedSkill:
    """Parse a zip holding SKILL.md at its root or in its single top-level folder."""
    limits = limits or ParseLimits()
    if len(data) > limits.max_zip_bytes:
        _fail(label, [f"the zip is {len(data)} bytes, over the limit of {limits.max_zip_bytes} bytes"])
    too_many = entries_over(data, limits.max_entries)  # before zipfile builds an object per entry
    if too_many:
        _fail(label, [too_many])
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except Exception as exc:  # zipfile raises a wide, undocumented range of errors on corrupt input
        _fail(label, [f"not a valid zip archive: {_one_line(exc)}"])
    problems: list[str] = []
    with archive:
        try:
            infos = archive.infolist()
        except Exception as exc:  # same reason as above
            _fail(label, [f"not a valid zip archive: {_one_line(exc)}"])
        if len(infos) > limits.max_entries:
            _fail(label, [f"the zip has {len(infos)} entries, over the limit of {limits.max_entries}"])

        wanted: list[zipfile.ZipInfo] = []
        seen: set[str] = set()
        for info in infos:
            name = info.filename
            is_dir = name.endswith("/")  # not info.is_dir(): it fails on an empty name
            reason = unsafe_path_reason(name[:-1] if is_dir else name)
            if reason is None and stat.S_ISLNK(info.external_attr >> 16):
                reason = "is a symbolic link"
            if reason is None and info.flag_bits & 0x1:
                reason = "is encrypted"
            if reason:
                problems.append(f"zip entry {name!r} {reason}")
                continue
            if is_dir or _is_ignored(name):
                continue
            if name in seen:
                problems.append(f"zip entry {name!r} appears more than once")
                continue
            seen.add(name)
            wanted.append(info)

        declared_total = sum(info.file_size for info in wanted)
        if declared_total > limits.max_total_uncompressed_bytes:
            problems.append(
                f"the zip would unpack to {declared_total} bytes, over the limit of "
                f"{limits.max_total_uncompressed_bytes} bytes"
            )
            _fail(label, problems)

        files: dict[str, bytes] = {}
        budget = limits.max_total_uncompressed_bytes
        for info in wanted:
            try:
                content = _read_bounded(archive, info, min(budget, info.file_size))
            except _TooLarge:
                problems.append(f"zip entry {info.filename!r} unpacks to more than its declared size")
                continue
            except Exception as exc:  # corrupt member data (CRC, zlib, truncation, method)
                problems.append(f"zip entry {info.filename!r} cannot be read: {_one_line(exc)}")
                continue
            budget -= len(content)
            files[info.filename] = content
    return _parse_bundle(files, limits=limits, label=label, problems=problems)


def parse_folder(path: str | os.PathLike[str], *, limits: ParseLimits | None = None) -> ParsedSkill:
    """Parse a skill folder (the CLI's form of a zip); the same rules as :func:`parse_zip`."""
    limits = limits or ParseLimits()
    root = Path(path)
    label = str(root)
    if root.is_symlink() or not root.is_dir():
        _fail(label, [f"{label} is not a folder"])
    problems: list[str] = []
    files: dict[str, bytes] = {}
    total = 0
    entries = 0
    for directory, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        for name in list(dirnames) + sorted(filenames):
            full = Path(directory, name)
            relative = full.relative_to(root).as_posix()
            if name in _IGNORED_NAMES or (name.endswith(".pyc") and name in filenames):
                if name in dirnames:
                    dirnames.remove(name)
                continue
            entries += 1
            if entries > limits.max_entries:
                _fail(label, [*problems, f"the folder has more than {limits.max_entries} entries"])
            if full.is_symlink():
                problems.append(f"{relative!r} is a symbolic link")
                if name in dirnames:
                    dirnames.remove(name)
                continue
            if name in dirnames:
                continue
            if not full.is_file():
                problems.append(f"{relative!r} is not a regular file")
                continue
            size = full.stat().st_size
            total += size
            if total > limits.max_total_uncompressed_bytes:
                _fail(label, [*problems, f"the folder holds more than {limits.max_total_uncompressed_bytes} bytes"])
            files[relative] = full.read_bytes()
    return _parse_bundle(files, limits=limits, label=label, problems=problems)


def parse_path(path: str | os.PathLike[str], *, limits: ParseLimits | None = None) -> ParsedSkill:
    """CLI helper: a folder, a ``.zip`` file, or a SKILL.md file."""
    target = Path(path)
    if target.is_dir():
        return parse_folder(target, limits=limits)
    if not target.is_file():
        _fail(str(target), [f"{target} does not exist"])
    data = target.read_bytes()
    if target.suffix.lower() == ".zip" or data[:4] == b"PK\x03\x04":
        return parse_zip(data, limits=limits, label=str(target))
    return parse_skill_md(data, limits=limits, label=str(target))


def unsafe_path_reason(name: str) -> str | None:
    """Why a bundle path is unsafe to unpack, or None when it is a plain relative path."""
    if not name:
        return "has an empty name"
    if "\x00" in name:
        return "contains a NUL character"
    if "\\" in name:
        return "uses backslashes (only '/' separators are accepted)"
    if name.startswith("/"):
        return "is an absolute path"
    if re.match(r"^[A-Za-z]:", name):
        return "starts with a drive letter"
    parts = name.split("/")
    if ".." in parts:
        return "contains a '..' component"
    if any(part in ("", ".") for part in parts):
        return "is not a normalized relative path (empty or '.' components)"
    return None


# --- bundles -------------------------------------------------------------------


class _TooLarge(Exception):
    pass


def _read_bounded(archive: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> bytes:
    """Read one member, never more than ``limit`` bytes (a lying header cannot inflate it)."""
    chunks: list[bytes] = []
    size = 0
    with archive.open(info) as member:
        while True:
            chunk = member.read(64 * 1024)
            if not chunk:
                break
            size += len(chunk)
            if size > limit:
                raise _TooLarge
            chunks.append(chunk)
    return b"".join(chunks)


def _is_ignored(path: str) -> bool:
    parts = path.rstrip("/").split("/")
    return any(part in _IGNORED_NAMES for part in parts) or parts[-1].endswith(".pyc")


def _parse_bundle(files: dict[str, bytes], *, limits: ParseLimits, label: str, problems: list[str]) -> ParsedSkill:
    """Find the skill root in a bundle's files and parse from there."""
    root = _find_skill_root(files)
    if root is None:
        nested = sorted(path for path in files if path.rsplit("/", 1)[-1].lower() == "skill.md")
        hint = f" (found: {', '.join(nested[:5])})" if nested else ""
        problems.append(f"no SKILL.md at the root of the {label} or inside its single top-level folder{hint}")
        _fail(label, problems)
    bundle = {path[len(root) :]: content for path, content in files.items()}
    return _parse_skill(
        bundle["SKILL.md"],
        bundle,
        limits=limits,
        label=f"{root}SKILL.md",
        problems=problems,
        source=label,
        file_prefix=root,
    )


def _find_skill_root(files: Mapping[str, bytes]) -> str | None:
    if "SKILL.md" in files:
        return ""
    tops = {path.split("/", 1)[0] for path in files}
    if len(tops) == 1 and all("/" in path for path in files):
        top = tops.pop() + "/"
        if f"{top}SKILL.md" in files:
            return top
    return None


# --- the SKILL.md itself -----------------------------------------------------------


def _parse_skill(
    data: bytes,
    bundle: dict[str, bytes] | None,
    *,
    limits: ParseLimits,
    label: str,
    problems: list[str],
    source: str | None = None,
    file_prefix: str = "",
) -> ParsedSkill:
    source = source or label
    if len(data) > limits.max_skill_md_bytes:
        problems.append(f"{label} is {len(data)} bytes, over the limit of {limits.max_skill_md_bytes} bytes")
        _fail(source, problems)
    text = _decode_utf8(data, label, problems)
    if text is None:
        _fail(source, problems)
    text = text.replace("\r\n", "\n").replace("\r", "\n")

    split = _split_frontmatter(text, label, problems)
    if split is None:
        _fail(source, problems)
    frontmatter_text, frontmatter_line, body, body_line = split

    loaded = _load_frontmatter(frontmatter_text, frontmatter_line, label, limits, problems)
    if loaded is None:
        _fail(source, problems)
    frontmatter, lines = loaded

    def where(*path: str | int) -> str:
        """``label line N`` for a key path, or its nearest ancestor's line (JSON strings have no inner lines)."""
        for depth in range(len(path), -1, -1):
            line = lines.get(tuple(path[:depth]))
            if line:
                return f"{label} line {line}"
        return label

    name = _required_text(frontmatter, "name", where, problems)
    description = _required_text(frontmatter, "description", where, problems)
    skill_id = ""
    if name is not None:
        skill_id = slugify_skill_id(name)
        if not skill_id:
            problems.append(
                f"{where('name')}: name {name!r} gives an empty skill id (it needs ASCII letters or digits)"
            )

    license_value = frontmatter.get("license")
    if license_value is not None and not isinstance(license_value, str):
        problems.append(f"{where('license')}: license must be a string, got {_type_name(license_value)}")
        license_value = None

    for key in _MISPLACED_REQUIREMENT_KEYS:
        if key in frontmatter:
            problems.append(
                f"{where(key)}: top-level '{key}' is not read; list requirements under 'packages:' "
                f"or in 'metadata.requirements'"
            )

    metadata = _metadata(frontmatter, where, problems)
    declared: list[DeclaredRequirement] = []
    non_python: list[NonPythonRequirement] = []
    forms: set[str] = set()

    # seed form
    if "packages" in frontmatter:
        forms.add("seed")
        packages = frontmatter["packages"]
        if packages is None:
            packages = []
        if isinstance(packages, list):
            item_lines = [lines.get(("packages", index)) for index in range(len(packages))]
            accepted, found = parse_requirement_list(
                packages, source="packages", item_lines=item_lines, file_label=label
            )
            declared += accepted
            problems += found
        else:
            problems.append(
                f"{where('packages')}: packages must be a list of requirement strings, got {_type_name(packages)}"
            )

    # Agent Skills form: metadata string(s) and a bundled requirements.txt
    for key in METADATA_REQUIREMENT_KEYS:
        if key not in metadata:
            continue
        forms.add("agent_skills")
        value = metadata[key]
        spot = f"{where('metadata', key)}, metadata.{key}"
        if isinstance(value, str):
            accepted, found = parse_requirement_string(value, where=spot, source="metadata")
        elif isinstance(value, list):
            item_lines = [lines.get(("metadata", key, index)) for index in range(len(value))]
            accepted, found = parse_requirement_list(
                value, source="metadata", where=f"metadata.{key}", item_lines=item_lines, file_label=label
            )
        else:
            accepted, found = [], [f"{spot}: must be a string of requirements, got {_type_name(value)}"]
        declared += accepted
        problems += found
    if bundle is not None and "requirements.txt" in bundle:
        forms.add("agent_skills")
        requirements_text = _decode_utf8(bundle["requirements.txt"], f"{file_prefix}requirements.txt", problems)
        if requirements_text is not None:
            accepted, found = parse_requirements_txt(requirements_text, label=f"{file_prefix}requirements.txt")
            declared += accepted
            problems += found

    # OpenClaw form
    openclaw_key = next((key for key in OPENCLAW_METADATA_KEYS if key in metadata), None)
    if openclaw_key is not None:
        forms.add("openclaw")
        accepted, found, non_python = _openclaw(metadata[openclaw_key], openclaw_key, where, problems)
        declared += accepted
        problems += found

    requirements, requirement_sources = merge_requirements(declared)

    # code
    code, code_path, code_first_line, code_label, function = _choose_code(
        frontmatter, metadata, body, body_line, bundle, label, where, problems, file_prefix
    )
    entrypoint: str | None = None
    if code is not None:
        entrypoint = _entrypoint(code, code_first_line, code_label, function, problems)

    preimport = _preimport(frontmatter, metadata, where, problems)
    files, skipped = _bundled_files(bundle, limits)

    if problems:
        # name what the upload claimed to be, so the failed import can be kept on its skill's record
        identity = {"skill_id": skill_id, "name": name, "requirements": requirements} if skill_id else {}
        _fail(source, problems, **identity)

    declared_form = next((form for form in ("seed", "openclaw", "agent_skills") if form in forms), "none")
    return ParsedSkill(
        skill_id=skill_id,
        name=name or "",
        description=description or "",
        version=content_version(bundle if bundle is not None else {"SKILL.md": data}),
        skill_type="python_code" if code is not None else "prompt_only",
        code=code,
        code_path=code_path,
        entrypoint=entrypoint,
        preimport=preimport,
        template=None if code is not None else body,
        requirements=requirements,
        requirement_sources=requirement_sources,
        non_python_requirements=non_python,
        files=files,
        skipped_files=skipped,
        license=license_value,
        metadata=metadata,
        frontmatter=frontmatter,
        declared_form=declared_form,
    )


def _fail(source: str, problems: list[str], **identity: Any) -> NoReturn:
    count = len(problems)
    shown = "; ".join(problems[:3]) + (f"; and {count - 3} more" if count > 3 else "")
    raise InvalidSkill(
        f"{source} is not a valid skill ({count} problem{'s' if count != 1 else ''}): {shown}", problems=problems, **identity
    )


def _one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:300]


def _type_name(value: Any) -> str:
    return {
        dict: "a mapping",
        list: "a list",
        str: "a string",
        bool: "a boolean",
        int: "a number",
        float: "a number",
        type(None): "nothing",
    }.get(type(value), type(value).__name__)


def _decode_utf8(data: bytes, label: str, problems: list[str]) -> str | None:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        hint = " (it looks like UTF-16; save it as UTF-8)" if data[:2] in (b"\xff\xfe", b"\xfe\xff") else ""
        problems.append(
            f"{label} is not valid UTF-8: byte 0x{data[exc.start]:02x} at line {line}, column {column} "
            f"(offset {exc.start}) cannot be decoded{hint}"
        )
        return None
    return text[1:] if text.startswith("\ufeff") else text


def _split_frontmatter(text: str, label: str, problems: list[str]) -> tuple[str, int, str, int] | None:
    """(frontmatter text, its first line number, body, body's first line number)."""
    lines = text.split("\n")
    start = 0
    while start < len(lines) and not lines[start].strip():
        start += 1
    if start == len(lines) or lines[start].rstrip() != "---":
        problems.append(
            f"{label} has no YAML frontmatter: it must start with a line '---', then name and "
            f"description, then a closing '---'"
        )
        return None
    for end in range(start + 1, len(lines)):
        if lines[end].rstrip() in ("---", "..."):
            frontmatter = "\n".join(lines[start + 1 : end])
            body = "\n".join(lines[end + 1 :])
            return frontmatter, start + 2, body, end + 2
    problems.append(f"{label} line {start + 1}: the frontmatter is never closed (no '---' line after it)")
    return None


# --- YAML, hardened ------------------------------------------------------------------


class _YamlRefused(yaml.MarkedYAMLError):
    pass


class _GuardedLoader(yaml.SafeLoader):
    """SafeLoader without anchors/aliases, with bounded depth and node count."""

    def __init__(self, stream: str, *, max_depth: int, max_nodes: int) -> None:
        super().__init__(stream)
        self._max_depth = max_depth
        self._max_nodes = max_nodes
        self._depth = 0
        self._nodes = 0

    def compose_node(self, parent: Any, index: Any) -> Any:
        event = self.peek_event()
        if isinstance(event, yaml.AliasEvent):
            raise _YamlRefused(problem="YAML aliases (*name) are not allowed", problem_mark=event.start_mark)
        if getattr(event, "anchor", None):
            raise _YamlRefused(problem="YAML anchors (&name) are not allowed", problem_mark=event.start_mark)
        self._nodes += 1
        if self._nodes > self._max_nodes:
            raise _YamlRefused(
                problem=f"the frontmatter has more than {self._max_nodes} YAML nodes", problem_mark=event.start_mark
            )
        self._depth += 1
        try:
            if self._depth > self._max_depth:
                raise _YamlRefused(
                    problem=f"the frontmatter nests deeper than {self._max_depth} levels", problem_mark=event.start_mark
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _load_frontmatter(
    text: str, first_line: int, label: str, limits: ParseLimits, problems: list[str]
) -> tuple[dict[str, Any], dict[tuple[Any, ...], int]] | None:
    size = len(text.encode("utf-8"))
    if size > limits.max_frontmatter_bytes:
        problems.append(
            f"{label}: the frontmatter is {size} bytes, over the limit of {limits.max_frontmatter_bytes} bytes"
        )
        return None
    loader: _GuardedLoader | None = None
    try:
        # the constructor already reads the stream and may refuse characters
        loader = _GuardedLoader(text, max_depth=limits.max_yaml_depth, max_nodes=limits.max_yaml_nodes)
        node = loader.get_single_node()
        value = loader.construct_document(node) if node is not None else None
    except yaml.reader.ReaderError as exc:
        line = first_line + text.count("\n", 0, max(exc.position, 0))
        problems.append(
            f"{label} line {line}: invalid YAML in the frontmatter: character U+{exc.character:04X} is not allowed"
            if isinstance(exc.character, int)
            else f"{label} line {line}: invalid YAML in the frontmatter: {exc.reason}"
        )
        return None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        reason = " ".join(part for part in (exc.context, exc.problem) if part) or _one_line(exc)
        place = f"{label} line {first_line + mark.line}" if mark is not None else label
        problems.append(f"{place}: invalid YAML in the frontmatter: {reason}")
        return None
    except (yaml.YAMLError, ValueError, TypeError, OverflowError, RecursionError) as exc:
        # ValueError: e.g. an integer with more digits than Python converts
        problems.append(f"{label}: invalid YAML in the frontmatter: {_one_line(exc)}")
        return None
    finally:
        if loader is not None:
            loader.dispose()
    if value is None:
        problems.append(f"{label}: the frontmatter is empty; it needs at least name and description")
        return None
    if not isinstance(value, dict):
        problems.append(
            f"{label} line {first_line}: the frontmatter must be a mapping of keys to values, got {_type_name(value)}"
        )
        return None
    lines = _node_lines(node, first_line, label, problems)
    return _json_safe(value), lines


def _node_lines(root: yaml.Node, first_line: int, label: str, problems: list[str]) -> dict[tuple[Any, ...], int]:
    """Line of every key path, and a problem for every duplicate key."""
    lines: dict[tuple[Any, ...], int] = {}
    stack: list[tuple[tuple[Any, ...], yaml.Node]] = [((), root)]
    while stack:
        path, node = stack.pop()
        lines[path] = first_line + node.start_mark.line
        if isinstance(node, yaml.MappingNode):
            seen: set[str] = set()
            for key_node, value_node in node.value:
                if not isinstance(key_node, yaml.ScalarNode):
                    continue
                key = key_node.value
                if key in seen:
                    dotted = ".".join(str(part) for part in (*path, key))
                    problems.append(f"{label} line {first_line + key_node.start_mark.line}: duplicate key '{dotted}'")
                seen.add(key)
                stack.append(((*path, key), value_node))
        elif isinstance(node, yaml.SequenceNode):
            for index, item in enumerate(node.value):
                stack.append(((*path, index), item))
    return lines


def _json_safe(value: Any) -> Any:
    """YAML values as JSON types (dates as ISO text, keys as strings)."""
    if isinstance(value, dict):
        return {key if isinstance(key, str) else _key_text(key): _json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(item) for item in value]
    if isinstance(value, (set, frozenset)):
        return sorted(_key_text(item) for item in value)
    if isinstance(value, (datetime.date, datetime.datetime)):
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return str(value)


def _key_text(key: Any) -> str:
    if key is None:
        return "null"
    if isinstance(key, bool):
        return "true" if key else "false"
    if isinstance(key, (datetime.date, datetime.datetime)):
        return key.isoformat()
    return str(key)


def _json_object(text: str, max_depth: int = 32) -> dict[str, Any] | None:
    """A JSON object string as a dict (None when it is not one, or nests absurdly deep)."""
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if not isinstance(value, dict) or _depth(value) > max_depth:
        return None
    return _json_safe(value)


def _depth(value: Any) -> int:
    depth = 0
    level = [value]
    while level:
        depth += 1
        following: list[Any] = []
        for item in level:
            if isinstance(item, dict):
                following.extend(item.values())
            elif isinstance(item, list):
                following.extend(item)
        level = following
    return depth


# --- frontmatter fields ------------------------------------------------------------


def _required_text(frontmatter: dict[str, Any], key: str, where: Any, problems: list[str]) -> str | None:
    if key not in frontmatter or frontmatter[key] is None:
        problems.append(f"{where(key) if key in frontmatter else where()}: '{key}' is missing from the frontmatter")
        return None
    value = frontmatter[key]
    if not isinstance(value, str):
        problems.append(f"{where(key)}: '{key}' must be a string, got {_type_name(value)}")
        return None
    if not value.strip():
        problems.append(f"{where(key)}: '{key}' is empty")
        return None
    # control characters and invisible formatting (bidi overrides, zero-width) spoof what an admin reads
    hidden = sorted({c for c in value if _is_hidden_character(c, allow_line_breaks=key != "name")})
    if hidden:
        listed = ", ".join(f"U+{ord(c):04X}" for c in hidden)
        problems.append(f"{where(key)}: '{key}' contains control or invisible formatting characters ({listed})")
        return None
    return value.strip()


def _is_hidden_character(char: str, *, allow_line_breaks: bool) -> bool:
    if allow_line_breaks and char in "\t\n\r":
        return False
    return unicodedata.category(char) in ("Cc", "Cf")


def _metadata(frontmatter: dict[str, Any], where: Any, problems: list[str]) -> dict[str, Any]:
    value = frontmatter.get("metadata")
    if value is None:
        return {}
    if isinstance(value, str):
        decoded = _json_object(value)
        if decoded is None:
            problems.append(f"{where('metadata')}: metadata must be a mapping or a JSON object string")
            return {}
        return decoded
    if not isinstance(value, dict):
        problems.append(f"{where('metadata')}: metadata must be a mapping, got {_type_name(value)}")
        return {}
    return value


def _openclaw(
    block: Any, key: str, where: Any, problems: list[str]
) -> tuple[list[DeclaredRequirement], list[str], list[NonPythonRequirement]]:
    accepted: list[DeclaredRequirement] = []
    found: list[str] = []
    non_python: list[NonPythonRequirement] = []
    prefix = f"metadata.{key}"
    if isinstance(block, str):
        decoded = _json_object(block)
        if decoded is None:
            return [], [f"{where('metadata', key)}: {prefix} must be a mapping or a JSON object string"], []
        block = decoded
    if not isinstance(block, dict):
        return [], [f"{where('metadata', key)}: {prefix} must be a mapping, got {_type_name(block)}"], []

    install = block.get("install", [])
    if install is None:
        install = []
    if not isinstance(install, list):
        found.append(f"{where('metadata', key, 'install')}: {prefix}.install must be a list, got {_type_name(install)}")
        install = []
    for index, entry in enumerate(install):
        spot = f"{where('metadata', key, 'install', index)}, {prefix}.install[{index}]"
        if not isinstance(entry, dict):
            found.append(f"{spot}: must be a mapping, got {_type_name(entry)}")
            continue
        kind = entry.get("kind")
        if not isinstance(kind, str) or not kind.strip():
            found.append(f"{spot}: 'kind' must be a non-empty string (uv, brew, node, go, download)")
            continue
        kind = kind.strip()
        if kind == "uv":
            packages = entry.get("package", entry.get("packages"))
            if isinstance(packages, str) and packages.strip():
                more, bad = parse_requirement_string(packages, where=f"{spot}.package", source="openclaw")
            elif isinstance(packages, list) and packages:
                joined = [item if isinstance(item, str) else None for item in packages]
                if None in joined:
                    more, bad = [], [f"{spot}.package: every item must be a string"]
                else:
                    more, bad = parse_requirement_string("\n".join(joined), where=f"{spot}.package", source="openclaw")
            else:
                more, bad = [], [f"{spot}: a 'uv' entry needs a 'package' string naming the Python package(s)"]
            accepted += more
            found += bad
            continue
        fields = OPENCLAW_SPEC_FIELDS.get(kind, ("package", "formula", "cask", "module", "url"))
        spec = next(
            (entry[field] for field in fields if isinstance(entry.get(field), str) and entry[field].strip()), ""
        )
        details = {name: value for name, value in entry.items() if name not in fields and name != "kind"}
        non_python.append(NonPythonRequirement(kind=kind, spec=str(spec).strip(), source="openclaw", details=details))

    requires = block.get("requires")
    if requires is not None and not isinstance(requires, dict):
        found.append(
            f"{where('metadata', key, 'requires')}: {prefix}.requires must be a mapping, got {_type_name(requires)}"
        )
    elif isinstance(requires, dict):
        for field, kind in (("bins", "bin"), ("env", "env"), ("config", "config")):
            names = _string_list(
                requires.get(field), f"{where('metadata', key, 'requires', field)}: {prefix}.requires.{field}", found
            )
            non_python += [NonPythonRequirement(kind=kind, spec=name, source="openclaw") for name in names]
        any_bins = _string_list(
            requires.get("anyBins"),
            f"{where('metadata', key, 'requires', 'anyBins')}: {prefix}.requires.anyBins",
            found,
        )
        if any_bins:
            non_python.append(
                NonPythonRequirement(
                    kind="bin", spec=" | ".join(any_bins), source="openclaw", details={"any_of": any_bins}
                )
            )
    return accepted, found, non_python


def _string_list(value: Any, spot: str, problems: list[str]) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return [value] if value.strip() else []
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return [item for item in value if item.strip()]
    problems.append(f"{spot} must be a list of strings")
    return []


# --- code --------------------------------------------------------------------------------


def _preimport(frontmatter: dict[str, Any], metadata: dict[str, Any], where: Any, problems: list[str]) -> bool:
    """``preimport: false`` (top-level or in metadata) opts out of warm imports.

    Packages whose import has side effects (opening files, reading the clock
    or environment at import time) may need the job's context first."""
    value = True
    for spot, declared in ((where("preimport"), frontmatter.get("preimport")),
                           (where("metadata", "preimport"), metadata.get("preimport"))):  # fmt: skip
        if declared is None:
            continue
        if isinstance(declared, str) and declared.strip().lower() in ("true", "false"):
            declared = declared.strip().lower() == "true"  # Agent Skills metadata values are strings
        if not isinstance(declared, bool):
            problems.append(f"{spot}: preimport must be true or false, got {_type_name(declared)}")
            continue
        value = value and declared
    return value


def _choose_code(
    frontmatter: dict[str, Any],
    metadata: dict[str, Any],
    body: str,
    body_line: int,
    bundle: dict[str, bytes] | None,
    label: str,
    where: Any,
    problems: list[str],
    file_prefix: str = "",
) -> tuple[str | None, str | None, int, str, str | None]:
    """(code, code_path, line of its first line in its file, file label, function named by entrypoint)."""
    declared = frontmatter.get("entrypoint")
    spot = where("entrypoint")
    from_metadata = metadata.get("entrypoint")
    if declared is not None and not isinstance(declared, str):
        problems.append(f"{spot}: entrypoint must be a string, got {_type_name(declared)}")
        declared = None
    if from_metadata is not None and not isinstance(from_metadata, str):
        problems.append(
            f"{where('metadata', 'entrypoint')}: metadata.entrypoint must be a string, got {_type_name(from_metadata)}"
        )
        from_metadata = None
    if declared and from_metadata and declared.strip() != from_metadata.strip():
        problems.append(f"{spot}: entrypoint {declared!r} and metadata.entrypoint {from_metadata!r} disagree")
    if declared is None and from_metadata is not None:
        declared, spot = from_metadata, where("metadata", "entrypoint")

    script: str | None = None
    function: str | None = None
    if declared is not None:
        text = declared.strip()
        if ":" in text:
            script, function = (part.strip() for part in text.rsplit(":", 1))
        elif text.endswith(".py"):
            script = text
        else:
            function = text
        if script is not None:
            script = script[2:] if script.startswith("./") else script
            reason = unsafe_path_reason(script)
            if reason or not script.endswith(".py"):
                problems.append(
                    f"{spot}: entrypoint script {script!r} must be a relative path to a .py file in the skill"
                )
                script = None
        if function is not None and (not function.isidentifier() or keyword.iskeyword(function)):
            problems.append(f"{spot}: entrypoint {function!r} is not a valid Python function name")
            function = None
        if script is None and function is None:
            return None, None, 1, label, None

    if script is not None:
        if bundle is None or script not in bundle:
            problems.append(f"{spot}: entrypoint names {script!r}, which is not in the upload")
            return None, None, 1, label, function
        code = _decode_utf8(bundle[script], file_prefix + script, problems)
        return code, script, 1, file_prefix + script, function

    block = _first_python_block(body)
    if block is not None:
        code, offset = block
        return code, None, body_line + offset, label, function

    if bundle is not None:
        scripts = sorted(path for path in bundle if path.endswith(".py"))
        if len(scripts) == 1:
            code = _decode_utf8(bundle[scripts[0]], file_prefix + scripts[0], problems)
            return code, scripts[0], 1, file_prefix + scripts[0], function

    if function is not None:
        problems.append(
            f"{spot}: entrypoint {function!r} is set but the skill has no Python code "
            f"(no ```python block, and no single bundled .py script)"
        )
    return None, None, 1, label, None


def _first_python_block(body: str) -> tuple[str, int] | None:
    """The first fenced python block: (code, index of its first code line within the body)."""
    lines = body.split("\n")
    index = 0
    while index < len(lines):
        opening = _FENCE_OPEN.match(lines[index])
        if not opening:
            index += 1
            continue
        indent, fence, info = len(opening.group(1)), opening.group(2), opening.group(3).strip()
        if fence[0] == "`" and "`" in info:
            index += 1  # not a fence: backtick fences cannot have backticks in their info string
            continue
        language = info.split()[0].lower().strip("{}.") if info else ""
        closing = re.compile(rf"^ {{0,3}}{re.escape(fence[0])}{{{len(fence)},}}\s*$")
        end = index + 1
        while end < len(lines) and not closing.match(lines[end]):
            end += 1
        if language in _PYTHON_FENCE_INFO:
            content = [_dedent(line, indent) for line in lines[index + 1 : end]]
            return "\n".join(content) + "\n", index + 1
        index = end + 1
    return None


def _dedent(line: str, indent: int) -> str:
    removable = len(line) - len(line.lstrip(" "))
    return line[min(indent, removable) :]


def _entrypoint(code: str, first_line: int, code_label: str, function: str | None, problems: list[str]) -> str | None:
    try:
        tree = ast.parse(code)
    except SyntaxError as exc:
        line = first_line + (exc.lineno or 1) - 1
        problems.append(f"{code_label} line {line}: Python syntax error: {exc.msg}")
        return None
    except (RecursionError, MemoryError):
        problems.append(f"{code_label}: the Python code is nested too deeply to be parsed")
        return None
    except ValueError as exc:  # e.g. NUL characters in the source
        problems.append(f"{code_label}: the Python code cannot be parsed: {_one_line(exc)}")
        return None
    functions = [node.name for node in tree.body if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))]
    listed = ", ".join(dict.fromkeys(functions)) or "none"
    if function is not None:
        if function not in functions:
            problems.append(
                f"{code_label}: entrypoint function {function!r} is not defined at the top level of the code "
                f"(functions found: {listed})"
            )
            return None
        return function
    if "execute" in functions:
        return "execute"
    public = list(dict.fromkeys(name for name in functions if not name.startswith("_")))
    if len(public) == 1:
        return public[0]
    problems.append(
        f"{code_label}: the code defines no function 'execute' and {len(public)} public functions "
        f"({', '.join(public) or 'none'}); name the one to call with 'entrypoint:' in the frontmatter"
    )
    return None


def _bundled_files(bundle: dict[str, bytes] | None, limits: ParseLimits) -> tuple[dict[str, str], dict[str, str]]:
    files: dict[str, str] = {}
    skipped: dict[str, str] = {}
    for path in sorted(bundle or {}):
        if path == "SKILL.md":
            continue
        content = bundle[path]  # type: ignore[index]
        if len(content) > limits.max_bundled_text_bytes:
            skipped[path] = f"larger than {limits.max_bundled_text_bytes} bytes"
            continue
        try:
            text = content.decode("utf-8")
        except UnicodeDecodeError:
            skipped[path] = "not UTF-8 text"
            continue
        if "\x00" in text:
            skipped[path] = "binary (contains NUL bytes)"
            continue
        files[path] = text
    return files, skipped

"""Where a skill's requirements come from: the seed, Agent Skills, OpenClaw (and ClawBio) forms.

All forms are read and merged (see requirements.py for the entry syntax and what is refused):

* **seed** (``packages:``): a top-level list of PEP 508 strings.
* **Agent Skills** (the spec allows only name, description, license, allowed-tools, metadata and
  compatibility): ``requirements.txt`` at the skill root or in ``scripts/``, and/or a string (or list)
  under ``metadata.requirements`` (alias ``metadata.dependencies``).
* **ClawBio**: a ``dependencies`` mapping, top-level or under ``metadata``, with ``python`` (an
  interpreter constraint) and ``packages`` (a list of requirements); other keys in it (``external``
  tools) become ``non_python_requirements``.
* **Script metadata**: a PEP 723 ``# /// script`` block's ``dependencies`` in a bundled ``.py``, and the
  ``[project] dependencies`` of a ``pyproject.toml`` in ``scripts/`` (scripts run with ``uv run``).
* **OpenClaw**: ``metadata.openclaw.install`` entries (legacy keys ``clawdbot``/``clawdis``); kinds
  ``uv`` and ``pip`` are Python requirements through their ``package`` string, every other kind (brew,
  node, go, download, ...) and ``metadata.openclaw.requires`` (bins, anyBins, env, config) become
  ``non_python_requirements``.

A top-level ``requirements:`` (or a ``dependencies:`` that is not the ClawBio mapping) is a problem
rather than being ignored, so a misplaced declaration never disappears silently.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from typing import Any

from chalicelib.skills.model import NonPythonRequirement
from chalicelib.skills.parser.common import decode_utf8, type_name
from chalicelib.skills.parser.frontmatter import json_object
from chalicelib.skills.parser.imports import is_test_file
from chalicelib.skills.requirements import (
    DeclaredRequirement,
    parse_requirement_list,
    parse_requirement_string,
    parse_requirements_txt,
)

METADATA_REQUIREMENT_KEYS = ("requirements", "dependencies")
OPENCLAW_METADATA_KEYS = ("openclaw", "clawdbot", "clawdis")
#: OpenClaw install kinds whose ``package`` names Python distributions
PYTHON_INSTALL_KINDS = ("uv", "pip")
#: the field holding the thing to install, per OpenClaw install kind
OPENCLAW_SPEC_FIELDS = {
    "brew": ("formula", "cask"), "node": ("package",), "npm": ("package",), "go": ("module",), "download": ("url",),
    "apt": ("package",), "conda": ("package",),
}  # fmt: skip
#: where a bundled requirements.txt is looked for, in this order
REQUIREMENTS_TXT_PATHS = ("requirements.txt", "scripts/requirements.txt")
_MISPLACED_REQUIREMENT_KEYS = ("requirements", "dependencies")
PYPROJECT_PATHS = ("scripts/pyproject.toml",)
# PEP 723: "# /// script", then "#"-prefixed TOML lines, then "# ///"
_PEP723 = re.compile(r"^# /// script\s*$\n(?P<content>(^#(| .*)$\n)+?)^# ///\s*$", re.MULTILINE)


@dataclass
class Declared:
    """Everything the skill declared it needs."""

    requirements: list[DeclaredRequirement] = field(default_factory=list)
    non_python: list[NonPythonRequirement] = field(default_factory=list)
    forms: set[str] = field(default_factory=set)


def declared_requirements(
    frontmatter: dict[str, Any],
    metadata: dict[str, Any],
    lines: dict[tuple[Any, ...], int],
    where: Any,
    bundle: dict[str, bytes] | None,
    label: str,
    file_prefix: str,
    problems: list[str],
) -> Declared:
    """Read every requirement form of the frontmatter and bundle; problems go to ``problems``."""
    found = Declared()
    for key in _MISPLACED_REQUIREMENT_KEYS:
        if key in frontmatter and not _is_dependency_mapping(frontmatter[key]):
            problems.append(
                f"{where(key)}: top-level '{key}' is not read; list requirements under 'packages:' "
                f"or in 'metadata.requirements'"
            )

    # seed form
    if "packages" in frontmatter:
        found.forms.add("seed")
        packages = frontmatter["packages"]
        if packages is None:
            packages = []
        if isinstance(packages, list):
            item_lines = [lines.get(("packages", index)) for index in range(len(packages))]
            accepted, bad = parse_requirement_list(packages, source="packages", item_lines=item_lines, file_label=label)
            found.requirements += accepted
            problems += bad
        else:
            problems.append(
                f"{where('packages')}: packages must be a list of requirement strings, got {type_name(packages)}"
            )

    # ClawBio's dependencies mapping, at the top level or under metadata
    for path in (("dependencies",), ("metadata", "dependencies")):
        holder = frontmatter if len(path) == 1 else metadata
        if _is_dependency_mapping(holder.get(path[-1])):
            found.forms.add("agent_skills")
            _dependency_mapping(holder[path[-1]], path, lines, where, label, found, problems)

    # Agent Skills form: metadata string(s) and a bundled requirements.txt
    for key in METADATA_REQUIREMENT_KEYS:
        if key not in metadata or _is_dependency_mapping(metadata[key]):
            continue
        found.forms.add("agent_skills")
        value = metadata[key]
        spot = f"{where('metadata', key)}, metadata.{key}"
        if isinstance(value, str):
            accepted, bad = parse_requirement_string(value, where=spot, source="metadata")
        elif isinstance(value, list):
            item_lines = [lines.get(("metadata", key, index)) for index in range(len(value))]
            accepted, bad = parse_requirement_list(
                value, source="metadata", where=f"metadata.{key}", item_lines=item_lines, file_label=label
            )
        else:
            accepted, bad = [], [f"{spot}: must be a string of requirements, got {type_name(value)}"]
        found.requirements += accepted
        problems += bad
    for path in REQUIREMENTS_TXT_PATHS:
        if bundle is None or path not in bundle:
            continue
        found.forms.add("agent_skills")
        text = decode_utf8(bundle[path], f"{file_prefix}{path}", problems)
        if text is not None:
            accepted, bad = parse_requirements_txt(text, label=f"{file_prefix}{path}")
            found.requirements += accepted
            problems += bad

    # script metadata: PEP 723 blocks and scripts/pyproject.toml
    for path in sorted(bundle or {}):
        if path.endswith(".py") and not is_test_file(path):
            _pep723(bundle[path], f"{file_prefix}{path}", found, problems)  # type: ignore[index]
        elif path in PYPROJECT_PATHS:
            _pyproject(bundle[path], f"{file_prefix}{path}", found, problems)  # type: ignore[index]

    # OpenClaw form
    openclaw_key = next((key for key in OPENCLAW_METADATA_KEYS if key in metadata), None)
    if openclaw_key is not None:
        found.forms.add("openclaw")
        accepted, bad, non_python = _openclaw(metadata[openclaw_key], openclaw_key, where, problems)
        found.requirements += accepted
        found.non_python += non_python
        problems += bad
    return found


def _is_dependency_mapping(value: Any) -> bool:
    """ClawBio's mapping: ``python`` and/or ``packages``, maybe beside other kinds (``external`` tools, ...)."""
    return isinstance(value, dict) and bool(set(value) & {"python", "packages"}) and all(isinstance(k, str) for k in value)


def _other_dependencies(value: dict[str, Any], path: tuple[str, ...], where: Any, found: Declared,
                        problems: list[str]) -> None:  # fmt: skip
    """Kinds beside python and packages (``external: [multiqc>=1.20]``): shown as needs pip is not asked to
    meet, never installed on the skill's word."""
    for kind, entries in value.items():
        if kind in ("python", "packages") or entries is None:
            continue
        items = entries if isinstance(entries, list) else [entries]
        for item in items:
            if isinstance(item, (str, int, float)) and str(item).strip():
                found.non_python.append(NonPythonRequirement(kind=kind, spec=str(item).strip(), source="dependencies"))
            else:
                problems.append(f"{where(*path, kind)}: {'.'.join(path)}.{kind} entries must be strings, got {type_name(item)}")


def _dependency_mapping(
    value: dict[str, Any], path: tuple[str, ...], lines: dict[tuple[Any, ...], int], where: Any, label: str,
    found: Declared, problems: list[str],
) -> None:  # fmt: skip
    dotted = ".".join(path)
    _other_dependencies(value, path, where, found, problems)
    python = value.get("python")
    if python is not None:
        if isinstance(python, (str, int, float)) and str(python).strip():
            found.non_python.append(NonPythonRequirement(kind="python", spec=str(python).strip(), source="dependencies"))
        else:
            problems.append(f"{where(*path, 'python')}: {dotted}.python must be a version constraint string")
    packages = value.get("packages")
    if packages is None:
        return
    if not isinstance(packages, list):
        problems.append(f"{where(*path, 'packages')}: {dotted}.packages must be a list, got {type_name(packages)}")
        return
    item_lines = [lines.get((*path, "packages", index)) for index in range(len(packages))]
    accepted, bad = parse_requirement_list(
        packages, source="dependencies", where=f"{dotted}.packages", item_lines=item_lines, file_label=label
    )
    found.requirements += accepted
    problems += bad


def _openclaw(
    block: Any, key: str, where: Any, problems: list[str]
) -> tuple[list[DeclaredRequirement], list[str], list[NonPythonRequirement]]:
    accepted: list[DeclaredRequirement] = []
    found: list[str] = []
    non_python: list[NonPythonRequirement] = []
    prefix = f"metadata.{key}"
    if isinstance(block, str):
        decoded = json_object(block)
        if decoded is None:
            return [], [f"{where('metadata', key)}: {prefix} must be a mapping or a JSON object string"], []
        block = decoded
    if not isinstance(block, dict):
        return [], [f"{where('metadata', key)}: {prefix} must be a mapping, got {type_name(block)}"], []

    install = block.get("install", [])
    if install is None:
        install = []
    if not isinstance(install, list):
        found.append(f"{where('metadata', key, 'install')}: {prefix}.install must be a list, got {type_name(install)}")
        install = []
    for index, entry in enumerate(install):
        spot = f"{where('metadata', key, 'install', index)}, {prefix}.install[{index}]"
        if not isinstance(entry, dict):
            found.append(f"{spot}: must be a mapping, got {type_name(entry)}")
            continue
        kind = entry.get("kind")
        if not isinstance(kind, str) or not kind.strip():
            found.append(f"{spot}: 'kind' must be a non-empty string (uv, brew, node, go, download)")
            continue
        kind = kind.strip()
        if kind in PYTHON_INSTALL_KINDS:
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
                more, bad = [], [f"{spot}: a '{kind}' entry needs a 'package' string naming the Python package(s)"]
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
            f"{where('metadata', key, 'requires')}: {prefix}.requires must be a mapping, got {type_name(requires)}"
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



def _pep723(data: bytes, label: str, found: Declared, problems: list[str]) -> None:
    if b"# /// script" not in data:
        return
    text = decode_utf8(data, label, [])
    match = _PEP723.search(text.replace("\r\n", "\n")) if text is not None else None
    if match is None:
        return
    toml = "\n".join(line[2:] if line.startswith("# ") else line[1:] for line in match["content"].splitlines())
    line = text[: match.start()].count("\n") + 1  # type: ignore[union-attr]
    _toml_dependencies(toml, lambda table: table, f"{label} line {line}, PEP 723 block", "pep723", found, problems)


def _pyproject(data: bytes, label: str, found: Declared, problems: list[str]) -> None:
    text = decode_utf8(data, label, problems)
    if text is not None:
        _toml_dependencies(text, lambda table: table.get("project") or {}, label, "pyproject.toml", found, problems)


def _toml_dependencies(text: str, section: Any, spot: str, source: str, found: Declared, problems: list[str]) -> None:
    try:
        table = section(tomllib.loads(text))
    except tomllib.TOMLDecodeError as exc:
        problems.append(f"{spot}: invalid TOML: {exc}")
        return
    dependencies = table.get("dependencies") if isinstance(table, dict) else None
    if dependencies is None:
        return
    if not isinstance(dependencies, list):
        problems.append(f"{spot}: dependencies must be a list of requirement strings")
        return
    found.forms.add("agent_skills")
    accepted, bad = parse_requirement_list(dependencies, source=source, where="dependencies", file_label=spot)  # type: ignore[arg-type]
    found.requirements += accepted
    problems += bad

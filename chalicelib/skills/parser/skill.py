"""Orchestration: SKILL.md, zip, folder or path in, one :class:`ParsedSkill` (or every problem) out."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from chalicelib.skills.model import ParsedSkill, content_version, slugify_skill_id
from chalicelib.skills.parser.bundle import bundled_files, find_skill_root, read_folder, read_zip, unsafe_path_reason
from chalicelib.skills.parser.code import choose_code
from chalicelib.skills.parser.common import ParseLimits, decode_utf8, fail, type_name
from chalicelib.skills.parser.fields import read_metadata, read_preimport, required_text
from chalicelib.skills.parser.frontmatter import load_frontmatter, split_frontmatter
from chalicelib.skills.parser.imports import proposed_requirements, undeclared_imports
from chalicelib.skills.parser.network_field import read_network
from chalicelib.skills.parser.requirement_forms import declared_requirements
from chalicelib.skills.requirements import merge_requirements

_SKILL_TYPES = {"function": "python_code", "script": "script", "prompt": "prompt_only"}


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
    files, problems = read_zip(data, limits=limits, label=label)
    return _parse_bundle(files, limits=limits, label=label, problems=problems)


def parse_folder(path: str | os.PathLike[str], *, limits: ParseLimits | None = None) -> ParsedSkill:
    """Parse a skill folder (the CLI's form of a zip); the same rules as :func:`parse_zip`."""
    limits = limits or ParseLimits()
    root = Path(path)
    label = str(root)
    if root.is_symlink() or not root.is_dir():
        fail(label, [f"{label} is not a folder"])
    files, problems = read_folder(root, limits=limits, label=label)
    return _parse_bundle(files, limits=limits, label=label, problems=problems)


def parse_path(path: str | os.PathLike[str], *, limits: ParseLimits | None = None) -> ParsedSkill:
    """CLI helper: a folder, a ``.zip`` file, or a SKILL.md file."""
    target = Path(path)
    if target.is_dir():
        return parse_folder(target, limits=limits)
    if not target.is_file():
        fail(str(target), [f"{target} does not exist"])
    data = target.read_bytes()
    if target.suffix.lower() == ".zip" or data[:4] == b"PK\x03\x04":
        return parse_zip(data, limits=limits, label=str(target))
    return parse_skill_md(data, limits=limits, label=str(target))


def _parse_bundle(files: dict[str, bytes], *, limits: ParseLimits, label: str, problems: list[str]) -> ParsedSkill:
    """Find the skill root in a bundle's files and parse from there."""
    root = find_skill_root(files)
    if root is None:
        nested = sorted(path for path in files if path.rsplit("/", 1)[-1].lower() == "skill.md")
        hint = f" (found: {', '.join(nested[:5])})" if nested else ""
        problems.append(f"no SKILL.md at the root of the {label} or inside its single top-level folder{hint}")
        fail(label, problems)
    bundle = {path[len(root) :]: content for path, content in files.items()}
    return _parse_skill(bundle["SKILL.md"], bundle, limits=limits, label=f"{root}SKILL.md", problems=problems,
                        source=label, file_prefix=root)  # fmt: skip


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
        fail(source, problems)
    text = decode_utf8(data, label, problems)
    if text is None:
        fail(source, problems)
    text = text.replace("\r\n", "\n").replace("\r", "\n")

    split = split_frontmatter(text, label, problems)
    if split is None:
        fail(source, problems)
    frontmatter_text, frontmatter_line, body, body_line = split

    loaded = load_frontmatter(frontmatter_text, frontmatter_line, label, limits, problems)
    if loaded is None:
        fail(source, problems)
    frontmatter, lines = loaded

    def where(*path: str | int) -> str:
        """``label line N`` for a key path, or its nearest ancestor's line (JSON strings have no inner lines)."""
        for depth in range(len(path), -1, -1):
            line = lines.get(tuple(path[:depth]))
            if line:
                return f"{label} line {line}"
        return label

    name = required_text(frontmatter, "name", where, problems)
    description = required_text(frontmatter, "description", where, problems)
    skill_id = ""
    if name is not None:
        skill_id = slugify_skill_id(name)
        if not skill_id:
            problems.append(f"{where('name')}: name {name!r} gives an empty skill id (it needs ASCII letters or digits)")

    license_value = frontmatter.get("license")
    if license_value is not None and not isinstance(license_value, str):
        problems.append(f"{where('license')}: license must be a string, got {type_name(license_value)}")
        license_value = None

    metadata = read_metadata(frontmatter, where, problems)
    declared = declared_requirements(frontmatter, metadata, lines, where, bundle, label, file_prefix, problems)
    requirements, requirement_sources = merge_requirements(declared.requirements)

    choice = choose_code(frontmatter, metadata, body, body_line, bundle, label, where, problems,
                         file_prefix=file_prefix, seed_form="seed" in declared.forms)  # fmt: skip
    preimport = read_preimport(frontmatter, metadata, where, problems)
    network = read_network(frontmatter, metadata, where, problems)
    files, skipped = bundled_files(bundle, limits)

    if problems:
        # name what the upload claimed to be, so the failed import can be kept on its skill's record
        identity = {"skill_id": skill_id, "name": name, "requirements": requirements} if skill_id else {}
        fail(source, problems, **identity)

    python_files = {path: text for path, text in files.items() if path.endswith(".py")}
    if choice.code is not None and choice.code_path is None:
        python_files["SKILL.md"] = choice.code  # the body's code block is code; its examples are not
    undeclared = undeclared_imports(python_files, requirements)
    declared_form = next((form for form in ("seed", "openclaw", "agent_skills") if form in declared.forms), "none")
    return ParsedSkill(
        skill_id=skill_id,
        name=name or "",
        description=description or "",
        version=content_version(bundle if bundle is not None else {"SKILL.md": data}),
        skill_type=_SKILL_TYPES[choice.kind],  # type: ignore[arg-type]
        code=choice.code,
        code_path=choice.code_path,
        entrypoint=choice.entrypoint,
        code_choice=choice.record(),
        scripts=choice.scripts,
        preimport=preimport,
        template=None if choice.code is not None else body,
        requirements=requirements,
        requirement_sources=requirement_sources,
        undeclared_imports=undeclared,
        proposed_requirements=proposed_requirements(undeclared),
        non_python_requirements=declared.non_python,
        files=files,
        skipped_files=skipped,
        license=license_value,
        metadata=metadata,
        frontmatter=frontmatter,
        declared_form=declared_form,
        network=network,
    )

"""What a parsed skill looks like, independent of how it was uploaded."""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

SkillType = Literal["python_code", "script", "prompt_only"]  # script: bundled scripts run as commands
DeclaredForm = Literal["seed", "agent_skills", "openclaw", "none"]

MAX_SKILL_ID_LENGTH = 64
_NOT_SLUG = re.compile(r"[^a-z0-9]+")
_BUNDLE_HASH_PREFIX = b"skillharbor-bundle-v1\x00"


def slugify_skill_id(name: str) -> str:
    """Lowercase ASCII letters, digits and single dashes, at most 64 characters.

    Accented letters lose their accents ("Café" -> "cafe"); other characters
    become dashes. The result may be empty (the parser reports that).
    """
    ascii_name = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii")
    slug = _NOT_SLUG.sub("-", ascii_name.lower()).strip("-")
    return slug[:MAX_SKILL_ID_LENGTH].rstrip("-")


def content_version(files: Mapping[str, bytes]) -> str:
    """sha256 hex identifying the uploaded content.

    A lone SKILL.md hashes to the sha256 of its exact bytes, whether it came
    as a file or as the only file of a zip/folder. A bundle hashes its sorted
    (path, content) pairs, each length-prefixed so no two bundles collide by
    concatenation; paths are relative to the skill root, so zipping with or
    without the top-level folder gives the same version.
    """
    if set(files) == {"SKILL.md"}:
        return hashlib.sha256(files["SKILL.md"]).hexdigest()
    digest = hashlib.sha256(_BUNDLE_HASH_PREFIX)
    for path in sorted(files):
        encoded_path = path.encode("utf-8")
        content = files[path]
        digest.update(len(encoded_path).to_bytes(8, "big"))
        digest.update(encoded_path)
        digest.update(len(content).to_bytes(8, "big"))
        digest.update(content)
    return digest.hexdigest()


class NonPythonRequirement(BaseModel):
    """Something the skill needs that pip cannot provide (the runner reports it unmet)."""

    model_config = ConfigDict(frozen=True)

    kind: str  # brew, node, go, download, bin, env, config, ... as declared
    spec: str  # formula / package / module / url / binary name / variable
    source: str = "openclaw"
    details: dict[str, Any] = Field(default_factory=dict)  # the rest of the declaring entry (id, label, os, ...)


class ParsedSkill(BaseModel):
    """A SKILL.md (alone, or with the files of its zip/folder) after validation."""

    model_config = ConfigDict(extra="forbid")

    skill_id: str
    name: str
    description: str
    version: str  # sha256 hex of the uploaded content, see content_version()
    skill_type: SkillType
    code: str | None = None
    code_path: str | None = None  # bundled script the code came from; None when from a ```python block
    entrypoint: str | None = None  # function the runner calls (python_code only)
    code_choice: dict[str, Any] = Field(default_factory=dict)  # kind, chosen, reason, ambiguous: see parser/code.py
    scripts: list[str] = Field(default_factory=list)  # bundled files the skill runs as commands
    preimport: bool = True  # False: warm containers must not import the packages before the job arrives
    template: str | None = None  # markdown body, for prompt_only and script skills
    requirements: list[str] = Field(default_factory=list)  # normalized PEP 508, merged, sorted
    requirement_sources: dict[str, list[str]] = Field(default_factory=dict)  # requirement -> sources
    # imports of the code and bundled scripts that no requirement provides (import, distribution, files,
    # optional, evidence), and the distributions proposed for them: shown, never added unless accepted
    undeclared_imports: list[dict[str, Any]] = Field(default_factory=list)
    proposed_requirements: list[str] = Field(default_factory=list)
    accepted_requirements: list[str] = Field(default_factory=list)  # added on import by the publisher/admin
    non_python_requirements: list[NonPythonRequirement] = Field(default_factory=list)
    files: dict[str, str] = Field(default_factory=dict)  # bundled text files, path -> text (SKILL.md excluded)
    skipped_files: dict[str, str] = Field(default_factory=dict)  # bundled files not kept in `files`, path -> why
    license: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)  # frontmatter `metadata` (JSON string form decoded)
    frontmatter: dict[str, Any] = Field(default_factory=dict)  # the whole frontmatter, JSON-safe
    declared_form: DeclaredForm = "none"
    network: list[str] = Field(default_factory=list)  # hosts the skill may reach, ``host`` or ``host:port`` (skills/network.py)

    def to_record(self) -> dict[str, Any]:
        """A JSON-serialisable dict (round-trips through ``ParsedSkill.from_record``)."""
        return self.model_dump(mode="json")

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> ParsedSkill:
        """Rebuild from ``to_record()`` output; keys that are not fields (pk, sk, status...) are ignored."""
        return cls.model_validate({key: value for key, value in record.items() if key in cls.model_fields})

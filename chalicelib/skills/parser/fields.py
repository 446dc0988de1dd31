"""Frontmatter fields other than requirements and code: name, description, metadata, preimport."""

from __future__ import annotations

import unicodedata
from typing import Any

from chalicelib.skills.parser.common import type_name
from chalicelib.skills.parser.frontmatter import json_object


def required_text(frontmatter: dict[str, Any], key: str, where: Any, problems: list[str]) -> str | None:
    if key not in frontmatter or frontmatter[key] is None:
        problems.append(f"{where(key) if key in frontmatter else where()}: '{key}' is missing from the frontmatter")
        return None
    value = frontmatter[key]
    if not isinstance(value, str):
        problems.append(f"{where(key)}: '{key}' must be a string, got {type_name(value)}")
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


def read_metadata(frontmatter: dict[str, Any], where: Any, problems: list[str]) -> dict[str, Any]:
    value = frontmatter.get("metadata")
    if value is None:
        return {}
    if isinstance(value, str):
        decoded = json_object(value)
        if decoded is None:
            problems.append(f"{where('metadata')}: metadata must be a mapping or a JSON object string")
            return {}
        return decoded
    if not isinstance(value, dict):
        problems.append(f"{where('metadata')}: metadata must be a mapping, got {type_name(value)}")
        return {}
    return value



def read_preimport(frontmatter: dict[str, Any], metadata: dict[str, Any], where: Any, problems: list[str]) -> bool:
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
            problems.append(f"{spot}: preimport must be true or false, got {type_name(declared)}")
            continue
        value = value and declared
    return value


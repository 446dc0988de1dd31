"""Which PyPI distribution provides an import name, from data built out of wheel metadata.

The map is ``data/import_names.json`` (built by tools/build_import_names.py; every entry names the
wheel and file it was read from). A name the map does not know is reported as unknown, never guessed.
"""

from __future__ import annotations

import json
import re
from functools import cache
from pathlib import Path
from typing import Any

DATA = Path(__file__).resolve().parent / "data" / "import_names.json"


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@cache
def _imports() -> dict[str, dict[str, Any]]:
    return json.loads(DATA.read_text(encoding="utf-8"))["imports"]


def provider(import_name: str) -> dict[str, Any] | None:
    """The map's entry for a top-level import name: distribution, version, wheel, sha256, evidence."""
    return _imports().get(import_name)


def provides(distribution: str, import_name: str) -> bool:
    """Whether a declared distribution provides ``import_name`` (by the map, or by having that very name)."""
    wanted = canonical(distribution)
    entry = provider(import_name)
    if entry is not None and (entry["distribution"] == wanted or wanted in entry.get("alternatives", ())):
        return True
    return canonical(import_name) == wanted

"""What a scan's verdict depends on, as a short fingerprint, so the schedule knows which skills to re-scan.

Two parts: the advisory database (its source, snapshot commit and record count) and the rule pack (a
digest of the scanner's own rules, data and code, everything under ``scanning/`` but the advisory
snapshot). A deployment that ships new rules, or an advisory refresh, changes the basis; every ready
skill version scanned under another basis is scanned again.
"""

from __future__ import annotations

import functools
import hashlib
from pathlib import Path
from typing import Any

SCANNING_DIR = Path(__file__).resolve().parent
#: the advisory snapshot is the database half of the basis, not part of the rule pack
_NOT_RULES = {"advisory-db.tar.xz", "advisory-db.LICENSE", "PROVENANCE.md"}
_RULE_SUFFIXES = {".py", ".yaml", ".yml", ".txt", ".csv", ".json"}


@functools.lru_cache(maxsize=1)
def rule_pack_digest() -> str:
    digest = hashlib.sha256()
    for path in sorted(SCANNING_DIR.rglob("*")):
        if path.is_file() and path.suffix in _RULE_SUFFIXES and path.name not in _NOT_RULES and "__pycache__" not in path.parts:
            digest.update(path.relative_to(SCANNING_DIR).as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def database_identity(status: dict[str, Any] | None) -> str:
    """The advisory database as ``source@commit#records`` (``unavailable`` when it cannot load)."""
    if not status or not status.get("ok"):
        return "unavailable"
    return f"{status.get('source')}@{status.get('commit') or '-'}#{status.get('records')}"


def scan_basis(database_status: dict[str, Any] | None) -> str:
    return f"rules:{rule_pack_digest()};advisories:{database_identity(database_status)}"

"""Malicious-skill detection: a YAML rule pack run over every file of a skill.

Public interface::

    scan_skill(files: Mapping[str, bytes | str]) -> list[MaliceFinding]
    scan_path(path) -> list[MaliceFinding]          # folder, zip or SKILL.md
    load_rules() -> list[Rule]
"""

from chalicelib.scanning.malice.engine import MaliceFinding, Rule, load_rules, scan_text
from chalicelib.scanning.malice.skill import scan_path, scan_skill

__all__ = ["MaliceFinding", "Rule", "load_rules", "scan_path", "scan_skill", "scan_text"]

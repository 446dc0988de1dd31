"""Malicious-skill detection: a YAML rule pack run over every file of a skill.

Public interface::

    scan_skill(files: Mapping[str, bytes | str]) -> list[MaliceFinding]
    scan_path(path) -> list[MaliceFinding]          # folder, zip or SKILL.md
    scan_upload(data, is_zip=...) -> list[MaliceFinding]
    load_rules() -> list[Rule]

Severity policy: CRITICAL = malicious, the import is blocked until an admin approves that version with release_malicious;
HIGH = an admin approves that skill version; MEDIUM and LOW are reported.
"""

from chalicelib.scanning.malice.engine import MaliceFinding, Rule, load_rules, scan_text
from chalicelib.scanning.malice.skill import scan_path, scan_skill, scan_upload

__all__ = ["MaliceFinding", "Rule", "load_rules", "scan_path", "scan_skill", "scan_text", "scan_upload"]

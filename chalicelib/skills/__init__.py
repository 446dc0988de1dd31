"""SKILL.md parsing: the seed, Agent Skills and OpenClaw forms, as SKILL.md, zip or folder."""

from chalicelib.skills.model import NonPythonRequirement, ParsedSkill, content_version, slugify_skill_id
from chalicelib.skills.parser import ParseLimits, parse_folder, parse_path, parse_skill_md, parse_zip

__all__ = [
    "NonPythonRequirement",
    "ParseLimits",
    "ParsedSkill",
    "content_version",
    "parse_folder",
    "parse_path",
    "parse_skill_md",
    "parse_zip",
    "slugify_skill_id",
]

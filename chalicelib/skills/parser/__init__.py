"""Turning an uploaded SKILL.md, zip or folder into a :class:`ParsedSkill`.

Entry points: :func:`parse_skill_md`, :func:`parse_zip`, :func:`parse_folder` and :func:`parse_path`.
Each returns a ``ParsedSkill`` or raises :class:`chalicelib.errors.InvalidSkill` whose ``problems``
lists every problem found (the parser collects them instead of stopping at the first).

One module per concern:

* ``bundle``: the files of a zip or folder (unsafe paths, sizes, housekeeping files, the skill root,
  which files are kept as text);
* ``frontmatter``: the frontmatter split from the body and loaded with a hardened YAML loader;
* ``fields``: name, description, license, metadata, preimport;
* ``requirement_forms``: the seed, Agent Skills, ClawBio and OpenClaw ways of declaring packages;
* ``code``: whether a python block or bundled script is the skill's code (examples are not), and
  so whether the skill is ``python_code``, ``script`` or ``prompt_only``;
* ``skill``: the orchestration.

``name`` and ``description`` are required non-empty strings; ``skill_id`` is the slug of ``name``.
``version`` is :func:`chalicelib.skills.model.content_version` of the uploaded bytes.
"""

from chalicelib.skills.parser.bundle import unsafe_path_reason
from chalicelib.skills.parser.common import ParseLimits
from chalicelib.skills.parser.skill import parse_folder, parse_path, parse_skill_md, parse_zip

__all__ = ["ParseLimits", "parse_folder", "parse_path", "parse_skill_md", "parse_zip", "unsafe_path_reason"]

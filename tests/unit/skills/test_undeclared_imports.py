"""Undeclared imports: listed with the distribution that provides each, proposed, accepted only on request."""

from __future__ import annotations

import json

import pytest

from chalicelib.errors import BadRequest
from chalicelib.skills import parse_skill_md
from chalicelib.skills.import_names import DATA, provider
from chalicelib.skills.proposals import RequirementOverride, accept_requirements

SKILL = b"---\nname: Forms\ndescription: Fill PDF forms\n---\nRun `python scripts/fill.py in.pdf out.pdf`.\n"
FILL = b"""import json
import sys
from pathlib import Path

import fitz
import yaml
from PIL import Image

from helpers import load
from .sibling import thing

try:
    import cv2
except ImportError:
    cv2 = None

def main():
    print(load(sys.argv[1]))
"""
FILES = {"scripts/fill.py": FILL, "scripts/helpers.py": b"def load(p):\n    return p\n",
         "scripts/test_fill.py": b"import pytest\n", "scripts/tools/x.py": b"import clawbio.common\n"}  # fmt: skip


def by_import(skill):
    return {entry["import"]: entry for entry in skill.undeclared_imports}


def test_undeclared_third_party_imports_are_listed_with_their_distribution() -> None:
    skill = parse_skill_md(SKILL, extra_files=FILES)
    found = by_import(skill)
    assert set(found) == {"fitz", "yaml", "PIL", "cv2", "clawbio"}  # not stdlib, siblings, relative or tests
    assert {name: e["distribution"] for name, e in found.items()} == {
        "fitz": "pymupdf", "yaml": "pyyaml", "PIL": "pillow", "cv2": "opencv-python", "clawbio": None}  # fmt: skip
    assert found["cv2"]["optional"] is True and found["fitz"]["optional"] is False
    assert found["clawbio"]["files"] == ["scripts/tools/x.py"]
    assert "top_level.txt" in found["PIL"]["evidence"] or "RECORD" in found["PIL"]["evidence"]
    assert skill.proposed_requirements == ["opencv-python", "pillow", "pymupdf", "pyyaml"]
    assert skill.requirements == []  # proposed, never silently added


def test_declared_requirements_provide_their_import_names() -> None:
    skill = parse_skill_md(SKILL, extra_files={**FILES, "requirements.txt": b"PyMuPDF>=1.24\npillow\n"})
    assert set(by_import(skill)) == {"yaml", "cv2", "clawbio"}


def test_the_code_block_counts_but_examples_do_not() -> None:
    body = "```python\nimport pandas\nprint(pandas.__version__)\n```\n\n```python\nimport numpy\n\ndef execute(data):\n    return 1\n```\n"
    skill = parse_skill_md(f"---\nname: n\ndescription: d\n---\n{body}".encode())
    assert set(by_import(skill)) == {"numpy"} and by_import(skill)["numpy"]["files"] == ["SKILL.md"]


@pytest.mark.parametrize(("name", "distribution"), [
    ("PIL", "pillow"), ("fitz", "pymupdf"), ("yaml", "pyyaml"), ("docx", "python-docx"), ("cv2", "opencv-python"),
    ("sklearn", "scikit-learn"), ("bs4", "beautifulsoup4"), ("Bio", "biopython"), ("yara_x", "yara-x"),
])  # fmt: skip
def test_the_map_knows_the_names_real_skills_use_and_says_where_each_came_from(name: str, distribution: str) -> None:
    entry = provider(name)
    assert entry is not None and entry["distribution"] == distribution
    assert entry["wheel"].endswith(".whl") and len(entry["sha256"]) == 64 and entry["evidence"] in ("top_level.txt", "RECORD")


def test_the_map_is_data_with_its_provenance() -> None:
    data = json.loads(DATA.read_text(encoding="utf-8"))
    assert "tools/build_import_names.py" in data["about"] and data["generated"]


def test_accepting_the_proposal_adds_it_with_source_override() -> None:
    skill = parse_skill_md(SKILL, extra_files=FILES)
    accepted = accept_requirements(skill, RequirementOverride(("pypdf==4.*",), accept_proposed=True))
    assert accepted.requirements == ["opencv-python", "pillow", "pymupdf", "pypdf==4.*", "pyyaml"]
    assert accepted.requirement_sources["pillow"] == ["override"]
    assert accepted.proposed_requirements == []
    assert {e["import"] for e in accepted.undeclared_imports if not e["accepted"]} == {"clawbio"}
    assert accepted.accepted_requirements == ["opencv-python", "pillow", "pymupdf", "pypdf==4.*", "pyyaml"]


def test_a_bad_override_is_a_400_listing_each_entry() -> None:
    skill = parse_skill_md(SKILL, extra_files=FILES)
    with pytest.raises(BadRequest) as caught:
        accept_requirements(skill, RequirementOverride.from_request("pillow, --index-url http://x, git+https://e/v", None))
    assert len(caught.value.problems) == 2


def test_override_from_request_parameters() -> None:
    assert RequirementOverride.from_request(None, None) is None
    assert RequirementOverride.from_request("a, b\nc", "false") == RequirementOverride(("a", "b", "c"), False)
    assert RequirementOverride.from_request("", "true") == RequirementOverride((), True)
    with pytest.raises(BadRequest):
        RequirementOverride.from_request(None, "yes please")
    with pytest.raises(BadRequest, match="at most 50"):
        RequirementOverride.from_request(",".join(f"p{i}" for i in range(51)), None)


PEP723 = b'''#!/usr/bin/env python3
# /// script
# requires-python = ">=3.11"
# dependencies = [
#   "httpx>=0.27",
#   "pyyaml",
# ]
# ///
import httpx
import yaml
'''


def test_pep723_blocks_and_scripts_pyproject_declare_requirements() -> None:
    files = {"scripts/fetch.py": PEP723, "scripts/test_fetch.py": b"# /// script\n# dependencies = ['pytest>=8']\n# ///\n",
             "scripts/pyproject.toml": b"[project]\nname = 'x'\ndependencies = ['rich']\n"}  # fmt: skip
    skill = parse_skill_md(SKILL, extra_files=files)
    assert skill.requirements == ["httpx>=0.27", "pyyaml", "rich"]  # not pytest: test files are not runtime needs
    assert skill.requirement_sources == {"httpx>=0.27": ["pep723"], "pyyaml": ["pep723"], "rich": ["pyproject.toml"]}
    assert skill.undeclared_imports == []


def test_a_bad_pep723_dependency_names_its_file_and_line() -> None:
    bad = PEP723.replace(b'"pyyaml"', b'"git+https://e/v"')
    with pytest.raises(BadRequest) as caught:
        parse_skill_md(SKILL, extra_files={"scripts/fetch.py": bad})
    (problem,) = caught.value.problems
    assert problem.startswith("scripts/fetch.py line 2, PEP 723 block: dependencies[1] 'git+https://e/v': VCS")

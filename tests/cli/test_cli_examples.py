"""Every skill in examples/ parses, in the form it is meant to show."""

from __future__ import annotations

from pathlib import Path

import pytest

from chalicelib.skills.parser import parse_path

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

EXPECTED = {
    # folder: (skill_id, skill_type, declared_form, requirement names)
    "hello": ("hello", "python_code", "none", set()),
    "prompt-only": ("search-query-rewriter", "prompt_only", "none", set()),
    "data-summary": ("data-summary", "python_code", "seed", {"numpy", "pandas"}),
    "agent-skills-wordfreq": ("word-frequency", "python_code", "agent_skills", {"regex"}),
    "openclaw-pdf": ("pdf-text", "python_code", "openclaw", {"pypdf", "pdfminer-six"}),
}


def _names(requirements: list[str]) -> set[str]:
    from packaging.requirements import Requirement

    return {Requirement(r).name for r in requirements}


def test_every_example_folder_is_covered():
    folders = {p.name for p in EXAMPLES.iterdir() if p.is_dir()}
    assert folders == set(EXPECTED)


@pytest.mark.parametrize("folder", sorted(EXPECTED))
def test_example_parses(folder):
    skill_id, skill_type, form, names = EXPECTED[folder]
    parsed = parse_path(EXAMPLES / folder)
    assert (parsed.skill_id, parsed.skill_type, parsed.declared_form) == (skill_id, skill_type, form)
    assert _names(parsed.requirements) == names


def test_single_file_and_folder_give_the_same_version():
    assert parse_path(EXAMPLES / "hello" / "SKILL.md").version == parse_path(EXAMPLES / "hello").version


def test_prompt_only_example_keeps_its_placeholder():
    parsed = parse_path(EXAMPLES / "prompt-only")
    assert "{query}" in (parsed.template or "")


def test_openclaw_example_reports_what_the_runner_cannot_install():
    parsed = parse_path(EXAMPLES / "openclaw-pdf")
    kinds = {item.kind for item in parsed.non_python_requirements}
    assert "brew" in kinds

"""Examples are not code: when a python block or bundled script is the skill's code, and what kind the skill is."""

from __future__ import annotations

import pytest

from chalicelib.errors import InvalidSkill
from chalicelib.skills import parse_skill_md

AGENT = "name: Pdf tools\ndescription: Fill and read PDF forms"


def skill_md(frontmatter: str, body: str) -> bytes:
    return f"---\n{frontmatter}\n---\n{body}".encode()


EXAMPLE = "Read a PDF:\n\n```python\nfrom pypdf import PdfReader\nreader = PdfReader('in.pdf')\nprint(len(reader.pages))\n```\n"
SCRIPT = b"import sys\n\ndef main():\n    print(sys.argv)\n\nif __name__ == '__main__':\n    main()\n"


def test_an_example_block_does_not_make_code_and_a_bundled_script_makes_a_script_skill() -> None:
    skill = parse_skill_md(skill_md(AGENT, EXAMPLE), extra_files={"scripts/fill.py": SCRIPT})
    assert skill.skill_type == "script"
    assert skill.code is None and skill.entrypoint is None
    assert skill.template == EXAMPLE  # the instructions stay readable
    assert skill.scripts == ["scripts/fill.py"]
    assert skill.code_choice["kind"] == "script" and skill.code_choice["documentation_blocks"] == 1
    assert "1 python block(s) in the body are documentation" in skill.code_choice["reason"]


def test_examples_without_bundled_scripts_make_a_prompt_only_skill() -> None:
    skill = parse_skill_md(skill_md(AGENT, EXAMPLE + "\n```python\ndef helper(x):\n    return x\n\ndef other(y):\n    pass\n```\n"))
    assert skill.skill_type == "prompt_only"
    assert skill.code_choice["kind"] == "prompt" and skill.code_choice["documentation_blocks"] == 2


def test_a_broken_example_block_is_not_a_problem() -> None:
    body = "```python\nresult = client.create(\n    model=...,\n```\n"
    assert parse_skill_md(skill_md(AGENT, body)).skill_type == "prompt_only"


def test_the_block_defining_execute_is_the_code_even_after_examples() -> None:
    body = EXAMPLE + "\n```python\ndef execute(data):\n    return data\n```\n"
    skill = parse_skill_md(skill_md(AGENT, body))
    assert skill.skill_type == "python_code" and skill.entrypoint == "execute"
    assert skill.code == "def execute(data):\n    return data\n"
    assert skill.code_choice["chosen"].startswith("SKILL.md python block 2 (line ")
    assert skill.code_choice["documentation_blocks"] == 1 and not skill.code_choice["ambiguous"]


def test_metadata_entrypoint_picks_the_block_defining_it() -> None:
    body = EXAMPLE + "\n```python\ndef fill(data):\n    return 1\n```\n"
    skill = parse_skill_md(skill_md(AGENT + "\nmetadata:\n  entrypoint: fill", body))
    assert skill.entrypoint == "fill" and "def fill" in (skill.code or "")
    assert "'entrypoint' names fill" in skill.code_choice["reason"]


def test_entrypoint_can_name_a_function_in_a_bundled_script() -> None:
    skill = parse_skill_md(skill_md(AGENT + "\nentrypoint: fill", EXAMPLE),
                           extra_files={"scripts/a.py": SCRIPT, "scripts/b.py": b"def fill(data):\n    return 2\n"})
    assert (skill.skill_type, skill.code_path, skill.entrypoint) == ("python_code", "scripts/b.py", "fill")


def test_a_bundled_script_defining_execute_is_the_code() -> None:
    skill = parse_skill_md(skill_md(AGENT, EXAMPLE),
                           extra_files={"scripts/cli.py": SCRIPT, "lib/run.py": b"def execute(data):\n    return 3\n"})
    assert (skill.skill_type, skill.code_path, skill.entrypoint) == ("python_code", "lib/run.py", "execute")
    assert skill.scripts == ["lib/run.py", "scripts/cli.py"]


def test_when_block_and_script_both_define_execute_the_block_wins_and_the_choice_says_so() -> None:
    body = "```python\ndef execute(data):\n    return 1\n```\n"
    skill = parse_skill_md(skill_md(AGENT, body), extra_files={"run.py": b"def execute(data):\n    return 2\n"})
    assert skill.code_path is None and skill.code_choice["ambiguous"] is True
    assert "so does run.py, which was not chosen" in skill.code_choice["reason"]


def test_a_lone_definitions_only_block_with_one_function_is_taken_and_flagged_ambiguous() -> None:
    body = "```python\nimport json\n\nLIMIT = 3\n\ndef summarise(data):\n    return json.dumps(data)[:LIMIT]\n```\n"
    skill = parse_skill_md(skill_md(AGENT, body))
    assert skill.skill_type == "python_code" and skill.entrypoint == "summarise"
    assert skill.code_choice["ambiguous"] is True
    assert "set 'entrypoint' to make this explicit" in skill.code_choice["reason"]


@pytest.mark.parametrize(
    "block",
    [
        "def main():\n    print('hi')\n",  # no argument: a command reading argv
        "def run(path):\n    return path\n\nrun('x')\n",  # a call at top level: an example
        "def run(path):\n    return path\n\nif __name__ == '__main__':\n    run('x')\n",  # a program
    ],
)
def test_programs_and_examples_with_one_function_are_documentation(block: str) -> None:
    skill = parse_skill_md(skill_md(AGENT, f"```python\n{block}```\n"))
    assert skill.skill_type == "prompt_only" and skill.code is None


def test_one_function_among_several_blocks_is_an_example() -> None:
    body = EXAMPLE + "\n```python\ndef verify(code, lifetime=300):\n    return lifetime == 0\n```\n"
    assert parse_skill_md(skill_md(AGENT, body)).skill_type == "prompt_only"


def test_seed_form_still_takes_its_first_block_as_the_code() -> None:
    body = "```python\nimport numpy\n\ndef main(data):\n    return 1\n```\n"
    skill = parse_skill_md(skill_md(AGENT + "\npackages: ['numpy']", body))
    assert (skill.skill_type, skill.entrypoint) == ("python_code", "main")
    assert skill.code_choice["reason"].startswith("seed form")


def test_a_bundled_script_that_is_not_valid_python_is_a_problem() -> None:
    with pytest.raises(InvalidSkill) as caught:
        parse_skill_md(skill_md(AGENT, EXAMPLE), extra_files={"scripts/x.py": b"def (:\n"})
    assert caught.value.problems == ["scripts/x.py line 1: Python syntax error: invalid syntax"]


def test_documents_under_references_and_assets_are_not_scripts() -> None:
    skill = parse_skill_md(skill_md(AGENT, EXAMPLE), extra_files={
        "references/api.md": b"# api\n", "assets/template.py": b"{{ placeholder }}\n", "bin/tool": b"#!/bin/sh\necho\n",
        "scripts/run.sh": b"echo hi\n"})  # fmt: skip
    assert skill.scripts == ["bin/tool", "scripts/run.sh"]


def test_python_under_references_is_never_taken_as_the_code_unless_named() -> None:
    example = b"def execute(data):\n    return 'example'\n"
    skill = parse_skill_md(skill_md(AGENT, EXAMPLE), extra_files={"references/sample.py": example})
    assert skill.skill_type == "prompt_only" and skill.scripts == []
    named = parse_skill_md(skill_md(AGENT + "\nentrypoint: references/sample.py", EXAMPLE),
                           extra_files={"references/sample.py": example})  # fmt: skip
    assert (named.skill_type, named.code_path, named.entrypoint) == ("python_code", "references/sample.py", "execute")


def test_a_skill_whose_only_python_files_are_its_tests_runs_nothing():
    skill = parse_skill_md(skill_md(AGENT, "Ask the service through its MCP server.\n"),
                           extra_files={"tests/test_client.py": b"def test_ok():\n    assert True\n", "tests/__init__.py": b""})  # fmt: skip
    assert skill.skill_type == "prompt_only"
    assert skill.scripts == []
    with_script = parse_skill_md(skill_md(AGENT, "Run `python scripts/fill.py`.\n"),
                                 extra_files={"scripts/fill.py": SCRIPT, "scripts/test_fill.py": b"def test_x():\n    pass\n"})  # fmt: skip
    assert with_script.skill_type == "script" and with_script.scripts == ["scripts/fill.py"]

"""parse_skill_md: forms, code and entrypoint, skill ids, versions, and every kind of bad SKILL.md."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from chalicelib.errors import InvalidSkill
from chalicelib.skills import ParsedSkill, ParseLimits, parse_skill_md, slugify_skill_id

FIXTURES = Path(__file__).parent / "fixtures"


def skill_md(frontmatter: str, body: str = "# A skill\n\nDo the thing.\n") -> bytes:
    return f"---\n{frontmatter.strip()}\n---\n{body}".encode()


def problems_of(data: bytes, **kwargs: object) -> list[str]:
    with pytest.raises(InvalidSkill) as caught:
        parse_skill_md(data, **kwargs)  # type: ignore[arg-type]
    assert caught.value.problems, "InvalidSkill must list its problems"
    return caught.value.problems


BASIC = "name: Basic\ndescription: A basic skill"


# --- the forms ------------------------------------------------------------------------


def test_seed_form_fixture_is_a_python_skill_with_its_packages() -> None:
    data = (FIXTURES / "seed-data-summary" / "SKILL.md").read_bytes()
    skill = parse_skill_md(data)
    assert skill.skill_id == "data-summary"
    assert skill.declared_form == "seed"
    assert skill.skill_type == "python_code"
    assert skill.entrypoint == "execute"
    assert "def execute(data):" in (skill.code or "")
    assert skill.requirements == ["numpy<3,>=1.26", "pandas>=2.1"]
    assert skill.requirement_sources == {"numpy<3,>=1.26": ["packages"], "pandas>=2.1": ["packages"]}
    assert skill.license == "MIT"
    assert skill.version == hashlib.sha256(data).hexdigest()


def test_issue_example_fails_naming_the_bad_line() -> None:
    data = skill_md(
        'name: evil\ndescription: tries another index\npackages: ["numpy==1.26.4", "--index-url http://evil"]'
    )
    with pytest.raises(InvalidSkill) as caught:
        parse_skill_md(data)
    assert caught.value.problems == [
        "SKILL.md line 4, packages[1] '--index-url http://evil': pip option '--index-url' is not allowed: "
        "packages come only from the configured index"
    ]
    # the message alone (what the skill record shows) names the bad line too
    assert "--index-url http://evil" in caught.value.message
    assert caught.value.http_status == 400


def test_agent_skills_metadata_string_declares_requirements() -> None:
    skill = parse_skill_md(skill_md(BASIC + '\nmetadata:\n  requirements: "numpy>=1.26, pandas"'))
    assert skill.declared_form == "agent_skills"
    assert skill.requirements == ["numpy>=1.26", "pandas"]
    assert skill.requirement_sources == {"numpy>=1.26": ["metadata"], "pandas": ["metadata"]}


def test_metadata_dependencies_alias_and_list_value_are_accepted() -> None:
    assert parse_skill_md(skill_md(BASIC + "\nmetadata:\n  dependencies: 'requests httpx'")).requirements == [
        "httpx",
        "requests",
    ]
    assert parse_skill_md(skill_md(BASIC + "\nmetadata:\n  requirements: [rich, 'click>=8']")).requirements == [
        "click>=8",
        "rich",
    ]


def test_metadata_given_as_a_json_string_is_decoded() -> None:
    metadata = json.dumps(json.dumps({"requirements": "rich", "author": "me"}))
    skill = parse_skill_md(skill_md(BASIC + f"\nmetadata: {metadata}"))
    assert skill.metadata == {"requirements": "rich", "author": "me"}
    assert skill.requirements == ["rich"]


def test_openclaw_fixture_gives_python_and_non_python_requirements() -> None:
    skill = parse_skill_md((FIXTURES / "openclaw-pdf-text" / "SKILL.md").read_bytes())
    assert skill.declared_form == "openclaw"
    assert skill.requirements == ["pdfminer-six", "pypdf>=4.2"]
    assert skill.requirement_sources == {"pdfminer-six": ["openclaw"], "pypdf>=4.2": ["openclaw"]}
    kinds = {(item.kind, item.spec) for item in skill.non_python_requirements}
    assert kinds == {("brew", "poppler"), ("bin", "pdftotext")}
    assert skill.entrypoint == "extract_text"  # the only public function


def test_openclaw_uv_entries_with_several_packages_and_other_kinds() -> None:
    install = [
        {"kind": "uv", "package": "requests, beautifulsoup4>=4.12 lxml"},
        {"kind": "uv", "package": "rich"},
        {"kind": "brew", "formula": "ffmpeg"},
        {"kind": "node", "package": "prettier"},
        {"kind": "go", "module": "github.com/x/tool@latest"},
        {"kind": "download", "url": "https://example.com/tool.tar.gz", "archive": "tar.gz"},
    ]
    metadata = json.dumps(
        {"openclaw": {"install": install, "requires": {"env": ["API_TOKEN"], "anyBins": ["ffmpeg", "avconv"]}}}
    )
    skill = parse_skill_md(skill_md(BASIC + f"\nmetadata: {metadata}"))
    assert skill.requirements == ["beautifulsoup4>=4.12", "lxml", "requests", "rich"]
    assert [(item.kind, item.spec) for item in skill.non_python_requirements] == [
        ("brew", "ffmpeg"),
        ("node", "prettier"),
        ("go", "github.com/x/tool@latest"),
        ("download", "https://example.com/tool.tar.gz"),
        ("env", "API_TOKEN"),
        ("bin", "ffmpeg | avconv"),
    ]
    assert skill.non_python_requirements[3].details == {"archive": "tar.gz"}


def test_openclaw_legacy_key_and_bad_uv_package_are_handled() -> None:
    metadata = json.dumps(
        {
            "clawdbot": {
                "install": [{"kind": "uv", "package": "httpx git+https://github.com/e/vil"}, {"kind": "uv"}, "brew"]
            }
        }
    )
    problems = problems_of(skill_md(BASIC + f"\nmetadata: {metadata}"))
    assert len(problems) == 3
    assert (
        "metadata.clawdbot.install[0].package (entry 2) 'git+https://github.com/e/vil': VCS requirements" in problems[0]
    )
    assert "install[1]: a 'uv' entry needs a 'package' string" in problems[1]
    assert "install[2]: must be a mapping" in problems[2]


def test_requirements_from_several_forms_are_merged() -> None:
    data = skill_md(BASIC + "\npackages: ['numpy>=1.26']\nmetadata:\n  requirements: 'numpy<2'")
    skill = parse_skill_md(data)
    assert skill.declared_form == "seed"
    assert skill.requirements == ["numpy<2,>=1.26"]
    assert skill.requirement_sources == {"numpy<2,>=1.26": ["metadata", "packages"]}


def test_a_skill_without_requirements_has_form_none() -> None:
    skill = parse_skill_md(skill_md(BASIC))
    assert skill.declared_form == "none"
    assert skill.requirements == []


# --- code, template and entrypoint --------------------------------------------------------


def test_no_python_block_makes_a_prompt_only_skill_with_the_body_as_template() -> None:
    body = "# Reviewer\n\nReview the code.\n\n```bash\necho not python\n```\n"
    skill = parse_skill_md(skill_md(BASIC, body))
    assert skill.skill_type == "prompt_only"
    assert skill.template == body
    assert skill.code is None and skill.entrypoint is None


def test_first_python_block_is_the_code() -> None:
    body = (
        "Intro\n\n```json\n{}\n```\n\n"
        "```py\ndef execute(data):\n    return 1\n```\n\n"
        "```python\ndef other():\n    pass\n```\n"
    )
    skill = parse_skill_md(skill_md(BASIC, body))
    assert skill.skill_type == "python_code"
    assert skill.code == "def execute(data):\n    return 1\n"
    assert skill.template is None


def test_frontmatter_entrypoint_names_the_function() -> None:
    body = "```python\ndef execute(data):\n    pass\n\ndef run(data):\n    pass\n```\n"
    assert parse_skill_md(skill_md(BASIC + "\nentrypoint: run", body)).entrypoint == "run"


def test_execute_is_the_default_even_with_other_public_functions() -> None:
    body = "```python\ndef helper():\n    pass\n\ndef execute(data):\n    pass\n```\n"
    assert parse_skill_md(skill_md(BASIC, body)).entrypoint == "execute"


def test_the_only_public_function_is_used_when_execute_is_absent() -> None:
    body = "```python\ndef _private():\n    pass\n\nasync def main(data):\n    pass\n```\n"
    assert parse_skill_md(skill_md(BASIC, body)).entrypoint == "main"


def test_a_block_with_several_functions_and_no_execute_is_documentation() -> None:
    body = "```python\ndef one(data):\n    pass\n\ndef two(data):\n    pass\n```\n"
    skill = parse_skill_md(skill_md(BASIC, body))
    assert skill.skill_type == "prompt_only" and skill.code is None and skill.template == body
    assert skill.code_choice["kind"] == "prompt" and skill.code_choice["documentation_blocks"] == 1


def test_ambiguous_functions_in_the_seed_form_are_a_problem() -> None:
    body = "```python\ndef one(data):\n    pass\n\ndef two(data):\n    pass\n```\n"
    (problem,) = problems_of(skill_md(BASIC + "\npackages: []", body))
    assert "no function 'execute' and 2 public functions (one, two)" in problem
    assert "entrypoint:" in problem


def test_entrypoint_that_the_code_does_not_define_is_a_problem() -> None:
    body = "```python\ndef execute(data):\n    pass\n```\n"
    (problem,) = problems_of(skill_md(BASIC + "\nentrypoint: run", body))
    assert "entrypoint function 'run' is not defined" in problem
    assert "functions found: execute" in problem


def test_entrypoint_without_any_code_is_a_problem() -> None:
    (problem,) = problems_of(skill_md(BASIC + "\nentrypoint: run"))
    assert "entrypoint 'run' is set but the skill has no Python code" in problem


def test_entrypoint_naming_a_script_needs_a_bundle() -> None:
    (problem,) = problems_of(skill_md(BASIC + "\nentrypoint: scripts/run.py:main"))
    assert "entrypoint names 'scripts/run.py', which is not in the upload" in problem


def test_python_syntax_error_is_reported_with_its_skill_md_line() -> None:
    body = "Intro\n\n```python\ndef execute(data):\n    return (\n```\n"
    (problem,) = problems_of(skill_md(BASIC, body))
    # frontmatter takes lines 1-4, body starts on line 5; the code starts on line 8
    assert problem.startswith("SKILL.md line 9: Python syntax error")


# --- skill id and version ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "slug"),
    [
        ("data-summary", "data-summary"),
        ("My  Cool__Skill!!", "my-cool-skill"),
        ("  --Leading and trailing--  ", "leading-and-trailing"),
        ("Café Crème v2.0", "cafe-creme-v2-0"),
        ("x" * 100, "x" * 64),
        ("a" * 63 + " b", "a" * 63),
        ("日本語", ""),
    ],
)
def test_skill_id_is_a_slug_of_the_name(name: str, slug: str) -> None:
    assert slugify_skill_id(name) == slug


def test_a_name_without_slug_characters_is_a_problem() -> None:
    (problem,) = problems_of(skill_md("name: 日本語\ndescription: d"))
    assert "gives an empty skill id" in problem


def test_version_is_the_sha256_of_the_exact_bytes_and_stable() -> None:
    data = skill_md(BASIC)
    assert parse_skill_md(data).version == parse_skill_md(data).version == hashlib.sha256(data).hexdigest()
    assert parse_skill_md(data + b"\n").version != parse_skill_md(data).version


def test_record_round_trips_through_json() -> None:
    skill = parse_skill_md((FIXTURES / "openclaw-pdf-text" / "SKILL.md").read_bytes())
    record = json.loads(json.dumps(skill.to_record()))
    assert ParsedSkill.from_record(record) == skill


def test_yaml_dates_and_odd_keys_become_json_safe() -> None:
    skill = parse_skill_md(skill_md(BASIC + "\nmetadata:\n  released: 2024-05-01\n  1: one\n  ratio: .nan"))
    assert skill.metadata == {"released": "2024-05-01", "1": "one", "ratio": "nan"}
    json.dumps(skill.to_record(), allow_nan=False)


# --- bad SKILL.md --------------------------------------------------------------------------------


def test_not_utf8_says_where() -> None:
    data = skill_md(BASIC) + b"caf\xe9\n"
    (problem,) = problems_of(data)
    assert problem == "SKILL.md is not valid UTF-8: byte 0xe9 at line 8, column 4 (offset 75) cannot be decoded"


def test_utf16_gets_a_hint() -> None:
    (problem,) = problems_of(skill_md(BASIC).decode().encode("utf-16"))
    assert "UTF-16" in problem


def test_missing_frontmatter() -> None:
    (problem,) = problems_of(b"# Just markdown\n\nname: x\n")
    assert "has no YAML frontmatter" in problem


def test_unclosed_frontmatter() -> None:
    (problem,) = problems_of(b"---\nname: x\ndescription: y\n")
    assert "never closed" in problem


def test_invalid_yaml_names_the_line() -> None:
    (problem,) = problems_of(b"---\nname: x\ndescription: [unclosed\nlicense: MIT\n---\nbody\n")
    assert problem.startswith("SKILL.md line ")
    assert "invalid YAML in the frontmatter" in problem


def test_invalid_yaml_line_is_counted_in_the_file() -> None:
    (problem,) = problems_of(b"---\nname: x\ndescription: y\nbad: : :\n---\n")
    assert problem.startswith("SKILL.md line 4: invalid YAML")


@pytest.mark.parametrize("frontmatter", ["- a\n- b", "just a string", "42"])
def test_frontmatter_must_be_a_mapping(frontmatter: str) -> None:
    (problem,) = problems_of(skill_md(frontmatter))
    assert "the frontmatter must be a mapping" in problem


def test_empty_frontmatter() -> None:
    (problem,) = problems_of(b"---\n---\nbody\n")
    assert "the frontmatter is empty" in problem


def test_missing_name_and_description_are_both_listed() -> None:
    problems = problems_of(skill_md("license: MIT"))
    assert len(problems) == 2
    assert "'name' is missing" in problems[0]
    assert "'description' is missing" in problems[1]


@pytest.mark.parametrize(
    ("frontmatter", "expected"),
    [
        ("name: ''\ndescription: d", "'name' is empty"),
        ("name: '   '\ndescription: d", "'name' is empty"),
        ("name: 12\ndescription: d", "'name' must be a string, got a number"),
        ("name: n\ndescription: [a, b]", "'description' must be a string, got a list"),
        ("name: n\ndescription: d\npackages: numpy", "packages must be a list of requirement strings, got a string"),
        (
            "name: n\ndescription: d\npackages: {numpy: 1}",
            "packages must be a list of requirement strings, got a mapping",
        ),
        ("name: n\ndescription: d\nlicense: [MIT]", "license must be a string"),
        ("name: n\ndescription: d\nmetadata: [a]", "metadata must be a mapping, got a list"),
        ("name: n\ndescription: d\nmetadata: 'not json'", "metadata must be a mapping or a JSON object string"),
        (
            "name: n\ndescription: d\nmetadata: {requirements: 3}",
            "metadata.requirements: must be a string of requirements",
        ),
        ("name: n\ndescription: d\nmetadata: {openclaw: {install: uv}}", "metadata.openclaw.install must be a list"),
        ("name: n\ndescription: d\nentrypoint: [a]", "entrypoint must be a string"),
        ("name: n\ndescription: d\nentrypoint: 'not-a-name'", "is not a valid Python function name"),
        ("name: n\ndescription: d\ndependencies: [numpy]", "top-level 'dependencies' is not read"),
        ("name: n\nname: m\ndescription: d", "duplicate key 'name'"),
    ],
)
def test_wrong_types_and_shapes_are_problems(frontmatter: str, expected: str) -> None:
    problems = problems_of(skill_md(frontmatter))
    assert any(expected in problem for problem in problems), problems


def test_every_problem_is_collected() -> None:
    data = skill_md(
        "name: 7\npackages:\n  - numpy\n  - -e .\n  - https://evil/x.whl\n  - ok>=1\n  - ../local\nlicense: [x]",
        "```python\ndef execute(:\n```\n",
    )
    problems = problems_of(data)
    assert len(problems) == 7, problems
    joined = "\n".join(problems)
    for expected in (
        "'name' must be a string",
        "'description' is missing",
        "license must be a string",
        "packages[1] '-e .'",
        "packages[2] 'https://evil/x.whl'",
        "packages[4] '../local'",
        "Python syntax error",
    ):
        assert expected in joined


def test_skill_md_over_the_size_limit_is_refused() -> None:
    data = skill_md(BASIC, "x" * (1024 * 1024))
    (problem,) = problems_of(data)
    assert f"SKILL.md is {len(data)} bytes, over the limit of 1048576 bytes" == problem


def test_limits_are_parameters() -> None:
    (problem,) = problems_of(skill_md(BASIC), limits=ParseLimits(max_skill_md_bytes=10))
    assert "over the limit of 10 bytes" in problem


def test_yaml_aliases_are_refused() -> None:
    (problem,) = problems_of(skill_md(BASIC + "\nbase: &b {x: 1}\nother: *b"))
    assert "SKILL.md line 4" in problem and "anchors" in problem


def test_deeply_nested_yaml_is_refused() -> None:
    (problem,) = problems_of(skill_md(BASIC + "\nmetadata: " + "[" * 500 + "]" * 500))
    assert "nests deeper than 32 levels" in problem


def test_integer_with_too_many_digits_is_a_yaml_problem() -> None:
    (problem,) = problems_of(skill_md(BASIC + "\nbig: " + "9" * 5000))
    assert "invalid YAML" in problem


def test_oversized_frontmatter_is_refused() -> None:
    (problem,) = problems_of(skill_md(BASIC + "\nfiller: " + "y" * 70_000))
    assert "the frontmatter is" in problem and "over the limit" in problem


def test_python_object_tags_are_refused() -> None:
    (problem,) = problems_of(skill_md(BASIC + "\nx: !!python/object/apply:os.system ['true']"))
    assert "invalid YAML" in problem


def test_unsafe_extra_file_paths_are_refused() -> None:
    with pytest.raises(InvalidSkill) as caught:
        parse_skill_md(skill_md(BASIC), extra_files={"../escape.py": b"x = 1\n"})
    assert caught.value.problems == ["bundled file '../escape.py' contains a '..' component"]


def test_from_record_ignores_storage_keys() -> None:
    skill = parse_skill_md(skill_md(BASIC))
    assert ParsedSkill.from_record({**skill.to_record(), "pk": "skill#basic", "status": "ready"}) == skill


# --- pre-import opt-out -------------------------------------------------------------


def test_skills_are_preimported_unless_they_opt_out() -> None:
    code = "```python\ndef execute():\n    return 1\n```\n"
    assert parse_skill_md(skill_md(BASIC, code)).preimport is True
    assert parse_skill_md(skill_md(BASIC + "\npreimport: false", code)).preimport is False
    assert parse_skill_md(skill_md(BASIC + "\nmetadata:\n  preimport: false", code)).preimport is False
    # Agent Skills metadata values are strings
    assert parse_skill_md(skill_md(BASIC + '\nmetadata:\n  preimport: "False"', code)).preimport is False


def test_preimport_must_be_a_boolean() -> None:
    (problem,) = problems_of(skill_md(BASIC + '\npreimport: "no"'))
    assert problem == "SKILL.md line 4: preimport must be true or false, got a string"


def test_a_clawbio_dependency_mapping_with_other_kinds_shows_them_as_unmet_needs() -> None:
    skill = parse_skill_md(skill_md(BASIC + "\ndependencies:\n  python: '>=3.11'\n  packages: [pyyaml]\n"
                                    "  external:\n    - samtools>=1.17\n    - bcftools\n"))  # fmt: skip
    assert skill.requirements == ["pyyaml"]
    needs = {(need.kind, need.spec) for need in skill.non_python_requirements}
    assert {("external", "samtools>=1.17"), ("external", "bcftools"), ("python", ">=3.11")} <= needs
    assert "samtools" not in " ".join(skill.requirements)  # never installed on the skill's word


def test_a_dependency_mapping_entry_that_is_not_a_string_is_refused_by_name() -> None:
    with pytest.raises(InvalidSkill) as caught:
        parse_skill_md(skill_md(BASIC + "\ndependencies:\n  packages: []\n  external:\n    - {tool: x}\n"))
    assert "dependencies.external entries must be strings" in str(caught.value.problems)

"""Requirement entries: what is accepted, normalized, merged and refused (with the reason)."""

from __future__ import annotations

import pytest

from chalicelib.skills.requirements import (
    check_requirement,
    merge_requirements,
    parse_requirement_list,
    parse_requirement_string,
    parse_requirements_txt,
    split_requirement_string,
)


@pytest.mark.parametrize(
    "text",
    [
        "numpy",
        "numpy==1.26.4",
        "numpy>=1.26,<2",
        "pandas[excel,performance]>=2.1",
        'tomli; python_version < "3.11"',
        "requests [socks] >= 2.31 ; sys_platform == 'linux'",
    ],
)
def test_valid_pep508_requirements_are_accepted(text: str) -> None:
    requirement, reason = check_requirement(text)
    assert reason is None
    assert requirement is not None


@pytest.mark.parametrize(
    ("text", "reason_part"),
    [
        ("--index-url http://evil", "'--index-url' is not allowed"),
        ("-i http://evil/simple", "'-i' is not allowed"),
        ("--extra-index-url https://mirror/simple", "'--extra-index-url' is not allowed"),
        ("-f ./wheels", "'-f' is not allowed"),
        ("--find-links https://x", "'--find-links' is not allowed"),
        ("--trusted-host evil.example", "'--trusted-host' is not allowed"),
        ("-r other.txt", "'-r' is not allowed"),
        ("-c constraints.txt", "'-c' is not allowed"),
        ("-e .", "editable installs"),
        ("--editable git+https://github.com/a/b", "editable installs"),
        ("requests==2.31.0 --hash=sha256:abcd", "'--hash' is not allowed"),
        ("--no-binary :all:", "'--no-binary' is not allowed"),
        ("--anything-else", "'--anything-else' is not allowed"),
        ("evil @ https://evil.example/evil-1.0.whl", "direct URL requirements"),
        ("https://evil.example/evil-1.0.tar.gz", "URL requirements are not allowed"),
        ("git+https://github.com/a/b.git", "VCS requirements"),
        ("b @ git+https://github.com/a/b.git", "VCS requirements"),
        ("./local_pkg", "local path"),
        ("../sibling", "local path"),
        ("/abs/path/pkg", "local path"),
        ("file:///tmp/pkg", "local path"),
        ("pkg @ file:///tmp/pkg", "local path"),
        ("wheels/pkg-1.0-py3-none-any.whl", "local path"),
        ("C:\\wheels\\pkg.whl", "local path"),
        ("numpy>=>1", "invalid PEP 508"),
        ("not a requirement!", "invalid PEP 508"),
        ("numpy==1.26.4 extra words", "invalid PEP 508"),
    ],
)
def test_unsafe_or_invalid_requirements_are_refused_with_a_reason(text: str, reason_part: str) -> None:
    requirement, reason = check_requirement(text)
    assert requirement is None
    assert reason is not None and reason_part in reason


def test_requirements_txt_skips_comments_and_blank_lines_and_names_bad_lines() -> None:
    text = "# data stack\nnumpy==1.26.4  # pinned\n\npandas>=2 \\\n  ; python_version >= '3.10'\n-e ./mine\n--index-url http://evil\n"
    accepted, problems = parse_requirements_txt(text)
    assert [item.normalized for item in accepted] == ["numpy==1.26.4", 'pandas>=2; python_version >= "3.10"']
    assert problems == [
        "requirements.txt line 6 '-e ./mine': editable installs (-e/--editable) are not allowed",
        "requirements.txt line 7 '--index-url http://evil': pip option '--index-url' is not allowed: "
        "packages come only from the configured index",
    ]


def test_a_requirement_list_reports_every_bad_item_and_wrong_types() -> None:
    accepted, problems = parse_requirement_list(["numpy", 3, "", "-e ."], item_lines=[5, 6, 7, 8])
    assert [item.normalized for item in accepted] == ["numpy"]
    assert len(problems) == 3
    assert problems[0].startswith("SKILL.md line 6, packages[1]: must be a requirement string")
    assert problems[1] == "SKILL.md line 7, packages[2]: empty requirement"
    assert problems[2].startswith("SKILL.md line 8, packages[3] '-e .': editable installs")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("numpy>=1.26, pandas", ["numpy>=1.26", "pandas"]),
        ("requests beautifulsoup4", ["requests", "beautifulsoup4"]),
        ("numpy >= 1.26, <2", ["numpy >= 1.26,<2"]),
        ("pandas[excel, sql]>=2 rich", ["pandas[excel, sql]>=2", "rich"]),
        ("a\nb\n\n# comment\nc  # trailing", ["a", "b", "c"]),
        (
            'tomli; python_version < "3.11" and os_name == "posix", rich',
            ['tomli; python_version < "3.11" and os_name == "posix"', "rich"],
        ),
        ("--index-url http://evil numpy", ["--index-url http://evil", "numpy"]),
    ],
)
def test_strings_naming_several_requirements_split_without_breaking_pep508(text: str, expected: list[str]) -> None:
    assert split_requirement_string(text) == expected


def test_a_string_with_one_bad_entry_names_that_entry() -> None:
    accepted, problems = parse_requirement_string(
        "numpy, ./local, pandas", where="SKILL.md line 4, metadata.requirements", source="metadata"
    )
    assert [item.normalized for item in accepted] == ["numpy", "pandas"]
    assert problems == [
        "SKILL.md line 4, metadata.requirements (entry 2) './local': "
        "local path requirements are not allowed: name a package from the index instead"
    ]


def test_duplicates_merge_deterministically_and_keep_their_sources() -> None:
    from_packages, _ = parse_requirement_list(["NumPy>=1.26", "pandas[b]"], source="packages")
    from_txt, _ = parse_requirements_txt("numpy<2\npandas[A]\nnumpy>=1.26\ntomli; python_version < '3.11'\n")
    requirements, sources = merge_requirements(from_packages + from_txt)
    assert requirements == ["numpy<2,>=1.26", "pandas[a,b]", 'tomli; python_version < "3.11"']
    assert sources == {
        "numpy<2,>=1.26": ["packages", "requirements.txt"],
        "pandas[a,b]": ["packages", "requirements.txt"],
        'tomli; python_version < "3.11"': ["requirements.txt"],
    }
    # the order of declaration does not change the result
    assert merge_requirements(list(reversed(from_packages + from_txt))) == (requirements, sources)


def test_same_package_under_different_markers_stays_separate() -> None:
    declared, _ = parse_requirements_txt("numpy<2; python_version < '3.12'\nnumpy>=2; python_version >= '3.12'\n")
    requirements, _ = merge_requirements(declared)
    assert requirements == ['numpy<2; python_version < "3.12"', 'numpy>=2; python_version >= "3.12"']

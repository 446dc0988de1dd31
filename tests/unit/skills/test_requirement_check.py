"""check_requirement: the classes of text pip reads more into than PEP 508 says, each refused with its reason."""

from __future__ import annotations

import pytest

from chalicelib.skills.requirement_check import LINE_BREAKS, check_requirement, looks_like_a_file_to_pip, normalize_requirement
from chalicelib.skills.requirements import parse_requirements_txt, split_requirement_string


def _reason(text: str) -> str:
    requirement, reason = check_requirement(text)
    assert requirement is None, f"{text!r} was accepted"
    return reason or ""


def test_every_character_str_splitlines_breaks_at_is_refused_inside_an_entry() -> None:
    # the set is Python's own: nothing it splits on may hide a second line from the reader
    assert LINE_BREAKS == {c for c in map(chr, range(0x110000)) if len(f"a{c}b".splitlines()) > 1}
    for char in sorted(LINE_BREAKS):
        assert "line break" in _reason(f'numpy; python_version > "3"{char}numpy===x')


@pytest.mark.parametrize(("char", "words"), [
    ("\x00", "control character U+0000"), ("\x1b", "control character U+001B"), ("\x7f", "control character U+007F"),
    ("\u200b", "invisible formatting character U+200B"), ("\u202e", "invisible formatting character U+202E"),
    ("\ufeff", "invisible formatting character U+FEFF"), ("\u00a0", "non-ASCII character U+00A0"),
    ("\u0430", "non-ASCII character U+0430"), ("\U0001f600", "non-ASCII character U+1F600"),
])  # fmt: skip
def test_other_invisible_or_non_ascii_characters_are_refused(char: str, words: str) -> None:
    assert words in _reason(f"numpy{char}==1.26.4")


@pytest.mark.parametrize("text", ["numpy===${SKILLHARBOR_ADMIN_KEY}", "${X}", "numpy==$X", "numpy; os_name == '$HOME'"])
def test_a_dollar_sign_is_refused_wherever_it_is(text: str) -> None:
    assert "'$' is not allowed" in _reason(text)


def test_arbitrary_equality_needs_a_version() -> None:
    assert "arbitrary equality '===anything'" in _reason("numpy===anything")
    requirement, reason = check_requirement("numpy===1.26.4")
    assert reason is None and normalize_requirement(requirement) == "numpy===1.26.4"


@pytest.mark.parametrize("text", [
    "numpy===@/../../../../tmp/x", "numpy @ /tmp/x", "numpy@/tmp/x", "x @ file:///tmp/x", "numpy ; os_name == 'posix' @ /x",
    "/tmp/x", "./x", "../x", "..", ".", "~/x", "~root/x", "C:\\x", "C:x", "x\\y", "x.tar.gz", "X.TAR.GZ", "x.zip", "x.whl",
    "x.tgz", "x.tar", "x.egg", "x.tar.xz", "x.tar.bz2", "numpy==1.0+local.tar.gz", "numpy===1.0+x.whl", "numpy[x.zip]",
    "numpy[/x]", "file:x", "FILE:///x", "http://127.0.0.1/x.whl", "git+https://h/x", "x @ git+https://h/x",
    "x.whl; python_version > '3'",
])  # fmt: skip
def test_paths_urls_and_archives_are_refused_in_any_spelling(text: str) -> None:
    reason = _reason(text)
    assert any(word in reason for word in ("local path", "direct reference", "URL", "VCS", "file name")), reason


@pytest.mark.parametrize("text", [
    "numpy", "numpy===1.26.4", "zope.interface>=5", "backports.zoneinfo", "numpy==1.0+cpu", "requests[socks]>=2.31",
    "numpy (>=1.26)", 'tomli; python_version < "3.11"', "pkg; platform_release == '/tmp/x'",
])  # fmt: skip
def test_plain_pep508_stays_accepted_and_its_canonical_form_is_no_file_name(text: str) -> None:
    requirement, reason = check_requirement(text)
    assert reason is None, reason
    canonical = normalize_requirement(requirement)
    assert not looks_like_a_file_to_pip(canonical)
    assert check_requirement(canonical)[1] is None  # canonical text passes its own check (the resolver re-checks it)


def test_an_overlong_entry_is_refused() -> None:
    assert "longer than 500" in _reason("numpy" + ",!=1.0" * 100)


def test_requirements_txt_lines_end_where_an_editor_ends_them() -> None:
    accepted, problems = parse_requirements_txt("numpy\r\npandas\rsix\nrich\u2028--index-url http://evil\n")
    assert [a.normalized for a in accepted] == ["numpy", "pandas", "six"]
    assert len(problems) == 1 and problems[0].startswith("requirements.txt line 4") and "U+2028" in problems[0]


def test_a_requirement_string_is_split_on_ascii_separators_only() -> None:
    assert split_requirement_string("numpy pandas,six") == ["numpy", "pandas", "six"]
    assert split_requirement_string("numpy\u2028pandas") == ["numpy\u2028pandas"]  # one entry, to be refused

"""Whatever arrives, the parser answers with a ParsedSkill or InvalidSkill, and quickly."""

from __future__ import annotations

import contextlib
import io
import warnings
import zipfile

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chalicelib.errors import InvalidSkill
from chalicelib.skills import ParsedSkill, parse_skill_md, parse_zip

FUZZ = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def parse_or_invalid(parse, data):  # type: ignore[no-untyped-def]
    try:
        result = parse(data)
    except InvalidSkill as exc:
        assert exc.problems and all(isinstance(problem, str) and problem for problem in exc.problems)
        return None
    assert isinstance(result, ParsedSkill)
    result.to_record()
    return result


yaml_ish = st.lists(
    st.sampled_from(
        [
            "name: x",
            "description: y",
            "name: ",
            "description:",
            "packages:",
            "  - numpy",
            "  - -e .",
            "  - [a",
            "metadata: {requirements: 'a, b'}",
            'metadata: {"openclaw": {"install": [{"kind": "uv", "package": "x y"}]}}',
            "metadata: '{\"requirements\": 3}'",
            "entrypoint: run",
            "entrypoint: a.py:b",
            "&a x",
            "*a",
            "? [x]",
            ": :",
            "license: 1",
            "- item",
            "{",
            "}",
            "'",
            '"',
            "\t",
            "x: !!binary aGk=",
            "y: 2024-01-01",
            "z: .inf",
        ]
    )
    | st.text(max_size=40),
    max_size=12,
)
body_ish = st.lists(
    st.sampled_from(
        [
            "```python",
            "```py",
            "```",
            "~~~python",
            "~~~",
            "def execute(data):",
            "    return data",
            "def run(:",
            "async def main():",
            "    pass",
            "# heading",
            "\x00",
            "ñ",
        ]
    )
    | st.text(max_size=30),
    max_size=10,
)


@FUZZ
@given(st.text())
def test_arbitrary_text_raises_only_invalid_skill(text: str) -> None:
    parse_or_invalid(parse_skill_md, text.encode("utf-8", "surrogatepass"))


@FUZZ
@given(st.binary())
def test_arbitrary_bytes_raise_only_invalid_skill(data: bytes) -> None:
    parse_or_invalid(parse_skill_md, data)


@FUZZ
@given(yaml_ish, body_ish, st.sampled_from(["\n", "\r\n"]))
def test_near_valid_skill_md_raises_only_invalid_skill(frontmatter: list[str], body: list[str], newline: str) -> None:
    text = newline.join(["---", *frontmatter, "---", *body])
    parse_or_invalid(parse_skill_md, text.encode("utf-8", "surrogatepass"))


@FUZZ
@given(st.binary())
def test_arbitrary_bytes_as_zip_raise_only_invalid_skill(data: bytes) -> None:
    parse_or_invalid(parse_zip, data)


entry_names = st.sampled_from(
    [
        "SKILL.md",
        "s/SKILL.md",
        "requirements.txt",
        "s/requirements.txt",
        "run.py",
        "s/run.py",
        "s/a/b.py",
        "../x",
        "/abs",
        "a\\b",
        "C:x",
        "__MACOSX/x",
        "s/",
        "x.pyc",
    ]
) | st.text(min_size=1, max_size=12)


@FUZZ
@given(
    st.lists(
        st.tuples(
            entry_names,
            st.binary(max_size=200)
            | yaml_ish.map(lambda lines: "---\n" + "\n".join(lines) + "\n---\n").map(str.encode),
        ),
        max_size=6,
    )
)
def test_arbitrary_zip_contents_raise_only_invalid_skill(entries: list[tuple[str, bytes]]) -> None:
    buffer = io.BytesIO()
    with warnings.catch_warnings(), zipfile.ZipFile(buffer, "w") as archive:
        warnings.simplefilter("ignore")  # duplicate names are part of the fuzzing
        for name, content in entries:
            info = zipfile.ZipInfo("placeholder")
            info.filename = name
            # zipfile refuses to write some names; that is not the parser's business
            with contextlib.suppress(ValueError, UnicodeEncodeError):
                archive.writestr(info, content)
    parse_or_invalid(parse_zip, buffer.getvalue())


def test_billion_laughs_is_refused_at_the_first_anchor() -> None:
    levels = ['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for index in range(1, 10):
        previous = chr(ord("a") + index - 1)
        current = chr(ord("a") + index)
        levels.append(f"{current}: &{current} [" + ",".join([f"*{previous}"] * 9) + "]")
    data = ("---\nname: lol\ndescription: laughs\n" + "\n".join(levels) + "\n---\nbody\n").encode()
    try:
        parse_skill_md(data)
    except InvalidSkill as exc:
        assert exc.problems == [
            "SKILL.md line 4: invalid YAML in the frontmatter: YAML anchors (&name) are not allowed"
        ]
    else:
        raise AssertionError("a billion-laughs frontmatter must be refused")


def test_alias_bomb_without_anchor_syntax_tricks_is_refused() -> None:
    # many aliases to one small anchor: refused at the anchor, never expanded
    data = (
        "---\nname: x\ndescription: y\nbase: &b [1, 2]\n" + "\n".join(f"k{i}: *b" for i in range(5000)) + "\n---\n"
    ).encode()
    try:
        parse_skill_md(data)
    except InvalidSkill as exc:
        assert "anchors" in exc.problems[0]
    else:
        raise AssertionError("aliases must be refused")

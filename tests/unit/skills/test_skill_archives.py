"""parse_zip and parse_folder: layout, bundled requirements and scripts, and unsafe archives."""

from __future__ import annotations

import io
import os
import shutil
import stat
import warnings
import zipfile
from pathlib import Path

import pytest

from chalicelib.errors import InvalidSkill
from chalicelib.skills import ParseLimits, parse_folder, parse_path, parse_zip

# the shipped Agent Skills example doubles as the fixture: the docs' example is the tested one
AGENT = Path(__file__).resolve().parents[3] / "examples" / "agent-skills-wordfreq"
SKILL = b"---\nname: Zipped\ndescription: A zipped skill\n---\nUse it.\n"


def make_zip(entries: dict[str, bytes] | list[tuple[str | zipfile.ZipInfo, bytes]]) -> bytes:
    buffer = io.BytesIO()
    items = entries.items() if isinstance(entries, dict) else entries
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # duplicate names are written on purpose in one test
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, content in items:
                archive.writestr(name, content)
    return buffer.getvalue()


def folder_entries(folder: Path, prefix: str = "") -> dict[str, bytes]:
    return {
        prefix + path.relative_to(folder).as_posix(): path.read_bytes()
        for path in sorted(folder.rglob("*"))
        if path.is_file()
    }


def zip_problems(data: bytes, **kwargs: object) -> list[str]:
    with pytest.raises(InvalidSkill) as caught:
        parse_zip(data, **kwargs)  # type: ignore[arg-type]
    assert caught.value.problems
    return caught.value.problems


# --- good archives ------------------------------------------------------------------------


def test_agent_skills_folder_with_requirements_txt_and_script() -> None:
    skill = parse_folder(AGENT)
    assert skill.skill_id == "word-frequency"
    assert skill.declared_form == "agent_skills"
    assert skill.requirements == ["regex>=2024.4.16"]
    assert skill.requirement_sources == {"regex>=2024.4.16": ["requirements.txt"]}
    assert skill.skill_type == "python_code"
    assert skill.code_path == "scripts/word_frequency.py"
    assert skill.entrypoint == "top_words"
    assert "def top_words(data):" in (skill.code or "")
    assert set(skill.files) == {"requirements.txt", "scripts/word_frequency.py"}
    assert skill.license == "Apache-2.0"


def test_zip_with_or_without_top_folder_matches_the_folder() -> None:
    from_folder = parse_folder(AGENT)
    at_root = parse_zip(make_zip(folder_entries(AGENT)))
    in_folder = parse_zip(make_zip(folder_entries(AGENT, "word-frequency/")))
    assert at_root.version == in_folder.version == from_folder.version
    assert at_root.model_dump() == in_folder.model_dump() == from_folder.model_dump()


def test_zip_version_ignores_entry_order_but_not_content() -> None:
    entries = list(folder_entries(AGENT).items())
    forward = parse_zip(make_zip(entries)).version
    assert parse_zip(make_zip(list(reversed(entries)))).version == forward
    changed = [(name, content + b"\n" if name == "requirements.txt" else content) for name, content in entries]
    assert parse_zip(make_zip(changed)).version != forward


def test_zip_holding_only_skill_md_has_the_skill_md_version() -> None:
    import hashlib

    assert parse_zip(make_zip({"SKILL.md": SKILL})).version == hashlib.sha256(SKILL).hexdigest()


def test_single_bundled_script_is_the_code_with_default_entrypoint() -> None:
    skill = parse_zip(
        make_zip({"SKILL.md": SKILL, "tool.py": b"def _h():\n    pass\n\ndef summarize(data):\n    return data\n"})
    )
    assert skill.skill_type == "python_code"
    assert skill.code_path == "tool.py"
    assert skill.entrypoint == "summarize"


def test_several_scripts_without_entrypoint_make_a_script_skill() -> None:
    skill = parse_zip(make_zip({"SKILL.md": SKILL, "a.py": b"def a():\n    pass\n", "b.py": b"def b():\n    pass\n"}))
    assert skill.skill_type == "script"
    assert skill.scripts == ["a.py", "b.py"] and skill.code is None
    assert skill.template == "Use it.\n"
    assert set(skill.files) == {"a.py", "b.py"}


def test_entrypoint_script_wins_over_an_example_block() -> None:
    skill_md = (
        b"---\nname: z\ndescription: d\nentrypoint: scripts/run.py:go\n---\n"
        b"Example:\n```python\nfrom scripts.run import go\nprint(go({}))\n```\n"
    )
    skill = parse_zip(
        make_zip({"SKILL.md": skill_md, "scripts/run.py": b"def go(data):\n    return 1\n", "scripts/util.py": b""})
    )
    assert skill.code_path == "scripts/run.py"
    assert skill.entrypoint == "go"


def test_bundled_script_syntax_error_names_the_script_line() -> None:
    skill_md = b"---\nname: z\ndescription: d\nentrypoint: run.py\n---\n"
    (problem,) = zip_problems(make_zip({"SKILL.md": skill_md, "run.py": b"x = 1\ndef execute(:\n"}))
    assert problem.startswith("run.py line 2: Python syntax error")


def test_requirements_txt_problems_in_a_zip_are_named() -> None:
    problems = zip_problems(make_zip({"SKILL.md": SKILL, "requirements.txt": b"numpy\n-e .\nhttps://x/y.whl\n"}))
    assert [problem.split(" '")[0] for problem in problems] == ["requirements.txt line 2", "requirements.txt line 3"]


def test_requirements_txt_not_utf8_says_where() -> None:
    (problem,) = zip_problems(make_zip({"SKILL.md": SKILL, "requirements.txt": b"numpy\npand\xffas\n"}))
    assert problem.startswith("requirements.txt is not valid UTF-8: byte 0xff at line 2, column 5")


def test_binary_and_large_files_are_listed_as_skipped() -> None:
    skill = parse_zip(
        make_zip(
            {"SKILL.md": SKILL, "logo.png": b"\x89PNG\r\n\x1a\n\x00\x00", "data.txt": b"x" * 100, "notes.md": b"hi"}
        ),
        limits=ParseLimits(max_bundled_text_bytes=50),
    )
    assert skill.files == {"notes.md": "hi"}
    assert skill.skipped_files == {"logo.png": "not UTF-8 text", "data.txt": "larger than 50 bytes"}


def test_housekeeping_entries_are_ignored() -> None:
    plain = parse_zip(make_zip({"skill/SKILL.md": SKILL}))
    noisy = parse_zip(
        make_zip(
            {
                "skill/SKILL.md": SKILL,
                "__MACOSX/skill/._SKILL.md": b"\x00\x05",
                "skill/.DS_Store": b"\x00",
                "skill/__pycache__/x.cpython-311.pyc": b"\x00",
            }
        )
    )
    assert noisy.version == plain.version
    assert noisy.files == {}


def test_parse_path_dispatches_on_what_it_is(tmp_path: Path) -> None:
    archive = tmp_path / "skill.zip"
    archive.write_bytes(make_zip({"SKILL.md": SKILL}))
    single = tmp_path / "SKILL.md"
    single.write_bytes(SKILL)
    assert parse_path(archive).version == parse_path(single).version
    assert parse_path(AGENT).skill_id == "word-frequency"


# --- bad archives --------------------------------------------------------------------------


def test_zip_over_20_mib_is_refused() -> None:
    (problem,) = zip_problems(b"PK" + b"\x00" * (20 * 1024 * 1024))
    assert "over the limit of 20971520 bytes" in problem


def test_corrupt_zip_is_refused() -> None:
    (problem,) = zip_problems(b"this is not a zip at all")
    assert problem.startswith("not a valid zip archive")


def test_truncated_zip_is_refused() -> None:
    data = make_zip({"SKILL.md": SKILL})
    (problem,) = zip_problems(data[: len(data) // 2])
    assert "not a valid zip archive" in problem


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("/etc/passwd", "is an absolute path"),
        ("../escape.py", "contains a '..' component"),
        ("skill/../../escape.py", "contains a '..' component"),
        ("skill\\evil.py", "uses backslashes"),
        ("C:/Windows/evil.py", "starts with a drive letter"),
        ("a//b.py", "is not a normalized relative path"),
    ],
)
def test_unsafe_entry_paths_are_refused(name: str, reason: str) -> None:
    info = zipfile.ZipInfo("placeholder")
    info.filename = name  # ZipInfo's constructor would quietly clean some of these up
    (problem,) = zip_problems(make_zip([("SKILL.md", SKILL), (info, b"x")]))
    assert problem.startswith(f"zip entry {name!r} {reason}")


def test_symlink_entries_are_refused() -> None:
    link = zipfile.ZipInfo("link.py")
    link.create_system = 3
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    problems = zip_problems(make_zip([("SKILL.md", SKILL), (link, b"/etc/passwd")]))
    assert problems == ["zip entry 'link.py' is a symbolic link"]


def test_encrypted_entries_are_refused() -> None:
    data = bytearray(make_zip({"SKILL.md": SKILL, "secret.py": b"x"}))
    # zipfile cannot write encrypted entries: set the "encrypted" flag in the central directory by hand
    central = data.rindex(b"PK\x01\x02")  # the last central record is secret.py
    data[central + 8] |= 0x1
    problems = zip_problems(bytes(data))
    assert problems == ["zip entry 'secret.py' is encrypted"]


def test_duplicate_entries_are_refused() -> None:
    problems = zip_problems(make_zip([("SKILL.md", SKILL), ("SKILL.md", SKILL.replace(b"Zipped", b"Other"))]))
    assert problems == ["zip entry 'SKILL.md' appears more than once"]


def test_zip_without_skill_md_is_refused() -> None:
    (problem,) = zip_problems(make_zip({"README.md": b"hello"}))
    assert problem == "no SKILL.md at the root of the zip or inside its single top-level folder"


def test_skill_md_too_deep_or_beside_other_folders_is_refused() -> None:
    (problem,) = zip_problems(make_zip({"a/b/SKILL.md": SKILL}))
    assert "found: a/b/SKILL.md" in problem
    (problem,) = zip_problems(make_zip({"a/SKILL.md": SKILL, "b/other.py": b""}))
    assert "no SKILL.md at the root" in problem


def test_too_many_entries_are_refused() -> None:
    entries = {"SKILL.md": SKILL} | {f"f{index}.txt": b"" for index in range(20)}
    (problem,) = zip_problems(make_zip(entries), limits=ParseLimits(max_entries=10))
    assert problem == "the zip has 21 entries, over the limit of 10"


def test_zip_bomb_is_refused_before_unpacking() -> None:
    bomb = make_zip({"SKILL.md": SKILL, "zeros.bin": b"\x00" * (4 * 1024 * 1024)})
    assert len(bomb) < 64 * 1024
    (problem,) = zip_problems(bomb, limits=ParseLimits(max_total_uncompressed_bytes=1024 * 1024))
    assert problem == f"the zip would unpack to {4 * 1024 * 1024 + len(SKILL)} bytes, over the limit of 1048576 bytes"


def test_every_archive_problem_is_listed_together() -> None:
    info = zipfile.ZipInfo("placeholder")
    info.filename = "../x.py"
    data = make_zip([("SKILL.md", b"---\nname: n\n---\n"), (info, b""), ("requirements.txt", b"-e .\n")])
    problems = zip_problems(data)
    assert len(problems) == 3
    assert problems[0] == "zip entry '../x.py' contains a '..' component"
    assert "'description' is missing" in problems[1]
    assert problems[2].startswith("requirements.txt line 1 '-e .'")


def test_folder_symlinks_are_refused(tmp_path: Path) -> None:
    shutil.copytree(AGENT, tmp_path / "skill")
    os.symlink("/etc/passwd", tmp_path / "skill" / "passwd")
    with pytest.raises(InvalidSkill) as caught:
        parse_folder(tmp_path / "skill")
    assert caught.value.problems == ["'passwd' is a symbolic link"]


def test_folder_without_skill_md_or_missing_path(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(InvalidSkill) as caught:
        parse_folder(tmp_path)
    assert "no SKILL.md" in caught.value.problems[0]
    with pytest.raises(InvalidSkill):
        parse_folder(tmp_path / "missing")


def test_problems_inside_a_top_folder_name_the_full_path() -> None:
    problems = zip_problems(
        make_zip({"s/SKILL.md": b"---\nname: n\n---\n", "s/requirements.txt": b"-e .\n", "s/run.py": b"def (:\n"})
    )
    assert problems[0] == "s/SKILL.md line 2: 'description' is missing from the frontmatter"
    assert problems[1].startswith("s/requirements.txt line 1 '-e .'")
    assert problems[2].startswith("s/run.py line 1: Python syntax error")

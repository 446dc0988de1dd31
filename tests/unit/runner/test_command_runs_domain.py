"""Command runs' plain parts: the request's validation, the workspace read back, snippets."""

from __future__ import annotations

import base64
import os

import pytest

from chalicelib.errors import BadRequest
from chalicelib.runner.command_spec import parse_command
from chalicelib.runner.snippets import defines_function, snippet_allowed
from chalicelib.runner.workspace_io import read_workspace, write_workspace


def _parse(**body):
    return parse_command(body, workspace_id="ws-1", max_file_bytes=10, max_collect_bytes=15)


@pytest.mark.parametrize("body, word", [
    ({"argv": "ls -l"}, "argv"), ({"argv": ["ls", 1]}, "argv"), ({}, "argv"), ({"argv": ["ls"], "stdin": 3}, "stdin"),
    ({"argv": ["ls"], "collect": ["../x"]}, "collect pattern"), ({"argv": ["ls"], "collect": ["/etc/passwd"]}, "collect pattern"),
    ({"argv": ["ls"], "env": {"PATH": "/tmp"}}, "PATH"), ({"argv": ["ls"], "env": {"SKILL_DIR": "/"}}, "SKILL_DIR"),
    ({"argv": ["ls\x00"]}, "NUL"),
])  # fmt: skip
def test_bad_commands_are_refused_with_the_reason(body, word):
    with pytest.raises(BadRequest) as error:
        _parse(**body)
    assert word in str(error.value)


def test_a_good_command_keeps_its_fields():
    spec = _parse(argv=["python", "x.py"], stdin="hi", env={"TZ": "UTC", "SKILL_MODE": "fast"}, collect=["out/*.json"])
    job = spec.harness_job()
    assert job["argv"] == ["python", "x.py"] and job["cwd"] == "/workspace" and job["skill_dir"] == "/skill"
    assert job["env"] == {"TZ": "UTC", "SKILL_MODE": "fast"} and job["collect"] == ["out/*.json"]


def test_workspace_files_round_trip_and_links_are_neither_kept_nor_collected(tmp_path):
    assert write_workspace(str(tmp_path), {"a/b.txt": base64.b64encode(b"hello").decode()}) is None
    assert write_workspace(str(tmp_path), {"../x": "eA=="}) is not None
    os.symlink("/etc/passwd", tmp_path / "link")
    report = read_workspace(str(tmp_path), ["a/*"], 10, 15)
    assert report["workspace"] == {"a/b.txt": base64.b64encode(b"hello").decode()} and report["collected"] == ["a/b.txt"]
    assert report["collect_error"] is None and any("link is a symbolic link" in s for s in report["skipped"])
    assert "symbolic link" in read_workspace(str(tmp_path), ["link"], 10, 15)["collect_error"]


def test_collect_caps_name_the_file(tmp_path):
    (tmp_path / "big").write_bytes(b"x" * 11)
    assert "'big' is 11 bytes, over the 10-byte cap" in read_workspace(str(tmp_path), ["*"], 10, 15)["collect_error"]
    (tmp_path / "big").write_bytes(b"x" * 8)
    (tmp_path / "big2").write_bytes(b"x" * 8)
    assert "15-byte cap in total" in read_workspace(str(tmp_path), ["big*"], 10, 15)["collect_error"]
    assert read_workspace(str(tmp_path), ["big"], 10, 15)["collect_error"] is None


def test_code_without_the_entrypoint_is_a_snippet():
    assert not defines_function("import numpy as np; print(np.__version__)", "execute")
    assert not defines_function("def helper():\n    pass\n", "execute")
    assert not defines_function("this is not python(", "execute")
    assert defines_function("def execute(x):\n    return x\n", "execute")
    assert defines_function("async def execute():\n    return 1\n", "execute")
    assert defines_function("from mod import run as execute\n", "execute")


def test_snippets_are_off_for_students_unless_the_skill_says_otherwise():
    student, intern = 0, 1
    assert not snippet_allowed(None, student, student) and snippet_allowed(None, intern, student)
    assert snippet_allowed(True, student, student) and not snippet_allowed(False, intern, student)


def test_a_directory_swapped_for_a_link_is_not_followed(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    root = tmp_path / "ws"
    root.mkdir()
    os.symlink(outside, root / "sub")
    problem = write_workspace(str(root), {"sub/x.txt": base64.b64encode(b"x").decode()})
    assert problem and "'sub' is not a directory" in problem and list(outside.iterdir()) == []

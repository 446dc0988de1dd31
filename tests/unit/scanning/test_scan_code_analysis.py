"""Skill code analysis: bandit plus our own checks."""

from __future__ import annotations

from textwrap import dedent

import pytest

from chalicelib.scanning.code_analysis import CHECKS, analyse_code


def by_id(code, **kwargs):
    findings = analyse_code(dedent(code), **kwargs)
    return {(f.test_id, f.severity, f.line) for f in findings}, findings


def test_popen_with_shell_is_high_even_with_a_constant_command():
    ids, findings = by_id(
        """\
        import subprocess
        subprocess.Popen("ls -l", shell=True)
        """
    )
    assert ("B602", "HIGH", 2) in ids
    shell = next(f for f in findings if f.test_id == "B602")
    assert shell.file == "skill.py" and "shell" in shell.message


def test_nosec_comments_cannot_silence_the_scanner():
    ids, _ = by_id(
        """\
        import subprocess
        subprocess.Popen(cmd, shell=True)  # nosec
        """
    )
    assert ("B602", "HIGH", 2) in ids


def test_os_system_is_high():
    ids, _ = by_id("import os\nos.system('id')\n")
    assert ("B605", "HIGH", 2) in ids


def test_eval_is_reported_by_bandit():
    ids, _ = by_id("x = eval(input())\n")
    assert any(test_id == "B307" for test_id, _, _ in ids)


def test_harmless_code_has_no_findings():
    assert analyse_code("def add(a, b):\n    return a + b\n") == []


@pytest.mark.parametrize(
    ("code", "severity"),
    [
        ("import os\nk = os.environ['AWS_SECRET_ACCESS_KEY']\n", "HIGH"),
        ("import os\nk = os.getenv('SKILLHARBOR_ADMIN_KEY')\n", "HIGH"),
        ("from os import environ as e\nk = e.get('OPENAI_API_KEY')\n", "MEDIUM"),
        ("from os import getenv\nk = getenv('DB_PASSWORD', '')\n", "MEDIUM"),
        ("import os as o\nk = o.environ.get('GITHUB_TOKEN')\n", "MEDIUM"),
    ],
)
def test_credentials_read_from_the_environment(code, severity):
    ids, findings = by_id(code)
    assert ("SH101", severity, 2) in ids
    assert "environment" in next(f for f in findings if f.test_id == "SH101").message


def test_ordinary_environment_reads_are_fine():
    assert analyse_code("import os\nhome = os.environ.get('HOME')\nlang = os.getenv('LANG')\n") == []


@pytest.mark.parametrize(
    "code",
    [
        "import os\nd = dict(os.environ)\n",
        "import os\nd = os.environ.copy()\n",
        "import os\nd = {**os.environ}\n",
        "import os\nfor k in os.environ:\n    print(k)\n",
        "import os, json\nprint(json.dumps({k: v for k, v in os.environ.items()}))\n",
    ],
)
def test_whole_environment_dumps(code):
    ids, _ = by_id(code)
    assert any(test_id == "SH102" for test_id, _, _ in ids)


def test_docker_socket_and_metadata_endpoints_are_high():
    ids, _ = by_id(
        """\
        import socket
        s = socket.socket(socket.AF_UNIX)
        s.connect("/var/run/docker.sock")
        url = "http://169.254.169.254/latest/meta-data/iam/security-credentials/"
        env = open(f"/proc/self/environ").read()
        """
    )
    assert {("SH201", "HIGH", 3), ("SH201", "HIGH", 4), ("SH201", "HIGH", 5)} <= ids


def test_ctypes_and_mmap_tricks():
    ids, _ = by_id(
        """\
        import ctypes, mmap
        libc = ctypes.CDLL("libc.so.6")
        ctypes.memmove(0, 0, 1)
        page = mmap.mmap(-1, 4096, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
        """
    )
    assert ("SH301", "MEDIUM", 1) in ids
    assert ("SH301", "HIGH", 2) in ids and ("SH301", "HIGH", 3) in ids
    assert ("SH302", "HIGH", 4) in ids


def test_computed_imports():
    ids, _ = by_id("import importlib\nname = 'o' + 's'\nm = importlib.import_module(name)\nn = __import__(name)\n")
    assert ("SH401", "MEDIUM", 3) in ids and ("SH401", "MEDIUM", 4) in ids
    assert analyse_code("import importlib\nm = importlib.import_module('json')\n") == []


def test_syntax_error_is_a_high_finding_not_a_crash():
    findings = analyse_code({"main.py": "def broken(:\n    pass\n", "ok.py": "x = 1\n"})
    assert [(f.file, f.test_id, f.severity, f.line) for f in findings] == [("main.py", "SH100", "HIGH", 1)]
    assert "cannot be parsed" in findings[0].message


def test_null_bytes_are_a_finding_too():
    (finding,) = analyse_code("x = 1\x00\n")
    assert finding.test_id == "SH100"


def test_several_files_keep_their_names_and_lines():
    findings = analyse_code(
        {
            "pkg/tool.py": "import subprocess\n\nsubprocess.call('x', shell=True)\n",
            "main.py": "import os\nos.getenv('API_TOKEN')\n",
        }
    )
    places = {(f.file, f.test_id, f.line) for f in findings}
    assert ("pkg/tool.py", "B602", 3) in places
    assert ("main.py", "SH101", 2) in places


def test_assert_is_not_reported():
    assert analyse_code("assert 1 + 1 == 2\n") == []


def test_own_checks_are_documented():
    assert {"SH100", "SH101", "SH102", "SH201", "SH301", "SH302", "SH401"} <= set(CHECKS)


def test_bandit_can_be_switched_off_for_own_checks_only():
    ids, _ = by_id("import subprocess\nsubprocess.Popen('ls', shell=True)\n", use_bandit=False)
    assert ids == set()

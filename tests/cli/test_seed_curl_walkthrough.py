"""The seed guide's own curl calls, run with the real curl against the real local stack.

The seed documents post JSON with ``curl -d '{...}'`` and, for most calls, no
Content-Type, so curl declares ``application/x-www-form-urlencoded``. Every
call is parsed out of the seed file, pointed at the test stack, given an
Authorization header (the seed has none) and must get a sensible JSON answer:
never 415, never "not valid JSON".
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import pytest

SEED = Path(__file__).resolve().parent / "data" / "seed_004_user_guide.txt"
SHARED_SEED = Path(__file__).resolve().parents[3] / "shared" / "seeds" / "004_0346a0fa6103b39d.txt"
SEED_URL = "http://localhost:8000"
#: what each seed call must answer on a stack where agent-123 exists and my-skill was never installed
EXPECTED = {
    ("GET", "/api/packages/check"): {200},
    # 403 before approvals (pandas has none), else 422: numpy==1.21.0 has no wheel for the image's CPython 3.11
    ("POST", "/api/packages/install"): {403, 422},
    ("POST", "/api/packages/execute"): {404},  # nothing installed: "run POST /api/packages/install first"
    ("DELETE", "/api/packages/my-skill"): {404},
    ("POST", "/api/packages/request"): {201},
    ("POST", "/api/packages/approve"): {201},
    ("POST", "/api/packages/ban"): {201},
}


def seed_curl_commands(text: str) -> list[list[str]]:
    """Every ``curl`` command of the guide as argv: line continuations (``\\``, written ``\\\\``
    inside the seed's markdown) joined, multi-line quoted bodies kept whole."""
    lines = text.splitlines()
    commands = []
    i = 0
    while i < len(lines):
        if not lines[i].strip().startswith("curl "):
            i += 1
            continue
        command = lines[i].strip()
        while True:
            continued = re.search(r"\s\\{1,2}$", command)
            if continued:
                command = command[: continued.start()] + " "
            else:
                try:
                    argv = shlex.split(command)
                    break
                except ValueError:  # a quoted body goes on over the next lines
                    command += "\n"
            i += 1
            command += lines[i].strip() if continued else lines[i]
        commands.append(argv)
        i += 1
    return commands


def _method_and_path(argv: list[str]) -> tuple[str, str]:
    method = argv[argv.index("-X") + 1] if "-X" in argv else ("POST" if "-d" in argv else "GET")
    url = next(a for a in argv if a.startswith(SEED_URL))
    return method, url[len(SEED_URL):].split("?", 1)[0]


def test_the_copy_is_the_seed_document():
    if SHARED_SEED.exists():
        assert SEED.read_bytes() == SHARED_SEED.read_bytes()


def test_every_call_of_the_guide_is_found():
    calls = [_method_and_path(argv) for argv in seed_curl_commands(SEED.read_text())]
    assert sorted(set(calls)) == sorted(EXPECTED)
    assert len(calls) == 8  # the check appears in both guides
    bare_json_posts = [a for a in seed_curl_commands(SEED.read_text()) if "-d" in a and "Content-Type: application/json" not in a]
    assert len(bare_json_posts) == 3  # request, approve, ban: form-encoded as far as curl is concerned


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_the_seed_guides_curl_calls_get_sensible_answers(local_stack, run_cli):
    run_cli("agents", "create", "agent-123", "--maturity", "INTERN")
    answers = []
    for argv in seed_curl_commands(SEED.read_text()):
        replayed = [a.replace(SEED_URL, local_stack.api_url) for a in argv]
        replayed[1:1] = ["-sS", "--max-time", "300", "-H", f"Authorization: Bearer {local_stack.admin_key}",
                         "-w", "\n%{http_code} %{content_type}"]  # fmt: skip
        done = subprocess.run(replayed, capture_output=True, text=True, timeout=320)
        assert done.returncode == 0, (argv, done.stderr)
        body, _, trailer = done.stdout.rpartition("\n")
        status, _, content_type = trailer.partition(" ")
        call = _method_and_path(argv)
        answers.append((call, int(status), json.loads(body)))
        assert content_type.startswith("application/json"), (call, trailer, body)
        assert int(status) != 415 and "not valid JSON" not in body, (call, status, body)
        assert int(status) in EXPECTED[call], (call, status, body)
    by_call = {call: body for call, _, body in answers}
    assert by_call[("GET", "/api/packages/check")]["allowed"] is True  # the guide approves numpy 1.21.0 for INTERN
    assert "POST /api/packages/install first" in by_call[("POST", "/api/packages/execute")]["message"]
    install = by_call[("POST", "/api/packages/install")]
    if install["error"] == "permission_denied":  # named: the package with no approval yet
        assert "pandas" in json.dumps(install)
    else:
        assert install["error"] == "resolution_failed" and "numpy" in install["message"]
    assert by_call[("POST", "/api/packages/request")]["package_name"] == "numpy"
    assert by_call[("POST", "/api/packages/approve")]["min_maturity"] == "INTERN"
    assert by_call[("POST", "/api/packages/ban")]["reason"] == "Contains malware"


def test_a_body_that_is_not_json_is_a_400_naming_the_format(local_stack):
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    done = subprocess.run(
        ["curl", "-sS", "-X", "POST", f"{local_stack.api_url}/api/packages/ban", "-H", f"Authorization: Bearer {local_stack.admin_key}",
         "-d", "package_name=evil&reason=malware", "-w", "\n%{http_code}"],
        capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    body, _, status = done.stdout.rpartition("\n")
    assert status == "400"
    message = json.loads(body)["message"]
    assert "not valid JSON" in message and "application/x-www-form-urlencoded" in message
    assert "Content-Type: application/json" in message

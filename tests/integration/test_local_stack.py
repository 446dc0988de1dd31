"""`make run`'s stack as a user starts it: it serves, takes uploads, and Ctrl-C stops it cleanly."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import boto3

from chalicelib.local.child_stack import free_port

ROOT = Path(__file__).resolve().parents[2]


def _get(url: str, key: str | None = None) -> dict:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"} if key else {})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def _put(url: str, key: str, body: dict) -> dict:
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="PUT",
                                     headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"})  # fmt: skip
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def test_stack_serves_imports_an_inbox_upload_and_stops_on_ctrl_c(tmp_path):
    moto_port, api_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("SKILLHARBOR_")}
    env["SKILLHARBOR_ADMIN_KEY"] = "shk_admin_local-stack-test-0123456789"
    stack = subprocess.Popen(
        [sys.executable, "-m", "chalicelib.local.stack", "--no-runner", "--moto-port", str(moto_port), "--api-port", str(api_port)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    api = f"http://127.0.0.1:{api_port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                health = _get(f"{api}/api/health")
                break
            except OSError:
                assert stack.poll() is None, stack.stdout.read()
                assert time.monotonic() < deadline, "the stack did not come up in 60 s"
                time.sleep(0.3)
        assert health["status"] == "ok", health

        s3 = boto3.client("s3", endpoint_url=f"http://127.0.0.1:{moto_port}", region_name="us-east-1",
                          aws_access_key_id="local", aws_secret_access_key="local")  # fmt: skip
        hello = (ROOT / "examples" / "hello" / "SKILL.md").read_bytes()
        key = env["SKILLHARBOR_ADMIN_KEY"]
        _put(f"{api}/api/inbox/prefixes", key, {"prefix": "drop/", "owner": "team:drop"})
        s3.put_object(Bucket="skillharbor-inbox", Key="drop/hello/SKILL.md", Body=hello)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            skills = _get(f"{api}/api/skills", key)["skills"]
            if skills and skills[0]["status"] == "ready":
                break
            time.sleep(0.3)
        assert [(s["skill_id"], s["status"]) for s in skills] == [("hello", "ready")]
    finally:
        stack.send_signal(signal.SIGINT)
        try:
            code = stack.wait(timeout=30)
        except subprocess.TimeoutExpired:
            stack.kill()
            raise AssertionError("Ctrl-C did not stop the stack within 30 s")
    output = stack.stdout.read()
    assert code == 0, output
    assert "admin key     shk_admin_local-stack-test" in output and "stopping" in output


def test_the_runner_worker_it_starts_never_gets_the_admin_key(tmp_path):
    """Read from the child itself (/proc/<pid>/environ), found through the admin's health details."""
    moto_port, api_port, runner_port = free_port(), free_port(), free_port()
    admin_key = "shk_admin_child-env-test-" + "c" * 20
    env = {k: v for k, v in os.environ.items() if not k.startswith("SKILLHARBOR_")}
    # no engine: the worker starts, reports in and waits for one, which is all this test needs
    env.update(SKILLHARBOR_ADMIN_KEY=admin_key, DOCKER_HOST=f"unix://{tmp_path}/no-engine.sock")
    stack = subprocess.Popen(
        [sys.executable, "-m", "chalicelib.local.stack", "--moto-port", str(moto_port), "--api-port", str(api_port),
         "--runner-port", str(runner_port)],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    api = f"http://127.0.0.1:{api_port}"
    try:
        deadline, workers = time.monotonic() + 90, []
        while not workers:
            assert stack.poll() is None and time.monotonic() < deadline, "no runner worker reported in"
            try:
                workers = _get(f"{api}/api/health", admin_key)["runners"]["workers"]
            except OSError:
                pass  # not up yet, or 503 while the engine is missing
            time.sleep(0.3)
        pid = int(workers[0]["worker_id"].rsplit("-", 1)[1])
        environ = Path(f"/proc/{pid}/environ").read_bytes()
        names = {entry.split(b"=", 1)[0] for entry in environ.split(b"\0") if entry}
        assert b"SKILLHARBOR_ADMIN_KEY" not in names and admin_key.encode() not in environ
        assert {b"SKILLHARBOR_RUNNER_SECRET", b"AWS_ACCESS_KEY_ID", b"SKILLHARBOR_AWS_ENDPOINT_URL"} <= names  # what it needs
    finally:
        stack.send_signal(signal.SIGINT)
        try:
            stack.wait(timeout=40)
        except subprocess.TimeoutExpired:
            stack.kill()


def test_a_short_admin_key_stops_the_stack_with_a_clear_error():
    env = {k: v for k, v in os.environ.items() if not k.startswith("SKILLHARBOR_")}
    env["SKILLHARBOR_ADMIN_KEY"] = "admin123"
    done = subprocess.run([sys.executable, "-m", "chalicelib.local.stack", "--no-runner", "--moto-port", str(free_port()),
                           "--api-port", str(free_port())], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode == 2, done.stdout + done.stderr
    assert "SKILLHARBOR_ADMIN_KEY must be 32 characters or more (it has 8)" in done.stderr
    assert "admin123" not in done.stdout + done.stderr

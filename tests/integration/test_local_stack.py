"""`make run`'s stack as a user starts it: it serves, takes uploads, and Ctrl-C stops it cleanly."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import boto3

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


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
    moto_port, api_port = _free_port(), _free_port()
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

"""Child processes get no secrets (issue 11: the bootstrap admin key was copied into pip's and the runner's)."""

from __future__ import annotations

import json
import subprocess
import sys
from types import SimpleNamespace

from chalicelib.child_env import child_environment
from chalicelib.scanning.vulnerabilities import PipAuditService

ADMIN_KEY = "shk_admin_never-in-a-child-0123456789abcdef"


def test_secrets_are_dropped_and_what_a_child_needs_is_kept():
    parent = {"PATH": "/usr/bin", "HTTPS_PROXY": "http://proxy:3128", "SKILLHARBOR_ADMIN_KEY": ADMIN_KEY,
              "SKILLHARBOR_API_KEY": "shk_x", "SKILLHARBOR_RUNNER_SECRET": "s" * 32, "AWS_SECRET_ACCESS_KEY": "a",
              "AWS_SESSION_TOKEN": "t", "GITHUB_TOKEN": "g", "DB_PASSWORD": "p", "SKILLHARBOR_REGION": "eu-west-1"}  # fmt: skip
    assert child_environment(parent) == {"PATH": "/usr/bin", "HTTPS_PROXY": "http://proxy:3128", "SKILLHARBOR_REGION": "eu-west-1"}
    kept = child_environment(parent, keep=("SKILLHARBOR_RUNNER_SECRET", "AWS_SECRET_ACCESS_KEY", "SKILLHARBOR_ADMIN_KEY"))
    assert {"SKILLHARBOR_RUNNER_SECRET", "AWS_SECRET_ACCESS_KEY"} <= set(kept)
    assert "SKILLHARBOR_ADMIN_KEY" not in kept  # never, even when asked for


def test_pip_audit_runs_without_the_admin_key(monkeypatch, tmp_path):
    """The environment as the spawned process itself sees it."""
    monkeypatch.setenv("SKILLHARBOR_ADMIN_KEY", ADMIN_KEY)
    monkeypatch.setenv("SKILLHARBOR_RUNNER_SECRET", "r" * 32)
    seen: dict[str, str] = {}

    def spawn(cmd, **kwargs):
        shown = subprocess.run([sys.executable, "-c", "import json, os; print(json.dumps(dict(os.environ)))"],
                               env=kwargs["env"], capture_output=True, text=True, check=True)  # fmt: skip
        seen.update(json.loads(shown.stdout))
        return subprocess.CompletedProcess(cmd, 2, "", "no report")

    PipAuditService(env={"HTTPS_PROXY": "http://proxy:3128"}, runner=spawn, cache_dir=tmp_path).audit(
        [SimpleNamespace(name="six", version="1.16.0")]
    )
    assert seen["HTTPS_PROXY"] == "http://proxy:3128"
    assert "SKILLHARBOR_ADMIN_KEY" not in seen and ADMIN_KEY not in json.dumps(seen)
    assert "SKILLHARBOR_RUNNER_SECRET" not in seen

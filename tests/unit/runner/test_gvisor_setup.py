"""make gvisor's daemon.json merge: keeps every other key, changes nothing the second time, refuses a broken file."""

from __future__ import annotations

import json

import pytest

from infra import gvisor_setup

EXISTING = {"data-root": "/var/lib/docker", "storage-driver": "fuse-overlayfs", "mtu": 1400, "log-driver": "json-file",
            "log-opts": {"max-size": "10m", "max-file": "3"}, "runtimes": {"kata": {"path": "/usr/bin/kata-runtime"}}}  # fmt: skip


def test_the_runtime_is_merged_in_once_and_every_other_key_is_kept(tmp_path, capsys):
    path = tmp_path / "daemon.json"
    path.write_text(json.dumps(EXISTING))
    assert gvisor_setup.register(path) is True
    merged = json.loads(path.read_text())
    assert merged["runtimes"]["runsc"] == {"path": "/usr/bin/runsc", "runtimeArgs": ["--platform=ptrace", "--network=none", "--host-uds=open"]}
    assert {k: v for k, v in merged.items() if k != "runtimes"} == {k: v for k, v in EXISTING.items() if k != "runtimes"}
    assert merged["runtimes"]["kata"] == EXISTING["runtimes"]["kata"]
    assert json.loads((tmp_path / "daemon.json.before-gvisor").read_text()) == EXISTING
    assert "registered runtime runsc" in capsys.readouterr().out
    assert gvisor_setup.register(path) is False  # idempotent: nothing to change, nothing written
    assert json.loads(path.read_text()) == merged


def test_a_missing_file_is_created_and_the_platform_can_be_chosen(tmp_path, monkeypatch):
    monkeypatch.setenv("SKILLHARBOR_RUNSC_PLATFORM", "systrap")
    path = tmp_path / "docker" / "daemon.json"
    assert gvisor_setup.register(path) is True
    assert json.loads(path.read_text())["runtimes"]["runsc"]["runtimeArgs"] == ["--platform=systrap", "--network=none", "--host-uds=open"]


@pytest.mark.parametrize("text", ["{not json", "[1, 2]", '{"runtimes": "runc"}'])
def test_a_file_it_cannot_merge_into_is_left_alone_with_the_reason(tmp_path, text):
    path = tmp_path / "daemon.json"
    path.write_text(text)
    with pytest.raises(SystemExit, match="fix it by hand"):
        gvisor_setup.register(path)
    assert path.read_text() == text

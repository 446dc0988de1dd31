"""The seccomp profile: Docker's default, unmodified, plus skillharbor's denials (no engine needed;
the denials are verified from inside containers in tests/docker/test_sandbox_hardening.py)."""

from __future__ import annotations

import json

from chalicelib.runner import doctor, sandbox, seccomp


def _allowed_unconditionally(profile: dict) -> set[str]:
    return {name for rule in profile["syscalls"] if rule["action"] == "SCMP_ACT_ALLOW" and not rule.get("args")
            and not rule.get("includes") and not rule.get("excludes") for name in rule["names"]}  # fmt: skip


def test_the_base_is_dockers_20_10_24_default_byte_for_byte() -> None:
    assert seccomp.base_is_unmodified()
    base = seccomp.base_profile()
    assert base["defaultAction"] == "SCMP_ACT_ERRNO"
    assert {"socket", "io_uring_setup", "mq_open"} <= _allowed_unconditionally(base)  # what 20.10 allowed


def test_the_denials_are_added_and_nothing_else_changes() -> None:
    base, profile = seccomp.base_profile(), json.loads(seccomp.profile_json())
    removed = set(seccomp.REFUSED_SYSCALLS) | set(seccomp.FILTERED_SYSCALLS)
    assert _allowed_unconditionally(profile) == _allowed_unconditionally(base) - removed
    assert profile["defaultAction"] == base["defaultAction"] and profile["archMap"] == base["archMap"]
    conditional = [r for r in base["syscalls"] if r.get("args") or r.get("includes") or r.get("excludes")]
    assert all(rule in profile["syscalls"] for rule in conditional)  # capability- and arch-dependent rules kept


def test_socket_is_allowed_only_for_unix_inet_and_inet6() -> None:
    profile = json.loads(seccomp.profile_json())
    for name, families in (("socket", {1, 2, 10}), ("socketpair", {1})):
        rules = [r for r in profile["syscalls"] if name in r["names"]]
        assert all(r["action"] == "SCMP_ACT_ALLOW" and r["names"] == [name] for r in rules)
        assert all([a["index"] for a in r["args"]] == [0] and r["args"][0]["op"] == "SCMP_CMP_EQ" for r in rules)
        assert {r["args"][0]["value"] for r in rules} == families
    refused = {name for rule in profile["syscalls"] if rule["action"] == "SCMP_ACT_ERRNO" for name in rule["names"]}
    assert set(seccomp.REFUSED_SYSCALLS) <= refused
    assert not set(seccomp.REFUSED_SYSCALLS) & {n for r in profile["syscalls"] if r["action"] == "SCMP_ACT_ALLOW" for n in r["names"]}


def test_every_sandbox_container_gets_the_profile() -> None:
    class FakeApi:
        def create_host_config(self, **options):
            return options

    from chalicelib.runner.spec import RunRequest

    options = sandbox.host_config(FakeApi(), RunRequest(image="x", code=""))
    assert options["security_opt"] == ["no-new-privileges", seccomp.security_option()]
    assert "init" not in options and options["cap_drop"] == ["ALL"]


def _hardening_facts(**changes) -> dict:
    facts = {
        "families": {name: "EPERM" for name in seccomp.REFUSED_SOCKET_FAMILIES},
        "vsock_host": "EPERM", "loopback": True, "io_uring": ["EPERM"] * 3, "mq_open": "EPERM",
        "mqueue_fs": ["tmpfs"], "mqueue_create": "EROFS", "msgqueue_limit": [0, 0],
        "mounts": [["/", "/", "ro", "overlay", "overlay"], ["/etc/hosts", "/x/hosts", "ro", "ext4", "/dev/vda"]],
        "pid1": sandbox.HARNESS_COMMAND, "init_uids": ["10001", "10000", "10000", "10000"], "uids": [10001] * 3,
        "caps": {"CapInh": 0, "CapPrm": 0, "CapEff": 0, "CapBnd": 0, "CapAmb": 0},
        "own_code_write": "EACCES", "own_file_chmod": "EPERM", "own_file_unlink": "EACCES",
    }  # fmt: skip
    return {**facts, **changes}


def test_the_doctor_reports_what_the_engine_let_through() -> None:
    def failing(facts: dict) -> set[str]:
        return {c.name for c in doctor._hardening_checks(facts) if not c.enforced}

    assert failing(_hardening_facts()) == set()
    vsock = _hardening_facts(families={**_hardening_facts()["families"], "AF_VSOCK": None}, vsock_host="ECONNRESET")
    assert failing(vsock) == {"seccomp: socket families"}
    assert failing(_hardening_facts(io_uring=[None, "EPERM", "EPERM"])) == {"seccomp: io_uring refused"}
    init_mount = _hardening_facts(mounts=[["/usr/sbin/docker-init", "/usr/bin/docker-init", "ro", "ext4", "/dev/vda"]])
    assert failing(init_mount) == {"init in the image"}
    assert failing(_hardening_facts(own_code_write=None, uids=[10001] * 3, init_uids=["10001"] * 4)) == {"skill files read-only"}
    assert failing(_hardening_facts(mqueue_fs=["mqueue"], mqueue_create=None)) == {"no message queues"}
    assert failing(_hardening_facts(caps={"CapInh": 0, "CapPrm": 0, "CapEff": 0, "CapBnd": 0xC0, "CapAmb": 0})) == {"no capabilities"}

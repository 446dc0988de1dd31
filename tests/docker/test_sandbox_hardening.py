"""Issue 11's sandbox items, each attack run as skill code through the runner
(``sandbox.run``, what the worker calls) and through a warm pool container,
and once end to end through the HTTP API.

* socket families other than unix/inet/inet6, io_uring and message queues
  are refused by the seccomp profile (AF_VSOCK reached the VM host before);
* nothing of the host is mounted (no docker-init: the harness is PID 1);
* the skill's code and files, and the harness, are read-only to the skill;
* a finished run whose leftovers keep running still ends with its result.
"""

from __future__ import annotations

import json
import textwrap
import threading
import time
from typing import Any, Callable

import pytest
from chalice.test import Client

from chalicelib.runner import engine, sandbox, seccomp
from chalicelib.runner.pool import WarmPool
from chalicelib.runner.spec import RunLimits, RunRequest, RunResult, RunStatus, Runtime
from stack_support import ADMIN_HEADERS

pytestmark = pytest.mark.docker


@pytest.fixture(scope="module")
def warm_pool(docker_client, base_image) -> Any:
    pool = WarmPool(docker_client, size_per_image=1, max_total=2)
    yield pool
    pool.close()


@pytest.fixture(params=["cold", "pooled"])
def run_skill(request: pytest.FixtureRequest, docker_client, base_image, warm_pool, runtime) -> Callable[..., RunResult]:
    """run_skill(code, files=None, **limits): through sandbox.run, or a warm container, under each runtime."""

    def _run(code: str, files: dict[str, str] | None = None, **limits: Any) -> RunResult:
        run_request = RunRequest(image=base_image.tag, code=textwrap.dedent(code), files=files or {},
                                 limits=RunLimits(**{"timeout_seconds": 10, **limits}), runtime=runtime)  # fmt: skip
        if request.param == "cold":
            return sandbox.run(docker_client, run_request)
        assert warm_pool.wait_ready(run_request, count=1, timeout=120), warm_pool.stats()
        hits = warm_pool.hits
        result = warm_pool.run(run_request)
        assert result is not None and warm_pool.hits == hits + 1, "the run did not use a warm container"
        warm_pool.forget(lambda image: True)
        assert warm_pool.wait_removed()
        return result

    return _run


#: under runsc the skill's sockets are gVisor's: families it lacks are EAFNOSUPPORT, AF_PACKET needs a
#: capability (EPERM), and AF_NETLINK is its own route socket, which sees only lo (runtimes.py)
GVISOR_REFUSALS = {"EAFNOSUPPORT", "EPERM"}
GVISOR_SERVED = {"AF_NETLINK"}


def _ok(result: RunResult) -> Any:
    assert result.status == RunStatus.OK, f"the attack code itself failed: {result}"
    return result.output


ATTEMPT = '''
import errno
def attempt(action):
    try:
        action()
        return "succeeded"
    except OSError as exc:
        return errno.errorcode.get(exc.errno, str(exc.errno))
'''

# --- item 9: socket families, io_uring (seccomp) -----------------------------------------


def test_socket_families_beyond_unix_and_inet_are_refused(run_skill, runtime):
    code = ATTEMPT + f'''
import socket
FAMILIES = {seccomp.REFUSED_SOCKET_FAMILIES!r}
def main():
    refused = {{}}
    for name, number in FAMILIES.items():
        for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM, socket.SOCK_RAW, socket.SOCK_SEQPACKET):
            refused.setdefault(name, set()).add(attempt(lambda: socket.socket(number, kind).close()))
    return {{name: sorted(outcomes) for name, outcomes in refused.items()}}
'''
    outcomes = _ok(run_skill(code))
    assert set(outcomes) == set(seccomp.REFUSED_SOCKET_FAMILIES)
    if runtime == Runtime.RUNSC:
        assert {n: o for n, o in outcomes.items() if not set(o) <= GVISOR_REFUSALS and n not in GVISOR_SERVED} == {}
        return
    assert {name: o for name, o in outcomes.items() if o != ["EPERM"]} == {}


def test_vsock_cannot_reach_the_host(run_skill, runtime):
    # before the profile: ECONNRESET from the VM host's vsock (CID 2), i.e. something answered
    code = ATTEMPT + '''
import socket
def main():
    def connect(cid):
        s = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
        s.settimeout(3)
        s.connect((cid, 1024))
    return [attempt(lambda: connect(2)), attempt(lambda: connect(1)), attempt(lambda: socket.socket(40, socket.SOCK_DGRAM))]
'''
    refusal = "EAFNOSUPPORT" if runtime == Runtime.RUNSC else "EPERM"  # gVisor has no vsock at all
    assert _ok(run_skill(code)) == [refusal] * 3


def test_family_in_the_upper_register_bits_is_refused(run_skill, runtime):
    # the kernel reads the family as a 32-bit int: 2**32 + 40 would be AF_VSOCK to it
    code = '''
import ctypes, errno, platform
SOCKET = {"x86_64": 41, "aarch64": 198}
def main():
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    number = SOCKET.get(platform.machine())
    if number is None:
        return "EPERM"
    fd = libc.syscall(ctypes.c_long(number), ctypes.c_long((1 << 32) + 40), ctypes.c_long(1), ctypes.c_long(0))
    return "created" if fd >= 0 else errno.errorcode[ctypes.get_errno()]
'''
    assert _ok(run_skill(code)) == ("EAFNOSUPPORT" if runtime == Runtime.RUNSC else "EPERM")


def test_loopback_and_unix_sockets_still_work(run_skill):
    code = '''
import socket, threading
def main():
    server = socket.create_server(("127.0.0.1", 0))
    def echo():
        conn, _ = server.accept()
        conn.sendall(conn.recv(16).upper())
        conn.close()
    threading.Thread(target=echo, daemon=True).start()
    client = socket.create_connection(server.getsockname(), timeout=5)
    client.sendall(b"ping")
    reply = client.recv(16)
    left, right = socket.socketpair()
    left.sendall(b"unix")
    socket.socket(socket.AF_INET6, socket.SOCK_STREAM).close()
    names = {info[4][0] for info in socket.getaddrinfo("localhost", 80, flags=socket.AI_ADDRCONFIG)}
    return [reply.decode(), right.recv(4).decode(), "127.0.0.1" in names]
'''
    assert _ok(run_skill(code)) == ["PING", "unix", True]


def test_io_uring_and_message_queues_are_refused(run_skill, runtime):
    code = '''
import ctypes, errno, os, platform
# io_uring_setup/enter/register share numbers on every architecture; mq_open is per architecture
MQ_OPEN = {"x86_64": 240, "aarch64": 180}
def main():
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    params = ctypes.create_string_buffer(120)
    def call(number, *args):
        rc = libc.syscall(ctypes.c_long(number), *args)
        return "allowed" if rc >= 0 else errno.errorcode[ctypes.get_errno()]
    outcomes = [call(425, ctypes.c_long(8), params), call(426, ctypes.c_long(0), ctypes.c_long(0), ctypes.c_long(0),
                ctypes.c_long(0), None), call(427, ctypes.c_long(0), ctypes.c_long(0), None, ctypes.c_long(0))]
    number = MQ_OPEN.get(platform.machine())
    if number is not None:
        outcomes.append(call(number, b"probe", ctypes.c_long(os.O_CREAT | os.O_RDWR), ctypes.c_long(0o600), None))
    return outcomes
'''
    outcomes = _ok(run_skill(code))
    if runtime == Runtime.RUNSC:
        # gVisor implements io_uring_setup and message queues in its own kernel (the host's io_uring and its
        # per-uid queue quota are out of reach): it is no refusal, and it is asserted as what it is
        assert outcomes[1:3] == ["EPERM", "ENOSYS"] and outcomes[0] in ("allowed", "EFAULT", "ENOSYS"), outcomes
        return
    assert set(outcomes) == {"EPERM"}, outcomes


# --- low item: /dev/mqueue -----------------------------------------------------------------


def test_dev_mqueue_is_an_empty_read_only_mount(run_skill, runtime):
    code = ATTEMPT + '''
import os, resource
def main():
    fstype = [line.split(" - ")[1].split()[0] for line in open("/proc/self/mountinfo") if line.split()[4] == "/dev/mqueue"]
    try:
        resource.setrlimit(resource.RLIMIT_MSGQUEUE, (1 << 20, 1 << 20))
        raised = "raised"
    except ValueError as exc:  # the kernel's EPERM, as Python reports it
        raised = str(exc)
    return [fstype, os.listdir("/dev/mqueue"), attempt(lambda: open("/dev/mqueue/q", "w")),
            list(resource.getrlimit(resource.RLIMIT_MSGQUEUE)), raised]
'''
    fstype, entries, create, limit, raised = _ok(run_skill(code))
    assert fstype == ["tmpfs"] and entries == []  # not the message-queue file system any more
    assert create == ("EACCES" if runtime == Runtime.RUNSC else "EROFS")  # gVisor checks the mode (0555) first
    assert limit == [0, 0] and raised == "not allowed to raise maximum limit"  # no quota to take from other sandboxes


# --- item 10: nothing of the host mounted, the harness is PID 1 -----------------------------


NETWORK_FILES = {"/etc/resolv.conf", "/etc/hostname", "/etc/hosts"}


def test_no_host_binary_or_disk_is_mounted_and_the_harness_is_pid_1(run_skill):
    code = '''
import os
def main():
    mounts = []
    for line in open("/proc/self/mountinfo"):
        fields = line.split()
        sep = fields.index("-")
        mounts.append({"target": fields[4], "root": fields[3], "options": fields[5], "fstype": fields[sep + 1], "source": fields[sep + 2]})
    return {"mounts": mounts, "pid1": open("/proc/1/cmdline").read().split("\\0"),
            "resolv": open("/etc/resolv.conf").read(), "hosts": open("/etc/hosts").read()}
'''
    facts = _ok(run_skill(code))
    mounts = facts["mounts"]
    assert not [m for m in mounts if "docker-init" in m["target"] + m["root"] or "init" == m["target"].rsplit("/", 1)[-1]]
    from_disk = [m for m in mounts if m["source"].startswith("/dev/") or m["fstype"] in ("ext4", "xfs", "btrfs", "ext3", "vfat")]
    # the engine's own per-container files are the only ones from a disk; read-only
    assert {m["target"] for m in from_disk} <= NETWORK_FILES, from_disk
    assert all(m["options"].split(",")[0] == "ro" for m in from_disk), from_disk
    assert [m for m in mounts if m["target"] == "/"][0]["options"].startswith("ro")
    assert facts["pid1"][:5] == sandbox.HARNESS_COMMAND
    # nothing of the host's resolver configuration (servers, search domains) is copied in
    assert facts["resolv"].split() == ["nameserver", sandbox.SANDBOX_RESOLVER]
    assert all(line.split()[0] in ("127.0.0.1", "::1", "fe00::0", "ff00::0", "ff02::1", "ff02::2")
               for line in facts["hosts"].splitlines() if line.strip())  # fmt: skip


def test_pid_1_reaps_orphans(run_skill):
    code = '''
import os, time
def main():
    for _ in range(5):
        if os.fork() == 0:          # the child forks a grandchild that exits at once, then exits:
            if os.fork() == 0:      # the grandchild is re-parented to PID 1 and must be reaped there
                time.sleep(0.2)
                os._exit(0)
            os._exit(0)
        os.wait()
    time.sleep(1.5)
    zombies = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if stat[0] == "Z":
            zombies.append(pid)
    return zombies
'''
    assert _ok(run_skill(code)) == []


def test_termination_signals_reach_the_skill(docker_client, base_image):
    # `docker stop` signals PID 1 (the harness), which forwards SIGTERM to the skill
    code = textwrap.dedent('''
        import signal, time
        def main():
            def stop(signum, frame):
                raise RuntimeError(f"stopped by signal {signum}")
            signal.signal(signal.SIGTERM, stop)
            while True:
                time.sleep(0.05)
    ''')
    request = RunRequest(image=base_image.tag, code=code, limits=RunLimits(timeout_seconds=20))
    results: list[RunResult] = []
    worker = threading.Thread(target=lambda: results.append(sandbox.run(docker_client, request)))
    worker.start()
    mine = [f"{engine.ROLE_LABEL}=run", f"{engine.CREATOR_LABEL}={engine.creator()}"]
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and not (found := docker_client.api.containers(filters={"label": mine})):
        time.sleep(0.05)
    assert found, "the run's container did not appear"
    time.sleep(1.5)  # let the skill install its handler
    docker_client.api.stop(found[0]["Id"], timeout=10)
    worker.join(30)
    [result] = results
    assert result.status == RunStatus.EXCEPTION and "stopped by signal 15" in result.error, result


# --- item 11: the skill's code and files are read-only to it --------------------------------


MODIFY_OWN_FILES = ATTEMPT + '''
import os, shutil
PATHS = ["skill_main.py", "helpers/util.py", "data/words.txt", "/opt/skillharbor/harness.py", "/opt/skillharbor/skill_child.py"]
def main():
    before = {p: open(p, "rb").read() for p in PATHS}
    outcomes = {}
    for path in PATHS:
        outcomes[path] = {
            "append": attempt(lambda: open(path, "a").write("# pwned")),
            "truncate": attempt(lambda: open(path, "w").close()),
            "unlink": attempt(lambda: os.unlink(path)),
            "rename": attempt(lambda: os.rename(path, "/tmp/moved")),
            "chmod": attempt(lambda: os.chmod(path, 0o777)),
            "chown": attempt(lambda: os.chown(path, os.getuid(), os.getgid())),
            "utime": attempt(lambda: os.utime(path, (0, 0))),
            "replace": attempt(lambda: (open("/tmp/evil.py", "w").write("x = 1"), os.replace("/tmp/evil.py", path))),
            "symlink": attempt(lambda: os.symlink("/tmp/evil.py", path + ".link")),
        }
    for directory in (".", "helpers", "data"):
        outcomes[directory] = {
            "create": attempt(lambda: open(os.path.join(directory, "new.py"), "w").close()),
            "mkdir": attempt(lambda: os.mkdir(os.path.join(directory, "sub"))),
            "chmod": attempt(lambda: os.chmod(directory, 0o777)),
            "rmtree": attempt(lambda: shutil.rmtree(directory)),
        }
    outcomes["setuid to the supervisor"] = {"setresuid": attempt(lambda: os.setresuid(10000, 10000, 10000))}
    outcomes["unchanged"] = {"contents": "succeeded" if before == {p: open(p, "rb").read() for p in PATHS} else "changed"}
    return outcomes
'''


def test_the_skill_cannot_modify_its_code_files_or_the_harness(run_skill):
    files = {"helpers/__init__.py": "", "helpers/util.py": "VALUE = 1\n", "data/words.txt": "harbor\n"}
    outcomes = _ok(run_skill(MODIFY_OWN_FILES, files=files))
    unchanged = outcomes.pop("unchanged")
    succeeded = {(target, how) for target, tried in outcomes.items() for how, outcome in tried.items() if outcome == "succeeded"}
    assert succeeded == set(), succeeded
    assert unchanged == {"contents": "succeeded"}


def test_the_skill_can_still_read_its_files_and_write_to_tmp(run_skill):
    code = '''
import os
from helpers.util import VALUE
def main():
    open("/tmp/scratch.txt", "w").write("ok")
    return [VALUE, open("data/words.txt").read().strip(), open("/tmp/scratch.txt").read(), os.getcwd()]
'''
    files = {"helpers/__init__.py": "", "helpers/util.py": "VALUE = 1\n", "data/words.txt": "harbor\n"}
    assert _ok(run_skill(code, files=files)) == [1, "harbor", "ok", "/tmp/skill"]


# --- item 12: leftovers after the result ---------------------------------------------------------


def test_a_lingering_thread_does_not_turn_the_result_into_a_timeout(run_skill):
    code = '''
import atexit, sys, threading, time
atexit.register(lambda: print("atexit ran", file=sys.stderr))
def main():
    threading.Thread(target=time.sleep, args=(600,), name="forgotten-worker").start()
    return "finished"
'''
    result = run_skill(code, timeout_seconds=5)
    assert result.status == RunStatus.OK and result.output == "finished", result
    assert "atexit ran" in result.stderr
    assert any("forgotten-worker" in note and "thread" in note for note in result.notes), result.notes


def test_processes_left_behind_are_killed_and_the_result_stands(run_skill):
    code = '''
import multiprocessing, os, time
def main():
    if os.fork() == 0:                # a plain child holding the output pipes
        time.sleep(600)
        os._exit(0)
    if os.fork() == 0:                # a daemon in a session of its own
        os.setsid()
        time.sleep(600)
        os._exit(0)
    multiprocessing.Process(target=time.sleep, args=(600,)).start()  # joined by multiprocessing's atexit
    return "finished"
'''
    result = run_skill(code, timeout_seconds=5)
    assert result.status == RunStatus.OK and result.output == "finished", result
    assert result.notes and any("killed" in note for note in result.notes), result.notes


def test_a_run_without_leftovers_has_no_notes(run_skill):
    code = '''
import threading, time
def main():
    threading.Thread(target=time.sleep, args=(0.2,)).start()
    return "clean"
'''
    result = run_skill(code)
    assert result.status == RunStatus.OK and result.output == "clean" and result.notes == []


# --- the same attacks through the HTTP API ------------------------------------------------------


API_SKILL = """---
name: sandbox probe
description: Tries the sandbox attacks of issue 11 and reports what happened.
---
```python
import errno, os, socket, threading, time

def attempt(action):
    try:
        action()
        return "succeeded"
    except OSError as exc:
        return errno.errorcode.get(exc.errno, str(exc.errno))

def execute():
    threading.Thread(target=time.sleep, args=(600,), name="left-running").start()
    return {
        "vsock": attempt(lambda: socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)),
        "netlink": attempt(lambda: socket.socket(socket.AF_NETLINK, socket.SOCK_RAW)),
        "own code": attempt(lambda: open("skill_main.py", "a")),
        "mqueue": attempt(lambda: open("/dev/mqueue/q", "w")),
        "docker-init": any("docker-init" in line for line in open("/proc/self/mountinfo")),
    }
```
"""


def test_the_attacks_fail_through_the_api(docker_stack) -> None:
    def post(client: Client, path: str, body: dict, headers: dict) -> tuple[int, dict]:
        response = client.http.post(path, body=json.dumps(body), headers={**headers, "Content-Type": "application/json"})
        return response.status_code, json.loads(response.body)

    with Client(docker_stack.app) as client:
        status, agent = post(client, "/api/agents", {"agent_id": "prober", "maturity": "STUDENT"}, ADMIN_HEADERS)
        assert status == 201
        response = client.http.post("/api/skills", body=API_SKILL.encode(), headers={**ADMIN_HEADERS, "Content-Type": "text/markdown"})
        assert response.status_code == 202, response.body
        accepted = json.loads(response.body)
        record = docker_stack.wait_for_import(accepted["import_id"], timeout=300)
        assert record["status"] == "SUCCEEDED", record
        status, result = post(client, f"/api/skills/{accepted['skill_id']}/execute", {"timeout_seconds": 10},
                              {"Authorization": f"Bearer {agent['api_key']}"})  # fmt: skip
    assert status == 200 and result["status"] == "ok", result
    assert result["output"] == {"vsock": "EPERM", "netlink": "EPERM", "own code": "EACCES", "mqueue": "EROFS", "docker-init": False}
    assert any("left-running" in note for note in result["notes"]), result

"""``python -m chalicelib.runner.doctor [--json]``: does this engine really
enforce the sandbox? Every property is checked by trying it inside a
container started exactly as skills are started (``sandbox.run``).

Exit code 0 when every property is enforced, 1 otherwise, 2 when the engine
or the base image is unavailable.
"""

from __future__ import annotations

import json
import sys
from typing import Any, Callable

import docker

from chalicelib.errors import BuildFailed, RunnerUnavailable
from chalicelib.runner import engine, runtimes, sandbox, seccomp
from chalicelib.runner.spec import RunLimits, RunRequest, RunResult, RunStatus, Runtime

# One container answers every property it can observe about itself.
PROBE_CODE = r'''
import ctypes, errno, os, platform, resource, socket

def _try(action):
    try:
        action()
        return None
    except OSError as exc:
        return errno.errorcode.get(exc.errno, str(exc.errno))

def _status(field):
    for line in open("/proc/self/status"):
        if line.startswith(field + ":"):
            return line.split(":", 1)[1].strip()
    return ""

def _root_mount_options():
    for line in open("/proc/self/mounts"):
        parts = line.split()
        if parts[1] == "/":
            return parts[3]
    return ""

def _cgroup(*paths):
    for path in paths:
        try:
            return open(path).read().strip()
        except OSError:
            continue
    return ""

def _fill_tmp():
    with open("/tmp/fill", "wb") as fh:
        for _ in range(1024):
            fh.write(b"\0" * (1024 * 1024))
            fh.flush()

def main(host_canary=None):
    def connect():
        socket.create_connection(("1.1.1.1", 80), timeout=2).close()
    def write_root():
        open("/opt/skillharbor/doctor-probe", "w").close()
    dns = "resolved"
    try:
        socket.getaddrinfo("example.com", 80)
    except OSError:
        dns = "failed"
    fill = _try(_fill_tmp)
    try:
        os.unlink("/tmp/fill")
    except OSError:
        pass
    return {
        "connect_error": _try(connect),
        "dns": dns,
        "interfaces": sorted(os.listdir("/sys/class/net")),
        "root_write_error": _try(write_root),
        "root_mount_options": _root_mount_options(),
        "tmp_fill_error": fill,
        "uid": os.getuid(),
        "seccomp": _status("Seccomp"),
        "no_new_privs": _status("NoNewPrivs"),
        "no_new_privs_prctl": ctypes.CDLL(None).prctl(39, 0, 0, 0, 0),  # PR_GET_NO_NEW_PRIVS
        "dev_shm": os.path.exists("/dev/shm"),
        "dev_shm_write": _try(lambda: open("/dev/shm/probe", "w").close()) if os.path.exists("/dev/shm") else "absent",
        "kernel": platform.release(),
        "nproc_limit": list(resource.getrlimit(resource.RLIMIT_NPROC)),
        "docker_sock": any(os.path.exists(p) for p in ("/var/run/docker.sock", "/run/docker.sock")),
        "memory_limit": _cgroup("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory.max"),
        "memsw_limit": _cgroup("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes", "/sys/fs/cgroup/memory.swap.max"),
        "pids_limit": _cgroup("/sys/fs/cgroup/pids/pids.max", "/sys/fs/cgroup/pids.max"),
        "env_keys": sorted(os.environ),
    }
'''

# A second container: the seccomp denials, the init, the skill's read-only files.
HARDENING_PROBE = r'''
import ctypes, errno, os, platform, resource, socket, threading

FAMILIES = %(families)r
MQ_OPEN = {"x86_64": 240, "aarch64": 180}

def _error(action):
    try:
        action()
        return None
    except OSError as exc:
        return errno.errorcode.get(exc.errno, str(exc.errno))

def _syscall(number, *args):
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    rc = libc.syscall(ctypes.c_long(number), *[ctypes.c_long(a) for a in args])
    return None if rc >= 0 else errno.errorcode.get(ctypes.get_errno(), "?")

def _loopback():
    server = socket.create_server(("127.0.0.1", 0))
    def echo():
        conn, _ = server.accept()
        conn.sendall(conn.recv(4))
        conn.close()
    threading.Thread(target=echo, daemon=True).start()
    client = socket.create_connection(server.getsockname(), timeout=5)
    client.sendall(b"ping")
    left, right = socket.socketpair()
    left.sendall(b"unix")
    return client.recv(4) == b"ping" and right.recv(4) == b"unix"

def _mounts():
    found = []
    for line in open("/proc/self/mountinfo"):
        fields = line.split()
        sep = fields.index("-")
        found.append([fields[4], fields[3], fields[5].split(",")[0], fields[sep + 1], fields[sep + 2]])
    return found

def main():
    def vsock_to_host():
        s = socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)
        s.settimeout(3)
        s.connect((2, 1024))
    status = dict(line.split(":", 1) for line in open("/proc/self/status"))
    init_status = dict(line.split(":", 1) for line in open("/proc/1/status"))
    mqueue_fs = [m[3] for m in _mounts() if m[0] == "/dev/mqueue"]
    return {
        "families": {name: _error(lambda: socket.socket(number, socket.SOCK_DGRAM).close()) for name, number in FAMILIES.items()},
        "vsock_host": _error(vsock_to_host),
        "loopback": _loopback(),
        "io_uring": [_syscall(425, 8, 0), _syscall(426, 0, 0, 0, 0, 0), _syscall(427, 0, 0, 0, 0)],
        "mq_open": _syscall(MQ_OPEN[platform.machine()], 0, os.O_CREAT | os.O_RDWR, 0o600, 0) if platform.machine() in MQ_OPEN else "EPERM",
        "mqueue_fs": mqueue_fs,
        "mqueue_create": _error(lambda: open("/dev/mqueue/probe", "w").close()),
        "msgqueue_limit": list(resource.getrlimit(resource.RLIMIT_MSGQUEUE)),
        "mounts": _mounts(),
        "pid1": open("/proc/1/cmdline").read().split("\0")[:5],
        "init_uids": init_status.get("Uid", "").split(),
        "uids": list(os.getresuid()),
        "caps": {name: int(status[name], 16) for name in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb") if name in status},
        "own_code_write": _error(lambda: open("skill_main.py", "a").close()),
        "own_file_chmod": _error(lambda: os.chmod("bundled.txt", 0o666)),
        "own_file_unlink": _error(lambda: os.unlink("bundled.txt")),
    }
''' % {"families": seccomp.REFUSED_SOCKET_FAMILIES}

NETWORK_FILES = {"/etc/resolv.conf", "/etc/hostname", "/etc/hosts"}

MEMORY_BOMB = "def main():\n    hog = []\n    while True:\n        hog.append(b'x' * (8 * 1024 * 1024))\n"

PIDS_PROBE = r'''
import os, time
def main(count):
    children = []
    try:
        for _ in range(count):
            pid = os.fork()
            if pid == 0:
                time.sleep(30)
                os._exit(0)
            children.append(pid)
        return {"spawned": len(children), "blocked": False}
    except OSError as exc:
        return {"spawned": len(children), "blocked": True, "error": str(exc)}
'''

PROBE_LIMITS = RunLimits(memory_mb=128, cpus=0.5, pids=32, timeout_seconds=20, tmpfs_mb=8)
#: the fork probe needs more memory under gVisor (about 4 MiB per forked interpreter) to reach the pids limit
PIDS_PROBE_LIMITS = PROBE_LIMITS.model_copy(update={"memory_mb": 256})
#: gVisor's kernel reports this release (``uname``) whatever the host runs
GVISOR_RELEASE = "4.4.0"


class Check:
    def __init__(self, name: str, enforced: bool, detail: str, required: bool = True):
        self.name, self.enforced, self.detail, self.required = name, enforced, detail, required

    def to_dict(self) -> dict[str, Any]:
        return {"property": self.name, "enforced": self.enforced, "detail": self.detail, "required": self.required}


def _probe_checks(facts: dict[str, Any], limits: RunLimits, runtime: Runtime = Runtime.RUNC) -> list[Check]:
    mount_options = str(facts["root_mount_options"]).split(",")
    nnp = facts.get("no_new_privs_prctl")
    return [
        Check("network none", facts["connect_error"] is not None and facts["dns"] == "failed"
              and facts["interfaces"] == ["lo"],
              f"connect: {facts['connect_error']}, dns: {facts['dns']}, interfaces: {facts['interfaces']}"),
        Check("read-only root", "ro" in mount_options and facts["root_write_error"] is not None,
              f"root mount: {facts['root_mount_options']}, write: {facts['root_write_error']}"),
        Check("tmpfs size limit", facts["tmp_fill_error"] == "ENOSPC",
              f"filling /tmp ({limits.tmpfs_mb} MiB): {facts['tmp_fill_error'] or 'no error'}"),
        *_limit_checks(facts, limits, runtime),
        Check("non-root", facts["uid"] != 0, f"uid {facts['uid']}"),
        _kernel_check(facts, runtime),
        Check("no-new-privileges", facts["no_new_privs"] == "1" or nnp == 1,
              f"NoNewPrivs {facts['no_new_privs'] or 'not shown'}, PR_GET_NO_NEW_PRIVS {nnp}"),
        _dev_shm_check(facts, runtime),
        Check("no docker socket", not facts["docker_sock"], f"socket visible: {facts['docker_sock']}"),
        Check("no host environment", set(facts["env_keys"]) <= set(sandbox.SAFE_ENVIRONMENT) | {"PYTHONIOENCODING"},
              f"variables: {', '.join(facts['env_keys'])}"),
    ]


def _limit_checks(facts: dict[str, Any], limits: RunLimits, runtime: Runtime) -> list[Check]:
    if runtime == Runtime.RUNSC:
        # gVisor shows no cgroup files: memory is the sandbox's host cgroup (checked by the bomb below),
        # the skill's process count is gVisor's RLIMIT_NPROC (see runtimes.py)
        return [Check("pids limit", facts["nproc_limit"] == [limits.pids, limits.pids],
                      f"RLIMIT_NPROC in gVisor's kernel: {facts['nproc_limit']}")]
    mem_bytes = str(limits.memory_mb * 1024 * 1024)
    return [
        Check("memory limit (no swap)", facts["memory_limit"] == mem_bytes and facts["memsw_limit"] in (mem_bytes, "0"),
              f"memory: {facts['memory_limit']}, memory+swap: {facts['memsw_limit'] or 'n/a'}"),
        Check("pids limit", facts["pids_limit"] == str(limits.pids), f"pids.max: {facts['pids_limit']}"),
    ]


def _kernel_check(facts: dict[str, Any], runtime: Runtime) -> Check:
    if runtime == Runtime.RUNSC:
        return Check("gVisor kernel", facts["kernel"] == GVISOR_RELEASE and facts["seccomp"] != "2",
                     f"release {facts['kernel']} (gVisor reports {GVISOR_RELEASE}); system calls served by gVisor, "
                     f"Seccomp mode {facts['seccomp']} inside")
    return Check("seccomp", facts["seccomp"] == "2", f"Seccomp mode {facts['seccomp']} (2 = filter)")


def _dev_shm_check(facts: dict[str, Any], runtime: Runtime) -> Check:
    if runtime == Runtime.RUNSC:  # gVisor keeps a /dev/shm whatever ipc_mode says; it is covered read-only
        return Check("/dev/shm not writable", facts["dev_shm_write"] is not None,
                     f"writing /dev/shm: {facts['dev_shm_write'] or 'written'}")
    return Check("/dev/shm absent", not facts["dev_shm"], f"/dev/shm exists: {facts['dev_shm']}")


#: under runsc these are served by gVisor's kernel, not refused: a route socket that sees only lo
GVISOR_SERVED_FAMILIES = {"AF_NETLINK"}


def _hardening_checks(facts: dict[str, Any], runtime: Runtime = Runtime.RUNC) -> list[Check]:
    served = GVISOR_SERVED_FAMILIES if runtime == Runtime.RUNSC else set()
    allowed_through = {name: error for name, error in facts["families"].items()
                       if error not in ("EPERM", "EAFNOSUPPORT") and name not in served}  # fmt: skip
    from_disk = [m for m in facts["mounts"] if m[4].startswith("/dev/") or m[3] in ("ext4", "xfs", "btrfs", "ext3", "vfat")]
    host_mounts = [m for m in from_disk if m[0] not in NETWORK_FILES or m[2] != "ro"]
    init_mounts = [m for m in facts["mounts"] if "docker-init" in m[0] + m[1]]
    caps = facts["caps"]
    own_files = [facts["own_code_write"], facts["own_file_chmod"], facts["own_file_unlink"]]
    return [
        Check("seccomp: socket families", not allowed_through and facts["vsock_host"] in ("EPERM", "EAFNOSUPPORT"),
              f"{len(facts['families']) - len(allowed_through)}/{len(facts['families'])} families other than unix/inet/inet6 "
              f"refused, vsock to the host: {facts['vsock_host'] or 'connected'}"
              + (f"; served by gVisor's kernel: {sorted(served)}" if served else "")
              + (f"; NOT refused: {allowed_through}" if allowed_through else "")),
        Check("loopback sockets work", facts["loopback"] is True, f"127.0.0.1 TCP echo and a unix socketpair: {facts['loopback']}"),
        *_kernel_surface_checks(facts, runtime),
        Check("init in the image", facts["pid1"] == sandbox.HARNESS_COMMAND and not init_mounts and not host_mounts,
              f"PID 1: {' '.join(facts['pid1'])}; docker-init mounts: {len(init_mounts)}; disk-backed mounts: "
              f"{', '.join(sorted(m[0] + ' (' + m[2] + ')' for m in from_disk)) or 'none'}"
              + (f"; unexpected: {host_mounts}" if host_mounts else "")),
        Check("skill files read-only", all(e in ("EACCES", "EPERM", "EROFS") for e in own_files)
              and facts["uids"] == [10001, 10001, 10001] and facts["init_uids"][1:2] == ["10000"],
              f"append/chmod/unlink of its own files: {', '.join(e or 'succeeded' for e in own_files)}; skill uids "
              f"{facts['uids']}, supervisor uids {facts['init_uids']}"),
        Check("no capabilities", not any(caps.values()), ", ".join(f"{k} {v:x}" for k, v in caps.items())),
    ]


def _kernel_surface_checks(facts: dict[str, Any], runtime: Runtime) -> list[Check]:
    io_uring = ", ".join(e or "allowed" for e in facts["io_uring"])
    queues = (f"/dev/mqueue: {facts['mqueue_fs']}, create: {facts['mqueue_create'] or 'created'}, "
              f"mq_open: {facts['mq_open'] or 'allowed'}, RLIMIT_MSGQUEUE {facts['msgqueue_limit']}")  # fmt: skip
    no_queue_fs = facts["mqueue_fs"] != ["mqueue"] and facts["mqueue_create"] is not None
    if runtime == Runtime.RUNSC:
        # gVisor implements both itself: the host kernel's io_uring and its per-uid queue quota are out of reach
        return [
            Check("io_uring: gVisor's own", True, f"io_uring_setup/enter/register: {io_uring} (served by gVisor, not the host)"),
            Check("no host message queues", no_queue_fs and facts["msgqueue_limit"] == [0, 0],
                  queues + " (mq_* are gVisor's, per sandbox)"),
        ]
    return [
        Check("seccomp: io_uring refused", all(e in ("EPERM", "ENOSYS") for e in facts["io_uring"]),
              f"io_uring_setup/enter/register: {io_uring}"),
        Check("no message queues", no_queue_fs and facts["mq_open"] is not None and facts["msgqueue_limit"] == [0, 0], queues),
    ]


def _network_disabled_check(client: docker.DockerClient, image: str) -> Check:
    """Informational: is ``network_disabled=True`` alone as tight as ``network_mode="none"``?"""
    script = "import os, json; print(json.dumps(sorted(os.listdir('/sys/class/net'))))"
    try:
        raw = client.containers.run(image, ["python3", "-I", "-c", script], network_disabled=True, remove=True)
        interfaces = json.loads(raw.decode().strip())
    except docker.errors.DockerException as exc:
        return Check("network_disabled alone", False, f"could not run: {exc}", required=False)
    return Check("network_disabled alone", interfaces == ["lo"],
                 f"interfaces with network_disabled=True and default network_mode: {interfaces} "
                 "(the sandbox uses network_mode='none' regardless)", required=False)


def run_checks(client: docker.DockerClient, image: str, runtime: Runtime = Runtime.RUNC) -> list[Check]:
    def execute(code: str, limits: RunLimits, **inputs: Any) -> RunResult:
        return sandbox.run(client, RunRequest(image=image, code=code, inputs=inputs, limits=limits, runtime=runtime))

    checks: list[Check] = []
    probe = execute(PROBE_CODE, PROBE_LIMITS)
    if probe.status == RunStatus.RUNNER_UNAVAILABLE:
        raise RunnerUnavailable(probe.error or "Docker engine unavailable")
    if probe.status != RunStatus.OK:
        checks.append(Check("probe container", False, f"{probe.status.value}: {probe.error}"))
    else:
        checks.extend(_probe_checks(probe.output, PROBE_LIMITS, runtime))
    hardening = sandbox.run(client, RunRequest(image=image, code=HARDENING_PROBE, files={"bundled.txt": "x"},
                                               limits=PROBE_LIMITS, runtime=runtime))  # fmt: skip
    if hardening.status != RunStatus.OK:
        checks.append(Check("hardening probe container", False, f"{hardening.status.value}: {hardening.error}"))
    else:
        checks.extend(_hardening_checks(hardening.output, runtime))

    bomb = execute(MEMORY_BOMB, PROBE_LIMITS)
    checks.append(Check("memory limit enforced", bomb.status == RunStatus.OOM_KILLED,
                        f"allocating past {PROBE_LIMITS.memory_mb} MiB: {bomb.status.value}"))
    pids = execute(PIDS_PROBE, PIDS_PROBE_LIMITS, count=PROBE_LIMITS.pids * 2)
    blocked = pids.status == RunStatus.OK and pids.output.get("blocked")
    checks.append(Check("pids limit enforced", bool(blocked),
                        f"forking {PROBE_LIMITS.pids * 2} processes: "
                        + (f"stopped after {pids.output.get('spawned')}" if pids.status == RunStatus.OK else pids.status.value)))
    if runtime == Runtime.RUNC:
        checks.append(_network_disabled_check(client, image))
    return checks


def render_table(checks: list[Check]) -> str:
    width = max(len(c.name) for c in checks)
    lines = [f"{'property'.ljust(width)}  enforced  detail", "-" * (width + 40)]
    for c in checks:
        mark = "yes" if c.enforced else ("NO" if c.required else "no (info)")
        lines.append(f"{c.name.ljust(width)}  {mark.ljust(8)}  {c.detail}")
    return "\n".join(lines)


def runtime_checks(client: docker.DockerClient, image: str) -> dict[str, list[Check]]:
    """Every isolation property under each runtime: runc always; runsc when the engine has it
    registered, else one check that says it is missing (runs whose rules ask for it fail closed)."""
    report = {Runtime.RUNC.value: run_checks(client, image, Runtime.RUNC)}
    if Runtime.RUNSC.value in runtimes.registered(client):
        report[Runtime.RUNSC.value] = [Check("runsc registered", True, "the engine lists the runsc runtime"),
                                       *run_checks(client, image, Runtime.RUNSC)]  # fmt: skip
    else:
        report[Runtime.RUNSC.value] = [Check(
            "runsc registered", False, "the engine has no runsc runtime: runs that isolation rules send to gVisor "
            "fail closed (install and register it with `sudo make gvisor`)", required=False)]  # fmt: skip
    return report


def main(argv: list[str] | None = None, *, connect: Callable[[], docker.DockerClient] = engine.connect) -> int:
    import argparse

    from chalicelib.runner.base_image import ensure_base_image
    from chalicelib.settings import get_settings

    parser = argparse.ArgumentParser(description="Check that the Docker engine enforces the sandbox, per runtime.")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    try:
        client = connect()
        base = ensure_base_image(client, get_settings())
        report = runtime_checks(client, base.tag)
    except (RunnerUnavailable, BuildFailed) as exc:
        print(json.dumps(exc.to_dict()) if args.json else f"doctor: {exc.message}", file=sys.stdout if args.json else sys.stderr)
        return 2
    ok = all(c.enforced for checks in report.values() for c in checks if c.required)
    if args.json:
        print(json.dumps({"ok": ok, "image": base.tag, "checks": [c.to_dict() for c in report[Runtime.RUNC.value]],
                          "runtimes": {name: [c.to_dict() for c in checks] for name, checks in report.items()}},
                         indent=2))  # fmt: skip
    else:
        for name, checks in report.items():
            print(f"runtime {name}\n{render_table(checks)}\n")
        print("all isolation properties enforced" if ok else "SOME ISOLATION PROPERTIES ARE NOT ENFORCED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

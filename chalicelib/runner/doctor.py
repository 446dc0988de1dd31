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
from chalicelib.runner import engine, sandbox
from chalicelib.runner.spec import RunLimits, RunRequest, RunResult, RunStatus

# One container answers every property it can observe about itself.
PROBE_CODE = r'''
import errno, os, socket

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
        "cap_eff": _status("CapEff"),
        "seccomp": _status("Seccomp"),
        "no_new_privs": _status("NoNewPrivs"),
        "dev_shm": os.path.exists("/dev/shm"),
        "docker_sock": any(os.path.exists(p) for p in ("/var/run/docker.sock", "/run/docker.sock")),
        "memory_limit": _cgroup("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory.max"),
        "memsw_limit": _cgroup("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes", "/sys/fs/cgroup/memory.swap.max"),
        "pids_limit": _cgroup("/sys/fs/cgroup/pids/pids.max", "/sys/fs/cgroup/pids.max"),
        "env_keys": sorted(os.environ),
    }
'''

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


class Check:
    def __init__(self, name: str, enforced: bool, detail: str, required: bool = True):
        self.name, self.enforced, self.detail, self.required = name, enforced, detail, required

    def to_dict(self) -> dict[str, Any]:
        return {"property": self.name, "enforced": self.enforced, "detail": self.detail, "required": self.required}


def _probe_checks(facts: dict[str, Any], limits: RunLimits) -> list[Check]:
    mem_bytes = str(limits.memory_mb * 1024 * 1024)
    mount_options = str(facts["root_mount_options"]).split(",")
    return [
        Check("network none", facts["connect_error"] is not None and facts["dns"] == "failed"
              and facts["interfaces"] == ["lo"],
              f"connect: {facts['connect_error']}, dns: {facts['dns']}, interfaces: {facts['interfaces']}"),
        Check("read-only root", "ro" in mount_options and facts["root_write_error"] is not None,
              f"root mount: {facts['root_mount_options']}, write: {facts['root_write_error']}"),
        Check("tmpfs size limit", facts["tmp_fill_error"] == "ENOSPC",
              f"filling /tmp ({limits.tmpfs_mb} MiB): {facts['tmp_fill_error'] or 'no error'}"),
        Check("memory limit (no swap)", facts["memory_limit"] == mem_bytes and facts["memsw_limit"] in (mem_bytes, "0"),
              f"memory: {facts['memory_limit']}, memory+swap: {facts['memsw_limit'] or 'n/a'}"),
        Check("pids limit", facts["pids_limit"] == str(limits.pids), f"pids.max: {facts['pids_limit']}"),
        Check("non-root", facts["uid"] != 0, f"uid {facts['uid']}"),
        Check("no capabilities", facts["cap_eff"].strip("0") == "", f"CapEff {facts['cap_eff']}"),
        Check("seccomp", facts["seccomp"] == "2", f"Seccomp mode {facts['seccomp']} (2 = filter)"),
        Check("no-new-privileges", facts["no_new_privs"] == "1", f"NoNewPrivs {facts['no_new_privs']}"),
        Check("/dev/shm absent", not facts["dev_shm"], f"/dev/shm exists: {facts['dev_shm']}"),
        Check("no docker socket", not facts["docker_sock"], f"socket visible: {facts['docker_sock']}"),
        Check("no host environment", set(facts["env_keys"]) <= set(sandbox.SAFE_ENVIRONMENT) | {"PYTHONIOENCODING"},
              f"variables: {', '.join(facts['env_keys'])}"),
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


def run_checks(client: docker.DockerClient, image: str) -> list[Check]:
    def execute(code: str, limits: RunLimits, **inputs: Any) -> RunResult:
        return sandbox.run(client, RunRequest(image=image, code=code, inputs=inputs, limits=limits))

    checks: list[Check] = []
    probe = execute(PROBE_CODE, PROBE_LIMITS)
    if probe.status == RunStatus.RUNNER_UNAVAILABLE:
        raise RunnerUnavailable(probe.error or "Docker engine unavailable")
    if probe.status != RunStatus.OK:
        checks.append(Check("probe container", False, f"{probe.status.value}: {probe.error}"))
    else:
        checks.extend(_probe_checks(probe.output, PROBE_LIMITS))

    bomb = execute(MEMORY_BOMB, PROBE_LIMITS)
    checks.append(Check("memory limit enforced", bomb.status == RunStatus.OOM_KILLED,
                        f"allocating past {PROBE_LIMITS.memory_mb} MiB: {bomb.status.value}"))
    pids = execute(PIDS_PROBE, PROBE_LIMITS, count=PROBE_LIMITS.pids * 2)
    blocked = pids.status == RunStatus.OK and pids.output.get("blocked")
    checks.append(Check("pids limit enforced", bool(blocked),
                        f"forking {PROBE_LIMITS.pids * 2} processes: "
                        + (f"stopped after {pids.output.get('spawned')}" if pids.status == RunStatus.OK else pids.status.value)))
    checks.append(_network_disabled_check(client, image))
    return checks


def render_table(checks: list[Check]) -> str:
    width = max(len(c.name) for c in checks)
    lines = [f"{'property'.ljust(width)}  enforced  detail", "-" * (width + 40)]
    for c in checks:
        mark = "yes" if c.enforced else ("NO" if c.required else "no (info)")
        lines.append(f"{c.name.ljust(width)}  {mark.ljust(8)}  {c.detail}")
    return "\n".join(lines)


def main(argv: list[str] | None = None, *, connect: Callable[[], docker.DockerClient] = engine.connect) -> int:
    import argparse

    from chalicelib.runner.base_image import ensure_base_image
    from chalicelib.settings import get_settings

    parser = argparse.ArgumentParser(description="Check that the Docker engine enforces the sandbox.")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    try:
        client = connect()
        base = ensure_base_image(client, get_settings())
        checks = run_checks(client, base.tag)
    except (RunnerUnavailable, BuildFailed) as exc:
        print(json.dumps(exc.to_dict()) if args.json else f"doctor: {exc.message}", file=sys.stdout if args.json else sys.stderr)
        return 2
    ok = all(c.enforced for c in checks if c.required)
    if args.json:
        print(json.dumps({"ok": ok, "image": base.tag, "checks": [c.to_dict() for c in checks]}, indent=2))
    else:
        print(render_table(checks))
        print(f"\n{'all isolation properties enforced' if ok else 'SOME ISOLATION PROPERTIES ARE NOT ENFORCED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

"""skillharbor's isolation flags in the forms the peers accept, and a probe
that reads from inside a container which isolation actually took effect.

The probe is a skill (``main()`` returning a dict), so it runs through each
sandbox's own run path like the benchmark's workloads; ``judge`` turns its
readings into the list of skillharbor's properties a peer's container lacks.
"""

from __future__ import annotations

from typing import Any

PROBE_CODE = r'''
import os
import resource


def _read(path):
    try:
        with open(path) as fh:
            return fh.read().strip()
    except OSError:
        return None


def _first(*paths):
    for path in paths:
        value = _read(path)
        if value is not None:
            return value
    return None


def main():
    status = dict(line.split(":", 1) for line in (_read("/proc/self/status") or "").splitlines() if ":" in line)
    mounts = {}
    for line in (_read("/proc/self/mounts") or "").splitlines():
        parts = line.split()
        if len(parts) >= 4:
            mounts[parts[1]] = {"type": parts[2], "options": parts[3].split(",")}
    tmp = mounts.get("/tmp")
    try:
        with open("/tmp/.probe", "w") as fh:
            fh.write("x")
        os.unlink("/tmp/.probe")
        tmp_writable = True
    except OSError:
        tmp_writable = False
    quota = _first("/sys/fs/cgroup/cpu/cpu.cfs_quota_us", "/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us")
    period = _first("/sys/fs/cgroup/cpu/cpu.cfs_period_us", "/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us")
    cpu_max = _read("/sys/fs/cgroup/cpu.max")
    if cpu_max and quota is None:
        quota, period = (cpu_max.split() + ["100000"])[:2]
    return {
        "uid": os.getuid(),
        "gid": os.getgid(),
        "cap_eff": status.get("CapEff", "").strip(),
        "cap_bnd": status.get("CapBnd", "").strip(),
        "no_new_privs": status.get("NoNewPrivs", "").strip(),
        "seccomp": status.get("Seccomp", "").strip(),
        "root_mount_options": mounts.get("/", {}).get("options", []),
        "tmp": tmp,
        "tmp_writable": tmp_writable,
        "dev_shm": "/dev/shm" in mounts,
        "network_interfaces": sorted(os.listdir("/sys/class/net")) if os.path.isdir("/sys/class/net") else None,
        "pids_max": _first("/sys/fs/cgroup/pids/pids.max", "/sys/fs/cgroup/pids.max"),
        "memory_limit": _first("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory.max"),
        "memsw_limit": _first("/sys/fs/cgroup/memory/memory.memsw.limit_in_bytes", "/sys/fs/cgroup/memory.swap.max"),
        "cpu_quota": quota,
        "cpu_period": period,
        "pid1": ((_read("/proc/1/cmdline") or "").split("\0")[0]).rsplit("/", 1)[-1],
        "pid1_is_harness": "/opt/skillharbor/harness.py" in (_read("/proc/1/cmdline") or "").split("\0"),
        "nofile": list(resource.getrlimit(resource.RLIMIT_NOFILE)),
        "core": list(resource.getrlimit(resource.RLIMIT_CORE)),
        "cpu_seconds": list(resource.getrlimit(resource.RLIMIT_CPU)),
    }
'''

UNLIMITED_BYTES = 2**62  # cgroup v1 reports "no limit" as a number near 2^63


def _number(value: Any) -> int | None:
    try:
        number = int(str(value).strip())
    except (TypeError, ValueError):
        return None
    return None if number < 0 or number >= UNLIMITED_BYTES else number


def readings(probe: dict[str, Any]) -> dict[str, str]:
    """The probe's figures as the report shows them."""
    memory = _number(probe.get("memory_limit"))
    swap = _number(probe.get("memsw_limit"))
    quota, period = _number(probe.get("cpu_quota")), _number(probe.get("cpu_period"))
    tmp = probe.get("tmp")
    net = probe.get("network_interfaces")
    nofile = probe.get("nofile") or ["?", "?"]
    cpu_seconds = probe.get("cpu_seconds") or [-1, -1]
    return {
        "user": "root (uid 0)" if probe.get("uid") == 0 else f"uid {probe.get('uid')}",
        "root filesystem": "read-only" if "ro" in probe.get("root_mount_options", []) else "writable",
        "network": "none (lo only)" if net == ["lo"] else ", ".join(net or ["?"]),
        "capabilities (bounding set)": "none" if _caps(probe.get("cap_bnd")) == 0 else f"{_caps(probe.get('cap_bnd'))} kept",
        "effective capabilities": "none" if _caps(probe.get("cap_eff")) == 0 else f"{_caps(probe.get('cap_eff'))}",
        "no_new_privs": "yes" if probe.get("no_new_privs") == "1" else "no",
        "seccomp": {"2": "filter", "1": "strict", "0": "off"}.get(str(probe.get("seccomp")), "?"),
        "pids limit": str(_number(probe.get("pids_max")) or "none"),
        "memory limit": f"{memory // 2**20} MiB" if memory else "none",
        "swap": "none" if memory and swap == memory else ("unlimited" if memory and not swap else "?" if not memory else "allowed"),
        "CPU quota": f"{quota / period:g} CPU" if quota and period else "none",
        "CPU time limit (RLIMIT_CPU)": "none" if cpu_seconds[0] in (-1, None) else f"{cpu_seconds[0]} s",
        "/tmp": (f"{tmp['type']} ({','.join(o for o in tmp['options'] if o in ('noexec', 'nosuid', 'nodev'))})" if tmp
                 else "on the root filesystem") + ("" if probe.get("tmp_writable") else ", not writable"),  # fmt: skip
        "/dev/shm": "present" if probe.get("dev_shm") else "none",
        "PID 1": "skillharbor harness" if probe.get("pid1_is_harness") else str(probe.get("pid1") or "?"),
        "open files (nofile)": f"{nofile[0]}/{nofile[1]}",
        "core dumps": "off" if (probe.get("core") or [None])[0] == 0 else "allowed",
    }


def _caps(mask: Any) -> int:
    try:
        return int(str(mask), 16).bit_count()
    except ValueError:
        return -1


#: skillharbor's properties, each judged from a probe (True: the container has it)
PROPERTIES: dict[str, Any] = {
    "non-root user": lambda p: p.get("uid") != 0,
    "read-only root filesystem": lambda p: "ro" in p.get("root_mount_options", []),
    "no network": lambda p: p.get("network_interfaces") == ["lo"],
    "all capabilities dropped": lambda p: _caps(p.get("cap_bnd")) == 0,
    "no_new_privs": lambda p: p.get("no_new_privs") == "1",
    "pids limit": lambda p: _number(p.get("pids_max")) is not None,
    "memory limit": lambda p: _number(p.get("memory_limit")) is not None,
    "no swap beyond the memory limit": lambda p: _number(p.get("memory_limit")) is not None
    and _number(p.get("memsw_limit")) == _number(p.get("memory_limit")),
    "CPU quota": lambda p: bool(_number(p.get("cpu_quota"))),
    "/tmp a noexec tmpfs": lambda p: bool(p.get("tmp")) and p["tmp"]["type"] == "tmpfs" and "noexec" in p["tmp"]["options"],
    "no /dev/shm (ipc none)": lambda p: not p.get("dev_shm"),
    # skillharbor's own PID 1 is its harness (it reaps and forwards signals); elsewhere an init binary
    "init as PID 1": lambda p: bool(p.get("pid1_is_harness")) or p.get("pid1") in ("docker-init", "tini", "tini-static"),
    "open files capped": lambda p: (p.get("nofile") or [0])[0] not in (-1, None) and (p.get("nofile") or [10**9])[0] <= 4096,
    "no core dumps": lambda p: (p.get("core") or [None])[0] == 0,
}


def judge(probe: dict[str, Any], reference: dict[str, Any]) -> list[str]:
    """skillharbor's properties (those the reference container has) that this container lacks."""
    return [name for name, has in PROPERTIES.items() if has(reference) and not has(probe)]


def docker_py_flags(limits: Any, user: str, environment: dict[str, str]) -> dict[str, Any]:
    """``DockerClient.containers.create`` keyword arguments equal to
    ``chalicelib.runner.sandbox.host_config`` and ``sandbox.create``
    (checked by tests/unit/test_bench_peer_flags.py), except the
    capabilities skillharbor's harness needs for a moment to split uids and
    then drops: a peer's own process would keep them."""
    import docker.types

    from chalicelib.runner import sandbox, seccomp

    memory = f"{limits.memory_mb}m"
    return {
        "network_mode": "none",
        "read_only": True,
        "tmpfs": {"/tmp": f"rw,size={limits.tmpfs_mb}m,mode=1777,nosuid,nodev,noexec",
                  "/dev/mqueue": "ro,size=4k,mode=0555,nosuid,nodev,noexec"},
        "cap_drop": ["ALL"],
        "security_opt": ["no-new-privileges", seccomp.security_option()],
        "pids_limit": limits.pids,
        "mem_limit": memory,
        "memswap_limit": memory,
        "nano_cpus": int(limits.cpus * 1e9),
        "ipc_mode": "none",
        "privileged": False,
        "runtime": "runc",  # the runner names its runtime (chalicelib/runner/runtimes.py)
        "dns": [sandbox.SANDBOX_RESOLVER],
        "dns_search": ["."],
        "log_config": docker.types.LogConfig(type=docker.types.LogConfig.types.NONE),
        "ulimits": [docker.types.Ulimit(name="nofile", soft=1024, hard=1024), docker.types.Ulimit(name="core", soft=0, hard=0),
                    docker.types.Ulimit(name="msgqueue", soft=0, hard=0)],
        "user": user,
        "working_dir": "/tmp",
        "environment": dict(environment),
    }

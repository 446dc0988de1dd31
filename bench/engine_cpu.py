"""CPU time spent for one runner process's runs, read from /proc and the cgroup tree (Linux, root).

    meter = CpuMeter(worker_pid, own_pids={"api": os.getpid(), "worker": worker_pid}); meter.start()
    ... the runs ...
    figures = meter.stop()   # CPU seconds by part over the window

Parts: ``daemons`` (dockerd and containerd: shared by everything on the engine, so other users' work
lands here too), ``shims`` (the containerd shim of each container the runner created),
``fuse`` (the fuse-overlayfs process serving each such container's root file system, when the engine
uses that storage driver: every file the interpreters open or stat goes through it) and
``containers`` (the cgroup CPU of those containers: harness, interpreters, the skill), plus each
process in ``own_pids`` (e.g. the API and the worker). A container is the runner's when its
``skillharbor.creator`` label names the runner's pid. Shims and containers go away with their
container, so they are sampled every ``interval`` seconds and the last reading counts; the CPU of a
container's last moments after that reading is missed (a few ms at most).
"""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path
from typing import Any

TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
DAEMONS = ("dockerd", "containerd")
CONTAINERS = Path("/var/lib/docker/containers")
MOUNTS = Path("/var/lib/docker/image")  # <driver>/layerdb/mounts/<container id>/mount-id
CGROUP_USAGE = (  # (directory holding one entry per container, how an entry is named, usage file, scale to seconds)
    (Path("/sys/fs/cgroup/cpuacct/docker"), "{id}", "cpuacct.usage", 1e-9),  # cgroup v1, cgroupfs driver
    (Path("/sys/fs/cgroup/cpu,cpuacct/docker"), "{id}", "cpuacct.usage", 1e-9),
    (Path("/sys/fs/cgroup/system.slice"), "docker-{id}.scope", "cpu.stat", 1e-6),  # cgroup v2, systemd driver
    (Path("/sys/fs/cgroup/docker"), "{id}", "cpu.stat", 1e-6),  # cgroup v2, cgroupfs driver
)


def process_cpu_seconds(pid: int) -> float | None:
    """utime + stime of a process (all its threads), or None when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / TICK  # fields 14 and 15 of stat(5), counted after the name


def parse_usage(text: str, file_name: str, scale: float) -> float:
    """A cgroup CPU usage file's content in seconds (cpuacct.usage: ns; cpu.stat: its usage_usec line)."""
    if file_name == "cpu.stat":
        for line in text.splitlines():
            name, _, value = line.partition(" ")
            if name == "usage_usec":
                return int(value) * scale
        return 0.0
    return int(text.strip()) * scale


def shim_container(cmdline: bytes) -> str | None:
    """The container id a containerd shim serves (its ``-id`` argument)."""
    args = cmdline.split(b"\0")
    for n, arg in enumerate(args[:-1]):
        if arg == b"-id":
            return args[n + 1].decode(errors="replace")
    return None


def fuse_mount_id(cmdline: bytes) -> str | None:
    """The layer a fuse-overlayfs process serves: the directory above its ``upperdir``'s ``diff``."""
    for arg in cmdline.split(b"\0"):
        for option in arg.decode(errors="replace").split(","):
            if option.startswith("upperdir=") and option.endswith("/diff"):
                return option.removesuffix("/diff").rsplit("/", 1)[-1]
    return None


def mounts_by_id() -> dict[str, str]:
    """mount id -> container id, for every container the engine has."""
    found = {}
    for path in MOUNTS.glob("*/layerdb/mounts/*/mount-id"):
        try:
            found[path.read_text().strip()] = path.parent.name
        except OSError:
            continue
    return found


def creator_of(container_id: str) -> str:
    try:
        config = json.loads((CONTAINERS / container_id / "config.v2.json").read_text())
    except (OSError, ValueError):
        return ""
    return ((config.get("Config") or {}).get("Labels") or {}).get("skillharbor.creator", "")


class CpuMeter:
    def __init__(self, runner_pid: int, own_pids: dict[str, int] | None = None, interval: float = 0.1):
        self.runner_pid, self.own_pids, self.interval = runner_pid, dict(own_pids or {}), interval
        self._mine: dict[str, bool] = {}  # container id -> created by the runner
        # shim or fuse-overlayfs pid -> (part, first reading or 0 when it started later, last reading)
        self._helpers: dict[int, tuple[str, float, float]] = {}
        self._mount_owner: dict[str, str] = {}  # fuse mount id -> container id
        # id -> (reading at the start, or 0 for one created later, so its whole usage counts; last reading)
        self._containers: dict[str, tuple[float, float]] = {}
        self._seen_pids: set[int] = set()
        self._tries: dict[int, int] = {}  # helpers whose container is not known yet: samples so far
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._daemon_pids = self._find_daemons()
        self._start: dict[str, float] = {}
        self._cgroup = next(((d, n, f, s) for d, n, f, s in CGROUP_USAGE if d.is_dir()), None)

    def _find_daemons(self) -> dict[int, str]:
        found = {}
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    comm = (entry / "comm").read_text().strip()
                except OSError:
                    continue
                if comm in DAEMONS:
                    found[int(entry.name)] = comm
        return found

    def _is_mine(self, container_id: str) -> bool:
        if container_id not in self._mine:
            creator = creator_of(container_id)
            if not creator:
                return False  # its config may not be written yet: ask again next time
            self._mine[container_id] = creator.rpartition(":")[2] == str(self.runner_pid)
        return self._mine[container_id]

    def _sample(self, first: bool = False) -> None:
        for entry in os.scandir("/proc"):
            if not entry.name.isdigit():
                continue
            pid = int(entry.name)
            if pid in self._helpers:
                value = process_cpu_seconds(pid)
                if value is not None:
                    part, begun, _ = self._helpers[pid]
                    self._helpers[pid] = (part, begun, value)
                continue
            if pid in self._seen_pids:
                continue
            try:
                part, container = self._helper_of(pid)
            except OSError:
                continue
            if not container:
                self._tries[pid] = self._tries.get(pid, 0) + 1
            if container is None or self._tries.get(pid, 0) > 20:  # not a container's helper, or never one we know
                self._seen_pids.add(pid)
            elif self._is_mine(container):
                value = process_cpu_seconds(pid) or 0.0
                self._helpers[pid] = (part, value if first else 0.0, value)
            elif container in self._mine:  # another user's container: never look at it again
                self._seen_pids.add(pid)
        if self._cgroup is not None:
            directory, pattern, file_name, scale = self._cgroup
            prefix, suffix = pattern.split("{id}")
            try:
                entries = list(os.scandir(directory))
            except OSError:
                entries = []
            for entry in entries:
                name = entry.name
                if not entry.is_dir() or not name.startswith(prefix) or not name.endswith(suffix):
                    continue
                container = name[len(prefix): len(name) - len(suffix)]
                if not self._is_mine(container):
                    continue
                try:
                    value = parse_usage(Path(entry.path, file_name).read_text(), file_name, scale)
                except (OSError, ValueError):
                    continue
                begun = self._containers.get(container, (None, 0.0))[0]
                if begun is None:
                    begun = value if first else 0.0
                self._containers[container] = (begun, value)

    def _helper_of(self, pid: int) -> tuple[str, str | None]:
        """("shims" or "fuse", the container it serves), or (_, None) for any other process."""
        comm = Path(f"/proc/{pid}/comm").read_text().strip()
        if comm.startswith("containerd-shim"):
            return "shims", shim_container(Path(f"/proc/{pid}/cmdline").read_bytes())
        if comm == "fuse-overlayfs":
            mount = fuse_mount_id(Path(f"/proc/{pid}/cmdline").read_bytes())
            if mount is None:
                return "fuse", None
            if mount not in self._mount_owner:
                self._mount_owner.update(mounts_by_id())
            return "fuse", self._mount_owner.get(mount, "")  # "" (unknown yet): not mine, asked again
        return "", None

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self._sample()

    def start(self) -> CpuMeter:
        self._started = time.monotonic()
        self._start = self._processes()
        self._sample(first=True)
        self._thread = threading.Thread(target=self._loop, name="cpu-meter", daemon=True)
        self._thread.start()
        return self

    def _processes(self) -> dict[str, float]:
        readings = {f"daemon:{name}:{pid}": process_cpu_seconds(pid) for pid, name in self._daemon_pids.items()}
        readings.update({name: process_cpu_seconds(pid) for name, pid in self.own_pids.items()})
        return {k: v for k, v in readings.items() if v is not None}

    def stop(self) -> dict[str, Any]:
        """CPU seconds per part since ``start`` (the meter can be started again afterwards)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        self._sample()
        end = self._processes()
        delta = {k: end[k] - v for k, v in self._start.items() if k in end}
        figures: dict[str, Any] = {
            "daemons_s": round(sum(v for k, v in delta.items() if k.startswith("daemon:")), 3),
            "shims_s": round(sum(last - begun for part, begun, last in self._helpers.values() if part == "shims"), 3),
            "fuse_s": round(sum(last - begun for part, begun, last in self._helpers.values() if part == "fuse"), 3),
            "containers_s": round(sum(last - begun for begun, last in self._containers.values()), 3),
            "containers_seen": len(self._containers),
            "seconds": round(time.monotonic() - self._started, 2),
            "cgroup_layout": str(self._cgroup[0]) if self._cgroup else None,
        }
        figures["engine_s"] = round(sum(figures[k] for k in ("daemons_s", "shims_s", "fuse_s", "containers_s")), 3)
        for name in self.own_pids:
            if name in delta:
                figures[f"{name}_s"] = round(delta[name], 3)
        self._stop = threading.Event()
        self._helpers.clear()
        self._containers.clear()
        return figures

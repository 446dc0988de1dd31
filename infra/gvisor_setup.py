"""Install gVisor's ``runsc`` from Debian and register it with the Docker engine.

``make gvisor`` (and ``make system-deps`` when run as root with apt) runs this
with the system Python, before any virtualenv exists, so it uses the standard
library only. It is idempotent and says what it changed:

* ``apt-get install runsc`` when ``/usr/bin/runsc`` is missing;
* merges ``runtimes.runsc`` into ``/etc/docker/daemon.json``, keeping every
  other key (data-root, storage driver, log options ...);
* sends SIGHUP to dockerd, which reloads its runtimes without stopping any
  container (a restart would kill other people's runs), and waits until
  ``docker info`` lists the runtime.

The runtime arguments are part of the contract: ``--network=none`` because
runsc 20221219 refuses to start a ``--network none`` container in the root
network namespace otherwise, and ``--platform=ptrace`` because it needs no
``/dev/kvm`` and works inside VMs and containers (see docs/DEPLOYMENT.md for
systrap and KVM on newer releases). ``SKILLHARBOR_RUNSC_PLATFORM`` picks
another platform. ``--host-uds=open`` lets a sandboxed process connect() to a
host Unix socket it can see through a bind mount: the only such socket is the
egress proxy's, in the per-run directory mounted for runs granted hosts
(docs/EGRESS.md); without it gVisor refuses the connect and egress cannot
work under runsc. It does not allow creating host sockets (``create``).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

RUNTIME_NAME = "runsc"
RUNSC_PATH = "/usr/bin/runsc"
DAEMON_JSON = Path(os.environ.get("SKILLHARBOR_DOCKER_DAEMON_JSON", "/etc/docker/daemon.json"))


def runtime_entry() -> dict[str, object]:
    platform = os.environ.get("SKILLHARBOR_RUNSC_PLATFORM", "ptrace")
    return {"path": RUNSC_PATH, "runtimeArgs": [f"--platform={platform}", "--network=none", "--host-uds=open"]}


def say(message: str) -> None:
    print(f"gvisor: {message}", flush=True)


def install_runsc() -> bool:
    if os.path.exists(RUNSC_PATH):
        return False
    if shutil.which("apt-get") is None:
        raise SystemExit("gvisor: runsc is missing and there is no apt-get: install gVisor by hand (docs/DEPLOYMENT.md)")
    say("installing runsc from Debian (apt-get install runsc)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env, stdout=subprocess.DEVNULL)
    subprocess.run(["apt-get", "install", "-y", "-qq", "runsc"], check=True, env=env, stdout=subprocess.DEVNULL)
    if not os.path.exists(RUNSC_PATH):
        raise SystemExit(f"gvisor: apt-get installed runsc but {RUNSC_PATH} is missing")
    return True


def register(path: Path = DAEMON_JSON) -> bool:
    """Merge the runtime into daemon.json; True when the file changed."""
    config: dict[str, object] = {}
    if path.exists():
        text = path.read_text()
        if text.strip():
            try:
                config = json.loads(text)
            except ValueError as exc:
                raise SystemExit(f"gvisor: {path} is not valid JSON ({exc}); fix it by hand first") from exc
            if not isinstance(config, dict):
                raise SystemExit(f"gvisor: {path} does not hold a JSON object; fix it by hand first")
    runtimes = config.get("runtimes") or {}
    if not isinstance(runtimes, dict):
        raise SystemExit(f"gvisor: 'runtimes' in {path} is not an object; fix it by hand first")
    wanted = runtime_entry()
    if runtimes.get(RUNTIME_NAME) == wanted:
        return False
    config["runtimes"] = {**runtimes, RUNTIME_NAME: wanted}
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        backup = path.with_name(path.name + ".before-gvisor")
        if not backup.exists():
            shutil.copy2(path, backup)
            say(f"kept the previous file as {backup}")
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(config, indent=2) + "\n")
    os.replace(temporary, path)  # dockerd never reads a half-written file
    say(f"registered runtime {RUNTIME_NAME} {wanted['runtimeArgs']} in {path}")
    return True


def engine_runtimes() -> set[str] | None:
    try:
        out = subprocess.run(
            ["docker", "info", "--format", "{{json .Runtimes}}"], capture_output=True, text=True, timeout=30, check=True
        ).stdout
        return set(json.loads(out or "{}"))
    except (OSError, subprocess.SubprocessError, ValueError):
        return None


def dockerd_pids() -> list[int]:
    try:
        out = subprocess.run(["pidof", "dockerd"], capture_output=True, text=True, check=False).stdout
    except OSError:
        return []
    return [int(pid) for pid in out.split()]


def reload_engine() -> None:
    pids = dockerd_pids()
    if not pids:
        say("no dockerd process on this host: start (or restart) the engine yourself to load the runtime")
        return
    for pid in pids:
        os.kill(pid, signal.SIGHUP)  # reloads runtimes; running containers are untouched
    say(f"sent SIGHUP to dockerd (pid {', '.join(map(str, pids))}) to reload its runtimes")
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if RUNTIME_NAME in (engine_runtimes() or set()):
            return
        time.sleep(0.5)
    raise SystemExit("gvisor: dockerd did not list the runsc runtime after the reload; see its log")


def main() -> int:
    if os.geteuid() != 0:
        print("gvisor: run as root (it installs a package and edits /etc/docker/daemon.json)", file=sys.stderr)
        return 1
    changed = install_runsc()
    changed = register() or changed
    listed = RUNTIME_NAME in (engine_runtimes() or set())
    if changed or not listed:
        reload_engine()
        changed = True
    say("runsc was installed and registered already: nothing changed" if not changed else "runsc is registered with the engine")
    return 0


if __name__ == "__main__":
    sys.exit(main())

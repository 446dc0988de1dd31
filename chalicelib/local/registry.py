"""The local image registry of `make run` (SKILLHARBOR_LOCAL_REGISTRY=1): Debian's ``docker-registry``
(the CNCF distribution registry) on 127.0.0.1, its storage in a temporary folder that goes with it.

Workers push the images they build there and pull by digest what they lack
(runner/registry.py). Deletion is enabled (``storage.delete``): the scheduled
cleanup deletes by digest what the image TTL expires (runner/registry_expiry.py),
which the distribution registry refuses (405) otherwise. Docker talks plain HTTP
to a registry on 127.0.0.0/8 without any engine configuration. ``apt-get install docker-registry`` (or
``make system-deps`` as root) provides the binary.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

BINARY = "/usr/bin/docker-registry"
START_SECONDS = 20.0


class RegistryNotAvailable(RuntimeError):
    pass


@dataclass
class LocalRegistry:
    address: str  # host:port, what SKILLHARBOR_REGISTRY is set to
    process: subprocess.Popen[bytes]
    root: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.root, ignore_errors=True)


def start_registry(port: int, binary: str | None = None) -> LocalRegistry:
    """Start the registry on 127.0.0.1:``port``; returns once it answers ``/v2/``."""
    binary = binary or shutil.which("docker-registry") or BINARY
    if not Path(binary).exists():
        raise RegistryNotAvailable("SKILLHARBOR_LOCAL_REGISTRY=1 needs Debian's docker-registry: apt-get install docker-registry "
                                   "(or make system-deps as root)")  # fmt: skip
    root = Path(tempfile.mkdtemp(prefix="skillharbor-registry-"))
    config = root / "config.yml"
    config.write_text(
        "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n"
        f"    rootdirectory: {root / 'data'}\n  delete:\n    enabled: true\n"
        f"http:\n  addr: 127.0.0.1:{port}\n"
    )
    process = subprocess.Popen([binary, "serve", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                               env={"PATH": "/usr/bin:/bin"})  # fmt: skip
    registry = LocalRegistry(f"127.0.0.1:{port}", process, root)
    deadline = time.monotonic() + START_SECONDS
    while True:
        try:
            with urllib.request.urlopen(f"http://{registry.address}/v2/", timeout=1) as response:
                if response.status == 200:
                    return registry
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            error = process.stderr.read().decode(errors="replace")[-500:] if process.poll() is not None and process.stderr else ""
            registry.stop()
            raise RegistryNotAvailable(f"the local registry did not start on {registry.address}: {error or 'no answer'}")
        time.sleep(0.1)

"""Resolve a requirement set to its exact, hash-pinned closure for the target platform.

pip's own resolver does the work (``pip install --dry-run --report``): it
picks one wheel per project for the image's interpreter and manylinux tag and
reports its URL and sha256, so resolve, scan and build all see one file per
pin. Only wheels are accepted: an sdist would run its build code on our host.

pip runs isolated from the host's pip configuration (``--isolated``) so that
``PIP_FIND_LINKS`` or a user's index cannot change what gets pinned.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tempfile
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Protocol

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from chalicelib.errors import InvalidRequirement, ResolutionFailed, TransientError
from chalicelib.packages.pins import Pin, TargetPlatform

_CA_BUNDLES = ("/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt")


def manylinux_platform_tags(manylinux: str) -> list[str]:
    """Every platform tag an interpreter on ``manylinux_2_X_arch`` accepts.

    pip's ``--platform`` takes tags literally (no implied older glibc), so the
    compatible ones are listed explicitly, newest first.
    """
    try:
        _, major, minor, arch = manylinux.split("_", 3)
        glibc_major, glibc_minor = int(major), int(minor)
    except ValueError as error:
        raise ValueError(f"not a manylinux_2_X_<arch> tag: {manylinux!r}") from error
    if glibc_major != 2:
        raise ValueError(f"unsupported glibc major version in {manylinux!r}")
    tags = [f"manylinux_2_{m}_{arch}" for m in range(glibc_minor, 4, -1)]
    legacy = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}
    tags += [f"{name}_{arch}" for m, name in legacy.items() if glibc_minor >= m]
    return tags


def target_marker_environment(platform: TargetPlatform) -> dict[str, str]:
    """PEP 508 marker values for the image's interpreter (Linux, CPython)."""
    arch = platform.manylinux.rsplit("_", 1)[-1] if "x86_64" not in platform.manylinux else "x86_64"
    return {
        "implementation_name": "cpython",
        "platform_python_implementation": "CPython",
        "python_version": platform.python_version,
        "python_full_version": f"{platform.python_version}.0",
        "implementation_version": f"{platform.python_version}.0",
        "os_name": "posix",
        "sys_platform": "linux",
        "platform_system": "Linux",
        "platform_machine": arch,
        "platform_release": "",
        "platform_version": "",
        "extra": "",
    }


def applicable_requirements(requirements: list[str], platform: TargetPlatform) -> list[str]:
    """Drop direct requirements whose environment marker is false on the target."""
    environment = target_marker_environment(platform)
    kept = []
    for line in requirements:
        requirement = Requirement(line)
        if requirement.marker is None or Marker(str(requirement.marker)).evaluate(environment):
            kept.append(line)
    return kept


class Resolver(Protocol):
    def resolve(self, requirements: list[str], platform: TargetPlatform) -> list[Pin]: ...


class PipResolver:
    """Resolve with pip's resolver; results cached by (requirement set, platform, index)."""

    def __init__(self, index_url: str, *, timeout_seconds: int = 300, cache_size: int = 256, python: str | None = None):
        self.index_url = index_url
        self.timeout_seconds = timeout_seconds
        self.python = python or sys.executable
        self._cache: OrderedDict[str, list[Pin]] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    def cache_key(self, requirements: list[str], platform: TargetPlatform) -> str:
        normalized = sorted(str(Requirement(r)) for r in requirements)
        raw = json.dumps([normalized, platform.key, self.index_url])
        return hashlib.sha256(raw.encode()).hexdigest()

    def resolve(self, requirements: list[str], platform: TargetPlatform) -> list[Pin]:
        try:
            requirements = applicable_requirements(requirements, platform)
        except Exception as error:  # packaging's InvalidRequirement / InvalidMarker
            raise InvalidRequirement(f"cannot evaluate requirement: {error}") from error
        if not requirements:
            return []
        key = self.cache_key(requirements, platform)
        with self._lock:
            if key in self._cache:
                self._cache.move_to_end(key)
                return list(self._cache[key])
        pins = self._run_pip(requirements, platform)
        with self._lock:
            self._cache[key] = pins
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return list(pins)

    def _command(self, report: Path, target: Path, requirements_file: Path, platform: TargetPlatform) -> list[str]:
        command = [
            self.python, "-m", "pip", "install",
            "--isolated", "--disable-pip-version-check", "--no-input", "--quiet",
            "--dry-run", "--ignore-installed", "--report", str(report),
            "--only-binary=:all:",
            "--python-version", platform.python_version,
            "--implementation", platform.implementation,
            "--abi", platform.abi, "--abi", "abi3", "--abi", "none",
            "--index-url", self.index_url,
            "--target", str(target),
            "-r", str(requirements_file),
        ]  # fmt: skip
        for tag in manylinux_platform_tags(platform.manylinux):
            command += ["--platform", tag]
        bundle = next((b for b in _CA_BUNDLES if os.path.exists(b)), None)
        if bundle:
            command += ["--cert", bundle]
        return command

    def _run_pip(self, requirements: list[str], platform: TargetPlatform) -> list[Pin]:
        direct = {canonicalize_name(Requirement(r).name) for r in requirements}
        with tempfile.TemporaryDirectory(prefix="skillharbor-resolve-") as workdir:
            work = Path(workdir)
            requirements_file = work / "requirements.in"
            # one requirement per line: pip options were rejected at parse time
            requirements_file.write_text("\n".join(requirements) + "\n")
            report = work / "report.json"
            command = self._command(report, work / "target", requirements_file, platform)
            env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_")}
            try:
                completed = subprocess.run(
                    command, capture_output=True, text=True, timeout=self.timeout_seconds, env=env, cwd=workdir
                )
            except subprocess.TimeoutExpired as error:
                raise TransientError(f"resolution timed out after {self.timeout_seconds}s") from error
            if completed.returncode != 0:
                raise _classify_failure(completed.stderr)
            return _pins_from_report(json.loads(report.read_text()), direct, target_marker_environment(platform))


def _classify_failure(stderr: str) -> Exception:
    lines = [line for line in stderr.splitlines() if line.strip() and "[notice]" not in line]
    message = "\n".join(lines[-12:]) or "pip failed without a message"
    network_signs = ("Max retries exceeded", "Temporary failure in name resolution", "Connection refused", "timed out")
    # pip ends an unreachable index with "No matching distribution" too: the network signs decide
    if any(sign in message for sign in network_signs):
        return TransientError(f"package index unreachable: {message}")
    return ResolutionFailed(f"the requirements cannot be resolved for the target platform: {message}", resolver_output=message)


def dependency_edges(report: dict, environment: dict[str, str]) -> dict[str, set[str]]:
    """Which installed package requires which, from each one's Requires-Dist.

    A requirement counts when its marker holds on the target for the package
    itself or one of the extras asked of it; extras propagate (pandas[excel]
    asks openpyxl's own extras), so repeat until nothing changes."""
    items = {canonicalize_name(i["metadata"]["name"]): i for i in report.get("install", [])}
    extras: dict[str, set[str]] = {name: {""} | set(i.get("requested_extras", [])) for name, i in items.items()}
    edges: dict[str, set[str]] = {name: set() for name in items}
    changed = True
    while changed:
        changed = False
        for name, item in items.items():
            for line in item["metadata"].get("requires_dist") or []:
                try:
                    requirement = Requirement(line)
                except Exception:
                    continue  # a package's own bad metadata: pip installed it anyway; the edge is unknowable
                needed = canonicalize_name(requirement.name)
                if needed not in items or needed == name:
                    continue
                marker = requirement.marker
                if marker is not None and not any(marker.evaluate(dict(environment, extra=e)) for e in sorted(extras[name])):
                    continue
                if needed not in edges[name]:
                    edges[name].add(needed)
                    changed = True
                if not set(requirement.extras) <= extras[needed]:
                    extras[needed] |= set(requirement.extras)
                    changed = True
    return edges


def _pins_from_report(report: dict, direct: set[str], environment: dict[str, str]) -> list[Pin]:
    edges = dependency_edges(report, environment)
    pins = []
    for item in report.get("install", []):
        metadata = item["metadata"]
        download = item["download_info"]
        hashes = download.get("archive_info", {}).get("hashes", {})
        if "sha256" not in hashes:
            raise ResolutionFailed(f"the index gave no sha256 for {metadata['name']} {metadata['version']}")
        name = canonicalize_name(metadata["name"])
        pins.append(
            Pin(
                name=name,
                version=metadata["version"],
                sha256=hashes["sha256"],
                url=download["url"],
                filename=download["url"].rsplit("/", 1)[-1].split("#", 1)[0],
                direct=name in direct,
                requires=tuple(sorted(edges.get(name, ()))),
            )
        )
    return sorted(pins, key=lambda p: p.name)

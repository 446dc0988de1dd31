"""Resolve a requirement set to its exact, hash-pinned closure for the target platform.

pip's own resolver does the work (``pip install --dry-run --report``): it
picks one wheel per project for the image's interpreter and manylinux tag and
reports its URL and sha256, so resolve, scan and build all see one file per
pin. How pip is kept from doing anything else:

* every requirement is checked again here (``check_requirement``: no ``$``,
  paths, URLs, archives, options, line breaks) and passed in its canonical
  form as a command-line argument after ``--``: never through a requirements
  file, where pip would expand ``${VAR}`` and split lines;
* ``--only-binary=:all:``: only wheels from the index, never an sdist built
  on this host; every pin must be an index wheel (``archive_info``, not a
  local directory or a direct reference) or the resolution fails;
* ``--isolated`` and ``--keyring-provider=disabled``: no pip configuration,
  ``PIP_*`` variable or keyring of the host's user;
* an allow-listed environment (``environment.py``), an empty private working
  directory, HOME and TMPDIR;
* pip's output goes to the server log, redacted; the caller gets one line
  (``failures.py``) and the log id.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
import subprocess
import sys
import tempfile
import urllib.parse
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from pathlib import Path

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from chalicelib.errors import InvalidRequirement, ResolutionFailed, TransientError
from chalicelib.packages.environment import resolver_environment
from chalicelib.packages.failures import explain
from chalicelib.packages.index import PackageIndex, SimpleIndex
from chalicelib.packages.pins import Pin, TargetPlatform
from chalicelib.packages.resolution_cache import InMemoryResolutionCache, ResolutionCache, resolution_key
from chalicelib.packages.targets import describe, manylinux_platform_tags, target_marker_environment
from chalicelib.redact import redact
from chalicelib.skills.requirement_check import check_requirement, normalize_requirement

__all__ = ["PipResolver", "applicable_requirements", "canonical_requirements", "dependency_edges",
           "manylinux_platform_tags", "target_marker_environment"]  # fmt: skip

log = logging.getLogger("skillharbor.resolver")
_CA_BUNDLES = ("/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt")
_LOGGED_LINES = 80
Admission = Callable[[], AbstractContextManager[object]]


def canonical_requirements(requirements: Iterable[str]) -> list[str]:
    """Each requirement re-checked and in canonical form; InvalidRequirement naming every bad one."""
    canonical, problems = [], []
    for index, text in enumerate(requirements):
        requirement, reason = check_requirement(text)
        if requirement is None:
            problems.append(f"requirements[{index}] {text!r}: {reason}")
        else:
            canonical.append(normalize_requirement(requirement))
    if problems:
        raise InvalidRequirement("invalid requirements", problems=problems)
    return canonical


def applicable_requirements(requirements: list[str], platform: TargetPlatform) -> list[str]:
    """Drop direct requirements whose environment marker is false on the target."""
    environment = target_marker_environment(platform)
    kept = []
    for line in requirements:
        requirement = Requirement(line)
        if requirement.marker is None or Marker(str(requirement.marker)).evaluate(environment):
            kept.append(line)
    return kept


class PipResolver:
    """Resolve with pip's resolver; results cached by (requirement set, platform, index)."""

    def __init__(
        self,
        index_url: str,
        *,
        timeout_seconds: int = 300,
        python: str | None = None,
        cache: ResolutionCache | None = None,
        cache_ttl_seconds: float = 3600.0,
        pip_cache_dir: Path | None = None,
        index: PackageIndex | None = None,
        secret_values: Callable[[], Iterable[str]] = lambda: (),
    ):
        self.index_url = index_url
        self.timeout_seconds = timeout_seconds
        self.python = python or sys.executable
        self.cache = cache if cache is not None else InMemoryResolutionCache()
        self.cache_ttl_seconds = cache_ttl_seconds
        self.pip_cache_dir = pip_cache_dir
        self.index = index if index is not None else SimpleIndex(index_url)
        self.secret_values = secret_values

    def cache_key(self, requirements: list[str], platform: TargetPlatform) -> str:
        return resolution_key(applicable_requirements(canonical_requirements(requirements), platform), platform, self.index_url)

    def resolve(
        self, requirements: list[str], platform: TargetPlatform, *, admission: Admission | None = None, log_id: str | None = None
    ) -> list[Pin]:
        """The closure; ``admission`` (rate and concurrency limits) is entered only when pip must run."""
        canonical = canonical_requirements(requirements)
        try:
            canonical = applicable_requirements(canonical, platform)
        except Exception as error:  # packaging's InvalidRequirement / InvalidMarker
            raise InvalidRequirement(f"cannot evaluate requirement: {error}") from error
        if not canonical:
            return []
        key = resolution_key(canonical, platform, self.index_url)
        cached = self.cache.get(key)
        if cached is not None:
            return [Pin(**p) for p in cached]
        with admission() if admission else contextlib.nullcontext():
            pins = self._run_pip(sorted(set(canonical)), platform, log_id or "res-" + secrets.token_hex(8))
        self.cache.put(key, [p.model_dump() for p in pins], self.cache_ttl_seconds)
        return pins

    def _command(self, report: Path, target: Path, platform: TargetPlatform, requirements: list[str]) -> list[str]:
        command = [
            self.python, "-m", "pip", "install",
            "--isolated", "--disable-pip-version-check", "--no-input", "--no-color",
            "--keyring-provider", "disabled", "--progress-bar", "off",
            "--dry-run", "--ignore-installed", "--report", str(report),
            "--only-binary=:all:",
            "--python-version", platform.python_version,
            "--implementation", platform.implementation,
            "--abi", platform.abi, "--abi", "abi3", "--abi", "none",
            "--index-url", self.index_url,
            "--target", str(target),
        ]  # fmt: skip
        for tag in manylinux_platform_tags(platform.manylinux):
            command += ["--platform", tag]
        bundle = next((b for b in _CA_BUNDLES if os.path.exists(b)), None)
        if bundle:
            command += ["--cert", bundle]
        command += ["--cache-dir", str(self.pip_cache_dir)] if self._pip_cache_usable() else ["--no-cache-dir"]
        return command + ["--", *requirements]  # after "--" nothing is read as an option

    def _pip_cache_usable(self) -> bool:
        """pip's HTTP cache saves index downloads between runs; where it cannot be written (a
        read-only Lambda package), pip runs without one."""
        if self.pip_cache_dir is None:
            return False
        try:
            self.pip_cache_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError:
            return False
        return os.access(self.pip_cache_dir, os.W_OK)

    def _run_pip(self, requirements: list[str], platform: TargetPlatform, log_id: str) -> list[Pin]:
        parsed = [Requirement(r) for r in requirements]
        direct = {canonicalize_name(r.name) for r in parsed}
        chosen_extras: dict[str, set[str]] = {}
        for r in parsed:
            chosen_extras.setdefault(canonicalize_name(r.name), set()).update(canonicalize_name(e) for e in r.extras)
        with tempfile.TemporaryDirectory(prefix="skillharbor-resolve-") as workdir:
            work = Path(workdir)
            for private in ("home", "tmp", "cwd"):
                (work / private).mkdir(mode=0o700)
            report = work / "report.json"
            command = self._command(report, work / "target", platform, requirements)
            env = resolver_environment(home=work / "home", tmp=work / "tmp")
            try:
                completed = subprocess.run(
                    command, capture_output=True, text=True, encoding="utf-8", errors="replace", stdin=subprocess.DEVNULL,
                    timeout=self.timeout_seconds, env=env, cwd=work / "cwd",
                )  # fmt: skip
            except subprocess.TimeoutExpired as error:
                log.warning("resolution %s of %s timed out after %ss", log_id, requirements, self.timeout_seconds)
                raise TransientError(f"resolution timed out after {self.timeout_seconds}s (server log id {log_id})", log_id=log_id) from error
            if completed.returncode != 0:
                raise self._failure(completed, requirements, platform, log_id)
            data = json.loads(report.read_text())
        return _pins_from_report(data, direct, chosen_extras, target_marker_environment(platform), log_id)

    def _failure(self, completed: subprocess.CompletedProcess[str], requirements: list[str], platform: TargetPlatform, log_id: str) -> Exception:
        # pip prints the conflict's causes at info level (stdout) and the errors on stderr
        output = f"{completed.stdout}\n{completed.stderr}"
        tail = "\n".join(line for line in output.splitlines()[-_LOGGED_LINES:] if line.strip())
        log.warning("resolution %s failed (pip exit %s) for %s on %s; pip said:\n%s",
                    log_id, completed.returncode, requirements, platform.key, redact(tail, self.secret_values()))  # fmt: skip
        explanation = explain(output, platform, self.index, index_host=urllib.parse.urlsplit(self.index_url).netloc.rpartition("@")[2])
        message = f"{redact(explanation.summary, self.secret_values())} (server log id {log_id})"
        if explanation.transient:
            return TransientError(message, log_id=log_id)
        return ResolutionFailed(message, log_id=log_id, platform=describe(platform), **explanation.details)


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


def extra_dependencies(report: dict, chosen: dict[str, set[str]], environment: dict[str, str]) -> dict[str, str]:
    """Packages that only an extra the skill chose brings in: ``{package: "parent[extra]"}``.

    ``requests[socks]`` adds PySocks: the skill asked for it as surely as if it
    had named it, so it is checked like a direct requirement. An extra that
    enables other extras of the same package (``pkg[all]`` → ``pkg[excel]``)
    counts with them; what those packages need in turn is transitive as usual.
    """
    items = {canonicalize_name(i["metadata"]["name"]): i for i in report.get("install", [])}
    found: dict[str, str] = {}
    for parent, extras in sorted(chosen.items()):
        if not extras or parent not in items:
            continue
        requirements = []
        for line in items[parent]["metadata"].get("requires_dist") or []:
            with contextlib.suppress(Exception):
                requirements.append(Requirement(line))
        extras = set(extras)
        grew = True
        while grew:  # self-references: "pkg[excel]; extra == 'all'"
            grew = False
            for requirement in requirements:
                if canonicalize_name(requirement.name) == parent and requirement.marker is not None:
                    if any(requirement.marker.evaluate(dict(environment, extra=e)) for e in extras):
                        more = {canonicalize_name(e) for e in requirement.extras} - extras
                        extras |= more
                        grew = grew or bool(more)
        for requirement in requirements:
            needed = canonicalize_name(requirement.name)
            if needed == parent or needed not in items or requirement.marker is None:
                continue
            if requirement.marker.evaluate(dict(environment, extra="")):
                continue  # needed without any extra: an ordinary dependency
            hit = next((e for e in sorted(extras) if requirement.marker.evaluate(dict(environment, extra=e))), None)
            if hit is not None:
                found.setdefault(needed, f"{parent}[{hit}]")
    return found


def _pins_from_report(report: dict, direct: set[str], chosen_extras: dict[str, set[str]], environment: dict[str, str], log_id: str) -> list[Pin]:
    edges = dependency_edges(report, environment)
    via_extra = extra_dependencies(report, chosen_extras, environment)
    pins = []
    for item in report.get("install", []):
        metadata = item["metadata"]
        download = item.get("download_info") or {}
        name = canonicalize_name(metadata["name"])
        url = str(download.get("url") or "")
        filename = url.rsplit("/", 1)[-1].split("#", 1)[0]
        # belt and braces: the requirement check keeps paths and URLs from pip; this keeps them from a pin
        if item.get("is_direct") or "archive_info" not in download or not url.startswith(("https://", "http://")) or not filename.endswith(".whl"):
            log.error("resolution %s: %s %s did not come from the index as a wheel: %s", log_id, name, metadata.get("version"), redact(url))
            raise ResolutionFailed(f"{name} did not resolve to a wheel from the configured index (server log id {log_id})", log_id=log_id)
        try:
            Version(str(metadata["version"]))
        except InvalidVersion as error:
            raise ResolutionFailed(f"{name} has an invalid version in its metadata (server log id {log_id})", log_id=log_id) from error
        hashes = download["archive_info"].get("hashes", {})
        if "sha256" not in hashes:
            raise ResolutionFailed(f"the index gave no sha256 for {metadata['name']} {metadata['version']}")
        pins.append(
            Pin(
                name=name,
                version=metadata["version"],
                sha256=hashes["sha256"],
                url=url,
                filename=filename,
                direct=name in direct or name in via_extra,
                via_extra=via_extra.get(name) if name not in direct else None,
                requires=tuple(sorted(edges.get(name, ()))),
            )
        )
    return sorted(pins, key=lambda p: p.name)

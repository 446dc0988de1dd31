"""The base image every skill runs in (directly, or under an env layer).

Where the root filesystem comes from:

* ``configured``: ``settings.base_image`` (default ``python:3.11-slim``) when
  it is present locally or a pull succeeds within a short timeout;
* ``offline``: otherwise Debian bookworm ``minbase`` with ``python3`` and
  ``python3-venv`` is bootstrapped with debootstrap and ``docker import``-ed.
  The rootfs tarball is cached under ``<cache_dir>/base-image`` so a second
  build does not bootstrap again.

On top of either, one small layer adds the ``skill`` user (uid 10001) and
the ``harness`` user (uid 10000, the supervisor's, owner of the skill's files
at run time), a virtualenv at ``/opt/skillharbor/venv`` (created by the
image's own ``python3 -m venv``, so pip comes from the image's bundled
ensurepip wheel and is available offline for env builds), and the harness at
``/opt/skillharbor/harness.py`` with the skill's process program beside it
(``skill_child.py``). The harness is the container's init (PID 1): no init
binary is needed from the image or the host, so both sources work alike. The target platform (CPython version,
manylinux tag) is detected by running the root image, never hard-coded.

``python -m chalicelib.runner.base_image [--rebuild]`` prints the info as JSON.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Callable, Literal

import docker
import docker.errors
from pydantic import BaseModel

from chalicelib.child_env import child_environment
from chalicelib.errors import BuildFailed, RunnerUnavailable
from chalicelib.packages.pins import TargetPlatform
from chalicelib.runner import engine
from chalicelib.runner.harness import SKILL_UID, SUPERVISOR_UID  # uid == gid for both

log = logging.getLogger(__name__)

HARNESS_PATH = Path(__file__).with_name("harness.py")
CHILD_PATH = Path(__file__).with_name("skill_child.py")
WORKSPACE_IO_PATH = Path(__file__).with_name("workspace_io.py")  # command runs' file handling, beside the harness
RELAY_PATH = Path(__file__).with_name("egress_relay.py")
IN_IMAGE_HARNESS = "/opt/skillharbor/harness.py"
IN_IMAGE_CHILD = "/opt/skillharbor/skill_child.py"
IN_IMAGE_RELAY = "/opt/skillharbor/egress_relay.py"
IN_IMAGE_PYTHON = "/opt/skillharbor/venv/bin/python"
DEBIAN_SUITE = "bookworm"
DEBIAN_PACKAGES = ("python3", "python3-venv")
PULL_TIMEOUT_SECONDS = 20
LAYER_LABEL = "skillharbor.layer"

DETECT_SCRIPT = (
    "import json, platform, sys; "
    "name, version = platform.libc_ver(); "
    "print(json.dumps({'python': '%d.%d' % sys.version_info[:2], 'python_full': platform.python_version(), "
    "'libc': name, 'libc_version': version, 'machine': platform.machine()}))"
)

DOCKERFILE_TEMPLATE = """\
FROM {root}
USER 0:0
RUN set -eu; \\
    grep -q '^skill:' /etc/group || echo 'skill:x:{uid}:' >> /etc/group; \\
    grep -q '^skill:' /etc/passwd || echo 'skill:x:{uid}:{uid}:skillharbor skill:/tmp:/usr/sbin/nologin' >> /etc/passwd; \\
    grep -q '^harness:' /etc/group || echo 'harness:x:{supervisor_uid}:' >> /etc/group; \\
    grep -q '^harness:' /etc/passwd || echo 'harness:x:{supervisor_uid}:{supervisor_uid}:skillharbor supervisor:/nonexistent:/usr/sbin/nologin' >> /etc/passwd; \\
    python3 -m venv /opt/skillharbor/venv; \\
    /opt/skillharbor/venv/bin/python -m pip --version; \\
    rm -rf /root/.cache /tmp/* 2>/dev/null || true
COPY harness.py {harness}
COPY skill_child.py {child}
COPY workspace_io.py /opt/skillharbor/workspace_io.py
COPY egress_relay.py {relay}
ENV PATH=/opt/skillharbor/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \\
    HOME=/tmp LANG=C.UTF-8 PYTHONDONTWRITEBYTECODE=1
WORKDIR /tmp
LABEL skillharbor.managed="true" skillharbor.role="base" \\
      skillharbor.python="{python}" skillharbor.python_full="{python_full}" \\
      skillharbor.manylinux="{manylinux}" skillharbor.source="{source}" \\
      skillharbor.root="{root_id}" {layer_label}="{layer_key}"
USER {uid}:{uid}
"""


class BaseImageInfo(BaseModel):
    tag: str
    image_id: str
    python_version: str  # major.minor, e.g. "3.11"
    python_full: str = ""
    manylinux_tag: str
    source: Literal["configured", "offline"]
    built: bool = False  # False when an existing image was reused

    @property
    def target_platform(self) -> TargetPlatform:
        return TargetPlatform(python_version=self.python_version, manylinux=self.manylinux_tag)


def layer_key() -> str:
    """Changes whenever the harness, the child program or the Dockerfile template change."""
    digest = hashlib.sha256()
    digest.update(DOCKERFILE_TEMPLATE.encode())
    digest.update(HARNESS_PATH.read_bytes())
    digest.update(CHILD_PATH.read_bytes())
    digest.update(WORKSPACE_IO_PATH.read_bytes())
    digest.update(RELAY_PATH.read_bytes())
    return digest.hexdigest()[:32]


def manylinux_tag(libc: str, libc_version: str, machine: str) -> str:
    if libc != "glibc" or not libc_version:
        raise BuildFailed(f"base image libc is {libc or 'unknown'!r}; only glibc (manylinux) images are supported")
    major, minor = libc_version.split(".")[:2]
    return f"manylinux_{major}_{minor}_{machine}"


def _info_from_image(image: Any, tag: str, built: bool) -> BaseImageInfo:
    labels = image.labels or {}
    return BaseImageInfo(
        tag=tag,
        image_id=image.id,
        python_version=labels["skillharbor.python"],
        python_full=labels.get("skillharbor.python_full", ""),
        manylinux_tag=labels["skillharbor.manylinux"],
        source=labels.get("skillharbor.source", "offline"),
        built=built,
    )


def _existing(client: docker.DockerClient, ref: str) -> Any | None:
    try:
        return client.images.get(ref)
    except docker.errors.ImageNotFound:
        return None


def _configured_root(client: docker.DockerClient, reference: str) -> Any | None:
    image = _existing(client, reference)
    if image is not None:
        return image
    repository, _, tag = reference.rpartition(":") if ":" in reference.split("/")[-1] else (reference, "", "latest")
    api = engine.api_with_timeout(client, PULL_TIMEOUT_SECONDS)
    try:
        api.pull(repository, tag=tag or "latest")
    except Exception as exc:  # no registry, timeout, auth: all mean "use the offline path"
        log.info("pull of %s failed (%s); building the base offline", reference, str(exc)[:200])
        return None
    return _existing(client, reference)


def _debian_mirror(settings: Any) -> str:
    return getattr(settings, "debian_mirror", None) or "http://deb.debian.org/debian"


def _rootfs_key(settings: Any) -> str:
    spec = json.dumps([DEBIAN_SUITE, "minbase", sorted(DEBIAN_PACKAGES), _debian_mirror(settings)])
    return hashlib.sha256(spec.encode()).hexdigest()[:12]


def _offline_root(client: docker.DockerClient, settings: Any) -> Any:
    """Import (and if needed bootstrap) the Debian root filesystem image."""
    key = _rootfs_key(settings)
    root_tag = f"skillharbor/rootfs:{DEBIAN_SUITE}-{key}"
    image = _existing(client, root_tag)
    if image is not None:
        return image
    cache = Path(settings.cache_dir) / "base-image"
    cache.mkdir(parents=True, exist_ok=True)
    tarball = cache / f"{DEBIAN_SUITE}-minbase-{key}.tar"
    if not tarball.exists():
        _debootstrap_tarball(tarball, _debian_mirror(settings))
    repository, tag = root_tag.split(":")
    changes = [
        'LABEL skillharbor.managed="true" skillharbor.role="rootfs"',
        "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin LANG=C.UTF-8",
    ]
    api = engine.api_with_timeout(client, 600)
    try:
        api.import_image_from_file(str(tarball), repository=repository, tag=tag, changes=changes)
    except docker.errors.APIError as exc:
        raise BuildFailed(f"docker import of {tarball} failed: {exc}") from exc
    return client.images.get(root_tag)


def _debootstrap_tarball(tarball: Path, mirror: str) -> None:
    debootstrap = shutil.which("debootstrap") or "/usr/sbin/debootstrap"
    if not os.path.exists(debootstrap):
        raise BuildFailed("no base image available: the configured image cannot be pulled and debootstrap is not installed")
    work = Path(tempfile.mkdtemp(prefix="rootfs-", dir=tarball.parent))
    rootfs = work / "rootfs"
    try:
        command = [
            debootstrap,
            "--variant=minbase",
            f"--include={','.join(DEBIAN_PACKAGES)}",
            DEBIAN_SUITE,
            str(rootfs),
            mirror,
        ]
        log.info("bootstrapping %s (takes about a minute)", " ".join(command))
        done = subprocess.run(command, capture_output=True, text=True, env=child_environment())  # no secrets for it
        if done.returncode != 0:
            tail = "\n".join((done.stdout + done.stderr).splitlines()[-20:])
            raise BuildFailed(f"debootstrap failed (exit {done.returncode})", build_log_tail=tail)
        # shrink: package caches and lists are useless in a sandbox without network
        for leftover in ("var/cache/apt/archives", "var/lib/apt/lists"):
            for child in (rootfs / leftover).glob("*"):
                if child.is_file():
                    child.unlink()
        partial = tarball.with_suffix(".partial")
        subprocess.run(["tar", "--numeric-owner", "-C", str(rootfs), "-cf", str(partial), "."], check=True, env=child_environment())
        partial.rename(tarball)  # atomic: a crash never leaves a truncated cache
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _is_base_for(image: Any, key: str) -> bool:
    labels = image.labels or {}
    return (labels.get(engine.ROLE_LABEL) == "base" and labels.get(LAYER_LABEL) == key
            and bool(labels.get("skillharbor.python")) and bool(labels.get("skillharbor.manylinux")))  # fmt: skip


def _remove_quietly(client: docker.DockerClient, image_id: str) -> None:
    """Drop a replaced base image; kept when env images or containers still use it."""
    try:
        client.images.remove(image_id, noprune=False)
    except docker.errors.APIError:
        pass


def ensure_base_image(client: docker.DockerClient, settings: Any, *, rebuild: bool = False,
                      pull: Callable[[], Any] | None = None) -> BaseImageInfo:  # fmt: skip
    """Return the base image, building it only when missing or outdated.

    ``pull``: asked first when the image is missing or outdated (runner/shared_base.py: the fleet's base by
    digest from the registry); what it returns is used only when it carries this harness layer's key and
    the base labels, otherwise the base is built here as always."""
    tag = settings.base_image_tag
    key = layer_key()
    try:
        current = _existing(client, tag)
        if current is not None and not rebuild and (current.labels or {}).get(LAYER_LABEL) == key:
            return _info_from_image(current, tag, built=False)
        pulled = pull() if pull is not None and not rebuild else None
        if pulled is not None and _is_base_for(pulled, key):
            if current is not None and current.id != pulled.id:
                _remove_quietly(client, current.id)
            return _info_from_image(client.images.get(tag), tag, built=False)

        root = _configured_root(client, settings.base_image)
        source = "configured"
        if root is None:
            root, source = _offline_root(client, settings), "offline"
        root_ref = root.tags[0] if root.tags else root.id
        facts = engine.run_probe(client, root_ref, DETECT_SCRIPT)
        manylinux = manylinux_tag(facts["libc"], facts["libc_version"], facts["machine"])
        dockerfile = DOCKERFILE_TEMPLATE.format(
            root=root_ref,
            root_id=root.id,
            python=facts["python"],
            python_full=facts["python_full"],
            manylinux=manylinux,
            source=source,
            uid=SKILL_UID,
            supervisor_uid=SUPERVISOR_UID,
            harness=IN_IMAGE_HARNESS,
            child=IN_IMAGE_CHILD,
            relay=IN_IMAGE_RELAY,
            layer_label=LAYER_LABEL,
            layer_key=key,
        )
        context = engine.tar_context({"Dockerfile": dockerfile, "harness.py": HARNESS_PATH.read_bytes(),
                                      "skill_child.py": CHILD_PATH.read_bytes(), "workspace_io.py": WORKSPACE_IO_PATH.read_bytes(),
                                      "egress_relay.py": RELAY_PATH.read_bytes()})
        engine.build_image(client, context, tag)
        built = client.images.get(tag)
        if current is not None and current.id != built.id:
            _remove_quietly(client, current.id)
        return _info_from_image(built, tag, built=True)
    except docker.errors.DockerException as exc:
        if engine.is_unreachable(exc):
            raise RunnerUnavailable(f"Docker engine unreachable while preparing the base image: {exc}") from exc
        raise BuildFailed(f"base image build failed: {exc}") from exc
    except engine.UNREACHABLE_ERRORS as exc:
        raise RunnerUnavailable(f"Docker engine unreachable while preparing the base image: {exc}") from exc


def main(argv: list[str] | None = None) -> int:
    import argparse

    from chalicelib.settings import get_settings

    parser = argparse.ArgumentParser(description="Build or reuse the skillharbor base image.")
    parser.add_argument("--rebuild", action="store_true", help="rebuild the top layer even if it is current")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    try:
        client = engine.connect()
        info = ensure_base_image(client, get_settings(), rebuild=args.rebuild)
    except (RunnerUnavailable, BuildFailed) as exc:
        print(json.dumps(exc.to_dict()), file=sys.stderr)
        return 1
    print(json.dumps(info.model_dump()))
    return 0


if __name__ == "__main__":
    sys.exit(main())

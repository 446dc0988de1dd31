"""Content-addressed skill images built offline from exactly the pinned wheels.

* Wheels are downloaded on the host into a wheelhouse keyed by sha256
  (``<cache_dir>/wheelhouse/<sha256>/<filename>``), verified on download and
  again on every use. Only ``https://`` URLs on the index's file hosts
  (``Settings.wheel_hosts``: files.pythonhosted.org for PyPI) are fetched, and
  a redirect must stay on them: a pin naming ``file://``, plain ``http://``,
  another host or a redirect elsewhere is refused before anything is read.
* The tag is ``skillharbor/env:<sha256(base image id + closure digest)[:32]>``:
  an unchanged package set on an unchanged base is never rebuilt, and skills
  with the same set share one image.
* Each verified wheel is installed on the host into a staging tree (pypa's
  ``installer``: the wheel format's rules, RECORD hashes checked; see
  ``wheel_staging``), compiled, and cached by its sha256. The image is the
  base plus ONE layer made from those trees: a container of the base is
  created with no network, the layer is copied in as a tar and the container
  is committed. Nothing of the wheelhouse reaches the image, and the base's
  venv is never copied (the two-stage ``docker build`` this replaced spent
  most of its time copying the whole venv into a new layer on
  fuse-overlayfs, and ran pip inside it).
* Byte-code is compiled once at build time, in parallel (on the host when
  its Python has the target's minor version, else inside the build
  container): the sandbox's root is read-only, so an uncompiled package would
  be compiled again on every cold import.
* The wheel's tags must suit the base's interpreter, as pip would insist.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Sequence

import docker
import docker.errors
from pydantic import BaseModel, Field

from chalicelib.errors import BuildFailed, RunnerUnavailable
from chalicelib.packages.pins import Pin, closure_digest
from chalicelib.runner import engine, host_cache, wheel_staging
from chalicelib.runner.base_image import BaseImageInfo
from chalicelib.runner.intake import ENV_REPOSITORY

DOWNLOAD_TIMEOUT_SECONDS = 60
CHUNK = 1024 * 1024
BUILD_TIMEOUT_SECONDS = 900
PARALLEL_DOWNLOADS = 8
VENV = wheel_staging.VENV
#: run in the build container only when the host cannot compile for the target Python
COMPILE_COMMAND = [f"{VENV}/bin/python", "-m", "compileall", "-q", "-j", "0", f"{VENV}/lib"]


class ImageInfo(BaseModel):
    tag: str
    image_id: str
    created: str = ""
    size: int = 0
    build_log: list[str] = Field(default_factory=list)
    built: bool = False  # False when an existing image was returned
    #: seconds per build phase (download, install, layer) when built now
    phases: dict[str, float] = Field(default_factory=dict)
    #: manifest digest in the shared registry, once pushed there (or pulled from it)
    registry_digest: str = ""
    pulled: bool = False  # True when the image came from the registry instead of a build


def url_problem(url: str, hosts: frozenset[str]) -> str | None:
    """Why a wheel may not be downloaded from ``url``, or None (``hosts``: lower-case host or host:port)."""
    try:
        parsed = urllib.parse.urlsplit(url)
        port = parsed.port
    except ValueError:
        return f"{url[:200]!r} is not a valid URL"
    if parsed.scheme != "https":
        return f"only https:// downloads are allowed, not {parsed.scheme or 'a relative URL'}:"
    host = (parsed.hostname or "").lower()
    if parsed.username or parsed.password or not (host in hosts or (port is not None and f"{host}:{port}" in hosts)):
        return f"{host or 'no host'} is not the package index's file host ({', '.join(sorted(hosts))})"
    return None


class _IndexOnlyRedirects(urllib.request.HTTPRedirectHandler):
    """A redirect is followed only to another URL that could have been pinned."""

    def __init__(self, hosts: frozenset[str]):
        self.hosts = hosts

    def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str) -> Any:
        problem = url_problem(newurl, self.hosts)
        if problem:
            raise urllib.error.URLError(f"redirected to {newurl[:200]}: {problem}")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


class Wheelhouse:
    """Host-side cache of verified wheel files, keyed by sha256."""

    def __init__(self, root: Path | str, *, hosts: frozenset[str] | None = None):
        """``hosts``: where wheels may come from (default: the settings' ``wheel_hosts``)."""
        self.root = Path(root)
        self._hosts = hosts

    @property
    def hosts(self) -> frozenset[str]:
        if self._hosts is None:
            from chalicelib.settings import get_settings

            return get_settings().wheel_hosts
        return self._hosts

    def path_for(self, pin: Pin) -> Path:
        return self.root / pin.sha256 / _filename(pin)

    def fetch(self, pin: Pin) -> Path:
        """The verified wheel for ``pin``, downloading it if needed."""
        if not pin.url:
            raise BuildFailed(f"{pin.name}=={pin.version}: the pin has no download URL", package=pin.name)
        hosts = self.hosts
        problem = url_problem(pin.url, hosts)
        if problem:  # checked even for a cached file: such a pin is not one the resolver made
            raise BuildFailed(f"{pin.name}=={pin.version}: download refused: {problem}", package=pin.name)
        target = self.path_for(pin)
        if target.exists():
            if _sha256(target) == pin.sha256:
                host_cache.touch(target.parent)  # used now: the schedule's cache expiry keeps it
                return target
            target.unlink()  # tampered or corrupt cache entry: fetch again
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".partial")
        digest = hashlib.sha256()
        try:
            request = urllib.request.Request(pin.url, headers={"User-Agent": "skillharbor-wheelhouse"})
            opener = urllib.request.build_opener(_IndexOnlyRedirects(hosts))
            with opener.open(request, timeout=DOWNLOAD_TIMEOUT_SECONDS) as response, open(partial, "wb") as out:
                while chunk := response.read(CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
        except (urllib.error.URLError, OSError, ValueError) as exc:
            partial.unlink(missing_ok=True)
            raise BuildFailed(f"{pin.name}=={pin.version}: download of {pin.url} failed: {exc}", package=pin.name) from exc
        if digest.hexdigest() != pin.sha256:
            partial.unlink(missing_ok=True)
            raise BuildFailed(
                f"{pin.name}=={pin.version}: sha256 mismatch for {_filename(pin)} "
                f"(pinned {pin.sha256}, downloaded {digest.hexdigest()})",
                package=pin.name,
            )
        os.replace(partial, target)
        return target

    def fetch_all(self, pins: Sequence[Pin]) -> dict[str, Path]:
        """Every pin's verified wheel, downloads in parallel (the first failure is raised)."""
        if len(pins) <= 1:
            return {pin.name: self.fetch(pin) for pin in pins}
        with ThreadPoolExecutor(max_workers=min(PARALLEL_DOWNLOADS, len(pins)), thread_name_prefix="wheel") as pool:
            paths = list(pool.map(self.fetch, pins))
        return {pin.name: path for pin, path in zip(pins, paths)}


def _filename(pin: Pin) -> str:
    name = pin.filename or os.path.basename(urllib.parse.urlparse(pin.url).path)
    if not name.endswith(".whl") or "/" in name or name.startswith("."):
        raise BuildFailed(f"{pin.name}=={pin.version}: only wheels can be installed offline (got {name!r})", package=pin.name)
    return name


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def env_tag(base_image_id: str, pins: Sequence[Pin]) -> str:
    key = hashlib.sha256(f"{base_image_id}\n{closure_digest(list(pins))}".encode()).hexdigest()
    return f"{ENV_REPOSITORY}:{key[:32]}"


def pins_label(pins: Sequence[Pin]) -> str:
    return json.dumps(sorted(f"{p.name}=={p.version}" for p in pins), separators=(",", ":"))


def _image_info(image: Any, tag: str, build_log: list[str], built: bool) -> ImageInfo:
    attrs = image.attrs or {}
    return ImageInfo(
        tag=tag,
        image_id=image.id,
        created=attrs.get("Created", ""),
        size=int(attrs.get("Size") or 0),
        build_log=build_log,
        built=built,
    )


def find_image(client: docker.DockerClient, tag: str) -> Any | None:
    """The image with ``tag``, or None. RunnerUnavailable when the engine is away."""
    try:
        return client.images.get(tag)
    except docker.errors.ImageNotFound:
        return None
    except docker.errors.DockerException as exc:
        if engine.is_unreachable(exc):
            raise RunnerUnavailable(f"Docker engine unreachable: {exc}") from exc
        raise
    except engine.UNREACHABLE_ERRORS as exc:
        raise RunnerUnavailable(f"Docker engine unreachable: {exc}") from exc


def build_image(
    client: docker.DockerClient,
    base: BaseImageInfo,
    pins: Sequence[Pin],
    *,
    wheelhouse: Wheelhouse | None = None,
) -> ImageInfo:
    """The image for ``pins`` on ``base``: existing (no build) or built now.

    Raises BuildFailed (download, hash or pip failure; message and
    ``details['build_log_tail']`` say why) or RunnerUnavailable.
    """
    try:
        if not pins:
            image = client.images.get(base.tag)
            return _image_info(image, base.tag, [], built=False)
        tag = env_tag(base.image_id, pins)
        existing = find_image(client, tag)
        if existing is not None:
            return _image_info(existing, tag, [], built=False)

        if wheelhouse is None:
            from chalicelib.settings import get_settings

            wheelhouse = Wheelhouse(Path(get_settings().cache_dir) / "wheelhouse")
        phases: dict[str, float] = {}
        started = time.perf_counter()
        with host_cache.build_lease(wheelhouse.root):  # the cache's expiry waits for this build
            wheels = wheelhouse.fetch_all(pins)
            phases["download"] = round(time.perf_counter() - started, 3)
            log = _stage_and_layer(client, base, pins, wheels, tag, phases, wheelhouse.root / host_cache.STAGED_DIR)
        info = _image_info(client.images.get(tag), tag, log, built=True)
        info.phases = phases
        return info
    except docker.errors.DockerException as exc:
        if engine.is_unreachable(exc):
            raise RunnerUnavailable(f"Docker engine unreachable during the image build: {exc}") from exc
        raise BuildFailed(f"image build failed: {exc}") from exc
    except engine.UNREACHABLE_ERRORS as exc:
        raise RunnerUnavailable(f"Docker engine unreachable during the image build: {exc}") from exc


def _stage_and_layer(
    client: docker.DockerClient,
    base: BaseImageInfo,
    pins: Sequence[Pin],
    wheels: dict[str, Path],
    tag: str,
    phases: dict[str, float],
    staging_root: Path,
) -> list[str]:
    """Stage ``wheels`` on the host and register them on top of ``base`` as one layer, tagged ``tag``."""
    started = time.perf_counter()
    ordered = sorted(pins, key=lambda p: p.name)
    for pin in ordered:
        wheel_staging.check_wheel_tags(pin, _filename(pin), base.target_platform)
    try:
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="stage") as pool:
            trees = list(pool.map(
                lambda pin: wheel_staging.stage_wheel(wheels[pin.name], pin.sha256, staging_root, base.python_version),
                ordered,
            ))
    except BuildFailed as exc:
        raise BuildFailed(f"image build failed for {tag}: {exc.message}", build_log_tail=exc.message) from exc
    phases["install"] = round(time.perf_counter() - started, 3)
    started = time.perf_counter()
    with tempfile.TemporaryFile() as layer:
        files = wheel_staging.write_layer(trees, base.python_version, layer)
        log = [f"staged {len(ordered)} wheels ({files} files)"]
        if wheel_staging.host_can_compile(base.python_version):
            _load_as_image(client, base, pins, layer, tag)
        else:
            log += _commit_compiled(client, base, pins, layer, tag)
    phases["layer"] = round(time.perf_counter() - started, 3)
    log.append("phases (s): " + ", ".join(f"{k} {v}" for k, v in phases.items()))
    return log


def _load_as_image(client: docker.DockerClient, base: BaseImageInfo, pins: Sequence[Pin], layer: Any, tag: str) -> None:
    """Register ``base`` + ``layer`` as ``tag`` through ``docker load``.

    The archive holds a config naming the base's layers and the new one, but
    only the new layer's file: the engine finds the base's layers by their
    chain id and unpacks just the new one, onto its own filesystem (as a pull
    does), which is several times faster than writing it through a container.
    """
    digest = hashlib.sha256()
    layer.seek(0)
    while chunk := layer.read(CHUNK):
        digest.update(chunk)
    size = layer.tell()
    attrs = client.images.get(base.image_id).attrs
    settings = dict(attrs.get("Config") or {})
    settings["Labels"] = {**(settings.get("Labels") or {}), **_env_labels(base, pins)}
    config = json.dumps({
        "architecture": attrs.get("Architecture", "amd64"),
        "os": attrs.get("Os", "linux"),
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "config": settings,
        "rootfs": {"type": "layers", "diff_ids": [*attrs["RootFS"]["Layers"], f"sha256:{digest.hexdigest()}"]},
    }, separators=(",", ":")).encode()
    config_name = f"{hashlib.sha256(config).hexdigest()}.json"
    layer_names = [f"{d.split(':', 1)[1]}/layer.tar" for d in attrs["RootFS"]["Layers"]] + [f"{digest.hexdigest()}/layer.tar"]
    manifest = json.dumps([{"Config": config_name, "RepoTags": [tag], "Layers": layer_names}]).encode()
    with tempfile.TemporaryFile() as archive:
        with tarfile.open(fileobj=archive, mode="w") as tar:
            for name, data in ((config_name, config), ("manifest.json", manifest)):
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
            info = tarfile.TarInfo(layer_names[-1])
            info.size = size
            layer.seek(0)
            tar.addfile(info, layer)
        archive.seek(0)
        client.images.load(archive)


def _commit_compiled(client: docker.DockerClient, base: BaseImageInfo, pins: Sequence[Pin], layer: Any, tag: str) -> list[str]:
    """``layer`` copied into a container of ``base``, compiled there by the target's Python, committed as ``tag``."""
    container = client.containers.create(
        base.image_id,
        COMPILE_COMMAND,
        user="0:0",
        network_mode="none",
        labels={engine.MANAGED_LABEL: "true", engine.ROLE_LABEL: "build", engine.CREATOR_LABEL: engine.creator()},
    )
    try:
        layer.seek(0)
        container.put_archive("/", layer)
        container.start()
        exit_code = int(container.wait(timeout=BUILD_TIMEOUT_SECONDS).get("StatusCode", -1))
        log = [line for line in container.logs().decode(errors="replace").splitlines() if line.strip()]
        if exit_code != 0:
            raise BuildFailed(
                f"image build failed for {tag}: byte-code compilation exited with status {exit_code}",
                build_log_tail="\n".join(log[-30:]),
            )
        repository, _, version = tag.rpartition(":")
        base_user = (client.images.get(base.image_id).attrs.get("Config") or {}).get("User") or "10001:10001"
        labels = {**_env_labels(base, pins), engine.CREATOR_LABEL: ""}  # the build container's label is not the image's
        changes = ["LABEL " + " ".join(f"{k}={json.dumps(v)}" for k, v in labels.items()), f"USER {base_user}",
                   f'CMD ["{VENV}/bin/python"]']
        container.commit(repository=repository, tag=version, changes=changes)
        return log
    finally:
        try:
            container.remove(force=True)
        except docker.errors.DockerException:
            pass  # a leftover build container carries our creator label: the runner's stop removes it


def _env_labels(base: BaseImageInfo, pins: Sequence[Pin]) -> dict[str, str]:
    return {
        engine.MANAGED_LABEL: "true",
        engine.ROLE_LABEL: "env",
        "skillharbor.closure": closure_digest(list(pins)),
        "skillharbor.pins": pins_label(pins),
        "skillharbor.base": base.image_id,
    }

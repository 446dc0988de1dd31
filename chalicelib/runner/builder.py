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
* The build runs with ``network_mode="none"``: pip installs with
  ``--no-index --no-deps --require-hashes`` into the base image's virtualenv
  (``/opt/skillharbor/venv``, whose pip comes from the base image itself).
* Wheels never reach the final image: a first stage holds them and runs pip,
  the final stage copies only the virtualenv. The first stage's intermediate
  images (labelled ``skillharbor.stage=wheels``) are pruned after the build.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Sequence

import docker
import docker.errors
from pydantic import BaseModel, Field

from chalicelib.errors import BuildFailed, RunnerUnavailable
from chalicelib.packages.pins import Pin, closure_digest
from chalicelib.runner import engine
from chalicelib.runner.base_image import BaseImageInfo
from chalicelib.runner.intake import ENV_REPOSITORY
DOWNLOAD_TIMEOUT_SECONDS = 60
CHUNK = 1024 * 1024
STAGE_LABEL = "skillharbor.stage"

DOCKERFILE_TEMPLATE = """\
FROM {base} AS wheels
LABEL {stage_label}="wheels"
USER 0:0
COPY wheels/ /wheels/
RUN /opt/skillharbor/venv/bin/python -m pip install --no-index --no-deps --require-hashes \\
        --no-cache-dir --disable-pip-version-check --find-links /wheels -r /wheels/requirements.txt

FROM {base}
COPY --from=wheels /opt/skillharbor/venv /opt/skillharbor/venv
LABEL skillharbor.managed="true" skillharbor.role="env" skillharbor.closure="{closure}" \\
      skillharbor.pins='{pins}' skillharbor.base="{base_id}"
"""


class ImageInfo(BaseModel):
    tag: str
    image_id: str
    created: str = ""
    size: int = 0
    build_log: list[str] = Field(default_factory=list)
    built: bool = False  # False when an existing image was returned


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
        return {pin.name: self.fetch(pin) for pin in pins}


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
        files: dict[str, bytes | str] = {}
        for pin in pins:
            files[f"wheels/{_filename(pin)}"] = wheelhouse.fetch(pin).read_bytes()
        files["wheels/requirements.txt"] = "".join(p.requirement_line + "\n" for p in sorted(pins, key=lambda p: p.name))
        files["Dockerfile"] = DOCKERFILE_TEMPLATE.format(
            base=base.image_id,
            stage_label=STAGE_LABEL,
            closure=closure_digest(list(pins)),
            pins=pins_label(pins),
            base_id=base.image_id,
        )
        with _BuildsInProgress(wheelhouse.root) as builds:
            try:
                _, log = engine.build_image(client, engine.tar_context(files), tag)
            finally:
                if builds.last_one():
                    _prune_wheel_stages(client)
        return _image_info(client.images.get(tag), tag, log, built=True)
    except docker.errors.DockerException as exc:
        if engine.is_unreachable(exc):
            raise RunnerUnavailable(f"Docker engine unreachable during the image build: {exc}") from exc
        raise BuildFailed(f"image build failed: {exc}") from exc
    except engine.UNREACHABLE_ERRORS as exc:
        raise RunnerUnavailable(f"Docker engine unreachable during the image build: {exc}") from exc


class _BuildsInProgress:
    """Every build holds a shared lock on the wheelhouse; pruning the wheel
    stages needs it alone. A prune while another build sits between its two
    stages would delete the dangling stage that build is about to copy from.
    flock works across the worker's threads (one open file each) and across
    workers on one host; the build that cannot take it leaves the prune to
    the last one."""

    def __init__(self, directory: Path):
        directory.mkdir(parents=True, exist_ok=True)
        self.path = directory / ".builds.lock"
        self.fd = -1

    def __enter__(self) -> _BuildsInProgress:
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_SH)
        return self

    def last_one(self) -> bool:
        try:
            fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True

    def __exit__(self, *exc: object) -> None:
        os.close(self.fd)  # releases the lock


def _prune_wheel_stages(client: docker.DockerClient) -> None:
    """Drop the wheel-holding first-stage images (prune removes leaves only,
    so repeat until nothing is left)."""
    for _ in range(8):
        try:
            pruned = client.images.prune(filters={"dangling": True, "label": f"{STAGE_LABEL}=wheels"})
        except docker.errors.APIError:
            return
        if not pruned.get("ImagesDeleted"):
            return

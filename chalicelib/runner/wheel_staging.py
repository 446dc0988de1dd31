"""Wheels installed on the host into a staging tree, one cached tree per wheel.

An env image is the base image plus one layer: the files pip would have put in
the base's virtualenv. Installing a wheel is unpacking it by the rules of the
wheel format (scheme paths, console-script launchers, RECORD), which pypa's
``installer`` library implements; doing it on the host's own filesystem is far
faster than inside a container on fuse-overlayfs, and the unpacked, compiled
tree of each wheel is kept (keyed by its sha256, the target Python and the
venv path), so a set sharing numpy with an earlier one does not unpack numpy
again.

Byte-code is compiled here only when the host's Python has the target's
minor version (same magic number); otherwise the builder compiles inside the
container.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import IO, Iterable, Sequence

from packaging.utils import InvalidWheelFilename, parse_wheel_filename

from chalicelib.errors import BuildFailed
from chalicelib.packages.pins import Pin, TargetPlatform
from chalicelib.packages.targets import describe, supported_wheel_tags
from chalicelib.runner import host_cache

VENV = "/opt/skillharbor/venv"
_TEST_SUITES = re.compile(r"/site-packages/[^/]+/(?:.+/)?tests/")
COMPILE_TIMEOUT_SECONDS = 600
#: bump when the staged layout changes, so old cache entries are not reused
LAYOUT_VERSION = "2"


def host_can_compile(python_version: str) -> bool:
    """True when byte-code compiled by this interpreter is valid for ``python_version`` (major.minor)."""
    return f"{sys.version_info.major}.{sys.version_info.minor}" == python_version


def check_wheel_tags(pin: Pin, filename: str, platform: TargetPlatform) -> None:
    """Refuse a wheel the target interpreter could not install (pip would, inside the container)."""
    try:
        _, _, _, tags = parse_wheel_filename(filename)
    except InvalidWheelFilename as exc:
        raise BuildFailed(f"{pin.name}=={pin.version}: {filename!r} is not a valid wheel file name", package=pin.name) from exc
    if not tags & supported_wheel_tags(platform):
        raise BuildFailed(
            f"{pin.name}=={pin.version}: {filename} does not install on {describe(platform)}", package=pin.name
        )


def site_packages(python_version: str) -> str:
    return f"{VENV}/lib/python{python_version}/site-packages"


def stage_wheel(wheel: Path, sha256: str, cache_root: Path, python_version: str) -> Path:
    """The cached staging tree of ``wheel`` (a root holding ``opt/skillharbor/venv/...``), made if needed."""
    compiled = host_can_compile(python_version)
    key = f"{sha256}-py{python_version}-{'c' if compiled else 'n'}{LAYOUT_VERSION}"
    target = cache_root / key
    if target.is_dir():
        host_cache.touch(target)
        return target
    cache_root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{sha256[:12]}-", dir=cache_root))
    try:
        _install(wheel, work, python_version)
        if compiled:
            _compile(work, python_version)
        try:
            os.rename(work, target)  # atomic: a concurrent build staging the same wheel wins or loses whole
        except OSError:
            if not target.is_dir():
                raise
            shutil.rmtree(work, ignore_errors=True)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    return target


def _install(wheel: Path, root: Path, python_version: str) -> None:
    from installer import install
    from installer.destinations import SchemeDictionaryDestination
    from installer.sources import WheelFile

    site = site_packages(python_version)
    schemes = {
        "purelib": site,
        "platlib": site,
        "headers": f"{VENV}/include/site/python{python_version}",
        "scripts": f"{VENV}/bin",
        "data": VENV,
    }
    destination = SchemeDictionaryDestination(
        schemes, interpreter=f"{VENV}/bin/python", script_kind="posix", destdir=str(root)
    )
    try:
        with WheelFile.open(wheel) as source:
            source.validate_record()  # every file's hash as the wheel's RECORD declares it
            install(source, destination, additional_metadata={"INSTALLER": b"skillharbor\n"})
    except Exception as exc:  # installer raises plain exceptions for a malformed wheel
        raise BuildFailed(f"{wheel.name} could not be installed: {exc}") from exc


def _compile(root: Path, python_version: str) -> None:
    site = root / site_packages(python_version).lstrip("/")
    if not site.is_dir():
        return
    # ddir: tracebacks name the path inside the image. A file that does not compile (py2-only
    # test data in some wheels) is skipped, as pip skips it. Packages' own test suites are not
    # compiled: they are most of the files of numpy or pandas (1,143 of pandas's 1,440) and
    # almost never imported by a skill; one that does compiles them in memory.
    # In a child interpreter, not compile_dir(workers=0) here: its process pool forks this (threaded)
    # worker, and a child forked while another thread held a lock (logging, imports) hangs forever.
    # Exit status 1 only says some file did not compile, which is skipped as above.
    argv = [sys.executable, "-m", "compileall", "-q", "-q", "-f", "-j", "0", "-d", site_packages(python_version),
            "-x", _TEST_SUITES.pattern, str(site)]  # fmt: skip
    try:
        subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                       timeout=COMPILE_TIMEOUT_SECONDS, check=False)  # fmt: skip
    except subprocess.TimeoutExpired as error:
        raise BuildFailed(f"compiling the staged packages took over {COMPILE_TIMEOUT_SECONDS} s") from error


def write_layer(trees: Sequence[Path], python_version: str, out: IO[bytes]) -> int:
    """Write the union of staged ``trees`` as one tar (root-owned) to ``out``; the number of files.

    The base's own directories (``/opt`` down to ``site-packages`` and the
    venv's ``bin``) are not written, so their modes stay as the base has them.
    A later tree's file replaces an earlier one's, as a later
    ``pip install --no-deps`` would.
    """
    base_dirs = set(_parents(site_packages(python_version).lstrip("/"))) | set(_parents(f"{VENV}/bin".lstrip("/")))
    entries: dict[str, Path] = {}
    for tree in trees:
        for path in _walk(tree):
            entries[path.relative_to(tree).as_posix()] = path
    count = 0
    with tarfile.open(fileobj=out, mode="w", format=tarfile.PAX_FORMAT) as archive:
        for name in sorted(entries):
            if name in base_dirs:
                continue
            info = archive.gettarinfo(str(entries[name]), arcname=name)
            info.uid = info.gid = 0
            info.uname = info.gname = "root"
            if info.isfile():
                info.mode = 0o755 if info.mode & 0o111 else 0o644
                with open(entries[name], "rb") as fh:
                    archive.addfile(info, fh)
                count += 1
            else:  # a directory or a symlink
                if info.isdir():
                    info.mode = 0o755
                archive.addfile(info)
    out.seek(0)
    return count


def _walk(tree: Path) -> Iterable[Path]:
    for directory, dirs, files in os.walk(tree):
        base = Path(directory)
        if base != tree:
            yield base
        for name in files:
            yield base / name
        for name in dirs:
            if (base / name).is_symlink():
                yield base / name


def _parents(path: str) -> list[str]:
    """``a``, ``a/b``, ``a/b/c`` for ``a/b/c``."""
    parts = path.split("/")
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]

"""The target interpreter as pip and packaging see it: platform tags, wheel tags, marker values."""

from __future__ import annotations

import functools

from packaging.tags import Tag, compatible_tags, cpython_tags

from chalicelib.packages.pins import TargetPlatform

#: the ABIs a CPython image accepts besides its own
EXTRA_ABIS = ("abi3", "none")


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


@functools.lru_cache(maxsize=16)
def supported_wheel_tags(platform: TargetPlatform) -> frozenset[Tag]:
    """The wheel tags pip accepts with the resolver's ``--python-version/--abi/--platform`` options."""
    version = tuple(int(part) for part in platform.python_version.split("."))
    platforms = manylinux_platform_tags(platform.manylinux)
    tags = set(cpython_tags(version, abis=[platform.abi, *EXTRA_ABIS], platforms=platforms))
    tags |= set(compatible_tags(version, interpreter=platform.abi, platforms=platforms))
    return frozenset(tags)


def describe(platform: TargetPlatform) -> str:
    """``CPython 3.11 on manylinux_2_36_x86_64``: how messages name the target."""
    implementation = {"cp": "CPython", "pp": "PyPy"}.get(platform.implementation, platform.implementation)
    return f"{implementation} {platform.python_version} on {platform.manylinux}"


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

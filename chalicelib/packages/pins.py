"""Exact pins and the target platform: the vocabulary shared by resolve,
check, scan and install."""

from __future__ import annotations

import hashlib
import json

from packaging.utils import canonicalize_name
from pydantic import BaseModel, ConfigDict, field_validator


class TargetPlatform(BaseModel):
    """The interpreter and libc of the image the skill will run in."""

    model_config = ConfigDict(frozen=True)

    python_version: str = "3.11"  # major.minor
    implementation: str = "cp"
    manylinux: str = "manylinux_2_36_x86_64"  # newest manylinux tag the base image's glibc supports

    @property
    def abi(self) -> str:
        return f"{self.implementation}{self.python_version.replace('.', '')}"

    @property
    def key(self) -> str:
        return f"{self.implementation}{self.python_version}-{self.manylinux}"


class Pin(BaseModel):
    """One file of the closure: exactly what is scanned and installed."""

    model_config = ConfigDict(frozen=True)

    name: str  # PEP 503 normalized
    version: str
    sha256: str
    filename: str = ""
    url: str = ""
    direct: bool = False  # named by the skill itself (or by an extra it chose), not pulled in transitively
    via_extra: str | None = None  # "requests[socks]": direct because that chosen extra asks for it
    requires: tuple[str, ...] | None = None  # pinned packages this one depends on (normalized); None: not recorded

    @field_validator("name")
    @classmethod
    def _normalize(cls, value: str) -> str:
        return canonicalize_name(value)

    @field_validator("sha256")
    @classmethod
    def _hex(cls, value: str) -> str:
        value = value.lower()
        if len(value) != 64 or any(c not in "0123456789abcdef" for c in value):
            raise ValueError("sha256 must be 64 hex digits")
        return value

    @property
    def requirement_line(self) -> str:
        """A line for ``pip install --require-hashes -r``."""
        return f"{self.name}=={self.version} --hash=sha256:{self.sha256}"


def closure_digest(pins: list[Pin] | tuple[Pin, ...]) -> str:
    """Content hash of a closure (order-independent)."""
    canon = sorted((p.name, p.version, p.sha256) for p in pins)
    return hashlib.sha256(json.dumps(canon).encode()).hexdigest()

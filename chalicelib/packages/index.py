"""What the configured index offers for one project, to explain a failed resolution.

One bounded request to the index's simple API (PEP 691 JSON, or the PEP 503
HTML page from an index that only speaks that) lists the project's files;
:func:`explain_unavailable` then says in one line why nothing matches, e.g.
"numpy 1.21.0 has no wheel for CPython 3.11 on manylinux_2_36_x86_64; the
oldest release that has one is 1.23.2".
"""

from __future__ import annotations

import base64
import html.parser
import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Protocol

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import InvalidSdistFilename, InvalidWheelFilename, canonicalize_name, parse_sdist_filename, parse_wheel_filename
from packaging.version import Version

from chalicelib.packages.pins import TargetPlatform
from chalicelib.packages.targets import describe, supported_wheel_tags

MAX_PAGE_BYTES = 16 * 1024 * 1024  # numpy's JSON page, the largest common one, is about 2 MB
TIMEOUT_SECONDS = 10.0
_ACCEPT = "application/vnd.pypi.simple.v1+json, text/html;q=0.1"


class IndexUnavailable(Exception):
    """The index could not tell (unreachable, too slow, too large, unreadable)."""


@dataclass(frozen=True)
class IndexFile:
    filename: str
    requires_python: str | None = None
    yanked: bool = False


class PackageIndex(Protocol):
    def files(self, project: str) -> list[IndexFile] | None:
        """The project's files, or None when the index has no such project."""
        ...


class _Anchors(html.parser.HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.files: list[IndexFile] = []
        self._open: dict[str, str | None] | None = None
        self._text = ""

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "a":
            self._open, self._text = dict(attrs), ""

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            self._text += data

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._open is not None:
            href = self._open.get("href") or ""
            name = self._text.strip() or urllib.parse.urlsplit(href).path.rsplit("/", 1)[-1]
            self.files.append(IndexFile(name, self._open.get("data-requires-python"), "data-yanked" in self._open))
            self._open = None


def parse_project_page(body: bytes, content_type: str) -> list[IndexFile]:
    """The files listed by a simple-API project page, JSON or HTML."""
    if "json" in content_type:
        data = json.loads(body)
        return [
            IndexFile(str(f["filename"]), f.get("requires-python"), bool(f.get("yanked")))
            for f in data.get("files", []) if isinstance(f, dict) and f.get("filename")
        ]  # fmt: skip
    parser = _Anchors()
    parser.feed(body.decode("utf-8", errors="replace"))
    return parser.files


class SimpleIndex:
    """The configured index's simple API, one bounded GET per project."""

    def __init__(self, index_url: str, *, timeout_seconds: float = TIMEOUT_SECONDS, max_bytes: int = MAX_PAGE_BYTES):
        parts = urllib.parse.urlsplit(index_url)
        self._auth = None
        if parts.username is not None:  # a private index's credentials go in a header, never in a message
            credentials = f"{urllib.parse.unquote(parts.username)}:{urllib.parse.unquote(parts.password or '')}"
            self._auth = "Basic " + base64.b64encode(credentials.encode()).decode()
            parts = parts._replace(netloc=parts.hostname + (f":{parts.port}" if parts.port else ""))
        self.base = urllib.parse.urlunsplit(parts).rstrip("/")
        self.timeout_seconds = timeout_seconds
        self.max_bytes = max_bytes

    def files(self, project: str) -> list[IndexFile] | None:
        request = urllib.request.Request(f"{self.base}/{canonicalize_name(project)}/", headers={"Accept": _ACCEPT})
        if self._auth:
            request.add_header("Authorization", self._auth)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout_seconds) as response:
                body = response.read(self.max_bytes + 1)
                content_type = response.headers.get("Content-Type", "")
        except urllib.error.HTTPError as error:
            if error.code == 404:
                return None
            raise IndexUnavailable(f"the index answered HTTP {error.code}") from error
        except (urllib.error.URLError, OSError, ValueError) as error:
            raise IndexUnavailable(f"the index could not be read: {type(error).__name__}") from error
        if len(body) > self.max_bytes:
            raise IndexUnavailable(f"the project page is larger than {self.max_bytes} bytes")
        try:
            return parse_project_page(body, content_type)
        except (ValueError, TypeError, AttributeError) as error:
            raise IndexUnavailable("the project page could not be parsed") from error


@dataclass(frozen=True)
class Availability:
    releases: frozenset[Version]  # every version with a file that is not yanked
    with_wheel: frozenset[Version]  # those with a wheel the target can install


def availability(files: list[IndexFile], platform: TargetPlatform) -> Availability:
    supported = supported_wheel_tags(platform)
    python = Version(platform.python_version)
    releases: set[Version] = set()
    with_wheel: set[Version] = set()
    for file in files:
        if file.yanked:
            continue
        try:
            if file.filename.endswith(".whl"):
                _, version, _, tags = parse_wheel_filename(file.filename)
            else:
                _, version = parse_sdist_filename(file.filename)
                tags = frozenset()
        except (InvalidWheelFilename, InvalidSdistFilename):
            continue
        releases.add(version)
        if tags & supported and _python_allowed(file.requires_python, python):
            with_wheel.add(version)
    return Availability(frozenset(releases), frozenset(with_wheel))


def _python_allowed(requires_python: str | None, python: Version) -> bool:
    if not requires_python:
        return True
    try:
        return python in SpecifierSet(requires_python)
    except InvalidSpecifier:
        return True  # pip ignores a malformed Requires-Python too


def explain_unavailable(project: str, specifier: SpecifierSet, files: list[IndexFile] | None, platform: TargetPlatform) -> str | None:
    """Why no release of ``project`` matching ``specifier`` can be installed on the target; None if one can."""
    name = canonicalize_name(project)
    target = describe(platform)
    if files is None:
        return f"the package index has no project named {name}"
    found = availability(files, platform)
    if not found.releases:
        return f"{name} has no installable release on the package index"
    matching = sorted(specifier.filter(found.releases))
    wanted = f"{name}{specifier}" if str(specifier) else name
    if not matching:
        newest = max(found.releases)
        return f"no release of {name} matches {specifier}; the newest is {newest}"
    if any(version in found.with_wheel for version in matching):
        return None
    finals = sorted(v for v in found.with_wheel if not v.is_prerelease) or sorted(found.with_wheel)
    if len(matching) == 1:
        line = f"{name} {matching[0]} has no wheel for {target}"
    else:
        line = f"no release of {wanted} has a wheel for {target} (newest matching: {matching[-1]})"
    if not finals:
        return f"{line}, and no release of {name} has one (only source distributions, which are never built)"
    return f"{line}; the oldest release that has one is {finals[0]}"

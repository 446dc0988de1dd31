"""Where a finding sits decides how much it weighs: the same text blocks in the skill's instructions or
scripts, asks for review in a container build, and is only reported in a reference document.

Public interface::

    in_context(finding, publishers, install_urls) -> MaliceFinding   # the finding at its severity where it was found
    declared_publishers(files) -> frozenset[str]           # who ships the skill's tools through a package manager
    declared_install_urls(files) -> frozenset[str]         # the URLs the skill's install entries name (normalised)
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import PurePosixPath
from urllib.parse import urlsplit

from chalicelib.scanning.malice.engine import MaliceFinding

_DOC_SUFFIXES = (".md", ".markdown", ".rst", ".txt", ".yar", ".yara")
_DOC_DIRS = frozenset({"references", "reference", "docs", "doc", "examples", "example", "tests", "test"})
_CODE_SUFFIXES = (".py", ".sh", ".bash", ".js", ".mjs", ".cjs", ".ts", ".ps1", ".bat", ".cmd")
#: what a file holds, not how it reads, decides these: a binary or a .pyc is opaque wherever it sits
_CONTENT_CATEGORIES = frozenset({"hidden-payload"})
#: hidden instructions and shells in a reference page still need a reviewer (HIGH): an agent reads
#: references on request and may follow them; documented commands of other kinds are only reported
_REVIEW_IN_DOCS = frozenset({"prompt-injection", "unicode-smuggling", "reverse-shell"})
#: what a build step does to the machine it runs on; in a Dockerfile that machine is the image being built
_HOST_EFFECTS = frozenset({"dropper", "persistence", "privilege-escalation", "destructive"})
#: hosts whose first path part is the publisher (an account), not part of the host's own name
_CODE_HOSTS = frozenset({"github.com", "raw.githubusercontent.com", "objects.githubusercontent.com",
                         "gist.githubusercontent.com", "codeload.github.com", "gitlab.com"})  # fmt: skip
_URL = re.compile(r"https?://[^\s\"'|)`<>]+")
#: package-manager install kinds: a download entry is not a package channel (it is what droppers use)
_PACKAGE_KINDS = frozenset({"brew", "npm", "node", "go", "uv", "pip", "apt", "conda", "cargo", "pipx"})
#: hosts where anyone can publish anything under a throwaway name (paste and file-sharing sites, URL shorteners,
#: tunnels, dynamic DNS): a URL there is no vendor's, declared or not
_THROWAWAY_HOSTS = ("pastebin.com", "paste.ee", "hastebin.com", "rentry.co", "ghostbin.co", "ghostbin.com", "transfer.sh",
                    "termbin.com", "0x0.st", "controlc.com", "gist.github.com", "gist.githubusercontent.com", "bit.ly",
                    "tinyurl.com", "is.gd", "t.co", "goo.gl", "cutt.ly", "rebrand.ly", "shorturl.at", "ngrok.io",
                    "ngrok.app", "ngrok-free.app", "trycloudflare.com", "loca.lt", "serveo.net", "localhost.run",
                    "duckdns.org", "ddns.net", "no-ip.org", "no-ip.com", "file.io", "catbox.moe", "temp.sh",
                    "pixeldrain.com", "cdn.discordapp.com", "dropboxusercontent.com", "mega.nz", "localhost")  # fmt: skip


def _demoted(finding: MaliceFinding, severity: str, why: str) -> MaliceFinding:
    if severity == finding.severity:
        return finding
    return MaliceFinding(**{**finding.to_dict(), "severity": severity,
                            "message": f"{finding.message} ({why}; was {finding.severity})"})  # fmt: skip


def _is_container_build(name: str) -> bool:
    return name in ("dockerfile", "containerfile") or name.startswith("dockerfile.") or name.endswith(".dockerfile")


def publisher(url: str) -> str | None:
    """The account behind a URL: the owner on a code host, else the registrable-looking end of the host name."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if not host:
        return None
    if host in _CODE_HOSTS:
        owner = parts.path.strip("/").split("/", 1)[0].lower()
        return owner or None
    return ".".join(host.split(".")[-2:])


def _channel_publisher(kind: str, spec: str) -> str | None:
    """The publisher a package-manager spec names: ``@scope/pkg`` (npm), ``owner/tap/formula`` (brew),
    ``github.com/owner/mod`` (go); a bare name (``jq``) names none."""
    spec = spec.strip().lower()
    if spec.startswith("@") and "/" in spec:
        return spec[1:].split("/", 1)[0]
    if kind == "go" or spec.startswith(("github.com/", "gitlab.com/")):
        host, _, rest = spec.partition("/")
        return rest.split("/", 1)[0] if host in _CODE_HOSTS else ".".join(host.split(".")[-2:])
    if kind == "brew" and spec.count("/") >= 1:
        return spec.split("/", 1)[0]
    return None


def _frontmatter_with_install(files: Mapping[str, bytes]) -> object:
    """SKILL.md's frontmatter, parsed, when it may hold install entries; else None."""
    skill_md = files.get("SKILL.md")
    text = skill_md.decode("utf-8", errors="replace") if skill_md else ""
    head = text[3:].split("\n---", 1)[0] if text.startswith("---") else ""
    if "install" not in head:
        return None  # no install entries: no YAML to parse
    import yaml  # lazy, as in the engine

    try:
        return yaml.safe_load(head)
    except yaml.YAMLError:
        return None


def declared_publishers(files: Mapping[str, bytes]) -> frozenset[str]:
    """Publishers of the package-manager install entries in SKILL.md's metadata (``metadata.*.install``)."""
    found: set[str] = set()
    for node in _mappings(_frontmatter_with_install(files)):
        kind = str(node.get("kind", "")).lower()
        if kind in _PACKAGE_KINDS:
            for key in ("formula", "package", "module", "tap"):
                if isinstance(node.get(key), str) and (owner := _channel_publisher(kind, node[key])):
                    found.add(owner)
    return frozenset(found)


def _mappings(node: object) -> list[dict]:
    """Every mapping in a parsed YAML tree (the install entries may sit under any metadata key)."""
    found, stack = [], [node]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            found.append(node)
            stack += list(node.values())
        elif isinstance(node, list):
            stack += node
    return found


def normalised_url(url: str) -> str | None:
    """``url`` as compared with a declared one: lower-case scheme and host, no default port, no fragment, no
    trailing slash; None when it has no host."""
    try:
        parts = urlsplit(url.strip())
        host = (parts.hostname or "").lower()
        port = parts.port
    except ValueError:
        return None
    if not host or parts.scheme.lower() not in ("http", "https"):
        return None
    netloc = host if port in (None, 443 if parts.scheme.lower() == "https" else 80) else f"{host}:{port}"
    query = f"?{parts.query}" if parts.query else ""
    return f"{parts.scheme.lower()}://{netloc}{parts.path.rstrip('/')}{query}"


def declared_install_urls(files: Mapping[str, bytes]) -> frozenset[str]:
    """The URLs named by SKILL.md's install entries (``metadata.*.install: [{kind: url, url: ...}]``), normalised."""
    found: set[str] = set()
    for node in _mappings(_frontmatter_with_install(files)):
        entries = node.get("install")
        for entry in entries if isinstance(entries, list) else ():
            url = normalised_url(entry["url"]) if isinstance(entry, dict) and isinstance(entry.get("url"), str) else None
            if url:
                found.add(url)
    return frozenset(found)


def _vendor_host(host: str) -> bool:
    """A named host a vendor can own: not an IP address, not a paste, sharing, shortening or tunnelling service."""
    import ipaddress  # lazy: only for a pipe-to-shell with declared install URLs

    try:
        ipaddress.ip_address(host.strip("[]"))
        return False
    except ValueError:
        pass
    return "." in host and not any(host == h or host.endswith("." + h) for h in _THROWAWAY_HOSTS)


def _declared_installer(url: str, install_urls: frozenset[str]) -> bool:
    """``url`` is an install entry the skill declares: the same URL, or that entry names the bare host (the
    vendor's installer host, ``https://get.tool.io``) and ``url`` is on it; over HTTPS, on a vendor's host."""
    norm = normalised_url(url)
    if norm is None or not norm.startswith("https://"):
        return False
    host = urlsplit(norm).hostname or ""
    if not _vendor_host(host):
        return False
    if norm in install_urls:
        return True
    return host not in _CODE_HOSTS and f"https://{host}" in install_urls


def in_context(finding: MaliceFinding, publishers: frozenset[str] = frozenset(),
               install_urls: frozenset[str] = frozenset(),
               others: tuple[str, ...] | None = ()) -> MaliceFinding:  # fmt: skip
    """The finding's severity where it was found.

    - Reference documents, examples and tests: real skills document attacks (security-audit skills quote
      droppers, reference pages show ``curl | sh`` installers, test files hold the patterns they test);
      that is material the agent reads on request, not instructions it follows or code the skill runs, so
      it never blocks: MEDIUM, or HIGH for hidden instructions and shells, which an agent reading the page
      might act on. Prompt-injection phrasing inside code files (a comment saying "silently") is no
      instruction either.
    - Container build recipes (Dockerfile): a download-and-run, a setuid or an ``rm -rf`` in a build step acts
      on the image being built, not on the user's machine: it needs an admin's approval (HIGH), not a block.
    - A pipe-to-shell installer whose publisher also ships the tool through a package channel the skill
      declares (``brew`` tap, npm scope, Go module of the same owner) is that vendor's own installer
      offered as an alternative: HIGH. A dropper has no such channel to point at.
    - So is a pipe-to-shell of the very URL the skill declares as an install entry (``{kind: url, url:
      https://get.tool.io}`` and ``curl -s https://get.tool.io | bash``): HIGH, over HTTPS and on a named host
      only; a raw IP address, a paste or file-sharing site, a shortener or a tunnel stays CRITICAL, declared or not.
    SKILL.md and the skill's scripts otherwise keep their rule's severity.

    ``others``: the rule's other matches in the same text (a finding quotes only the first); a vendor installer is
    excused only when every one of them is one too, and not at all when they are unknown (None).
    """
    if finding.severity not in ("CRITICAL", "HIGH") or finding.category in _CONTENT_CATEGORIES:
        return finding
    path = PurePosixPath(finding.file.split("!")[0])
    name = path.name.lower()
    documentation = name != "skill.md" and not name.startswith(("requirements", "constraints")) and (
        name.endswith(_DOC_SUFFIXES)
        or bool(_DOC_DIRS & {part.lower() for part in path.parts[:-1]})
        or name.startswith("test_") or name.endswith("_test.py")
    )
    if documentation or (finding.category == "prompt-injection" and name.endswith(_CODE_SUFFIXES)):
        where = "a reference document, example or test" if documentation else "code, not instructions"
        capped = "HIGH" if documentation and finding.category in _REVIEW_IN_DOCS else "MEDIUM"
        return _demoted(finding, capped, f"in {where}: reported, not blocking")
    if finding.severity == "CRITICAL" and finding.category in _HOST_EFFECTS and _is_container_build(name):
        return _demoted(finding, "HIGH", "in a container build step: acts on the image, needs approval")
    if finding.rule_id == "SKM-DROP-001" and (publishers or install_urls) and others is not None:
        pipes = [_URL.findall(text) for text in (finding.matched, *others)]
        if not all(pipes):
            return finding  # a pipe-to-shell without a URL in it: nothing to tie to a vendor
        urls = [u for found in pipes for u in found]
        if publishers and all(publisher(u) in publishers for u in urls):
            return _demoted(finding, "HIGH", "the vendor's installer: its publisher ships the tool through a "
                                             "package channel this skill declares; needs approval")  # fmt: skip
        if install_urls and all(_declared_installer(u, install_urls) for u in urls):
            return _demoted(finding, "HIGH", "the vendor's installer: the install entry this skill declares names "
                                             "this URL; needs approval")  # fmt: skip
    return finding

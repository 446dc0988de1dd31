"""Network hosts a skill declares it needs (plain data, no I/O).

An entry is ``host`` or ``host:port``; a wildcard is allowed only as a whole
leading label (``*.example.com``: any name *below* example.com, not
example.com itself). Without a port an entry means the web ports, 80 and 443.

Refused, each with its own problem line: URLs (a scheme or a path), a bare
``*`` or a wildcard anywhere but the leading label, ports outside 1-65535,
names that are not DNS names, names that always point at this machine or at
a cloud metadata service (``localhost``, ``metadata.google.internal``), and
IP literals that are not public unicast addresses (private, loopback,
link-local, metadata, multicast, reserved). The proxy refuses such addresses
again when a declared name resolves to one (``runner/egress_proxy.py``).
"""

from __future__ import annotations

import ipaddress
import re

from pydantic import BaseModel, ConfigDict

DEFAULT_PORTS = (80, 443)
MAX_HOSTS = 50
_LABEL = re.compile(r"^(?!-)[a-z0-9-]{1,63}(?<!-)$")
#: names that mean "this machine" or "the cloud's metadata service" whatever DNS says
_FORBIDDEN_NAMES = ("localhost", "metadata.google.internal", "metadata", "instance-data")
_FORBIDDEN_SUFFIXES = (".localhost", ".internal", ".local", ".home.arpa")


class HostPattern(BaseModel):
    """One declared or approved host, with the ports it covers."""

    model_config = ConfigDict(frozen=True)

    host: str  # lower case, no trailing dot; may start with "*."
    ports: tuple[int, ...] = DEFAULT_PORTS

    @property
    def wildcard(self) -> bool:
        return self.host.startswith("*.")

    def matches_host(self, name: str) -> bool:
        name = name.lower().rstrip(".")
        if self.wildcard:
            return name.endswith(self.host[1:]) and len(name) > len(self.host) - 1
        return name == self.host

    def matches(self, name: str, port: int) -> bool:
        return port in self.ports and self.matches_host(name)

    def covers(self, other: HostPattern) -> bool:
        """True when every host:port of ``other`` is one of ours (for approvals covering a declaration)."""
        if not set(other.ports) <= set(self.ports):
            return False
        if other.wildcard:
            return self.wildcard and (other.host == self.host or other.host.endswith(self.host[1:]))
        return self.matches_host(other.host)

    def __str__(self) -> str:
        if self.ports == DEFAULT_PORTS:
            return self.host
        return ",".join(f"{self.host}:{port}" for port in self.ports)


def non_public_reason(address: ipaddress.IPv4Address | ipaddress.IPv6Address) -> str | None:
    """Why an address must never be reached from a sandbox, or None for a public unicast address."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return non_public_reason(address.ipv4_mapped)
    checks = (
        ("loopback", address.is_loopback),
        ("link-local (cloud metadata lives here)", address.is_link_local),
        ("private", address.is_private),
        ("multicast", address.is_multicast),
        ("unspecified", address.is_unspecified),
        ("reserved", address.is_reserved),
        ("not globally routable", not address.is_global),
    )
    return next((label for label, hit in checks if hit), None)


def parse_host_entry(entry: object) -> tuple[HostPattern | None, str | None]:
    """A HostPattern, or the problem with ``entry`` (one sentence)."""
    if not isinstance(entry, str):
        return None, f"must be a host name string, got {type(entry).__name__}"
    text = entry.strip()
    if not text:
        return None, "is empty"
    if "://" in text or "/" in text or "?" in text or "#" in text or "@" in text:
        return None, f"{text!r} is a URL; write only the host (and port), e.g. api.example.com:443"
    host, port_text = text, None
    if text.startswith("["):  # [v6]:port
        end = text.find("]")
        if end < 0:
            return None, f"{text!r}: unclosed '['"
        host, rest = text[1:end], text[end + 1:]
        if rest:
            if not rest.startswith(":"):
                return None, f"{text!r}: expected ':port' after ']'"
            port_text = rest[1:]
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    ports = DEFAULT_PORTS
    if port_text is not None:
        if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
            return None, f"{text!r}: port must be a number from 1 to 65535"
        ports = (int(port_text),)
    host = host.lower().rstrip(".")
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is not None:
        reason = non_public_reason(address)
        if reason:
            return None, f"{text!r} is a {reason} address; a sandbox may never reach it"
        return HostPattern(host=str(address), ports=ports), None
    if host == "*":
        return None, "a bare '*' would allow every host; name the hosts (a wildcard only as '*.example.com')"
    labels = host.split(".")
    wildcard = labels[0] == "*"
    if wildcard:
        labels = labels[1:]
    if "*" in "".join(labels):
        return None, f"{text!r}: a wildcard is allowed only as the whole leading label ('*.example.com')"
    if len(labels) < (2 if wildcard else 1) or not all(_LABEL.match(label) for label in labels) or len(host) > 253:
        return None, f"{text!r} is not a valid host name"
    plain = ".".join(labels)
    if plain in _FORBIDDEN_NAMES or any(plain.endswith(suffix) or plain == suffix[1:] for suffix in _FORBIDDEN_SUFFIXES):
        return None, f"{text!r} names this machine, a local network or a metadata service; a sandbox may never reach it"
    return HostPattern(host=host, ports=ports), None


def parse_host_list(entries: list[object], spot: str) -> tuple[list[HostPattern], list[str]]:
    """Every entry parsed, or every problem (``spot`` says where each came from)."""
    patterns: list[HostPattern] = []
    problems: list[str] = []
    for index, entry in enumerate(entries):
        pattern, problem = parse_host_entry(entry)
        if problem:
            problems.append(f"{spot}[{index}]: {problem}")
        elif pattern is not None:
            patterns.append(pattern)
    if len(entries) > MAX_HOSTS:
        problems.append(f"{spot}: at most {MAX_HOSTS} hosts may be declared, got {len(entries)}")
    return patterns, problems


def split_host_string(text: str) -> list[object]:
    """Agent Skills metadata values are strings: hosts separated by commas and/or white space."""
    return [part for part in re.split(r"[\s,]+", text) if part]


def merge_patterns(patterns: list[HostPattern]) -> list[str]:
    """Sorted ``host`` / ``host:port`` strings, one per host and port, without duplicates."""
    seen: set[tuple[str, int]] = set()
    for pattern in patterns:
        seen.update((pattern.host, port) for port in pattern.ports)
    hosts: dict[str, set[int]] = {}
    for host, port in seen:
        hosts.setdefault(host, set()).add(port)
    out: list[str] = []
    for host in sorted(hosts):
        ports = hosts[host]
        if set(DEFAULT_PORTS) <= ports:
            out.append(host)
            ports = ports - set(DEFAULT_PORTS)
        out += [f"{host}:{port}" for port in sorted(ports)]
    return out


def patterns_from_strings(entries: list[str]) -> list[HostPattern]:
    """The stored form (``merge_patterns`` output) back to patterns; entries were validated on import."""
    patterns = []
    for entry in entries:
        pattern, problem = parse_host_entry(entry)
        if pattern is None:
            raise ValueError(f"stored network entry {entry!r}: {problem}")
        patterns.append(pattern)
    return patterns

"""HTTP/1.1 heads as the egress proxy reads and rewrites them (no I/O).

The proxy forwards one request per upstream connection. A request head is
rewritten in origin form with the proxy's ``Host`` (the authority it checked,
never the skill's: a ``Host`` naming another site on the same address would
send a brokered secret there), without hop-by-hop and proxy headers, with
the headers of the secrets bound to that host (replacing any of the same
name the skill sent) and ``Connection: close``. A response head gets
``Connection: close`` too, so no client reuses a connection the proxy ends.
"""

from __future__ import annotations

from dataclasses import dataclass

from chalicelib.skills.network import HostPattern

#: request headers never forwarded upstream (hop-by-hop, and the proxy's own); Host is set by the proxy
DROPPED_REQUEST_HEADERS = frozenset({"proxy-authorization", "proxy-connection", "connection", "keep-alive", "te", "upgrade", "host"})
DROPPED_RESPONSE_HEADERS = frozenset({"connection", "keep-alive", "proxy-connection"})


@dataclass(frozen=True)
class HeaderInjection:
    """A secret bound in ``inject`` mode: ``name: value`` added to requests to ``hosts`` (the value never enters the container)."""

    hosts: tuple[HostPattern, ...]
    name: str
    value: str  # rendered from the binding's format, e.g. "Bearer <secret>"

    def applies(self, host: str, port: int) -> bool:
        return any(pattern.matches(host, port) for pattern in self.hosts)


def split_head(head: bytes) -> tuple[str, str, str, list[str]] | None:
    """(method, target, version, header lines) of a request head, or None when the request line is malformed."""
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) != 3 or not parts[0].isalpha() or not parts[2].startswith("HTTP/"):
        return None
    return parts[0], parts[1], parts[2], [line for line in lines[1:] if line]


def proxy_target(method: str, target: str) -> tuple[str, int, str] | None:
    """(host, port, origin-form path) of a request to the proxy (CONNECT host:port, or an absolute http:// URL), or None."""
    if method.upper() == "CONNECT":
        host, _, port = target.rpartition(":")
        host = host.strip("[]")
        return (host.lower().rstrip("."), int(port), "") if host and port.isdigit() and 0 < int(port) < 65536 else None
    if not target.lower().startswith("http://"):
        return None
    rest = target[len("http://"):]
    authority, slash, path = rest.partition("/")
    if "@" in authority or not authority:
        return None
    host, port = authority, 80
    if authority.startswith("["):
        end = authority.find("]")
        host, tail = authority[1:end], authority[end + 1:]
        if tail.startswith(":") and tail[1:].isdigit():
            port = int(tail[1:])
    elif ":" in authority:
        host, port_text = authority.rsplit(":", 1)
        if not port_text.isdigit():
            return None
        port = int(port_text)
    if not 0 < port < 65536:
        return None
    return host.lower().rstrip("."), port, slash + path if slash else "/"


def path_only(target: str) -> str:
    """What the audit keeps of a request target: the path, never the query (it often holds keys)."""
    return target.split("?", 1)[0].split("#", 1)[0][:512]


def _authority(host: str, port: int, default_port: int) -> str:
    name = f"[{host}]" if ":" in host else host
    return name if port == default_port else f"{name}:{port}"


def forward_head(method: str, path: str, version: str, headers: list[str], host: str, port: int, *,
                 default_port: int, injections: list[HeaderInjection]) -> bytes:  # fmt: skip
    replaced = {injection.name.lower() for injection in injections}
    kept = [line for line in headers if line.split(":", 1)[0].strip().lower() not in DROPPED_REQUEST_HEADERS | replaced]
    added = [f"{injection.name}: {injection.value}" for injection in injections]
    lines = [f"{method} {path} {version}", f"Host: {_authority(host, port, default_port)}", *kept, *added, "Connection: close"]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def response_head(head: bytes) -> tuple[int | None, bytes]:
    """(status, head with ``Connection: close``) of a response head; (None, head unchanged) when it is not one."""
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
        return None, head
    status = int(parts[1])
    if 100 <= status < 200:
        return status, head  # interim (100 Continue): passed on as it is; the final head follows
    kept = [line for line in lines[1:] if line and line.split(":", 1)[0].strip().lower() not in DROPPED_RESPONSE_HEADERS]
    return status, ("\r\n".join([lines[0], *kept, "Connection: close"]) + "\r\n\r\n").encode("latin-1")


def refusal(status: int, message: str) -> bytes:
    phrase = {400: "Bad Request", 403: "Forbidden", 431: "Request Header Fields Too Large", 502: "Bad Gateway"}[status]
    body = f"skillharbor egress: {message}\n".encode()
    return (f"HTTP/1.1 {status} {phrase}\r\nContent-Type: text/plain\r\nContent-Length: {len(body)}\r\n"
            f"Connection: close\r\n\r\n").encode() + body  # fmt: skip

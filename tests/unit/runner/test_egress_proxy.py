"""The egress proxy on its own (host side, no container): a client on its Unix socket, upstreams on 127.0.0.1."""

from __future__ import annotations

import http.server
import socket
import threading
from collections.abc import Iterator

import pytest

from chalicelib.runner.egress_http import HeaderInjection
from chalicelib.runner.egress_proxy import EgressLimits, EgressProxy, parse_resolve_overrides
from chalicelib.skills.network import HostPattern

PAYLOAD = b"x" * 300_000


class _Handler(http.server.BaseHTTPRequestHandler):
    seen: list[dict[str, str]] = []

    def do_GET(self) -> None:  # noqa: N802
        type(self).seen.append(dict(self.headers))
        body = PAYLOAD if self.path == "/big" else b"hello from upstream"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def upstream() -> Iterator[int]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()


def _proxy(tmp_path, upstream: int, allowed: list[HostPattern], **limits: object) -> EgressProxy:
    proxy = EgressProxy(
        directory=str(tmp_path), allowed=allowed, limits=EgressLimits(**limits),  # type: ignore[arg-type]
        resolve_overrides={("api.example.com", 80): ("127.0.0.1", upstream)},
        injections=[HeaderInjection(hosts=(HostPattern(host="api.example.com", ports=(80,)),), name="X-Api-Key", value="s3cret")],
    )
    proxy.start()
    return proxy


def _ask(proxy: EgressProxy, head: bytes) -> bytes:
    with socket.socket(socket.AF_UNIX) as client:
        client.settimeout(10)
        client.connect(proxy.socket_path)
        client.sendall(head)
        data = b""
        while chunk := client.recv(65536):
            data += chunk
        return data


def test_unapproved_host_gets_403_naming_it(tmp_path, upstream: int) -> None:
    proxy = _proxy(tmp_path, upstream, [HostPattern(host="api.example.com", ports=(80,))])
    answer = _ask(proxy, b"GET http://other.example.com/ HTTP/1.1\r\nHost: other.example.com\r\n\r\n")
    records = proxy.stop()
    assert answer.startswith(b"HTTP/1.1 403")
    assert b"other.example.com:80 is not approved for this skill" in answer
    assert records[0]["allowed"] is False and records[0]["host"] == "other.example.com"


def test_approved_host_is_reached_with_its_bound_header_and_counted(tmp_path, upstream: int) -> None:
    proxy = _proxy(tmp_path, upstream, [HostPattern(host="api.example.com", ports=(80,))])
    answer = _ask(proxy, b"GET http://api.example.com/now?key=abc HTTP/1.1\r\nHost: elsewhere.example\r\n"
                         b"Proxy-Connection: keep-alive\r\nX-Api-Key: forged\r\n\r\n")
    records = proxy.stop()
    assert answer.startswith(b"HTTP/1.0 200") and answer.endswith(b"hello from upstream")
    assert b"\r\nConnection: close\r\n" in answer  # no client reuses a connection the proxy ends
    seen = _Handler.seen[-1]
    assert seen["X-Api-Key"] == "s3cret" and seen["Host"] == "api.example.com"  # the skill's own values replaced
    assert "Proxy-Connection" not in seen
    assert records[0]["allowed"] and records[0]["bytes_received"] == len(answer) and records[0]["bytes_sent"] > 0
    assert (records[0]["method"], records[0]["path"], records[0]["status"], records[0]["injected"]) == ("GET", "/now", 200, ["X-Api-Key"])


def test_name_resolving_to_loopback_or_metadata_is_refused(tmp_path, upstream: int) -> None:
    allowed = [HostPattern(host="localhost", ports=(80,)), HostPattern(host="169.254.169.254", ports=(80,))]
    proxy = _proxy(tmp_path, upstream, allowed)
    by_name = _ask(proxy, b"CONNECT localhost:80 HTTP/1.1\r\n\r\n")
    metadata = _ask(proxy, b"GET http://169.254.169.254/latest/meta-data/ HTTP/1.1\r\n\r\n")
    proxy.stop()
    assert by_name.startswith(b"HTTP/1.1 403") and b"loopback" in by_name
    assert metadata.startswith(b"HTTP/1.1 403") and b"link-local" in metadata


def test_byte_cap_cuts_a_download(tmp_path, upstream: int) -> None:
    proxy = _proxy(tmp_path, upstream, [HostPattern(host="api.example.com", ports=(80,))], max_bytes=100_000)
    answer = _ask(proxy, b"GET http://api.example.com/big HTTP/1.1\r\n\r\n")
    records = proxy.stop()
    assert len(answer) < len(PAYLOAD)
    assert "byte cap" in records[0]["reason"]


def test_connection_cap(tmp_path, upstream: int) -> None:
    proxy = _proxy(tmp_path, upstream, [HostPattern(host="api.example.com", ports=(80,))], max_connections=1)
    first = _ask(proxy, b"GET http://api.example.com/ HTTP/1.1\r\n\r\n")
    second = _ask(proxy, b"GET http://api.example.com/ HTTP/1.1\r\n\r\n")
    proxy.stop()
    assert b"200" in first.split(b"\r\n")[0] and second.startswith(b"HTTP/1.1 403") and b"connection cap" in second


def test_resolve_override_accepts_only_loopback_targets() -> None:
    assert parse_resolve_overrides("api.example.com:443:127.0.0.1:8443") == {("api.example.com", 443): ("127.0.0.1", 8443)}
    with pytest.raises(ValueError, match="only loopback"):
        parse_resolve_overrides("api.example.com:443:10.0.0.1:443")
    with pytest.raises(ValueError, match="host:port:address:port"):
        parse_resolve_overrides("api.example.com:443")

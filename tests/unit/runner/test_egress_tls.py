"""The proxy's TLS termination for injected secrets, host side (no container): a client on the proxy's Unix socket,
HTTPS upstreams on 127.0.0.1 with certificates from a test CA that only the proxy's upstream trust store holds."""

from __future__ import annotations

import socket
import ssl
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tls_support import TestCA, https_server, recording_handler

from chalicelib.runner.egress_http import HeaderInjection
from chalicelib.runner.egress_proxy import EgressProxy
from chalicelib.runner.egress_tls import RunAuthority
from chalicelib.skills.network import HostPattern

BOUND = HostPattern(host="bound.example.com", ports=(443,))
SECRET = "tok-9fQ2vLx7Rk"


_Handler = recording_handler(b"hello over tls")


@pytest.fixture(scope="module")
def upstreams(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    folder = tmp_path_factory.mktemp("upstream-tls")
    trusted, untrusted = TestCA("upstream test CA"), TestCA("a CA nobody trusts")
    servers = {
        "bound": https_server(_Handler, trusted, folder, "bound.example.com"),
        "other": https_server(_Handler, trusted, folder, "other.example.com"),
        "forged": https_server(_Handler, untrusted, folder, "forged.example.com"),
    }
    yield {"cafile": str(trusted.write(folder)), "trusted": trusted, **{name: s.server_address[1] for name, s in servers.items()}}
    for server in servers.values():
        server.shutdown()


def _proxy(tmp_path: Path, upstreams: dict[str, Any], bound: list[HostPattern]) -> tuple[EgressProxy, RunAuthority]:
    authority = RunAuthority(bound, lifetime_seconds=60)
    hosts = ["bound.example.com", "other.example.com", "forged.example.com"]
    proxy = EgressProxy(
        directory=str(tmp_path), allowed=[HostPattern(host=h, ports=(443,)) for h in hosts], authority=authority,
        resolve_overrides={(h, 443): ("127.0.0.1", upstreams[h.split(".")[0]]) for h in hosts},
        injections=[HeaderInjection(hosts=tuple(bound), name="Authorization", value=f"Bearer {SECRET}")],
        upstream_cafile=upstreams["cafile"],
    )  # fmt: skip
    proxy.start()
    return proxy, authority


def _get_through(proxy: EgressProxy, host: str, trust: bytes, path: str = "/v1/items?key=abc") -> bytes:
    """CONNECT through the proxy's socket, then TLS trusting only ``trust``, then one GET; the whole answer."""
    raw = socket.socket(socket.AF_UNIX)
    raw.settimeout(10)
    raw.connect(proxy.socket_path)
    raw.sendall(f"CONNECT {host}:443 HTTP/1.1\r\nHost: {host}:443\r\n\r\n".encode())
    head = b""
    while not head.endswith(b"\r\n\r\n"):
        head += raw.recv(1)
    assert head.startswith(b"HTTP/1.1 200"), head
    context = ssl.create_default_context(cadata=trust.decode())
    with context.wrap_socket(raw, server_hostname=host) as tls:
        tls.sendall(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nAuthorization: forged\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while chunk := tls.recv(65536):
            data += chunk
        return data


def test_the_bound_host_gets_the_header_through_the_runs_own_ca(tmp_path: Path, upstreams: dict[str, Any]) -> None:
    proxy, authority = _proxy(tmp_path, upstreams, [BOUND])
    answer = _get_through(proxy, "bound.example.com", authority.pem)
    records = proxy.stop()
    assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"hello over tls")
    assert _Handler.seen[-1]["Authorization"] == f"Bearer {SECRET}"  # replaced the skill's own header
    assert _Handler.seen[-1]["path"] == "/v1/items?key=abc"
    record = records[0]
    assert (record["tls"], record["method"], record["path"], record["status"], record["injected"]) == (
        "terminated", "GET", "/v1/items", 200, ["Authorization"])
    assert record["allowed"] and record["bytes_received"] == len(answer)
    assert SECRET not in repr(records)


def test_an_approved_host_without_a_binding_is_a_plain_tunnel(tmp_path: Path, upstreams: dict[str, Any]) -> None:
    proxy, _authority = _proxy(tmp_path, upstreams, [BOUND])
    answer = _get_through(proxy, "other.example.com", upstreams["trusted"].pem)  # the real certificate, untouched
    records = proxy.stop()
    assert answer.startswith(b"HTTP/1.1 200")
    assert _Handler.seen[-1]["Authorization"] == "forged" and records[0]["tls"] == "tunnel"


def test_another_runs_ca_is_not_trusted(tmp_path: Path, upstreams: dict[str, Any]) -> None:
    proxy, _authority = _proxy(tmp_path, upstreams, [BOUND])
    other_run = RunAuthority([BOUND], lifetime_seconds=60)
    with pytest.raises(ssl.SSLCertVerificationError):
        _get_through(proxy, "bound.example.com", other_run.pem)
    deadline = time.monotonic() + 5
    while not proxy.records[0].reason and time.monotonic() < deadline:  # the proxy reads the client's alert
        time.sleep(0.02)
    records = proxy.stop()
    assert "TLS handshake with the proxy failed" in records[0]["reason"]


def test_an_upstream_certificate_failing_verification_is_a_clear_502(tmp_path: Path, upstreams: dict[str, Any]) -> None:
    forged = HostPattern(host="forged.example.com", ports=(443,))
    proxy, authority = _proxy(tmp_path, upstreams, [BOUND, forged])
    answer = _get_through(proxy, "forged.example.com", authority.pem)
    records = proxy.stop()
    assert answer.startswith(b"HTTP/1.1 502")
    assert b"forged.example.com:443 upstream certificate failed verification: " in answer
    assert records[0]["allowed"] is False and "certificate" in records[0]["reason"]


def test_the_runs_ca_vouches_for_its_bound_hosts_only(upstreams: dict[str, Any]) -> None:
    """Name constraints: even a certificate the proxy minted for another name is refused by the container."""
    authority = RunAuthority([BOUND, HostPattern(host="*.cdn.example.net")], lifetime_seconds=60)

    def handshake(name: str) -> None:
        left, right = socket.socketpair()
        left.settimeout(10)
        server = authority.server_context(name).wrap_socket(right, server_side=True, do_handshake_on_connect=False)
        server.settimeout(10)
        worker = threading.Thread(target=_quietly, args=(server.do_handshake,), daemon=True)
        worker.start()
        try:
            with ssl.create_default_context(cadata=authority.pem.decode()).wrap_socket(left, server_hostname=name):
                pass
        finally:
            left.close()  # ends the server's handshake if the client refused
            worker.join(10)  # before closing its socket: a closed descriptor's number is soon reused by the next pair
            server.close()

    handshake("bound.example.com")
    handshake("img.cdn.example.net")
    with pytest.raises(ssl.SSLCertVerificationError):
        handshake("evil.example.org")


def _quietly(action: Any) -> None:
    try:
        action()
    except (OSError, ssl.SSLError):
        pass

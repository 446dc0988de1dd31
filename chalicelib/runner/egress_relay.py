"""In-container relay to the egress proxy (stdlib only; installed beside harness.py).

The container has only its loopback interface. For a run granted hosts, the
supervisor listens on 127.0.0.1:<port> inside the container (before the
skill exists, so the skill cannot take the port) and relays every
connection, byte for byte, to the runner's proxy on the Unix socket mounted
from the host (``egress_proxy.py``), which does every check. When the
proxy is gone the skill gets an HTTP 502 saying so, never a hang.
"""

from __future__ import annotations

import os
import selectors
import socket
import threading

LISTEN_HOST = "127.0.0.1"
CHUNK = 64 * 1024


def _unavailable(error: OSError) -> bytes:
    """The skill's answer when the proxy's socket refuses (the proxy ended, or gVisor without ``--host-uds=open``)."""
    body = f"skillharbor egress: the proxy is not reachable ({type(error).__name__}: {error.strerror or error}); run ends\n".encode()
    return (b"HTTP/1.1 502 Bad Gateway\r\nContent-Type: text/plain\r\nConnection: close\r\n"
            b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)  # fmt: skip


class Relay:
    def __init__(self, port: int, socket_path: str):
        self.socket_path = socket_path
        self.listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind((LISTEN_HOST, port))
        self.listener.listen(64)
        self.port = self.listener.getsockname()[1]
        self.failures = 0  # connections the proxy did not take
        self._closed = False
        threading.Thread(target=self._accept, name="egress-relay", daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._relay, args=(client,), daemon=True).start()

    def _relay(self, client: socket.socket) -> None:
        upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            upstream.connect(self.socket_path)
        except OSError as error:
            self.failures += 1
            try:
                client.sendall(_unavailable(error))
            except OSError:
                pass
            client.close()
            upstream.close()
            return
        peers = {client: upstream, upstream: client}
        open_reads = {client, upstream}
        with selectors.DefaultSelector() as selector:
            for sock in peers:
                selector.register(sock, selectors.EVENT_READ)
            try:
                while open_reads:
                    for key, _ in selector.select():
                        sock = key.fileobj
                        data = sock.recv(CHUNK)  # type: ignore[union-attr]
                        if data:
                            peers[sock].sendall(data)  # type: ignore[index]
                            continue
                        selector.unregister(sock)
                        open_reads.discard(sock)  # type: ignore[arg-type]
                        if sock is upstream:
                            break  # the proxy closed: the answer is complete (or the proxy died)
                        try:
                            upstream.shutdown(socket.SHUT_WR)
                        except OSError:
                            pass
                    if upstream not in open_reads:
                        break
            except OSError:
                pass
            finally:
                client.close()
                upstream.close()

    def close(self) -> None:
        self._closed = True
        self.listener.close()


#: the run's CA with the image's own roots, written by the supervisor before the skill starts
TRUST_BUNDLE = "/tmp/skillharbor-egress-ca.pem"


def trust_bundle(run_ca: str, target: str = TRUST_BUNDLE) -> str:
    """The run's CA (from the mount) followed by the image's trust store, so hosts whose TLS passes through untouched
    still verify when ``SSL_CERT_FILE``/``REQUESTS_CA_BUNDLE`` name this one file."""
    import ssl

    with open(run_ca, "rb") as handle:
        parts = [handle.read()]
    system = ssl.get_default_verify_paths().openssl_cafile
    try:
        with open(system, "rb") as handle:
            parts.append(handle.read())
    except OSError:
        pass  # an image without a trust store: the run's CA alone
    with open(target, "wb") as handle:
        handle.write(b"\n".join(parts))
    os.chmod(target, 0o444)
    return target


def proxy_environment(port: int, run_ca: str | None = None) -> dict[str, str]:
    """What the skill's process gets: every spelling HTTP clients read (requests, urllib, httpx, curl), and the trust
    bundle holding the run's CA when the proxy terminates TLS for an injected secret."""
    url = f"http://{LISTEN_HOST}:{port}"
    names = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")
    env = {**{name: url for name in names}, "NO_PROXY": "", "no_proxy": ""}
    if run_ca:
        bundle = trust_bundle(run_ca)
        env.update({name: bundle for name in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE")})
    return env

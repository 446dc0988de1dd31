"""Throwaway TLS material for local test servers on 127.0.0.1 (and the egress benchmark).

``TestCA`` is a CA made for one test session; ``issue`` signs a server
certificate for DNS names and/or IP addresses and writes cert and key to a
folder; ``https_server`` serves a handler class over TLS with such a
certificate. Nothing here is trusted by anything unless a test says so
(``cafile=``, ``SSL_CERT_FILE``, the egress proxy's upstream trust setting).
"""

from __future__ import annotations

import datetime
import http.server
import ipaddress
import ssl
import threading
from pathlib import Path
from typing import Any, ClassVar


class TestCA:
    __test__ = False  # not a pytest test class

    def __init__(self, name: str = "skillharbor test CA", hours: float = 2):
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        self._now = datetime.datetime.now(datetime.UTC)
        self._until = self._now + datetime.timedelta(hours=hours)
        self._key = ec.generate_private_key(ec.SECP256R1())
        self._name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        self.certificate = (
            self._builder(self._name, self._key.public_key())
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .sign(self._key, hashes.SHA256())
        )

    def _builder(self, subject: Any, public_key: Any) -> Any:
        from cryptography import x509

        return (x509.CertificateBuilder().subject_name(subject).issuer_name(self._name).public_key(public_key)
                .serial_number(x509.random_serial_number()).not_valid_before(self._now - datetime.timedelta(minutes=5))
                .not_valid_after(self._until))  # fmt: skip

    @property
    def pem(self) -> bytes:
        from cryptography.hazmat.primitives import serialization

        return self.certificate.public_bytes(serialization.Encoding.PEM)

    def write(self, folder: Path, name: str = "ca.pem") -> Path:
        path = Path(folder) / name
        path.write_bytes(self.pem)
        return path

    def issue(self, folder: Path, *names: str, stem: str = "server") -> tuple[Path, Path]:
        """A server certificate for ``names`` (DNS names or IP literals): (cert path, key path) in ``folder``."""
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        key = ec.generate_private_key(ec.SECP256R1())
        alternatives: list[x509.GeneralName] = []
        for name in names:
            try:
                alternatives.append(x509.IPAddress(ipaddress.ip_address(name)))
            except ValueError:
                alternatives.append(x509.DNSName(name))
        certificate = (
            self._builder(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]), key.public_key())
            .add_extension(x509.SubjectAlternativeName(alternatives), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(self._key, hashes.SHA256())
        )
        cert_path, key_path = Path(folder) / f"{stem}-cert.pem", Path(folder) / f"{stem}-key.pem"
        cert_path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
        key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))  # fmt: skip
        return cert_path, key_path


def https_server(handler: type[http.server.BaseHTTPRequestHandler], ca: TestCA, folder: Path, *names: str) -> http.server.ThreadingHTTPServer:
    """A threading HTTPS server on 127.0.0.1 (a free port), certificate for ``names`` from ``ca``, already serving."""
    cert, key = ca.issue(folder, *names, stem="-".join(names)[:60] or "server")
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def recording_handler(body: bytes) -> type[http.server.BaseHTTPRequestHandler]:
    """A fresh handler class answering every GET with ``body``; ``seen`` keeps each request's path and headers."""

    class Recording(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        seen: ClassVar[list[dict[str, str]]] = []

        def do_GET(self) -> None:
            type(self).seen.append({"path": self.path, **dict(self.headers)})
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    return Recording

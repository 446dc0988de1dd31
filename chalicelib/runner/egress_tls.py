"""TLS for the egress proxy's stronger secret mode: a CA per run, certificates per host, verified upstreams.

A run with a secret bound in ``inject`` mode gets a CA made for that run
only: an EC P-256 key that exists only in the proxy's memory and a
certificate valid for the run's lifetime, name-constrained to the hosts the
secrets are bound to (so even a leaked certificate vouches for nothing
else). Its certificate, never its key, is written to the run's mounted
directory; the container trusts it through ``SSL_CERT_FILE`` and friends
(``egress_relay.proxy_environment``), no other container sees it.

For a CONNECT to a bound host the proxy presents a certificate for that host
(minted on first use, cached for the run) and opens its own TLS connection
upstream with full verification (hostname and chain) against the system
trust store, or ``SKILLHARBOR_EGRESS_UPSTREAM_CA_FILE`` (tests point it at
their test CA). Python's ``ssl`` loads a key only from a file, so each leaf's
key and certificate are written to a private 0700 directory, loaded, and
deleted at once.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import shutil
import ssl
import tempfile
import threading
from typing import Any

from chalicelib.skills.network import HostPattern

CA_FILE_NAME = "ca.pem"
#: clock slack either side of the run's lifetime
_SLACK = datetime.timedelta(minutes=5)


def _constraint_names(patterns: list[HostPattern]) -> tuple[list[Any], bool]:
    """The CA's permitted subtrees (a DNS name permits itself and every name below it), and whether any is an IP."""
    from cryptography import x509

    names: list[Any] = []
    has_ip = False
    for pattern in patterns:
        host = pattern.host.removeprefix("*.")
        try:
            names.append(x509.IPAddress(ipaddress.ip_network(host)))
            has_ip = True
        except ValueError:
            names.append(x509.DNSName(host))
    return names, has_ip


class RunAuthority:
    """One run's CA. ``pem`` is the certificate the container trusts; ``server_context(host)`` what the proxy presents."""

    def __init__(self, bound: list[HostPattern], lifetime_seconds: float, label: str = "run"):
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        now = datetime.datetime.now(datetime.UTC)
        self._not_before, self._not_after = now - _SLACK, now + datetime.timedelta(seconds=lifetime_seconds) + _SLACK
        self._key = ec.generate_private_key(ec.SECP256R1())
        self._leaf_key = ec.generate_private_key(ec.SECP256R1())  # one key for every leaf of this run
        self._name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "skillharbor egress"),
                                x509.NameAttribute(NameOID.COMMON_NAME, f"skillharbor {label} CA")])  # fmt: skip
        permitted, has_ip = _constraint_names(bound)
        # without an IP among the bound hosts, exclude every address: the CA vouches for the bound names only
        excluded = None if has_ip else [x509.IPAddress(ipaddress.ip_network("0.0.0.0/0")), x509.IPAddress(ipaddress.ip_network("::/0"))]
        public = self._key.public_key()
        self._certificate = (
            x509.CertificateBuilder().subject_name(self._name).issuer_name(self._name).public_key(public)
            .serial_number(x509.random_serial_number()).not_valid_before(self._not_before).not_valid_after(self._not_after)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                                         encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.NameConstraints(permitted_subtrees=permitted, excluded_subtrees=excluded), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
            .sign(self._key, hashes.SHA256())
        )  # fmt: skip
        self.pem = self._certificate.public_bytes(serialization.Encoding.PEM)
        self._contexts: dict[str, ssl.SSLContext] = {}
        self._lock = threading.Lock()
        self._private = tempfile.mkdtemp(prefix="skh-egress-tls-")  # 0700: leaf keys pass through it, never the CA key

    def write_certificate(self, directory: str) -> str:
        path = os.path.join(directory, CA_FILE_NAME)
        with open(path, "wb") as handle:
            handle.write(self.pem)
        os.chmod(path, 0o644)  # the container's users read it through the read-only mount
        return path

    def server_context(self, host: str) -> ssl.SSLContext:
        with self._lock:
            context = self._contexts.get(host)
            if context is None:
                context = self._contexts[host] = self._mint(host)
            return context

    def _mint(self, host: str) -> ssl.SSLContext:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

        try:
            alternative: Any = x509.IPAddress(ipaddress.ip_address(host))
        except ValueError:
            alternative = x509.DNSName(host)
        leaf = (
            x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host[:64])]))
            .issuer_name(self._name).public_key(self._leaf_key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(self._not_before).not_valid_after(self._not_after)
            .add_extension(x509.SubjectAlternativeName([alternative]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
                                         encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(self._leaf_key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()), critical=False)
            .sign(self._key, hashes.SHA256())
        )  # fmt: skip
        handle, path = tempfile.mkstemp(dir=self._private, suffix=".pem")
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(self._leaf_key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                       serialization.NoEncryption()))  # fmt: skip
                out.write(leaf.public_bytes(serialization.Encoding.PEM))
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.minimum_version = ssl.TLSVersion.TLSv1_2
            context.load_cert_chain(path)
        finally:
            os.unlink(path)
        context.set_alpn_protocols(["http/1.1"])  # the proxy reads HTTP/1.1 heads: no h2 inside the tunnel
        return context

    def close(self) -> None:
        shutil.rmtree(self._private, ignore_errors=True)


def upstream_context(cafile: str | None) -> ssl.SSLContext:
    """Full verification (chain and hostname) of the real host: the system trust store, or ``cafile`` instead."""
    context = ssl.create_default_context(cafile=cafile or None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.set_alpn_protocols(["http/1.1"])
    return context

"""Wheelhouse downloads (https from the index's file host only), hash checks and content-addressed tags (no Docker).

Downloads are served by a local HTTPS server on 127.0.0.1 with a certificate
made for the test, trusted through SSL_CERT_FILE."""

from __future__ import annotations

import hashlib
import ssl
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest

from chalicelib.errors import BuildFailed
from chalicelib.packages.pins import Pin
from chalicelib.runner.builder import Wheelhouse, env_tag, pins_label
from tls_support import TestCA, https_server


class Index:
    """An HTTPS file host: ``files`` by path, ``redirects`` by path to a location; ``requests`` lists what was asked."""

    def __init__(self, directory: Path):
        self.files: dict[str, bytes] = {}
        self.redirects: dict[str, str] = {}
        self.requests: list[str] = []
        index = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                index.requests.append(self.path)
                if self.path in index.redirects:
                    self.send_response(302)
                    self.send_header("Location", index.redirects[self.path])
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                elif self.path in index.files:
                    body = index.files[self.path]
                    self.send_response(200)
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                else:
                    self.send_error(404)

            def log_message(self, *args: object) -> None:
                pass

        ca = TestCA("skillharbor test index CA")
        self.cert = ca.write(directory)  # what clients trust (SSL_CERT_FILE)
        self.server = https_server(Handler, ca, directory, "127.0.0.1", "localhost")
        self.port = self.server.server_address[1]
        self.host = f"127.0.0.1:{self.port}"

    def url(self, path: str, host: str | None = None, scheme: str = "https") -> str:
        return f"{scheme}://{host or self.host}{path}"

    def publish(self, content: bytes = b"wheel-bytes", name: str = "demo", sha: str | None = None) -> Pin:
        path = f"/packages/{name}-1.0-py3-none-any.whl"
        self.files[path] = content
        return Pin(name=name, version="1.0", sha256=sha or hashlib.sha256(content).hexdigest(),
                   filename=path.rsplit("/", 1)[1], url=self.url(path))  # fmt: skip


@pytest.fixture
def index(tmp_path, monkeypatch) -> Index:
    served = Index(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(served.cert))
    # and through the context urllib builds: a whole-suite run can leave the process's C environment
    # out of step with os.environ, and OpenSSL reads SSL_CERT_FILE from the C environment
    monkeypatch.setattr(ssl, "_create_default_https_context", lambda: ssl.create_default_context(cafile=str(served.cert)))
    monkeypatch.setenv("SKILLHARBOR_INDEX_FILE_HOSTS", served.host)
    yield served
    served.server.shutdown()
    served.server.server_close()


def test_fetch_verifies_and_caches_by_sha(tmp_path, index):
    pin = index.publish()
    house = Wheelhouse(tmp_path / "house")
    path = house.fetch(pin)
    assert path == tmp_path / "house" / pin.sha256 / pin.filename and path.read_bytes() == b"wheel-bytes"
    index.files.clear()  # the cache answers without the source
    assert house.fetch(pin) == path and len(index.requests) == 1


def test_sha_mismatch_deletes_the_file_and_names_the_package(tmp_path, index):
    pin = index.publish(sha="1" * 64)
    house = Wheelhouse(tmp_path / "house")
    with pytest.raises(BuildFailed, match="demo==1.0: sha256 mismatch") as caught:
        house.fetch(pin)
    assert caught.value.details["package"] == "demo"
    assert not list((tmp_path / "house").rglob("*.whl*"))


def test_a_set_of_wheels_is_fetched_in_parallel_and_one_bad_pin_fails_the_set(tmp_path, index):
    pins = [index.publish(content=f"wheel-{n}".encode(), name=f"pkg{n}") for n in range(5)]
    house = Wheelhouse(tmp_path / "house")
    paths = house.fetch_all(pins)
    assert {name: path.read_bytes() for name, path in paths.items()} == {f"pkg{n}": f"wheel-{n}".encode() for n in range(5)}
    bad = index.publish(content=b"other", name="bad", sha="2" * 64)
    with pytest.raises(BuildFailed, match="bad==1.0: sha256 mismatch"):
        house.fetch_all([*pins, bad])


def test_tampered_cache_entry_is_fetched_again(tmp_path, index):
    pin = index.publish()
    house = Wheelhouse(tmp_path / "house")
    path = house.fetch(pin)
    path.write_bytes(b"evil")
    assert house.fetch(pin).read_bytes() == b"wheel-bytes"


def test_unreachable_url_and_non_wheels_fail_clearly(tmp_path, index):
    house = Wheelhouse(tmp_path / "house")
    missing = Pin(name="gone", version="1", sha256="2" * 64, filename="gone-1-py3-none-any.whl", url=index.url("/nope.whl"))
    with pytest.raises(BuildFailed, match="gone==1: download"):
        house.fetch(missing)
    sdist = Pin(name="src", version="1", sha256="3" * 64, filename="src-1.tar.gz", url=index.url("/src-1.tar.gz"))
    with pytest.raises(BuildFailed, match="only wheels"):
        house.fetch(sdist)
    with pytest.raises(BuildFailed, match="no download URL"):
        house.fetch(Pin(name="nourl", version="1", sha256="4" * 64, filename="nourl-1-py3-none-any.whl"))


def test_only_https_urls_of_the_index_file_host_are_fetched(tmp_path, index):
    """file://, http://, other hosts and credentials in the URL are refused before anything is read."""
    secret_file = tmp_path / "secret.whl"
    secret_file.write_bytes(b"host file")
    house = Wheelhouse(tmp_path / "house")
    real = index.publish()
    refused = {
        secret_file.as_uri(): "only https:// downloads are allowed, not file:",
        index.url(real.url.split(index.host, 1)[1], scheme="http"): "only https:// downloads are allowed, not http:",
        index.url("/packages/demo-1.0-py3-none-any.whl", host=f"localhost:{index.port}"): "is not the package index's file host",
        index.url("/packages/demo-1.0-py3-none-any.whl", host=f"user:pw@{index.host}"): "is not the package index's file host",
        "ftp://files.pythonhosted.org/demo-1.0-py3-none-any.whl": "only https:// downloads",
    }
    for url, reason in refused.items():
        with pytest.raises(BuildFailed, match=reason):
            house.fetch(real.model_copy(update={"url": url}))
    assert index.requests == [] and not list((tmp_path / "house").rglob("*.whl*"))


def test_a_redirect_must_stay_on_the_index_file_host(tmp_path, index):
    house = Wheelhouse(tmp_path / "house")
    real = index.publish()
    path = real.url.split(index.host, 1)[1]
    index.redirects["/same-host"] = index.url(path)
    assert house.fetch(real.model_copy(update={"url": index.url("/same-host")})).read_bytes() == b"wheel-bytes"
    for name, target in {"/to-other-host": index.url(path, host=f"localhost:{index.port}"),
                         "/to-http": index.url(path, scheme="http"), "/to-file": (tmp_path / "x.whl").as_uri()}.items():  # fmt: skip
        index.redirects[name] = target
        index.requests.clear()
        # (urllib refuses a redirect to file: itself; the others are refused by the wheelhouse)
        with pytest.raises(BuildFailed, match="[Rr]edirect.*(not the package index's file host|only https|is not allowed)"):
            Wheelhouse(tmp_path / f"house{name.replace('/', '-')}").fetch(real.model_copy(update={"url": index.url(name)}))
        assert index.requests == [name]  # the redirect itself was not followed


def test_the_file_hosts_come_from_the_index_url(monkeypatch):
    from chalicelib.settings import get_settings

    monkeypatch.delenv("SKILLHARBOR_INDEX_FILE_HOSTS", raising=False)
    monkeypatch.setenv("SKILLHARBOR_INDEX_URL", "https://pypi.org/simple")
    assert get_settings().wheel_hosts == {"files.pythonhosted.org"}
    monkeypatch.setenv("SKILLHARBOR_INDEX_URL", "https://mirror.example.com/root/pypi/+simple/")
    assert get_settings().wheel_hosts == {"mirror.example.com"}
    monkeypatch.setenv("SKILLHARBOR_INDEX_FILE_HOSTS", "files.example.com, CDN.example.com:8443")
    assert get_settings().wheel_hosts == {"files.example.com", "cdn.example.com:8443"}


def _pin(content: bytes, name: str) -> Pin:
    return Pin(name=name, version="1.0", sha256=hashlib.sha256(content).hexdigest(), filename=f"{name}-1.0-py3-none-any.whl",
               url=f"https://files.pythonhosted.org/packages/{name}-1.0-py3-none-any.whl")  # fmt: skip


def test_tag_depends_on_base_and_closure_only():
    from chalicelib.runner.intake import image_problem

    a, b = _pin(b"a", "alpha"), _pin(b"b", "beta")
    assert env_tag("sha256:base", [a, b]) == env_tag("sha256:base", [b, a.model_copy(update={"direct": True})])
    assert env_tag("sha256:base", [a, b]) != env_tag("sha256:other", [a, b])
    assert env_tag("sha256:base", [a]) != env_tag("sha256:base", [a, b])
    assert env_tag("sha256:base", [a]).startswith("skillharbor/env:") and len(env_tag("x", [a]).split(":")[1]) == 32
    assert pins_label([b, a]) == '["alpha==1.0","beta==1.0"]'
    assert image_problem(env_tag("sha256:base", [a]), "skillharbor/base:latest") is None  # the runner runs what it builds

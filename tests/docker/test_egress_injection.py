"""Secrets in inject mode, from inside real containers: the proxy adds the header for the bound host only, over
plain HTTP and over TLS it terminates with the run's own CA, and the value never enters the container.

Every upstream is a server on the host's 127.0.0.1 reached through ``SKILLHARBOR_EGRESS_RESOLVE``; the HTTPS ones
have certificates from a test CA that the proxy's upstream trust setting (``egress_upstream_ca_file``) names, except
``forged.test.example``, whose CA nobody trusts.
"""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from tls_support import TestCA, https_server, recording_handler

from chalicelib.runner.spec import RunLimits, RunRequest, RunStatus, Runtime
from chalicelib.runner.worker import DockerEngine
from chalicelib.settings import get_settings

pytestmark = pytest.mark.docker

VAULT_TOKEN = "vt-4Kq9Zr2Lw8Xs"
API_KEY = "ak-7Hn3Vb5Pd1Mc"


_Upstream = recording_handler(b"upstream says hello")


@pytest.fixture(scope="module")
def upstreams(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    folder = tmp_path_factory.mktemp("upstream-tls")
    trusted, nobody_trusts = TestCA("upstream test CA"), TestCA("a CA nobody trusts")
    plain = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Upstream)
    threading.Thread(target=plain.serve_forever, daemon=True).start()
    servers = {"plain": plain, "vault": https_server(_Upstream, trusted, folder, "vault.test.example"),
               "secure": https_server(_Upstream, trusted, folder, "secure.test.example"),
               "forged": https_server(_Upstream, nobody_trusts, folder, "forged.test.example")}  # fmt: skip
    ports = {name: server.server_address[1] for name, server in servers.items()}
    yield {**ports, "cafile": str(trusted.write(folder)), "ca": trusted.pem.decode()}
    for server in servers.values():
        server.shutdown()


def _engine(upstreams: dict[str, Any]) -> DockerEngine:
    overrides = ",".join([f"api.test.example:80:127.0.0.1:{upstreams['plain']}", f"other.test.example:80:127.0.0.1:{upstreams['plain']}",
                          *(f"{name}.test.example:443:127.0.0.1:{upstreams[name]}" for name in ("vault", "secure", "forged"))])  # fmt: skip
    return DockerEngine(get_settings().model_copy(update={"egress_resolve": overrides, "pool_enabled": False,
                                                          "egress_upstream_ca_file": upstreams["cafile"]}))  # fmt: skip


INJECTED = [{"hosts": ["vault.test.example:443"], "name": "Authorization", "value": f"Bearer {VAULT_TOKEN}"},
            {"hosts": ["api.test.example:80"], "name": "X-Api-Key", "value": API_KEY}]  # fmt: skip
HOSTS = ["vault.test.example:443", "api.test.example:80", "secure.test.example:443", "other.test.example:80", "forged.test.example:443"]


def _request(base_image: Any, code: str, inject: list[dict[str, Any]] = INJECTED, **fields: Any) -> RunRequest:
    return RunRequest(image=base_image.tag, code=code, entrypoint="main", limits=RunLimits(timeout_seconds=30), egress=HOSTS,
                      inject_headers=inject, **fields)  # fmt: skip


FETCH = '''
import os, ssl, urllib.error, urllib.request

def fetch(url, cafile=None):
    context = ssl.create_default_context(cafile=cafile) if cafile else None  # None: the default trust (SSL_CERT_FILE)
    try:
        with urllib.request.urlopen(url, timeout=15, context=context) as answer:
            return {"status": answer.status, "body": answer.read().decode(errors="replace")[:200]}
    except urllib.error.HTTPError as error:
        return {"status": error.code, "body": error.read().decode(errors="replace")[:300]}
    except Exception as error:
        return {"status": None, "body": f"{type(error).__name__}: {error}"[:300]}

def environments():
    """The skill's own environment, and every other process's it can read."""
    seen = [dict(os.environ)]
    for pid in os.listdir("/proc"):
        try:
            with open(f"/proc/{pid}/environ", "rb") as fh:
                seen.append(fh.read().decode(errors="replace"))
        except (OSError, ValueError):
            pass
    return seen
'''


def _seen_by(host: str) -> list[dict[str, str]]:
    return [headers for headers in _Upstream.seen if headers.get("Host", "").split(":")[0] == host]


def test_the_bound_hosts_get_their_headers_and_the_values_never_enter_the_container(
    docker_client: Any, base_image: Any, upstreams: Any, runtime: Runtime
) -> None:  # fmt: skip
    _Upstream.seen.clear()
    code = FETCH + '''
def main():
    return {"vault": fetch("https://vault.test.example/v1/data?token=in-the-query"),
            "api": fetch("http://api.test.example/now?q=1"),
            "secure": fetch("https://secure.test.example/", cafile="/tmp/skill/upstream-ca.pem"),
            "other": fetch("http://other.test.example/"),
            "trust": {name: os.environ.get(name) for name in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE")},
            "environments": environments()}
'''
    request = _request(base_image, code, files={"upstream-ca.pem": upstreams["ca"]}, runtime=runtime)
    result = _engine(upstreams).run(request)
    assert result.status == RunStatus.OK, result
    output = result.output
    assert output["vault"] == {"status": 200, "body": "upstream says hello"}, output["vault"]
    assert output["api"]["status"] == 200 and output["secure"]["status"] == 200 and output["other"]["status"] == 200, output
    assert output["trust"] == {"SSL_CERT_FILE": "/tmp/skillharbor-egress-ca.pem", "REQUESTS_CA_BUNDLE": "/tmp/skillharbor-egress-ca.pem"}
    # each bound host got its header; the approved hosts without a binding got neither
    assert [h.get("Authorization") for h in _seen_by("vault.test.example")] == [f"Bearer {VAULT_TOKEN}"]
    assert [h.get("X-Api-Key") for h in _seen_by("api.test.example")] == [API_KEY]
    for host in ("secure.test.example", "other.test.example"):
        assert [(h.get("Authorization"), h.get("X-Api-Key")) for h in _seen_by(host)] == [(None, None)]
    # never in the container (so nothing was redacted either), never in the result or its records
    everything = json.dumps(result.model_dump(mode="json"))
    assert VAULT_TOKEN not in everything and API_KEY not in everything and "[redacted]" not in everything
    records = {r["host"]: r for r in result.network}
    vault = records["vault.test.example"]
    assert (vault["tls"], vault["method"], vault["path"], vault["status"], vault["injected"]) == ("terminated", "GET", "/v1/data", 200,
                                                                                               ["Authorization"])  # fmt: skip
    assert vault["bytes_sent"] > 0 and vault["bytes_received"] > 0
    assert (records["api.test.example"]["path"], records["api.test.example"]["injected"]) == ("/now", ["X-Api-Key"])
    assert records["secure.test.example"]["tls"] == "tunnel" and records["secure.test.example"]["injected"] == []
    assert records["other.test.example"]["injected"] == [] and records["other.test.example"]["status"] == 200


def test_a_runs_ca_is_trusted_by_no_other_run(docker_client: Any, base_image: Any, upstreams: Any) -> None:
    code = FETCH + '''
def main(ca):
    with open("/run/skillharbor-egress/ca.pem") as fh:
        mine = fh.read()
    other = None
    if ca:
        with open("/tmp/other-ca.pem", "w") as fh:
            fh.write(ca)
        other = fetch("https://vault.test.example/", cafile="/tmp/other-ca.pem")
    return {"ca": mine, "with_the_other_runs_ca": other, "with_its_own": fetch("https://vault.test.example/")}
'''
    engine = _engine(upstreams)
    first = engine.run(_request(base_image, code, inputs={"ca": ""}))
    assert first.status == RunStatus.OK, first
    second = engine.run(_request(base_image, code, inputs={"ca": first.output["ca"]}))
    assert second.status == RunStatus.OK, second
    assert "BEGIN CERTIFICATE" in first.output["ca"] and first.output["ca"] != second.output["ca"]
    assert second.output["with_its_own"]["status"] == 200 and first.output["with_its_own"]["status"] == 200
    refused = second.output["with_the_other_runs_ca"]
    assert refused["status"] is None and "CERTIFICATE_VERIFY_FAILED" in refused["body"], refused


def test_an_upstream_certificate_failing_verification_is_a_clear_error_for_the_skill(
    docker_client: Any, base_image: Any, upstreams: Any
) -> None:  # fmt: skip
    code = FETCH + '''
def main():
    return fetch("https://forged.test.example/secret-place")
'''
    inject = [{"hosts": ["forged.test.example:443"], "name": "Authorization", "value": f"Bearer {VAULT_TOKEN}"}]
    result = _engine(upstreams).run(_request(base_image, code, inject=inject))
    assert result.status == RunStatus.OK, result
    assert result.output["status"] == 502, result.output
    assert "forged.test.example:443 upstream certificate failed verification" in result.output["body"]
    record = result.network[0]
    assert record["allowed"] is False and record["tls"] == "terminated" and "certificate" in record["reason"]
    assert not _seen_by("forged.test.example")  # the token was never sent

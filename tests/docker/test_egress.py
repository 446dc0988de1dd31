"""Egress from inside a real container: only through the runner's proxy, only to approved hosts.

Every upstream is a server on the host's 127.0.0.1, reached through the
loopback-only resolution override (``SKILLHARBOR_EGRESS_RESOLVE``); the
container itself has no network interface but its own loopback.
"""

from __future__ import annotations

import http.server
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from chalicelib.runner import egress, sandbox
from chalicelib.runner.doctor import GVISOR_RELEASE
from chalicelib.runner.spec import RunLimits, RunRequest, RunResult, RunStatus, Runtime
from chalicelib.runner.worker import DockerEngine
from chalicelib.settings import get_settings
from tls_support import TestCA, https_server

pytestmark = pytest.mark.docker

MEGABYTE = b"m" * (1024 * 1024)


class _Upstream(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    seen_headers: list[dict[str, str]] = []

    def do_GET(self) -> None:  # noqa: N802
        type(self).seen_headers.append(dict(self.headers))
        body = MEGABYTE if self.path == "/big" else b"weather: sunny"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


def _serve(server: http.server.HTTPServer) -> http.server.HTTPServer:
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture(scope="module")
def upstreams(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    plain = _serve(http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Upstream))
    ca = TestCA()
    tls = https_server(_Upstream, ca, tmp_path_factory.mktemp("tls"), "secure.test.example")
    yield {"http": plain.server_address[1], "https": tls.server_address[1], "ca": ca.pem.decode()}
    plain.shutdown()
    tls.shutdown()


def _settings(upstreams: dict[str, Any], **changes: Any) -> Any:
    overrides = (f"api.test.example:80:127.0.0.1:{upstreams['http']},"
                 f"other.test.example:80:127.0.0.1:{upstreams['http']},"
                 f"secure.test.example:443:127.0.0.1:{upstreams['https']}")  # fmt: skip
    return get_settings().model_copy(update={"egress_resolve": overrides, "pool_enabled": False, **changes})


def _request(base_image: Any, code: str, hosts: list[str], **fields: Any) -> RunRequest:
    return RunRequest(image=base_image.tag, code=code, entrypoint="main", limits=RunLimits(timeout_seconds=20), egress=hosts, **fields)


FETCH = '''
import os, ssl, urllib.error, urllib.request

def fetch(url, cafile=None):
    context = ssl.create_default_context(cafile=cafile) if cafile else None
    try:
        with urllib.request.urlopen(url, timeout=10, context=context) as answer:
            return {"status": answer.status, "body": answer.read().decode(errors="replace")[:200]}
    except urllib.error.HTTPError as error:
        return {"status": error.code, "body": error.read().decode(errors="replace")[:200]}
    except Exception as error:
        return {"status": None, "body": f"{type(error).__name__}: {error}"[:300]}
'''


def test_approved_host_is_reached_and_others_get_403_all_on_record(docker_client: Any, base_image: Any, upstreams: Any) -> None:
    code = FETCH + '''
def main():
    return {"approved": fetch("http://api.test.example/"), "unapproved": fetch("http://other.test.example/"),
            "tls": fetch("https://secure.test.example/", cafile="/tmp/skill/test-ca.pem"),
            "proxy": os.environ.get("HTTPS_PROXY")}
'''
    request = _request(base_image, code, ["api.test.example", "secure.test.example:443"], files={"test-ca.pem": upstreams["ca"]})
    result = DockerEngine(_settings(upstreams)).run(request)
    assert result.status == RunStatus.OK, result
    output = result.output
    assert output["approved"] == {"status": 200, "body": "weather: sunny"}
    assert output["unapproved"]["status"] == 403
    assert "other.test.example:80 is not approved for this skill" in output["unapproved"]["body"]
    assert output["tls"] == {"status": 200, "body": "weather: sunny"}, output["tls"]
    assert output["proxy"] == "http://127.0.0.1:3128"
    seen = {(r["host"], r["port"], r["allowed"]) for r in result.network}
    assert seen == {("api.test.example", 80, True), ("other.test.example", 80, False), ("secure.test.example", 443, True)}
    assert all(r["bytes_received"] > 0 for r in result.network if r["allowed"])


def test_code_ignoring_the_proxy_has_nothing_to_connect_to(docker_client: Any, base_image: Any, upstreams: Any) -> None:
    code = f'''
import socket
def main():
    tried = {{}}
    for target in [("127.0.0.1", {upstreams["http"]}), ("api.test.example", 80)]:
        try:
            socket.create_connection(target, timeout=3).close()
            tried[str(target)] = "connected"
        except OSError as error:
            tried[str(target)] = type(error).__name__
    with open("/proc/net/dev") as fh:
        interfaces = sorted(line.split(":")[0].strip() for line in fh.readlines()[2:])
    return {{"tried": tried, "interfaces": interfaces}}
'''
    result = DockerEngine(_settings(upstreams)).run(_request(base_image, code, ["api.test.example"]))
    assert result.status == RunStatus.OK, result
    assert "connected" not in result.output["tried"].values(), result.output
    assert result.output["interfaces"] == ["lo"]
    assert result.network == []


def test_byte_cap_ends_a_download_midway(docker_client: Any, base_image: Any, upstreams: Any) -> None:
    code = FETCH.replace("[:200]", "") + '''
def main():
    answer = fetch("http://api.test.example/big")
    return {"status": answer["status"], "length": len(answer["body"])}
'''
    result = DockerEngine(_settings(upstreams, egress_max_bytes=200_000)).run(_request(base_image, code, ["api.test.example"]))
    assert result.status == RunStatus.OK, result
    assert result.output["length"] < len(MEGABYTE)
    assert "byte cap of 200000 bytes" in result.network[0]["reason"]
    assert result.network[0]["bytes_received"] <= 200_000


def test_proxy_dying_mid_run_fails_the_run_without_hanging(docker_client: Any, base_image: Any, upstreams: Any) -> None:
    code = FETCH + '''
import time
def main():
    answers = [fetch("http://api.test.example/")]
    for _ in range(100):
        time.sleep(0.1)
        answers.append(fetch("http://api.test.example/"))
        if answers[-1]["status"] != 200:
            break
    return answers[-1]
'''
    settings = _settings(upstreams)
    request = _request(base_image, code, ["api.test.example"])
    with egress.egress_session(request, settings, grace_seconds=sandbox.STARTUP_GRACE_SECONDS) as session:
        proxy = session.proxy

        def kill_after_first() -> None:
            deadline = time.monotonic() + 30
            while not proxy.records and time.monotonic() < deadline:
                time.sleep(0.02)
            proxy.crash("killed by the test")

        threading.Thread(target=kill_after_first, daemon=True).start()
        result: RunResult = egress.finish(sandbox.run(docker_client, request, egress=session), session)
    assert result.status == RunStatus.EXCEPTION
    assert "egress proxy failed during the run (killed by the test)" in (result.error or "")
    assert result.network and result.network[0]["allowed"]


def test_an_approved_host_is_reached_from_a_gvisor_run(docker_client: Any, base_image: Any, upstreams: Any, runsc_registered: bool) -> None:
    if not runsc_registered:
        pytest.skip("gVisor (runsc) is not registered with this Docker engine (sudo make gvisor registers it)")
    code = FETCH + '''
def main():
    import platform
    return {"approved": fetch("http://api.test.example/"), "unapproved": fetch("http://other.test.example/"),
            "tls": fetch("https://secure.test.example/", cafile="/tmp/skill/test-ca.pem"), "kernel": platform.release()}
'''
    request = _request(base_image, code, ["api.test.example", "secure.test.example:443"], files={"test-ca.pem": upstreams["ca"]},
                       runtime=Runtime.RUNSC)
    result = DockerEngine(_settings(upstreams)).run(request)
    assert result.status == RunStatus.OK, result
    assert result.output["kernel"] == GVISOR_RELEASE, "the run did not happen under gVisor's kernel"
    assert result.output["approved"] == {"status": 200, "body": "weather: sunny"}, result.output
    assert result.output["tls"] == {"status": 200, "body": "weather: sunny"}, result.output
    assert result.output["unapproved"]["status"] == 403
    assert {(r["host"], r["allowed"]) for r in result.network} == {("api.test.example", True), ("other.test.example", False),
                                                                  ("secure.test.example", True)}

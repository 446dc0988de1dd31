"""Property-based sweep of the HTTP API from its own OpenAPI description: no 5xx for any generated input.

schemathesis generates requests (valid and schema-violating) for every
operation of the document ``GET /api/openapi.json`` serves, and sends them to
a local stack started in a subprocess (moto and Chalice's local server on
free loopback ports, no runner worker). Examples per operation are bounded
(SKILLHARBOR_FUZZ_EXAMPLES, default 25).

Left out: the operations that hand work to a runner worker and wait for it
(a build, a run, image cleanup and removal). Without a runner they wait for
their timeout by design, and cleanup with a real runner would remove images
of whatever else uses the engine. Their input validation, which runs before
any job is queued, is covered in test_bad_input.py.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

schemathesis = pytest.importorskip("schemathesis")

from hypothesis import HealthCheck, given, settings, strategies as st  # noqa: E402

from app import app  # noqa: E402
from chalicelib.api.openapi import openapi_document  # noqa: E402

ADMIN_KEY = "shk_admin_fuzz-key-0123456789abcdefghijkl"
EXAMPLES = int(os.environ.get("SKILLHARBOR_FUZZ_EXAMPLES", "25"))
PROJECT = Path(__file__).resolve().parents[2]

#: (method, path) the sweep leaves out; see the module docstring
RUNNER_BACKED = {
    ("POST", "/api/packages/install"),
    ("POST", "/api/packages/execute"),
    ("POST", "/api/skills/{skill_id}/execute"),
    ("POST", "/api/images/cleanup"),
    ("DELETE", "/api/packages/{skill_id}"),
}

SCHEMA = schemathesis.openapi.from_dict(openapi_document(app))
OPERATIONS = sorted(
    (op.method.upper(), op.path)
    for op in (result.ok() for result in SCHEMA.get_all_operations())
    if (op.method.upper(), op.path) not in RUNNER_BACKED
)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def live_api() -> Iterator[str]:
    """A local stack in a subprocess (loopback only); its API's base URL."""
    moto_port, api_port = free_port(), free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "SKILLHARBOR_"))}
    env.update(SKILLHARBOR_ADMIN_KEY=ADMIN_KEY, SKILLHARBOR_LOCAL_SCHEDULE_SECONDS="3600")
    process = subprocess.Popen(
        [sys.executable, "-m", "chalicelib.local.stack", "--no-runner", "--moto-port", str(moto_port), "--api-port", str(api_port)],
        cwd=PROJECT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    base_url = f"http://127.0.0.1:{api_port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            if process.poll() is not None:
                pytest.fail(f"the local stack exited with {process.returncode}")
            try:
                if requests.get(f"{base_url}/api/openapi.json", timeout=2).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                pytest.fail("the local stack did not come up in 90s")
            time.sleep(0.5)
        yield base_url
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)


def test_the_document_describes_every_route():
    described = {(m, p) for p, methods in openapi_document(app)["paths"].items() for m in (x.upper() for x in methods)}
    registered = {(m, p) for p, methods in app.routes.items() for m in methods}
    assert described == registered
    assert ("GET", "/api/queues/dead-letters") in described and ("GET", "/api/openapi.json") in described


def test_the_document_is_served_without_a_key(live_api):
    response = requests.get(f"{live_api}/api/openapi.json", timeout=10)
    assert response.status_code == 200
    assert response.json()["openapi"].startswith("3.")


@pytest.mark.slow
@pytest.mark.parametrize("method, path", OPERATIONS, ids=[f"{m} {p}" for m, p in OPERATIONS])
def test_no_server_error_for_generated_input(live_api, method, path):
    operation = SCHEMA[path][method]
    cases = st.one_of(operation.as_strategy(schemathesis.GenerationMode.POSITIVE),
                      operation.as_strategy(schemathesis.GenerationMode.NEGATIVE))  # fmt: skip
    keys = st.sampled_from([{"Authorization": f"Bearer {ADMIN_KEY}"}, {"Authorization": "Bearer shk_unknown_key"}, {}])
    seen: list[str] = []

    @settings(max_examples=EXAMPLES, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(case=cases, auth=keys)
    def sweep(case, auth):
        response = case.call(base_url=live_api, headers={**(case.headers or {}), **auth}, timeout=60)
        seen.append(f"{response.status_code}")
        detail = f"{case.method} {case.formatted_path} query={case.query!r} body={str(case.body)[:300]!r} -> {response.text[:500]}"
        if path == "/api/health":
            # health reports a degraded stack (no runner here) as 503: a report, not an error
            assert response.status_code in (200, 503) and response.json()["status"] in ("ok", "degraded"), detail
            return
        assert response.status_code < 500, detail
        if response.status_code >= 400:
            body = response.json()  # every refusal is JSON...
            assert body.get("message") or body.get("Message"), detail  # ...and says why

    sweep()
    assert seen
    if os.environ.get("SKILLHARBOR_FUZZ_REPORT"):
        from collections import Counter

        print(f"\n{method} {path}: {dict(Counter(seen))}")

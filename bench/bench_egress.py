"""Overhead of the egress path: a 1 MB download and a small HTTPS GET, direct from the host vs from a sandbox.

    SKILLHARBOR_BASE_IMAGE_TAG=... .venv/bin/python -m bench.bench_egress [--rounds 20] [--out FILE]

Both upstreams are servers on 127.0.0.1 (the HTTPS one with a certificate from
a CA made here). "direct" is urllib on the host; "proxied" is the same urllib
code inside a container, through the harness relay, the mounted Unix socket
and the runner's proxy (``SKILLHARBOR_EGRESS_RESOLVE`` maps the names). The
in-container samples are timed inside the skill, so container start-up is
not counted: what is left is the proxy path. Every HTTPS GET is a new
connection (a TLS handshake each time), as a skill calling an API once would.
"""

from __future__ import annotations

import argparse
import http.server
import ssl
import sys
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from bench.common import ROOT, environment, log, ratio, summary, write_json

sys.path.insert(0, str(ROOT / "tests"))  # the test CA helper is shared with the egress tests
from tls_support import TestCA, https_server  # noqa: E402

MEGABYTE = b"b" * (1024 * 1024)


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_GET(self) -> None:  # noqa: N802
        body = MEGABYTE if self.path == "/mb" else b'{"ok": true}'
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


SKILL = '''
import ssl, time, urllib.request

def main(rounds, cafile_text):
    with open("/tmp/ca.pem", "w") as fh:
        fh.write(cafile_text)
    context = ssl.create_default_context(cafile="/tmp/ca.pem")
    mb, small = [], []
    for _ in range(rounds + 1):  # the first round warms up
        start = time.perf_counter()
        with urllib.request.urlopen("http://bulk.bench.example/mb", timeout=30) as answer:
            assert len(answer.read()) == 1024 * 1024
        mb.append((time.perf_counter() - start) * 1000)
        start = time.perf_counter()
        with urllib.request.urlopen("https://api.bench.example/", timeout=30, context=context) as answer:
            answer.read()
        small.append((time.perf_counter() - start) * 1000)
    return {"mb": mb[1:], "small": small[1:]}
'''


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--cpus", type=float, default=0.5, help="the sandbox's CPU limit (the default run limit is 0.5)")
    parser.add_argument("--out", default="")
    args = parser.parse_args(argv)

    from chalicelib.runner.spec import RunLimits, RunRequest
    from chalicelib.runner.worker import DockerEngine
    from chalicelib.settings import get_settings

    folder = Path(tempfile.mkdtemp(prefix="bench-egress-"))
    ca = TestCA("bench CA")
    cafile = ca.write(folder)
    plain = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    threading.Thread(target=plain.serve_forever, daemon=True).start()
    tls = https_server(_Handler, ca, folder, "api.bench.example")
    plain_port, tls_port = plain.server_address[1], tls.server_address[1]

    client_context = ssl.create_default_context(cafile=str(cafile))
    client_context.check_hostname = False  # direct: the name is 127.0.0.1, the certificate's is api.bench.example
    mb_direct, small_direct = [], []
    for round_no in range(args.rounds + 1):
        start = time.perf_counter()
        with urllib.request.urlopen(f"http://127.0.0.1:{plain_port}/mb", timeout=30) as answer:
            answer.read()
        elapsed = (time.perf_counter() - start) * 1000
        start2 = time.perf_counter()
        with urllib.request.urlopen(f"https://127.0.0.1:{tls_port}/", timeout=30, context=client_context) as answer:
            answer.read()
        if round_no:
            mb_direct.append(elapsed)
            small_direct.append((time.perf_counter() - start2) * 1000)

    settings = get_settings().model_copy(update={
        "pool_enabled": False,
        "egress_resolve": f"bulk.bench.example:80:127.0.0.1:{plain_port},api.bench.example:443:127.0.0.1:{tls_port}",
        "egress_max_bytes": 4 * (args.rounds + 2) * len(MEGABYTE),
        "egress_max_connections": 4 * (args.rounds + 2),
    })  # fmt: skip
    engine = DockerEngine(settings)
    base = engine.ensure_base()
    request = RunRequest(image=base.tag, code=SKILL, entrypoint="main", inputs={"rounds": args.rounds, "cafile_text": cafile.read_text()},
                         limits=RunLimits(timeout_seconds=120, cpus=args.cpus), egress=["bulk.bench.example:80", "api.bench.example:443"])  # fmt: skip
    result = engine.run(request)
    engine.close()
    if not result.success:
        raise SystemExit(f"the proxied run failed: {result.status} {result.error}")
    results = {
        "rounds": args.rounds,
        "sandbox_cpus": args.cpus,
        "download_1mb": {"direct": summary(mb_direct), "proxied": summary(result.output["mb"])},
        "https_small_get": {"direct": summary(small_direct), "proxied": summary(result.output["small"])},
        "environment": environment(),
    }
    for name in ("download_1mb", "https_small_get"):
        results[name]["ratio_p50"] = ratio(results[name]["proxied"], results[name]["direct"])
        log(f"{name}: direct p50 {results[name]['direct']['p50_ms']} ms, proxied p50 {results[name]['proxied']['p50_ms']} ms, "
            f"ratio {results[name]['ratio_p50']}")  # fmt: skip
    path = write_json(results, Path(args.out) if args.out else None, "egress")
    log(f"wrote {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

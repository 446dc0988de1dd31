"""The local stack: everything `make run` starts, in one process plus the runner worker.

* moto server (DynamoDB, S3, SQS, Step Functions) on 127.0.0.1:5000, with
  the Lambda seam routing the state machine's tasks to the app's functions,
  served with keep-alive connections (local/moto_server.py);
* the HTTP API (Chalice's local server) on 127.0.0.1:8000;
* the inbox poller (S3 → SQS → ``inbox_event``) and the scheduler;
* resources created from infra/ (the definitions that deploy).

``python -m chalicelib.local.stack --help`` lists the options; every port
and name also comes from settings / environment variables.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import os
import secrets
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

APP_NAME = "skillharbor"
#: how long the runner worker may take to stop (it drains for 10 s at most, then removes its containers)
RUNNER_GRACE_SECONDS = 20.0


@dataclass
class StackOptions:
    host: str = "127.0.0.1"
    moto_port: int = 5000
    api_port: int = 8000
    runner_port: int = 8001  # the worker's direct run endpoint (0: off, runs go through the queue only)
    stage: str = "dev"
    start_runner: bool = True
    workers: int = 1  # runner worker processes (SKILLHARBOR_LOCAL_WORKERS); worker i serves direct runs on runner_port + i
    registry_port: int = 0  # SKILLHARBOR_LOCAL_REGISTRY=1: the local image registry's port (0: none is started)
    admin_key: str | None = None
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.moto_port}"

    @property
    def api_url(self) -> str:
        return f"http://{self.host}:{self.api_port}"

    @property
    def function_prefix(self) -> str:
        return f"{APP_NAME}-{self.stage}-"


def local_environment(options: StackOptions) -> dict[str, str]:
    """The variables every part of the local stack (and the runner worker) runs with."""
    return {
        "AWS_ACCESS_KEY_ID": "local",
        "AWS_SECRET_ACCESS_KEY": "local",
        "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
        "SKILLHARBOR_AWS_ENDPOINT_URL": options.endpoint_url,
        "MOTO_PORT": str(options.moto_port),  # moto's state machine calls its own Lambda/SQS through this port
        **options.extra_env,
    }


class LocalStack:
    def __init__(self, options: StackOptions):
        self.options = options
        self.moto: Any = None
        self.api_server: Any = None
        self.api_thread: threading.Thread | None = None
        self.pollers: list[Any] = []
        self.scheduler: Any = None
        self.runners: list[subprocess.Popen[bytes]] = []
        self.registry: Any = None  # local/registry.py LocalRegistry when one was started
        self.admin_key: str | None = None
        self.provisioned: Any = None

    def start(self) -> LocalStack:
        os.environ.update(local_environment(self.options))
        self.admin_key = self.options.admin_key or os.environ.get("SKILLHARBOR_ADMIN_KEY") or "shk_admin_" + secrets.token_urlsafe(24)
        os.environ["SKILLHARBOR_ADMIN_KEY"] = self.admin_key
        # every runner job (queued or direct) is signed with it; generated, it lives as long as this stack
        os.environ.setdefault("SKILLHARBOR_RUNNER_SECRET", secrets.token_urlsafe(32))
        if self.options.start_runner and self.options.runner_port and self.options.workers == 1 and not os.environ.get("SKILLHARBOR_RUNNER_URL"):
            # the API posts runs straight to the worker it starts
            # loopback whatever --host says: the endpoint runs code for whoever holds the secret
            os.environ["SKILLHARBOR_RUNNER_LISTEN"] = f"127.0.0.1:{self.options.runner_port}"
            os.environ["SKILLHARBOR_RUNNER_URL"] = f"http://127.0.0.1:{self.options.runner_port}"

        from chalicelib.local import lambda_seam
        from chalicelib.local.moto_locks import serialise_dynamodb
        from chalicelib.local.moto_server import KeepAliveMotoServer
        from chalicelib.local.provision import provision
        from chalicelib.settings import get_settings
        from chalicelib.store import aws

        lambda_seam.install()
        serialise_dynamodb()
        self.moto = KeepAliveMotoServer(self.options.host, self.options.moto_port)  # moto's own closes every connection
        self.moto.start()
        # this process's own calls (API, pollers, pipeline functions) skip the socket; the worker's come over HTTP
        aws.send_through(self.moto.send if self.moto.in_process else None)
        lambda_seam.send_tasks_through(self.moto.send if self.moto.in_process else None)

        self.provisioned = provision(get_settings(), function_prefix=self.options.function_prefix)
        os.environ.update(self.provisioned.environment())

        from app import app

        lambda_seam.register_app(app, name_prefix=self.options.function_prefix)
        self._start_api(app)
        self._start_pollers(app)
        self._start_scheduler(app)
        if self.options.registry_port:
            from chalicelib.local.registry import start_registry

            self.registry = start_registry(self.options.registry_port)
            os.environ["SKILLHARBOR_REGISTRY"] = self.registry.address  # the workers push and pull through it
        if self.options.start_runner:
            for index in range(max(1, self.options.workers)):
                self._start_runner(index)
        return self

    @property
    def runner(self) -> subprocess.Popen[bytes] | None:
        """The first runner worker (the only one unless SKILLHARBOR_LOCAL_WORKERS is above 1)."""
        return self.runners[0] if self.runners else None

    def _start_api(self, app: Any) -> None:
        from chalice.config import Config
        from chalice.local import ThreadedHTTPServer, create_local_server

        # socketserver's listen backlog of 5 drops concurrent connections (resets, SYN retries of seconds)
        ThreadedHTTPServer.request_queue_size = 512
        config_file = Path(__file__).resolve().parents[2] / ".chalice" / "config.json"
        config = Config(chalice_stage=self.options.stage, config_from_disk=json.loads(config_file.read_text()))
        self.api_server = create_local_server(app, config, self.options.host, self.options.api_port)
        # Chalice's handler writes an answer's head and body in two sends, unbuffered: on a kept-alive connection
        # the body then waits for the client's delayed ACK (Nagle), 40 ms a request. Buffered, they leave together.
        self.api_server.server.RequestHandlerClass = functools.partial(_buffered_api_handler(), app_object=app, config=config)
        self.api_thread = threading.Thread(target=self.api_server.server.serve_forever, name="api", daemon=True)
        self.api_thread.start()

    def _sqs(self) -> Any:
        import boto3

        from chalicelib.settings import get_settings

        settings = get_settings()
        return boto3.client("sqs", region_name=settings.region, endpoint_url=settings.aws_endpoint_url)

    def _start_pollers(self, app: Any) -> None:
        from chalice.app import SQSEventConfig

        from chalicelib.local.pollers import SqsPoller

        sqs = self._sqs()
        for source in app.event_sources:
            if not isinstance(source, SQSEventConfig):
                continue
            url = sqs.get_queue_url(QueueName=source.queue)["QueueUrl"]
            poller = SqsPoller(sqs, url, app.handler_map[source.name], name=source.name, batch_size=source.batch_size)
            poller.start()
            self.pollers.append(poller)

    def _start_scheduler(self, app: Any) -> None:
        from chalice.app import ScheduledEventConfig

        from chalicelib.local.pollers import Scheduler, rate_seconds

        override = os.environ.get("SKILLHARBOR_LOCAL_SCHEDULE_SECONDS")
        jobs = []
        for source in app.event_sources:
            if isinstance(source, ScheduledEventConfig):
                expression = source.schedule_expression
                text = expression if isinstance(expression, str) else expression.to_string()
                interval = float(override) if override else (rate_seconds(text) or 3600.0)
                jobs.append((source.name, interval, app.handler_map[source.name]))
        self.scheduler = Scheduler(jobs)
        self.scheduler.start()

    def _start_runner(self, index: int = 0) -> None:
        """Runner worker ``index``: its own process (the only kind importing docker), its own direct port.

        It gets the AWS credentials and the direct-run secret it works with, and
        never the bootstrap admin key: the worker has no use for it. With
        several workers the API finds each through the fleet registry.
        """
        worker = Path(__file__).resolve().parents[1] / "runner" / "worker.py"
        if not worker.exists():
            return
        from chalicelib.child_env import child_environment

        needs = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", "SKILLHARBOR_RUNNER_SECRET")
        env = child_environment(keep=needs)
        if self.options.runner_port and self.options.workers > 1:
            env["SKILLHARBOR_RUNNER_LISTEN"] = f"127.0.0.1:{self.options.runner_port + index}"  # loopback, as above
        self.runners.append(subprocess.Popen([sys.executable, "-m", "chalicelib.runner.main"], env=env))

    def _stop_runner(self) -> None:
        """SIGTERM every worker, the grace, then SIGKILL; a worker that did not exit cleanly (killed, crashed,
        or it could not remove its containers) has its containers removed here."""
        began = time.monotonic()
        for runner in self.runners:
            if runner.poll() is None:
                runner.send_signal(signal.SIGTERM)
        for runner in self.runners:
            try:
                runner.wait(timeout=max(1.0, RUNNER_GRACE_SECONDS - (time.monotonic() - began)))
            except subprocess.TimeoutExpired:
                print(f"runner worker {runner.pid} did not stop within {RUNNER_GRACE_SECONDS:g}s: killing it", flush=True)
                runner.kill()
                runner.wait()
            if runner.returncode != 0:
                print(f"runner worker {runner.pid} exited with {runner.returncode}: removing the containers it left", flush=True)
                # the runner module talks to Docker, in a process of its own (this one never imports docker)
                creator = f"{socket.gethostname()}:{runner.pid}"
                try:
                    subprocess.run([sys.executable, "-m", "chalicelib.runner.leftovers", "--creator", creator], timeout=120, check=False)
                except subprocess.TimeoutExpired:
                    print(f"could not remove the containers of runner {creator} in time (label skillharbor.creator={creator})")
        if self.runners:
            codes = ", ".join(str(r.returncode) for r in self.runners)
            print(f"runner worker{'s' if len(self.runners) > 1 else ''} stopped in {time.monotonic() - began:.1f}s (exit {codes})", flush=True)

    def stop(self) -> None:
        for poller in self.pollers:
            poller.stop()
        if self.scheduler is not None:
            self.scheduler.stop()
        self._stop_runner()
        if self.registry is not None:
            self.registry.stop()
        if self.api_server is not None:
            self.api_server.server.shutdown()
            self.api_server.server.server_close()
        for poller in self.pollers:
            poller.join(timeout=5)
        if self.moto is not None:
            self.moto.stop()
            from chalicelib.store import aws

            aws.send_through(None)
        from chalicelib.local import lambda_seam

        lambda_seam.uninstall()


def _buffered_api_handler() -> Any:
    """Chalice's request handler with a buffered writer (chalice is imported only once the stack starts)."""
    from chalice.local import ChaliceRequestHandler

    class BufferedApiHandler(ChaliceRequestHandler):
        wbufsize = -1  # socketserver: a buffered writer, flushed once per request by http.server

    return BufferedApiHandler


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Run the skillharbor local stack (moto + API + pollers + runner).")
    parser.add_argument("--host", default=os.environ.get("SKILLHARBOR_LOCAL_HOST", "127.0.0.1"))
    parser.add_argument("--moto-port", type=int, default=int(os.environ.get("SKILLHARBOR_MOTO_PORT", "5000")))
    parser.add_argument("--api-port", type=int, default=int(os.environ.get("SKILLHARBOR_API_PORT", "8000")))
    parser.add_argument("--runner-port", type=int, default=int(os.environ.get("SKILLHARBOR_RUNNER_PORT", "8001")),
                        help="the runner worker's direct run endpoint (0: runs go through the queue only)")
    parser.add_argument("--no-runner", action="store_true", help="do not start the container-runner worker")
    parser.add_argument("--workers", type=int, default=int(os.environ.get("SKILLHARBOR_LOCAL_WORKERS", "1")),
                        help="runner worker processes, each serving direct runs on its own port (--runner-port + i)")
    parser.add_argument("--registry-port", type=int, default=int(os.environ.get("SKILLHARBOR_LOCAL_REGISTRY_PORT", "5050")),
                        help="port of the local image registry (started when SKILLHARBOR_LOCAL_REGISTRY=1)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    # moto's server logs every AWS call (pollers and heartbeats make several a second): keep its errors only
    logging.getLogger("werkzeug").setLevel(logging.WARNING)
    if args.workers < 1:
        parser.error("SKILLHARBOR_LOCAL_WORKERS (--workers) must be 1 or more")
    with_registry = os.environ.get("SKILLHARBOR_LOCAL_REGISTRY", "") not in ("", "0")
    behaviour_note = ""
    if args.no_runner and "SKILLHARBOR_BEHAVIOUR_CHECK" not in os.environ:
        # the behaviour check runs each imported skill in a runner: without one every non-admin code
        # import would fail closed at that step, so a runner-less stack says it skips the check instead
        os.environ["SKILLHARBOR_BEHAVIOUR_CHECK"] = "off"
        behaviour_note = "  behaviour     check off (no runner; set SKILLHARBOR_BEHAVIOUR_CHECK to keep it)\n"
    options = StackOptions(host=args.host, moto_port=args.moto_port, api_port=args.api_port, runner_port=args.runner_port,
                           start_runner=not args.no_runner, workers=args.workers,
                           registry_port=args.registry_port if with_registry else 0)  # fmt: skip
    stack = LocalStack(options)
    # the handlers only set a flag, polled below: a handler that set an Event could deadlock on its lock,
    # and an untimed wait would not run the handler of a signal that landed on another thread
    stop_requested: list[int] = []
    signal.signal(signal.SIGINT, lambda signum, _: stop_requested.append(signum))
    signal.signal(signal.SIGTERM, lambda signum, _: stop_requested.append(signum))
    generated = not os.environ.get("SKILLHARBOR_ADMIN_KEY")
    problem = _settings_problem()
    if problem:
        print(f"skillharbor: {problem}", file=sys.stderr, flush=True)
        return 2
    try:
        stack.start()
    except RuntimeError as error:  # e.g. the local registry could not start: say why, leave nothing running
        print(f"skillharbor: {error}", file=sys.stderr, flush=True)
        stack.stop()
        return 2
    runner_url = os.environ.get("SKILLHARBOR_RUNNER_URL") if options.start_runner else None
    print(
        "\nskillharbor local stack is up\n"
        f"  API           {options.api_url}   (try: curl {options.api_url}/api/health)\n"
        f"  AWS (moto)    {options.endpoint_url}\n"
        + (f"  runner        {runner_url}   (direct runs; the runner queue is the fallback)\n" if runner_url else "")
        + (f"  runners       {options.workers} workers on 127.0.0.1:{options.runner_port}-{options.runner_port + options.workers - 1}"
           "   (runs routed by the fleet registry: skillharbor runners)\n" if options.start_runner and options.workers > 1 else "")
        + (f"  registry      {stack.registry.address}   (images pushed after a build, pulled by digest)\n" if stack.registry else "")
        + behaviour_note
        + f"  inbox bucket  s3://{os.environ.get('SKILLHARBOR_INBOX_BUCKET', 'skillharbor-inbox')}\n"
        f"  admin key     {stack.admin_key}" + ("   (generated; set SKILLHARBOR_ADMIN_KEY to choose one)" if generated else "") + "\n"
        "Ctrl-C stops everything.\n",
        flush=True,
    )
    while not stop_requested:
        time.sleep(0.2)
    print("stopping…", flush=True)
    began = time.monotonic()
    stack.stop()
    print(f"stopped in {time.monotonic() - began:.1f}s", flush=True)
    return 0


def _settings_problem() -> str | None:
    """What is wrong with the configured settings, in one line per problem (None: nothing)."""
    from pydantic import ValidationError

    from chalicelib.settings import Settings

    try:
        Settings()
    except ValidationError as error:
        return "; ".join(str(e.get("msg", "")).removeprefix("Value error, ") for e in error.errors())
    return None


if __name__ == "__main__":
    code = main()
    # everything is stopped and flushed: skip the interpreter's teardown of moto's and botocore's
    # heaps, 1.5-3 s here after the stack had stopped (Ctrl-C should give the prompt back at once)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)

"""Run skill code in one fresh, locked-down container per execution.

The host side of the harness protocol (see ``harness.py``): create the
container with every isolation option set explicitly, write the job to its
stdin over the attach socket, read its stdout/stderr with caps, enforce the
wall-clock timeout from outside, and always remove the container.

Decisions:

* ``log_config`` is ``none``: output is read through the attach stream, so
  nothing the skill prints is ever kept on the host's disk.
* ``/tmp`` is also ``noexec``: skills may write and import Python files
  there, but cannot execute dropped binaries.
* ``nofile`` is capped (1024), core dumps are off, and the POSIX message
  queue quota is 0: that quota is per uid across the host, so one sandbox
  could otherwise exhaust it for every other one; ``/dev/mqueue`` is covered
  by an empty read-only tmpfs (and the ``mq_*`` syscalls are refused).
* The seccomp profile is Docker's default plus skillharbor's denials
  (``seccomp.py``: socket families other than unix/inet/inet6, io_uring,
  message queues).
* No init from the host: the harness itself is PID 1 (``init`` is not set,
  so nothing of the host is mounted in). The container starts as root with
  only CAP_SETUID/SETGID/SETPCAP, which the harness uses before reading
  anything to give the supervisor (uid 10000) and the skill (uid 10001)
  separate uids and then to drop every capability (``harness.enter_sandbox``).
* ``/etc/hostname``, ``/etc/hosts`` and ``/etc/resolv.conf`` are the engine's
  own bind mounts from its per-container directory (it makes them for every
  network mode and has no option to leave them out). They are read-only
  (because the root is), and their contents are fixed here so they name nothing of the host: resolver
  127.0.0.1 (nothing listens, lookups fail at once), no search domains, the
  hostname is the container's own ID (which the mount table shows anyway).
* The host deadline is the skill timeout plus a startup grace: the harness
  enforces the exact timeout on the skill's process group; the host kill is
  the backstop for a harness the skill managed to stop.
* The run ends as soon as the supervisor's authenticated result line has
  arrived when its status is ``ok`` or ``timeout`` (the container's state
  cannot change those); other outcomes wait for the container to stop and
  read its OOM flag.

The pieces (``create``, ``attach``, ``execute``) are shared with the warm
pool (``pool.py``), which starts containers the same way ahead of time.
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import queue
import secrets
import socket
import threading
import time
from dataclasses import dataclass
from typing import Any

import docker
import docker.errors
import docker.types
import docker.utils.socket

from chalicelib.errors import NotFound
from chalicelib.runner import command_mounts, engine, runtimes, seccomp
from chalicelib.runner.base_image import IN_IMAGE_HARNESS, IN_IMAGE_PYTHON
from chalicelib.runner.harness import READY_PREFIX, RESULT_PREFIX, SKILL_GID, SKILL_UID, ready_line, sign
from chalicelib.runner.spec import RunLimits, RunRequest, RunResult, RunStatus, Runtime

log = logging.getLogger("skillharbor.runner")

#: the skill's uid; the container itself starts as root only for the harness to split uids
SKILL_USER = f"{SKILL_UID}:{SKILL_GID}"
CONTAINER_USER = "0:0"
#: what the harness needs for that split, and drops (with everything else) before reading its job
HARNESS_CAPABILITIES = ["SETUID", "SETGID", "SETPCAP"]
#: resolv.conf of the sandbox: nothing listens there, so lookups fail at once, and no host resolver is named
SANDBOX_RESOLVER = "127.0.0.1"
#: the supervisor is stdlib-only: -S skips site-packages (and any .pth code in them)
HARNESS_COMMAND = [IN_IMAGE_PYTHON, "-I", "-S", IN_IMAGE_HARNESS, "--sandbox"]
#: container start + interpreter start, on top of the skill's own timeout
STARTUP_GRACE_SECONDS = 10.0
MAX_HARNESS_STDERR = 64 * 1024
SAFE_ENVIRONMENT = {
    "PATH": "/opt/skillharbor/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
    "HOME": "/tmp",
    "LANG": "C.UTF-8",
    "PYTHONDONTWRITEBYTECODE": "1",
}


def stdout_cap(max_output_bytes: int) -> int:
    """Bytes of container stdout the host accepts: the result document holds
    up to three capped fields, JSON-escaped (ASCII) at worst 6x."""
    return 8 * max_output_bytes + 64 * 1024


def result_stdout_cap(limits: RunLimits) -> int:
    """``stdout_cap`` plus, for a command run, its whole workspace coming back in base64 (4/3) with JSON framing."""
    return stdout_cap(limits.max_output_bytes) + command_mounts.workspace_stdout_allowance(limits.workspace_mb)


def host_config(api: docker.APIClient, request: RunRequest, *, mounts: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """``mounts``: only the egress proxy's socket directory, for runs granted hosts (``egress.py``)."""
    options = runtimes.adapt(shared_host_options(request), request.runtime, request.limits)
    return api.create_host_config(**options, mounts=mounts or None)


def shared_host_options(request: RunRequest) -> dict[str, Any]:
    """The isolation settings of every run, whatever its runtime (``runtimes.adapt`` adds the
    runtime and the few settings that must differ for it)."""
    limits = request.limits
    memory = f"{limits.memory_mb}m"
    return dict(
        network_mode="none",
        read_only=True,
        tmpfs={
            "/tmp": f"rw,size={limits.tmpfs_mb}m,mode=1777,nosuid,nodev,noexec",
            "/dev/mqueue": "ro,size=4k,mode=0555,nosuid,nodev,noexec",  # hides the message queue file system
            **command_mounts.tmpfs_mounts(limits.workspace_mb),
        },
        cap_drop=["ALL"],
        cap_add=list(HARNESS_CAPABILITIES),
        security_opt=["no-new-privileges", seccomp.security_option()],
        pids_limit=limits.pids,
        mem_limit=memory,
        memswap_limit=memory,  # equal: no swap on top of the memory limit
        nano_cpus=int(limits.cpus * 1e9),
        ipc_mode="none",  # no /dev/shm
        privileged=False,
        dns=[SANDBOX_RESOLVER],
        dns_search=["."],  # no search domains (else the host's are copied in)
        log_config=docker.types.LogConfig(type=docker.types.LogConfig.types.NONE),
        ulimits=[
            docker.types.Ulimit(name="nofile", soft=1024, hard=1024),
            docker.types.Ulimit(name="core", soft=0, hard=0),
            docker.types.Ulimit(name="msgqueue", soft=0, hard=0),
        ],
    )


def parse_result_line(stdout: bytes, nonce: str) -> dict[str, Any] | None:
    """The supervisor's document, or None. Lines without a valid MAC for this
    run's nonce (anything the skill could have written) are ignored."""
    prefix = RESULT_PREFIX.encode() + b" "
    for line in stdout.split(b"\n"):
        if not line.startswith(prefix):
            continue
        parts = line[len(prefix):].split(b" ", 1)
        if len(parts) != 2:
            continue
        mac, body = parts
        if hmac.compare_digest(mac.decode("ascii", "replace"), sign(nonce, body)):
            try:
                document = json.loads(body)
            except ValueError:
                return None
            return document if isinstance(document, dict) else None
    return None


class _StreamReader(threading.Thread):
    """Demultiplexes the attach stream into capped stdout/stderr buffers.

    It also watches stdout line by line: ``ready`` is set by a ready line
    authenticated with ``ready_key`` (pooled containers), and ``finished``
    by a result line authenticated with ``nonce`` (kept in ``document``) or
    by the end of the stream.
    """

    def __init__(self, sock: Any, stdout_limit: int, *, nonce: str | None = None, ready_key: str | None = None):
        super().__init__(daemon=True)
        self.sock = sock
        self.stdout_limit = stdout_limit
        self.stdout = bytearray()
        self.stderr = bytearray()
        self.stdout_overflow = False
        self.error: BaseException | None = None
        self.nonce = nonce
        self.ready_key = ready_key
        self.ready = threading.Event()
        self.finished = threading.Event()
        self.document: dict[str, Any] | None = None
        self.ready_at: float | None = None
        self._line_start = 0
        self._scanned = 0

    def run(self) -> None:
        try:
            for stream, data in docker.utils.socket.frames_iter(self.sock, tty=False):
                if stream == docker.utils.socket.STDOUT:
                    room = self.stdout_limit - len(self.stdout)
                    if len(data) > room:
                        self.stdout_overflow = True
                    self.stdout += data[: max(room, 0)]
                    self._scan_lines()
                elif stream == docker.utils.socket.STDERR:
                    self.stderr += data[: max(MAX_HARNESS_STDERR - len(self.stderr), 0)]
        except (OSError, ValueError) as exc:  # socket closed under us after a kill
            self.error = exc
        finally:
            self.finished.set()

    def _scan_lines(self) -> None:
        if self.document is not None:
            return
        buffer = self.stdout
        while True:
            end = buffer.find(b"\n", max(self._line_start, self._scanned))
            if end < 0:
                self._scanned = len(buffer)  # a long line arriving in pieces is searched once
                return
            line = bytes(buffer[self._line_start:end])
            self._line_start = end + 1
            if line.startswith(_RESULT_START) and self.nonce is not None:
                document = parse_result_line(line, self.nonce)
                if document is not None:
                    self.document = document
                    self.finished.set()
                    return
            elif line.startswith(_READY_START) and self.ready_key is not None:
                if hmac.compare_digest(line, ready_line(self.ready_key)):
                    self.ready_at = time.monotonic()
                    self.ready.set()


_RESULT_START = RESULT_PREFIX.encode() + b" "
_READY_START = READY_PREFIX.encode() + b" "


def _raw_socket(sock: Any) -> socket.socket:
    return getattr(sock, "_sock", sock)


@dataclass
class Attachment:
    """A created container with its attach stream being read."""

    container_id: str
    sock: Any
    reader: _StreamReader

    @property
    def raw(self) -> socket.socket:
        return _raw_socket(self.sock)

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


def job_bytes(request: RunRequest, nonce: str, egress: Any = None) -> bytes:
    limits = request.limits
    extra = egress.job_fields() if egress is not None else {}
    if request.env:
        extra["env"] = request.env
    return json.dumps(
        {
            "code": request.code,
            "entrypoint": request.entrypoint,
            "inputs": request.inputs,
            "files": request.files,
            "max_output_bytes": limits.max_output_bytes,
            "timeout_seconds": limits.timeout_seconds,
            "nonce": nonce,
            "script": request.script,
            **command_mounts.harness_fields(request),
            **extra,
        }
    ).encode()


def create(
    api: docker.APIClient, request: RunRequest, *, command: list[str], role: str = "run", labels: dict[str, str] | None = None,
    egress: Any = None,
) -> str:
    """Create (not start) a container for ``request`` with every isolation setting."""
    container = api.create_container(
        request.image,
        command=command,
        user=CONTAINER_USER,
        working_dir="/tmp",
        environment=dict(SAFE_ENVIRONMENT),
        stdin_open=True,
        detach=False,  # with stdin_open this sets StdinOnce: our EOF closes the harness stdin
        tty=False,
        network_disabled=False,  # network_mode="none" does the isolation (checked by the doctor)
        labels={engine.MANAGED_LABEL: "true", engine.ROLE_LABEL: role, engine.CREATOR_LABEL: engine.creator(), **(labels or {})},
        host_config=host_config(api, request, mounts=[egress.mount()] if egress is not None else None),
    )
    return str(container["Id"])


def attach(
    api: docker.APIClient, container_id: str, stdout_limit: int, *, timeout: float | None, nonce: str | None = None,
    ready_key: str | None = None,
) -> Attachment:  # fmt: skip
    """Attach to a created container (before it starts, so no output is lost)."""
    sock = api.attach_socket(container_id, params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1})
    _raw_socket(sock).settimeout(timeout)
    reader = _StreamReader(sock, stdout_limit, nonce=nonce, ready_key=ready_key)
    reader.start()
    return Attachment(container_id, sock, reader)


def run(
    client: docker.DockerClient, request: RunRequest, *, remover: BackgroundRemover | None = None, egress: Any = None
) -> RunResult:
    """Execute ``request`` in a new container. Never raises for what the
    skill does; raises NotFound when the image is not on the host. An
    unreachable engine gives status ``runner_unavailable``. With a
    ``remover`` the container is removed after the result is returned
    (off the request path); without one, before."""
    started = time.monotonic()
    try:
        return _run(client, request, started, remover, egress)
    except docker.errors.APIError as exc:
        if runtimes.is_unknown_runtime(exc):
            return runtime_missing(request, started)
        if isinstance(exc, docker.errors.ImageNotFound) or (isinstance(exc, docker.errors.NotFound) and "image" in str(exc).lower()):
            raise NotFound(f"image {request.image} is not present on the Docker host", image=request.image) from exc
        return unavailable(request, exc, started)
    except docker.errors.ImageNotFound as exc:
        raise NotFound(f"image {request.image} is not present on the Docker host", image=request.image) from exc
    except (docker.errors.DockerException, *engine.UNREACHABLE_ERRORS) as exc:
        if isinstance(exc, docker.errors.NotFound) and "image" in str(exc).lower():
            raise NotFound(f"image {request.image} is not present on the Docker host", image=request.image) from exc
        return unavailable(request, exc, started)


def runtime_missing(request: RunRequest, started: float) -> RunResult:
    """Fail closed: the run's tier is not on this engine, and no other tier will do instead."""
    result = RunResult(
        status=RunStatus.RUNNER_UNAVAILABLE,
        error=f"the isolation rules require the {request.runtime.value} runtime, which this Docker engine does not have "
        "registered; the run was refused rather than run under a weaker runtime (an admin registers gVisor with "
        "`sudo make gvisor`, see docs/DEPLOYMENT.md)",
        duration_ms=int((time.monotonic() - started) * 1000),
        image=request.image,
    )
    result._runtime_missing = True
    return result


def unavailable(request: RunRequest, exc: BaseException, started: float, *, may_have_run: bool = False) -> RunResult:
    """``may_have_run``: the engine failed after the container started (the job may have run)."""
    result = RunResult(
        status=RunStatus.RUNNER_UNAVAILABLE,
        error=f"Docker engine unavailable: {exc}",
        duration_ms=int((time.monotonic() - started) * 1000),
        image=request.image,
    )
    result._may_have_run = may_have_run
    return result


def _run(
    client: docker.DockerClient, request: RunRequest, started: float, remover: BackgroundRemover | None, egress: Any = None
) -> RunResult:
    api = client.api
    limits = request.limits
    nonce = secrets.token_hex(32)
    host_deadline = limits.timeout_seconds + STARTUP_GRACE_SECONDS
    container_id = create(api, request, command=list(HARNESS_COMMAND), egress=egress)
    attachment = None
    running = False
    try:
        attachment = attach(api, container_id, result_stdout_cap(limits), timeout=host_deadline + 30, nonce=nonce)
        api.start(container_id)
        running = True
        return execute(api, request, attachment, nonce, started, egress=egress)
    except (docker.errors.DockerException, *engine.UNREACHABLE_ERRORS) as exc:
        if not running:
            raise
        return unavailable(request, exc, started, may_have_run=True)
    finally:
        if attachment is not None:
            attachment.close()
        if remover is not None:
            remover.remove(container_id)
        else:
            _remove(api, container_id)


def execute(
    api: docker.APIClient, request: RunRequest, attachment: Attachment, nonce: str, started: float, *, framed: bool = False,
    egress: Any = None,
) -> RunResult:
    """Send the job to a started (or, ``framed``, a pooled and ready)
    container and collect its outcome. The caller removes the container."""
    limits = request.limits
    host_deadline = limits.timeout_seconds + STARTUP_GRACE_SECONDS
    reader, container_id = attachment.reader, attachment.container_id
    sent = time.monotonic()
    job = job_bytes(request, nonce, egress)
    try:
        attachment.raw.sendall(b"%d\n" % len(job) + job if framed else job)
        attachment.raw.shutdown(socket.SHUT_WR)
    except OSError:
        pass  # the container already ended; its state tells what happened
    reader.finished.wait(max(0.0, host_deadline - (time.monotonic() - sent)))
    document = reader.document
    if document is not None and document.get("status") in (RunStatus.OK.value, RunStatus.TIMEOUT.value):
        # the container's state cannot change these outcomes: skip waiting for it to stop
        duration_ms = int((time.monotonic() - started) * 1000)
        return _interpret(request, nonce, reader, False, {}, None, duration_ms)
    reader.join(max(0.0, host_deadline - (time.monotonic() - sent)))
    killed_by_host = reader.is_alive()
    if killed_by_host:
        try:
            api.kill(container_id)
        except docker.errors.APIError:
            pass  # already gone
        reader.join(10)
    exit_code = _wait(api, container_id)
    state = api.inspect_container(container_id).get("State", {})
    duration_ms = int((time.monotonic() - started) * 1000)
    return _interpret(request, nonce, reader, killed_by_host, state, exit_code, duration_ms)


def _wait(api: docker.APIClient, container_id: str) -> int | None:
    try:
        return int(api.wait(container_id, timeout=30).get("StatusCode"))
    except Exception:  # requests ReadTimeout: kill and try once more
        try:
            api.kill(container_id)
            return int(api.wait(container_id, timeout=30).get("StatusCode"))
        except Exception:
            return None


class BackgroundRemover:
    """Removes finished run containers on its own thread, so a cold run's
    answer does not wait for the kill and removal (about 100 ms here)."""

    RETRIES = 5  # a container that cannot be removed keeps running skill code: keep trying, then say so loudly

    def __init__(self, api: docker.APIClient):
        self.api = api
        self._queue: queue.Queue[tuple[str, int] | None] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def remove(self, container_id: str) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, name="run-remover", daemon=True)
                self._thread.start()
        self._queue.put((container_id, 0))

    def _loop(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                container_id, attempt = item
                try:
                    if not _remove(self.api, container_id):
                        raise RuntimeError("the engine refused the removal three times")
                except Exception as exc:
                    if attempt + 1 < self.RETRIES:
                        log.warning("could not remove run container %s (%s); retrying", container_id[:12], exc)
                        timer = threading.Timer(2.0**attempt, self._queue.put, args=((container_id, attempt + 1),))
                        timer.daemon = True
                        timer.start()
                    else:
                        log.error("gave up removing run container %s after %d attempts: %s; it is swept when a "
                                  "runner next connects, or remove it by hand", container_id[:12], self.RETRIES, exc)  # fmt: skip
            finally:
                self._queue.task_done()

    def wait(self, timeout: float = 30.0) -> bool:
        """True once every container handed over so far is removed."""
        return drained(self._queue, timeout)

    def close(self, timeout: float = 30.0) -> None:
        self.wait(timeout)
        if self._thread is not None:
            self._queue.put(None)
            self._thread.join(timeout)


def drained(work: queue.Queue[Any], timeout: float) -> bool:
    """Wait until every item put on ``work`` is done (task_done); False at the timeout."""
    deadline = time.monotonic() + timeout
    while work.unfinished_tasks and time.monotonic() < deadline:
        time.sleep(0.01)
    return not work.unfinished_tasks


def remove_orphaned_runs(api: docker.APIClient) -> list[str]:
    """Remove run containers left by a runner process on this host that has
    died (killed mid-job: nobody will collect or remove them).

    Only stopped ones: a running container is left alone even if its
    creator looks dead (a runner in another PID namespace with the same
    host name would look so); an orphan's harness ends at the job's
    timeout, and the next sweep removes it."""
    host = socket.gethostname()
    removed = []
    try:
        found = api.containers(all=True, filters={"label": f"{engine.ROLE_LABEL}=run"})
    except Exception as exc:
        log.warning("could not list run containers: %s", exc)
        return removed
    for container in found:
        creator_host, _, pid = (container.get("Labels") or {}).get(engine.CREATOR_LABEL, "").rpartition(":")
        if container.get("State") == "running":
            continue
        if creator_host == host and pid.isdigit() and not process_alive(int(pid)):
            _remove(api, container["Id"])
            removed.append(container["Id"])
    return removed


def process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _remove(api: docker.APIClient, container_id: str) -> bool:
    """Kill and remove; False when the engine kept refusing (connection errors raise)."""
    for _ in range(3):
        try:
            api.remove_container(container_id, force=True)
            return True
        except docker.errors.NotFound:
            return True
        except docker.errors.APIError:
            time.sleep(0.2)  # "removal already in progress" and similar
    return False


def _interpret(
    request: RunRequest,
    nonce: str,
    reader: _StreamReader,
    killed_by_host: bool,
    state: dict[str, Any],
    exit_code: int | None,
    duration_ms: int,
) -> RunResult:
    limits = request.limits
    common = {"duration_ms": duration_ms, "image": request.image, "runtime": request.runtime}
    harness_stderr = bytes(reader.stderr).decode("utf-8", "replace")
    if killed_by_host:
        return RunResult(
            status=RunStatus.TIMEOUT,
            exit_code=exit_code,
            error=f"no result within {limits.timeout_seconds:g}s (+{STARTUP_GRACE_SECONDS:g}s startup); the container was killed",
            stderr=harness_stderr,
            **common,
        )
    document = parse_result_line(bytes(reader.stdout), nonce)
    oom = bool(state.get("OOMKilled"))
    if document is None:
        if oom:
            status, error = RunStatus.OOM_KILLED, "the container ran out of memory and was killed"
        elif reader.stdout_overflow:
            status = RunStatus.OUTPUT_TRUNCATED
            error = f"the container wrote more than {result_stdout_cap(limits)} bytes to stdout"
        else:
            status = RunStatus.EXIT_NONZERO
            error = f"the harness returned no result (container exit code {exit_code})"
        return RunResult(status=status, exit_code=exit_code, error=error, stderr=harness_stderr, **common)
    try:
        status = RunStatus(document.get("status"))
    except ValueError:
        status = RunStatus.EXIT_NONZERO
    if oom and status not in (RunStatus.OK, RunStatus.TIMEOUT):
        status = RunStatus.OOM_KILLED
    skill_exit = document.get("exit_code")
    result = RunResult(
        status=status,
        output=document.get("output") if status in (RunStatus.OK, RunStatus.OUTPUT_TRUNCATED) else None,
        stdout=str(document.get("stdout") or ""),
        stderr=str(document.get("stderr") or ""),
        exit_code=skill_exit if isinstance(skill_exit, int) else exit_code,
        error=document.get("error") or (
            "the skill ran out of memory and was killed" if status == RunStatus.OOM_KILLED else None
        ),
        traceback=document.get("traceback"),
        stdout_truncated=bool(document.get("stdout_truncated")),
        stderr_truncated=bool(document.get("stderr_truncated")),
        result_truncated=bool(document.get("result_truncated")),
        notes=[str(note) for note in document.get("notes") or []][:10],
        **common,
    )
    if request.command is not None:
        command_mounts.take_workspace(result, document)
    return result

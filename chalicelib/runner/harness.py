"""The in-container harness (stdlib only; installed at /opt/skillharbor/harness.py).

It is the container's PID 1 and acts as a *supervisor*: the skill never runs
in this process.

Protocol
--------
stdin: one JSON job ::

    {"code": str, "entrypoint": str, "inputs": {...}, "files": {path: text},
     "max_output_bytes": int, "timeout_seconds": float, "nonce": hex str,
     "workdir": str (optional, default /tmp/skill; used by host-side tests)}

stdout: exactly one line written by the supervisor alone ::

    SKILLHARBOR-RESULT-v1 <hmac-sha256(nonce, body) hex> <body JSON>

where body is ``{status, output, stdout, stderr, error, traceback,
stdout_truncated, stderr_truncated, result_truncated, signal, notes}``.

Why this shape (the skill must not forge its result nor change its code):

* in a container (``--sandbox``) the supervisor runs with effective uid
  10000 and the skill with uid 10001 (see
  :func:`enter_sandbox`); the supervisor writes the skill's code and files,
  so they are read-only to the skill, and it is PID 1, so no other process
  holds the container's stdin/stdout;
* the supervisor marks itself non-dumpable (``prctl(PR_SET_DUMPABLE, 0)``),
  so the child can open neither ``/proc/1/fd/*`` nor ``mem``;
* the skill runs in a child (``python -I skill_child.py``)
  whose stdout/stderr are pipes to the supervisor, with ``close_fds``; its
  return value travels on a separate pipe;
* the host still sends a per-run ``nonce`` that only the supervisor sees and
  the supervisor authenticates its line with it: forged or altered lines fail
  the check (should anything else ever reach the container's stdout).

Ending a run: once the entrypoint's result line is on its pipe, the timeout
no longer applies. The child waits up to THREAD_GRACE_SECONDS for
non-daemon threads, runs atexit callbacks and exits; whatever still runs
EXIT_GRACE_SECONDS after the result (the child itself, forked or detached
processes) is killed, the result stands and ``notes`` says what was killed.

Calling convention (documented for skill authors):

* ``def main(a, b=1)``: receives the inputs whose names match parameters;
  other inputs are ignored; a missing required parameter is an exception
  naming it.
* ``def main(**kwargs)``: receives every input.
* ``def main(data)``: the single-``data`` style. When the only parameter is
  named ``data`` and the inputs have no key ``data``, the whole inputs dict
  is passed as ``data``.
* ``async def`` entrypoints are awaited. The return value must be JSON
  serialisable (numpy-like values with ``tolist()`` and dates with
  ``isoformat()`` are converted); otherwise the status is ``exception``.
"""

from __future__ import annotations

import ctypes
import hashlib
import hmac
import json
import os
import selectors
import signal
import stat
import subprocess
import sys
import time

RESULT_PREFIX = "SKILLHARBOR-RESULT-v1"
SKILL_DIR = "/tmp/skill"
COMMAND_WORKSPACE = "/workspace"  # workspace_io.WORKSPACE_DIR: mounted in command runs' containers only
DEFAULT_MAX_OUTPUT = 1024 * 1024
MAX_JOB_BYTES = 64 * 1024 * 1024
#: how long to keep draining pipes held open by the skill's leftovers
DRAIN_GRACE_SECONDS = 0.5
#: after the entrypoint returned: how long the child waits for non-daemon threads ...
THREAD_GRACE_SECONDS = 1.0
#: ... and how long the supervisor waits for the child to exit (atexit included) before killing it
EXIT_GRACE_SECONDS = 2.0
#: room on the result pipe beyond the return value: JSON framing and the leftover-threads line
RESULT_MARGIN_BYTES = 4096
PR_SET_DUMPABLE = 4
PR_CAPBSET_DROP = 24
#: the supervisor's uid (owns the skill's files) and the skill's (see enter_sandbox)
SUPERVISOR_UID = SUPERVISOR_GID = 10000
SKILL_UID = SKILL_GID = 10001

#: the skill's process: its own program (``skill_child.py`` beside this file), run as ``python -I``
CHILD_PROGRAM = os.path.join(os.path.dirname(os.path.abspath(__file__)), "skill_child.py")


def make_non_dumpable() -> bool:
    """Stop same-uid processes from reading our fds/memory via /proc."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


# --- the sandbox: separate uids, PID 1 ---------------------------------------------
#
# In a container (``--sandbox``) the harness starts as root with only
# CAP_SETUID, CAP_SETGID and CAP_SETPCAP and, before it reads anything,
# empties the capability bounding set and switches to real uid 10001 (the
# skill's), effective and saved uid 10000. Changing every uid away from 0
# clears all capabilities, so from then on nothing in the container has any.
# The effective uid 10000 owns the skill's code and files (read-only to the
# skill); the shared real uid lets the supervisor signal the skill's
# processes without CAP_KILL. The skill runs with uid 10001 throughout.
# The harness is the container's PID 1: it forwards termination signals to
# the skill, reaps orphans, and its exit ends every process left behind.

#: termination signals forwarded to the skill's process group (PID 1 ignores what it has no handler for)
FORWARDED_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGUSR1, signal.SIGUSR2)
_skill_ids: tuple[int, int] | None = None  # (uid, gid) children switch to, once enter_sandbox succeeded
_forward_to: list[int] = []  # process groups of the running children


def _capability_sets() -> dict[str, int]:
    sets = {}
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("Cap"):
                name, _, value = line.partition(":")
                sets[name] = int(value.strip(), 16)
    return sets


def enter_sandbox() -> str | None:
    """Separate the supervisor's uid from the skill's and become PID 1's
    supervisor; returns what went wrong (the run is then refused)."""
    global _skill_ids
    if os.getuid() != 0:
        return "the harness must start as root to run the skill under a uid of its own"
    libc = ctypes.CDLL(None, use_errno=True)
    for cap in range(64):  # until EINVAL: past the kernel's last capability
        if libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) != 0 and ctypes.get_errno() == 22:
            break
    try:
        os.setgroups([])
        os.setresgid(SKILL_GID, SUPERVISOR_GID, SUPERVISOR_GID)
        os.setresuid(SKILL_UID, SUPERVISOR_UID, SUPERVISOR_UID)
    except OSError as exc:
        return f"could not switch to the supervisor's uid: {exc}"
    sets = _capability_sets()  # gVisor has no CapAmb line (no ambient capabilities there)
    if os.getresuid() != (SKILL_UID, SUPERVISOR_UID, SUPERVISOR_UID) or any(
        sets.get(name, 1) for name in ("CapPrm", "CapEff")
    ) or sets.get("CapAmb", 0):
        return "the supervisor kept privileges after switching uid"
    _skill_ids = (SKILL_UID, SKILL_GID)
    if os.getpid() == 1:
        for signum in FORWARDED_SIGNALS:
            signal.signal(signum, _forward_signal)
    return None


def _forward_signal(signum: int, frame: object) -> None:
    if not _forward_to:
        os._exit(128 + signum)  # nothing runs yet: stop as an init would
    for pgid in list(_forward_to):
        try:
            os.killpg(pgid, signum)
        except OSError:
            pass


def reap_orphans(child: subprocess.Popen | None = None) -> None:
    """Collect exited processes re-parented to us (PID 1); ``child``'s own
    status is kept for its Popen."""
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        if child is not None and pid == child.pid and child.returncode is None:
            child.returncode = os.waitstatus_to_exitcode(status)


def prepare_skill_dir(path: str) -> str | None:
    """Create the skill's directory (ours, 0755), or check that the existing
    one is ours and not a link; returns a problem or None."""
    try:
        os.mkdir(path, 0o755)
    except FileExistsError:
        pass
    except OSError as exc:
        return f"cannot create the skill directory: {exc}"
    info = os.lstat(path)
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid() or info.st_mode & 0o022:
        return "the skill directory was not created by the supervisor"
    return None


def write_skill_files(job: dict) -> str | None:
    """Write the skill's code (``skill_main.py``) and files under its
    directory, owned by the supervisor and read-only to everyone else."""
    skill_dir = job.get("workdir") or SKILL_DIR
    problem = prepare_skill_dir(skill_dir)
    if problem:
        return problem
    files = dict(job.get("files") or {})
    for rel in files:
        parts = rel.replace("\\", "/").split("/")
        if rel.startswith("/") or any(p in ("", ".", "..") for p in parts):
            return f"skill file path {rel!r} must be relative without '..'"
    if not job.get("command"):  # a command run has no code of its own: the skill's folder as it is
        files["skill_main.py"] = job.get("code") or ""  # the code wins over a bundled file of that name
    for rel, text in files.items():
        parts = rel.replace("\\", "/").split("/")
        directory = skill_dir
        for part in parts[:-1]:
            directory = os.path.join(directory, part)
            problem = prepare_skill_dir(directory)
            if problem:
                return f"skill file {rel!r}: {problem}"
        path = os.path.join(directory, parts[-1])
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            return f"skill file {rel!r} cannot be written: {exc}"
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
        os.chmod(path, 0o644)  # whatever the umask
    return None


def other_processes(exclude: set[int]) -> list[int]:
    """Live (not zombie) processes in our PID namespace but ``exclude`` and us."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) in exclude or int(name) in (1, os.getpid()):
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as fh:
                state = fh.read().rsplit(b")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state not in (b"Z", b"X"):
            found.append(int(name))
    return found


def sign(nonce: str, body: bytes) -> str:
    return hmac.new(nonce.encode(), body, hashlib.sha256).hexdigest()


def emit(document: dict, nonce: str) -> None:
    """Write the one authenticated result line to the container's stdout."""
    # ASCII-only JSON: the signed bytes are exactly the bytes the host reads
    body = json.dumps(document, ensure_ascii=True).encode("ascii")
    line = b"\n" + f"{RESULT_PREFIX} {sign(nonce, body)} ".encode() + body + b"\n"
    view = memoryview(line)
    while view:
        written = os.write(1, view)
        view = view[written:]


class CappedBuffer:
    """Keeps the first ``cap`` bytes of a stream and remembers if more came."""

    def __init__(self, cap: int):
        self.cap = cap
        self.data = bytearray()
        self.truncated = False

    def add(self, chunk: bytes) -> None:
        room = self.cap - len(self.data)
        if len(chunk) > room:
            self.truncated = True
            chunk = chunk[: max(room, 0)]
        self.data += chunk

    def text(self) -> str:
        return bytes(self.data).decode("utf-8", "replace")


def kill_group(pgid: int) -> None:
    for _ in range(3):  # repeat: members of a fork bomb may be mid-fork
        try:
            os.killpg(pgid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            return
        time.sleep(0.01)


def oom_kills() -> int:
    """OOM kills recorded by this container's memory cgroup (v1 or v2)."""
    for path in ("/sys/fs/cgroup/memory/memory.oom_control", "/sys/fs/cgroup/memory.events"):
        try:
            with open(path) as fh:
                for line in fh:
                    key, _, value = line.partition(" ")
                    if key == "oom_kill":
                        return int(value)
        except (OSError, ValueError):
            continue
    return 0


class Child:
    """The skill's process (``python -I skill_child.py``) and its pipes."""

    def __init__(self, preimport: list[str] | None = None, extra_env: dict[str, str] | None = None):
        """``preimport`` None: a cold child that reads its job at once; a list
        (maybe empty): a pooled child that imports those distributions first
        and signals on ``ready_read``. ``extra_env``: the proxy variables and
        granted secrets of an egress run (``job_environment``)."""
        self.result_read, result_write = os.pipe()
        argv = [sys.executable, "-I", CHILD_PROGRAM, str(result_write)]
        pass_fds = [result_write]
        self.ready_read: int | None = None
        if preimport is not None:
            self.ready_read, ready_write = os.pipe()
            argv += [str(ready_write), ",".join(preimport)]
            pass_fds.append(ready_write)
        switch = {"user": _skill_ids[0], "group": _skill_ids[1]} if _skill_ids else {}
        self.process = subprocess.Popen(
            argv,
            **switch,  # type: ignore[arg-type]
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            pass_fds=tuple(pass_fds),
            close_fds=True,
            start_new_session=True,  # its own process group, killed as a whole
            cwd="/tmp",
            env={
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "HOME": "/tmp",
                "LANG": "C.UTF-8",
                "PYTHONDONTWRITEBYTECODE": "1",
                "PYTHONIOENCODING": "utf-8",
                **(extra_env or {}),
            },
        )
        for fd in pass_fds:
            os.close(fd)
        _forward_to.append(self.process.pid)

    def wait_ready(self, timeout: float) -> bool:
        """True once the pooled child finished its imports and waits for its job."""
        if self.ready_read is None:
            return True
        try:
            with selectors.DefaultSelector() as selector:
                selector.register(self.ready_read, selectors.EVENT_READ)
                if not selector.select(timeout):
                    return False
            return os.read(self.ready_read, 1) == b"1"
        finally:
            os.close(self.ready_read)
            self.ready_read = None

    def discard(self) -> None:
        kill_group(self.process.pid)
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        if self.process.pid in _forward_to:
            _forward_to.remove(self.process.pid)
        for fd in (self.result_read, self.ready_read):
            if fd is not None:
                try:
                    os.close(fd)
                except OSError:
                    pass
        for stream in (self.process.stdin, self.process.stdout, self.process.stderr):
            try:
                stream.close()
            except OSError:
                pass


def supervise(job: dict, child: Child | None = None) -> dict:
    """Run ``job`` in ``child`` (a pooled one) or in a new child, and report."""
    max_output = int(job.get("max_output_bytes") or DEFAULT_MAX_OUTPUT)
    timeout = float(job.get("timeout_seconds") or 30.0)
    problem = write_skill_files(job)
    if problem:
        if child is not None:
            child.discard()
        return {"status": "exception", "error": problem}
    command = job.get("command")
    if command is not None:
        problem = _workspace_io().write_workspace(command["cwd"], job.get("workspace_files") or {})
        if problem:
            if child is not None:
                child.discard()
            return {"status": "exception", "error": problem}
    child_job = json.dumps(
        {"entrypoint": job.get("entrypoint"), "inputs": job.get("inputs"), "files": sorted(job.get("files") or {}),
         "workdir": job.get("workdir") or SKILL_DIR, "thread_grace": THREAD_GRACE_SECONDS, "script": bool(job.get("script")),
         "command": command}
    ).encode()  # fmt: skip
    if child is not None and child.process.poll() is not None:
        child.discard()  # the pooled child died while waiting: run cold instead
        child = None
    oom_before = oom_kills()
    runner = child or Child(extra_env=job_environment(job))
    result_read, child = runner.result_read, runner.process
    started = time.monotonic()
    deadline = started + timeout
    try:
        child.stdin.write(child_job)
        child.stdin.close()
    except (BrokenPipeError, OSError):
        pass

    buffers = {
        child.stdout.fileno(): CappedBuffer(max_output),
        child.stderr.fileno(): CappedBuffer(max_output),
        result_read: CappedBuffer(max_output + RESULT_MARGIN_BYTES),
    }
    res = buffers[result_read]
    selector = selectors.DefaultSelector()
    for fd in buffers:
        os.set_blocking(fd, False)
        selector.register(fd, selectors.EVENT_READ)
    timed_out = overstayed = False
    returned_at: float | None = None  # the entrypoint's result line arrived: the timeout no longer applies
    drain_until: float | None = None
    while selector.get_map():
        now = time.monotonic()
        reap_orphans(child)
        if returned_at is None and (b"\n" in res.data or res.truncated):
            returned_at = now
        if returned_at is None and now >= deadline:
            timed_out = True
            break
        if returned_at is not None and now >= returned_at + EXIT_GRACE_SECONDS:
            overstayed = child.poll() is None
            break
        if drain_until is None and child.poll() is not None:
            drain_until = now + DRAIN_GRACE_SECONDS
        if drain_until is not None and now >= drain_until:
            break
        limit = deadline if returned_at is None else returned_at + EXIT_GRACE_SECONDS
        wait = min(limit, drain_until or limit) - now
        for key, _ in selector.select(timeout=max(0.0, min(wait, 0.2))):
            try:
                chunk = os.read(key.fd, 65536)
            except BlockingIOError:
                continue
            if chunk:
                buffers[key.fd].add(chunk)
            else:
                selector.unregister(key.fd)
    if not timed_out and not overstayed:
        try:  # its pipes are closed, so it is exiting: reap it, or kill_group would see it alive
            child.wait(timeout=0.2)
        except subprocess.TimeoutExpired:
            overstayed = returned_at is not None  # it closed its pipes but kept running after its result
    whole_namespace = os.getpid() == 1
    leftovers = other_processes({child.pid}) if whole_namespace else []
    if not whole_namespace and child.poll() is not None:
        leftovers = [child.pid] if _group_alive(child.pid) else []
    kill_group(child.pid)
    if whole_namespace:
        try:
            os.kill(-1, signal.SIGKILL)  # daemons that left the skill's process group
        except ProcessLookupError:
            pass
    try:
        returncode = child.wait(timeout=5)
    except subprocess.TimeoutExpired:
        returncode = None
    reap_orphans(child)
    if child.pid in _forward_to:
        _forward_to.remove(child.pid)
    duration = time.monotonic() - started

    out, err = buffers[child.stdout.fileno()], buffers[child.stderr.fileno()]
    lines = res.text().split("\n")
    document: dict = {
        "status": "ok",
        "output": None,
        "stdout": out.text(),
        "stderr": err.text(),
        "error": None,
        "traceback": None,
        "stdout_truncated": out.truncated,
        "stderr_truncated": err.truncated,
        "result_truncated": False,
        "exit_code": returncode,
        "signal": -returncode if returncode is not None and returncode < 0 else None,
        "duration_ms": int(duration * 1000),
        "notes": [],
    }
    if command is not None:
        return command_document(document, command, lines[0] if res.data else "", timed_out, timeout, oom_kills() > oom_before)
    if returned_at is not None:
        document["notes"] = leftover_notes(lines[1:], overstayed, len(leftovers))
    if timed_out:
        document["status"] = "timeout"
        document["error"] = f"the skill ran longer than {timeout:g}s and was killed"
        return document
    if res.truncated:
        document["status"] = "output_truncated"
        document["result_truncated"] = True
        document["error"] = f"the entrypoint's return value is larger than {max_output} bytes"
        return document
    reported = None
    if res.data:
        try:
            reported = json.loads(lines[0])
        except ValueError:
            reported = None
        if not isinstance(reported, dict):
            document["status"] = "exception"
            document["error"] = "the skill corrupted its result channel"
            return document
    if reported is None:
        if oom_kills() > oom_before:
            document["status"] = "oom_killed"
            document["error"] = "the skill ran out of memory and was killed"
        else:
            document["status"] = "exit_nonzero"
            how = f"signal {-returncode}" if returncode is not None and returncode < 0 else f"exit code {returncode}"
            document["error"] = f"the skill process ended without a result ({how})"
        return document
    if not reported.get("ok"):
        document["status"] = "exception"
        document["error"] = str(reported.get("error") or "unknown error")
        document["traceback"] = reported.get("traceback")
        return document
    encoded = reported.get("output_json")
    if not isinstance(encoded, str):
        document["status"] = "exception"
        document["error"] = "the skill corrupted its result channel"
        return document
    if len(encoded.encode()) > max_output:
        document["status"] = "output_truncated"
        document["result_truncated"] = True
        document["error"] = f"the entrypoint's return value is larger than {max_output} bytes"
        return document
    document["output"] = json.loads(encoded)
    if out.truncated or err.truncated:
        document["status"] = "output_truncated"
        document["error"] = f"stdout/stderr were cut at {max_output} bytes"
    return document


def _workspace_io():  # type: ignore[no-untyped-def]
    """The command-run helpers beside this file (``-I`` leaves our own directory off sys.path)."""
    try:
        from chalicelib.runner import workspace_io  # host-side tests
    except ImportError:
        here = os.path.dirname(os.path.abspath(__file__))  # root-owned in the image
        if here not in sys.path:
            sys.path.insert(0, here)
        import workspace_io  # type: ignore[no-redef]
    return workspace_io


def command_document(document: dict, command: dict, reported: str, timed_out: bool, timeout: float, oomed: bool) -> dict:
    """A command run's outcome: decided by its exit code, with the workspace read back (every process is dead)."""
    report = _workspace_io().read_workspace(command["cwd"], command.get("collect") or [],
                                            int(command["max_file_bytes"]), int(command["max_collect_bytes"]))  # fmt: skip
    document.update(workspace=report["workspace"], collected=report["collected"],
                    notes=[f"not kept in the workspace: {line}" for line in report["skipped"]])  # fmt: skip
    returncode = document["exit_code"]
    missing = None
    try:
        missing = json.loads(reported).get("missing") if reported else None
    except (ValueError, AttributeError):
        missing = None
    if timed_out:
        document["status"], document["error"] = "timeout", f"the command ran longer than {timeout:g}s and was killed"
    elif isinstance(missing, str):
        document["status"], document["exit_code"] = "exit_nonzero", 127
        document["error"] = f"exit code 127: command {missing[:200]!r} was not found in the sandbox image"
    elif returncode == 0:
        document["status"] = "ok"
    elif oomed:
        document["status"], document["error"] = "oom_killed", "the command ran out of memory and was killed"
    else:
        document["status"] = "exit_nonzero"
        if returncode is not None and returncode < 0:
            document["error"] = f"the command was killed by signal {-returncode}"
        elif returncode == 127:
            document["error"] = "exit code 127: a program the command ran was not found (the shell's message is on stderr)"
        else:
            document["error"] = f"the command exited with code {returncode}"
    if document["status"] == "ok" and (document["stdout_truncated"] or document["stderr_truncated"]):
        document["status"], document["error"] = "output_truncated", "stdout/stderr were cut at the output cap"
    if report["collect_error"]:
        if document["status"] == "ok":
            document["status"], document["error"] = "collect_failed", report["collect_error"]
        else:
            document["notes"].append(report["collect_error"])
        document["collected"] = []
    return document


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
        return True
    except (ProcessLookupError, PermissionError):
        return False


def leftover_notes(epilogue: list[str], overstayed: bool, processes: int) -> list[str]:
    """What was still running after the entrypoint returned (and was killed)."""
    notes = []
    for line in epilogue:
        try:
            report = json.loads(line)
        except ValueError:
            continue
        if isinstance(report, dict) and isinstance(report.get("lingering_count"), int):
            names = ", ".join(str(n) for n in report.get("lingering_threads") or [])
            notes.append(f"{report['lingering_count']} non-daemon thread(s) still running {THREAD_GRACE_SECONDS:g}s "
                         f"after the entrypoint returned were stopped ({names}); the result stands")  # fmt: skip
            break
    if overstayed:
        notes.append(f"the skill's process had not exited {EXIT_GRACE_SECONDS:g}s after the entrypoint returned "
                     "(threads or atexit handlers still running) and was killed; the result stands")  # fmt: skip
    if processes:
        notes.append(f"{processes} process(es) the skill left running were killed; the result stands")
    return notes


def read_job(fd: int = 0) -> tuple[dict | None, str | None]:
    """The job from ``fd`` (read to EOF) and its nonce, or (None, reason)."""
    chunks, size = [], 0
    while True:
        chunk = os.read(fd, 1 << 20)
        if not chunk:
            break
        size += len(chunk)
        if size > MAX_JOB_BYTES:
            return None, f"job larger than {MAX_JOB_BYTES} bytes"
        chunks.append(chunk)
    try:
        job = json.loads(b"".join(chunks))
        str(job["nonce"])
    except (ValueError, KeyError, TypeError) as exc:
        return None, f"unreadable job: {exc}"
    return job, None


def read_framed_job(fd: int = 0) -> tuple[dict | None, str | None]:
    """A job sent as ``<length>\\n<json>`` (pooled containers): the job is
    taken as soon as its last byte arrived, without waiting for EOF."""
    header = b""
    while not header.endswith(b"\n") and len(header) < 16:
        chunk = os.read(fd, 1)
        if not chunk:
            return None, "unreadable job: no length header"
        header += chunk
    try:
        size = int(header)
    except ValueError:
        return None, "unreadable job: bad length header"
    if not 0 < size <= MAX_JOB_BYTES:
        return None, f"job larger than {MAX_JOB_BYTES} bytes" if size > 0 else "unreadable job: empty"
    data = bytearray()
    while len(data) < size:
        chunk = os.read(fd, min(size - len(data), 1 << 20))
        if not chunk:
            return None, "unreadable job: shorter than its length header"
        data += chunk
    try:
        job = json.loads(bytes(data))
        str(job["nonce"])
    except (ValueError, KeyError, TypeError) as exc:
        return None, f"unreadable job: {exc}"
    return job, None


def answer(job: dict, non_dumpable: bool, child: Child | None = None, refused: str | None = None) -> None:
    nonce = str(job["nonce"])
    if refused:
        emit({"status": "exception", "error": f"harness could not isolate the skill: {refused}"}, nonce)
        return
    if not non_dumpable:
        emit({"status": "exception", "error": "harness could not protect its result channel (prctl failed)"}, nonce)
        return
    relay, problem = start_egress(job)
    if problem:
        if child is not None:
            child.discard()
        emit({"status": "exception", "error": problem}, nonce)
        return
    try:
        document = supervise(job, child)
    except Exception as exc:  # the supervisor must always answer
        document = {"status": "exit_nonzero", "error": f"harness failure: {type(exc).__name__}: {exc}"}
    finally:
        if relay is not None:
            relay.close()
    emit(document, nonce)


# --- egress (runs granted hosts) ---------------------------------------------------
#
# ``job["egress"] = {"port": int, "socket": path}``: the supervisor relays
# 127.0.0.1:<port> (the container's own loopback) to the runner's proxy on
# the mounted Unix socket (``egress_relay.py``), before the skill starts;
# the skill gets the proxy variables (and, with ``job["egress"]["ca"]``, the
# run's CA in its trust bundle). ``job["env"]``: granted secrets.


def _relay_module():  # noqa: ANN202 - a module loaded by path: -I keeps our directory off sys.path
    import importlib.util

    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "egress_relay.py")
    spec = importlib.util.spec_from_file_location("skillharbor_egress_relay", path)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


def start_egress(job: dict):  # noqa: ANN201 - (Relay | None, problem | None)
    egress = job.get("egress")
    if not egress:
        return None, None
    try:
        return _relay_module().Relay(int(egress["port"]), str(egress["socket"])), None
    except Exception as exc:
        return None, f"harness could not start the egress relay: {type(exc).__name__}: {exc}"


def job_environment(job: dict) -> dict[str, str]:
    env = {str(k): str(v) for k, v in (job.get("env") or {}).items()}
    egress = job.get("egress")
    if egress:
        env.update(_relay_module().proxy_environment(int(egress["port"]), egress.get("ca")))
    return env


def main(sandboxed: bool = False) -> int:
    refused = enter_sandbox() if sandboxed else None  # before reading anything
    non_dumpable = make_non_dumpable()  # after the uid change, which resets the flag
    job, problem = read_job(0)
    if job is None:
        sys.stderr.write(f"skillharbor harness: {problem}\n")
        return 2
    answer(job, non_dumpable, refused=refused)
    return 0


# --- pooled containers ----------------------------------------------------------
#
# A pooled container is started before its job exists:
#
# 1. the host writes a per-container *ready key* line (64 hex) first; the
#    supervisor reads it before any other process exists in the container;
# 2. the supervisor starts the child, which imports the skill's packages and
#    then blocks reading its job from a pipe of the supervisor;
# 3. the supervisor stops (SIGSTOP) every other process in the container and
#    checks they are stopped, then writes ``SKILLHARBOR-READY <hmac(key)>``;
# 4. only after that authenticated line does the host send the job (with the
#    per-run nonce, framed as ``<length>\n<json>``); the supervisor reads it,
#    resumes the stopped processes and runs it exactly as in a cold start.
#
# So no code other than the supervisor runs while the nonce can be read from
# the container's stdin (/proc/1/fd/0), just as in a cold start, where the
# child does not exist until the job was consumed; and a forged ready line
# (package code could write to /proc/1/fd/1 during its import) is rejected
# by the host for want of the key.

READY_PREFIX = "SKILLHARBOR-READY"
READY_KEY_HEX = 64
#: a pooled child whose imports take longer than this is replaced by a plain one
PREIMPORT_TIMEOUT_SECONDS = 120.0
FREEZE_TIMEOUT_SECONDS = 5.0


def ready_line(key: str) -> bytes:
    return f"{READY_PREFIX} {sign(key, READY_PREFIX.encode())}".encode()


def read_line_exactly(fd: int, size: int) -> bytes:
    """``size`` bytes then a newline, read without buffering past them."""
    data = b""
    while len(data) < size + 1:
        chunk = os.read(fd, size + 1 - len(data))
        if not chunk:
            break
        data += chunk
    return data[:size] if data.endswith(b"\n") else b""


def owns_pid_namespace() -> bool:
    """True when we are the container's PID 1: only then may "every process
    but us" be signalled (on a host it would mean the user's whole session)."""
    return os.getpid() == 1


def _other_tasks() -> list[str]:
    """States of every thread of every process but PID 1 and ourselves."""
    me, states = os.getpid(), []
    for pid in os.listdir("/proc"):
        if not pid.isdigit() or int(pid) in (1, me):
            continue
        try:
            tids = os.listdir(f"/proc/{pid}/task")
        except OSError:
            continue
        for tid in tids:
            try:
                with open(f"/proc/{pid}/task/{tid}/stat", "rb") as fh:
                    states.append(fh.read().rsplit(b")", 1)[1].split()[0].decode())
            except (OSError, IndexError):
                continue
    return states


def freeze_others(child: Child, whole_namespace: bool) -> bool:
    """Stop every other process (or, outside a container, the child's group)."""
    deadline = time.monotonic() + FREEZE_TIMEOUT_SECONDS
    while True:
        try:
            if whole_namespace:
                os.kill(-1, signal.SIGSTOP)
            else:
                os.killpg(child.process.pid, signal.SIGSTOP)
        except ProcessLookupError:
            return True
        if not whole_namespace or all(state in "TtZX" for state in _other_tasks()):
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.002)


def thaw_others(child: Child, whole_namespace: bool) -> None:
    try:
        if whole_namespace:
            os.kill(-1, signal.SIGCONT)
        else:
            os.killpg(child.process.pid, signal.SIGCONT)
    except ProcessLookupError:
        pass


def kill_others(child: Child, whole_namespace: bool) -> None:
    if whole_namespace:
        try:
            os.kill(-1, signal.SIGKILL)
        except ProcessLookupError:
            pass
    child.discard()


def pool_main(preimport: list[str], max_idle: float, sandboxed: bool = False) -> int:
    refused = enter_sandbox() if sandboxed else None
    if refused:  # never ready: the pool drops this container and runs go cold (and say why)
        sys.stderr.write(f"skillharbor harness: {refused}\n")
        return 3
    non_dumpable = make_non_dumpable()
    key = read_line_exactly(0, READY_KEY_HEX).decode("ascii", "replace")
    if len(key) != READY_KEY_HEX:
        sys.stderr.write("skillharbor harness: pooled start without a ready key\n")
        return 2
    whole_namespace = owns_pid_namespace()
    problem = prepare_skill_dir(SKILL_DIR)  # before package code runs, so it cannot claim the directory
    if problem:
        sys.stderr.write(f"skillharbor harness: {problem}\n")
        return 3
    child = Child(preimport)
    if os.path.isdir(COMMAND_WORKSPACE):  # a command's container: its file handling loaded now, not during the run
        _workspace_io()
    if not child.wait_ready(PREIMPORT_TIMEOUT_SECONDS):
        kill_others(child, whole_namespace)  # imports hung or killed it (e.g. out of memory)
        child = Child([])
        child.wait_ready(PREIMPORT_TIMEOUT_SECONDS)
    if not freeze_others(child, whole_namespace):
        kill_others(child, whole_namespace)
        return 3
    view = memoryview(b"\n" + ready_line(key) + b"\n")
    while view:
        view = view[os.write(1, view):]
    with selectors.DefaultSelector() as selector:
        selector.register(0, selectors.EVENT_READ)
        if not selector.select(max_idle):
            kill_others(child, whole_namespace)  # nobody came: leave no stray container running
            return 0
    job, problem = read_framed_job(0)
    thaw_others(child, whole_namespace)
    if job is None:
        kill_others(child, whole_namespace)
        sys.stderr.write(f"skillharbor harness: {problem}\n")
        return 2
    answer(job, non_dumpable, child)
    return 0


def entry(argv: list[str]) -> int:
    """``[--sandbox] [--pool ...]``: ``--sandbox`` (always, in a container)
    separates the uids (``enter_sandbox``) and refuses to run without it."""
    sandboxed = argv[:1] == ["--sandbox"]
    if sandboxed:
        argv = argv[1:]
    if argv[:1] != ["--pool"]:
        return main(sandboxed)
    import argparse

    parser = argparse.ArgumentParser(prog="harness.py [--sandbox] --pool")
    parser.add_argument("--pool", action="store_true")
    parser.add_argument("--preimport", default="", help="comma-separated distributions to import ahead")
    parser.add_argument("--max-idle", type=float, default=3600.0, help="exit if no job came within this many seconds")
    args = parser.parse_args(argv)
    return pool_main([d for d in args.preimport.split(",") if d], args.max_idle, sandboxed)


if __name__ == "__main__":
    sys.exit(entry(sys.argv[1:]))

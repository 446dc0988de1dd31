"""The in-container harness (stdlib only; installed at /opt/skillharbor/harness.py).

It is the container's only process besides docker-init and acts as a
*supervisor*: the skill never runs in this process.

Protocol
--------
stdin: one JSON job ::

    {"code": str, "entrypoint": str, "inputs": {...}, "files": {path: text},
     "max_output_bytes": int, "timeout_seconds": float, "nonce": hex str,
     "workdir": str (optional, default /tmp/skill; used by host-side tests)}

stdout: exactly one line written by the supervisor alone ::

    SKILLHARBOR-RESULT-v1 <hmac-sha256(nonce, body) hex> <body JSON>

where body is ``{status, output, stdout, stderr, error, traceback,
stdout_truncated, stderr_truncated, result_truncated, signal}``.

Why this shape (the skill must not forge its result):

* the supervisor marks itself non-dumpable (``prctl(PR_SET_DUMPABLE, 0)``),
  so a same-uid child can open neither ``/proc/<ppid>/fd/*`` nor ``mem``;
* the skill runs in a child (``python -I`` running :data:`CHILD_SOURCE`)
  whose stdout/stderr are pipes to the supervisor, with ``close_fds``; its
  return value travels on a separate pipe;
* docker-init (PID 1, same uid, dumpable) still holds the container's real
  stdout, so a skill *can* write to ``/proc/1/fd/1``. That is why the host
  sends a per-run ``nonce`` that only the supervisor sees and the supervisor
  authenticates its line with it: forged or altered lines fail the check.

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
import subprocess
import sys
import time

RESULT_PREFIX = "SKILLHARBOR-RESULT-v1"
SKILL_DIR = "/tmp/skill"
DEFAULT_MAX_OUTPUT = 1024 * 1024
MAX_JOB_BYTES = 64 * 1024 * 1024
#: how long to keep draining pipes held open by the skill's leftovers
DRAIN_GRACE_SECONDS = 0.5
PR_SET_DUMPABLE = 4

# The child's program: reads the job from stdin, runs the skill, writes one
# JSON document to the result fd given in argv[1]. Kept as a string so the
# child starts from a clean ``python -I -c`` with nothing inherited.
# Pooled containers start it ahead of time with argv[2] (a "ready" fd) and
# argv[3] (comma-separated distributions to import first): it imports them,
# writes one byte to the ready fd and then blocks reading its job.
# asyncio, inspect and traceback are imported only when needed (together they
# cost ~100 ms of CPU at the default 0.5 CPU limit).
CHILD_SOURCE = r'''
import importlib.util, json, os, sys

def _top_level_modules(dist_name):
    """Import names a distribution provides (top_level.txt, else its RECORD)."""
    from importlib import metadata
    fallback = [dist_name.replace("-", "_").replace(".", "_")]
    try:
        dist = metadata.distribution(dist_name)
    except Exception:
        return fallback
    names = (dist.read_text("top_level.txt") or "").split()
    if not names:
        for entry in dist.files or []:
            parts = entry.parts
            if len(parts) == 2 and parts[1] == "__init__.py":
                names.append(parts[0])
            elif len(parts) == 1 and parts[0].endswith(".py"):
                names.append(parts[0][:-3])
    names = [n for n in dict.fromkeys(names) if n.isidentifier() and not n.startswith("_")]
    return names or fallback

def _warm_up(ready_fd, dists):
    """Pooled start: import the skill's packages before the job, then say so."""
    os.set_inheritable(ready_fd, False)
    imported = []
    if dists:
        # what packages print while importing is warm-up noise, not the skill's output
        saved = [os.dup(1), os.dup(2)]
        null = os.open(os.devnull, os.O_WRONLY)
        os.dup2(null, 1)
        os.dup2(null, 2)
        os.close(null)
        try:
            import importlib
            for dist in dists:
                for name in _top_level_modules(dist):
                    try:
                        importlib.import_module(name)
                        imported.append(name)
                    except BaseException:
                        pass  # best effort: the skill imports it itself (and sees the error) if it needs it
        finally:
            for fd, saved_fd in zip((1, 2), saved):
                try:
                    sys.stdout.flush() if fd == 1 else sys.stderr.flush()
                except Exception:
                    pass
                os.dup2(saved_fd, fd)
                os.close(saved_fd)
    os.write(ready_fd, b"1")
    os.close(ready_fd)
    return imported

def _unshadow(preimported, files):
    """A skill file named like a pre-imported module wins, as it would in a cold run."""
    tops = {"skill_main"}
    for rel in files:
        first = rel.replace("\\", "/").split("/")[0]
        tops.add(first[:-3] if first.endswith(".py") else first)
    for name in preimported:
        if name in tops:
            for loaded in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
                del sys.modules[loaded]

def _fail(result, message, exc=None):
    body = {"ok": False, "error": message}
    if exc is not None:
        tb = exc.__traceback__
        # hide the runner's own frames: start at the first frame of skill code
        while tb is not None and tb.tb_frame.f_code.co_filename == "<string>":
            tb = tb.tb_next
        import traceback
        body["traceback"] = "".join(traceback.format_exception(type(exc), exc, tb))
    result.write(json.dumps(body))

def _coerce(value):
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "isoformat"):
        return value.isoformat()
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=repr)
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")

POSITIONAL_ONLY, POSITIONAL_OR_KEYWORD, KEYWORD_ONLY = "positional_only", "positional_or_keyword", "keyword_only"

def _parameters(func):
    """(has **kwargs, [(name, kind, has_default)]) of the entrypoint's named
    parameters, or None when they cannot be known. Plain functions are read
    from their code object; anything else goes through inspect (which costs
    tens of milliseconds to import, so only then)."""
    code = getattr(func, "__code__", None)
    plain = type(func).__name__ == "function" and code is not None and not hasattr(func, "__wrapped__") \
        and not hasattr(func, "__signature__")
    if plain:
        positional, posonly, kwonly = code.co_argcount, code.co_posonlyargcount, code.co_kwonlyargcount
        names = code.co_varnames[: positional + kwonly]
        first_default = positional - len(func.__defaults__ or ())
        kwdefaults = func.__kwdefaults__ or {}
        params = []
        for index, name in enumerate(names):
            if index < positional:
                kind = POSITIONAL_ONLY if index < posonly else POSITIONAL_OR_KEYWORD
                params.append((name, kind, index >= first_default))
            else:
                params.append((name, KEYWORD_ONLY, name in kwdefaults))
        return bool(code.co_flags & 0x08), params  # CO_VARKEYWORDS
    import inspect
    try:
        signature = inspect.signature(func)
    except (TypeError, ValueError):
        return None
    kinds = {inspect.Parameter.POSITIONAL_ONLY: POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD: POSITIONAL_OR_KEYWORD,
             inspect.Parameter.KEYWORD_ONLY: KEYWORD_ONLY}
    values = list(signature.parameters.values())
    varkw = any(p.kind is p.VAR_KEYWORD for p in values)
    return varkw, [(p.name, kinds[p.kind], p.default is not p.empty) for p in values if p.kind in kinds]

def _arguments(func, inputs, entrypoint):
    described = _parameters(func)
    if described is None or described[0]:
        return (), dict(inputs)
    named = described[1]
    if len(named) == 1 and named[0][0] == "data" and "data" not in inputs:
        return ((inputs,), {}) if named[0][1] == POSITIONAL_ONLY else ((), {"data": inputs})
    args, kwargs, missing = [], {}, []
    for name, kind, has_default in named:
        if name in inputs:
            if kind == POSITIONAL_ONLY:
                args.append(inputs[name])
            else:
                kwargs[name] = inputs[name]
        elif not has_default:
            missing.append(name)
    if missing:
        raise LookupError(f"entrypoint {entrypoint!r} requires input(s) {', '.join(map(repr, missing))} which were not provided")
    return tuple(args), kwargs

def _awaitable(value):
    if not (hasattr(value, "__await__") or hasattr(value, "gi_code")):
        return False
    import inspect
    return inspect.isawaitable(value)

def main():
    # lowest CPU priority (the skill cannot raise it back without CAP_SYS_NICE):
    # the supervisor stays responsive even under a fork bomb
    os.nice(19)
    result = os.fdopen(int(sys.argv[1]), "w", encoding="utf-8")
    os.set_inheritable(result.fileno(), False)
    preimported = []
    if len(sys.argv) > 2:
        preimported = _warm_up(int(sys.argv[2]), [d for d in sys.argv[3].split(",") if d] if len(sys.argv) > 3 else [])
    job = json.loads(sys.stdin.buffer.read())
    if preimported:
        _unshadow(preimported, job.get("files") or {})
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    skill_dir = job.get("workdir") or SKILL_DIR
    os.makedirs(skill_dir, mode=0o700, exist_ok=True)
    os.chdir(skill_dir)
    for rel, text in (job.get("files") or {}).items():
        parts = rel.replace("\\", "/").split("/")
        if rel.startswith("/") or any(p in ("", ".", "..") for p in parts):
            _fail(result, f"skill file path {rel!r} must be relative without '..'")
            return
        path = os.path.join(skill_dir, *parts)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(text)
    code_path = os.path.join(skill_dir, "skill_main.py")
    with open(code_path, "w", encoding="utf-8") as fh:
        fh.write(job["code"])
    sys.path.insert(0, skill_dir)
    sys.dont_write_bytecode = True
    entrypoint = job.get("entrypoint") or "main"
    try:
        spec = importlib.util.spec_from_file_location("skill_main", code_path)
        module = importlib.util.module_from_spec(spec)
        sys.modules["skill_main"] = module
        spec.loader.exec_module(module)
        func = getattr(module, entrypoint, None)
        if func is None or not callable(func):
            _fail(result, f"entrypoint {entrypoint!r} is not a function defined by the skill code")
            return
        args, kwargs = _arguments(func, job.get("inputs") or {}, entrypoint)
        value = func(*args, **kwargs)
        if _awaitable(value):
            import asyncio
            value = asyncio.run(value)
    except LookupError as exc:
        if str(exc).startswith("entrypoint "):
            _fail(result, str(exc))
        else:
            _fail(result, f"{type(exc).__name__}: {exc}", exc)
        return
    except SystemExit as exc:
        _fail(result, f"skill called sys.exit({exc.code!r})", exc)
        return
    except BaseException as exc:
        _fail(result, f"{type(exc).__name__}: {exc}", exc)
        return
    try:
        encoded = json.dumps(value, default=_coerce, allow_nan=False)
    except (TypeError, ValueError, RecursionError) as exc:
        _fail(result, f"the entrypoint's return value is not JSON serialisable: {exc}")
        return
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:
            pass
    result.write(json.dumps({"ok": True, "output_json": encoded}))

def _quick_exit():
    """Exit without interpreter teardown (with numpy and pandas loaded it costs
    100+ ms), doing what a normal exit does first: wait for non-daemon
    threads, run atexit callbacks, flush the standard streams."""
    import atexit, threading
    threading._shutdown()
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            stream.flush()
        except Exception:
            pass
    os._exit(0)

SKILL_DIR = %(skill_dir)r
try:
    main()
finally:
    try:
        sys.stdout.flush()
    except Exception:
        pass
_quick_exit()
''' % {"skill_dir": SKILL_DIR}


def make_non_dumpable() -> bool:
    """Stop same-uid processes from reading our fds/memory via /proc."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == 0
    except (OSError, AttributeError):
        return False


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
    """The skill's process (``python -I`` running CHILD_SOURCE) and its pipes."""

    def __init__(self, preimport: list[str] | None = None):
        """``preimport`` None: a cold child that reads its job at once; a list
        (maybe empty): a pooled child that imports those distributions first
        and signals on ``ready_read``."""
        self.result_read, result_write = os.pipe()
        argv = [sys.executable, "-I", "-c", CHILD_SOURCE, str(result_write)]
        pass_fds = [result_write]
        self.ready_read: int | None = None
        if preimport is not None:
            self.ready_read, ready_write = os.pipe()
            argv += [str(ready_write), ",".join(preimport)]
            pass_fds.append(ready_write)
        self.process = subprocess.Popen(
            argv,
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
            },
        )
        for fd in pass_fds:
            os.close(fd)

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
    child_job = json.dumps(
        {k: job.get(k) for k in ("code", "entrypoint", "inputs", "files", "workdir")}
    ).encode()
    if child is not None and child.process.poll() is not None:
        child.discard()  # the pooled child died while waiting: run cold instead
        child = None
    oom_before = oom_kills()
    runner = child or Child()
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
        result_read: CappedBuffer(max_output + 64),
    }
    selector = selectors.DefaultSelector()
    for fd in buffers:
        os.set_blocking(fd, False)
        selector.register(fd, selectors.EVENT_READ)
    timed_out = False
    drain_until: float | None = None
    while selector.get_map():
        now = time.monotonic()
        if now >= deadline:
            timed_out = True
            break
        if drain_until is None and child.poll() is not None:
            drain_until = now + DRAIN_GRACE_SECONDS
        if drain_until is not None and now >= drain_until:
            break
        wait = min(deadline, drain_until or deadline) - now
        for key, _ in selector.select(timeout=max(0.0, min(wait, 0.2))):
            try:
                chunk = os.read(key.fd, 65536)
            except BlockingIOError:
                continue
            if chunk:
                buffers[key.fd].add(chunk)
            else:
                selector.unregister(key.fd)
    if not timed_out:
        try:  # its pipes are closed, so it is exiting: reap it, or kill_group would see it alive
            child.wait(timeout=0.2)
        except subprocess.TimeoutExpired:
            pass
    kill_group(child.pid)
    try:
        returncode = child.wait(timeout=5)
    except subprocess.TimeoutExpired:
        returncode = None
    duration = time.monotonic() - started

    out, err, res = buffers[child.stdout.fileno()], buffers[child.stderr.fileno()], buffers[result_read]
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
    }
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
            reported = json.loads(res.text())
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


def answer(job: dict, non_dumpable: bool, child: Child | None = None) -> None:
    nonce = str(job["nonce"])
    if not non_dumpable:
        emit({"status": "exception", "error": "harness could not protect its result channel (prctl failed)"}, nonce)
        return
    try:
        document = supervise(job, child)
    except Exception as exc:  # the supervisor must always answer
        document = {"status": "exit_nonzero", "error": f"harness failure: {type(exc).__name__}: {exc}"}
    emit(document, nonce)


def main() -> int:
    non_dumpable = make_non_dumpable()
    job, problem = read_job(0)
    if job is None:
        sys.stderr.write(f"skillharbor harness: {problem}\n")
        return 2
    answer(job, non_dumpable)
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
INIT_NAMES = (b"docker-init", b"tini", b"tini-static", b"catatonit")


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
    """True when we run directly under the container's init: only then may
    "every process but us" be signalled (on a host it would mean the user's
    whole session)."""
    if os.getppid() != 1:
        return False
    try:
        with open("/proc/1/cmdline", "rb") as fh:
            init = fh.read().split(b"\0")[0]
    except OSError:
        return False
    return os.path.basename(init) in INIT_NAMES


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


def pool_main(preimport: list[str], max_idle: float) -> int:
    non_dumpable = make_non_dumpable()
    key = read_line_exactly(0, READY_KEY_HEX).decode("ascii", "replace")
    if len(key) != READY_KEY_HEX:
        sys.stderr.write("skillharbor harness: pooled start without a ready key\n")
        return 2
    whole_namespace = owns_pid_namespace()
    child = Child(preimport)
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
    if argv[:1] != ["--pool"]:
        return main()
    import argparse

    parser = argparse.ArgumentParser(prog="harness.py --pool")
    parser.add_argument("--pool", action="store_true")
    parser.add_argument("--preimport", default="", help="comma-separated distributions to import ahead")
    parser.add_argument("--max-idle", type=float, default=3600.0, help="exit if no job came within this many seconds")
    args = parser.parse_args(argv)
    return pool_main([d for d in args.preimport.split(",") if d], args.max_idle)


if __name__ == "__main__":
    sys.exit(entry(sys.argv[1:]))

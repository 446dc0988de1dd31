"""The skill's process: started by the supervisor (``harness.py``) as
``python -I skill_child.py <result fd> [<ready fd> <distributions>]``.

It reads the job from stdin, imports the skill's code from the directory the
supervisor wrote (read-only here), calls the entrypoint and writes one JSON
line to the result fd. Pooled containers start it ahead of time with a
"ready" fd and comma-separated distributions to import first: it imports
them, writes one byte to the ready fd and then blocks reading its job.

Stdlib only, and nothing imported that the skill does not need: asyncio,
inspect and traceback are imported only when used (together they cost
~100 ms of CPU at the default 0.5 CPU limit).
"""
import importlib.util, json, os, sys

#: how long the exit waits for non-daemon threads once the result is out (the job's thread_grace sets it)
THREAD_GRACE = 1.0

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

def _send(result, body):
    """One result line, flushed at once: the supervisor starts the exit grace on it."""
    result.write(json.dumps(body) + "\n")
    result.flush()

def _fail(result, message, exc=None):
    body = {"ok": False, "error": message}
    if exc is not None:
        tb = exc.__traceback__
        # hide the runner's own frames: start at the first frame of skill code
        while tb is not None and tb.tb_frame.f_code.co_filename == __file__:
            tb = tb.tb_next
        import traceback
        body["traceback"] = "".join(traceback.format_exception(type(exc), exc, tb))
    _send(result, body)

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

def _skill_path(arg, cwd, skill_dir):
    """A relative argument naming a file of the skill (``scripts/fill.py``) and no workspace file: the skill's copy."""
    if not arg or arg.startswith(("/", "-")) or ".." in arg.split("/") or os.path.lexists(os.path.join(cwd, arg)):
        return arg
    candidate = os.path.join(skill_dir, arg)
    return candidate if os.path.isfile(candidate) else arg

def _exec_command(result, command):
    """Become the command: cwd the workspace, stdin from the job, the allowed env; exit 127 (said on the
    result pipe) when its program does not exist."""
    import shutil
    cwd, skill_dir = command["cwd"], command["skill_dir"]
    os.chdir(cwd)
    argv = [command["argv"][0]] + [_skill_path(a, cwd, skill_dir) for a in command["argv"][1:]]
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "PYTHONDONTWRITEBYTECODE", "PYTHONIOENCODING")}
    env.update(command.get("env") or {})
    env.update({"SKILL_DIR": skill_dir, "WORKSPACE": cwd})
    program = argv[0]
    if "/" in program:
        program = _skill_path(program, cwd, skill_dir)
        found = program if os.path.isfile(program) else None
    else:
        found = shutil.which(program, path=env.get("PATH"))
    if found is None:
        _send(result, {"ok": False, "missing": argv[0]})
        sys.stderr.write(f"skillharbor: command not found: {argv[0]}\n")
        sys.stderr.flush()
        os._exit(127)
    # stdin from a file the skill's uid owns in its own /tmp (a pipe would need a writer beside the command)
    stdin_path = f"/tmp/.stdin-{os.getpid()}"
    fd = os.open(stdin_path, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    os.write(fd, (command.get("stdin") or "").encode("utf-8"))
    os.lseek(fd, 0, os.SEEK_SET)
    os.unlink(stdin_path)
    os.dup2(fd, 0)
    os.close(fd)
    try:
        os.execve(found, argv, env)
    except OSError as exc:
        sys.stderr.write(f"skillharbor: cannot run {argv[0]}: {exc.strerror}\n")
        sys.stderr.flush()
        os._exit(126)

def main(result):
    # lowest CPU priority (the skill cannot raise it back without CAP_SYS_NICE):
    # the supervisor stays responsive even under a fork bomb
    os.nice(19)
    preimported = []
    if len(sys.argv) > 2:
        preimported = _warm_up(int(sys.argv[2]), [d for d in sys.argv[3].split(",") if d] if len(sys.argv) > 3 else [])
    job = json.loads(sys.stdin.buffer.read())
    global THREAD_GRACE
    THREAD_GRACE = float(job.get("thread_grace") or THREAD_GRACE)
    if job.get("command"):
        _exec_command(result, job["command"])  # does not return
    if preimported:
        _unshadow(preimported, job.get("files") or {})
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.close(null)
    # the supervisor wrote the code and files, under its own uid: read-only here
    skill_dir = job["workdir"]
    os.chdir(skill_dir)
    code_path = os.path.join(skill_dir, "skill_main.py")
    sys.path.insert(0, skill_dir)
    sys.dont_write_bytecode = True
    entrypoint = job.get("entrypoint") or "main"
    script = bool(job.get("script"))
    try:
        # a snippet runs as a script would (``__main__``); skill code is imported as a module
        name = "__main__" if script else "skill_main"
        spec = importlib.util.spec_from_file_location(name, code_path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except SystemExit as exc:
            if not script or exc.code not in (None, 0):
                raise
        if script:
            for stream in (sys.stdout, sys.stderr):
                stream.flush()
            _send(result, {"ok": True, "output_json": "null"})
            return
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
    _send(result, {"ok": True, "output_json": encoded})

class _Lingering(BaseException):
    pass

def _stop_waiting(signum, frame):
    raise _Lingering()

def _finish(result):
    """Exit the way a normal exit does (threading's exit hooks and the join of
    non-daemon threads, atexit callbacks, flushed streams), but wait at most
    THREAD_GRACE for the threads, report the ones still running on the result
    pipe, and skip interpreter teardown (100+ ms with numpy and pandas)."""
    import atexit, signal, threading
    try:
        signal.signal(signal.SIGALRM, _stop_waiting)
        try:
            signal.setitimer(signal.ITIMER_REAL, THREAD_GRACE)
            threading._shutdown()
        finally:
            signal.signal(signal.SIGALRM, signal.SIG_IGN)  # a tripped alarm is then dropped, not raised later
            signal.setitimer(signal.ITIMER_REAL, 0)
    except _Lingering:
        pass
    except Exception:
        pass
    main_thread = threading.main_thread()
    lingering = [t.name for t in threading.enumerate() if t is not main_thread and not t.daemon and t.is_alive()]
    if lingering:
        try:
            _send(result, {"lingering_threads": [name[:60] for name in lingering[:10]], "lingering_count": len(lingering)})
        except Exception:
            pass
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr, sys.__stdout__, sys.__stderr__):
        try:
            stream.flush()
        except Exception:
            pass
    os._exit(0)

_result = os.fdopen(int(sys.argv[1]), "w", encoding="utf-8")
os.set_inheritable(_result.fileno(), False)
try:
    main(_result)
finally:
    try:
        sys.stdout.flush()
    except Exception:
        pass
_finish(_result)

"""The behaviour probe's recorder, loaded as ``sitecustomize`` by every Python process of a probe run.

Stdlib only; it travels with the probe job and is written read-only beside the skill's files. An audit
hook (``sys.addaudithook``, which the skill cannot remove) appends one JSON line per interesting event to
the file named by SKILLHARBOR_PROBE_LOG: network attempts, subprocesses, sensitive reads and any write,
run-time compiled source, and reads of secret-looking variables (``os.environ`` has no audit event, so its
class is swapped for one that notes them). Every value is cut short: this is a tripwire, not a trace.
"""
import os
import sys

_LOG = os.environ.get("SKILLHARBOR_PROBE_LOG", "")
_SKILL = os.environ.get("SKILLHARBOR_PROBE_SKILL_DIR", "/tmp/skill").rstrip("/") + "/"
_HOME = os.environ.get("HOME", "/tmp").rstrip("/") + "/"
_OWN = os.path.dirname(os.path.abspath(__file__)) + "/"
_CUT = 600
_MAX_EVENTS = 400
_QUIET_ENV = {"PATH", "HOME", "LANG", "LANGUAGE", "TERM", "TZ", "TMPDIR", "TEMP", "TMP", "PWD", "SHELL", "USER",
              "LOGNAME", "SKILL_DIR", "WORKSPACE", "COLUMNS", "LINES", "NO_COLOR", "FORCE_COLOR", "CI"}
_SECRETISH = ("KEY", "SECRET", "TOKEN", "PASSW", "CREDENTIAL", "PRIVATE", "AUTH", "DATABASE_URL")
_SENSITIVE = ("/etc/shadow", "/etc/sudoers", "/etc/passwd", "/root/", "/proc/1/", "/var/run/", "/run/secrets/")
_IGNORED_WRITES = ("/dev/null", "/dev/stdout", "/dev/stderr", "/dev/tty", "/proc/self/fd/")
_PYTHON = tuple({p.rstrip("/") + "/" for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)})
#: frames to look through when asking who called: os.getenv and Mapping.get sit between the caller and environ
#: (and the stdlib's generic file readers: a skill reading a key through pathlib or configparser reads it itself)
_PLUMBING = ("/os.py", "/_collections_abc.py", "<frozen os>", "<frozen _collections_abc>", "/pathlib.py", "/shutil.py",
             "/codecs.py", "/configparser.py", "/fileinput.py", "/io.py", "<frozen io>")
_busy = False
_count = 0
_fd = -1


def _cut(value):
    if isinstance(value, bytes):
        value = value[:_CUT].decode("utf-8", "replace")
    text = value if isinstance(value, str) else repr(value)
    return text[:_CUT]


def _where():
    """The innermost frame in the skill's own files: (relative path, line)."""
    frame = sys._getframe(2)
    depth = 0
    while frame is not None and depth < 40:
        name = frame.f_code.co_filename
        if name.startswith(_SKILL) and not name.startswith(_OWN):
            return name[len(_SKILL):], frame.f_lineno
        frame, depth = frame.f_back, depth + 1
    return None, 0


def _called_by_skill(depth):
    """Whether the code that caused this event (skipping os/Mapping plumbing) is the skill's own file."""
    frame = sys._getframe(depth)
    while frame is not None and frame.f_code.co_filename.endswith(_PLUMBING):
        frame = frame.f_back
    name = frame.f_code.co_filename if frame is not None else ""
    return name.startswith(_SKILL) and not name.startswith(_OWN)


def _emit(kind, **fields):
    global _count
    if _fd < 0 or _count >= _MAX_EVENTS:
        return
    _count += 1
    import json

    where, line = _where()
    fields.update(kind=kind, pid=os.getpid())
    if where:
        fields.update(file=where, line=line)
    os.write(_fd, (json.dumps(fields, default=_cut) + "\n").encode("utf-8", "replace"))


def _path(value):
    if isinstance(value, int):
        return None
    if isinstance(value, bytes):
        value = value.decode("utf-8", "replace")
    value = os.fspath(value) if hasattr(value, "__fspath__") else value
    if not isinstance(value, str):
        return None
    return os.path.normpath(os.path.join(os.getcwd(), os.path.expanduser(value)))


def _writes(mode, flags):
    if isinstance(mode, str) and any(c in mode for c in "wax+"):
        return True
    return isinstance(flags, int) and bool(flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC))


def _on_open(args):
    path = _path(args[0])
    if path is None:
        return
    write = _writes(args[1] if len(args) > 1 else None, args[2] if len(args) > 2 else None)
    if write:
        if not path.startswith(_IGNORED_WRITES):
            _emit("open", path=path, write=True)
    elif path.startswith(_PYTHON):
        return
    elif (path.startswith(_HOME) and not path.startswith(_SKILL)) or path.startswith(_SENSITIVE) or path.endswith("/environ"):
        # a library reading its own settings (requests and ~/.netrc, botocore and ~/.aws) is told apart from the skill
        _emit("open", path=path, write=False, **({} if _called_by_skill(3) else {"library": True}))


def _address(address):
    if isinstance(address, tuple) and address:
        return {"host": _cut(address[0]), "port": address[1] if len(address) > 1 else None}
    return {"host": _cut(address)}


def _hook(event, args):
    global _busy
    if _busy:
        return
    _busy = True
    try:
        if event == "open":
            _on_open(args)
        elif event in ("socket.connect", "socket.sendto", "socket.sendmsg"):
            _emit("connect" if event == "socket.connect" else "send", **_address(args[1]))
        elif event in ("socket.getaddrinfo", "socket.gethostbyname", "socket.gethostbyname_ex", "socket.gethostbyaddr"):
            _emit("dns", host=_cut(args[0]))
        elif event == "http.client.connect":
            _emit("http", host=_cut(args[1]), port=args[2])
        elif event == "http.client.send":
            _emit("http", host=_cut(getattr(args[0], "host", "")), data=_cut(args[1]))
        elif event == "urllib.Request":
            _emit("http", url=_cut(args[0]), data=_cut(args[1]) if args[1] else None,
                  headers={_cut(k): _cut(v) for k, v in list((args[2] or {}).items())[:20]})
        elif event == "subprocess.Popen":
            argv = args[1] if isinstance(args[1], (list, tuple)) else [args[1]]
            _emit("exec", argv=[_cut(a) for a in argv][:40], executable=_cut(args[0]))
        elif event == "os.system":
            _emit("exec", argv=["sh", "-c", _cut(args[0])], shell=True)
        elif event in ("os.exec", "os.posix_spawn"):
            _emit("exec", argv=[_cut(a) for a in list(args[1])[:40]])
        elif event == "os.spawn":
            _emit("exec", argv=[_cut(a) for a in list(args[2])[:40]])
        elif event == "pty.spawn":
            _emit("exec", argv=[_cut(a) for a in (args[0] if isinstance(args[0], (list, tuple)) else [args[0]])], pty=True)
        elif (event == "compile" and isinstance(args[1], str) and args[1].startswith("<") and isinstance(args[0], (str, bytes))
              and _called_by_skill(2)):  # exec/eval of text by the skill itself, not by the stdlib's namedtuple & co
            _emit("code", source=_cut(args[0]), filename=args[1][:80])
        elif event in ("os.chmod", "os.remove", "os.rename", "shutil.rmtree", "os.symlink", "os.link"):
            path = _path(args[0])
            if path is not None and not path.startswith(_OWN):
                op = {"os.chmod": "chmod", "os.remove": "remove", "shutil.rmtree": "remove"}.get(event, "link")
                extra = {"mode": oct(args[1])} if op == "chmod" and isinstance(args[1], int) else {}
                if event in ("os.rename", "os.symlink", "os.link"):
                    extra["dest"] = _path(args[1])
                _emit("fileop", op=op, path=path, **extra)
        elif event == "ctypes.dlopen":
            _emit("native", path=_cut(args[0]))
    except Exception:
        pass
    finally:
        _busy = False


def _note_env(name):
    if isinstance(name, str) and name not in _QUIET_ENV and not name.startswith(("LC_", "PYTHON", "SKILLHARBOR_")):
        if any(part in name.upper() for part in _SECRETISH):
            _emit("env", name=name)


def _watch_environ():
    base = type(os.environ)

    class Watched(base):
        _scanned = False

        def __getitem__(self, key):
            global _busy
            if not _busy:
                _busy = True
                try:
                    if _called_by_skill(2):  # libraries reading their settings (proxies, locale) are not the skill
                        _note_env(key)
                except Exception:
                    pass
                finally:
                    _busy = False
            return base.__getitem__(self, key)

        def __iter__(self):
            global _busy
            if not Watched._scanned and not _busy:
                Watched._scanned = True
                _busy = True
                try:
                    if _called_by_skill(2):
                        _emit("env_scan")
                    else:
                        Watched._scanned = False
                except Exception:
                    pass
                finally:
                    _busy = False
            return base.__iter__(self)

    try:
        os.environ.__class__ = Watched
    except TypeError:
        pass


def install():
    global _fd
    if not _LOG or _fd >= 0:
        return
    try:
        _fd = os.open(_LOG, os.O_WRONLY | os.O_APPEND)
    except OSError:
        return
    _watch_environ()
    sys.addaudithook(_hook)


install()

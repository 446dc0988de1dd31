"""The behaviour probe's driver: the code of a probe run (stdlib only; entrypoint ``probe``).

It never runs skill code itself: it plants the canaries (a home with fake keys, secret-looking variables),
then runs each target (the skill's entrypoint, its bundled scripts) as a child process with the recorder
(``sitecustomize`` from ``hook.py``; for bash, a DEBUG trap through BASH_ENV) and a time budget, kills
what is left, and returns the recorded events with what the targets printed.
"""
import json
import os
import signal
import subprocess
import sys
import time

PROBE_DIR = ".skillharbor-probe"
HOME = "/tmp/probe-home"
WORK = "/tmp/probe-work"
MAX_EVENTS = 1000
MAX_PRINTED = 8192


def _plant(home, files):
    for rel, text in files.items():
        path = os.path.join(home, rel)
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
        with open(path, "w") as handle:
            handle.write(text)
        os.chmod(path, 0o600)


def _kill(process):
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _run(argv, env, budget):
    started = time.monotonic()
    process = subprocess.Popen(argv, cwd=env["WORKSPACE"], env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, start_new_session=True)
    timed_out = False
    try:
        out, err = process.communicate(timeout=budget)
    except subprocess.TimeoutExpired:
        timed_out = True
        _kill(process)
        out, err = process.communicate()
    _kill(process)  # whatever it left behind in its group
    return {"argv": argv[-2:] if argv[1:2] == ["-I"] else argv, "exit_code": process.returncode, "timed_out": timed_out,
            "seconds": round(time.monotonic() - started, 3),
            "stdout": out[-MAX_PRINTED:].decode("utf-8", "replace"), "stderr": err[-MAX_PRINTED:].decode("utf-8", "replace")}


def _source_line(path, line, cache={}):
    """The script's own line (a pipeline's whole text: the trap sees one simple command at a time)."""
    if path not in cache:
        try:
            with open(path, encoding="utf-8", errors="replace") as handle:
                cache[path] = handle.read().splitlines()
        except OSError:
            cache[path] = []
    lines = cache[path]
    return lines[line - 1][:600] if 0 < line <= len(lines) else ""


def _read_events(fd, skill_dir):
    events = []
    os.lseek(fd, 0, os.SEEK_SET)
    data = b""
    while len(data) < 4 * 1024 * 1024:
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        data += chunk
    for raw in data.decode("utf-8", "replace").splitlines():
        if len(events) >= MAX_EVENTS:
            break
        if raw.startswith("bash\t"):  # the bash trap's lines: bash <tab> file <tab> line <tab> command
            parts = raw.split("\t", 3)
            if len(parts) == 4:
                line = int(parts[2]) if parts[2].isdigit() else 0
                where = parts[1][len(skill_dir) + 1:] if parts[1].startswith(skill_dir + "/") else parts[1]
                event = {"kind": "shell", "command": parts[3][:600], "file": where or "(bash -c)", "line": line}
                if parts[1].startswith(skill_dir + "/"):
                    event["line_text"] = _source_line(parts[1], line)
                events.append(event)
            continue
        try:
            event = json.loads(raw)
        except ValueError:
            continue
        if isinstance(event, dict):
            events.append(event)
    return events


def probe(data):
    skill_dir = os.getcwd()
    own = os.path.join(skill_dir, PROBE_DIR)
    home, work = data.get("home") or HOME, data.get("workspace") or WORK  # other places: host-side tests only
    os.makedirs(work, mode=0o700, exist_ok=True)
    os.makedirs(home, mode=0o700, exist_ok=True)
    _plant(home, data.get("canary_files") or {})
    log = os.path.join(os.path.dirname(work), f".probe-{os.getpid()}-{time.monotonic_ns()}.jsonl")
    fd = os.open(log, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)  # kept open: an unlinked log is still read
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "HOME": home, "PYTHONPATH": own,
           "PYTHONDONTWRITEBYTECODE": "1", "PYTHONIOENCODING": "utf-8", "BASH_ENV": os.path.join(own, "bash_env.sh"),
           "SKILLHARBOR_PROBE_LOG": log, "SKILLHARBOR_PROBE_SKILL_DIR": skill_dir, "SKILL_DIR": skill_dir, "WORKSPACE": work,
           **(data.get("canary_env") or {})}  # fmt: skip
    deadline = time.monotonic() + float(data.get("budget_seconds") or 20)
    targets = data.get("targets") or []
    ran = []
    for index, target in enumerate(targets):
        left = deadline - time.monotonic()
        if left < 0.5:
            ran.append({"target": target, "skipped": "no time left"})
            continue
        budget = max(0.5, left / (len(targets) - index))
        path = os.path.join(skill_dir, target["path"])
        if target["kind"] == "entrypoint":
            argv = [sys.executable, os.path.join(own, "run_entry.py"), path, target.get("entrypoint") or "execute"]
        elif target["kind"] == "python":
            argv = [sys.executable, path]
        else:
            argv = ["bash", path]
        ran.append(dict(_run(argv, env, budget), target=target))
    events = _read_events(fd, skill_dir)
    os.close(fd)
    try:
        os.unlink(log)
    except OSError:
        pass
    return {"events": events, "targets": ran, "home": home, "workspace": work, "skill_dir": skill_dir}

"""Behaviour check verdicts: what a skill tried while it ran once in the sandbox → findings.

The runner's probe (``runner/probe/``) runs the skill with canary secrets in its environment and canary
files in its home, and records events: ``connect`` / ``dns`` / ``http`` / ``send`` (network attempts; the
sandbox has no network, attempts are still visible), ``exec`` (subprocesses, ``os.system``), ``shell``
(each command a bash script ran), ``open`` (sensitive reads, writes), ``env`` (reads of secret-looking
variables), ``env_scan`` (iterating the environment), ``code`` (source compiled at run time: exec/eval
of decoded text), ``fileop`` (chmod, remove, rename). This module is pure: events in, findings out.

Policy (the same as the static rule pack's): CRITICAL blocks the version (only an admin's
``release_malicious`` approval releases it), HIGH needs an admin's approval of the version, MEDIUM and
LOW are reported. CRITICAL: canary data leaving (in a payload, a command line, the output), a canary
read followed by a network attempt to a host the skill did not declare, a reverse shell, a download
piped into a shell. HIGH: an undeclared network attempt, a canary read, a network tool run,
persistence writes, destructive commands.
"""

from __future__ import annotations

import base64
import posixpath
import re
import secrets
from collections.abc import Iterable, Mapping
from typing import Any, NamedTuple

from chalicelib.scanning.malice.engine import MaliceFinding as Finding  # one finding shape for static and behaviour scans

SEVERITIES = ("LOW", "MEDIUM", "HIGH", "CRITICAL")
MAX_MATCH = 160
MAX_FINDINGS = 50

#: secret-looking variables planted with canary values (names real skills and stealers look for)
CANARY_ENV_NAMES = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "GITHUB_TOKEN", "OPENAI_API_KEY",
                    "ANTHROPIC_API_KEY", "SLACK_BOT_TOKEN", "DATABASE_URL")  # fmt: skip
#: canary files, relative to the probe's home
CANARY_FILES = (".ssh/id_rsa", ".aws/credentials", ".netrc", ".config/gh/hosts.yml", ".docker/config.json")
_SECRETISH = re.compile(r"(KEY|SECRET|TOKEN|PASSW|CREDENTIAL|PRIVATE|AUTH)", re.I)

_NETWORK_TOOLS = {"curl", "wget", "nc", "ncat", "netcat", "socat", "telnet", "ftp", "tftp", "scp", "sftp", "ssh",
                  "rsync", "aria2c", "httpie", "http", "lwp-download", "fetch"}  # fmt: skip
_SHELLS = {"sh", "bash", "dash", "zsh", "ksh", "fish", "ash", "busybox"}
_REVERSE_SHELL = re.compile(
    r"/dev/(?:tcp|udp)/|\b(?:nc|ncat|netcat)\b[^|;&]*\s-[a-z]*[ec]\b|\bsocat\b[^|;&]*\bexec:|"
    r"\b(?:ba|z|k)?sh\s+-i\b|\bmkfifo\b[^;&]*\b(?:nc|ncat|netcat)\b|pty\.spawn\(", re.I)  # fmt: skip
_PIPE_TO_SHELL = re.compile(
    r"\b(?:curl|wget|fetch)\b[^|;&]*\|\s*(?:sudo\s+)?(?:ba|z|da|k)?sh\b|"
    r"\bbase64\s+(?:-d|--decode|-D)\b[^|;&]*\|\s*(?:sudo\s+)?(?:ba|z|da|k)?sh\b|"
    r"\b(?:ba|z|da)?sh\s+-c\s+[\"']?\$\((?:curl|wget)\b", re.I)  # fmt: skip
_PERSISTENCE_PATHS = re.compile(
    r"(?:^|/)(?:\.bashrc|\.bash_profile|\.bash_login|\.profile|\.zshrc|\.zprofile|\.zshenv|\.config/fish/config\.fish|"
    r"\.ssh/authorized_keys2?|\.ssh/config|\.config/autostart/|\.config/systemd/user/|Library/LaunchAgents/|"
    r"\.local/share/applications/|\.pam_environment|\.xinitrc|\.xprofile)|^/etc/(?:cron|profile|bash|rc\.|systemd|init|sudoers|ld\.so)|"
    r"^/var/spool/cron", re.I)  # fmt: skip
_PERSISTENCE_COMMANDS = re.compile(r"\bcrontab\b|\bsystemctl\s+(?:--user\s+)?enable\b|\blaunchctl\s+load\b|\bat\s+now\b", re.I)
_DESTRUCTIVE = re.compile(r"\brm\s+-[a-z]*r[a-z]*f?[a-z]*\s+(?:--no-preserve-root\s+)?(?:/|~|\$HOME)(?:\s|$|/\*)|\bmkfs\b|"
                          r"\bdd\s+if=/dev/(?:zero|random|urandom)\s+of=/dev/|\bshred\b", re.I)  # fmt: skip
_WORLD_WRITABLE = re.compile(r"\bchmod\s+(?:-R\s+)?(?:0?777|a\+rwx|[ugo]*\+s)\b|\bsudo\b", re.I)
_SENSITIVE_READS = ("/etc/shadow", "/etc/sudoers", "/root/", "/var/run/secrets/", "/run/secrets/",
                    "/proc/1/environ", "/var/run/docker.sock")  # fmt: skip
_URL_HOST = re.compile(r"\b(?:https?|ftp|wss?)://([^/\s:'\"@]+(?:@[^/\s:'\"]+)?)", re.I)
_LOOPBACK = {"localhost", "127.0.0.1", "::1", "0.0.0.0", "ip6-localhost"}


class Canaries(NamedTuple):
    """Planted secrets: variable name → value, home-relative file → content."""

    env: dict[str, str]
    files: dict[str, str]

    def values(self) -> dict[str, str]:
        """Every planted secret value (what must never leave), by a label that names where it was planted."""
        found = {f"${name}": value for name, value in self.env.items()}
        for path, text in self.files.items():
            tokens = [t for t in re.split(r"[\s=:\"{},]+", text) if len(t) >= 20 and t.isascii() and not re.fullmatch(r"[a-z_]+", t)]
            for index, token in enumerate(tokens):
                found[f"~/{path}" + (f"#{index + 1}" if index else "")] = token
        return found


def make_canaries() -> Canaries:
    """Fresh canaries for one probe run: values nobody can guess, shaped like the real thing."""

    def tok(n: int) -> str:
        return secrets.token_urlsafe(n).replace("-", "x").replace("_", "y")[:n]

    key_id, secret = "AKIA" + secrets.token_hex(8).upper(), tok(40)
    env = {
        "AWS_ACCESS_KEY_ID": key_id, "AWS_SECRET_ACCESS_KEY": secret, "GITHUB_TOKEN": "ghp_" + tok(36),
        "OPENAI_API_KEY": "sk-proj-" + tok(40), "ANTHROPIC_API_KEY": "sk-ant-api03-" + tok(40),
        "SLACK_BOT_TOKEN": "xoxb-" + tok(32), "DATABASE_URL": f"postgres://app:{tok(24)}@db.internal:5432/app",
    }  # fmt: skip
    ssh_key = "CANARY" + tok(60)
    files = {
        ".ssh/id_rsa": f"-----BEGIN OPENSSH PRIVATE KEY-----\n{ssh_key}\n-----END OPENSSH PRIVATE KEY-----\n",
        ".aws/credentials": f"[default]\naws_access_key_id = AKIA{secrets.token_hex(8).upper()}\naws_secret_access_key = {tok(40)}\n",
        ".netrc": f"machine api.github.com\nlogin bot\npassword {tok(32)}\n",
        ".config/gh/hosts.yml": f"github.com:\n    oauth_token: gho_{tok(36)}\n",
        ".docker/config.json": '{"auths": {"registry.example": {"auth": "' + tok(40) + '"}}}\n',
    }
    return Canaries(env, files)


class Context(NamedTuple):
    home: str
    workspace: str
    skill_dir: str
    declared_hosts: frozenset[str]


def host_declared(host: str, declared: Iterable[str]) -> bool:
    """``host`` is one of the declared hosts (``host`` or ``host:port`` entries; ``*.example.com`` covers subdomains)."""
    host = host.lower().strip("[]").rstrip(".")
    for entry in declared:
        name = entry.lower().rsplit(":", 1)[0] if entry.count(":") == 1 else entry.lower()
        if name == host or (name.startswith("*.") and host.endswith(name[1:])):
            return True
    return False


def judge(events: Iterable[Mapping[str, Any]], canaries: Canaries, *, declared_hosts: Iterable[str] = (),
          outputs: Iterable[str] = (), home: str = "/tmp/probe-home", workspace: str = "/tmp/probe-work",
          skill_dir: str = "/tmp/skill") -> list[Finding]:  # fmt: skip
    """Findings for one probe run, worst first. ``outputs``: what the skill printed or returned."""
    ctx = Context(home.rstrip("/"), workspace.rstrip("/"), skill_dir.rstrip("/"), frozenset(declared_hosts))
    values = canaries.values()
    found: list[Finding] = []
    secret_read: Finding | None = None  # the first canary read, for "read then send"
    scanned_env = False
    pipelines: dict[tuple[str, int], set[str]] = {}  # a bash line's programs: the trap sees a pipeline one command at a time
    for event in events:
        kind = str(event.get("kind", ""))
        where = (str(event.get("file") or "(run)"), int(event.get("line") or 0))
        text = _event_text(event)
        leaked = _leaked(text, values)
        if leaked and kind in ("http", "send", "exec", "shell", "connect", "dns"):
            found.append(_f(where, "behaviour.canary-exfil", "CRITICAL", "exfiltration",
                            f"a planted secret ({leaked}) left the skill's process ({kind})", _redact(text, values),
                            "a skill must not send credentials it was not granted"))  # fmt: skip
        network = _network_target(kind, event, text, ctx)
        if network is not None:
            host, undeclared = network
            if undeclared and secret_read is not None:
                found.append(_f(where, "behaviour.secret-then-network", "CRITICAL", "exfiltration",
                                f"read {secret_read.matched} then tried to reach {host}, a host the skill does not declare",
                                _redact(text, values), "remove the secret access, or declare the host and a granted secret"))  # fmt: skip
            elif undeclared and scanned_env:
                found.append(_f(where, "behaviour.env-then-network", "HIGH", "exfiltration",
                                f"read the whole environment then tried to reach {host}, an undeclared host",
                                _redact(text, values), "pass the values the skill needs explicitly; declare the host"))  # fmt: skip
            elif undeclared:
                found.append(_f(where, "behaviour.undeclared-network", "HIGH", "network",
                                f"tried to reach {host}, a host the skill does not declare", _redact(text, values),
                                "declare the host in the skill's network list, or remove the call"))  # fmt: skip
        read = _secret_read(kind, event, text, canaries, ctx)
        if read is not None and event.get("library"):
            found.append(_f(where, "behaviour.library-secret-read", "LOW", "credential-theft", f"a library the skill called read {read}",
                            read, "make sure the skill passes its credentials explicitly (requests reads ~/.netrc, SDKs ~/.aws)"))  # fmt: skip
        elif read is not None:
            finding = _f(where, "behaviour.canary-read", "HIGH", "credential-theft", f"read {read}, a credential it was not granted",
                         read, "a skill gets secrets through a grant, never from the host's files or environment")  # fmt: skip
            found.append(finding)
            secret_read = secret_read or finding
        if kind == "env_scan":
            scanned_env = True
        found += _command_findings(kind, event, text, where, values, ctx)
        if kind == "shell" and "|" in str(event.get("line_text") or ""):
            seen = pipelines.setdefault(where, set())
            seen.add("net" if _program(event, text) in _NETWORK_TOOLS else "shell" if _program(event, text) in _SHELLS else "other")
            if {"net", "shell"} <= seen:
                found.append(_f(where, "behaviour.download-exec", "CRITICAL", "dropper", "piped downloaded text into a shell",
                                _redact(text, values), "ship the code in the skill, where it is scanned, instead of fetching it"))  # fmt: skip
        found += _file_findings(kind, event, where, ctx)
        if kind == "code":
            found.append(_f(where, "behaviour.dynamic-code", "LOW", "obfuscation", "compiled and ran source text at run time",
                            _redact(text, values), "ship the code as source files instead of decoding it at run time"))  # fmt: skip
    for output in outputs:
        leaked = _leaked(output or "", values)
        if leaked:
            found.append(_f(("(output)", 0), "behaviour.canary-printed", "CRITICAL", "exfiltration",
                            f"a planted secret ({leaked}) appears in the skill's output", _redact(_around(output, values), values),
                            "a skill must never print or return credentials"))  # fmt: skip
    return _dedupe(found)


def worst(findings: Iterable[Finding]) -> str | None:
    ranks = [SEVERITIES.index(f.severity) for f in findings]
    return SEVERITIES[max(ranks)] if ranks else None


# --- the pieces --------------------------------------------------------------


def _f(where: tuple[str, int], rule: str, severity: str, category: str, message: str, matched: str, fix: str) -> Finding:
    matched = " ".join(str(matched).split())
    return Finding(where[0], where[1], rule, severity, category, message,
                   matched if len(matched) <= MAX_MATCH else matched[: MAX_MATCH - 1] + "…", fix)  # fmt: skip


def _event_text(event: Mapping[str, Any]) -> str:
    """The event's payload as one string: argv, command, URL, data, path."""
    parts: list[str] = []
    for key in ("argv", "command", "line_text", "url", "host", "address", "data", "headers", "path", "source"):
        value = event.get(key)
        if isinstance(value, (list, tuple)):
            parts.append(" ".join(str(v) for v in value))
        elif isinstance(value, dict):
            parts.append(" ".join(f"{k}: {v}" for k, v in value.items()))
        elif value not in (None, ""):
            parts.append(str(value))
    return " ".join(parts)


def _leaked(text: str, values: Mapping[str, str]) -> str | None:
    """The label of a canary value found in ``text`` (as is, or base64-encoded)."""
    for label, value in values.items():
        if value and (value in text or base64.b64encode(value.encode()).decode()[:24] in text):
            return label
    return None


def _redact(text: str, values: Mapping[str, str]) -> str:
    for label, value in values.items():
        if value:
            text = text.replace(value, f"<canary {label}>")
            text = text.replace(base64.b64encode(value.encode()).decode()[:24], f"<canary {label}, base64>")
    return text


def _around(text: str, values: Mapping[str, str]) -> str:
    for value in values.values():
        at = text.find(value) if value else -1
        if at >= 0:
            return text[max(0, at - 40): at + len(value) + 40]
    return text[:MAX_MATCH]


def _network_target(kind: str, event: Mapping[str, Any], text: str, ctx: Context) -> tuple[str, bool] | None:
    """(host, undeclared?) of a network attempt; None when the event is none (or stays on loopback / local sockets)."""
    host: str | None = None
    if kind in ("connect", "dns", "http", "send"):
        host = str(event.get("host") or "")
        if not host and event.get("url"):
            match = _URL_HOST.search(str(event["url"]))
            host = match.group(1).rsplit("@", 1)[-1] if match else ""
        if not host or host.startswith("/"):  # an AF_UNIX path, or nothing to name
            return None
    elif kind in ("exec", "shell") and _program(event, text) in _NETWORK_TOOLS:
        match = _URL_HOST.search(text)
        host = match.group(1).rsplit("@", 1)[-1] if match else _bare_host(text)
        if not host:
            return None
    else:
        return None
    if host.lower() in _LOOPBACK or host.startswith("127."):
        return None
    return host, not host_declared(host, ctx.declared_hosts)


def _bare_host(text: str) -> str | None:
    """``nc evil.example 4444``, ``ssh user@host``: the first word that looks like a host name or address."""
    for word in text.split()[1:]:
        word = word.rsplit("@", 1)[-1]
        if not word.startswith("-") and re.fullmatch(r"[A-Za-z0-9.-]+\.[A-Za-z]{2,}|\d{1,3}(?:\.\d{1,3}){3}", word):
            return word
    return None


def _program(event: Mapping[str, Any], text: str) -> str:
    argv = event.get("argv")
    first = str(argv[0]) if isinstance(argv, (list, tuple)) and argv else (text.split() or [""])[0]
    return posixpath.basename(first.strip("'\"")).lower()


def _secret_read(kind: str, event: Mapping[str, Any], text: str, canaries: Canaries, ctx: Context) -> str | None:
    if kind == "env" and str(event.get("name")) in canaries.env:
        return f"${event['name']}"
    if kind == "open" and not event.get("write"):
        path = str(event.get("path") or "")
        for rel in canaries.files:
            if path == f"{ctx.home}/{rel}":
                return f"~/{rel}"
        if path.startswith(_SENSITIVE_READS):
            return path
    if kind in ("shell", "exec"):
        for rel in canaries.files:
            if f"~/{rel}" in text or f"$HOME/{rel}" in text or f"{ctx.home}/{rel}" in text or f"${{HOME}}/{rel}" in text:
                return f"~/{rel}"
    return None


def _command_findings(kind: str, event: Mapping[str, Any], text: str, where: tuple[str, int],
                      values: Mapping[str, str], ctx: Context) -> list[Finding]:  # fmt: skip
    if kind not in ("exec", "shell", "code"):
        return []
    shown = _redact(text, values)
    out: list[Finding] = []
    if _REVERSE_SHELL.search(text):
        out.append(_f(where, "behaviour.reverse-shell", "CRITICAL", "reverse-shell", "opened (or tried to open) a remote shell",
                      shown, "a skill never hands a shell to a remote host"))  # fmt: skip
    if _PIPE_TO_SHELL.search(text):
        out.append(_f(where, "behaviour.download-exec", "CRITICAL", "dropper", "piped downloaded or decoded text into a shell",
                      shown, "ship the code in the skill, where it is scanned, instead of fetching or decoding it"))  # fmt: skip
    if kind == "code":
        return out
    program = _program(event, text)
    if kind == "exec" and event.get("pty") and program in _SHELLS:
        out.append(_f(where, "behaviour.reverse-shell", "CRITICAL", "reverse-shell", "gave a shell a terminal (pty.spawn), the step "
                      "that turns a socket into a remote shell", shown, "a skill never spawns an interactive shell"))  # fmt: skip
    target = _network_target(kind, event, text, ctx)
    if program in _NETWORK_TOOLS and (target is None or target[1]):  # a declared API called with curl is the skill's job
        out.append(_f(where, "behaviour.network-tool", "HIGH", "dropper", f"ran the network tool {program}", shown,
                      "call declared APIs from the skill's code; do not download at run time"))  # fmt: skip
    if _PERSISTENCE_COMMANDS.search(text) or _redirect_target(text, ctx):
        out.append(_f(where, "behaviour.persistence", "HIGH", "persistence", "tried to install something that outlives the run",
                      shown, "a skill must not schedule itself or edit shell start-up files"))  # fmt: skip
    if _DESTRUCTIVE.search(text):
        out.append(_f(where, "behaviour.destructive", "HIGH", "destructive", "ran a destructive command", shown,
                      "remove the command"))  # fmt: skip
    if _WORLD_WRITABLE.search(text):
        out.append(_f(where, "behaviour.privilege", "MEDIUM", "privilege-escalation", "tried to widen permissions (sudo, chmod 777, setuid)",
                      shown, "skills run unprivileged; drop the step"))  # fmt: skip
    if kind == "exec" and (program in _SHELLS or event.get("shell")):
        out.append(_f(where, "behaviour.shell-spawn", "MEDIUM", "execution", "started a shell", shown,
                      "run the program with an argument list instead of a shell"))  # fmt: skip
    return out


def _redirect_target(text: str, ctx: Context) -> bool:
    """A bash command that redirects into a persistence file (``echo ... >> ~/.bashrc``)."""
    for match in re.finditer(r">>?\s*([^\s;&|]+)", text):
        target = match.group(1).strip("'\"").replace("$HOME", ctx.home).replace("${HOME}", ctx.home).replace("~", ctx.home, 1)
        if _PERSISTENCE_PATHS.search(target):
            return True
    return False


def _file_findings(kind: str, event: Mapping[str, Any], where: tuple[str, int], ctx: Context) -> list[Finding]:
    path = str(event.get("path") or event.get("dest") or "")
    if not path or not (kind == "fileop" or (kind == "open" and event.get("write"))):
        return []
    if _PERSISTENCE_PATHS.search(path.removeprefix(ctx.home + "/") if path.startswith(ctx.home + "/") else path):
        if path.startswith(ctx.home + "/") or path.startswith(("/etc/", "/var/spool/")):
            return [_f(where, "behaviour.persistence", "HIGH", "persistence", f"wrote {path}, a file that runs at login or on a schedule",
                       path, "a skill must not edit shell start-up files, cron or authorised keys")]  # fmt: skip
    inside = (ctx.workspace + "/", ctx.home + "/", "/tmp/", "/dev/null", "/dev/stdout", "/dev/stderr", "/dev/tty")
    if kind == "fileop" and event.get("op") == "remove" and path.startswith(inside):
        return []
    if path.startswith(inside) and not path.startswith(ctx.skill_dir + "/"):
        return []
    return [_f(where, "behaviour.write-outside", "MEDIUM", "tampering", f"tried to change {path}, outside the workspace", path,
               "write only under the working directory (the workspace) or a temporary directory")]  # fmt: skip


def _dedupe(findings: list[Finding]) -> list[Finding]:
    seen: set[tuple[str, str, str, int]] = set()
    unique = []
    for f in findings:
        key = (f.rule_id, "" if f.line else f.matched, f.file, f.line)  # one finding per rule and place
        if key not in seen:
            seen.add(key)
            unique.append(f)
    unique.sort(key=lambda f: -SEVERITIES.index(f.severity))
    return unique[:MAX_FINDINGS]


def is_secret_name(name: str) -> bool:
    return bool(_SECRETISH.search(name))


# --- what a probe runs ------------------------------------------------------------

#: the probe's name for code that came from a ```python block of SKILL.md (findings name SKILL.md)
INLINE_CODE_FILE = "SKILL.md.py"


def plan_targets(artifact: Mapping[str, Any], entrypoint: str | None, *, max_targets: int = 6) -> tuple[list[dict[str, str]], dict[str, str]]:
    """(targets, extra files) of a probe of a parsed skill: its entrypoint (code skills), then its bundled
    Python and shell scripts (``scripts/`` first), at most ``max_targets``."""
    files = artifact.get("files") or {}
    targets: list[dict[str, str]] = []
    extra: dict[str, str] = {}
    code_path = artifact.get("code_path")
    if artifact.get("code"):
        if not (code_path and code_path in files):
            code_path = INLINE_CODE_FILE
            extra[code_path] = artifact["code"]
        targets.append({"kind": "entrypoint", "path": code_path, "entrypoint": entrypoint or "execute"})
    scripts = []
    for path, text in files.items():
        if path == code_path or not isinstance(text, str):
            continue
        first = text.split("\n", 1)[0]
        if path.endswith(".py"):
            scripts.append({"kind": "python", "path": path})
        elif path.endswith((".sh", ".bash")) or (first.startswith("#!") and first.rstrip().endswith(("sh", "bash"))):
            scripts.append({"kind": "bash", "path": path})
    scripts.sort(key=lambda t: (not t["path"].startswith("scripts/"), t["path"].count("/"), t["path"]))
    return (targets + scripts)[:max_targets], extra


def redact_canaries(value: Any, canaries: Canaries) -> Any:
    """``value`` (events, printed text) with every canary value replaced by its label."""
    values = canaries.values()
    if isinstance(value, str):
        return _redact(value, values)
    if isinstance(value, list):
        return [redact_canaries(v, canaries) for v in value]
    if isinstance(value, dict):
        return {k: redact_canaries(v, canaries) for k, v in value.items()}
    return value

"""A small taint check on Python: does a secret reach a network call in the same file?

Public interface::

    secret_flows(file: str, source: str) -> list[MaliceFinding]

Sources: ``os.environ`` (whole, or any item), ``os.getenv``, reads of files
whose path names a credential store; and, checked apart, the password a file
feeds to ``sudo -S``. A source is one named secret, or the whole environment
(``dict(os.environ)``, ``os.environ.items()``): a dump.

Taint follows assignments (a target assigned from an expression holding a
tainted value is tainted) over the whole module, twice, so a value tainted
later in the walk reaches earlier uses; it is deliberately coarse, and errs
toward reporting. It is kept per access path, not per name:
``self.api_key = os.getenv(...)`` taints ``self.api_key`` only, so
``self.base_url`` and ``self`` stay clean, while ``self.api_key.strip()`` and
anything built from it are tainted. An item assignment
(``headers["Authorization"] = token``) or a filling call
(``payload.update(...)``, ``.append(...)``) taints the container. An object
holding a tainted attribute carries it only when it is serialised whole
(``vars(self)``, ``self.__dict__``, ``asdict(cfg)``) or passed bare to a sink.

Sinks: ``urlopen``/``Request``, ``requests``/``httpx``/``urllib3``/``aiohttp``
calls, ``http.client`` requests, socket ``send``/``sendto``/``connect``, DNS
look-ups, judged by the root of the receiver: a network module (or a name
imported from one), a name the file makes a client of (``s =
requests.Session()``, ``with socket.socket() as s``), a client made in place
(``requests.Session().post``), or a root named as a client (``client``,
``session``, ``sock``, ``conn``, ``*_client``, ``*_session``). A short name such
as ``s`` is a client only when it was made as one: ``s.get()`` on a dict is not
a network call. A client held on an object (``self.session.get``) is not
followed. What a request returns is its answer, not what it sent: the response
is not tainted.

A named secret passed only as ``headers=``/``auth=``/``cookies=`` is the secret
being used for the service the request goes to, not sent away, and does not
count; it does when the request goes to a hard-coded destination where no
service's API lives (a raw public IP address, a chat webhook, a paste,
request-catcher or tunnel host). A dump of the whole environment counts in any
position; one variable read from it (``env["TOKEN"]``) is one secret.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable

from chalicelib.redact import SECRET_NAME
from chalicelib.scanning.malice.engine import MaliceFinding

_SINK_ATTRS = frozenset({"urlopen", "Request", "post", "put", "patch", "get", "request", "send", "sendall", "sendto",
                         "connect", "gethostbyname", "getaddrinfo", "resolve", "query", "putrequest"})  # fmt: skip
_SINK_FUNCS = frozenset({"urlopen", "Request", "gethostbyname", "getaddrinfo"})  # called bare
# modules whose calls reach the network; a name imported from one (``from urllib import request``) counts too
_NET_MODULES = frozenset({"requests", "httpx", "urllib", "urllib3", "socket", "http", "dns", "aiohttp"})
# a receiver named as a client is taken for one wherever it came from (a parameter, an attribute)
_CLIENT_NAMES = frozenset({"session", "client", "sock", "conn"})
_CLIENT_SUFFIXES = ("client", "session")
# what makes a client, called on a network module or imported from one
_CLIENT_FACTORIES = frozenset({"Session", "session", "Client", "AsyncClient", "ClientSession", "socket",
                               "create_connection", "HTTPConnection", "HTTPSConnection", "PoolManager", "ProxyManager",
                               "connection_from_url", "Resolver"})  # fmt: skip
_CLIENT_DERIVED = frozenset({"wrap_socket", "accept"})  # called on a client, give a client
_USE_KEYWORDS = frozenset({"headers", "auth", "cookies", "timeout"})
_CRED_PATHS = (".aws", "credentials", ".ssh", "id_rsa", ".netrc", ".git-credentials", ".npmrc", ".kube", "hosts.yml",
               ".docker", ".env")  # fmt: skip
# calls that serialise an object whole, and methods that do
_WHOLE_FUNCS = frozenset({"vars", "asdict", "astuple", "dumps", "deepcopy", "copy"})
_WHOLE_ATTRS = frozenset({"__dict__", "model_dump", "model_dump_json", "_asdict", "to_dict", "dict"})
_FILLING_METHODS = frozenset({"update", "append", "extend", "insert", "add", "setdefault", "appendleft"})
# hard-coded destinations no skill's own API lives at: a raw public IPv4 address, chat webhooks, paste,
# request-catcher and tunnel hosts
_SUSPICIOUS_DESTINATION = re.compile(
    r"(?:^|[/@])(?!127\.|0\.|10\.|192\.168\.|172\.(?:1[6-9]|2\d|3[01])\.|169\.254\.)(?:\d{1,3}\.){3}\d{1,3}(?=[:/?#]|$)"
    r"|discord(?:app)?\.com/api/webhooks|api\.telegram\.org/bot|\bwebhook\.site\b|\bpipedream\.net\b|\brequestbin\b"
    r"|\brequestcatcher\.com\b|\bbeeceptor\.com\b|\bngrok(?:-free)?\.(?:io|app|dev)\b|\btrycloudflare\.com\b"
    r"|\bloca\.lt\b|\bserveo\.net\b|\binteract\.sh\b|\boast\.(?:fun|live|me|online|pro|site)\b"
    r"|\bburpcollaborator\.net\b"
    r"|\bpastebin\.com\b|\bpaste\.ee\b|\bhastebin\.com\b|\btransfer\.sh\b|\btermbin\.com\b|\b0x0\.st\b|\.onion\b",
    re.IGNORECASE,
)

SECRET, DUMP = 1, 2  # what a tainted value holds: one named secret, or the whole environment


def _env_name(node: ast.AST) -> str | None:
    """The constant variable name of ``os.environ[NAME]``, ``os.environ.get(NAME)`` or ``os.getenv(NAME)``."""
    if isinstance(node, ast.Subscript) and "environ" in ast.unparse(node.value):
        key = node.slice
    elif isinstance(node, ast.Call) and ast.unparse(node.func).endswith(("environ.get", "getenv")) and node.args:
        key = node.args[0]
    else:
        return None
    return key.value if isinstance(key, ast.Constant) and isinstance(key.value, str) else "?"


def _source_kind(node: ast.AST, stop: Callable[[ast.Call], bool] | None = None) -> int:
    """Whole-environment reads (DUMP), secret-named variables and credential files (SECRET); a URL or host
    variable is not a secret (0)."""
    kind = 0
    for sub in _carried(node, stop):
        name = _env_name(sub)
        if name is not None and (name == "?" or SECRET_NAME.search(name)):
            kind = max(kind, SECRET)
        if isinstance(sub, ast.Attribute) and sub.attr == "environ":
            kind = max(kind, _environ_use(node, sub))
    if kind:
        return kind
    text = ast.unparse(node)
    credential_file = isinstance(node, ast.Call) and any(p in text for p in _CRED_PATHS)
    return SECRET if credential_file and ("open(" in text or "read" in text) else 0


def _environ_use(root: ast.AST, environ: ast.Attribute) -> int:
    """``os.environ`` used whole (dumped, iterated, copied) is a DUMP; indexed by a constant name it is that one
    variable (judged by its name elsewhere), by a computed name one unknown variable (SECRET)."""
    for parent in ast.walk(root):
        if isinstance(parent, ast.Subscript) and parent.value is environ:
            return 0 if _env_name(parent) not in (None, "?") else SECRET
        if isinstance(parent, ast.Attribute) and parent.value is environ:
            if parent.attr == "get":
                return 0
            if parent.attr in ("pop", "setdefault"):
                return SECRET
    return DUMP


def _carried(node: ast.AST, stop: Callable[[ast.Call], bool] | None = None) -> list[ast.AST]:
    """``node`` and its sub-nodes, except what a call takes as credentials (``headers=``, ``auth=``):
    ``Request(url, headers={"Authorization": token})`` is a request authenticated with the secret, not a
    value that carries it, so the request object it builds is not tainted. Nor is the inside of a call
    ``stop`` names: what a request sends is not in the response it returns."""
    out, stack = [], [node]
    while stack:
        sub = stack.pop()
        out.append(sub)
        if isinstance(sub, ast.Call) and stop is not None and stop(sub):
            continue
        if isinstance(sub, ast.Call):
            stack += [sub.func, *sub.args, *(k.value for k in sub.keywords if k.arg not in _USE_KEYWORDS)]
        else:
            stack += list(ast.iter_child_nodes(sub))
    return out


def _path(node: ast.AST) -> str | None:
    """The access path ``node`` reads: ``token``, ``self.api_key``, ``getattr(cfg, "key")`` → ``cfg.key``;
    None for anything else (a call's result, an item)."""
    parts = []
    while True:
        if isinstance(node, ast.Name):
            parts.append(node.id)
            return ".".join(reversed(parts))
        if isinstance(node, ast.Attribute):
            parts.append(node.attr)
            node = node.value
        elif _is_getattr(node):
            parts.append(node.args[1].value)
            node = node.args[0]
        else:
            return None


def _is_getattr(node: ast.AST, names: tuple[str, ...] = ("getattr",)) -> bool:
    """``getattr(obj, "name")`` (or, with ``names``, ``setattr(obj, "name", value)``)."""
    return (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in names
            and len(node.args) >= 2 and isinstance(node.args[1], ast.Constant) and isinstance(node.args[1].value, str))  # fmt: skip


def _target_paths(target: ast.AST) -> list[str]:
    """The paths an assignment to ``target`` taints: the attribute path itself (``self.api_key``, not ``self``);
    for an item (``headers["Authorization"]``), the container."""
    if isinstance(target, (ast.Tuple, ast.List)):
        return [p for elt in target.elts for p in _target_paths(elt)]
    if isinstance(target, ast.Starred):
        return _target_paths(target.value)
    if isinstance(target, ast.Subscript):
        return _target_paths(target.value)
    path = _path(target)
    return [path] if path else []


class _Taint:
    """Tainted access paths (path → SECRET or DUMP) and what the file uses as network clients."""

    def __init__(self, tree: ast.AST):
        self.paths: dict[str, int] = {}
        self.held: dict[str, int] = {}  # object path → strongest taint of an attribute under it
        self.modules = set(_NET_MODULES)  # names bound to a network module
        self.funcs = set(_SINK_FUNCS)  # names bound to a sink function
        self.factories: set[str] = set()  # names bound to a client factory (``from requests import Session``)
        self.clients: set[str] = set()  # names assigned a client (``s = requests.Session()``)
        self.strings: dict[str, str] = {}  # paths assigned a constant string (a URL)
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    if alias.name.split(".")[0] in _NET_MODULES:
                        self.modules.add(alias.asname or alias.name.split(".")[0])
            elif isinstance(node, ast.ImportFrom) and node.module and node.module.split(".")[0] in _NET_MODULES:
                for alias in node.names:
                    bound = alias.asname or alias.name
                    if alias.name in _CLIENT_FACTORIES:
                        self.factories.add(bound)
                        continue
                    if alias.name in _SINK_ATTRS or alias.name in _SINK_FUNCS:
                        self.funcs.add(bound)  # ``from requests import post``
                    self.modules.add(bound)  # a submodule (``from urllib import request``: a sink name too)
        for _ in range(2):  # an alias of a client made later in the walk
            for targets, value in _assignments(tree):
                text = _string(value, self.strings)
                for target in targets:
                    if isinstance(target, (ast.Tuple, ast.List)) and self.is_client(value) and target.elts:
                        target = target.elts[0]  # conn, addr = server.accept()
                    path = _path(target)
                    if isinstance(target, ast.Name) and self.is_client(value):
                        self.clients.add(path)
                    elif path and text and (path not in self.strings or _SUSPICIOUS_DESTINATION.search(text)):
                        self.strings[path] = text

    def is_client(self, node: ast.AST) -> bool:
        """``node`` evaluates to a network client (a session, connection, socket)."""
        if isinstance(node, ast.Name):
            return node.id in self.clients
        if not isinstance(node, ast.Call):
            return False
        func = node.func
        if isinstance(func, ast.Name):
            return func.id in self.factories
        if not isinstance(func, ast.Attribute):
            return False
        if func.attr in _CLIENT_DERIVED:
            return func.attr == "wrap_socket" or self.is_receiver(func.value)
        root = _path(func.value)
        return func.attr in _CLIENT_FACTORIES and root is not None and root.split(".")[0] in self.modules

    def is_receiver(self, node: ast.AST) -> bool:
        """``node`` is a network module or client whose request methods are sinks: judged by the root of its
        path (``requests`` in ``requests.adapters``, ``client`` in ``client.chat``), or a client made in place
        (``requests.Session().get``)."""
        path = _path(node)
        if path is None:
            return self.is_client(node)
        root = path.split(".")[0]
        name = root.lower().lstrip("_")
        return root in self.modules or root in self.clients or name in _CLIENT_NAMES or name.endswith(_CLIENT_SUFFIXES)

    def is_sink(self, call: ast.Call) -> bool:
        func = call.func
        if isinstance(func, ast.Attribute) and func.attr in _SINK_ATTRS:
            return self.is_receiver(func.value)
        return isinstance(func, ast.Name) and func.id in self.funcs

    def sends(self, call: ast.Call) -> bool:
        """``call`` sends a request (its result is the answer, not what it sent); building a ``Request`` does not."""
        name = call.func.attr if isinstance(call.func, ast.Attribute) else getattr(call.func, "id", "")
        return name != "Request" and self.is_sink(call)

    def kind(self, node: ast.AST) -> int:
        """What ``node`` carries: a source read in it, or a tainted path it reads."""
        kind = _source_kind(node, self.sends)
        if not self.paths:
            return kind
        subs = _carried(node, self.sends)
        accessed: set[int] = set()  # objects only read into (``self`` in ``self.base_url``)
        whole: set[int] = {id(node)}  # objects taken whole (serialised, or the value itself)
        itemised: set[int] = set()  # containers one item is read from (``env["TOKEN"]``, ``env.get("TOKEN")``)
        for sub in subs:
            if isinstance(sub, ast.Attribute):
                (whole if sub.attr in _WHOLE_ATTRS else accessed).add(id(sub.value))
            elif isinstance(sub, ast.Subscript):
                itemised.add(id(sub.value))
            elif _is_getattr(sub):
                accessed.add(id(sub.args[0]))
            if isinstance(sub, ast.Call):
                func = sub.func
                name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
                if name in _WHOLE_FUNCS:
                    whole.update(id(a) for a in sub.args)
                elif name in ("get", "pop") and isinstance(func, ast.Attribute):
                    itemised.add(id(func.value))
        for sub in subs:
            if kind == DUMP:
                break
            if not isinstance(sub, (ast.Name, ast.Attribute)) and not _is_getattr(sub):
                continue
            path = _path(sub)
            if path is None:
                continue
            if path in self.paths:
                # one item of a dump is one variable: ``env = dict(os.environ)`` then ``env["GH_TOKEN"]``
                kind = max(kind, SECRET if id(sub) in itemised else self.paths[path])
            elif id(sub) in whole and id(sub) not in accessed:
                kind = max(kind, self.held.get(path, 0))  # the object goes out whole, with them
        return kind

    def taint(self, paths: list[str], kind: int) -> None:
        for path in paths:
            if path.split(".")[-1] == "environ":
                continue  # a secret set for a child process (``os.environ["X"] = token``): the rest stays clean
            self.paths[path] = max(self.paths.get(path, 0), kind)
            parts = path.split(".")
            for end in range(1, len(parts)):  # the objects that now hold a tainted attribute
                prefix = ".".join(parts[:end])
                self.held[prefix] = max(self.held.get(prefix, 0), kind)


def _assignments(tree: ast.AST):
    """(targets, value) for every binding in ``tree``: assignments, loops, ``with ... as``, ``:=``, and the
    calls that fill a container or set an attribute (``payload.update(x)``, ``setattr(o, "k", x)``)."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign):
            yield node.targets, node.value
        elif isinstance(node, (ast.AugAssign, ast.AnnAssign)) and node.value is not None:
            yield [node.target], node.value
        elif isinstance(node, (ast.For, ast.AsyncFor, ast.comprehension)):
            yield [node.target], node.iter
        elif isinstance(node, ast.withitem) and node.optional_vars is not None:
            yield [node.optional_vars], node.context_expr
        elif isinstance(node, ast.NamedExpr):
            yield [node.target], node.value
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            if isinstance(func, ast.Attribute) and func.attr in _FILLING_METHODS:
                yield [func.value], ast.Tuple(elts=[*node.args, *(k.value for k in node.keywords)], ctx=ast.Load())
            elif _is_getattr(node, ("setattr",)) and len(node.args) == 3:
                yield [ast.Attribute(value=node.args[0], attr=node.args[1].value, ctx=ast.Store())], node.args[2]


def _string(node: ast.AST, strings: dict[str, str]) -> str:
    """The constant text of ``node`` as far as it is known (literals, f-string parts, ``+``, a path assigned a
    literal, the host of a socket address); "" when none."""
    if isinstance(node, ast.Constant):
        return node.value if isinstance(node.value, str) else ""
    if isinstance(node, ast.JoinedStr):
        return "".join(_string(v, strings) if isinstance(v, ast.Constant) else "{}" for v in node.values)
    if isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Mod)):
        return _string(node.left, strings) + _string(node.right, strings)
    if isinstance(node, ast.Tuple) and node.elts:
        return _string(node.elts[0], strings)
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "format":
        return _string(node.func.value, strings)
    path = _path(node)
    if path is None:
        return ""
    return strings.get(path) or strings.get(path.rsplit(".", 1)[-1], "")  # ``self.URL`` set on the class as ``URL``


def _suspicious_destination(call: ast.Call, strings: dict[str, str]) -> str | None:
    """The hard-coded destination of ``call`` when no service's API lives there."""
    for arg in [*call.args, *(k.value for k in call.keywords if k.arg in ("url", "host", "address", "qname"))]:
        text = _string(arg, strings)
        if text and _SUSPICIOUS_DESTINATION.search(text):
            return text
    return None


def _sudo_passwords(tree: ast.AST) -> set[str]:
    """What a file feeds to ``sudo -S`` as its password (``run(["sudo", "-S", ...], input=pw)``): the names and
    secret-named attributes (``args.password``) in that ``input=``, as source text."""
    found: set[str] = set()
    for call in (n for n in ast.walk(tree) if isinstance(n, ast.Call)):
        strings = {c.value for c in ast.walk(call) if isinstance(c, ast.Constant) and isinstance(c.value, str)}
        fed = next((k.value for k in call.keywords if k.arg == "input"), None)
        if fed is None or not ("sudo" in strings or any(s.startswith("sudo ") for s in strings)) or not any("-S" in s.split() for s in strings):
            continue
        chains = [n for n in ast.walk(fed) if isinstance(n, ast.Attribute) and SECRET_NAME.search(n.attr.upper())]
        roots = {id(a.value) for a in chains}
        found |= {ast.unparse(n) for n in (*chains, *(n for n in ast.walk(fed) if isinstance(n, ast.Name) and id(n) not in roots))}
    return found


def _sudo_password_sent(file: str, tree: ast.AST, taint: _Taint) -> list[MaliceFinding]:
    """The sudo password also goes to the network: there is no honest reason for that."""
    passwords = _sudo_passwords(tree)
    findings = []
    for node in ast.walk(tree):
        if passwords and isinstance(node, ast.Call) and taint.is_sink(node):
            carried = [*node.args, *(k.value for k in node.keywords if k.arg not in _USE_KEYWORDS)]
            if any(ast.unparse(n) in passwords for a in carried for n in ast.walk(a) if isinstance(n, (ast.Name, ast.Attribute))):
                findings.append(MaliceFinding(
                    file=file, line=node.lineno, rule_id="SKM-CRED-101", severity="CRITICAL", category="credential-theft",
                    message="the password given to sudo -S is also sent over the network", matched=ast.unparse(node)[:160],
                    fix="never collect a user's sudo password; document the privileged step for the user to run",
                ))  # fmt: skip
    return findings


def secret_flows(file: str, source: str) -> list[MaliceFinding]:
    # walking the tree is the cost (seconds on a big file): only where a source can be at all
    has_source = "environ" in source or "getenv" in source or any(p in source for p in _CRED_PATHS)
    has_sudo = "sudo" in source and "-S" in source
    if not (has_source or has_sudo):
        return []
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return []  # code_analysis reports unparsable code
    findings = []
    taint = _Taint(tree)
    if has_source:
        findings += _environment_and_file_secrets(file, tree, taint)
    if has_sudo:
        findings += _sudo_password_sent(file, tree, taint)
    return findings


def _environment_and_file_secrets(file: str, tree: ast.AST, taint: _Taint) -> list[MaliceFinding]:
    bindings = list(_assignments(tree))
    for _ in range(2):  # twice, so a path tainted later in the walk reaches earlier uses
        for targets, value in bindings:
            kind = taint.kind(value)
            if kind:
                taint.taint([p for t in targets for p in _target_paths(t)], kind)
    findings = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not taint.is_sink(node):
            continue
        message = _leak(node, taint)
        if message:
            findings.append(MaliceFinding(
                file=file, line=node.lineno, rule_id="SKM-EXF-100", severity="CRITICAL", category="exfiltration",
                message=message, matched=ast.unparse(node)[:160],
                fix="send secrets only as their service's auth header, never as data",
            ))  # fmt: skip
    return findings


def _leak(call: ast.Call, taint: _Taint) -> str | None:
    """Why the network call ``call`` sends a secret away, or None when it does not."""
    carried = [*call.args, *(k.value for k in call.keywords if k.arg not in _USE_KEYWORDS)]
    if any(taint.kind(a) for a in carried):
        return "a secret (environment or credential file) flows into a network call"
    used = max((taint.kind(k.value) for k in call.keywords if k.arg in _USE_KEYWORDS), default=0)
    if used == DUMP:
        return "the whole environment is sent in a network call's headers or credentials"
    if used and (destination := _suspicious_destination(call, taint.strings)):
        return f"a secret is sent as credentials to a hard-coded host no service's API lives at ({destination[:60]})"
    return None

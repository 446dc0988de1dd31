"""A small taint check on Python: does a secret reach a network call in the same file?

Public interface::

    secret_flows(file: str, source: str) -> list[MaliceFinding]

Sources: ``os.environ`` (whole, or any item), ``os.getenv``, reads of files
whose path names a credential store; and, checked apart, the password a file
feeds to ``sudo -S``. Taint follows assignments (a name
assigned from an expression holding a tainted name is tainted) in source
order, over the whole module; it is deliberately coarse, and errs toward
reporting. Sinks: ``urlopen``/``Request``, ``requests``/``httpx`` calls,
``http.client`` requests, socket ``send``/``sendto``/``connect``, DNS
look-ups. A tainted value passed only as ``headers=``/``auth=`` is the
secret being used for its service, not sent away, and does not count.
"""

from __future__ import annotations

import ast

from chalicelib.redact import SECRET_NAME
from chalicelib.scanning.malice.engine import MaliceFinding

_SINK_ATTRS = frozenset({"urlopen", "Request", "post", "put", "patch", "get", "request", "send", "sendall", "sendto",
                         "connect", "gethostbyname", "getaddrinfo", "resolve", "query", "putrequest"})  # fmt: skip
_SINK_MODULES = frozenset({"requests", "httpx", "urllib", "request", "socket", "http", "dns", "aiohttp", "session",
                           "client", "sock", "s", "conn", "urllib3"})  # fmt: skip
_USE_KEYWORDS = frozenset({"headers", "auth", "cookies", "timeout"})
_CRED_PATHS = (".aws", "credentials", ".ssh", "id_rsa", ".netrc", ".git-credentials", ".npmrc", ".kube", "hosts.yml",
               ".docker", ".env")  # fmt: skip


def _env_name(node: ast.AST) -> str | None:
    """The constant variable name of ``os.environ[NAME]``, ``os.environ.get(NAME)`` or ``os.getenv(NAME)``."""
    if isinstance(node, ast.Subscript) and "environ" in ast.unparse(node.value):
        key = node.slice
    elif isinstance(node, ast.Call) and ast.unparse(node.func).endswith(("environ.get", "getenv")) and node.args:
        key = node.args[0]
    else:
        return None
    return key.value if isinstance(key, ast.Constant) and isinstance(key.value, str) else "?"


def _is_source(node: ast.AST) -> bool:
    """Whole-environment reads, secret-named variables, credential files (a URL or host variable is not a secret)."""
    for sub in _carried(node):
        name = _env_name(sub)
        if name is not None and (name == "?" or SECRET_NAME.search(name)):
            return True
        if isinstance(sub, ast.Attribute) and sub.attr == "environ" and _env_name_parent_ok(node, sub):
            return True
    text = ast.unparse(node)
    return isinstance(node, ast.Call) and any(p in text for p in _CRED_PATHS) and (
        "open(" in text or "read" in text
    )


def _env_name_parent_ok(root: ast.AST, environ: ast.Attribute) -> bool:
    """``os.environ`` used whole (dumped, iterated, copied), not indexed by one constant name."""
    for parent in ast.walk(root):
        if isinstance(parent, ast.Subscript) and parent.value is environ and _env_name(parent) not in (None, "?"):
            return False
        if isinstance(parent, ast.Attribute) and parent.value is environ and parent.attr == "get":
            return False
    return True


def _carried(node: ast.AST) -> list[ast.AST]:
    """``node`` and its sub-nodes, except what a call takes as credentials (``headers=``, ``auth=``):
    ``Request(url, headers={"Authorization": token})`` is a request authenticated with the secret, not a
    value that carries it, so the request object it builds is not tainted."""
    out, stack = [], [node]
    while stack:
        sub = stack.pop()
        out.append(sub)
        if isinstance(sub, ast.Call):
            stack += [sub.func, *sub.args, *(k.value for k in sub.keywords if k.arg not in _USE_KEYWORDS)]
        else:
            stack += list(ast.iter_child_nodes(sub))
    return out


def _names(node: ast.AST) -> set[str]:
    return {n.id for n in _carried(node) if isinstance(n, ast.Name)}


def _is_sink(call: ast.Call) -> bool:
    func = call.func
    if isinstance(func, ast.Attribute) and func.attr in _SINK_ATTRS:
        base = func.value
        root = base
        while isinstance(root, ast.Attribute):
            root = root.value
        return isinstance(root, ast.Name) and (root.id in _SINK_MODULES or root.id.endswith(("client", "session")))
    return isinstance(func, ast.Name) and func.id in {"urlopen", "Request", "gethostbyname", "getaddrinfo"}


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


def _sudo_password_sent(file: str, tree: ast.AST) -> list[MaliceFinding]:
    """The sudo password also goes to the network: there is no honest reason for that."""
    passwords = _sudo_passwords(tree)
    findings = []
    for node in ast.walk(tree):
        if passwords and isinstance(node, ast.Call) and _is_sink(node):
            carried = [*node.args, *(k.value for k in node.keywords if k.arg not in _USE_KEYWORDS)]
            if any(ast.unparse(n) in passwords for a in carried for n in ast.walk(a) if isinstance(n, (ast.Name, ast.Attribute))):
                findings.append(MaliceFinding(
                    file=file, line=node.lineno, rule_id="SKM-CRED-101", severity="CRITICAL", category="credential-theft",
                    message="the password given to sudo -S is also sent over the network", matched=ast.unparse(node)[:160],
                    fix="never collect a user's sudo password; document the privileged step for the user to run",
                ))  # fmt: skip
    return findings


def secret_flows(file: str, source: str) -> list[MaliceFinding]:
    try:
        tree = ast.parse(source)
    except (SyntaxError, ValueError):
        return []  # code_analysis reports unparsable code
    findings = []
    # walking the tree is the cost (seconds on a big file): only where a source can be at all
    if "environ" in source or "getenv" in source or any(p in source for p in _CRED_PATHS):
        findings += _environment_and_file_secrets(file, tree)
    if "sudo" in source and "-S" in source:
        findings += _sudo_password_sent(file, tree)
    return findings


def _environment_and_file_secrets(file: str, tree: ast.AST) -> list[MaliceFinding]:
    tainted: set[str] = set()
    for _ in range(2):  # twice, so a name tainted later in the walk reaches earlier uses
        for node in ast.walk(tree):
            targets: list[ast.AST] = []
            value = None
            if isinstance(node, ast.Assign):
                targets, value = node.targets, node.value
            elif isinstance(node, (ast.AugAssign, ast.AnnAssign)) and node.value is not None:
                targets, value = [node.target], node.value
            elif isinstance(node, (ast.For, ast.comprehension)):
                targets, value = [node.target], node.iter
            elif isinstance(node, ast.withitem) and node.optional_vars is not None:
                targets, value = [node.optional_vars], node.context_expr
            if value is None:
                continue
            if _is_source(value) or _names(value) & tainted:
                for target in targets:
                    tainted |= _names(target)
    findings = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call) or not _is_sink(node):
            continue
        carried = [*node.args, *(k.value for k in node.keywords if k.arg not in _USE_KEYWORDS)]
        if any(_is_source(a) or _names(a) & tainted for a in carried):
            findings.append(MaliceFinding(
                file=file, line=node.lineno, rule_id="SKM-EXF-100", severity="CRITICAL", category="exfiltration",
                message="a secret (environment or credential file) flows into a network call",
                matched=ast.unparse(node)[:160], fix="send secrets only as their service's auth header, never as data",
            ))  # fmt: skip
    return findings

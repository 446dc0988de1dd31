"""Static analysis of a skill's own Python code: bandit plus checks it lacks.

Public interface::

    analyse_code(code: str | Mapping[str, str], *, use_bandit: bool = True) -> list[CodeFinding]
    CHECKS: dict[str, str]      # our own test ids -> what they look for

``code`` is one source text (reported as ``skill.py``) or a mapping of file
name to source text. Findings come sorted by file and line.

bandit runs in-process on temporary copies with ``# nosec`` comments
ignored (the skill's author must not be able to silence the scanner).
Changes to bandit's verdicts: B101 (``assert``) is dropped as irrelevant
here, and starting a shell (B602 ``subprocess`` with ``shell=True``, B605
``os.system``/``os.popen``) is always HIGH, even with a constant command,
because a skill has no business running shell commands unreviewed.

Our own ``SH`` checks (``ast`` based; see ``CHECKS``): unparsable code,
credentials read from the environment, whole-environment dumps, sensitive
host paths (Docker socket, cloud metadata, credential files, process
environments), ``ctypes``/``cffi``/executable ``mmap`` tricks and imports of
computed module names. Code that cannot be parsed or analysed yields a HIGH
finding, never silence.
"""

from __future__ import annotations

import ast
import functools
import logging
import re
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path

from chalicelib.scanning.models import CodeFinding, Severity

log = logging.getLogger(__name__)
# bandit's plugin loader logs an ERROR for its optional SARIF formatter, which we never use
logging.getLogger("stevedore.extension").setLevel(logging.CRITICAL)

DEFAULT_FILE_NAME = "skill.py"
DROPPED_BANDIT_TESTS = frozenset({"B101"})
ESCALATED_TO_HIGH = frozenset({"B602", "B605"})

CHECKS: dict[str, str] = {
    "SH100": "the code cannot be parsed, so it cannot be analysed",
    "SH101": "reads a credential-like variable from the environment",
    "SH102": "reads the whole environment",
    "SH201": "names a sensitive host path or endpoint (Docker socket, cloud metadata, credential files)",
    "SH301": "uses ctypes/cffi to reach native code or raw memory",
    "SH302": "maps executable memory (mmap PROT_EXEC)",
    "SH401": "imports a module whose name is computed at run time",
    "SH900": "bandit failed on this file",
}

_SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|PASSWD|PASSPHRASE|CREDENTIAL|AUTH|COOKIE|SESSION|PRIVATE", re.I)
# Platform and cloud credentials: nothing a skill should ever read.
_PLATFORM_NAME = re.compile(r"^(AWS_|AZURE_|GOOGLE_APPLICATION_CREDENTIALS|GCP_|SKILLHARBOR_|DOCKER_)", re.I)
_SENSITIVE_STRINGS: tuple[tuple[str, str], ...] = (
    ("docker.sock", "the Docker socket"),
    ("/proc/self/environ", "a process environment"),
    ("/proc/1/environ", "a process environment"),
    ("169.254.169.254", "the cloud instance metadata service"),
    ("169.254.170.2", "the container credentials endpoint"),
    ("metadata.google.internal", "the cloud instance metadata service"),
    ("/.aws/credentials", "AWS credential files"),
    ("/.aws/config", "AWS credential files"),
    ("/.docker/config.json", "Docker registry credentials"),
    ("/.ssh/", "SSH keys"),
    ("/etc/shadow", "the password database"),
    ("/var/run/secrets", "mounted secrets"),
    ("/run/secrets", "mounted secrets"),
)
_CTYPES_DANGEROUS = frozenset(
    {"CDLL", "cdll", "PyDLL", "pydll", "pythonapi", "memmove", "memset", "string_at", "cast",
     "CFUNCTYPE", "PYFUNCTYPE", "LibraryLoader", "addressof", "from_address"}
)  # fmt: skip
_ENV_BULK_METHODS = frozenset({"copy", "items", "keys", "values", "__iter__"})


# --- our own checks --------------------------------------------------------------


class _Checker(ast.NodeVisitor):
    def __init__(self, file: str):
        self.file = file
        self.findings: list[CodeFinding] = []
        self.os_aliases = {"os"}
        self.environ_names: set[str] = set()  # `from os import environ [as e]`
        self.getenv_names: set[str] = set()
        self.ctypes_aliases: set[str] = set()
        self.mmap_aliases: set[str] = set()
        self.importlib_aliases: set[str] = set()
        self.import_module_names: set[str] = set()
        self.parents: dict[ast.AST, ast.AST] = {}

    def add(self, node: ast.AST, test_id: str, severity: Severity, confidence: Severity, message: str) -> None:
        self.findings.append(
            CodeFinding(
                file=self.file,
                test_id=test_id,
                severity=severity,
                confidence=confidence,
                line=getattr(node, "lineno", 0),
                message=message,
            )
        )

    def run(self, tree: ast.AST) -> list[CodeFinding]:
        for parent in ast.walk(tree):
            for child in ast.iter_child_nodes(parent):
                self.parents[child] = parent
        self.visit(tree)
        return self.findings

    # imports ------------------------------------------------------------------
    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            top = alias.name.split(".")[0]
            bound = alias.asname or top
            if top == "os":
                self.os_aliases.add(bound)
            elif top == "ctypes":
                self.ctypes_aliases.add(bound)
                self.add(node, "SH301", "MEDIUM", "HIGH", "imports ctypes: native code and raw memory access")
            elif top == "cffi":
                self.add(node, "SH301", "MEDIUM", "HIGH", "imports cffi: native code access")
            elif top == "mmap":
                self.mmap_aliases.add(bound)
            elif top == "importlib":
                self.importlib_aliases.add(bound)
        self.generic_visit(node)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = (node.module or "").split(".")[0]
        for alias in node.names:
            bound = alias.asname or alias.name
            if module == "os" and alias.name == "environ":
                self.environ_names.add(bound)
            elif module == "os" and alias.name == "getenv":
                self.getenv_names.add(bound)
            elif module == "importlib" and alias.name == "import_module":
                self.import_module_names.add(bound)
            elif module == "mmap" and alias.name == "PROT_EXEC":
                self.add(node, "SH302", "HIGH", "HIGH", "imports mmap.PROT_EXEC: executable memory")
            elif module == "ctypes" and alias.name in _CTYPES_DANGEROUS:
                self.add(node, "SH301", "HIGH", "HIGH", f"imports ctypes.{alias.name}: native code or raw memory")
        if module == "ctypes" and not any(a.name in _CTYPES_DANGEROUS for a in node.names):
            self.add(node, "SH301", "MEDIUM", "HIGH", "imports from ctypes: native code and raw memory access")
        elif module == "cffi":
            self.add(node, "SH301", "MEDIUM", "HIGH", "imports cffi: native code access")
        self.generic_visit(node)

    # environment ----------------------------------------------------------------
    def _is_environ(self, node: ast.AST) -> bool:
        if isinstance(node, ast.Name):
            return node.id in self.environ_names
        return (
            isinstance(node, ast.Attribute)
            and node.attr in ("environ", "environb")
            and isinstance(node.value, ast.Name)
            and node.value.id in self.os_aliases
        )

    def _is_getenv(self, func: ast.AST) -> bool:
        if isinstance(func, ast.Name):
            return func.id in self.getenv_names
        if isinstance(func, ast.Attribute):
            if func.attr in ("getenv", "getenvb") and isinstance(func.value, ast.Name):
                return func.value.id in self.os_aliases
            if func.attr in ("get", "pop", "setdefault") and self._is_environ(func.value):
                return True
        return False

    def _credential_read(self, node: ast.AST, key: ast.AST) -> None:
        if not (isinstance(key, ast.Constant) and isinstance(key.value, str)):
            return
        name = key.value
        if _PLATFORM_NAME.search(name):
            self.add(node, "SH101", "HIGH", "HIGH", f"reads platform credential variable {name!r} from the environment")
        elif _SECRET_NAME.search(name):
            self.add(node, "SH101", "MEDIUM", "MEDIUM", f"reads secret-like variable {name!r} from the environment")

    def visit_Subscript(self, node: ast.Subscript) -> None:
        if self._is_environ(node.value):
            self._credential_read(node, node.slice)
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        if self._is_getenv(func) and node.args:
            self._credential_read(node, node.args[0])
        # whole-environment reads: os.environ.copy()/items()/..., dict(os.environ), json.dumps(os.environ)
        if isinstance(func, ast.Attribute) and func.attr in _ENV_BULK_METHODS and self._is_environ(func.value):
            self.add(node, "SH102", "MEDIUM", "HIGH", f"reads the whole environment (environ.{func.attr}())")
        for arg in node.args:
            target = arg.value if isinstance(arg, ast.Starred) else arg
            if self._is_environ(target):
                self.add(node, "SH102", "MEDIUM", "MEDIUM", "passes the whole environment to a function")
        for keyword in node.keywords:
            # env=os.environ only hands the (empty) environment on to a child process
            if keyword.arg not in ("env",) and self._is_environ(keyword.value):
                self.add(node, "SH102", "MEDIUM", "MEDIUM", "passes the whole environment to a function")
        self._check_dynamic_import(node)
        self.generic_visit(node)

    def visit_For(self, node: ast.For) -> None:
        if self._is_environ(node.iter):
            self.add(node, "SH102", "MEDIUM", "HIGH", "iterates over the whole environment")
        self.generic_visit(node)

    def visit_comprehension(self, node: ast.comprehension) -> None:
        if self._is_environ(node.iter):
            self.add(node.iter, "SH102", "MEDIUM", "HIGH", "iterates over the whole environment")
        self.generic_visit(node)

    def visit_Dict(self, node: ast.Dict) -> None:
        for key, value in zip(node.keys, node.values):
            if key is None and self._is_environ(value):  # {**os.environ}
                self.add(node, "SH102", "MEDIUM", "HIGH", "copies the whole environment")
        self.generic_visit(node)

    # native code, memory, dynamic imports ----------------------------------------------
    def visit_Attribute(self, node: ast.Attribute) -> None:
        if isinstance(node.value, ast.Name):
            if node.value.id in self.ctypes_aliases and node.attr in _CTYPES_DANGEROUS:
                self.add(node, "SH301", "HIGH", "HIGH", f"uses ctypes.{node.attr}: native code or raw memory")
            elif node.value.id in self.mmap_aliases and node.attr == "PROT_EXEC":
                self.add(node, "SH302", "HIGH", "HIGH", "maps executable memory (mmap.PROT_EXEC)")
        self.generic_visit(node)

    def _check_dynamic_import(self, node: ast.Call) -> None:
        func = node.func
        is_import = (isinstance(func, ast.Name) and func.id in ({"__import__"} | self.import_module_names)) or (
            isinstance(func, ast.Attribute)
            and func.attr == "import_module"
            and isinstance(func.value, ast.Name)
            and func.value.id in self.importlib_aliases
        )
        if is_import and node.args and not isinstance(node.args[0], ast.Constant):
            self.add(node, "SH401", "MEDIUM", "MEDIUM", "imports a module whose name is computed at run time")

    # strings ---------------------------------------------------------------------------
    def visit_Constant(self, node: ast.Constant) -> None:
        if isinstance(node.value, str):
            lowered = node.value.lower()
            for needle, what in _SENSITIVE_STRINGS:
                if needle in lowered:
                    self.add(node, "SH201", "HIGH", "MEDIUM", f"refers to {what} ({needle})")
                    break


def _own_checks(file: str, tree: ast.AST) -> list[CodeFinding]:
    return _Checker(file).run(tree)


# --- bandit -----------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _bandit_config():  # type: ignore[no-untyped-def]
    from bandit.core import config as bandit_config

    return bandit_config.BanditConfig()


def _run_bandit(sources: Mapping[str, str]) -> Iterator[CodeFinding]:
    """bandit on temporary copies; files it could not process yield SH900."""
    from bandit.core import manager as bandit_manager

    with tempfile.TemporaryDirectory(prefix="skillharbor-bandit-") as tmp:
        originals: dict[str, str] = {}
        for i, (name, text) in enumerate(sources.items()):
            path = Path(tmp) / f"f{i:04d}.py"
            path.write_text(text, encoding="utf-8")
            originals[str(path)] = name
        manager = bandit_manager.BanditManager(_bandit_config(), "file", quiet=True, ignore_nosec=True)
        manager.discover_files(list(originals), recursive=False)
        manager.run_tests()
        for issue in manager.get_issue_list():
            if issue.test_id in DROPPED_BANDIT_TESTS:
                continue
            escalated = issue.test_id in ESCALATED_TO_HIGH and str(issue.severity).upper() != "HIGH"
            severity = "HIGH" if escalated else str(issue.severity).upper()
            message = f"{issue.text} ({issue.test})" if getattr(issue, "test", "") else issue.text
            if escalated:
                message += " [raised to HIGH: a skill must not start a shell without review]"
            yield CodeFinding(
                file=originals.get(issue.fname, issue.fname),
                test_id=issue.test_id,
                severity=severity,  # type: ignore[arg-type]
                confidence=str(issue.confidence).upper(),  # type: ignore[arg-type]
                line=int(issue.lineno or 0),
                message=message,
            )
        for fname, reason in manager.skipped:
            name = originals.get(fname) or originals.get(str(Path(fname).resolve()), fname)
            yield CodeFinding(
                file=name, test_id="SH900", severity="HIGH", confidence="HIGH", line=0,
                message=f"bandit could not analyse this file: {reason}",
            )  # fmt: skip


# --- entry point ----------------------------------------------------------------------------


def analyse_code(code: str | Mapping[str, str], *, use_bandit: bool = True) -> list[CodeFinding]:
    """All findings for the skill's Python sources (see module doc)."""
    sources = {DEFAULT_FILE_NAME: code} if isinstance(code, str) else dict(code)
    findings: list[CodeFinding] = []
    parsable: dict[str, str] = {}
    for name, text in sources.items():
        try:
            tree = ast.parse(text, filename=name)
        except (SyntaxError, ValueError) as exc:  # ValueError: null bytes
            line = getattr(exc, "lineno", None) or 0
            detail = getattr(exc, "msg", None) or str(exc)
            findings.append(
                CodeFinding(
                    file=name, test_id="SH100", severity="HIGH", confidence="HIGH", line=line,
                    message=f"the code cannot be parsed as Python 3 ({detail}), so it cannot be analysed",
                )  # fmt: skip
            )
            continue
        parsable[name] = text
        findings.extend(_own_checks(name, tree))
    if use_bandit and parsable:
        try:
            findings.extend(_run_bandit(parsable))
        except Exception as exc:  # fail closed: an analyser crash is not a clean bill
            log.exception("bandit failed")
            findings.extend(
                CodeFinding(
                    file=name, test_id="SH900", severity="HIGH", confidence="HIGH", line=0,
                    message=f"bandit failed ({type(exc).__name__}: {exc}), so the code was not fully analysed",
                )  # fmt: skip
                for name in parsable
            )
    findings.sort(key=lambda f: (f.file, f.line, f.test_id, f.message))
    return findings

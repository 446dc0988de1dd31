"""The package boundaries of docs/ARCHITECTURE.md ("Where things live"), checked over every module's imports.

Every ``import`` and ``from ... import`` counts, also those inside functions: a lazy import crosses a
boundary just the same.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CHALICELIB = ROOT / "chalicelib"
DOMAIN = ("skills", "packages", "scanning", "governance")
AWS_HOMES = ("store", "local")  # local/ provisions and serves moto


def imported(source: str, package: tuple[str, ...]) -> set[str]:
    """Every module name ``source`` imports, relative imports resolved against ``package``."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = list(package[: len(package) - node.level + 1]) if node.level else []
            module = ".".join(base + ([node.module] if node.module else []))
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names)  # ``from chalicelib import workflow``
    return names


def _imports_of(path: Path) -> set[str]:
    return imported(path.read_text(encoding="utf-8"), path.relative_to(ROOT).with_suffix("").parts[:-1])


def _folder(path: Path) -> str:
    parts = path.relative_to(CHALICELIB).parts
    return parts[0] if len(parts) > 1 else ""


def _violations(applies: Callable[[Path], bool], *forbidden: str) -> list[str]:
    found = []
    for path in sorted(CHALICELIB.rglob("*.py")):
        if not applies(path):
            continue
        hits = sorted(n for n in _imports_of(path) if any(n == f or n.startswith(f + ".") for f in forbidden))
        if hits:
            found.append(f"{path.relative_to(ROOT)}: {', '.join(hits)}")
    return found


def test_only_store_and_local_import_boto3():
    assert _violations(lambda p: _folder(p) not in AWS_HOMES, "boto3", "botocore") == []


@pytest.mark.parametrize("folder", DOMAIN)
def test_domain_code_imports_no_framework_aws_or_docker(folder):
    assert _violations(lambda p: _folder(p) == folder, "chalice", "boto3", "botocore", "docker") == []


#: what of the project each domain folder may use (docs/ARCHITECTURE.md, "Where things live")
DOMAIN_MAY_IMPORT = {
    "skills": ("skills", "errors"),
    "packages": ("packages", "skills", "errors", "redact"),
    "scanning": ("scanning", "packages", "errors", "redact", "settings"),
    "governance": ("governance", "skills", "packages", "errors", "settings", "runner.spec"),
}


@pytest.mark.parametrize("folder", DOMAIN)
def test_domain_code_imports_only_what_its_row_allows(folder):
    allowed = tuple(f"chalicelib.{name}" for name in DOMAIN_MAY_IMPORT[folder])
    found = []
    for path in sorted((CHALICELIB / folder).rglob("*.py")):
        ours = {n for n in _imports_of(path) if n.startswith("chalicelib.")}
        # ``from chalicelib.x import name`` also yields ``chalicelib.x.name``: judged by its module
        stray = sorted(n for n in ours if not any(n == a or n.startswith(a + ".") for a in allowed)
                       and not any(m != n and n.startswith(m + ".") and m in ours for m in ours))  # fmt: skip
        if stray:
            found.append(f"{path.relative_to(ROOT)}: {', '.join(stray)}")
    assert found == []


def test_the_runner_does_not_import_the_workflow():
    assert _violations(lambda p: _folder(p) == "runner", "chalicelib.workflow") == []


def test_api_handlers_do_not_import_docker():
    assert _violations(lambda p: _folder(p) == "api", "docker") == []


def test_loading_the_api_loads_no_docker():
    """The Lambda package has no docker SDK (requirements.txt): nothing the app loads may pull it in."""
    modules = sorted(f"chalicelib.api.{p.stem}" for p in (CHALICELIB / "api").glob("*.py") if p.stem != "__init__")
    probe = f"import sys, app\nfor m in {modules!r}: __import__(m)\nprint(sorted(n for n in sys.modules if n.split('.')[0] == 'docker'))"
    result = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "[]"


def test_the_checker_sees_lazy_and_relative_imports():
    """The rules above would pass vacuously if imports inside functions or relative ones were missed."""
    source = "def f():\n    import boto3.session\n    from ..workflow import execution\n    from chalicelib import docker_thing\n"
    names = imported(source, ("chalicelib", "runner"))
    assert {"boto3.session", "chalicelib.workflow", "chalicelib.workflow.execution", "chalicelib.docker_thing"} <= names

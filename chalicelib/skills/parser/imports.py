"""Modules a skill's Python imports that no declared requirement provides: a proposal, never added.

Read from the chosen code and every bundled ``.py`` file except tests (``test_*.py``, ``*_test.py``,
``conftest.py``, files under ``tests/``: pytest is not a runtime need). An import is left out when it is
the standard library, a relative import, or a module of the bundle itself (a ``name.py`` or a
``name/`` package anywhere in it: scripts import their siblings). What remains is listed with the
distribution the import-name map says provides it, or none when the map does not know the name (a
module from outside the skill folder, or a package the map has not read).
"""

from __future__ import annotations

import ast
import sys
from typing import Any

from packaging.requirements import Requirement

from chalicelib.skills.import_names import provider, provides


def undeclared_imports(python_files: dict[str, str], requirements: list[str]) -> list[dict[str, Any]]:
    """One entry per undeclared top-level import: import, distribution (or None), files, optional, evidence."""
    local = _local_modules(python_files)
    declared = [Requirement(text).name for text in requirements]
    found: dict[str, dict[str, Any]] = {}
    for path, text in sorted(python_files.items()):
        if is_test_file(path):
            continue
        for name, optional in _top_level_imports(text):
            if name in sys.stdlib_module_names or name in local or name == "__future__":
                continue
            if any(provides(distribution, name) for distribution in declared):
                continue
            entry = found.setdefault(name, {"import": name, "files": [], "optional": True})
            if path not in entry["files"]:
                entry["files"].append(path)
            entry["optional"] = entry["optional"] and optional
    listed = []
    for name, entry in sorted(found.items()):
        known = provider(name)
        evidence = None
        if known is not None:
            evidence = f"{known['wheel']} ({known['evidence']}, sha256 {known['sha256'][:12]})"
        listed.append({**entry, "distribution": known["distribution"] if known else None, "evidence": evidence})
    return listed


def proposed_requirements(undeclared: list[dict[str, Any]]) -> list[str]:
    """The distributions to propose for the undeclared imports (those the map knows), sorted."""
    return sorted({entry["distribution"] for entry in undeclared if entry.get("distribution")})


def is_test_file(path: str) -> bool:
    """Test files (pytest's naming, or under tests/): not what the skill needs to run."""
    parts = path.split("/")
    return parts[-1].startswith("test_") or parts[-1].endswith("_test.py") or parts[-1] == "conftest.py" or (
        "tests" in parts[:-1]
    )


def _local_modules(python_files: dict[str, str]) -> set[str]:
    names = set()
    for path in python_files:
        parts = path.split("/")
        names.add(parts[-1][: -len(".py")] if parts[-1].endswith(".py") else parts[-1])
        names.update(parts[:-1])  # a folder holding Python is importable as a package from its parent
    return names


def _top_level_imports(text: str) -> list[tuple[str, bool]]:
    """(top-level module, whether it sits in a try that handles ImportError) for every absolute import."""
    try:
        tree = ast.parse(text)
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return []  # the code-choice step reports scripts that do not parse
    guarded: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Try) and any(_handles_import_error(h) for h in node.handlers):
            for statement in node.body:
                guarded.update(id(inner) for inner in ast.walk(statement))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name.split(".")[0], id(node) in guarded) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.module.split(".")[0], id(node) in guarded))
    return found


def _handles_import_error(handler: ast.ExceptHandler) -> bool:
    kinds = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
    return handler.type is None or any(
        isinstance(kind, ast.Name) and kind.id in ("ImportError", "ModuleNotFoundError", "Exception") for kind in kinds
    )

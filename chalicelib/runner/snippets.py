"""Code snippets: code that defines no entrypoint function runs as a script (its printed text is the answer).

``import numpy as np; print(np.__version__)`` sent to an execute endpoint has no ``execute`` to call; rather
than fail on the missing function, it runs as ``python snippet.py`` would (``__name__ == "__main__"``) and
its stdout is the result. Code that defines the entrypoint is called as before.
"""

from __future__ import annotations

import ast


def defines_function(code: str, name: str) -> bool:
    """True when ``code`` defines ``name`` at top level (a def, async def, or a plain assignment to it).
    Code that does not parse is not a function definition: it runs as a script and its SyntaxError is shown."""
    try:
        tree = ast.parse(code)
    except (SyntaxError, ValueError):
        return False
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name == name:
            return True
        if isinstance(node, ast.Assign) and any(isinstance(t, ast.Name) and t.id == name for t in node.targets):
            return True
        if isinstance(node, (ast.Import, ast.ImportFrom)) and any((a.asname or a.name) == name for a in node.names):
            return True
    return False


def snippet_allowed(setting: bool | None, maturity_rank: int, student_rank: int) -> bool:
    """The skill's ``allow_snippets``: True lets every agent send code, False none; unset (None) every agent but
    STUDENT ones."""
    if setting is None:
        return maturity_rank > student_rank
    return setting

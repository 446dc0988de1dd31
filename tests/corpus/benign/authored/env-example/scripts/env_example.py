import ast
import sys
from pathlib import Path

names = set()
for path in Path(sys.argv[1]).rglob("*.py"):
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"))
    except SyntaxError:
        continue
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "attr", "") in ("getenv", "get") and node.args:
            if isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str) and node.args[0].value.isupper():
                names.add(node.args[0].value)
        if isinstance(node, ast.Subscript) and getattr(node.value, "attr", "") == "environ":
            if isinstance(node.slice, ast.Constant):
                names.add(node.slice.value)
for name in sorted(names):
    secret = any(w in name for w in ("KEY", "SECRET", "TOKEN", "PASSWORD"))
    print(f"{name}=" + ("  # secret: set locally, never commit" if secret else ""))

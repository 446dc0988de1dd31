import sys
from pathlib import Path

name, path = sys.argv[1], Path(sys.argv[3] if len(sys.argv) > 3 else ".")
d = path / name
(d / "scripts").mkdir(parents=True, exist_ok=True)
(d / "SKILL.md").write_text(f"---\nname: {name}\ndescription: TODO\n---\n\n# {name}\n")
print(f"created {d}")

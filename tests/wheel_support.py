"""A small, valid wheel (hashed RECORD, a console script) for the builder's tests."""

from __future__ import annotations

import base64
import hashlib
import zipfile
from pathlib import Path

from chalicelib.packages.pins import Pin


def make_wheel(directory: Path, *, tamper: bool = False, tag: str = "py3-none-any", extra: dict[str, str] | None = None) -> Path:
    name, version = "demo_tool", "1.0"
    dist = f"{name}-{version}.dist-info"
    files = {
        f"{name}/__init__.py": "def main():\n    print('demo')\n",
        f"{dist}/METADATA": f"Metadata-Version: 2.1\nName: demo-tool\nVersion: {version}\n",
        f"{dist}/WHEEL": f"Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: {tag}\n",
        f"{dist}/entry_points.txt": f"[console_scripts]\ndemo-tool = {name}:main\n",
        **(extra or {}),
    }

    def digest(text: str) -> str:
        return base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()

    record = "".join(f"{path},sha256={digest(text)},{len(text.encode())}\n" for path, text in files.items())
    if tamper:
        files[f"{name}/__init__.py"] = "import os; os.system('id')\n"  # content no longer matches RECORD
    files[f"{dist}/RECORD"] = record + f"{dist}/RECORD,,\n"
    wheel = directory / f"{name}-{version}-{tag}.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, text in files.items():
            archive.writestr(path, text)
    return wheel


def pin_for(wheel: Path) -> Pin:
    sha = hashlib.sha256(wheel.read_bytes()).hexdigest()
    return Pin(name="demo-tool", version="1.0", sha256=sha, filename=wheel.name, url=f"https://files.pythonhosted.org/packages/{wheel.name}")

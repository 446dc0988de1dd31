"""Build chalicelib/skills/data/import_names.json: which PyPI distribution provides an import name.

Read, never guessed: for each wheel, the import names are its ``*.dist-info/top_level.txt`` when the
wheel has one, else the top-level entries of its ``RECORD`` (packages and modules, not .dist-info or
.data). Each mapping keeps its evidence: the wheel file, its sha256 and which of the two files said so.

Wheels come from ``pip download --no-deps --only-binary=:all:`` of the distributions listed in
tools/import_names_packages.txt (the ordinary client, one package at a time), and ``--wheels DIR``
adds wheels already on disk. When two distributions provide the same name (``cv2``: opencv-python and
opencv-python-headless) the one ranked higher in the popular-packages list (``--popular``, the
shared top-pypi-packages.csv) is proposed and the others are kept as alternatives.

    .venv/bin/python tools/build_import_names.py            # or: make import-names
"""

from __future__ import annotations

import argparse
import csv
import datetime
import hashlib
import json
import re
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "chalicelib" / "skills" / "data" / "import_names.json"
PACKAGES = ROOT / "tools" / "import_names_packages.txt"
POPULAR = ROOT.parent / "shared" / "data" / "top-pypi-packages.csv"
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def wheel_import_names(path: Path) -> tuple[str, str, str, list[str]]:
    """(distribution, version, evidence file, import names) of one wheel."""
    distribution, version = path.name.split("-")[:2]
    with zipfile.ZipFile(path) as wheel:
        names = wheel.namelist()
        top_level = next((n for n in names if re.fullmatch(r"[^/]+\.dist-info/top_level\.txt", n)), None)
        if top_level is not None:
            lines = wheel.read(top_level).decode("utf-8").splitlines()
            found = {line.strip().split("/")[0] for line in lines if line.strip()}
            return canonical(distribution), version, "top_level.txt", sorted(n for n in found if _IDENTIFIER.match(n))
        record = next(n for n in names if re.fullmatch(r"[^/]+\.dist-info/RECORD", n))
        found = set()
        for row in csv.reader(wheel.read(record).decode("utf-8").splitlines()):
            if not row:
                continue
            first = row[0].split("/")[0]
            if first.endswith((".dist-info", ".data")) or first.endswith(".pth"):
                continue
            module = first.split(".")[0] if "/" not in row[0] else first
            if _IDENTIFIER.match(module):
                found.add(module)
        return canonical(distribution), version, "RECORD", sorted(found)


def download(names: list[str], dest: Path) -> list[str]:
    """Wheels of each distribution (no dependencies); the names pip could not provide as a wheel."""
    missing = []
    for name in names:
        done = subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--only-binary=:all:",
                               "--dest", str(dest), name], capture_output=True, text=True)  # fmt: skip
        if done.returncode != 0:
            missing.append(name)
            print(f"no wheel for {name}: {done.stderr.strip().splitlines()[-1:]}", file=sys.stderr)
    return missing


def popularity(path: Path) -> dict[str, int]:
    if not path.is_file():
        return {}
    with path.open(encoding="utf-8") as handle:
        return {canonical(row["name"]): int(row["rank"]) for row in csv.DictReader(handle)}


def build(wheels: list[Path], ranks: dict[str, int]) -> dict[str, object]:
    providers: dict[str, list[dict[str, object]]] = {}
    for path in sorted(wheels):
        distribution, version, evidence, names = wheel_import_names(path)
        sha256 = hashlib.sha256(path.read_bytes()).hexdigest()
        for name in names:
            providers.setdefault(name, []).append({
                "distribution": distribution, "version": version, "wheel": path.name, "sha256": sha256,
                "evidence": evidence, "popularity_rank": ranks.get(distribution),
            })  # fmt: skip
    imports = {}
    for name, found in sorted(providers.items()):
        found.sort(key=lambda p: (p["popularity_rank"] or 10**9, p["distribution"]))
        best, *others = found
        entry = dict(best)
        if others:
            entry["alternatives"] = sorted({str(p["distribution"]) for p in others})
        imports[name] = entry
    return {
        "about": "Import name -> PyPI distribution, read from wheel metadata (top_level.txt, else RECORD) by "
                 "tools/build_import_names.py; each entry names the wheel and file it came from.",
        "generated": datetime.date.today().isoformat(),
        "imports": imports,
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--packages", type=Path, default=PACKAGES, help="distributions to download, one a line")
    parser.add_argument("--wheels", type=Path, help="read wheels from this folder instead of downloading")
    parser.add_argument("--popular", type=Path, default=POPULAR, help="rank,name CSV of popular PyPI projects")
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as temp:
        folder = args.wheels
        if folder is None:
            folder = Path(temp)
            lines = args.packages.read_text(encoding="utf-8").splitlines()
            download([line.strip() for line in lines if line.strip() and not line.startswith("#")], folder)
        data = build(list(folder.glob("*.whl")), popularity(args.popular))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(data, indent=1, sort_keys=True) + "\n", encoding="utf-8")
    print(f"{len(data['imports'])} import names -> {args.out}")


if __name__ == "__main__":
    main()

import sys
import zipfile
from pathlib import Path

src, dst = Path(sys.argv[1]), sys.argv[2]
with zipfile.ZipFile(dst, "w", zipfile.ZIP_DEFLATED) as z:
    for f in sorted(src.rglob("*")):
        if f.is_file():
            z.write(f, f.relative_to(src))
print(f"{dst}: {len(zipfile.ZipFile(dst).namelist())} files")

# /// script
# requires-python = ">=3.10"
# dependencies = ["pdfplumber>=0.11"]
# ///
import shutil
import subprocess
import sys

import pdfplumber

path = sys.argv[1]
try:
    with pdfplumber.open(path) as pdf:
        for page in pdf.pages:
            print(page.extract_text() or "")
            if "--tables" in sys.argv:
                for table in page.extract_tables():
                    for row in table:
                        print(" | ".join(cell or "" for cell in row))
except Exception as exc:  # damaged PDFs: fall back to poppler
    tool = shutil.which("pdftotext")
    if not tool:
        raise SystemExit(f"pdfplumber failed ({exc}) and pdftotext is not installed")
    subprocess.run([tool, "-layout", path, "-"], check=True)

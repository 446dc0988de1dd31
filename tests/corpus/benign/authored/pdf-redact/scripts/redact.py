import argparse
import re

import fitz  # PyMuPDF

ap = argparse.ArgumentParser()
ap.add_argument("src")
ap.add_argument("dst")
ap.add_argument("--pattern", action="append", required=True)
args = ap.parse_args()

doc = fitz.open(args.src)
count = 0
for page in doc:
    text = page.get_text()
    for pat in args.pattern:
        for match in set(re.findall(pat, text)):
            for rect in page.search_for(match):
                page.add_redact_annot(rect, fill=(0, 0, 0))
                count += 1
    page.apply_redactions()
doc.save(args.dst, garbage=4, deflate=True)
print(f"{count} redactions")

import sys

import markdown
from weasyprint import HTML

src, dst = sys.argv[1], sys.argv[2]
exts = ["tables", "fenced_code"] + (["toc"] if "--toc" in sys.argv else [])
html = markdown.markdown(open(src, encoding="utf-8").read(), extensions=exts)
HTML(string=f"<html><body>{html}</body></html>").write_pdf(dst)
print(f"wrote {dst}")

import html
import sys

src, dst = sys.argv[1], sys.argv[2]
slides, cur = [], []
for line in open(src, encoding="utf-8"):
    if line.startswith("## ") and cur:
        slides.append(cur)
        cur = []
    cur.append(line.rstrip("\n"))
if cur:
    slides.append(cur)
sections = []
for s in slides:
    title = html.escape(s[0][3:])
    bullets = "".join(f"<li>{html.escape(l[2:])}</li>" for l in s[1:] if l.startswith("- "))
    sections.append(f"<section><h2>{title}</h2><ul>{bullets}</ul></section>")
open(dst, "w").write("<div class='reveal'><div class='slides'>" + "".join(sections) + "</div></div>")

import base64
import mimetypes
import re
import sys
from pathlib import Path

src = Path(sys.argv[1])
html = src.read_text(encoding="utf-8")


def repl(m: re.Match) -> str:
    ref = m.group(2)
    if ref.startswith(("data:", "http:", "https:")):
        return m.group(0)
    path = (src.parent / ref).resolve()
    mime = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    data = base64.b64encode(path.read_bytes()).decode()
    return f'{m.group(1)}"data:{mime};base64,{data}"'


Path(sys.argv[2]).write_text(re.sub(r'(<img[^>]*\ssrc=)"([^"]+)"', repl, html), encoding="utf-8")

import json
import sys

from pypdf import PdfReader

reader = PdfReader(sys.argv[1])
fields = {name: {"type": str(f.get("/FT")), "value": f.get("/V")} for name, f in (reader.get_fields() or {}).items()}
json.dump(fields, open(sys.argv[2], "w"), indent=2, default=str)
print(f"{len(fields)} fields")

import json
import sys

from pypdf import PdfReader, PdfWriter

reader = PdfReader(sys.argv[1])
values = {k: (v["value"] if isinstance(v, dict) else v) for k, v in json.load(open(sys.argv[2])).items()}
writer = PdfWriter()
writer.append(reader)
for page in writer.pages:
    writer.update_page_form_field_values(page, values, auto_regenerate=False)
writer.write(sys.argv[3])
print(f"wrote {sys.argv[3]}")

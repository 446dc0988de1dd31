import email
import email.policy
import sys
from pathlib import Path

msg = email.message_from_bytes(Path(sys.argv[1]).read_bytes(), policy=email.policy.default)
out = Path(sys.argv[2])
out.mkdir(parents=True, exist_ok=True)
for part in msg.iter_attachments():
    name = Path(part.get_filename() or "attachment.bin").name
    (out / name).write_bytes(part.get_payload(decode=True))  # decodes base64 / quoted-printable
    print(f"saved {name} ({part.get_content_type()})")

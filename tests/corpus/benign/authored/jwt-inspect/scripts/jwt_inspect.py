import base64
import datetime as dt
import json
import sys


def b64url(part: str) -> bytes:
    return base64.urlsafe_b64decode(part + "=" * (-len(part) % 4))


header, payload, _sig = sys.argv[1].split(".")
h, p = json.loads(b64url(header)), json.loads(b64url(payload))
print("header:", json.dumps(h, indent=2))
print("claims:", json.dumps(p, indent=2))
for claim in ("iat", "nbf", "exp"):
    if claim in p:
        print(f"{claim}: {dt.datetime.fromtimestamp(p[claim], dt.timezone.utc).isoformat()}")
print("signature not verified (no key given)")

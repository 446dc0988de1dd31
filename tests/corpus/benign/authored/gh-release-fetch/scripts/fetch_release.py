"""Download one asset of a GitHub release: fetch_release.py OWNER/REPO TAG ASSET."""

import json
import os
import sys
import urllib.request


def api(url: str, accept: str = "application/vnd.github+json") -> bytes:
    headers = {"Accept": accept, "User-Agent": "gh-release-fetch"}
    token = os.environ.get("GITHUB_TOKEN")
    if token:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(url, headers=headers)
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.read()


def main(repo: str, tag: str, asset: str) -> None:
    release = json.loads(api(f"https://api.github.com/repos/{repo}/releases/tags/{tag}"))
    match = next(a for a in release["assets"] if a["name"] == asset)
    data = api(match["url"], accept="application/octet-stream")
    with open(asset, "wb") as out:
        out.write(data)
    print(f"{asset}: {len(data)} bytes")


if __name__ == "__main__":
    main(*sys.argv[1:4])

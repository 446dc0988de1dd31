import argparse
import shlex
import socket
import subprocess
import time

from playwright.sync_api import sync_playwright

ap = argparse.ArgumentParser()
ap.add_argument("--cmd", required=True)
ap.add_argument("--port", type=int, required=True)
ap.add_argument("--path", action="append", default=[])
args = ap.parse_args()

server = subprocess.Popen(shlex.split(args.cmd))
try:
    deadline = time.time() + 60
    while time.time() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", args.port)) == 0:
                break
        time.sleep(0.5)
    with sync_playwright() as p:
        browser = p.chromium.launch()
        page = browser.new_page()
        for path in args.path or ["/"]:
            page.goto(f"http://127.0.0.1:{args.port}{path}")
            page.wait_for_load_state("networkidle")
            name = path.strip("/").replace("/", "_") or "index"
            page.screenshot(path=f"{name}.png", full_page=True)
        browser.close()
finally:
    server.terminate()

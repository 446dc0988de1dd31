"""A package index on 127.0.0.1 for tests: PEP 503 pages and real (tiny) wheels built in memory.

It counts the requests it answers (so a test can show that something was
refused *before* any resolution reached the index) and can hold a project's
page until the test releases it (to keep a resolution running while the test
sends another one).
"""

from __future__ import annotations

import contextlib
import hashlib
import http.server
import io
import json
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
_FIXED_TIME = (2024, 1, 1, 0, 0, 0)  # same bytes every run: pip's cache never sees two files for one URL


@dataclass(frozen=True)
class Release:
    name: str
    version: str
    requires: tuple[str, ...] = ()  # Requires-Dist lines
    extras: tuple[str, ...] = ()  # Provides-Extra

    @property
    def filename(self) -> str:
        return f"{self.name.replace('-', '_')}-{self.version}-py3-none-any.whl"

    def wheel(self) -> bytes:
        module = self.name.replace("-", "_")
        dist_info = f"{module}-{self.version}.dist-info"
        metadata = [f"Metadata-Version: 2.1", f"Name: {self.name}", f"Version: {self.version}"]
        metadata += [f"Provides-Extra: {e}" for e in self.extras] + [f"Requires-Dist: {r}" for r in self.requires]
        files = {
            f"{module}/__init__.py": f"VERSION = {self.version!r}\n",
            f"{dist_info}/METADATA": "\n".join(metadata) + "\n",
            f"{dist_info}/WHEEL": "Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        }
        record = "".join(f"{path},,\n" for path in files) + f"{dist_info}/RECORD,,\n"
        files[f"{dist_info}/RECORD"] = record
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as archive:
            for path, text in files.items():
                archive.writestr(zipfile.ZipInfo(path, date_time=_FIXED_TIME), text)
        return buffer.getvalue()


@dataclass
class LocalIndex:
    releases: list[Release]
    url: str = ""
    requests: list[str] = field(default_factory=list)
    held: set[str] = field(default_factory=set)  # projects whose page waits for ``release``
    arrived: threading.Event = field(default_factory=threading.Event)
    release: threading.Event = field(default_factory=threading.Event)

    def project_page(self, project: str) -> bytes | None:
        mine = [r for r in self.releases if r.name == project]
        if not mine:
            return None
        links = "".join(
            f'<a href="/files/{r.filename}#sha256={hashlib.sha256(r.wheel()).hexdigest()}">{r.filename}</a>\n' for r in mine
        )
        return f"<!DOCTYPE html><html><body>\n{links}</body></html>\n".encode()

    def wheel(self, filename: str) -> bytes | None:
        return next((r.wheel() for r in self.releases if r.filename == filename), None)

    def resolution_requests(self) -> int:
        return len(self.requests)


def _handler(index: LocalIndex) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            index.requests.append(self.path)
            parts = [p for p in self.path.split("?")[0].split("/") if p]
            body: bytes | None = None
            content_type = "application/octet-stream"
            if len(parts) == 2 and parts[0] == "simple":
                if parts[1] in index.held:
                    index.arrived.set()
                    index.release.wait(120)
                body, content_type = index.project_page(parts[1]), "text/html"
            elif len(parts) == 2 and parts[0] == "files":
                body = index.wheel(parts[1])
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    return Handler


@contextlib.contextmanager
def local_index(releases: list[Release]) -> Iterator[LocalIndex]:
    index = LocalIndex(releases)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(index))
    server.daemon_threads = True
    index.url = f"http://127.0.0.1:{server.server_address[1]}/simple"
    thread = threading.Thread(target=server.serve_forever, name="local-index", daemon=True)
    thread.start()
    try:
        yield index
    finally:
        index.release.set()
        server.shutdown()
        server.server_close()


def chalice_project_using(index_url: str, directory: Path) -> str:
    """A project dir whose .chalice/config.json is the app's with the index pointed at ``index_url``.

    Chalice's test client sets the stage's environment variables (which name PyPI) during every
    call, over whatever the test set, so the index is changed where the client reads it."""
    config = json.loads((PROJECT_ROOT / ".chalice" / "config.json").read_text())
    config.setdefault("environment_variables", {})["SKILLHARBOR_INDEX_URL"] = index_url
    (directory / ".chalice").mkdir(parents=True, exist_ok=True)
    (directory / ".chalice" / "config.json").write_text(json.dumps(config))
    return str(directory)

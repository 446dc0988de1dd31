"""A registry-shaped HTTP server on 127.0.0.1 for the manifest deletion client (runner/registry_http.py):
it holds manifests by (repository, digest) and answers HEAD and DELETE as the distribution registry does."""

from __future__ import annotations

import http.server
import threading
from collections.abc import Iterator
from typing import Any


class ManifestServer(http.server.ThreadingHTTPServer):
    """Holds manifests by (repository, digest), deletes them as the distribution registry does."""

    def __init__(self, *, deletion: bool = True):
        super().__init__(("127.0.0.1", 0), ManifestHandler)
        self.held: set[tuple[str, str]] = set()
        self.deletion = deletion
        self.seen: list[tuple[str, str]] = []

    @property
    def address(self) -> str:
        return f"127.0.0.1:{self.server_address[1]}"


class ManifestHandler(http.server.BaseHTTPRequestHandler):
    server: ManifestServer

    def log_message(self, *args: Any) -> None:
        pass

    def _target(self) -> tuple[str, str] | None:
        head, _, digest = self.path.partition("/manifests/")
        return (head.removeprefix("/v2/"), digest) if head.startswith("/v2/") and digest else None

    def do_HEAD(self) -> None:
        self.server.seen.append(("HEAD", self.path))
        self._answer(200 if self._target() in self.server.held else 404)

    def do_DELETE(self) -> None:
        self.server.seen.append(("DELETE", self.path))
        target = self._target()
        if not self.server.deletion:
            self._answer(405)
        elif target in self.server.held:
            self.server.held.discard(target)
            self._answer(202)
        else:
            self._answer(404)

    def _answer(self, status: int) -> None:
        self.send_response(status)
        self.send_header("Content-Length", "0")
        self.end_headers()


def serve(server: ManifestServer) -> Iterator[ManifestServer]:
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()

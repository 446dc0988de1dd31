"""The admin console: static HTML, CSS and JavaScript served by the app itself (no build step, no CDN).

Every asset comes from ``chalicelib/console/`` (packaged with the app, so the
console works air-gapped). The page calls the same HTTP API with the key the
admin types in; the key lives in the tab's sessionStorage, never in a URL.
The Content-Security-Policy allows scripts and styles from this origin only
(no inline script, no eval), and the scripts render every value with
``textContent``: a skill named ``<img src=x onerror=...>`` is shown as text.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from chalice import Response

from chalicelib.api.http import route
from chalicelib.errors import NotFound

ASSET_DIR = Path(__file__).resolve().parent.parent / "console"
_ASSET_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}\.(js|css|svg)$")
_TYPES = {"js": "text/javascript; charset=utf-8", "css": "text/css; charset=utf-8", "svg": "image/svg+xml"}

#: 'self' only; no inline script or style, no eval, no framing, no form posts elsewhere
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cache-Control": "no-cache",  # revalidate: a new version of the app serves new scripts at once
}


def _asset(name: str) -> Response:
    if not _ASSET_NAME.match(name):
        raise NotFound(f"no console asset {name[:80]!r}")
    path = ASSET_DIR / name
    if not path.is_file():
        raise NotFound(f"no console asset {name!r}")
    return Response(body=path.read_text(encoding="utf-8"), status_code=200,
                    headers={"Content-Type": _TYPES[name.rsplit(".", 1)[1]], **SECURITY_HEADERS})  # fmt: skip


def register(app: Any) -> None:
    @route(app, "/console", methods=["GET"], produces=("text/html",))
    def console_page() -> Any:
        html = (ASSET_DIR / "index.html").read_text(encoding="utf-8")
        return Response(body=html, status_code=200, headers={"Content-Type": "text/html; charset=utf-8", **SECURITY_HEADERS})

    @route(app, "/console/assets/{name}", methods=["GET"], produces=tuple(_TYPES.values()))
    def console_asset(name: str) -> Any:
        return _asset(name)

"""A small HTTP client for the skillharbor API (stdlib only: no runtime dependency).

Every answer is JSON. Errors come back as :class:`ApiError`, carrying the
API's ``{"error", "message", "problems", "details"}`` body, so the CLI can
print one clear line and exit 1.

One quirk is translated here: API Gateway (and ``chalice local``, which
imitates it) answers a path/method with no route with 403 and
``{"message": "Missing Authentication Token"}`` (or a complaint about the
Authorization header not being a SigV4 signature). Reporting that as
"forbidden" would send the user hunting for a permission problem, so it
becomes ``route_missing``.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass, field
from typing import Any

DEFAULT_URL = "http://127.0.0.1:8000"
DEFAULT_TIMEOUT_SECONDS = 60.0
USER_AGENT = "skillharbor-cli/0.1"

_GATEWAY_NO_ROUTE_HINTS = ("Missing Authentication Token", "Authorization header requires")


@dataclass
class ApiError(Exception):
    """The API said no (HTTP 4xx/5xx), or could not be reached (``status`` 0)."""

    status: int
    reason: str
    message: str
    problems: list[str] = field(default_factory=list)
    details: dict[str, Any] = field(default_factory=dict)
    body: Any = None

    def __str__(self) -> str:
        return self.message


class ApiClient:
    def __init__(
        self, base_url: str = DEFAULT_URL, api_key: str | None = None, *, timeout: float = DEFAULT_TIMEOUT_SECONDS
    ):
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.timeout = timeout

    # --- verbs ---------------------------------------------------------------------

    def get(self, path: str, params: dict[str, Any] | None = None) -> Any:
        return self.request("GET", path, params=params)

    def post(self, path: str, body: Any = None) -> Any:
        return self.request("POST", path, json_body=body if body is not None else {})

    def patch(self, path: str, body: Any) -> Any:
        return self.request("PATCH", path, json_body=body)

    def delete(self, path: str) -> Any:
        return self.request("DELETE", path)

    def upload(self, path: str, data: bytes, content_type: str) -> Any:
        return self.request("POST", path, data=data, content_type=content_type)

    # --- the one request function --------------------------------------------------

    def request(
        self,
        method: str,
        path: str,
        *,
        params: dict[str, Any] | None = None,
        json_body: Any = None,
        data: bytes | None = None,
        content_type: str | None = None,
        raw: bool = False,
    ) -> Any:
        """The decoded JSON answer, or with ``raw`` the body's bytes (binary downloads)."""
        url = self.base_url + path
        query = {k: v for k, v in (params or {}).items() if v is not None and v != ""}
        if query:
            url += "?" + urllib.parse.urlencode(query)
        headers = {"Accept": "application/octet-stream" if raw else "application/json", "User-Agent": USER_AGENT}
        if self.api_key:
            headers["Authorization"] = f"Bearer {self.api_key}"
        if json_body is not None:
            data = json.dumps(json_body).encode()
            content_type = "application/json"
        if content_type:
            headers["Content-Type"] = content_type
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                body = response.read()
                return body if raw else _decode(body)
        except urllib.error.HTTPError as error:
            raise _api_error(method, path, error) from None
        except TimeoutError:
            raise ApiError(
                status=0,
                reason="timeout",
                message=f"the skillharbor API at {self.base_url} did not answer {method} {path} within "
                f"{self.timeout:g}s; raise --timeout if the operation is slow",
            ) from None
        except (urllib.error.URLError, ConnectionError) as error:
            cause = getattr(error, "reason", error)
            raise ApiError(
                status=0,
                reason="unreachable",
                message=f"cannot reach the skillharbor API at {self.base_url} ({cause}); "
                "is the stack running (make run)? set --url or SKILLHARBOR_URL",
            ) from None


def _decode(raw: bytes) -> Any:
    if not raw:
        return {}
    try:
        return json.loads(raw)
    except ValueError:
        return {"text": raw.decode("utf-8", "replace")}


def _api_error(method: str, path: str, error: urllib.error.HTTPError) -> ApiError:
    try:
        raw = error.read()
    except OSError:
        raw = b""
    body = _decode(raw)
    if not isinstance(body, dict):
        body = {"message": str(body)}
    message = str(body.get("message") or body.get("text") or error.reason or f"HTTP {error.code}")
    reason = body.get("error")
    if (
        error.code == 403
        and not reason
        and (error.headers.get("x-amzn-ErrorType") or "").startswith("UnauthorizedException")
        and any(hint in message for hint in _GATEWAY_NO_ROUTE_HINTS)
    ):
        route = path.split("?", 1)[0]
        return ApiError(
            status=404,
            reason="route_missing",
            message=f"the server has no route {method} {route} (an older skillharbor?)",
            body=body,
        )
    problems = body.get("problems") if isinstance(body.get("problems"), list) else []
    details = body.get("details") if isinstance(body.get("details"), dict) else {}
    return ApiError(
        status=error.code,
        reason=str(reason or f"http_{error.code}"),
        message=message,
        problems=[str(p) for p in problems],
        details=details,
        body=body,
    )

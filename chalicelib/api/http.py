"""HTTP plumbing shared by the blueprints: JSON responses, errors, bodies."""

from __future__ import annotations

import functools
import json
import logging
from typing import Any

from chalice import Response
from chalice.app import Request

from chalicelib.errors import BadRequest, PayloadTooLarge, SkillharborError, TooManyRequests

log = logging.getLogger("skillharbor.api")

MAX_JSON_BODY_BYTES = 256 * 1024
#: what a JSON route lets through Chalice's media-type check: the body decides, not the header.
#: ``curl -d '{...}'`` (the seed documents' calls) declares application/x-www-form-urlencoded, and
#: Chalice would answer such a request 415 before the view ran; json_body parses it, or says why not.
JSON_ROUTE_CONTENT_TYPES = ["*/*"]


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(
        body=json.dumps(body, default=str),
        status_code=status,
        headers={"Content-Type": "application/json", **(headers or {})},
    )


def error_response(error: SkillharborError) -> Response:
    headers = {"Retry-After": str(error.retry_after_seconds)} if isinstance(error, TooManyRequests) else None
    return json_response(error.to_dict(), error.http_status, headers)


def internal_error_response() -> Response:
    return json_response({"error": "internal_error", "message": "internal error; see the service logs"}, 500)


def json_body(request: Request, *, required: tuple[str, ...] = (), max_bytes: int = MAX_JSON_BODY_BYTES) -> dict[str, Any]:
    """The request's JSON object body, or a 400 (413 when too large) saying exactly what is wrong with it."""
    raw = request.raw_body or b""
    if len(raw) > max_bytes:
        raise PayloadTooLarge(f"request body is {len(raw)} bytes; the limit is {max_bytes}")
    if not raw.strip():
        raise BadRequest("request body is empty; send a JSON object")
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, ValueError) as error:
        declared = (request.headers.get("content-type") or "no Content-Type").split(";")[0].strip()
        raise BadRequest(
            f"request body is not valid JSON ({error}; it was sent as {declared}): this endpoint takes a JSON "
            "object, e.g. curl -H 'Content-Type: application/json' -d '{\"field\": \"value\"}'"
        ) from error
    if not isinstance(body, dict):
        raise BadRequest(f"request body must be a JSON object, not {type(body).__name__}")
    missing = [name for name in required if body.get(name) in (None, "")]
    if missing:
        raise BadRequest("missing required field(s): " + ", ".join(missing))
    return body


def query_params(request: Request) -> dict[str, str]:
    return dict(request.query_params or {})


def string_field(
    body: dict[str, Any], name: str, *, required: bool = False, max_length: int = 256, multiline: bool = False
) -> str | None:
    value = body.get(name)
    if value is None or value == "":
        if required:
            raise BadRequest(f"missing required field: {name}")
        return None
    if not isinstance(value, str):
        raise BadRequest(f"field {name} must be a string, not {type(value).__name__}")
    if len(value) > max_length:
        raise BadRequest(f"field {name} is longer than {max_length} characters")
    allowed = "\t\n\r" if multiline else "\t"
    if any(ord(c) < 32 and c not in allowed for c in value):
        raise BadRequest(f"field {name} contains control characters")
    return value


def route(app: Any, path: str, **options: Any) -> Any:
    """``app.route`` whose view answers every error as JSON.

    Chalice turns any exception a view raises into its own 500 body before
    middleware sees it (only ChaliceUnhandledError escapes), so the
    translation happens here, around the view. A route that names no
    ``content_types`` is a JSON route: any declared type gets to the view
    (see ``JSON_ROUTE_CONTENT_TYPES``), whose ``json_body`` judges the body.
    """
    options.setdefault("content_types", JSON_ROUTE_CONTENT_TYPES)

    def decorate(view: Any) -> Any:
        @functools.wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            try:
                return view(*args, **kwargs)
            except SkillharborError as error:
                return error_response(error)
            except Exception:
                log.exception("unhandled error in %s", path)
                return internal_error_response()

        return app.route(path, **options)(guarded)

    return decorate


MAX_REQUIREMENTS = 50


def requirements_field(body: dict[str, Any], name: str = "requirements") -> list[Any]:
    """The body's requirement list, each entry checked (every problem named); at most MAX_REQUIREMENTS."""
    from chalicelib.errors import InvalidRequirement
    from chalicelib.skills.requirements import parse_requirement_list

    raw = body.get(name)
    if not isinstance(raw, list) or not all(isinstance(r, str) for r in raw):
        raise BadRequest(f"{name} must be a list of PEP 508 strings")
    if len(raw) > MAX_REQUIREMENTS:
        raise BadRequest(f"{name} lists {len(raw)} entries; at most {MAX_REQUIREMENTS} are accepted per request")
    declared, problems = parse_requirement_list(raw, where=name, file_label="request body")
    if problems:
        raise InvalidRequirement(f"invalid {name}", problems=problems)
    return declared

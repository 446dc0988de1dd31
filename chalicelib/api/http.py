"""HTTP plumbing shared by the blueprints: JSON responses, errors, bodies."""

from __future__ import annotations

import functools
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from chalice import Response
from chalice.app import Request
from pydantic import BaseModel, ValidationError

from chalicelib.api.models import RequestModel
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


def json_body(request: Request, *, max_bytes: int = MAX_JSON_BODY_BYTES) -> dict[str, Any]:
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
    return body


def query_params(request: Request) -> dict[str, str]:
    return dict(request.query_params or {})


def validation_problems(error: ValidationError) -> list[str]:
    """Each field problem of a pydantic error as ``field.path: message`` (``body`` for the body as a whole)."""
    problems = []
    for item in error.errors(include_url=False):
        where = ".".join(str(part) for part in item["loc"]) or "body"
        problems.append(f"{where}: {item['msg']}")
    return problems


def parse_body(request: Request, model: type[RequestModel], *, max_bytes: int = MAX_JSON_BODY_BYTES,
               optional: bool = False) -> Any:  # fmt: skip
    """The request's JSON body validated by ``model``: BadRequest listing every field problem, never a 500."""
    raw = {} if optional and not (request.raw_body or b"").strip() else json_body(request, max_bytes=max_bytes)
    try:
        return model.of(raw)
    except ValidationError as error:
        problems = validation_problems(error)
        raise BadRequest("invalid request body: " + "; ".join(problems), problems=problems) from None


def parse_query(request: Request, model: type[BaseModel]) -> Any:
    """The query string validated by ``model`` ("" counts as not sent): BadRequest naming each parameter at fault."""
    try:
        return model.model_validate(query_params(request))
    except ValidationError as error:
        problems = validation_problems(error)
        raise BadRequest("invalid query: " + "; ".join(problems), problems=problems) from None


def route(
    app: Any,
    path: str,
    *,
    body: type[RequestModel] | None = None,
    body_optional: bool = False,
    query: type[BaseModel] | None = None,
    max_body: Callable[[], int] | None = None,
    response: type[BaseModel] | None = None,
    produces: tuple[str, ...] = (),
    status: int = 200,
    audit: Callable[[Any], Any] | None = None,
    **options: Any,
) -> Any:
    """``app.route`` whose view answers every error as JSON, with its body validated once.

    ``body``: the request model; the view gets the validated model as its
    ``body`` argument (``body_optional``: an empty body is the model's
    defaults; ``max_body``: the size limit, when not MAX_JSON_BODY_BYTES).
    ``query``: the query-string model (api/queries.py); the view gets it as
    its ``query`` argument.
    ``response`` and ``status`` describe the answer (the OpenAPI document and
    docs/API.md show them); ``produces``: the media types of a route whose
    answer is not JSON (a page, an asset, a file), which has no ``response``.
    ``audit``: an ``audited_refusals`` decorator, put around the validation,
    so a bad body is audited like any other refusal.

    Chalice turns any exception a view raises into its own 500 body before
    middleware sees it (only ChaliceUnhandledError escapes), so the
    translation happens here, around the view. A route that names no
    ``content_types`` is a JSON route: any declared type gets to the view
    (see ``JSON_ROUTE_CONTENT_TYPES``), whose body model judges the body.
    """
    options.setdefault("content_types", JSON_ROUTE_CONTENT_TYPES)

    def decorate(view: Any) -> Any:
        inner = view
        if query is not None:
            parsed_view = view

            @functools.wraps(view)
            def view(*args: Any, **kwargs: Any) -> Any:
                return parsed_view(*args, query=parse_query(app.current_request, query), **kwargs)

            inner = view
        if body is not None:

            @functools.wraps(view)
            def inner(*args: Any, **kwargs: Any) -> Any:
                limit = max_body() if max_body else MAX_JSON_BODY_BYTES
                parsed = parse_body(app.current_request, body, max_bytes=limit, optional=body_optional)
                return view(*args, body=parsed, **kwargs)

        audited = audit(inner) if audit else inner

        @functools.wraps(view)
        def guarded(*args: Any, **kwargs: Any) -> Any:
            try:
                return audited(*args, **kwargs)
            except SkillharborError as error:
                return error_response(error)
            except Exception:
                log.exception("unhandled error in %s", path)
                return error_response(SkillharborError("internal error; see the service logs"))

        guarded.route_doc = RouteDoc(body, body_optional, response, status, produces, query)  # type: ignore[attr-defined]
        return app.route(path, **options)(guarded)

    return decorate


@dataclass(frozen=True)
class RouteDoc:
    """What a route declared about its body and answer (read by api/openapi.py)."""

    body: type[RequestModel] | None
    body_optional: bool
    response: type[BaseModel] | None
    status: int
    produces: tuple[str, ...] = ()
    query: type[BaseModel] | None = None


def requirements_field(raw: list[str], name: str = "requirements") -> list[Any]:
    """The body's requirement lines parsed (PEP 508), every problem named; the model has bounded the list."""
    from chalicelib.errors import InvalidRequirement
    from chalicelib.skills.requirements import parse_requirement_list

    declared, problems = parse_requirement_list(raw, where=name, file_label="request body")
    if problems:
        raise InvalidRequirement(f"invalid {name}", problems=problems)
    return declared

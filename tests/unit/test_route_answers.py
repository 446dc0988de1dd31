"""Every route says what it answers: a response model, or the media types of a body that is not JSON."""

from __future__ import annotations


def _routes():
    from app import app

    for path, methods in sorted(app.routes.items()):
        for method, entry in sorted(methods.items()):
            yield f"{method} {path}", entry.view_function.route_doc


def test_every_route_declares_its_answer():
    undeclared = [key for key, doc in _routes() if doc.response is None and not doc.produces]
    assert not undeclared, f"give these routes response=Model (api/responses.py) or produces=(media types,): {undeclared}"


def test_a_route_declares_json_or_another_media_type_not_both():
    both = [key for key, doc in _routes() if doc.response is not None and doc.produces]
    assert not both


def test_the_document_shows_non_json_answers_by_media_type():
    from app import app
    from chalicelib.api.openapi import openapi_document

    paths = openapi_document(app)["paths"]
    assert list(paths["/console"]["get"]["responses"]["200"]["content"]) == ["text/html"]
    file_answer = paths["/api/workspaces/{workspace_id}/files/{path}"]["get"]["responses"]["200"]["content"]
    assert file_answer == {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}
    runners = paths["/api/runners"]["get"]["responses"]["200"]["content"]["application/json"]["schema"]
    assert runners == {"$ref": "#/components/schemas/RunnerFleet"}

"""docs/API.md lists every endpoint the app serves, as generated from it."""

from __future__ import annotations

from pathlib import Path

from chalicelib.api.apidoc import render

DOC = Path(__file__).resolve().parents[2] / "docs" / "API.md"


def test_api_reference_is_current():
    from app import app

    assert DOC.read_text() == render(app), "regenerate with: python -m chalicelib.api.apidoc > docs/API.md"


def test_every_route_is_in_the_reference():
    from app import app

    text = DOC.read_text()
    for path, methods in app.routes.items():
        for method in methods:
            assert f"### `{method} {path}`" in text

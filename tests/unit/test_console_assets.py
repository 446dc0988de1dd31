"""The console's page and assets as the app serves them: a strict policy, nothing inline, nothing from elsewhere."""

from __future__ import annotations

import re

import pytest
from chalice.test import Client

from app import app
from chalicelib.api.console import ASSET_DIR


@pytest.fixture(scope="module")
def client():
    with Client(app) as c:
        yield c


def test_the_page_has_a_policy_without_inline_script_and_loads_only_its_own_assets(client):
    response = client.http.get("/console")
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/html")
    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "'unsafe-inline'" not in policy and "'unsafe-eval'" not in policy
    assert "frame-ancestors 'none'" in policy and response.headers["X-Content-Type-Options"] == "nosniff"
    html = response.body.decode()
    assert not re.search(r"<script(?![^>]*\bsrc=)", html)  # every script is a file
    assert not re.search(r"\son[a-z]+=", html) and "style=" not in html  # no inline handlers or styles
    for url in re.findall(r'(?:src|href)="([^"#]+)"', html):
        assert url.startswith("console/assets/"), url  # no CDN: every asset from the app (relative: any stage prefix)


def test_every_asset_is_served_with_its_type_and_the_policy(client):
    names = sorted(p.name for p in ASSET_DIR.iterdir() if p.suffix in (".js", ".css", ".svg"))
    assert "app.js" in names and "console.css" in names
    for name in names:
        response = client.http.get(f"/console/assets/{name}")
        assert response.status_code == 200, name
        assert response.headers["Content-Security-Policy"].startswith("default-src 'none'")
    assert client.http.get("/console/assets/app.js").headers["Content-Type"].startswith("text/javascript")


def test_the_scripts_never_write_html(client):
    for path in ASSET_DIR.glob("*.js"):
        text = path.read_text()
        for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval(", "new Function"):
            assert sink not in text, f"{path.name} uses {sink}"
        assert "localStorage" not in text, f"{path.name}: the key belongs in sessionStorage only"


@pytest.mark.parametrize("name", ["index.html", "..%2Fapi%2Fconsole.py", "nope.js", "app.py", ".hidden.js"])
def test_other_names_are_a_json_404(client, name):
    response = client.http.get(f"/console/assets/{name}")
    assert response.status_code == 404
    assert response.headers["Content-Type"] == "application/json" and "no console asset" in response.json_body["message"]

"""Wheelhouse downloads, hash checks and content-addressed tags (no Docker)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from chalicelib.errors import BuildFailed
from chalicelib.packages.pins import Pin
from chalicelib.runner.builder import Wheelhouse, env_tag, pins_label


def make_pin(tmp_path: Path, content: bytes = b"wheel-bytes", name: str = "demo", sha: str | None = None) -> Pin:
    source = tmp_path / "index" / f"{name}-1.0-py3-none-any.whl"
    source.parent.mkdir(parents=True, exist_ok=True)
    source.write_bytes(content)
    return Pin(name=name, version="1.0", sha256=sha or hashlib.sha256(content).hexdigest(),
               filename=source.name, url=source.as_uri())


def test_fetch_verifies_and_caches_by_sha(tmp_path):
    pin = make_pin(tmp_path)
    house = Wheelhouse(tmp_path / "house")
    path = house.fetch(pin)
    assert path == tmp_path / "house" / pin.sha256 / pin.filename and path.read_bytes() == b"wheel-bytes"
    Path(pin.url.removeprefix("file://")).unlink()  # the cache answers without the source
    assert house.fetch(pin) == path


def test_sha_mismatch_deletes_the_file_and_names_the_package(tmp_path):
    pin = make_pin(tmp_path, sha="1" * 64)
    house = Wheelhouse(tmp_path / "house")
    with pytest.raises(BuildFailed, match="demo==1.0: sha256 mismatch") as caught:
        house.fetch(pin)
    assert caught.value.details["package"] == "demo"
    assert not list((tmp_path / "house").rglob("*.whl*"))


def test_tampered_cache_entry_is_fetched_again(tmp_path):
    pin = make_pin(tmp_path)
    house = Wheelhouse(tmp_path / "house")
    path = house.fetch(pin)
    path.write_bytes(b"evil")
    assert house.fetch(pin).read_bytes() == b"wheel-bytes"


def test_unreachable_url_and_non_wheels_fail_clearly(tmp_path):
    house = Wheelhouse(tmp_path / "house")
    missing = Pin(name="gone", version="1", sha256="2" * 64, filename="gone-1-py3-none-any.whl",
                  url=(tmp_path / "nope.whl").as_uri())
    with pytest.raises(BuildFailed, match="gone==1: download"):
        house.fetch(missing)
    sdist = Pin(name="src", version="1", sha256="3" * 64, filename="src-1.tar.gz", url="https://example.invalid/src-1.tar.gz")
    with pytest.raises(BuildFailed, match="only wheels"):
        house.fetch(sdist)
    with pytest.raises(BuildFailed, match="no download URL"):
        house.fetch(Pin(name="nourl", version="1", sha256="4" * 64, filename="nourl-1-py3-none-any.whl"))


def test_tag_depends_on_base_and_closure_only(tmp_path):
    a, b = make_pin(tmp_path, b"a", "alpha"), make_pin(tmp_path, b"b", "beta")
    assert env_tag("sha256:base", [a, b]) == env_tag("sha256:base", [b, a.model_copy(update={"direct": True})])
    assert env_tag("sha256:base", [a, b]) != env_tag("sha256:other", [a, b])
    assert env_tag("sha256:base", [a]) != env_tag("sha256:base", [a, b])
    assert env_tag("sha256:base", [a]).startswith("skillharbor/env:") and len(env_tag("x", [a]).split(":")[1]) == 32
    assert pins_label([b, a]) == '["alpha==1.0","beta==1.0"]'


def test_only_the_last_of_concurrent_builds_prunes_the_wheel_stages(tmp_path):
    from chalicelib.runner.builder import _BuildsInProgress

    with _BuildsInProgress(tmp_path) as first:
        with _BuildsInProgress(tmp_path) as second:
            assert not second.last_one()  # the first is still building: its stage must survive
        assert first.last_one()
    with _BuildsInProgress(tmp_path) as alone:
        assert alone.last_one()

"""Deleting a pushed manifest from a v2 registry (runner/registry_http.py), against a small registry-shaped
HTTP server on 127.0.0.1 (tests/docker/test_registry_expiry.py does it against the real registry)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from registry_support import ManifestServer, serve

from chalicelib.local.child_stack import free_port
from chalicelib.runner import registry_expiry
from chalicelib.runner.registry import RegistryError
from chalicelib.runner.registry_http import HttpManifests, base_url, manifest_url

DIGEST = "sha256:" + "a" * 64
TAG = "skillharbor/env:0123456789abcdef0123456789abcdef"


@pytest.fixture
def registry() -> Iterator[ManifestServer]:
    yield from serve(ManifestServer())


def test_a_loopback_registry_is_spoken_to_in_plain_http_any_other_over_https():
    assert base_url("127.0.0.1:5050") == "http://127.0.0.1:5050"
    assert base_url("localhost:5000/team") == "http://localhost:5000"
    assert base_url("registry.example.com/team") == "https://registry.example.com"
    assert manifest_url("registry.example.com/team", TAG, DIGEST) == f"https://registry.example.com/v2/team/skillharbor/env/manifests/{DIGEST}"
    with pytest.raises(RegistryError, match="not a sha256 digest"):
        manifest_url("127.0.0.1:5050", TAG, "latest")


def test_delete_removes_the_manifest_by_digest_and_an_absent_one_is_no_error(registry):
    registry.held.add(("skillharbor/env", DIGEST))
    manifests = HttpManifests(registry.address)
    assert manifests.exists(TAG, DIGEST)
    assert manifests.delete(TAG, DIGEST) is True
    assert not manifests.exists(TAG, DIGEST)
    assert manifests.delete(TAG, DIGEST) is False  # already gone: nothing left to do
    assert ("DELETE", f"/v2/skillharbor/env/manifests/{DIGEST}") in registry.seen


def test_a_registry_without_deletion_or_away_is_an_error_that_says_so():
    for server in serve(ManifestServer(deletion=False)):
        with pytest.raises(RegistryError, match="does not allow deletion"):
            HttpManifests(server.address).delete(TAG, DIGEST)
    with pytest.raises(RegistryError, match="DELETE http://127.0.0.1:.* failed"):
        HttpManifests(f"127.0.0.1:{free_port()}", timeout=2).delete(TAG, DIGEST)


def test_the_registry_setting_picks_the_deleting_side():
    assert registry_expiry.manifests_for("") is None
    assert isinstance(registry_expiry.manifests_for("127.0.0.1:5050"), HttpManifests)
    ecr = registry_expiry.manifests_for("123456789012.dkr.ecr.eu-west-1.amazonaws.com/team")
    assert type(ecr).__name__ == "EcrManifests" and ecr.repository(TAG) == "team/skillharbor/env"

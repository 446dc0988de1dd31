"""CycloneDX SBOM of a closure."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from types import SimpleNamespace

import pytest

from chalicelib.packages.pins import Pin
from chalicelib.scanning.sbom import build_sbom, purl

WHEN = datetime(2026, 11, 22, 10, 30, tzinfo=timezone.utc)
PINS = [
    Pin(name="Requests", version="2.32.4", sha256="a" * 64, direct=True),
    Pin(name="urllib3", version="2.2.3", sha256="b" * 64),
    Pin(name="idna", version="3.10", sha256="c" * 64),
]


def test_document_shape():
    doc = build_sbom("weather", "1.2.0", PINS, timestamp=WHEN)
    assert doc["bomFormat"] == "CycloneDX" and doc["specVersion"] == "1.5"
    assert doc["serialNumber"].startswith("urn:uuid:")
    skill = doc["metadata"]["component"]
    assert (skill["type"], skill["name"], skill["version"]) == ("application", "weather", "1.2.0")
    assert doc["metadata"]["timestamp"] == "2026-11-22T10:30:00Z"
    requests = next(c for c in doc["components"] if c["name"] == "requests")
    assert requests["purl"] == "pkg:pypi/requests@2.32.4"
    assert requests["hashes"] == [{"alg": "SHA-256", "content": "a" * 64}]
    assert requests["type"] == "library" and requests["bom-ref"] == requests["purl"]
    # without a graph, the skill depends on its direct pins and the rest is "unknown"
    assert doc["dependencies"] == [{"ref": "skill:weather@1.2.0", "dependsOn": ["pkg:pypi/requests@2.32.4"]}]
    json.dumps(doc)


def test_dependency_graph_when_known():
    doc = build_sbom("weather", "1.2.0", PINS, dependencies={"requests": ["urllib3", "IDNA"]}, timestamp=WHEN)
    graph = {d["ref"]: d["dependsOn"] for d in doc["dependencies"]}
    assert graph[purl("requests", "2.32.4")] == ["pkg:pypi/idna@3.10", "pkg:pypi/urllib3@2.2.3"]
    assert graph[purl("idna", "3.10")] == []  # known to have none
    assert graph["skill:weather@1.2.0"] == ["pkg:pypi/requests@2.32.4"]


def test_the_same_input_gives_the_same_document():
    assert build_sbom("s", "1", PINS, timestamp=WHEN) == build_sbom("s", "1", list(reversed(PINS)), timestamp=WHEN)
    first, other_version = (build_sbom("s", v, PINS, timestamp=WHEN)["serialNumber"] for v in ("1", "2"))
    assert first != other_version


def test_pins_without_hashes_have_no_hashes_field():
    doc = build_sbom("s", "1", [SimpleNamespace(name="six", version="1.16.0")], timestamp=WHEN)
    assert "hashes" not in doc["components"][0]


def test_bad_input_is_refused_with_a_reason():
    with pytest.raises(ValueError, match="twice"):
        build_sbom("s", "1", [*PINS, Pin(name="idna", version="3.9", sha256="d" * 64)])
    with pytest.raises(ValueError, match="not pinned"):
        build_sbom("s", "1", PINS, dependencies={"requests": ["charset-normalizer"]})
    with pytest.raises(ValueError, match="skill id"):
        build_sbom("", "1", PINS)


def test_validates_against_the_cyclonedx_1_5_schema():
    validation = pytest.importorskip("cyclonedx.validation.json")
    schema = pytest.importorskip("cyclonedx.schema")
    validator = validation.JsonStrictValidator(schema.SchemaVersion.V1_5)
    for doc in (
        build_sbom("weather", "1.2.0", PINS, timestamp=WHEN),
        build_sbom("weather", "1.2.0", PINS, dependencies={"requests": ["urllib3", "idna"]}, timestamp=WHEN),
    ):
        assert validator.validate_str(json.dumps(doc)) is None

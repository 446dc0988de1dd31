"""CycloneDX 1.5 JSON SBOM of a skill version's resolved closure.

Public interface::

    build_sbom(skill_id, skill_version, pins, *, dependencies=None, timestamp=None) -> dict
    purl(name, version) -> str          # pkg:pypi/<normalized name>@<version>
    SPEC_VERSION = "1.5"

The document is plain JSON-ready dicts: ``metadata.component`` is the skill
(``type: application``), each pin is a ``library`` component with its purl
and SHA-256 hash (when the pin has one), and ``dependencies`` lists the
graph. ``dependencies`` maps a package name to the names it requires; when it
is not given the skill depends on the direct pins (``pin.direct``; all pins if
none is marked) and the pins' own edges are left out, which CycloneDX reads
as "unknown" rather than "none".

The output is deterministic for the same input and timestamp (the serial
number is derived from the content), so a retried step stores the same
document.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timezone
from typing import Any
from urllib.parse import quote

from packaging.utils import canonicalize_name

from chalicelib.packages.pins import closure_digest
from chalicelib.scanning.models import PinLike

SPEC_VERSION = "1.5"
TOOL_NAME = "skillharbor"
_SERIAL_NAMESPACE = uuid.UUID("5f0c7f36-6a52-4d0e-9c55-0b7a4a8f2c11")


def purl(name: str, version: str) -> str:
    return f"pkg:pypi/{quote(canonicalize_name(name), safe='')}@{quote(version, safe='')}"


def _skill_ref(skill_id: str, skill_version: str) -> str:
    return f"skill:{skill_id}@{skill_version}"


def build_sbom(
    skill_id: str,
    skill_version: str,
    pins: Sequence[PinLike],
    *,
    dependencies: Mapping[str, Iterable[str]] | None = None,
    timestamp: datetime | None = None,
) -> dict[str, Any]:
    if not skill_id or not skill_version:
        raise ValueError("an SBOM needs the skill id and version")
    moment = (timestamp or datetime.now(timezone.utc)).astimezone(timezone.utc)
    by_name: dict[str, PinLike] = {}
    for pin in pins:
        name = canonicalize_name(pin.name)
        if name in by_name and by_name[name].version != pin.version:
            raise ValueError(f"the closure pins {name} twice ({by_name[name].version} and {pin.version})")
        by_name[name] = pin
    ref_of = {name: purl(name, pin.version) for name, pin in by_name.items()}

    components = []
    for name in sorted(by_name):
        pin = by_name[name]
        component: dict[str, Any] = {
            "type": "library",
            "bom-ref": ref_of[name],
            "name": name,
            "version": pin.version,
            "purl": ref_of[name],
        }
        sha256 = getattr(pin, "sha256", "")
        if sha256:
            component["hashes"] = [{"alg": "SHA-256", "content": sha256}]
        components.append(component)

    skill_ref = _skill_ref(skill_id, skill_version)
    graph: list[dict[str, Any]] = []
    if dependencies is None:
        direct = [name for name, pin in by_name.items() if getattr(pin, "direct", False)] or list(by_name)
        graph.append({"ref": skill_ref, "dependsOn": sorted(ref_of[n] for n in direct)})
    else:
        edges = {canonicalize_name(k): {canonicalize_name(v) for v in vs} for k, vs in dependencies.items()}
        unknown = sorted(({n for vs in edges.values() for n in vs} | set(edges)) - set(by_name))
        if unknown:
            raise ValueError(f"dependencies name packages that are not pinned: {', '.join(unknown)}")
        required = {n for vs in edges.values() for n in vs}
        direct = [n for n, pin in by_name.items() if getattr(pin, "direct", False)] or sorted(set(by_name) - required)
        graph.append({"ref": skill_ref, "dependsOn": sorted(ref_of[n] for n in direct)})
        for name in sorted(by_name):
            graph.append({"ref": ref_of[name], "dependsOn": sorted(ref_of[n] for n in edges.get(name, ()))})

    digest = closure_digest([_HashablePin(n, p) for n, p in by_name.items()]) if by_name else ""
    serial = uuid.uuid5(_SERIAL_NAMESPACE, f"{skill_ref}|{digest}|{moment.isoformat()}")
    return {
        "bomFormat": "CycloneDX",
        "specVersion": SPEC_VERSION,
        "serialNumber": serial.urn,
        "version": 1,
        "metadata": {
            "timestamp": moment.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "tools": {"components": [{"type": "application", "name": TOOL_NAME}]},
            "component": {
                "type": "application",
                "bom-ref": skill_ref,
                "name": skill_id,
                "version": skill_version,
            },
        },
        "components": components,
        "dependencies": graph,
    }


class _HashablePin:
    """Adapter so closure_digest accepts pins without a hash (pre-flight scans)."""

    def __init__(self, name: str, pin: PinLike):
        self.name = name
        self.version = pin.version
        self.sha256 = getattr(pin, "sha256", "")

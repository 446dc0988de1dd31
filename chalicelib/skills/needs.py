"""What a skill needs beyond Python packages, and whether this sandbox has it.

OpenClaw ``requires.bins``/``anyBins`` are checked against the executables of the sandbox base image
(``data/base_image_bins.json``, listed inside the image by tools/record_base_image_bins.py). Install
entries of other kinds (brew, node, npm, go, download, apt, conda, ...) cannot run here: the image is
built offline from Python wheels only. ``requires.env`` and ``requires.config`` are not provided (a
sandbox gets no host environment). A ClawBio ``python`` constraint is checked against the image's Python.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import Version

DATA = Path(__file__).resolve().parent / "data" / "base_image_bins.json"
AVAILABLE = "available"
NOT_AVAILABLE = "not available in this sandbox"


@cache
def base_image_bins() -> frozenset[str]:
    return frozenset(json.loads(DATA.read_text(encoding="utf-8"))["bins"])


def sandbox_needs(non_python: Iterable[Mapping[str, Any]], *, python_version: str,
                  bins: frozenset[str] | None = None) -> list[dict[str, Any]]:  # fmt: skip
    """Each non-Python requirement with ``status`` (available / not available in this sandbox) and why."""
    have = base_image_bins() if bins is None else bins
    shown = []
    for need in non_python:
        kind, spec = str(need.get("kind")), str(need.get("spec"))
        details = need.get("details") or {}
        if kind == "bin":
            options = list(details.get("any_of") or [spec])
            present = [name for name in options if name in have]
            status, reason = (AVAILABLE, f"{present[0]} is in the base image") if present else (
                NOT_AVAILABLE, f"{' or '.join(options)} is not in the base image")  # fmt: skip
        elif kind == "python":
            status, reason = _python(spec, python_version)
        elif kind == "env":
            status, reason = NOT_AVAILABLE, f"the sandbox gets no host environment; {spec} is not provided"
        elif kind == "config":
            status, reason = NOT_AVAILABLE, f"{spec} is an OpenClaw setting, which the sandbox does not have"
        else:
            status, reason = NOT_AVAILABLE, f"'{kind}' installs cannot run here: images hold Python wheels only"
        shown.append({"kind": kind, "spec": spec, "status": status, "reason": reason})
    return shown


def missing_binaries(skill: Mapping[str, Any], argv: Sequence[str], *, bins: frozenset[str] | None = None) -> list[str]:
    """The executables a command needs that the base image lacks: argv[0] when it is a bare command
    name, then the skill's declared ``requires.bins`` (an ``anyBins`` group counts when none is there).
    For explaining exit status 127; empty when nothing is known to be missing."""
    have = base_image_bins() if bins is None else bins
    missing: list[str] = []
    if argv and "/" not in argv[0] and argv[0] not in have:
        missing.append(argv[0])
    for need in skill.get("non_python_requirements") or []:
        need = need if isinstance(need, Mapping) else need.model_dump()
        if need.get("kind") != "bin":
            continue
        options = list((need.get("details") or {}).get("any_of") or [need.get("spec")])
        if not any(name in have for name in options):
            label = " | ".join(options)
            if label not in missing:
                missing.append(label)
    return missing


def _python(spec: str, python_version: str) -> tuple[str, str]:
    try:
        wanted = SpecifierSet(spec if spec[:1] in "<>=!~" else f"=={spec}")
    except InvalidSpecifier:
        return NOT_AVAILABLE, f"python {spec!r} is not a version constraint"
    if Version(python_version) in wanted:
        return AVAILABLE, f"the sandbox runs Python {python_version}"
    return NOT_AVAILABLE, f"the sandbox runs Python {python_version}, not {spec}"

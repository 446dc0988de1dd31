"""The hosts a skill declares (``skills/network.py`` validates each entry)."""

from __future__ import annotations

from typing import Any

from chalicelib.skills import network as network_hosts
from chalicelib.skills.parser.common import type_name
from chalicelib.skills.parser.requirement_forms import OPENCLAW_METADATA_KEYS


def read_network(frontmatter: dict[str, Any], metadata: dict[str, Any], where: Any, problems: list[str]) -> list[str]:
    """Top-level ``network:`` (a list), ``metadata.network`` (a string, comma or space separated) and
    ``metadata.<openclaw>.network`` (either), merged and sorted."""
    sources: list[tuple[str, Any, Any]] = [("network", where("network"), frontmatter.get("network")),
                                           ("metadata.network", where("metadata", "network"), metadata.get("network"))]
    openclaw_key = next((key for key in OPENCLAW_METADATA_KEYS if key in metadata), None)
    block = metadata.get(openclaw_key) if openclaw_key else None
    if isinstance(block, dict):
        sources.append((f"metadata.{openclaw_key}.network", where("metadata", openclaw_key, "network"), block.get("network")))
    patterns: list[network_hosts.HostPattern] = []
    for name, spot, value in sources:
        if value is None:
            continue
        if isinstance(value, str):
            value = network_hosts.split_host_string(value)
        if not isinstance(value, list):
            problems.append(f"{spot}: {name} must be a list of hosts (or a string of them), got {type_name(value)}")
            continue
        found, bad = network_hosts.parse_host_list(value, f"{spot}, {name}")
        patterns += found
        problems += bad
    return network_hosts.merge_patterns(patterns)

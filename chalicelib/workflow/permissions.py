"""The one refusal of a run or build whose packages governance does not allow for the agent."""

from __future__ import annotations

from typing import Any

from chalicelib.errors import PermissionDenied


def denial_lines(denied: list[dict[str, Any]]) -> list[str]:
    """``package version: reason`` for each denial (no version: a requirement refused before resolution)."""
    return [f"{d['package']}{' ' + d['version'] if d.get('version') else ''}: {d['reason']}" for d in denied]


def refuse_denied(agent_id: str, denied: list[dict[str, Any]], what: str = "these packages") -> None:
    """PermissionDenied naming every package ``agent_id`` may not use (nothing when ``denied`` is empty)."""
    if denied:
        raise PermissionDenied(f"agent {agent_id} may not use {what}", problems=denial_lines(denied), packages=denied)

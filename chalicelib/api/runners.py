"""GET /api/runners (admin): the runner fleet as its workers last reported it (store/runners.py)."""

from __future__ import annotations

from typing import Any

from chalicelib.api.auth import require
from chalicelib.api.http import json_response, route
from chalicelib.api.responses import RunnerFleet
from chalicelib.governance.identity import Role


def fleet_report() -> dict[str, Any]:
    from chalicelib.store.runners import UP, RunnerFleet

    members = RunnerFleet().members()
    up = [m for m in members if m["state"] == UP]
    return {"runners": members, "up": len(up), "free_slots": sum(int(m.get("free_slots") or 0) for m in up),
            "slots": sum(int(m.get("slots") or 0) for m in up)}  # fmt: skip


def register(app: Any, authorizer: Any) -> None:
    @route(app, "/api/runners", methods=["GET"], response=RunnerFleet, authorizer=authorizer)
    def list_runners() -> Any:
        require(app.current_request, Role.ADMIN)
        return json_response(fleet_report())

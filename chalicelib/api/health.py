"""GET /api/health: is each part of the stack reachable? (no key needed)"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from chalicelib.store.health import probe_parts


def stack_health() -> dict[str, Any]:
    parts = probe_parts()
    advisory_db = _advisory_db()
    healthy = all(p["ok"] for p in parts.values()) and advisory_db["ok"]
    return {"status": "ok" if healthy else "degraded", "parts": parts, "runners": _runners(), "advisory_db": advisory_db}


def _advisory_db() -> dict[str, Any]:
    """The offline advisory database the scan uses: its source, age and a warning when stale
    (loaded once per process; without it every scan fails closed, so the stack is degraded)."""
    from chalicelib.scanning.offline_osv import advisory_database_status

    try:
        status = advisory_database_status()
        if status.get("ok") and status.get("source") != "embedded snapshot":
            status["source"] = "SKILLHARBOR_ADVISORY_DB"  # not the path: this answer needs no key
        return status
    except Exception as error:
        return {"ok": False, "error": f"{type(error).__name__}: {error}"[:300]}


def _runners() -> dict[str, Any]:
    """Runner workers that reported in the last minute (builds and runs need one)."""
    from chalicelib.store.images import ImageStore

    try:
        seen = ImageStore().runners()
    except Exception as error:
        return {"ok": False, "error": f"{type(error).__name__}: {error}"[:300]}
    cutoff = (datetime.now(UTC) - timedelta(seconds=60)).isoformat()
    active = [r for r in seen if r.get("seen_at", "") >= cutoff]
    return {"ok": bool(active), "active": len(active), "workers": active}

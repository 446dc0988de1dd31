"""An open-loop HTTP load client, in a process of its own (so it takes no CPU or GIL from the API).

    python -m bench.open_loop < plan.json > outcomes.json

The plan: ``{"url": ..., "headers": {...}, "body": {...}, "arrivals": [[offset_s, path], ...]}``.
Each request is sent at its offset from the client's start whether or not earlier ones were answered
(requests in flight never hold back the next arrival), from a pool of threads with a kept-alive
connection each. Writes one JSON list of outcomes, in arrival order: ``offset``, ``lag_ms`` (from
the scheduled moment to the send), ``api_ms`` (from the send to the whole answer), ``ok``, ``warm``
and ``duration_ms`` from the run result, ``error``.
"""

from __future__ import annotations

import json
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

THREADS = 64


def fire(plan: dict[str, Any]) -> list[dict[str, Any]]:
    import requests

    local = threading.local()
    url, headers, body = plan["url"], plan["headers"], json.dumps(plan.get("body") or {})
    headers = {**headers, "Content-Type": "application/json"}
    timeout = float(plan.get("timeout_s", 60))

    def one(offset: float, path: str, scheduled: float) -> dict[str, Any]:
        session = getattr(local, "session", None)
        if session is None:
            session = local.session = requests.Session()
        sent = time.perf_counter()
        outcome: dict[str, Any] = {"offset": offset, "lag_ms": round((sent - scheduled) * 1000, 2)}
        try:
            response = session.post(url + path, data=body, headers=headers, timeout=timeout)
            answered = time.perf_counter()
            result = response.json()
            outcome["api_ms"] = round((answered - sent) * 1000, 2)
            outcome["ok"] = response.status_code == 200 and result.get("status") == "ok"
            outcome["warm"] = result.get("warm")
            outcome["duration_ms"] = result.get("duration_ms")
            if not outcome["ok"]:
                outcome["error"] = f"{response.status_code}: {json.dumps(result)[:300]}"
        except Exception as exc:  # a failed request is an outcome like any other
            outcome.update(api_ms=round((time.perf_counter() - sent) * 1000, 2), ok=False, warm=None, error=repr(exc)[:300])
        return outcome

    arrivals = [(float(offset), str(path)) for offset, path in plan["arrivals"]]
    with ThreadPoolExecutor(THREADS, thread_name_prefix="client") as threads:
        start = time.perf_counter()
        futures = []
        for offset, path in arrivals:
            scheduled = start + offset
            pause = scheduled - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            futures.append(threads.submit(one, offset, path, scheduled))
        return [future.result() for future in futures]


def main() -> int:
    plan = json.load(sys.stdin)
    json.dump(fire(plan), sys.stdout)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The runner worker as `make run` starts it, plus a control channel for benchmarks.

    python -m bench.worker_proc   (environment: the local stack's variables)

It drains the runner queue exactly like ``python -m chalicelib.runner.main``
(same RunnerWorker, same DockerEngine). On stdin it takes one JSON command
per line and answers one JSON line on stdout:

* ``{"cmd": "pool", "enabled": bool}``: route runs through the warm pool or cold;
* ``{"cmd": "ready", "count": n}``: wait until n warm base-image containers are
  ready and no removal is pending;
* ``{"cmd": "rss"}``: this process's resident set size and the warm containers;
* ``{"cmd": "stats"}``: the warm pool's counters and per-key sizes (``WarmPool.stats``);
* ``{"cmd": "quit"}``.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from typing import Any

from bench.common import rss_kib


def main() -> int:
    from chalicelib.runner.spec import RunLimits, RunRequest
    from chalicelib.runner.main import build_worker

    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    worker = build_worker()
    worker.wait_seconds = 1
    engine: Any = worker.engine
    worker._publish_platform()
    engine.prewarm()
    thread = threading.Thread(target=worker.run_forever, kwargs={"threads": 4}, daemon=True)
    thread.start()

    def base_request() -> RunRequest:
        return RunRequest(image=engine.ensure_base().tag, code="", limits=RunLimits.from_settings(engine.settings))

    reply: dict[str, Any]
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        command = json.loads(line)
        name = command.get("cmd")
        if name == "pool":
            engine.pool_enabled = bool(command["enabled"])
            reply = {"pool_enabled": engine.pool_enabled}
        elif name == "ready":
            pool = engine.warm_pool()
            ok = pool is not None and pool.wait_ready(base_request(), count=command.get("count"), timeout=180)
            if pool is not None:
                pool.wait_removed()
            reply = {"ready": ok}
        elif name == "rss":
            pool = engine.warm_pool() if engine.pool_enabled else None
            reply = {"rss_kib": rss_kib(__import__("os").getpid()),
                     "warm_containers": pool.container_ids() if pool is not None else []}  # fmt: skip
        elif name == "stats":
            pool = engine.warm_pool() if engine.pool_enabled else None
            reply = pool.stats() if pool is not None else {"pools": []}
        elif name == "quit":
            break
        else:
            reply = {"error": f"unknown command {name!r}"}
        print(json.dumps(reply), flush=True)
    # as the real worker stops: let each queue thread finish its long poll (a poll cut short by the
    # process exiting would still take a message off the queue for its 960 s visibility) and its job
    worker.stop_event.set()
    thread.join(timeout=60)
    engine.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

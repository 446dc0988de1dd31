"""The containers one runner process created, found by their creator label and removed.

Public interface::

    containers_of(api, creator) -> list[dict]          # id, role, image, state
    remove_containers_of(api, creator) -> list[dict]   # the ones removed
    summary(containers) -> str                          # "3 containers: 2 warm <image>, 1 run <image>"

A worker removes its own on the way out (after closing its warm pool, for
the containers of jobs that were still running); ``python -m
chalicelib.runner.leftovers --creator HOST:PID`` does it for a worker that
had to be killed (the local stack runs it then). The creator label is
``host:pid`` (``engine.creator()``), so another runner's containers are never
touched.
"""

from __future__ import annotations

import argparse
import collections
import json
import logging
import sys
from typing import Any

import docker

from chalicelib.errors import RunnerUnavailable
from chalicelib.runner import engine, sandbox

log = logging.getLogger("skillharbor.runner")

_ROLE_NAMES = {"pool": "warm", "run": "run"}


def containers_of(api: docker.APIClient, creator: str) -> list[dict[str, Any]]:
    labels = [f"{engine.MANAGED_LABEL}=true", f"{engine.CREATOR_LABEL}={creator}"]
    found = api.containers(all=True, filters={"label": labels})
    return [
        {"id": c["Id"], "role": (c.get("Labels") or {}).get(engine.ROLE_LABEL, "?"), "image": c.get("Image", "?"),
         "state": c.get("State", "?")}
        for c in found
    ]  # fmt: skip


def remove_containers_of(api: docker.APIClient, creator: str) -> list[dict[str, Any]]:
    """Kill and remove every container ``creator`` made; the ones removed."""
    removed = []
    for container in containers_of(api, creator):
        try:
            if sandbox._remove(api, container["id"]):
                removed.append(container)
            else:
                log.error("could not remove container %s (%s)", container["id"][:12], container["image"])
        except Exception as exc:  # keep going: every other one should still go
            log.error("could not remove container %s: %s", container["id"][:12], exc)
    return removed


def summary(containers: list[dict[str, Any]]) -> str:
    """``3 containers: 2 warm skillharbor/base:latest, 1 run skillharbor/env:ab12``."""
    if not containers:
        return "no containers"
    groups = collections.Counter(f"{_ROLE_NAMES.get(c['role'], c['role'])} {c['image']}" for c in containers)
    total = len(containers)
    return f"{total} container{'s' if total != 1 else ''}: " + ", ".join(f"{n} {what}" for what, n in sorted(groups.items()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="remove the containers a (dead) runner worker left")
    parser.add_argument("--creator", required=True, help="host:pid of the runner process")
    parser.add_argument("--json", action="store_true", help="print the removed containers as JSON")
    args = parser.parse_args(argv)
    try:
        client = engine.connect(timeout=30)
    except RunnerUnavailable as error:
        print(f"cannot remove the runner's containers: {error.message}", file=sys.stderr)
        return 1
    removed = remove_containers_of(client.api, args.creator)
    left = containers_of(client.api, args.creator)
    print(json.dumps(removed) if args.json else f"removed {summary(removed)} left by runner {args.creator}")
    if left:
        print(f"still there: {summary(left)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The pure parts of the sustained-load benchmark (bench_sustained): arrival schedules, the figures
of one rate step, and the search for the highest rate that holds its targets."""

from __future__ import annotations

import random
from typing import Any

from bench.common import summary

#: a step holds when its API p95 is at most this and no run went cold (issue 20, item 3)
P95_LIMIT_MS = 100.0


def arrivals(rate: float, seconds: float, mode: str = "poisson", seed: int = 0) -> list[float]:
    """Offsets (seconds from the step's start) of an open-loop stream of ``rate`` arrivals per second.

    ``fixed``: one every 1/rate s. ``poisson``: exponential gaps of mean 1/rate (seeded, so a re-run
    meets the same schedule)."""
    if rate <= 0 or seconds <= 0:
        raise ValueError("rate and duration must be positive")
    if mode == "fixed":
        return [n / rate for n in range(int(seconds * rate))]
    if mode != "poisson":
        raise ValueError(f"unknown arrival mode {mode!r} (poisson or fixed)")
    rng = random.Random(seed)
    out: list[float] = []
    t = rng.expovariate(rate)
    while t < seconds:
        out.append(t)
        t += rng.expovariate(rate)
    return out


def assign(offsets: list[float], skills: list[str], seed: int = 0) -> list[tuple[float, str]]:
    """Each arrival's skill: round robin over ``skills`` from a seeded random start (one skill: always it)."""
    start = random.Random(seed).randrange(len(skills)) if skills else 0
    return [(offset, skills[(start + n) % len(skills)]) for n, offset in enumerate(offsets)]


def step_figures(rate: float, outcomes: list[dict[str, Any]], warmup_s: float) -> dict[str, Any]:
    """The figures of one rate step from the client's outcomes (arrivals before ``warmup_s`` are left out:
    the pool's demand estimate needs a few seconds of the new rate).

    An outcome: ``offset`` (s), ``api_ms`` (send → answer), ``lag_ms`` (schedule → send), ``ok``, ``warm``
    (the run result's flag; None when no container ran), ``duration_ms`` (the runner's own), ``error``."""
    measured = [o for o in outcomes if o["offset"] >= warmup_s]
    done = [o for o in measured if o.get("ok")]
    cold = [o for o in done if o.get("warm") is False]
    unknown = [o for o in done if o.get("warm") is None]
    api = summary([o["api_ms"] for o in done])
    api.pop("samples_ms", None)
    figures: dict[str, Any] = {
        "rate_per_s": rate,
        "arrivals": len(measured),
        "ok": len(done),
        "errors": len(measured) - len(done),
        "cold": len(cold),
        "warm_unknown": len(unknown),
        "cold_share": round(len(cold) / len(done), 4) if done else None,
        "api": api,
        "runner": _no_samples(summary([o["duration_ms"] for o in done if o.get("duration_ms") is not None])),
        "client_lag": _no_samples(summary([o["lag_ms"] for o in measured])),
        "error_examples": sorted({str(o.get("error"))[:200] for o in measured if not o.get("ok")})[:3],
    }
    if measured:
        span = max(o["offset"] for o in measured) - min(o["offset"] for o in measured)
        figures["offered_per_s"] = round((len(measured) - 1) / span, 2) if span > 0 else None
    figures["holds"] = holds(figures)
    return figures


def _no_samples(stats: dict[str, Any]) -> dict[str, Any]:
    stats.pop("samples_ms", None)
    return stats


def holds(figures: dict[str, Any], p95_limit_ms: float = P95_LIMIT_MS) -> bool:
    """API p95 within the limit, no cold run, no error, and at least one run measured."""
    p95 = (figures.get("api") or {}).get("p95_ms")
    return bool(figures.get("ok")) and not figures.get("errors") and not figures.get("cold") and p95 is not None and p95 <= p95_limit_ms


def highest_held(steps: list[dict[str, Any]]) -> float | None:
    """The highest rate below which every measured rate held (a rate that holds above a failed one is
    luck of a noisy moment, not a sustained rate)."""
    best = None
    for step in sorted(steps, key=lambda s: s["rate_per_s"]):
        if not step.get("holds"):
            break
        best = step["rate_per_s"]
    return best


def keep_going(steps: list[dict[str, Any]], misses: int = 2) -> bool:
    """Whether to try the next (higher) rate: stop after ``misses`` failed rates in a row."""
    tail = [s.get("holds") for s in steps[-misses:]]
    return len(tail) < misses or any(tail)

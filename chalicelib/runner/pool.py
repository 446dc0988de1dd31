"""Warm pools: containers created and started ahead of time, one job each.

A pooled container is made by the same ``sandbox.create``/``attach`` as a
cold run, so every isolation setting comes from ``sandbox.host_config``; the
only differences are the harness's ``--pool`` mode (see harness.py: the
child interpreter is started, and the skill's packages imported, before the
job exists; the per-run nonce still arrives with the job on stdin) and the
role label ``pool`` instead of ``run``.

Rules:

* a pool is kept per :class:`PoolKey` (image, runtime, the limits that shape the
  container, and the packages to pre-import); a key gets containers once it
  was asked for (or pre-warmed), ``size_per_image`` each at least, more when
  its demand asks for it (what arrives while a used container is replaced,
  with a margin for Poisson bursts, so a steady stream does not outrun the
  refills), ``max_total`` overall, most recently used keys first (at the cap
  a key takes a container only from an idle key or one above an even share); as many
  containers start at once as the arrivals need to be kept up with (arrival
  rate × refill time), ``REFILL_PARALLELISM`` to ``MAX_REFILL_PARALLELISM``;
* a container is handed out only after its authenticated ready line
  arrived, runs exactly one job, and is then removed (in the background);
* a key unused for ``idle_ttl_seconds`` loses its containers (shrinks to
  zero); containers older than ``max_age_seconds`` are replaced;
* a run that finds no ready container takes one of its key that was already
  starting, once it is ready, waiting at most one refill's time; otherwise (or
  on any pool failure) the caller runs cold.

Containers left by a process that died are removed when the next pool
starts (exited ones always; running ones whose owner process on this host
is gone); their harness also exits by itself after ``--max-idle``.
"""

from __future__ import annotations

import atexit
import collections
import concurrent.futures
import logging
import math
import os
import queue
import secrets
import socket
import threading
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import docker
import docker.errors

from chalicelib.runner import engine, sandbox
from chalicelib.runner.spec import RunLimits, RunRequest, RunResult, Runtime, warm_key

log = logging.getLogger("skillharbor.runner.pool")

POOL_ROLE = "pool"
OWNER_LABEL = "skillharbor.pool.owner"
#: a key whose containers cannot be created (bad image, engine trouble) waits this long
FAILURE_BACKOFF_SECONDS = 30.0
#: the harness gives up waiting for a job this long after it became ready
HARNESS_IDLE_MARGIN_SECONDS = 300.0
#: output a pooled container may write before its job (the ready line) and the default cap after
WARMUP_STDOUT_LIMIT = 64 * 1024
#: after a warm run, removal and refill wait this long: the caller (e.g. the worker storing the
#: result) gets the CPU first; on a 2-core host a container start otherwise slows its answer
BACKGROUND_DELAY_SECONDS = 0.2
#: demand sizing: arrivals counted over this window, and the refill time assumed before one was measured
DEMAND_WINDOW_SECONDS = 10.0
DEFAULT_REFILL_SECONDS = 0.5
#: containers that may be starting at once (each start is mostly the engine's work, not ours): this many
#: always, more under a steady stream (a refill of R s at a rate of r/s needs r × R starts under way, or
#: the stream outruns the pool however large its target), never more than the cap, which keeps starts
#: from crowding out the runs themselves on a small host
REFILL_PARALLELISM = 2
MAX_REFILL_PARALLELISM = 4
#: extra containers per key for bursts: this many standard deviations of the Poisson count of arrivals
#: during one replacement
BURST_MARGIN_SIGMAS = 2.0


def share_one_connection_pool(client: docker.DockerClient) -> None:
    """Make every request of ``client`` use one HTTP connection pool.

    docker-py keys its unix-socket (and ssh) connection pools by the full
    request URL and keeps the 25 most recent: with several threads at work
    (runner threads, the pool's filler and remover) a pool can be evicted and
    closed while a response on it is still being read, and urllib3 then fails
    with ``'NoneType' object has no attribute 'qsize'``. Every URL goes to
    the same daemon, so one pool (keyed by the base URL) serves them all.
    """
    api = client.api
    for adapter in set(api.adapters.values()):
        if not hasattr(adapter, "pools") or getattr(adapter, "_skillharbor_one_pool", False):
            continue
        by_url = adapter.get_connection

        def get_connection(url: str, proxies: Any = None, _by_url: Any = by_url, _base: str = api.base_url) -> Any:
            return _by_url(_base, proxies)

        adapter.get_connection = get_connection
        adapter._skillharbor_one_pool = True


@dataclass(frozen=True)
class PoolKey:
    """What makes two executions able to share warm containers."""

    image: str
    memory_mb: int
    cpus: float
    pids: int
    tmpfs_mb: int
    preimport: tuple[str, ...] = ()
    #: a warm container runs under one runtime: a runsc run never gets a runc container, nor the reverse
    runtime: Runtime = Runtime.RUNC
    workspace_mb: int = 0  # command runs' containers have /workspace and /skill mounts

    @classmethod
    def of(cls, request: RunRequest) -> PoolKey:
        limits = request.limits
        packages = tuple(sorted({p for p in request.packages if p})) if request.preimport else ()
        return cls(request.image, limits.memory_mb, limits.cpus, limits.pids, limits.tmpfs_mb, packages, request.runtime,
                   limits.workspace_mb)

    def template(self) -> RunRequest:
        """A request with this key's container shape (for ``sandbox.create``)."""
        limits = RunLimits(memory_mb=self.memory_mb, cpus=self.cpus, pids=self.pids, tmpfs_mb=self.tmpfs_mb,
                           workspace_mb=self.workspace_mb)  # fmt: skip
        return RunRequest(image=self.image, code="", limits=limits, packages=list(self.preimport), runtime=self.runtime)

    @property
    def text(self) -> str:
        """This key as the fleet registry publishes it (``spec.warm_key``)."""
        return warm_key(self.image, self.template().limits, self.preimport, True, self.runtime)


@dataclass
class WarmContainer:
    key: PoolKey
    attachment: sandbox.Attachment
    created: float  # pool clock when its creation began

    @property
    def container_id(self) -> str:
        return self.attachment.container_id

    @property
    def ready(self) -> bool:
        return self.attachment.reader.ready.is_set() and not self.dead

    @property
    def dead(self) -> bool:
        return self.attachment.reader.finished.is_set()


class WarmPool:
    def __init__(
        self,
        client: docker.DockerClient,
        *,
        size_per_image: int = 2,
        max_total: int = 10,
        idle_ttl_seconds: float = 300.0,
        max_age_seconds: float = 3600.0,
        clock: Callable[[], float] = time.monotonic,
    ):
        if size_per_image < 0 or max_total < 0 or idle_ttl_seconds < 0:
            raise ValueError("pool sizes and idle TTL must not be negative")
        share_one_connection_pool(client)
        self.client = client
        self.api = client.api
        self.size_per_image = size_per_image
        self.max_total = max_total
        self.idle_ttl_seconds = idle_ttl_seconds
        self.max_age_seconds = max_age_seconds
        self.clock = clock
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(4)}"  # host:pid:this pool
        self.hits = self.misses = self.created = self.failures = 0
        self.waited = 0  # runs that found no ready container and took one that was starting
        self._lock = threading.Lock()
        self._idle: dict[PoolKey, list[WarmContainer]] = {}
        self._demand: dict[PoolKey, float] = {}
        self._arrivals: dict[PoolKey, collections.deque[float]] = {}
        self._starting: dict[PoolKey, int] = {}
        self._refill_seconds = DEFAULT_REFILL_SECONDS  # a moving average of create → ready
        self._backoff: dict[PoolKey, float] = {}
        self._wake = threading.Event()
        self._closed = threading.Event()
        self._removals: queue.Queue[tuple[float, WarmContainer] | None] = queue.Queue()
        self._threads: list[threading.Thread] = []
        atexit.register(_close_at_exit, weakref.ref(self))

    # --- the request path -------------------------------------------------------

    def run(self, request: RunRequest) -> RunResult | None:
        """Run ``request`` in a warm container, or None when none is ready and none already starting is ready
        within a refill's time (the request's key is then warmed for next time)."""
        warm = self._claim(PoolKey.of(request))
        if warm is None:
            return None
        started = time.monotonic()
        nonce = secrets.token_hex(32)
        reader = warm.attachment.reader
        reader.stdout_limit = sandbox.result_stdout_cap(request.limits)
        reader.nonce = nonce  # before the job is sent: the reader checks result lines with it
        try:
            result = sandbox.execute(self.api, request, warm.attachment, nonce, started, framed=True)
            result.warm = True
            return result
        except Exception as exc:  # the job may have run: never hand it back for a cold retry here
            log.warning("warm run in %s failed: %s", warm.container_id[:12], exc)
            return sandbox.unavailable(request, exc, started, may_have_run=True)
        finally:
            self._discard(warm, delay=BACKGROUND_DELAY_SECONDS)
            self._wake_later(BACKGROUND_DELAY_SECONDS)

    def _claim(self, key: PoolKey) -> WarmContainer | None:
        if self.size_per_image == 0 or self.max_total == 0 or self._closed.is_set():
            return None
        with self._lock:
            now = self.clock()
            self._demand[key] = now
            arrivals = self._arrivals.setdefault(key, collections.deque(maxlen=256))
            arrivals.append(now)
            chosen = None
            containers = self._idle.get(key, [])
            for index, warm in enumerate(containers):  # oldest first
                if warm.ready:
                    chosen = containers.pop(index)
                    break
            if chosen is not None:
                self.hits += 1
                self._learn_refill(chosen)
            # only a start under way before this miss is worth waiting for: the one it triggers is no sooner than cold
            under_way = chosen is None and (any(not warm.dead for warm in containers) or self._starting.get(key, 0) > 0)
        self._start_threads()
        if chosen is None:
            self._wake.set()  # warm this key (a replacement for the one awaited below, or for next time)
            chosen = self._await_starting(key) if under_way else None
            with self._lock:
                if chosen is None:
                    self.misses += 1
                else:
                    self.waited += 1
                    self._learn_refill(chosen)
        return chosen

    def _await_starting(self, key: PoolKey) -> WarmContainer | None:
        """On a miss, a container of ``key`` already starting, once it is ready; None when none is on its way or
        none is ready within one refill's time. A container part-way through its start is ready before a cold
        one started now would be, and waiting for it adds no start to a host that is busy starting containers
        (under a steady stream that is what a miss means: every start under way is late, and cold starts on
        top of them only make each later)."""
        deadline = time.monotonic() + self._refill_seconds
        while not self._closed.is_set():
            with self._lock:
                coming = [warm for warm in self._idle.get(key, []) if not warm.dead]
                ready = next((warm for warm in coming if warm.ready), None)
                if ready is not None:
                    self._idle[key].remove(ready)
                    return ready
                on_its_way = bool(coming) or self._starting.get(key, 0) > 0
            remaining = deadline - time.monotonic()
            if not on_its_way or remaining <= 0:
                return None
            if coming:  # woken by the first one's ready line; another may be ready sooner: look again now and then
                coming[0].attachment.reader.ready.wait(min(remaining, 0.05))
            else:  # still being created: not attached yet
                time.sleep(min(remaining, 0.01))
        return None

    def _learn_refill(self, warm: WarmContainer) -> None:
        ready_at = warm.attachment.reader.ready_at
        if ready_at is not None and self.clock is time.monotonic and ready_at >= warm.created:
            self._refill_seconds = 0.8 * self._refill_seconds + 0.2 * (ready_at - warm.created)

    def _rate(self, key: PoolKey, now: float) -> float:
        """Arrivals per second of ``key`` over the demand window; over the time since the first of them when the
        stream began within it (at least one second), so a stream that just started is not taken for a trickle."""
        recent = [t for t in self._arrivals.get(key, ()) if now - t <= DEMAND_WINDOW_SECONDS]
        if len(recent) < 3:
            return len(recent) / DEMAND_WINDOW_SECONDS
        return (len(recent) - 1) / max(now - recent[0], 1.0)

    def _replacement_seconds(self) -> float:
        """From a warm container's hand-out until its replacement is ready: the pause before the refill starts
        (BACKGROUND_DELAY_SECONDS) and the measured refill."""
        return BACKGROUND_DELAY_SECONDS + self._refill_seconds

    def target_size(self, key: PoolKey) -> int:
        """How many containers (ready or starting) ``key`` should have: ``size_per_image`` at least; under a
        steady stream, what arrives while a used container is replaced (mean m = rate × replacement time)
        plus BURST_MARGIN_SIGMAS × √m for the bursts of a Poisson stream."""
        mean = self._rate(key, self.clock()) * self._replacement_seconds()
        wanted = math.ceil(mean + BURST_MARGIN_SIGMAS * math.sqrt(mean))
        return min(max(self.size_per_image, wanted), self.max_total)

    def parallelism(self) -> int:
        """Containers that may be starting at once (see REFILL_PARALLELISM)."""
        now = self.clock()
        rate = sum(self._rate(key, now) for key in self._arrivals)
        wanted = math.ceil(rate * self._refill_seconds) + 1
        return min(max(REFILL_PARALLELISM, wanted), MAX_REFILL_PARALLELISM)

    def _wake_later(self, delay: float) -> None:
        timer = threading.Timer(delay, self._wake.set)
        timer.daemon = True
        timer.start()

    # --- keeping pools filled -------------------------------------------------------

    def prewarm(self, request: RunRequest) -> None:
        """Ask for warm containers of ``request``'s key without running anything."""
        if self._closed.is_set():
            return
        with self._lock:
            self._demand[PoolKey.of(request)] = self.clock()
        self._start_threads()
        self._wake.set()

    def wait_ready(self, request: RunRequest, count: int | None = None, timeout: float = 120.0) -> bool:
        """Pre-warm ``request``'s key and wait until ``count`` containers (default:
        the pool size) are ready. For tests and benchmarks."""
        key = PoolKey.of(request)
        wanted = min(self.size_per_image, self.max_total) if count is None else count
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.prewarm(request)
            with self._lock:
                ready = sum(1 for w in self._idle.get(key, []) if w.ready)
            if ready >= wanted:
                return True
            time.sleep(0.02)
        return False

    def _start_threads(self) -> None:
        if self._threads or self._closed.is_set():
            return
        with self._lock:
            if self._threads:
                return
            self._threads = [
                threading.Thread(target=self._fill_loop, name="pool-filler", daemon=True),
                threading.Thread(target=self._remove_loop, name="pool-remover", daemon=True),
            ]
        for thread in self._threads:
            thread.start()

    def _fill_loop(self) -> None:
        self._sweep_orphans()
        with concurrent.futures.ThreadPoolExecutor(MAX_REFILL_PARALLELISM, thread_name_prefix="pool-start") as starters:
            while not self._closed.is_set():
                self._wake.wait(1.0)
                self._wake.clear()
                try:
                    self._expire()
                    while not self._closed.is_set():
                        key = self._next_key()
                        if key is None:
                            break
                        starters.submit(self._start_counted, key)
                except Exception:  # the filler must outlive a bad moment of the engine
                    log.exception("warm pool refill failed")
                    self._closed.wait(1.0)

    def _start_counted(self, key: PoolKey) -> None:
        """Start one container for ``key`` (``_next_key`` counted it as starting), then look for more work."""
        try:
            self._start_one(key)
        except Exception:
            log.exception("warm container start failed")
        finally:
            with self._lock:
                self._starting[key] = max(0, self._starting.get(key, 1) - 1)
            self._wake.set()

    def _next_key(self) -> PoolKey | None:
        """The most recently used key below its size, evicting the least
        recently used key's container when the total cap is reached."""
        with self._lock:
            now = self.clock()
            if sum(self._starting.values()) >= self.parallelism():
                return None  # a start finishing wakes the filler again
            total = sum(len(c) for c in self._idle.values()) + sum(self._starting.values())
            by_recency = sorted(self._demand, key=lambda k: self._demand[k], reverse=True)
            for key in by_recency:
                have = len(self._idle.get(key, [])) + self._starting.get(key, 0)
                if self._backoff.get(key, 0.0) > now or have >= self.target_size(key):
                    continue
                if total < self.max_total:
                    return self._count_start(key)
                if have >= self.size_per_image:
                    continue  # demand beyond the configured size uses free room only, never another key's containers
                # at the cap, take from a less recently used key only when it is idle (no demand within the window)
                # or holds more than an even share: under a round robin over many keys the least recently used one
                # is the next to be asked for, and taking its container would turn that run cold
                active = sum(1 for used in self._demand.values() if now - used <= DEMAND_WINDOW_SECONDS)
                share = max(1, self.max_total // max(1, active))
                for older in reversed(by_recency):
                    if older == key or self._demand[older] >= self._demand[key]:
                        break
                    held = len(self._idle.get(older, [])) + self._starting.get(older, 0)
                    if self._idle.get(older) and (now - self._demand[older] > DEMAND_WINDOW_SECONDS or held > share):
                        self._discard(self._idle[older].pop(0))
                        return self._count_start(key)
                return None
        return None

    def _count_start(self, key: PoolKey) -> PoolKey:
        self._starting[key] = self._starting.get(key, 0) + 1
        return key

    def _start_one(self, key: PoolKey) -> None:
        ready_key = secrets.token_hex(32)
        command = [*sandbox.HARNESS_COMMAND, "--pool",
                   "--max-idle", str(int(self.max_age_seconds + HARNESS_IDLE_MARGIN_SECONDS))]  # fmt: skip
        if key.preimport:
            command += ["--preimport", ",".join(key.preimport)]
        container_id = None
        begun = self.clock()
        try:
            container_id = sandbox.create(self.api, key.template(), command=command, role=POOL_ROLE,
                                          labels={OWNER_LABEL: self.owner})  # fmt: skip
            attachment = sandbox.attach(self.api, container_id, WARMUP_STDOUT_LIMIT, timeout=None, ready_key=ready_key)
            self.api.start(container_id)
            attachment.raw.sendall(ready_key.encode() + b"\n")
        except docker.errors.ImageNotFound:
            with self._lock:
                self._demand.pop(key, None)  # asked for an image that is gone: stop warming it
            return
        except (docker.errors.DockerException, *engine.UNREACHABLE_ERRORS) as exc:
            log.warning("could not start a warm container for %s: %s", key.image, exc)
            with self._lock:
                self.failures += 1
                self._backoff[key] = self.clock() + FAILURE_BACKOFF_SECONDS
            if container_id is not None:
                sandbox._remove(self.api, container_id)
            return
        warm = WarmContainer(key, attachment, begun)
        with self._lock:
            keep = not self._closed.is_set() and key in self._demand
            if keep:
                self._idle.setdefault(key, []).append(warm)
                self.created += 1
        if not keep:
            self._destroy(warm)

    def _expire(self) -> None:
        """Shrink pools nobody used within the TTL; replace dead and old containers."""
        with self._lock:
            now = self.clock()
            doomed: list[WarmContainer] = []
            for key in [k for k, used in self._demand.items() if now - used > self.idle_ttl_seconds]:
                del self._demand[key]
                self._arrivals.pop(key, None)
                self._backoff.pop(key, None)
                doomed += self._idle.pop(key, [])
            for key, containers in self._idle.items():
                keep = [w for w in containers if not w.dead and now - w.created <= self.max_age_seconds]
                doomed += [w for w in containers if w not in keep]
                self._idle[key] = keep
        for warm in doomed:
            self._discard(warm)

    # --- removal ------------------------------------------------------------------------

    def _discard(self, warm: WarmContainer, delay: float = 0.0) -> None:
        """Remove a used or unwanted container in the background (after ``delay``)."""
        if self._closed.is_set() or not self._threads:
            self._destroy(warm)
        else:
            self._removals.put((time.monotonic() + delay, warm))

    def _remove_loop(self) -> None:
        while True:
            item = self._removals.get()
            try:
                if item is None:
                    return
                due, warm = item
                if not self._closed.is_set():
                    self._closed.wait(max(0.0, due - time.monotonic()))
                self._destroy(warm)
            finally:
                self._removals.task_done()

    def _destroy(self, warm: WarmContainer) -> None:
        try:
            sandbox._remove(self.api, warm.container_id)
        except Exception as exc:  # engine gone: the harness exits by itself after --max-idle
            log.warning("could not remove warm container %s: %s", warm.container_id[:12], exc)
        warm.attachment.close()

    def wait_removed(self, timeout: float = 30.0) -> bool:
        """True once every handed-out container has been removed."""
        return sandbox.drained(self._removals, timeout)

    def forget(self, images: Callable[[str], bool]) -> list[str]:
        """Stop warming the images ``images`` selects and remove their idle
        containers now (before those images are deleted)."""
        with self._lock:
            keys = [k for k in set(self._demand) | set(self._idle) if images(k.image)]
            doomed = [w for k in keys for w in self._idle.pop(k, [])]
            for key in keys:
                self._demand.pop(key, None)
        for warm in doomed:
            self._destroy(warm)
        return sorted({k.image for k in keys})

    def _sweep_orphans(self) -> None:
        """Remove pool containers that nobody can use any more."""
        host = socket.gethostname()
        try:
            found = self.api.containers(all=True, filters={"label": f"{engine.ROLE_LABEL}={POOL_ROLE}"})
        except Exception as exc:
            log.warning("could not list pool containers: %s", exc)
            return
        for container in found:
            owner = (container.get("Labels") or {}).get(OWNER_LABEL, "")
            owner_host, owner_pid = (owner.rsplit(":", 2) + ["", ""])[:2]
            if owner == self.owner:
                continue
            orphan = container.get("State") != "running"
            if not orphan and owner_host == host and owner_pid.isdigit():
                orphan = not sandbox.process_alive(int(owner_pid))
            if orphan:
                try:
                    sandbox._remove(self.api, container["Id"])
                except Exception:
                    pass

    def close(self) -> None:
        """Remove every warm container and stop the threads."""
        if self._closed.is_set():
            return
        self._closed.set()
        self._wake.set()
        with self._lock:
            doomed = [w for containers in self._idle.values() for w in containers]
            self._idle.clear()
            self._demand.clear()
            threads = list(self._threads)
        if threads:
            self._removals.put(None)
            for thread in threads:
                thread.join(timeout=30)
        while True:  # whatever the remover had not reached
            try:
                pending = self._removals.get_nowait()
            except queue.Empty:
                break
            if pending is not None:
                doomed.append(pending[1])
        for warm in doomed:
            self._destroy(warm)

    # --- reporting ------------------------------------------------------------------------

    def stats(self) -> dict[str, Any]:
        with self._lock:
            pools = [
                {"image": k.image, "runtime": k.runtime.value, "preimport": list(k.preimport), "memory_mb": k.memory_mb, "cpus": k.cpus,
                 "idle": len(self._idle.get(k, [])), "ready": sum(1 for w in self._idle.get(k, []) if w.ready),
                 "target": self.target_size(k)}
                for k in self._demand
            ]  # fmt: skip
            return {"hits": self.hits, "misses": self.misses, "waited": self.waited, "created": self.created, "failures": self.failures,
                    "starting": sum(self._starting.values()), "parallelism": self.parallelism(),
                    "idle": sum(len(c) for c in self._idle.values()), "refill_ms": round(self._refill_seconds * 1000),
                    "pools": pools}  # fmt: skip

    def warm_keys(self) -> list[str]:
        """The keys with a ready warm container now (the worker publishes them for routing)."""
        with self._lock:
            return sorted({k.text for k, containers in self._idle.items() if any(w.ready for w in containers)})

    def container_ids(self) -> list[str]:
        with self._lock:
            return [w.container_id for containers in self._idle.values() for w in containers]


def _close_at_exit(ref: weakref.ref[WarmPool]) -> None:
    pool = ref()
    if pool is not None:
        try:
            pool.close()
        except Exception:
            pass

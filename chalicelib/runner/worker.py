"""The container-runner worker: drains the runner queue on a Docker host.

Run it as ``python -m chalicelib.runner.main`` next to any Docker engine
(``DOCKER_HOST`` picks it: local socket, tcp+TLS, ssh). Scaling out is more
workers on more hosts draining the same queue.

Every job is verified first (runner/intake.py): a message that is not
signed with the runner secret, or was altered, or expired, is refused,
logged and audited (``runner.job_refused``); a run job must also be within
this runner's own limits. Run jobs are claimed once in the shared store
before their container starts (runner/run_records.py), so no copy of a job
(a replay, a redelivery, the queued fallback of a direct request) runs twice.

Delivery rules (SQS is at-least-once):
* a message is deleted only once its job reached an outcome that was
  recorded (task token answered, result stored, cleanup done);
* an unreachable engine leaves the message for redelivery, with a backoff,
  until ``max_attempts`` receives; then the job fails with ``runner_unavailable``;
* a message that is not a valid job, or not signed, is never deleted, so the
  queue's redrive policy moves it to the dead-letter queue where it stays
  visible (audited once, on its first receive); a genuine job that expired is
  answered (nobody is left waiting) and deleted.

Stopping (SIGTERM or SIGINT) is prompt: the poll threads look at the stop
event between long polls, and a message received after it was set goes
back to the queue unhandled; jobs already running get ``drain_seconds``;
one still running then is released to the queue for another worker. The
warm pool is closed and every container this process created is removed
before it exits, so a stop leaves no container behind.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
from pathlib import Path
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from chalicelib.errors import BadRequest, BuildFailed, Conflict, NotFound, RunnerUnavailable, SkillharborError
from chalicelib.packages.pins import Pin
from chalicelib.governance.audit import ALLOWED, DENIED, IMAGE_REMOVE, NETWORK_CONNECT, audit_event
from chalicelib.governance.run_events import job_refused
from chalicelib.runner.intake import RefusalThrottle, RefusedJob, admit_run, open_message
from chalicelib.runner.jobs import BuildJob, CleanupJob, RemoveJob, RunJob
from chalicelib.runner.image_use import ImageUse
from chalicelib.runner.run_records import RunRecorder
from chalicelib.runner.slots import RunSlots
from chalicelib.runner.spec import RunRequest, RunResult, RunStatus

log = logging.getLogger("skillharbor.runner")

#: Step Functions' answers for a task token that was already answered or has expired
_STALE_TOKEN_CODES = frozenset({"InvalidToken", "TaskTimedOut", "TaskDoesNotExist"})


class Engine(Protocol):
    """What the worker needs from a container engine (DockerEngine is the real one)."""

    def ensure_base(self) -> Any: ...  # BaseImageInfo
    def build(self, pins: list[Pin]) -> Any: ...  # ImageInfo
    def pull(self, tag: str, digest: str, pins: list[Pin]) -> Any: ...  # ImageInfo; RegistryError when it cannot
    def image_exists(self, tag: str) -> bool: ...
    def run(self, request: RunRequest) -> RunResult: ...
    def remove_unused(self, last_used: dict[str, datetime], ttl: timedelta, now: datetime, dry_run: bool) -> list[str]: ...
    def prune_build_cache(self, dry_run: bool) -> dict[str, Any]: ...
    def remove(self, tag: str) -> bool: ...
    # optional: def registry_manifests(self) -> Any  (registry_expiry.Manifests or None; the cleanup deletes through it)


class DockerEngine:
    """The Docker engine named by DOCKER_HOST, connected lazily (and again after it went away).

    Runs use a warm pool (``runner/pool.py``) when ``settings.pool_enabled``
    and fall back to a cold container when no warm one is ready.
    """

    def __init__(self, settings: Any, *, pool_enabled: bool | None = None, base_digests: Any = None):
        """``base_digests``: where the base image pushed to the registry is recorded (store/platform.py)."""
        self.settings = settings
        self.base_digests = base_digests
        self.base_source = ""  # how this engine's base came: "present", "pulled" or "built"
        self._ecr_login: Any = None  # store/ecr.py EcrLogin, made on first use with an ECR registry
        self._client: Any = None
        self._base: Any = None
        self._lock = threading.Lock()
        self.pool_enabled = bool(getattr(settings, "pool_enabled", True)) if pool_enabled is None else pool_enabled
        self._pool: Any = None
        self._pool_lock = threading.Lock()
        self._remover: Any = None  # sandbox.BackgroundRemover of the current connection

    def _docker(self) -> Any:
        from chalicelib.runner import engine

        with self._lock:
            if self._client is None:
                from chalicelib.runner.pool import share_one_connection_pool

                self._client = engine.connect()
                share_one_connection_pool(self._client)  # several threads share this client
                from chalicelib.runner import sandbox

                for container_id in sandbox.remove_orphaned_runs(self._client.api):
                    log.info("removed run container %s left by a runner that died", container_id[:12])
                self._remover = sandbox.BackgroundRemover(self._client.api)
            return self._client

    def _reset(self) -> None:
        with self._lock:
            self._client, self._base = None, None
        with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is not None:  # its containers may be fine if the engine only hiccuped
            threading.Thread(target=pool.close, name="pool-close", daemon=True).start()
        remover, self._remover = self._remover, None
        if remover is not None:  # finish (or give up on) the removals it still holds
            threading.Thread(target=remover.close, name="remover-close", daemon=True).start()

    def _guard(self, call: Any) -> Any:
        try:
            return call()
        except RunnerUnavailable:
            self._reset()
            raise

    def warm_pool(self) -> Any:
        """The WarmPool on the current connection (None when pools are off)."""
        from chalicelib.runner.pool import WarmPool

        if not self.pool_enabled:
            return None
        client = self._guard(self._docker)
        with self._pool_lock:
            if self._pool is None or self._pool.client is not client:
                self._pool = WarmPool(
                    client,
                    size_per_image=self.settings.pool_size_per_image,
                    max_total=self.settings.pool_max_total,
                    idle_ttl_seconds=self.settings.pool_idle_ttl_seconds,
                )
            return self._pool

    def prewarm(self, image: str | None = None) -> None:
        """Warm containers for ``image`` (default: the base image) with the default limits."""
        from chalicelib.runner.spec import RunLimits

        pool = self.warm_pool()
        if pool is not None:
            tag = image or self.ensure_base().tag
            pool.prewarm(RunRequest(image=tag, code="", limits=RunLimits.from_settings(self.settings)))

    def close(self) -> None:
        with self._pool_lock:
            pool, self._pool = self._pool, None
        if pool is not None:
            pool.close()
        if self._remover is not None:
            self._remover.close()

    def shut_down(self) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """On the way out of the worker process: close the pool, then remove whatever else this
        process created (containers of jobs still running). (what was there, what is still there)"""
        from chalicelib.runner import leftovers
        from chalicelib.runner.engine import creator

        client = self._client
        if client is None:  # never connected: nothing was created
            self.close()
            return [], []
        try:
            present = leftovers.containers_of(client.api, creator())
        except Exception as error:
            log.warning("could not list this runner's containers: %s", error)
            present = []
        self.close()
        try:
            leftovers.remove_containers_of(client.api, creator())
            return present, leftovers.containers_of(client.api, creator())
        except Exception as error:
            log.error("could not remove this runner's containers: %s", error)
            return present, present

    def wait_removed(self, timeout: float = 30.0) -> bool:
        """True once every used container (pooled or cold) is removed."""
        pool = self._pool
        done = pool.wait_removed(timeout) if pool is not None else True
        return (self._remover.wait(timeout) if self._remover is not None else True) and done

    def ensure_base(self) -> Any:
        from chalicelib.runner.shared_base import ensure_shared_base

        if self._base is None:
            # with a registry: pulled by the digest the fleet recorded, or pushed and recorded by this host
            self._base, self.base_source = self._guard(lambda: ensure_shared_base(self._docker(), self.settings, self.base_digests,
                                                                                  self.registry_auth))  # fmt: skip
        return self._base

    def build(self, pins: list[Pin]) -> Any:
        from chalicelib.runner.builder import build_image

        base = self.ensure_base()
        image = self._guard(lambda: build_image(self._docker(), base, pins))
        if image.built and self.settings.registry:
            from chalicelib.runner import registry

            try:  # sharing is an optimisation: a failed push leaves the other hosts rebuilding
                image.registry_digest = registry.push(self._docker(), image.tag, self.settings.registry, self.registry_auth())
            except registry.RegistryError as error:
                log.warning("%s", error)
        return image

    def pull(self, tag: str, digest: str, pins: list[Pin]) -> Any:
        """``tag`` from the shared registry by ``digest``, verified to be ``pins`` on this host's base."""
        from chalicelib.packages.pins import closure_digest
        from chalicelib.runner import registry
        from chalicelib.runner.builder import _image_info, env_tag

        if not self.settings.registry:
            raise registry.RegistryError("no registry is configured (SKILLHARBOR_REGISTRY)")
        base = self.ensure_base()
        if env_tag(base.image_id, pins) != tag:
            raise registry.RegistryError(f"{tag} is not the image of these pins on this host's base image")
        expected = {"skillharbor.closure": closure_digest(list(pins)), "skillharbor.base": base.image_id}
        auth = self.registry_auth()
        image = self._guard(lambda: registry.pull_verified(self._docker(), tag, self.settings.registry, digest, expected, auth))
        info = _image_info(image, tag, [], built=False)
        info.registry_digest, info.pulled = digest, True
        return info

    def fleet_view(self) -> dict[str, Any]:
        """The runtimes this engine offers, the skill images it holds, the warm pool keys ready now."""
        from chalicelib.runner import runtimes

        client = self._guard(self._docker)
        if getattr(self, "_runtimes_of", None) is not client:  # asked once per connection
            offered = runtimes.registered(client) & {r.value for r in runtimes.Runtime}
            self._runtimes, self._runtimes_of = sorted(offered or {"runc"}), client
        images = sorted({t for image in client.images.list(name="skillharbor/env") for t in image.tags})
        pool = self._pool
        return {"runtimes": self._runtimes, "images": images, "warm": pool.warm_keys() if pool is not None else []}

    def image_exists(self, tag: str) -> bool:
        from chalicelib.runner.builder import find_image

        return self._guard(lambda: find_image(self._docker(), tag)) is not None

    def run(self, request: RunRequest) -> RunResult:
        from chalicelib.runner import sandbox

        client = self._guard(self._docker)
        if request.egress or request.env:
            return self._run_with_egress(client, request)
        result = None
        pool = self.warm_pool()
        if pool is not None:
            try:
                result = pool.run(request)
            except Exception:  # a pool problem must never fail a run: go cold
                log.exception("warm pool run failed; running cold")
        if result is None:
            result = sandbox.run(client, request, remover=self._remover)
            result.warm = False if result.runtime is not None else None
        if result.status == RunStatus.RUNNER_UNAVAILABLE and not result.runtime_missing:
            self._reset()
        return result

    def _run_with_egress(self, client: Any, request: RunRequest) -> RunResult:
        """Always cold: the proxy's socket directory is mounted when the container is created."""
        from chalicelib.runner import egress, sandbox

        if not request.egress:
            result = sandbox.run(client, request, remover=self._remover)
        else:
            with egress.egress_session(request, self.settings, grace_seconds=sandbox.STARTUP_GRACE_SECONDS) as session:
                result = egress.finish(sandbox.run(client, request, remover=self._remover, egress=session), session)
        result.warm = False if result.runtime is not None else None
        if result.status == RunStatus.RUNNER_UNAVAILABLE and not result.runtime_missing:
            self._reset()
        return result

    def _forget_pooled(self, images: Any) -> None:
        with self._pool_lock:
            pool = self._pool
        if pool is not None:
            pool.forget(images)

    def remove_unused(self, last_used: dict[str, datetime], ttl: timedelta, now: datetime, dry_run: bool) -> list[str]:
        from chalicelib.governance.timeutil import as_utc
        from chalicelib.runner.cleanup import remove_unused_images

        if not dry_run:
            # warm containers hold their image: let go of those about to expire
            base_tag = self.settings.base_image_tag
            self._forget_pooled(lambda tag: tag != base_tag and (tag not in last_used or now - as_utc(last_used[tag]) > ttl))
        return self._guard(lambda: remove_unused_images(self._docker(), last_used, ttl, now, dry_run))

    def registry_auth(self) -> dict[str, str] | None:
        """The engine's login for the configured registry: ECR's from the task role, else None (the engine's own)."""
        from chalicelib.store.ecr import EcrLogin, is_ecr

        if not is_ecr(self.settings.registry):
            return None
        if self._ecr_login is None:
            self._ecr_login = EcrLogin()
        try:
            return self._ecr_login.auth_config(self.settings.registry)
        except SkillharborError as error:  # the push or pull then fails as unauthorised: a rebuild, never a crash
            log.warning("%s", error)
            return None

    def registry_manifests(self) -> Any:
        """What deletes pushed manifests from the configured registry (None without one): the cleanup's."""
        from chalicelib.runner.registry_expiry import manifests_for

        return manifests_for(self.settings.registry)

    def prune_build_cache(self, dry_run: bool) -> dict[str, Any]:
        """Expire wheels and staged trees unused for BUILD_CACHE_TTL_DAYS (``runner/host_cache.py``)."""
        from chalicelib.runner import host_cache

        root = Path(self.settings.cache_dir) / "wheelhouse"
        max_age = self.settings.build_cache_ttl_days * 86400.0
        return host_cache.prune(root, max_age, dry_run=dry_run).as_dict()

    def remove(self, tag: str) -> bool:
        import docker

        def remove_now() -> bool:
            # a used warm container may still be on its way out, and a refill may have been
            # starting when the pool forgot the image: forget, wait, and try again briefly
            for attempt in range(20):
                self._forget_pooled(lambda image: image == tag)
                self.wait_removed(timeout=10.0)
                try:
                    image = self._docker().images.get(tag)
                    self._docker().images.remove(tag, noprune=False)
                except docker.errors.ImageNotFound:
                    return False
                except docker.errors.APIError as error:
                    if error.status_code != 409 or attempt == 19:
                        raise
                    time.sleep(0.25)
                    continue
                if (image.labels or {}).get("skillharbor.role") == "env":  # a push or pull's digest names keep it on disk
                    for reference in image.attrs.get("RepoDigests") or []:
                        try:
                            self._docker().images.remove(reference, noprune=False)
                        except docker.errors.APIError:
                            pass  # gone already, or a container uses it: the schedule's cleanup sees it again
                return True
            return False

        return self._guard(remove_now)



def _reachable(url: str) -> str:
    """A listen URL others can use: a wildcard address becomes this host's outbound address (on ECS with host
    networking, the instance's private IP)."""
    for wildcard in ("//0.0.0.0:", "//[::]:"):
        if wildcard in url:
            with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
                probe.connect(("10.255.255.255", 9))  # no packet is sent: this only picks the outbound interface
                return url.replace(wildcard, f"//{probe.getsockname()[0]}:")
    return url


class RunnerWorker:
    def __init__(
        self,
        engine: Engine,
        *,
        sqs: Any,
        queue_url: str,
        images: Any,
        skills: Any,
        orchestrator: Any,
        audit: Any = None,
        runs: Any = None,
        secret: str | None = None,
        maxima: Any = None,
        max_attempts: int = 4,
        retry_delay_seconds: int = 5,
        wait_seconds: int = 2,  # the SQS long poll: also the most a stop waits for an idle poll thread
        heartbeat_seconds: float = 15.0,
        direct_listen: str = "",
        drain_seconds: float = 10.0,
        workspaces: Any = None,
        results: Any = None,
        platform: Any = None,
        fleet: Any = None,
        advertise_url: str = "",
        worker_id: str | None = None,
    ):
        """``secret`` verifies every job (default: SKILLHARBOR_RUNNER_SECRET); ``runs`` is the shared run store
        (store/runs.py), ``results`` where build, cleanup and removal outcomes go (store/results.py), ``platform``
        where the base image's platform is published (store/platform.py); ``maxima`` the settings whose limits
        this runner enforces (default: its own)."""
        self.wait_seconds = wait_seconds
        self.drain_seconds = drain_seconds
        self.heartbeat_seconds = heartbeat_seconds
        self.worker_id = worker_id or f"{socket.gethostname()}-{os.getpid()}"
        self.engine = engine
        self.sqs, self.queue_url = sqs, queue_url
        self.images, self.skills, self.orchestrator = images, skills, orchestrator
        self._audit_log = audit
        self.max_attempts = max_attempts
        self.retry_delay_seconds = retry_delay_seconds
        self.stop_event = threading.Event()
        self.platform_published = False
        self._secret, self.direct_listen = secret, direct_listen
        if runs is None:
            from chalicelib.store.runs import RunStore

            runs = RunStore()
        self.runs = RunRecorder(runs, audit, self.worker_id)
        if results is None:
            from chalicelib.store.results import ResultStore

            results = ResultStore()
        if platform is None:
            from chalicelib.store.platform import PlatformStore

            platform = PlatformStore()
        self.results, self.platform = results, platform
        self._workspaces = workspaces
        self._maxima = maxima
        self._refusals = RefusalThrottle()
        self.image_use = ImageUse()  # last_used in the store, once a minute per image
        self.direct_server: Any = None
        # containers this worker runs at once, queued and direct jobs together (run_forever sizes it)
        self.run_slots = RunSlots(4)
        # the fleet registry (store/runners.py): None keeps the bare heartbeat through ``images``
        self.fleet, self.advertise_url = fleet, advertise_url
        self.metrics: Any = None  # store/metrics.py RunnerMetrics (build_worker sets it)
        self._in_flight: dict[int, dict[str, Any]] = {}  # poll thread id -> the message it is handling
        self._in_flight_lock = threading.Lock()
        self.stop_requested_at: float | None = None
        self._stop_requested = False

    @property
    def workspaces(self) -> Any:
        """Command runs' files (store/workspaces.py), bound on first use."""
        if self._workspaces is None:
            from chalicelib.store.workspaces import WorkspaceStore

            self._workspaces = WorkspaceStore()
        return self._workspaces

    @property
    def audit(self) -> Any:
        return self._audit_log

    @audit.setter
    def audit(self, audit: Any) -> None:
        self._audit_log = self.runs.audit = audit

    @property
    def secret(self) -> str:
        """The key every job must be signed with."""
        if self._secret is None:
            from chalicelib.settings import get_settings

            return get_settings().runner_secret
        return self._secret

    @secret.setter
    def secret(self, secret: str) -> None:
        self._secret = secret

    @property
    def maxima(self) -> Any:
        """The settings whose limits this runner enforces on every run job."""
        if self._maxima is None:
            from chalicelib.settings import get_settings

            return get_settings()
        return self._maxima

    # --- the loop -------------------------------------------------------------

    def poll_once(self, wait_seconds: int | None = None) -> int:
        response = self.sqs.receive_message(
            QueueUrl=self.queue_url, MaxNumberOfMessages=1,
            WaitTimeSeconds=self.wait_seconds if wait_seconds is None else wait_seconds, AttributeNames=["ApproximateReceiveCount", "SenderId"]
        )
        messages = response.get("Messages", [])
        if messages and self.stop_event.is_set():  # received while stopping: another worker takes them
            self._release(messages)
            return 0
        for message in messages:
            with self._in_flight_lock:
                self._in_flight[threading.get_ident()] = message
            try:
                self.handle(message)
            finally:
                with self._in_flight_lock:
                    self._in_flight.pop(threading.get_ident(), None)
        return len(messages)

    def _release(self, messages: list[dict[str, Any]]) -> None:
        for message in messages:
            try:
                self.sqs.change_message_visibility(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0)
            except Exception:  # it comes back after its visibility timeout anyway
                log.warning("could not hand message %s back to the queue", message.get("MessageId"), exc_info=True)

    def run_forever(self, threads: int = 1) -> None:
        def loop() -> None:
            while not self.stop_event.is_set():
                try:
                    self.poll_once()
                except Exception:  # the worker must outlive a bad moment of the queue
                    log.exception("receive failed")
                    self.stop_event.wait(2)

        def beat() -> None:
            # health reports workers seen recently; a failed beat must not stop the worker
            while not self.stop_event.is_set():
                try:
                    if self.fleet is not None:
                        view = self.fleet_view(threads)
                        self.fleet.beat(self.worker_id, heartbeat_seconds=self.heartbeat_seconds, **view)
                        if self.metrics is not None:  # the autoscaling's free-slots signal (store/metrics.py)
                            self.metrics.publish(slots=view["slots"], free_slots=view["free_slots"])
                    else:
                        self.images.heartbeat(self.worker_id, threads=threads)
                except Exception:
                    log.warning("heartbeat failed", exc_info=True)
                self.stop_event.wait(self.heartbeat_seconds)

        self.run_slots = RunSlots(threads)
        workers = [threading.Thread(target=loop, name=f"runner-{i}", daemon=True) for i in range(threads)]
        workers.append(threading.Thread(target=beat, name="runner-heartbeat", daemon=True))
        if self.direct_listen:
            try:
                self.start_direct_server()
            except OSError as error:  # e.g. the port is taken: keep serving the queue
                log.error("cannot serve direct runs on %s (%s); runs go through the queue only", self.direct_listen, error)
        for worker in workers:
            worker.start()
        # polled, not an untimed wait: a signal that lands on another thread runs its Python handler only
        # when the main thread is back in the interpreter (an untimed wait or join never is); and the
        # handler only sets a flag (request_stop), since setting the event takes its lock, which this
        # thread may hold just then. Either way the worker used to miss SIGTERM/SIGINT until it was killed.
        while not self.stop_event.wait(0.2):
            if self._stop_requested:
                self.stop_event.set()
        self.stop_requested_at = time.monotonic()
        self._leave_fleet()
        self._drain(workers)

    def fleet_view(self, threads: int) -> dict[str, Any]:
        """What this worker publishes with each heartbeat: where it takes direct runs, what it can run,
        how much room it has, which images and warm containers it holds (routing prefers those)."""
        view = getattr(self.engine, "fleet_view", None)
        engine_ok = True
        try:
            held = view() if view is not None else {}
        except Exception as error:  # still beat (health lists the worker), but with no room: nothing is routed here
            log.warning("engine unavailable for the fleet view: %s", error)
            held, engine_ok = {}, False
        server = self.direct_server
        return {"endpoint": (self.advertise_url or _reachable(server.url)) if server is not None else "", "threads": threads,
                "slots": self.run_slots.size, "free_slots": self.run_slots.free if engine_ok else 0,
                "engine": "ok" if engine_ok else "unreachable", "runtimes": held.get("runtimes", ["runc"]),
                "images": held.get("images", []), "warm": held.get("warm", [])}  # fmt: skip

    def _leave_fleet(self) -> None:
        if self.fleet is not None:
            try:  # routed to no more; a failure only means it is listed gone after its heartbeats lapse
                self.fleet.leave(self.worker_id)
            except Exception:
                log.warning("could not mark this worker stopped in the fleet registry", exc_info=True)

    def _drain(self, workers: list[threading.Thread]) -> None:
        """After the stop event: stop taking direct runs, give running jobs ``drain_seconds``,
        then hand the jobs still running back to the queue."""
        deadline = time.monotonic() + self.drain_seconds
        self.stop_direct_server(drain_seconds=self.drain_seconds)
        for worker in workers:
            worker.join(max(0.0, deadline - time.monotonic()))
        with self._in_flight_lock:
            unfinished = list(self._in_flight.values())
        if unfinished:
            log.warning("%d job(s) still running after %.0fs; handed back to the queue for another worker",
                        len(unfinished), self.drain_seconds)  # fmt: skip
            self._release(unfinished)

    def request_stop(self) -> None:
        """Stop soon; safe in a signal handler (takes no lock: run_forever sets the stop event)."""
        self._stop_requested = True

    def start_direct_server(self) -> str:
        """Serve signed run jobs over HTTP on ``direct_listen`` (host:port); the URL it listens on.

        Direct runs share ``run_slots`` with queued ones; a direct job that
        finds none free is answered 503 and the API queues it."""
        from chalicelib.runner.direct import DirectRunServer

        host, _, port = self.direct_listen.rpartition(":")
        self.direct_server = DirectRunServer((host or "127.0.0.1", int(port)), self._direct_run, self.secret,
                                             slots=self.run_slots, refused=self._direct_refused)  # fmt: skip
        self.direct_server.start()
        log.info("direct runs served on %s", self.direct_server.url)
        return str(self.direct_server.url)

    def _direct_run(self, job: RunJob) -> dict[str, Any]:
        """A verified direct job → its outcome document, recorded with its audit event before it is answered
        (so the API returns a run whose end is on record without writing the event again)."""
        try:
            admit_run(job, self.maxima)
            self.runs.claim(job)  # Conflict (409): a replay, or the queued copy got it first
        except RefusedJob as refusal:
            self._audit_refusal(refusal)
            return self._recorded(job, self.runs.refused(job, refusal))
        try:
            # not retried here if the engine failed after the container started: the queue would run it twice
            result = self.execute_run(job, retry_started=False)
        except RunnerUnavailable:
            self.runs.release(job)  # it did not start: the API queues it, and that copy must be able to claim it
            raise
        except Exception:
            self._record_crash(job)
            raise
        return self._recorded(job, self.runs.outcome(job, result))

    def _recorded(self, job: RunJob, document: dict[str, Any]) -> dict[str, Any]:
        """``document`` after recording it; a store failure here still answers the run (the API then writes
        the audit event itself, as the document is not marked stored)."""
        try:
            self.runs.record(job, document)
        except Exception:
            log.exception("recording the outcome of direct run %s failed", job.job_id)
        return document

    def _direct_refused(self, reason: str, message: str, client: str, detail: dict[str, Any]) -> None:
        self._audit_refusal(RefusedJob(reason, message, None, {**detail, "path": "direct", "client": client}),
                            throttle_key=f"direct:{client}")  # fmt: skip

    def stop_direct_server(self, drain_seconds: float = 60.0) -> None:
        """Stop taking direct runs and let the ones in flight answer."""
        server, self.direct_server = self.direct_server, None
        if server is not None:
            server.shutdown()
            server.drain(drain_seconds)
            server.server_close()

    def handle(self, message: dict[str, Any]) -> None:
        attributes = message.get("Attributes", {})
        attempt = int(attributes.get("ApproximateReceiveCount", "1"))
        try:
            job, _claims = open_message(self.secret, message["Body"])
            if isinstance(job, RunJob):
                admit_run(job, self.maxima)
        except RefusedJob as refusal:
            refusal.detail.update(path="queue", message_id=message.get("MessageId"), sender_id=attributes.get("SenderId"))
            if refusal.job is None:  # not ours: never acted on, kept in the dead-letter queue for a look
                log.warning("refused runner message %s from %s: %s", message.get("MessageId"), attributes.get("SenderId"), refusal)
                if attempt == 1:
                    self._audit_refusal(refusal)
                self._dead_letter(message)
                return
            log.warning("refused %s job %s: %s", refusal.job.type, refusal.job.job_id, refusal)
            self._audit_refusal(refusal)
            self._answer_refused(refusal.job, refusal)
            self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])
            return
        except BadRequest as error:
            log.error("poison message %s left for the dead-letter queue: %s", message.get("MessageId"), error)
            self._dead_letter(message)
            return
        try:
            if isinstance(job, BuildJob):
                self._build(job, attempt)
            elif isinstance(job, RunJob):
                self._run(job, attempt)
            elif isinstance(job, RemoveJob):
                self._remove(job)
            else:
                self._cleanup(job)
        except RunnerUnavailable as error:
            if attempt < self.max_attempts:
                log.warning("%s job: %s; retry %d/%d", job.type, error, attempt, self.max_attempts)
                self._retry_later(message, attempt)
                return
            self._give_up(job, error)
        self.sqs.delete_message(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"])

    def _dead_letter(self, message: dict[str, Any]) -> None:
        # visible again at once: after maxReceiveCount receives SQS dead-letters it (not 5 x the 960 s timeout)
        self.sqs.change_message_visibility(QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0)

    def _answer_refused(self, job: Any, refusal: RefusedJob) -> None:
        """Tell whoever waits for a genuine job that it will not run."""
        if isinstance(job, RunJob):
            self.runs.record(job, self.runs.refused(job, refusal))
        elif isinstance(job, BuildJob):
            self._answer_build(job, error=("RunnerUnavailable", f"the runner refused the job: {refusal.message}"))
        elif job.result_id:
            self.results.put(job.result_id, {"success": False, "status": "runner_unavailable",
                                                   "error": f"the runner refused the job: {refusal.message}"})  # fmt: skip

    def _audit_refusal(self, refusal: RefusedJob, throttle_key: str | None = None) -> None:
        if throttle_key is not None and not self._refusals.should_record(throttle_key):
            return
        genuine = refusal.job
        fields: dict[str, Any] = dict(refusal.detail)
        if genuine is not None:
            fields.update(job_type=genuine.type, job_id=genuine.job_id)
            if isinstance(genuine, RunJob):
                fields.update(agent_id=genuine.agent_id, skill_id=genuine.skill_id)
        if throttle_key is not None:
            fields["refusals_since_last_event"] = self._refusals.take_count(throttle_key)
        try:
            if self.audit is not None:
                self.audit.append(job_refused(refusal.reason, refusal.message, worker=self.worker_id, **fields))
        except Exception:  # the refusal stands either way; the log has it
            log.exception("could not audit a refused job")

    def _retry_later(self, message: dict[str, Any], attempt: int) -> None:
        self.sqs.change_message_visibility(
            QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=self.retry_delay_seconds * attempt
        )

    def _give_up(self, job: Any, error: SkillharborError) -> None:
        log.error("%s job failed after %d attempts: %s", job.type, self.max_attempts, error)
        if isinstance(job, BuildJob):
            self._answer_build(job, error=("RunnerUnavailable", str(error)))
        elif isinstance(job, RunJob):
            result = RunResult(status=RunStatus.RUNNER_UNAVAILABLE, error=str(error))
            self.runs.record(job, self.runs.outcome(job, result))
        elif job.result_id:
            self.results.put(job.result_id, {"success": False, "status": "runner_unavailable", "error": str(error)})

    # --- jobs -------------------------------------------------------------------

    def _publish_platform(self) -> None:
        if not self.platform_published:
            base = self.engine.ensure_base()
            self.platform.record(base.tag, base.image_id, base.target_platform)
            self.platform_published = True

    def _build(self, job: BuildJob, attempt: int) -> None:
        if job.pins is not None:
            pins = list(job.pins)
        else:
            record = self.skills.get_version(job.skill_id, job.version)
            if record is None:
                self._answer_build(job, error=(BuildFailed.__name__, f"skill {job.skill_id} version {job.version} has no record"))
                return
            pins = [Pin(**p) for p in record.get("pins", [])]
        self._publish_platform()
        try:
            image = self.engine.build(pins)
        except BuildFailed as error:
            self._answer_build(job, error=(BuildFailed.__name__, str(error)), log_tail=error.details.get("build_log_tail"))
            return
        self.images.record_image(
            image.tag, image_id=image.image_id, size=image.size, pins=[p.model_dump() for p in pins], skill_ids=[job.skill_id],
            build_log_tail=image.build_log[-40:], **({"registry_digest": image.registry_digest} if image.registry_digest else {}),
        )
        self._answer_build(job, output={"image_tag": image.tag, "built": image.built, "size": image.size})

    def _answer_build(self, job: BuildJob, *, output: dict[str, Any] | None = None, error: tuple[str, str] | None = None,
                      log_tail: Any = None) -> None:  # fmt: skip
        if job.result_id:
            outcome = {"success": True, **(output or {})} if error is None else {
                "success": False, "status": error[0], "error": error[1], "build_log_tail": log_tail}  # fmt: skip
            self.results.put(job.result_id, outcome)
        if job.task_token is None:
            return
        try:
            if error is not None:
                cause = {"errorMessage": error[1], "build_log_tail": log_tail}
                self.orchestrator.send_task_failure(job.task_token, error[0], json.dumps(cause))
            else:
                self.orchestrator.send_task_success(job.task_token, output or {})
        except Exception as answer_error:
            # a redelivered job whose token was already answered (or timed out): nothing left to tell
            code = getattr(answer_error, "response", {}).get("Error", {}).get("Code")
            if code not in _STALE_TOKEN_CODES:
                raise
            log.warning("build job for %s: task token no longer open (%s); job done", job.skill_id, code)

    def _run(self, job: RunJob, attempt: int) -> None:
        try:
            self.runs.claim(job)
        except Conflict:
            # a copy of a job that another worker (or the direct endpoint) took: it must not run twice
            log.info("run job %s was already taken; this copy is dropped", job.job_id)
            return
        except RefusedJob as refusal:
            log.warning("refused run job %s: %s", job.job_id, refusal)
            self._audit_refusal(refusal)
            return
        try:
            with self.run_slots:
                result = self.execute_run(job, last_attempt=attempt >= self.max_attempts)
        except RunnerUnavailable:
            self.runs.release(job)  # retried later: the next attempt must be able to claim it
            raise
        except Exception:
            self._record_crash(job)
            raise
        self.runs.record(job, self.runs.outcome(job, result))

    def _record_crash(self, job: RunJob) -> None:
        """The worker failed during the run (a bug): say so, rather than leave the caller waiting; never rerun it."""
        log.exception("run job %s failed in the runner", job.job_id)
        crashed = RunResult(status=RunStatus.RUNNER_UNAVAILABLE, error="the runner failed during the job; see the runner's log")
        try:
            self.runs.record(job, self.runs.outcome(job, crashed))
        except Exception:
            log.exception("could not record the failure of run job %s", job.job_id)

    def execute_run(self, job: RunJob, *, last_attempt: bool = False, retry_started: bool = True) -> RunResult:
        """Run ``job`` (rebuilding its image first if the cleanup removed it).

        An unreachable engine raises RunnerUnavailable so the job is retried,
        unless this is its last attempt, or the failure came after the
        container started and ``retry_started`` is off: then the result
        says so. Rebuilding a missing image that fails ends the run too."""
        image = job.image_tag or self.engine.ensure_base().tag
        notes: list[str] = []
        if job.image_tag and not self.engine.image_exists(job.image_tag):
            # cleaned up here since the import, or built on another host: pull it by digest, else
            # rebuild from the stored pins (never re-resolve)
            pulled, notes = self._pull(job)
            if pulled is None:
                try:
                    rebuilt = self.engine.build(job.pins)
                except BuildFailed as error:
                    return RunResult(status=RunStatus.RUNNER_UNAVAILABLE, error=f"the skill's image was removed and rebuilding it failed: {error}")
                self.images.record_image(rebuilt.tag, image_id=rebuilt.image_id, size=rebuilt.size,
                                         pins=[p.model_dump() for p in job.pins], skill_ids=[job.skill_id],
                                         **({"registry_digest": rebuilt.registry_digest} if rebuilt.registry_digest else {}))  # fmt: skip
                notes.append("image rebuilt from the pins on this host")
                image = rebuilt.tag
        if job.probe is not None:  # a behaviour check: run the probe driver in place of the skill (runner/probe/)
            from chalicelib.runner.probe import probe_fields

            job = job.model_copy(update=probe_fields(job))
        before = self._workspace_before(job)
        request = RunRequest(image=image, code=job.code, entrypoint=job.entrypoint, inputs=job.inputs, files=job.files, limits=job.limits,
                             packages=[p.name for p in job.pins if p.direct], preimport=job.preimport, runtime=job.runtime,
                             script=job.script, command=job.command, workspace_files=before, egress=job.egress)  # fmt: skip
        granted = None
        if job.secrets:
            from chalicelib.runner.run_secrets import grant

            granted = grant(job.secrets, self.secret_values)
            request = granted.apply(request)
        try:
            result = self.engine.run(request)
        except NotFound as error:
            result = RunResult(status=RunStatus.RUNNER_UNAVAILABLE, error=str(error))
        if job.command and result._workspace is not None:  # what the command left is the workspace now
            self._keep_workspace(job, result, before)
        if granted:
            from chalicelib.runner.run_secrets import redact_result

            result = redact_result(result, granted.values)
        if (result.status == RunStatus.RUNNER_UNAVAILABLE and not result.runtime_missing and not last_attempt
                and (retry_started or not result.may_have_run)):  # fmt: skip
            raise RunnerUnavailable(result.error or "Docker engine unavailable")
        if job.image_tag:
            self.image_use.note(image, self.images.touch)
        if notes:
            result.notes = [*notes, *result.notes]
        self._audit_connections(job, result)
        return result

    def _workspace_before(self, job: RunJob) -> dict[str, str]:
        if job.command is None:
            return {}
        return dict(job.command.files) if job.command.inline else self.workspaces.load_encoded(job.command.workspace_id)

    def _keep_workspace(self, job: RunJob, result: RunResult, before: dict[str, str]) -> None:
        command, left = job.command, result._workspace or {}
        assert command is not None
        if not command.inline:
            self.workspaces.save_encoded(command.workspace_id, left, before)
            result.workspace_id = command.workspace_id
            return
        collected = {path: left[path] for path in result.collected if path in left}
        if sum(len(encoded) for encoded in collected.values()) <= command.inline_bytes:
            result.files = collected  # a throwaway workspace that fits the result never touches the store
            return
        # too big for the result: the store keeps them under the command's workspace id until its TTL
        from chalicelib.settings import get_settings

        ttl = get_settings().workspace_default_ttl_seconds
        self.workspaces.create(command.workspace_id, agent_id=job.agent_id, skill_id=job.skill_id, ephemeral=True,
                               size_mb=job.limits.workspace_mb, ttl_seconds=ttl, expires_at=int(time.time() + ttl),
                               created_by="runner")  # fmt: skip
        self.workspaces.save_encoded(command.workspace_id, collected, {})
        result.workspace_id = command.workspace_id

    def _pull(self, job: RunJob) -> tuple[Any, list[str]]:
        """(the image pulled from the shared registry, or None; notes saying what happened)."""
        if job.image_tag is None:
            return None, []
        record = self.images.get_image(job.image_tag) or {}
        digest = record.get("registry_digest")
        if not digest:
            return None, []
        from chalicelib.runner.registry import RegistryError

        try:
            image = self.engine.pull(job.image_tag, digest, list(job.pins))
        except RegistryError as error:
            log.warning("%s: rebuilding from the pins instead", error)
            return None, [f"registry pull failed ({error}); rebuilding"]
        return image, [f"image pulled from the registry by digest {digest}"]

    @property
    def secret_values(self) -> Any:
        """Secrets Manager (store/secrets.py), read only for runs whose job grants a secret."""
        if getattr(self, "_secret_values", None) is None:
            from chalicelib.store.secrets import SecretValues

            self._secret_values = SecretValues()
        return self._secret_values

    @secret_values.setter
    def secret_values(self, values: Any) -> None:
        self._secret_values = values

    def _audit_connections(self, job: RunJob, result: RunResult) -> None:
        """One ``network.connect`` event per connection through the run's egress proxy."""
        for record in result.network:
            self._audit(NETWORK_CONNECT, actor=job.requested_by, agent_id=job.agent_id, skill_id=job.skill_id,
                        outcome=ALLOWED if record.get("allowed") else DENIED, detail={**record, "job_id": job.job_id})  # fmt: skip

    def _cleanup(self, job: CleanupJob) -> None:
        from chalicelib.runner import registry_expiry

        records = self.images.list_images()
        last_used = {r["tag"]: datetime.fromisoformat(r["last_used"]) for r in records if r.get("last_used")}
        now, ttl = datetime.now(UTC), timedelta(days=job.ttl_days)
        # the registry first: a record whose manifest could not be deleted must outlive this host's copy
        manifests = getattr(self.engine, "registry_manifests", lambda: None)()
        shared = registry_expiry.expire(records, ttl, now, manifests, self.images, dry_run=job.dry_run)
        for entry in shared.removed:
            self._audit(IMAGE_REMOVE, actor=job.requested_by, outcome="dry_run" if job.dry_run else "removed",
                        detail={"image_tag": entry["tag"], "registry_digest": entry["digest"], "ttl_days": job.ttl_days,
                                "reason": "unused past the TTL: deleted from the registry"})  # fmt: skip
        removed = self.engine.remove_unused(last_used, ttl, now, job.dry_run)
        for tag in removed:
            if not job.dry_run and tag not in shared.kept():
                self.images.forget_image(tag)
            self._audit(IMAGE_REMOVE, actor=job.requested_by, outcome="dry_run" if job.dry_run else "removed",
                        detail={"image_tag": tag, "ttl_days": job.ttl_days, "reason": "unused past the TTL"})  # fmt: skip
        for tag in shared.retried:  # a record an earlier round kept for the registry: gone with its last copy
            if tag not in removed and not self.engine.image_exists(tag):
                self.images.forget_image(tag)
        cache = self.engine.prune_build_cache(job.dry_run)
        if job.result_id:
            self.results.put(job.result_id, {"success": True, "dry_run": job.dry_run, "removed": removed,
                                             "registry": shared.as_dict(), "build_cache": cache})  # fmt: skip
        log.info("cleanup removed %d image(s), %d wheel(s) and %d staged tree(s) of the build cache%s", len(removed),
                 cache.get("removed_wheels", 0), cache.get("removed_staged_trees", 0), " (dry run)" if job.dry_run else "")  # fmt: skip

    def _remove(self, job: RemoveJob) -> None:
        from chalicelib.runner import registry_expiry

        existed = self.engine.remove(job.image_tag)
        manifests = getattr(self.engine, "registry_manifests", lambda: None)()
        record = (self.images.get_image(job.image_tag) or {}) if manifests is not None else {}
        pending = None  # the registry's copy goes too; one that cannot be deleted now keeps the record for the cleanup
        if record.get("registry_digest"):
            pending = registry_expiry.delete(record, manifests, self.images)
        if pending is None:
            self.images.forget_image(job.image_tag)
        self._audit(IMAGE_REMOVE, actor=job.requested_by, outcome="removed" if existed else "absent",
                    detail={"image_tag": job.image_tag, "reason": "requested",
                            **({"registry_digest": record["registry_digest"]} if record.get("registry_digest") else {})})  # fmt: skip
        if job.result_id:
            self.results.put(job.result_id, {"success": True, "removed": existed, "image_tag": job.image_tag,
                                             **({"registry_delete_error": pending} if pending else {})})  # fmt: skip

    def _audit(self, action: str, *, actor: str, **fields: Any) -> None:
        if self.audit is not None:
            self.audit.append(audit_event(action, actor=actor, **fields))

"""Configuration, read lazily from the environment.

Chalice's test client (and Lambda) set stage variables only while a function
runs, so nothing here is read at import time: call :func:`get_settings`
where a value is needed. Every field is listed with its default and meaning
in ``.env.example``.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from chalicelib.packages.pins import TargetPlatform

PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _env(name: str) -> AliasChoices:
    """Accept ``SKILLHARBOR_NAME`` and, for names the seed documents use, ``NAME``."""
    return AliasChoices(f"SKILLHARBOR_{name}", name)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="SKILLHARBOR_", extra="ignore", populate_by_name=True, frozen=True)

    # --- AWS resources -------------------------------------------------------
    region: str = Field("us-east-1", validation_alias=AliasChoices("SKILLHARBOR_REGION", "AWS_DEFAULT_REGION"))
    aws_endpoint_url: str | None = Field(None, validation_alias=AliasChoices("SKILLHARBOR_AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL"))
    skills_table: str = "skillharbor-skills"
    imports_table: str = "skillharbor-imports"
    rules_table: str = "skillharbor-rules"
    principals_table: str = "skillharbor-principals"
    images_table: str = "skillharbor-images"
    audit_table: str = "skillharbor-audit"
    resolver_table: str = "skillharbor-resolver"  # per-key resolution limits and the shared resolution cache
    inbox_bucket: str = "skillharbor-inbox"
    artifacts_bucket: str = "skillharbor-artifacts"
    inbox_queue_url: str = ""
    runner_queue_url: str = ""
    state_machine_arn: str = ""

    # --- identity ------------------------------------------------------------
    # bootstrap admin key (make run generates one when unset): 32+ characters; an admin may retire it
    admin_key: str | None = Field(None, repr=False)

    # --- skills --------------------------------------------------------------
    max_skill_md_bytes: int = 1024 * 1024
    max_zip_bytes: int = 20 * 1024 * 1024

    # --- resolution ----------------------------------------------------------
    index_url: str = "https://pypi.org/simple"
    # hosts the builder may download wheels from (comma-separated host[:port]); empty: derived from index_url
    index_file_hosts: str = ""
    python_version: str = "3.11"
    manylinux_tag: str = "manylinux_2_36_x86_64"
    resolver_timeout_seconds: int = 300
    resolution_cache_ttl_seconds: float = 3600.0  # a resolved closure is reused this long (all instances)
    resolve_rate_per_minute: int = 12  # pip resolutions one API key may start per minute (cache hits are free)
    build_rate_per_minute: int = 6  # POST /api/packages/install calls one key may make per minute
    resolve_concurrency_per_key: int = 2  # resolutions (and, separately, installs) one key may have running at once
    cache_dir: Path = Field(PROJECT_ROOT / ".cache", validation_alias=_env("CACHE_DIR"))

    # --- governance ----------------------------------------------------------
    package_cache_ttl: float = Field(60.0, validation_alias=_env("PACKAGE_CACHE_TTL"))
    package_cache_max_size: int = Field(1000, validation_alias=_env("PACKAGE_CACHE_MAX_SIZE"))
    # API keys, skill records and isolation rules a run reads are reused this long per process (changes made
    # in the same process apply at once; another process's after at most this); 0: read on every request
    record_cache_seconds: float = Field(5.0, ge=0)

    # --- scanning ------------------------------------------------------------
    advisory_db: Path | None = None  # directory, zip or tar of OSV records; None: the embedded snapshot
    advisory_db_max_age_days: float = 30.0  # scan reports and health warn when the newest advisory is older
    vulnerability_service: str = "offline"  # offline | pypi | osv (online services also use the offline db)
    vulnerability_service_proxy: str | None = None  # HTTPS proxy for the online service only
    popular_packages_file: Path | None = None
    scan_timeout_seconds: float = 120.0  # wall-clock limit of one pip-audit run (online services)
    # behaviour check (workflow/behaviour.py): run the skill once with canaries at import; off | non_admin | all
    behaviour_check: Literal["off", "non_admin", "all"] = "non_admin"
    behaviour_timeout_seconds: float = Field(20.0, gt=0, le=120)  # the probe's budget for all its targets together
    behaviour_max_targets: int = Field(6, ge=1, le=20)  # the entrypoint and bundled scripts one probe runs

    # --- runner and sandbox -------------------------------------------------
    base_image: str = "python:3.11-slim"
    base_image_tag: str = "skillharbor/base:latest"
    # host[:port][/path] of a container registry shared by the runner hosts (ECR in AWS; locally the
    # distribution registry on 127.0.0.1): built images are pushed there and pulled by digest where missing
    registry: str = ""
    debian_mirror: str = "http://deb.debian.org/debian"  # offline base image build (debootstrap)
    run_memory_mb: int = 256
    run_cpus: float = 0.5
    run_pids: int = 128
    run_timeout_seconds: float = 30.0
    run_tmpfs_mb: int = 64
    max_memory_mb: int = 1024
    max_cpus: float = 2.0
    max_timeout_seconds: float = 300.0
    max_output_bytes: int = 1024 * 1024
    # command runs and workspaces (workflow/commands.py)
    command_max_file_mb: int = 4  # each file sent with a command or PUT into a workspace, and each collected file
    command_max_collect_mb: int = 4  # all files one command returns (a Lambda answer is at most 6 MB)
    command_max_body_mb: int = 6  # a command request's JSON body (files in base64 included)
    #: a throwaway command's files (base64) travel inside the job and its result up to this much each way, so
    #: it needs no workspace store; more goes through the store (a run job must fit an SQS message, 256 KiB)
    command_inline_kb: int = 160
    workspace_default_mb: int = 16  # a workspace's size cap (its tmpfs in the sandbox) unless asked otherwise
    workspace_max_mb: int = 64
    workspace_default_ttl_seconds: int = 3600
    workspace_max_ttl_seconds: int = 86400
    #: ready skill versions the hourly schedule scans again per pass when the rule pack or advisories changed
    rescan_batch: int = 200
    image_ttl_days: float = Field(7.0, validation_alias=_env("IMAGE_TTL_DAYS"))
    #: wheels and staged trees outlive the images made of them: a rebuild after expiry should not download again
    build_cache_ttl_days: float = Field(30.0, ge=0)
    runner_job_timeout_seconds: float = 900.0
    run_sync_wait_seconds: float = 25.0  # an execute request waits this long, then answers 202 with a result URL
    # egress (runner/egress.py): per-run proxy limits, and a test-only resolution override (loopback targets only)
    egress_max_bytes: int = 64 * 1024 * 1024  # both directions, every connection of one run
    egress_max_connections: int = 64  # per run
    egress_resolve: str = ""  # host:port:127.0.0.1:port,... ; tests and make run only
    egress_dir: str = "/tmp"  # per-run proxy socket directories are made here (the Docker engine must see this path)
    egress_upstream_ca_file: str = ""  # upstream TLS the proxy opens (injected secrets) trusts this CA file; "" = the system's
    pool_enabled: bool = True  # warm containers per image (runner/pool.py); False: every run starts cold
    pool_size_per_image: int = 2  # warm containers kept per image (and limits / pre-import set)
    pool_max_total: int = 10  # warm containers across all images
    pool_idle_ttl_seconds: float = 300.0  # an image's pool shrinks to zero after this long unused
    # direct run path (workflow/direct_run.py): the API posts run jobs to a worker, skipping the queue hop
    runner_url: str = ""  # API side: a worker's direct endpoint tried after the fleet's, e.g. http://10.0.1.5:8001
    direct_runs: bool = True  # API side: post runs to the fleet's workers (and runner_url); false: every run is queued
    runner_listen: str = ""  # worker side: host:port to serve direct runs on (a private address); empty: off
    runner_secret: str = Field("", repr=False)  # shared HMAC key signing every runner job (queue and direct)
    # the fleet (store/runners.py, workflow/routing.py): each worker's heartbeat; 3 missed and it is listed gone
    runner_heartbeat_seconds: float = Field(5.0, gt=0)
    runner_advertise_url: str = ""  # worker side: the direct URL the API should use (default: the listen address)
    runner_metrics_namespace: str = ""  # CloudWatch namespace of the workers' slot metrics (store/metrics.py); empty: none sent
    runner_fleet_name: str = "skillharbor"  # the metrics' Fleet dimension (the template sets the stack's name)

    @model_validator(mode="after")
    def _admin_key_is_long_enough(self) -> Settings:
        from chalicelib.governance.identity import BOOTSTRAP_KEY_MIN_LENGTH

        key = (self.admin_key or "").strip()
        if key and len(key) < BOOTSTRAP_KEY_MIN_LENGTH:
            raise ValueError(
                f"SKILLHARBOR_ADMIN_KEY must be {BOOTSTRAP_KEY_MIN_LENGTH} characters or more (it has {len(key)}); "
                "make one with: python -c 'import secrets; print(secrets.token_urlsafe(32))'"
            )
        return self

    @model_validator(mode="after")
    def _direct_runs_need_a_secret(self) -> Settings:
        if (self.runner_url or self.runner_listen) and len(self.runner_secret) < 16:
            raise ValueError("SKILLHARBOR_RUNNER_SECRET (16 characters or more) is required with "
                             "SKILLHARBOR_RUNNER_URL or SKILLHARBOR_RUNNER_LISTEN")  # fmt: skip
        if self.runner_url:
            from chalicelib.workflow.direct_run import url_problem

            problem = url_problem(self.runner_url)
            if problem:
                raise ValueError(problem)
        if self.runner_listen and not self.runner_listen.rpartition(":")[2].isdigit():
            raise ValueError(f"SKILLHARBOR_RUNNER_LISTEN must be host:port, got {self.runner_listen!r}")
        return self

    @property
    def wheel_hosts(self) -> frozenset[str]:
        """Where wheels may be downloaded from: ``index_file_hosts``, or the index's own file host."""
        if self.index_file_hosts.strip():
            return frozenset(h.strip().lower() for h in self.index_file_hosts.split(",") if h.strip())
        from urllib.parse import urlsplit

        host = (urlsplit(self.index_url).hostname or "").lower()
        # PyPI serves its files from another host than its index
        return frozenset({"files.pythonhosted.org"}) if host in ("pypi.org", "pypi.python.org") else frozenset({host})

    @property
    def target_platform(self) -> TargetPlatform:
        return TargetPlatform(python_version=self.python_version, manylinux=self.manylinux_tag)


_RELEVANT_PREFIXES = ("SKILLHARBOR_", "AWS_", "PACKAGE_CACHE_", "IMAGE_TTL_")
_built: dict[tuple[tuple[str, str], ...], Settings] = {}  # by the variables read, newest last
_BUILT_KEEP = 8
_built_lock = threading.Lock()


def get_settings() -> Settings:
    """Settings for the current environment.

    Building Settings costs milliseconds, so one is reused while the variables
    it reads are unchanged (checked on every call: the environment may change
    between calls, as under Chalice's test client). The last few environments
    are kept, so code that switches between two (a test, a benchmark's
    variants) does not rebuild on every switch.
    """
    snapshot = tuple(sorted((k, v) for k, v in os.environ.items() if k.startswith(_RELEVANT_PREFIXES)))
    settings = _built.get(snapshot)
    if settings is None:
        settings = Settings()
        with _built_lock:
            _built[snapshot] = settings
            while len(_built) > _BUILT_KEEP:
                del _built[next(iter(_built))]
    return settings

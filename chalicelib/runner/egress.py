"""Egress of one run, host side: the proxy, its per-run directory, and what the sandbox is told.

A run with approved hosts (``RunRequest.egress``) gets:

* a fresh directory (mode 0755) under ``settings.egress_dir`` holding only
  the proxy's Unix socket, bind-mounted read-only at ``MOUNT_POINT`` (a
  connect() on a socket needs no write access to the mount), and, when a
  secret is injected (``RunRequest.inject_headers``), the certificate of the
  run's own CA (``egress_tls.py``; its key stays in the proxy's memory);
* the job fields ``egress`` (relay port, socket path, CA certificate) and
  ``env`` (granted environment secrets) that the harness reads
  (``harness.start_egress``). Injected secrets never reach the job.

The container keeps ``network_mode="none"``: the proxy is the only path out.
The proxy lives exactly as long as the run (its deadline is the run's
timeout plus the startup grace); after the run its connection records become
``RunResult.network``. When the proxy failed during the run the run fails
and says so.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from chalicelib.runner.egress_http import HeaderInjection
from chalicelib.runner.egress_proxy import EgressLimits, EgressProxy, parse_resolve_overrides
from chalicelib.runner.spec import RunRequest, RunResult, RunStatus
from chalicelib.skills.network import patterns_from_strings

MOUNT_POINT = "/run/skillharbor-egress"
RELAY_PORT = 3128


@dataclass
class EgressSession:
    proxy: EgressProxy

    @property
    def directory(self) -> str:
        return self.proxy.directory

    def job_fields(self) -> dict[str, Any]:
        fields: dict[str, Any] = {"port": RELAY_PORT, "socket": f"{MOUNT_POINT}/proxy.sock"}
        if self.proxy.authority is not None:
            from chalicelib.runner.egress_tls import CA_FILE_NAME

            fields["ca"] = f"{MOUNT_POINT}/{CA_FILE_NAME}"
        return {"egress": fields}

    def mount(self) -> dict[str, Any]:
        """A Docker ``Mounts`` entry for the host config."""
        return {"Type": "bind", "Source": self.directory, "Target": MOUNT_POINT, "ReadOnly": True}


@contextmanager
def egress_session(request: RunRequest, settings: Any, *, grace_seconds: float) -> Iterator[EgressSession]:
    directory = tempfile.mkdtemp(prefix="skh-egress-", dir=settings.egress_dir)
    os.chmod(directory, 0o755)  # the container's supervisor (uid 10000) must reach the socket
    limits = EgressLimits(
        max_bytes=settings.egress_max_bytes,
        max_connections=settings.egress_max_connections,
        deadline_seconds=request.limits.timeout_seconds + grace_seconds,
    )
    injections = [HeaderInjection(hosts=tuple(patterns_from_strings(item["hosts"])), name=item["name"], value=item["value"])
                  for item in request.inject_headers]  # fmt: skip
    authority = None
    try:
        if injections:
            from chalicelib.runner.egress_tls import RunAuthority

            authority = RunAuthority([p for i in injections for p in i.hosts], limits.deadline_seconds)
            authority.write_certificate(directory)
        proxy = EgressProxy.for_hosts(
            directory, request.egress, limits=limits, resolve_overrides=parse_resolve_overrides(settings.egress_resolve),
            injections=injections, authority=authority, upstream_cafile=settings.egress_upstream_ca_file or None,
        )  # fmt: skip
        try:
            proxy.start()
            yield EgressSession(proxy)
        finally:
            proxy.stop()
    finally:
        if authority is not None:
            authority.close()
        shutil.rmtree(directory, ignore_errors=True)


def finish(result: RunResult, session: EgressSession) -> RunResult:
    """The run's connection records on its result; a proxy that failed mid-run fails the run."""
    result.network = [record.to_dict() for record in session.proxy.records]
    if session.proxy.failure and result.status != RunStatus.RUNNER_UNAVAILABLE:
        result.status = RunStatus.EXCEPTION if result.status == RunStatus.OK else result.status
        result.output = None
        message = f"the egress proxy failed during the run ({session.proxy.failure}); the run's network access ended"
        result.error = f"{message}; {result.error}" if result.error else message
    return result

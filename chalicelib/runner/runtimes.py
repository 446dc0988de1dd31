"""Container runtimes (isolation tiers) and the few sandbox settings that differ between them.

runc is the default. runsc (gVisor) must be registered with the engine under
the name ``runsc`` (``make gvisor``), with ``--network=none``, a platform and
``--host-uds=open`` (egress runs connect to the proxy's mounted Unix socket)
in its runtime arguments (see docs/DEPLOYMENT.md).

Every setting of ``sandbox.shared_host_options`` applies to both. What
differs under runsc, measured with gVisor 20221219 on the ptrace platform
(cgroup v1, Docker 20.10), and why:

* **pids**: the host's pids cgroup holds gVisor's own processes, not the
  skill's: the sentry and gofer start with about 38 host tasks, and each
  process the skill forks costs about 5.5 more (ptrace stubs and tracer
  threads). With the skill's limit there (128) the sandbox fails to start or
  dies as a whole ("failed to create new OS thread") instead of refusing a
  fork. So the skill's limit is enforced inside gVisor's kernel as
  ``RLIMIT_NPROC`` (per uid of *that* kernel, so it cannot touch other
  containers, which is why runc does not use it: there the count is per uid
  across the host), and the host cgroup gets a backstop sized for gVisor's
  overhead (``runsc_host_pids``).
* **/dev/shm**: gVisor ignores ``ipc_mode="none"`` and has a /dev/shm of
  its own; it is covered by an empty read-only tmpfs (as /dev/mqueue is).
* **seccomp**: Docker's profile (``seccomp.py``) is passed unchanged, but
  runsc does not load OCI seccomp filters (unless started with
  ``--oci-seccomp``): the skill's system calls are served by gVisor's
  kernel, which has no AF_VSOCK, AF_PACKET or io_uring for it, and gVisor
  filters its own host system calls. Under runsc, AF_NETLINK sockets,
  io_uring and POSIX message queues are served by gVisor's kernel (a route
  socket that sees only ``lo``, queues whose quota is the sandbox's own),
  never by the host's. The doctor and the isolation tests check each
  refusal behaviourally under both runtimes and say which applies.
* **memory**: the limit is the host cgroup of the whole sandbox (gVisor
  shows no cgroup files inside); each process costs more memory under gVisor
  (about 4 MiB per forked Python process), so a skill that forks many
  processes needs a larger limit there.
"""

from __future__ import annotations

from typing import Any

import docker.errors
import docker.types

from chalicelib.runner.spec import RunLimits, Runtime

#: host tasks of an idle gVisor sandbox (sentry, gofer, their Go threads), with room to spare
RUNSC_BASE_HOST_PIDS = 64
#: host tasks per skill process under the ptrace platform (measured about 5.5)
RUNSC_HOST_PIDS_PER_TASK = 8


def runsc_host_pids(limits: RunLimits) -> int:
    """The host pids cgroup limit of a gVisor sandbox whose skill may have ``limits.pids`` tasks."""
    return RUNSC_BASE_HOST_PIDS + RUNSC_HOST_PIDS_PER_TASK * limits.pids


def adapt(options: dict[str, Any], runtime: Runtime, limits: RunLimits) -> dict[str, Any]:
    """``options`` (the shared ``create_host_config`` arguments) for ``runtime``."""
    # named even for runc: an engine whose default runtime was changed must not pick the tier
    adapted = {**options, "runtime": runtime.value}
    if runtime == Runtime.RUNSC:
        adapted["pids_limit"] = runsc_host_pids(limits)
        adapted["ulimits"] = [*options.get("ulimits", []),
                              docker.types.Ulimit(name="nproc", soft=limits.pids, hard=limits.pids)]  # fmt: skip
        # gVisor ignores ipc_mode "none" and keeps a /dev/shm of its own: cover it, as /dev/mqueue is
        adapted["tmpfs"] = {**options.get("tmpfs", {}), "/dev/shm": "ro,size=4k,mode=0555,nosuid,nodev,noexec"}
    return adapted


def registered(client: docker.DockerClient) -> set[str]:
    """The runtimes the engine knows (``docker info``); empty when it cannot say."""
    try:
        return set((client.info() or {}).get("Runtimes") or {})
    except docker.errors.DockerException:
        return set()


def is_unknown_runtime(error: docker.errors.APIError) -> bool:
    """The engine refused a container because it has no runtime of the asked name."""
    return getattr(error, "status_code", None) == 400 and "unknown runtime" in str(error.explanation or error).lower()

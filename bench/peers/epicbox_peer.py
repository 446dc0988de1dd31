"""epicbox (PyPI ``epicbox``): a new container per run; it has no warm mode.

A profile names the image (used as it is: epicbox never pulls), the user,
``read_only`` and ``network_disabled``; limits give memory (and the same swap
limit), a pids limit, RLIMIT_CPU and a wall-clock limit. The code goes in on
stdin (``python -``): its other way, ``files=``, writes into /sandbox with
Docker's archive API, which needs a writable root or a volume.

Run as ``epicbox.create`` + ``epicbox.start``, with ``epicbox.destroy`` left for
after the answer (``epicbox.run`` is the three in one).

epicbox 1.1.0, its latest release, builds its retrying HTTP adapter with
urllib3's ``method_whitelist``, which urllib3 2 renamed ``allowed_methods``;
``_compatible_retry`` passes it on under the new name (same meaning) instead
of downgrading urllib3 in the shared virtualenv.
"""

from __future__ import annotations

import logging
from importlib.metadata import version
from typing import Any

from bench.peers.variants import Variant
from bench.peers.workloads import IN_IMAGE_PYTHON, Workload

PROFILE = "skillharbor-bench"

NOT_APPLIED = {
    "all capabilities dropped": "epicbox has no setting for capabilities (Docker's default set stays in the bounding set)",
    "no_new_privs": "no setting for security options",
    "CPU quota": "no CPU share or quota setting; it limits CPU time per process (RLIMIT_CPU) instead, so its runs are "
    "not throttled to 0.5 CPU as the others are",
    "/tmp a noexec tmpfs": "no tmpfs setting: with its read-only root /tmp is not writable at all",
    "no /dev/shm (ipc none)": "no IPC setting",
    "init as PID 1": "no init setting (the command's shell is PID 1)",
    "open files capped": "the only ulimits it sets are RLIMIT_CPU and (when asked) RLIMIT_FSIZE",
    "no core dumps": "the only ulimits it sets are RLIMIT_CPU and (when asked) RLIMIT_FSIZE",
}


def _compatible_retry() -> None:
    import epicbox.utils
    from urllib3.util.retry import Retry

    if getattr(epicbox.utils.Retry, "bench_compatible", False):
        return

    class CompatibleRetry(Retry):
        bench_compatible = True

        def __init__(self, *args: Any, method_whitelist: Any = None, **kwargs: Any):
            if method_whitelist is not None:
                kwargs.setdefault("allowed_methods", method_whitelist)
            super().__init__(*args, **kwargs)

    epicbox.utils.Retry = CompatibleRetry


class Epicbox(Variant):
    peer, mode, label = "epicbox", "cold", "epicbox"

    def __init__(self, workload: Workload, limits: Any):
        super().__init__(workload)
        import epicbox

        _compatible_retry()
        logging.getLogger("epicbox").setLevel(logging.WARNING)
        self.epicbox = epicbox
        self.profile = f"{PROFILE}-{workload.name}"
        self.profile_args = {"docker_image": workload.image, "user": "10001:10001", "read_only": True, "network_disabled": True}
        epicbox.configure(profiles=[epicbox.Profile(self.profile, **self.profile_args)])
        timeout = int(limits.timeout_seconds)
        self.limits = {"cputime": timeout, "realtime": timeout, "memory": limits.memory_mb, "processes": limits.pids}

    def run(self) -> Any:
        sandbox = self.epicbox.create(self.profile, f"{IN_IMAGE_PYTHON} -", limits=dict(self.limits))  # it fills in defaults in place
        self.defer(lambda: self.epicbox.destroy(sandbox))
        result = self.epicbox.start(sandbox, stdin=self.workload.script.encode())
        if result["exit_code"] != 0:
            raise RuntimeError(f"epicbox run exited {result['exit_code']}: {result}")
        return self.workload.decode(result["stdout"])

    def describe(self) -> dict[str, Any]:
        return {"version": version("epicbox"), "profile": self.profile_args, "limits": self.limits,
                "command": f"/bin/sh -c '{IN_IMAGE_PYTHON} -' (epicbox wraps it in sh), the script on stdin",
                "fixed by epicbox": "stdin attached, log driver none",
                "not applied": NOT_APPLIED}  # fmt: skip

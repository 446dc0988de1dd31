"""The behaviour probe, host side: a probe job (``RunJob.probe``) becomes an ordinary sandbox run of the
probe driver, with the recorder files written read-only beside the skill's files.

Nothing here runs skill code on the host: the driver, the recorder (``hook.py``, loaded as
``sitecustomize``), the entrypoint caller (``run_entry.py``) and the bash trap (``bash_env.sh``) are
stdlib-only files that travel in the job, like the skill's own files.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
PROBE_DIR = ".skillharbor-probe"
_FILES = {"sitecustomize.py": "hook.py", "run_entry.py": "run_entry.py", "bash_env.sh": "bash_env.sh"}


def probe_files() -> dict[str, str]:
    """The recorder's files, by their path in the skill directory."""
    return {f"{PROBE_DIR}/{name}": (HERE / source).read_text() for name, source in _FILES.items()}


def driver_source() -> str:
    return (HERE / "driver.py").read_text()


def probe_fields(job: Any) -> dict[str, Any]:
    """The RunJob fields that make ``job`` (whose ``probe`` is the plan) a run of the probe driver."""
    files = {k: v for k, v in job.files.items() if not k.startswith(PROBE_DIR + "/")}
    return {"code": driver_source(), "entrypoint": "probe", "inputs": dict(job.probe), "files": {**files, **probe_files()},
            "script": False, "preimport": False, "command": None, "egress": [], "secrets": []}  # fmt: skip

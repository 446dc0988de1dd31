"""What every variant runs: the same skill code, as a skill for skillharbor
and as a script (the code plus a call that prints the result as JSON) for
the peers, so all results can be checked against each other."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

#: skillharbor's python in its base image (and in every env image built on it)
IN_IMAGE_PYTHON = "/opt/skillharbor/venv/bin/python"


@dataclass(frozen=True)
class Workload:
    name: str  # "hello", "numpy_pandas"
    image: str
    code: str  # the skill's source
    entrypoint: str
    inputs: dict[str, Any]
    packages: list[str] = field(default_factory=list)  # imported by skillharbor's pre-importing pool

    @property
    def script(self) -> str:
        """The skill as a standalone program printing its result as one JSON line."""
        arguments = json.dumps(json.dumps(self.inputs))
        return (f"{self.code}\n\nimport json as _json, sys as _sys\n"
                f"_sys.stdout.write(_json.dumps({self.entrypoint}(**_json.loads({arguments}))) + '\\n')\n")  # fmt: skip

    def decode(self, stdout: str | bytes) -> Any:
        """The result a script printed (its last non-empty line)."""
        text = stdout.decode() if isinstance(stdout, bytes) else stdout
        lines = [line for line in text.splitlines() if line.strip()]
        if not lines:
            raise RuntimeError(f"{self.name}: the run printed nothing")
        return json.loads(lines[-1])


def hello(image: str, code: str) -> Workload:
    return Workload("hello", image, code, "main", {"name": "bench"})


def numpy_pandas(image: str, code: str, rows: list[dict[str, Any]], packages: list[str]) -> Workload:
    return Workload("numpy_pandas", image, code, "execute", {"data": rows}, packages)

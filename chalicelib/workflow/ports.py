"""What the use cases need from the outside, as Protocols; store/ holds the AWS adapters."""

from __future__ import annotations

from typing import Any, Protocol


class Orchestrator(Protocol):
    """Starts import executions (store/stepfunctions.py)."""

    def start(self, import_id: str, state: dict[str, Any]) -> str: ...

    def execution_arn(self, import_id: str) -> str: ...


class MessageQueue(Protocol):
    """A queue taking text messages (store/queues.py)."""

    def send(self, body: str) -> None: ...


class JobQueue(Protocol):
    """Hands a job to the runner workers (workflow/execution.py signs and sends it)."""

    def send(self, job: Any, *, lifetime_seconds: float | None = None) -> None: ...

"""The runner fleet's CloudWatch metrics: what each worker publishes for the autoscaling in infra/runner_fleet.json.

Every worker puts ``Slots`` and ``FreeSlots`` (dimension ``Fleet``: the
stack's name) at most once a minute. Summed per minute they are the fleet's
slots and free slots; the sample count of ``Slots`` is how many workers
reported. The scaling alarms divide the runner queue's backlog by that.
Off (nothing is sent) while ``SKILLHARBOR_RUNNER_METRICS_NAMESPACE`` is empty,
as it is locally.
"""

from __future__ import annotations

import time

from chalicelib.settings import get_settings
from chalicelib.store import aws

PUBLISH_EVERY_SECONDS = 60.0


class RunnerMetrics:
    def __init__(self) -> None:
        self._last = 0.0

    def publish(self, *, slots: int, free_slots: int, now: float | None = None) -> bool:
        """Put this worker's slot counts, unless it did within the last minute; True when it sent them."""
        settings = get_settings()
        now = time.monotonic() if now is None else now
        if not settings.runner_metrics_namespace or now - self._last < PUBLISH_EVERY_SECONDS:
            return False
        dimensions = [{"Name": "Fleet", "Value": settings.runner_fleet_name}]
        aws.client("cloudwatch").put_metric_data(Namespace=settings.runner_metrics_namespace, MetricData=[
            {"MetricName": "Slots", "Dimensions": dimensions, "Value": float(slots), "Unit": "Count"},
            {"MetricName": "FreeSlots", "Dimensions": dimensions, "Value": float(free_slots), "Unit": "Count"},
        ])  # fmt: skip
        self._last = now
        return True

"""The runner worker stops promptly and loses no job: what it got while stopping, and what it could
not finish in its drain time, is back on the queue (moto SQS; the engine is a double that blocks)."""

from __future__ import annotations

import threading

import boto3
import pytest
from moto import mock_aws

from chalicelib.runner.jobs import BuildJob
from chalicelib.runner.signing import open_envelope, seal
from chalicelib.runner.worker import RunnerWorker


class _BlockingEngine:
    """A build that goes on until released: the job still running when the worker stops."""

    def __init__(self) -> None:
        self.started, self.release = threading.Event(), threading.Event()

    def ensure_base(self):
        from chalicelib.runner.base_image import BaseImageInfo

        return BaseImageInfo(tag="skillharbor/base:latest", image_id="sha256:" + "a" * 64, python_version="3.11",
                             manylinux_tag="manylinux_2_36_x86_64", source="offline")  # fmt: skip

    def build(self, pins):
        from chalicelib.errors import BuildFailed

        self.started.set()
        self.release.wait(60)
        raise BuildFailed("released by the test")


class _Images:
    def heartbeat(self, *args, **kwargs) -> None:
        pass


class _Platform:
    def record(self, *args) -> None:
        pass


@pytest.fixture
def queue():
    with mock_aws():
        sqs = boto3.client("sqs", region_name="us-east-1")
        url = sqs.create_queue(QueueName="runner-jobs", Attributes={"VisibilityTimeout": "900"})["QueueUrl"]
        yield sqs, url


SECRET = "runner-secret-for-the-stop-tests-0123"


def _signed(job: BuildJob) -> str:
    return seal(SECRET, job, lifetime_seconds=600)


def _worker(sqs, url, engine, **options) -> RunnerWorker:
    return RunnerWorker(engine, sqs=sqs, queue_url=url, images=_Images(), platform=_Platform(), skills=None, orchestrator=None,
                        wait_seconds=1, secret=SECRET, **options)  # fmt: skip


def _visible(sqs, url) -> list[dict]:
    return sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0,
                               AttributeNames=["ApproximateReceiveCount"]).get("Messages", [])  # fmt: skip


def test_a_job_received_while_stopping_goes_back_unhandled(queue):
    sqs, url = queue
    engine = _BlockingEngine()
    worker = _worker(sqs, url, engine)
    sqs.send_message(QueueUrl=url, MessageBody=_signed(BuildJob(skill_id="s", pins=[])))
    worker.stop_event.set()
    assert worker.poll_once() == 0
    assert not engine.started.is_set()
    (message,) = _visible(sqs, url)  # at once, not after the 900 s visibility timeout
    assert message["Attributes"]["ApproximateReceiveCount"] == "2"


def test_a_job_still_running_after_the_drain_goes_back_to_the_queue(queue):
    sqs, url = queue
    engine = _BlockingEngine()
    worker = _worker(sqs, url, engine, drain_seconds=1)
    sqs.send_message(QueueUrl=url, MessageBody=_signed(BuildJob(skill_id="s", pins=[])))
    loop = threading.Thread(target=worker.run_forever, kwargs={"threads": 2}, daemon=True)
    loop.start()
    try:
        assert engine.started.wait(30), "the worker never took the job"
        worker.request_stop()  # what the SIGTERM / SIGINT handler calls
        loop.join(30)
        assert not loop.is_alive(), "run_forever did not return after the drain time"
        (message,) = _visible(sqs, url)  # handed back for another worker
        assert BuildJob.model_validate_json(open_envelope(SECRET, message["Body"])[1]).skill_id == "s"
    finally:
        engine.release.set()
        # the abandoned job ends while moto is still there (its calls must never leave for real AWS)
        for thread in [t for t in threading.enumerate() if t.name.startswith("runner-")]:
            thread.join(30)

"""Runner jobs against the real engine (issue 11, item 8): a pin that names anything but an https:// file of the
index is never fetched, and the runner secret reaches neither a container nor a record."""

from __future__ import annotations

import json
import os
import time

import boto3
import pytest
from chalice.test import Client
from stack_support import ADMIN_HEADERS, RUNNER_SECRET, Stack

from chalicelib.packages.pins import Pin
from chalicelib.runner.jobs import BuildJob
from chalicelib.runner.signing import seal
from chalicelib.store.results import ResultStore

pytestmark = pytest.mark.docker


def test_a_signed_build_job_with_a_non_index_pin_fetches_nothing(docker_stack: Stack, tmp_path) -> None:
    """Even a genuine job (a signer tricked into a bad pin) cannot make the builder read a host file or leave
    the index's file host: the build fails naming the refusal, and nothing was copied into the wheelhouse."""
    from chalicelib.settings import get_settings

    planted = tmp_path / "planted-1.0-py3-none-any.whl"
    planted.write_bytes(b"host file the build must not read")
    pins = {
        "file": planted.as_uri(),
        "http": "http://files.pythonhosted.org/packages/planted-1.0-py3-none-any.whl",
        "host": "https://127.0.0.1:9/packages/planted-1.0-py3-none-any.whl",
    }
    results = {}
    for name, url in pins.items():
        pin = Pin(name="planted", version="1.0", sha256="a" * 64, filename=planted.name, url=url, direct=True)
        job = BuildJob(skill_id="planted", pins=[pin], result_id=f"job-planted-{name}")
        docker_stack.sqs.send_message(QueueUrl=docker_stack.settings.runner_queue_url,
                                      MessageBody=seal(RUNNER_SECRET, job, lifetime_seconds=300))  # fmt: skip
        deadline = time.monotonic() + 120
        while (outcome := ResultStore().get(job.result_id)) is None and time.monotonic() < deadline:
            time.sleep(0.1)
        results[name] = outcome
    assert all(r is not None and r["success"] is False and r["status"] == "BuildFailed" for r in results.values()), results
    assert "only https:// downloads are allowed, not file:" in results["file"]["error"]
    assert "only https:// downloads are allowed, not http:" in results["http"]["error"]
    assert "is not the package index's file host" in results["host"]["error"]
    wheelhouse = get_settings().cache_dir / "wheelhouse" / ("a" * 64)
    assert not wheelhouse.exists() or not any(wheelhouse.iterdir())


def test_the_runner_secret_reaches_no_container(run_code, monkeypatch) -> None:
    monkeypatch.setenv("SKILLHARBOR_RUNNER_SECRET", RUNNER_SECRET)  # the worker holds it in its environment
    result = run_code(
        "import glob, os\n"
        "def main():\n"
        "    seen = [open(p, 'rb').read().decode(errors='replace') for p in glob.glob('/proc/*/environ') if os.access(p, os.R_OK)]\n"
        "    return {'env': dict(os.environ), 'procs': seen}\n"
    )
    assert RUNNER_SECRET not in json.dumps(result.output) and "SKILLHARBOR_RUNNER_SECRET" not in json.dumps(result.output)


def test_the_runner_secret_reaches_no_record(docker_stack: Stack, monkeypatch) -> None:
    """After a direct run, a queued run and a build, no table item, S3 object or queue message holds the secret."""
    docker_stack.runner.direct_listen = "127.0.0.1:0"
    monkeypatch.setenv("SKILLHARBOR_RUNNER_URL", docker_stack.runner.start_direct_server())
    hello = b"---\nname: quiet hello\ndescription: Greets.\n---\n```python\ndef execute(name='world'):\n    return f'hello {name}'\n```\n"
    try:
        with Client(docker_stack.app) as client:
            accepted = json.loads(client.http.post("/api/skills", body=hello, headers={**ADMIN_HEADERS, "Content-Type": "text/markdown"}).body)
            assert docker_stack.wait_for_import(accepted["import_id"], timeout=300)["status"] == "SUCCEEDED"
            for _ in range(2):
                response = client.http.post("/api/skills/quiet-hello/execute", headers={**ADMIN_HEADERS, "Content-Type": "application/json"},
                                            body=json.dumps({"agent_id": "quiet", "inputs": {"name": "x"}}))  # fmt: skip
                assert response.status_code == 200, response.body
                docker_stack.runner.stop_direct_server()  # the second run goes through the queue
    finally:
        docker_stack.runner.stop_direct_server()
    settings = docker_stack.settings
    dynamodb = boto3.client("dynamodb", region_name=settings.region)
    for table in dynamodb.list_tables()["TableNames"]:
        assert RUNNER_SECRET not in json.dumps(dynamodb.scan(TableName=table)["Items"], default=str), table
    s3 = boto3.client("s3", region_name=settings.region)
    for bucket in (settings.inbox_bucket, settings.artifacts_bucket):
        for item in s3.list_objects_v2(Bucket=bucket).get("Contents", []):
            assert RUNNER_SECRET.encode() not in s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read(), item["Key"]
    assert os.environ["SKILLHARBOR_RUNNER_SECRET"] == RUNNER_SECRET  # (the stack did sign with it)

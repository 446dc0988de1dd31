"""Signed runner jobs (runner/signing.py) and the checks a worker makes before trusting one (runner/intake.py)."""

from __future__ import annotations

import json
import time

import pytest

from chalicelib.errors import BadRequest, Unauthorized
from chalicelib.runner.intake import RefusedJob, admit_run, image_problem, limit_problems, open_message
from chalicelib.runner.jobs import BuildJob, CleanupJob, RunJob
from chalicelib.runner.signing import MAX_LIFETIME_SECONDS, check_body, refusal_reason, seal, sign, verify_token
from chalicelib.runner.spec import RunLimits
from chalicelib.settings import Settings

SECRET = "signing-secret-for-the-tests-0123456789"


def _run_job(**fields) -> RunJob:
    return RunJob(**{"skill_id": "hello", "version": "v1", "code": "def execute():\n    return 1\n", "entrypoint": "execute", **fields})


def _why(call) -> str:
    with pytest.raises(Unauthorized) as caught:
        call()
    return refusal_reason(caught.value)


def test_a_token_vouches_for_exactly_its_body_type_id_and_time() -> None:
    body = b'{"type": "run"}'
    token = sign(SECRET, "run", "run-1", body, lifetime_seconds=60)
    claims = verify_token(SECRET, token)
    assert (claims.type, claims.job_id, claims.length) == ("run", "run-1", len(body))
    check_body(claims, body)
    assert _why(lambda: check_body(claims, body + b" ")) == "body_mismatch"
    assert _why(lambda: verify_token("another-secret-of-enough-length", token)) == "forged"
    assert _why(lambda: verify_token(SECRET, token.replace("type=run", "type=build"))) == "forged"  # any field changed
    assert _why(lambda: verify_token(SECRET, token, now=time.time() + 61)) == "expired"
    ahead = sign(SECRET, "run", "run-1", body, lifetime_seconds=60, now=time.time() + 3600)
    assert _why(lambda: verify_token(SECRET, ahead)) == "not_yet_valid"
    for bad in (None, ""):
        assert _why(lambda bad=bad: verify_token(SECRET, bad)) == "unsigned"
    for bad in ("v2;type=run", "v1;type=run;type=run", token + ";extra=1", token.replace("len=", "len=-")):
        assert _why(lambda bad=bad: verify_token(SECRET, bad)) == "malformed"


def test_a_signer_cannot_grant_more_than_the_longest_lifetime() -> None:
    token = sign(SECRET, "cleanup", "job-1", b"{}", lifetime_seconds=10 * MAX_LIFETIME_SECONDS)
    claims = verify_token(SECRET, token)
    assert claims.expires_at - claims.issued_at == MAX_LIFETIME_SECONDS


def test_signing_needs_a_real_secret() -> None:
    for weak in ("", "short"):
        with pytest.raises(ValueError, match="SKILLHARBOR_RUNNER_SECRET"):
            sign(weak, "run", "run-1", b"{}", lifetime_seconds=1)


def test_a_sealed_queue_message_opens_to_its_job_and_nothing_else_does() -> None:
    job = _run_job()
    body = seal(SECRET, job, lifetime_seconds=60)
    opened, claims = open_message(SECRET, body)
    assert opened == job and claims.job_id == job.job_id

    def refused(message: str) -> RefusedJob:
        with pytest.raises(RefusedJob) as caught:
            open_message(SECRET, message)
        assert caught.value.job is None  # nothing of it is trusted, so nothing is answered
        return caught.value

    assert refused(job.model_dump_json()).reason == "unsigned"  # the old, unsigned wire form
    assert refused("not json at all").reason == "unsigned"
    assert refused(seal("a-different-secret-0123456789", job, lifetime_seconds=60)).reason == "forged"
    document = json.loads(body)
    evil = json.loads(document["job"]) | {"code": "import os; os.system('id')"}
    assert refused(json.dumps({**document, "job": json.dumps(evil)})).reason == "body_mismatch"
    # a genuine signature of one job on another job's body (same id) is not that job either
    other = _run_job(job_id=job.job_id, skill_id="other")
    swapped = {"signature": document["signature"], "job": other.model_dump_json()}
    assert refused(json.dumps(swapped)).reason == "body_mismatch"
    summary = refused(job.model_dump_json()).detail
    assert summary["claimed_job_id"] == job.job_id and len(summary["body_sha256"]) == 64


def test_a_genuine_expired_job_is_refused_but_named_so_that_it_can_be_answered() -> None:
    job = BuildJob(skill_id="s", version="v", task_token="token")
    body = seal(SECRET, job, lifetime_seconds=5, now=time.time() - 60)
    with pytest.raises(RefusedJob) as caught:
        open_message(SECRET, body)
    assert caught.value.reason == "expired" and caught.value.job == job


def test_a_signed_message_that_is_not_a_job_is_a_poison_message_not_a_forgery() -> None:
    token = sign(SECRET, "run", "run-1", b'{"type": "run", "code": 5}', lifetime_seconds=60)
    with pytest.raises(BadRequest, match="runner job message is invalid"):
        open_message(SECRET, json.dumps({"signature": token, "job": '{"type": "run", "code": 5}'}))


def test_the_runner_enforces_its_own_maxima_whatever_the_job_says() -> None:
    maxima = Settings(max_memory_mb=512, max_cpus=1.0, max_timeout_seconds=60, max_output_bytes=4096, run_pids=64, run_tmpfs_mb=16)
    assert limit_problems(RunLimits(memory_mb=256, cpus=0.5, pids=64, timeout_seconds=30, tmpfs_mb=16, max_output_bytes=4096),
                          maxima) == []  # fmt: skip
    greedy = RunLimits(memory_mb=8192, cpus=16, pids=100_000, timeout_seconds=86_400, tmpfs_mb=4096, max_output_bytes=1 << 30)
    problems = limit_problems(greedy, maxima)
    assert [p.split("=")[0] for p in problems] == ["memory_mb", "cpus", "timeout_seconds", "max_output_bytes", "pids", "tmpfs_mb"]
    assert all("exceeds this runner's maximum" in p for p in problems)
    with pytest.raises(RefusedJob) as caught:
        admit_run(_run_job(limits=greedy), maxima)
    assert caught.value.reason == "limits" and caught.value.job is not None
    assert "below the minimum" in limit_problems(RunLimits(memory_mb=1, pids=1), maxima)[0]


def test_only_the_base_image_and_built_env_images_are_run() -> None:
    base = "skillharbor/base:latest"
    assert image_problem(None, base) is None and image_problem(base, base) is None
    assert image_problem("skillharbor/env:" + "a" * 32, base) is None
    for foreign in ("docker:dind", "alpine", "skillharbor/env:latest", "skillharbor/env:" + "a" * 32 + "@sha256:x"):
        assert "is not one this runner builds" in image_problem(foreign, base)


def test_every_job_kind_has_an_id_and_can_be_signed() -> None:
    for job in (BuildJob(skill_id="s"), CleanupJob(ttl_days=1), _run_job()):
        opened, _ = open_message(SECRET, seal(SECRET, job, lifetime_seconds=60))
        assert opened.job_id == job.job_id and opened.type == job.type


def test_a_flood_of_refusals_becomes_one_audit_event_a_minute_per_address() -> None:
    from chalicelib.runner.intake import RefusalThrottle

    throttle = RefusalThrottle(interval=60.0)
    recorded = [throttle.should_record("direct:10.0.0.9") for _ in range(1000)]
    assert recorded.count(True) == 1 and recorded[0]
    assert throttle.take_count("direct:10.0.0.9") == 1000  # the event that follows says how many it stands for
    assert throttle.should_record("direct:10.0.0.10")  # another address is recorded at once


def test_an_execute_request_stops_waiting_before_the_api_function_times_out() -> None:
    """Runs may last SKILLHARBOR_MAX_TIMEOUT_SECONDS; the API answers 202 before its own function's timeout."""
    from pathlib import Path

    config = json.loads((Path(__file__).resolve().parents[3] / ".chalice" / "config.json").read_text())
    for stage in config["stages"].values():
        timeout = stage.get("lambda_functions", {}).get("api_handler", {}).get("lambda_timeout", config["lambda_timeout"])
        assert Settings().run_sync_wait_seconds < timeout < Settings().max_timeout_seconds

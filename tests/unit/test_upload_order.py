"""upload_order: which upload of a skill is the newest, whatever order the events arrive in."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from chalicelib.workflow.imports import _event_time, upload_order


def test_later_event_time_sorts_later_across_formats() -> None:
    s3_event = upload_order(_event_time("2026-11-22T06:30:00.123Z"))
    api_upload = upload_order(datetime(2026, 11, 22, 6, 30, 0, 124000, tzinfo=UTC))
    assert s3_event < api_upload
    assert s3_event == "2026-11-22T06:30:00.123000+00:00"


def test_same_millisecond_writes_are_ordered_by_the_sequencer() -> None:
    moment = _event_time("2026-11-22T06:30:00.123Z")
    # S3 sequencers of one key can differ in length: compare after right-padding with zeros
    assert upload_order(moment, "0055AED6DCD90281E5") < upload_order(moment, "0055AED6DCD90281E6")
    assert upload_order(moment, "0055AED6DCD9028") < upload_order(moment, "0055AED6DCD90281E6")


def test_a_missing_or_garbled_event_time_falls_back_to_now() -> None:
    before = datetime.now(UTC) - timedelta(seconds=1)
    for garbled in (None, "", "yesterday"):
        assert _event_time(garbled) > before
    assert _event_time("2026-11-22T06:30:00").tzinfo is not None  # naive times are UTC

"""The entry limit is checked from the zip's central directory before zipfile reads it."""

from __future__ import annotations

import io
import tracemalloc
import zipfile

import pytest

from chalicelib.errors import InvalidSkill
from chalicelib.skills import ParseLimits, parse_zip
from zip_support import many_entry_zip

SKILL = ("SKILL.md", b"---\nname: Many\ndescription: Many files\n---\nUse it.\n")


def refusal(data: bytes, limits: ParseLimits | None = None) -> tuple[list[str], int]:
    """The problems parse_zip reports, and the peak of memory it allocated meanwhile."""
    tracemalloc.start()
    try:
        with pytest.raises(InvalidSkill) as caught:
            parse_zip(data, limits=limits)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    return caught.value.problems, peak


def test_a_20_mb_zip_of_230000_entries_is_refused_without_reading_its_entries() -> None:
    data = many_entry_zip(230_000, first=SKILL)
    assert len(data) <= ParseLimits().max_zip_bytes  # within the size limit: only the count refuses it
    problems, peak = refusal(data)
    assert problems == ["the zip has 230000 entries, over the limit of 1000"]
    assert peak < 1024 * 1024  # zipfile's entry list for it takes about 250 MB


def test_a_directory_longer_than_its_end_record_declares_is_refused() -> None:
    # zipfile reads every record up to the directory's size, whatever count the end record claims
    data = many_entry_zip(5_000, first=SKILL, declare=1)
    assert len(zipfile.ZipFile(io.BytesIO(data)).infolist()) == 5_000
    problems, peak = refusal(data)
    assert problems == ["the zip's central directory holds more than 1000 entries (its end record declares 1), "
                        "over the limit of 1000"]  # fmt: skip
    assert peak < 1024 * 1024


def test_zip64_end_records_are_read() -> None:
    problems, _ = refusal(many_entry_zip(70_000, first=SKILL))  # past 65,535: the count lives in the zip64 record
    assert problems == ["the zip has 70000 entries, over the limit of 1000"]
    problems, _ = refusal(many_entry_zip(70_000, first=SKILL, declare=0x10000 + 5))
    assert problems == ["the zip has 65541 entries, over the limit of 1000"]


def test_a_zip_at_the_limit_is_read_and_a_comment_does_not_hide_the_end_record() -> None:
    def archive(comment: bytes) -> bytes:
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w") as zipped:
            zipped.writestr(*SKILL)
            for index in range(9):
                zipped.writestr(f"data/{index}.txt", b"x")
            zipped.comment = comment
        return buffer.getvalue()

    skill = parse_zip(archive(b"a comment " * 100), limits=ParseLimits(max_entries=10))
    assert skill.skill_id == "many" and len(skill.files) == 9
    problems, _ = refusal(archive(b"a comment " * 100), ParseLimits(max_entries=9))
    assert problems == ["the zip has 10 entries, over the limit of 9"]
    # an end-record signature inside the comment misleads zipfile too: it is refused, not miscounted
    problems, _ = refusal(archive(b"PK\x05\x06 looks like an end record" * 10), ParseLimits(max_entries=9))
    assert problems[0].startswith("not a valid zip archive")


def test_archives_without_a_readable_directory_are_still_refused_by_zipfile() -> None:
    for data in (b"PK\x03\x04 not really", many_entry_zip(3, first=SKILL)[:-10]):
        problems, _ = refusal(data)
        assert problems[0].startswith("not a valid zip archive")

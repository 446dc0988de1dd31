"""UTC timestamps in one fixed-width ISO 8601 form, so they sort as strings.

DynamoDB sort keys compare strings byte by byte; ``2024-05-01T12:00:00.000001Z``
style (always microseconds, always ``Z``) makes string order equal time order.
"""

from __future__ import annotations

from datetime import datetime, timezone

from chalicelib.errors import BadRequest

_FORMAT = "%Y-%m-%dT%H:%M:%S.%fZ"


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


def as_utc(moment: datetime) -> datetime:
    """``moment`` with a time zone: a naive one is taken as UTC (what the stores and Docker write)."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=timezone.utc)


def format_time(moment: datetime) -> str:
    """``moment`` (naive = UTC) as ``YYYY-MM-DDTHH:MM:SS.ffffffZ``."""
    return as_utc(moment).astimezone(timezone.utc).strftime(_FORMAT)


def now_iso() -> str:
    return format_time(utc_now())


def parse_time(value: str, *, field: str = "time") -> str:
    """Any ISO 8601 date or date-time (naive = UTC) → the canonical form above.

    Raises BadRequest naming ``field`` when ``value`` is not ISO 8601.
    """
    text = value.strip() if isinstance(value, str) else ""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise BadRequest(
            f"{field} must be an ISO 8601 date or date-time such as 2024-05-01T12:00:00Z; got {value!r}",
            field=field,
        ) from None
    return format_time(moment)

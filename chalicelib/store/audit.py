"""The audit trail in DynamoDB (table: settings.audit_table): append-only, newest first.

Every event's sort key is ``<time>#<event_id>`` (fixed-width UTC time, so
string order is time order). Items:

* event: ``pk = day#YYYY-MM-DD``, ``sk = <time>#<event_id>``;
  ``gsi1pk = agent#<agent_id>``, ``gsi2pk = skill#<skill_id>``,
  ``gsi3pk = action#<action>``, each with ``gsiNsk = sk`` (set only when the
  event has that field, so the indexes stay sparse).
* day marker: ``pk = days``, ``sk = YYYY-MM-DD``, one per day that has events.

Why day partitions for "all events": the base table's own key then serves the
unfiltered, newest-first listing with no extra index and no scan; a
partition never grows beyond one day of events; and time ranges (``since``, ``until``)
map to whole partitions that can be skipped. The day markers let the reader
walk back only over days that have events (one small query) instead of
probing every calendar day; a store instance remembers which days it has
marked, so a marker costs one extra write per day per process (keep one
store per process). Write load at any instant still lands on today's
partition; audit volume here (a few events per API call or import step) is
far below one partition's throughput. Should it not be, shard today's
partition (``day#D#N``) and merge the shards when reading.

Filters: the most selective given field picks the index (agent, then skill,
then action); the others become a FilterExpression. ``next_token`` is
base64url JSON of the query's shape and the last returned sort key, and the
next page is read with a key condition ``sk < last`` (no scans, no state).
"""

from __future__ import annotations

import base64
import binascii
import json
import threading
from collections.abc import Iterator
from typing import Any

from boto3.dynamodb.conditions import Attr, Key

from chalicelib.errors import BadRequest
from chalicelib.governance.audit import AuditEvent, AuditPage, page_size, time_bounds
from chalicelib.store.dynamo import TableStore, from_dynamo, to_dynamo, with_retries

_KEY_FIELDS = ("pk", "sk", "gsi1pk", "gsi1sk", "gsi2pk", "gsi2sk", "gsi3pk", "gsi3sk", "item_type")
_DAYS = "days"
# (event field, index, partition prefix), most selective first
_INDEXES = (("agent_id", "gsi1", "agent#"), ("skill_id", "gsi2", "skill#"), ("action", "gsi3", "action#"))


def _event_item(event: AuditEvent) -> dict[str, Any]:
    item = to_dynamo(event.model_dump(mode="json"))
    item.update(pk=f"day#{event.time[:10]}", sk=event.sort_key, item_type="event")
    for field, index, prefix in _INDEXES:
        value = getattr(event, field)
        if value:
            item[f"{index}pk"] = f"{prefix}{value}"
            item[f"{index}sk"] = event.sort_key
    return item


def _event(item: dict[str, Any]) -> AuditEvent:
    return AuditEvent.model_validate({k: v for k, v in from_dynamo(item).items() if k not in _KEY_FIELDS})


class AuditStore(TableStore):
    """DynamoDB implementation of ``governance.ports.AuditLog``."""

    settings_field = "audit_table"

    def __init__(self, table_name: str | None = None) -> None:
        super().__init__(table_name)
        self._marked_days: set[str] = set()
        self._lock = threading.Lock()

    def append(self, event: AuditEvent) -> AuditEvent:
        """Store ``event`` once; re-appending the same event (same id and time) is a no-op."""
        self._mark_day(event.time[:10])
        item = _event_item(event)
        self.put_new(item)  # False: this very event is stored already
        return event

    def transact_put(self, event: AuditEvent) -> dict[str, Any]:
        """``event`` as one Put of a TransactWriteItems call, for a write that must land together with it
        (store/runs.py registers a run and its started event at once); the day is marked first."""
        self._mark_day(event.time[:10])
        return {"Put": {"TableName": self.table.name, "Item": _event_item(event), "ConditionExpression": "attribute_not_exists(pk)"}}

    def query(
        self,
        *,
        agent_id: str | None = None,
        skill_id: str | None = None,
        action: str | None = None,
        since: str | None = None,
        until: str | None = None,
        outcomes: tuple[str, ...] | None = None,
        limit: int | str | None = None,
        next_token: str | None = None,
    ) -> AuditPage:
        size = page_size(limit)
        lower, upper_key = time_bounds(since, until)
        filters = {"agent_id": agent_id or None, "skill_id": skill_id or None, "action": action or None}
        shape_fields: dict[str, Any] = dict(filters)
        if outcomes:
            shape_fields["outcomes"] = sorted(outcomes)
        shape = json.dumps(shape_fields, sort_keys=True)
        after = _decode_token(next_token, shape) if next_token else None
        # the page starts below the token's last event and at or before `until`, whichever is lower
        bound = min(k for k in (after, upper_key) if k) if (after or upper_key) else None

        events: list[AuditEvent] = []
        if lower is not None and bound is not None and bound < lower:
            return AuditPage(events=(), next_token=None)
        for item in self._newest_first(filters, lower, bound, tuple(outcomes or ())):
            events.append(_event(item))
            if len(events) == size:
                return AuditPage(events=tuple(events), next_token=_encode_token(shape, events[-1].sort_key))
        return AuditPage(events=tuple(events), next_token=None)

    # --- reading ----------------------------------------------------------------------

    def _newest_first(
        self, filters: dict[str, str | None], lower: str | None, after: str | None, outcomes: tuple[str, ...] = ()
    ) -> Iterator[dict[str, Any]]:
        for field, index, prefix in _INDEXES:
            value = filters[field]
            if value:
                others = [Attr(f).eq(v) for f, v in filters.items() if v and f != field]
                yield from self._query_partition(
                    Key(f"{index}pk").eq(f"{prefix}{value}"), f"{index}sk", lower, after, index=index,
                    others=others + _outcome_clause(outcomes),
                )  # fmt: skip
                return
        for day in self._days_newest_first(lower, after):
            yield from self._query_partition(Key("pk").eq(f"day#{day}"), "sk", lower, after, others=_outcome_clause(outcomes))

    def _query_partition(
        self,
        partition: Any,
        sort_attr: str,
        lower: str | None,
        after: str | None,
        *,
        index: str | None = None,
        others: list[Any] | None = None,
    ) -> Iterator[dict[str, Any]]:
        sort = Key(sort_attr)
        if lower and after:
            condition = partition & sort.between(lower, after)  # inclusive: `after` itself is skipped below
        elif after:
            condition = partition & sort.lt(after)
        elif lower:
            condition = partition & sort.gte(lower)
        else:
            condition = partition
        kwargs: dict[str, Any] = {"KeyConditionExpression": condition, "ScanIndexForward": False}
        if index:
            kwargs["IndexName"] = index
        if others:
            expression = None
            for clause in others:
                expression = clause if expression is None else expression & clause
            kwargs["FilterExpression"] = expression
        while True:
            response = with_retries(lambda: self.table.query(**kwargs))
            for item in response.get("Items", []):
                if after is not None and item.get("sk") == after:
                    continue
                yield item
            start = response.get("LastEvaluatedKey")
            if not start:
                return
            kwargs["ExclusiveStartKey"] = start

    def _days_newest_first(self, lower: str | None, after: str | None) -> Iterator[str]:
        partition = Key("pk").eq(_DAYS)
        first, last = (lower[:10] if lower else None), (after[:10] if after else None)
        if first and last:
            condition = partition & Key("sk").between(first, last)
        elif last:
            condition = partition & Key("sk").lte(last)
        elif first:
            condition = partition & Key("sk").gte(first)
        else:
            condition = partition
        for item in self._query_items(KeyConditionExpression=condition, ScanIndexForward=False):
            yield str(item["sk"])

    def _query_items(self, **kwargs: Any) -> Iterator[dict[str, Any]]:
        while True:
            response = with_retries(lambda: self.table.query(**kwargs))
            yield from response.get("Items", [])
            start = response.get("LastEvaluatedKey")
            if not start:
                return
            kwargs["ExclusiveStartKey"] = start

    # --- writing ----------------------------------------------------------------------

    def _mark_day(self, day: str) -> None:
        if day in self._marked_days:
            return
        # Idempotent put: concurrent writers may both write the same marker.
        with_retries(lambda: self.table.put_item(Item={"pk": _DAYS, "sk": day, "item_type": "day"}))
        with self._lock:
            self._marked_days.add(day)


def _outcome_clause(outcomes: tuple[str, ...]) -> list[Any]:
    return [Attr("outcome").is_in(list(outcomes))] if outcomes else []


def _encode_token(shape: str, after: str) -> str:
    raw = json.dumps({"q": shape, "after": after}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_token(token: str, shape: str) -> str:
    try:
        padded = token + "=" * (-len(token) % 4)
        data = json.loads(base64.urlsafe_b64decode(padded.encode()))
        after = data["after"]
        same_query = data["q"] == shape
    except (binascii.Error, UnicodeDecodeError, ValueError, KeyError, TypeError):
        raise BadRequest("next_token is not a token this API returned", field="next_token") from None
    if not isinstance(after, str) or not same_query:
        raise BadRequest(
            "next_token belongs to a query with other filters; repeat the same agent_id, skill_id and action",
            field="next_token",
        )
    return after

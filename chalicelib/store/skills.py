"""The skill registry and the import records (DynamoDB).

Skills table: one item per skill version (``pk`` = skill_id, ``sk`` = ``v#<version>``);
``gsi1`` lists every version newest first (``gsi1pk`` = ``skills``,
``gsi1sk`` = ``<updated_at>#<skill_id>``) so listing is a query, not a scan. A
skill's owner is an item of its own (store/owners.py, ``pk`` = ``owner#<skill_id>``).

Imports table: one item per import (``pk`` = ``import#<id>``, ``gsi1`` =
``("source#<bucket>/<key>", "<created_at>#<id>")`` finds the imports an uploaded
object started); an upload event's dedupe marker (``pk`` = ``event#<key>``) is
written with a condition so a duplicated or retried event starts one import.
"""

from __future__ import annotations

from typing import Any

from boto3.dynamodb.conditions import Attr, Key
from botocore.exceptions import ClientError

from chalicelib.errors import NotFound
from chalicelib.governance.read_cache import ReadCache
from chalicelib.governance.timeutil import now_iso
from chalicelib.store.dynamo import (
    TableStore, cancellation_codes, from_dynamo, is_conditional_failure, set_expression, to_dynamo, transact_write, with_retries,
)  # fmt: skip


_KEY_FIELDS = ("pk", "sk", "gsi1pk", "gsi1sk")


def _clean(item: dict[str, Any] | None) -> dict[str, Any] | None:
    if item is None:
        return None
    return {k: v for k, v in from_dynamo(item).items() if k not in _KEY_FIELDS}


def _upload_order(record: dict[str, Any]) -> tuple[str, str]:
    return (record.get("uploaded_at") or record.get("created_at", ""), record.get("created_at", ""))


class DynamoSkillRegistry(TableStore):
    settings_field = "skills_table"

    def __init__(self, table_name: str | None = None, *, cache_seconds: float | None = None) -> None:
        """``cache_seconds`` (default: settings.record_cache_seconds): how long ``runnable`` reuses what it
        read; every write through this instance drops that skill's entry at once."""
        super().__init__(table_name)
        if cache_seconds is None:
            from chalicelib.settings import get_settings

            cache_seconds = get_settings().record_cache_seconds
        self._runnable: ReadCache[dict[str, Any] | None] = ReadCache(cache_seconds)

    @staticmethod
    def _keys(skill_id: str, version: str) -> dict[str, str]:
        return {"pk": skill_id, "sk": f"v#{version}"}

    def put_version(self, record: dict[str, Any]) -> dict[str, Any]:
        """Create the version's record, or refresh it when the same content is imported again.

        A re-upload keeps ``created_at`` (same version, no duplicate item).
        """
        now = now_iso()
        existing = self.get_version(record["skill_id"], record["version"])
        item = dict(existing or {}, **record)
        item["created_at"] = (existing or {}).get("created_at", now)
        # a late event for an older upload of the same content must not make it look newer
        item["uploaded_at"] = max(filter(None, [(existing or {}).get("uploaded_at"), record.get("uploaded_at")]), default=now)
        item["updated_at"] = now
        item.update(self._keys(record["skill_id"], record["version"]))
        item["gsi1pk"] = "skills"
        item["gsi1sk"] = f"{now}#{record['skill_id']}"
        try:
            with_retries(lambda: self.table.put_item(Item=to_dynamo(item)))
        finally:
            self._runnable.invalidate(record["skill_id"])
        return _clean(item) or {}

    def update_version(self, skill_id: str, version: str, **fields: Any) -> None:
        """SET ``fields`` on the version's record (``steps__scan=...``: one member of the ``steps`` map);
        NotFound when the version has no record."""
        request = self.version_update(skill_id, version, **fields)["Update"]
        try:
            with_retries(lambda: self.table.update_item(**{k: v for k, v in request.items() if k != "TableName"}))
        except ClientError as error:
            if is_conditional_failure(error):
                raise NotFound(f"skill {skill_id} has no version {version}") from error
            raise
        finally:
            self._runnable.invalidate(skill_id)

    def version_update(self, skill_id: str, version: str, **fields: Any) -> dict[str, Any]:
        """``update_version`` as one Update of a TransactWriteItems call (see ``write_together``). A ``steps__<name>``
        field needs the record's ``steps`` map, which every version record has from its first write on."""
        now = now_iso()
        paths = {tuple(name.split("__", 1)) if "__" in name else name: value for name, value in fields.items()}
        update = set_expression(dict(paths, updated_at=now, gsi1sk=f"{now}#{skill_id}"))
        return {"Update": {"TableName": self.table.name, "Key": self._keys(skill_id, version),
                           "ConditionExpression": "attribute_exists(pk)", **update}}  # fmt: skip

    def write_together(self, skill_id: str, version: str, items: list[dict[str, Any]]) -> None:
        """One TransactWriteItems call whose first item is this version's ``version_update``: all land, or none
        (NotFound when the version has no record). The import's steps write the version, the import and the
        step's audit events at once: one round trip instead of three, and no reader sees one without the rest."""
        try:
            transact_write(self.table.meta.client, items)
        except ClientError as error:
            codes = cancellation_codes(error)
            if codes and codes[0] == "ConditionalCheckFailed":
                raise NotFound(f"skill {skill_id} has no version {version}") from error
            raise
        finally:
            self._runnable.invalidate(skill_id)

    def get_version(self, skill_id: str, version: str) -> dict[str, Any] | None:
        response = with_retries(lambda: self.table.get_item(Key=self._keys(skill_id, version), ConsistentRead=True))
        return _clean(response.get("Item"))

    def versions(self, skill_id: str) -> list[dict[str, Any]]:
        """Every version of the skill, newest upload first (read to the end, however many pages)."""
        items = [_clean(i) for i in self._version_items(skill_id)]
        return sorted((i for i in items if i), key=_upload_order, reverse=True)

    def latest(self, skill_id: str) -> dict[str, Any] | None:
        """The most recently uploaded version of the skill (whatever order the imports ran in)."""
        return self._newest(skill_id, lambda _summary: True)

    def latest_ready(self, skill_id: str) -> dict[str, Any] | None:
        """The most recently uploaded version that is ``ready``: what executions run, so that a newer
        upload that is broken, blocked or still importing never takes a working skill down."""
        return self._newest(skill_id, lambda summary: summary.get("status") == "ready")

    def runnable(self, skill_id: str) -> dict[str, Any] | None:
        """``latest_ready`` as runs read it on every request: reused for ``cache_seconds`` (a version that
        another process marks not ready, or a newer one it makes ready, is seen at most that much later;
        one changed through this instance at once). A skill with no ready version is read again each time."""
        record = self._runnable.get(skill_id, lambda: self.latest_ready(skill_id))
        if record is None:
            self._runnable.invalidate(skill_id)
            return None
        return dict(record)

    def has_versions(self, skill_id: str) -> bool:
        return bool(self._version_items(skill_id, projection="sk", limit=1))

    def _newest(self, skill_id: str, wanted: Any) -> dict[str, Any] | None:
        # only the ordering fields of every version, then the chosen one in full: a skill's versions
        # may fill many 1 MB pages, and reading them all whole would cost that much on every run
        summaries = [from_dynamo(i) for i in self._version_items(skill_id, projection="sk, uploaded_at, created_at, #s")]
        chosen = max((s for s in summaries if wanted(s)), key=_upload_order, default=None)
        if chosen is None:
            return None
        return self.get_version(skill_id, str(chosen["sk"]).removeprefix("v#"))

    def _version_items(self, skill_id: str, *, projection: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
        kwargs: dict[str, Any] = {
            "KeyConditionExpression": Key("pk").eq(skill_id) & Key("sk").begins_with("v#"), "ConsistentRead": True,
        }  # fmt: skip
        if projection:
            kwargs["ProjectionExpression"] = projection
            if "#s" in projection:
                kwargs["ExpressionAttributeNames"] = {"#s": "status"}
        if limit is not None:
            kwargs["Limit"] = limit
        found: list[dict[str, Any]] = []
        while True:
            response = with_retries(lambda: self.table.query(**kwargs))
            found.extend(response.get("Items", []))
            if "LastEvaluatedKey" not in response or (limit is not None and len(found) >= limit):
                return found
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def versions_with_status(self, status: str) -> list[dict[str, Any]]:
        """Every version (of every skill) whose status is ``status``, e.g. the ready ones the re-scan checks."""
        found: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {"IndexName": "gsi1", "KeyConditionExpression": Key("gsi1pk").eq("skills"),
                                  "FilterExpression": Attr("status").eq(status)}  # fmt: skip
        while True:
            response = with_retries(lambda: self.table.query(**kwargs))
            found += [r for r in (_clean(i) for i in response.get("Items", [])) if r]
            if "LastEvaluatedKey" not in response:
                return found
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]

    def list_latest(self) -> list[dict[str, Any]]:
        """The latest version of every skill, most recently changed first, each with ``active_version``:
        the newest ready version, the one executions run (None when no version is ready)."""
        seen: dict[str, dict[str, Any]] = {}
        ready: dict[str, dict[str, Any]] = {}
        kwargs: dict[str, Any] = {"IndexName": "gsi1", "KeyConditionExpression": Key("gsi1pk").eq("skills"), "ScanIndexForward": False}
        while True:
            response = with_retries(lambda: self.table.query(**kwargs))
            for raw in response.get("Items", []):
                item = _clean(raw) or {}
                for newest, applies in ((seen, True), (ready, item.get("status") == "ready")):
                    current = newest.get(item["skill_id"])
                    if applies and (current is None or _upload_order(item) > _upload_order(current)):
                        newest[item["skill_id"]] = item
            if "LastEvaluatedKey" not in response:
                break
            kwargs["ExclusiveStartKey"] = response["LastEvaluatedKey"]
        for skill_id, item in seen.items():
            item["active_version"] = ready[skill_id]["version"] if skill_id in ready else None
        return sorted(seen.values(), key=lambda r: r.get("updated_at", ""), reverse=True)


def _source_key(bucket: str, key: str) -> str:
    return f"source#{bucket}/{key}"


class DynamoImportStore(TableStore):
    settings_field = "imports_table"

    def claim_event(self, dedupe_key: str, import_id: str) -> str | None:
        """Record that ``dedupe_key`` starts ``import_id``; return the existing import id if already claimed."""
        item = {"pk": f"event#{dedupe_key}", "sk": "event", "import_id": import_id, "created_at": now_iso()}
        try:
            with_retries(lambda: self.table.put_item(Item=item, ConditionExpression="attribute_not_exists(pk)"))
            return None
        except ClientError as error:
            if not is_conditional_failure(error):
                raise
        existing = with_retries(
            lambda: self.table.get_item(Key={"pk": f"event#{dedupe_key}", "sk": "event"}, ConsistentRead=True)
        )
        return existing.get("Item", {}).get("import_id", import_id)

    def create(self, record: dict[str, Any]) -> None:
        now = now_iso()
        item = dict(record, pk=f"import#{record['import_id']}", sk="import", created_at=now, updated_at=now)
        source = record.get("source") or {}
        if source.get("bucket") and source.get("key"):
            item.update(gsi1pk=_source_key(source["bucket"], source["key"]), gsi1sk=f"{now}#{record['import_id']}")
        item.setdefault("status", "RUNNING")
        with_retries(lambda: self.table.put_item(Item=to_dynamo(item)))

    def for_source(self, bucket: str, key: str, *, limit: int = 20) -> list[dict[str, Any]]:
        """The imports an uploaded object started, newest first (the index is eventually consistent)."""
        response = with_retries(lambda: self.table.query(
            IndexName="gsi1", KeyConditionExpression=Key("gsi1pk").eq(_source_key(bucket, key)), ScanIndexForward=False,
            Limit=limit,
        ))  # fmt: skip
        return [r for r in (_clean(i) for i in response.get("Items", [])) if r]

    def update(self, import_id: str, **fields: Any) -> None:
        request = self.import_update(import_id, **fields)["Update"]
        with_retries(lambda: self.table.update_item(**{k: v for k, v in request.items() if k != "TableName"}))

    def import_update(self, import_id: str, **fields: Any) -> dict[str, Any]:
        """``update`` as one Update of a TransactWriteItems call."""
        update = set_expression(dict(fields, updated_at=now_iso()))
        return {"Update": {"TableName": self.table.name, "Key": {"pk": f"import#{import_id}", "sk": "import"}, **update}}

    def get(self, import_id: str) -> dict[str, Any] | None:
        response = with_retries(
            lambda: self.table.get_item(Key={"pk": f"import#{import_id}", "sk": "import"}, ConsistentRead=True)
        )
        return _clean(response.get("Item"))

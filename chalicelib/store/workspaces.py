"""Workspaces: a record per workspace (images table, ``pk = workspace#<id>``) and its files in S3
(artifacts bucket, ``workspaces/<id>/files/<path>``).

The size cap is held twice: here for what callers upload (``put_file`` refuses past it) and in the
sandbox, where the workspace is a tmpfs of exactly that size; what a run leaves is saved as it was.
"""

from __future__ import annotations

import base64
import time
from typing import Any

from boto3.dynamodb.conditions import Key

from chalicelib.governance.timeutil import now_iso
from chalicelib.store.blobs import BlobStore, s3_client
from chalicelib.store.dynamo import TableStore, from_dynamo, to_dynamo, with_retries
from chalicelib.settings import get_settings


def _key(workspace_id: str) -> dict[str, str]:
    return {"pk": f"workspace#{workspace_id}", "sk": "workspace"}


def _public(item: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in item.items() if k not in ("pk", "sk", "gsi1pk", "gsi1sk")}


def _prefix(workspace_id: str) -> str:
    return f"workspaces/{workspace_id}/files/"


class WorkspaceStore(TableStore):
    settings_field = "images_table"

    def __init__(self, table_name: str | None = None, blobs: BlobStore | None = None) -> None:
        super().__init__(table_name)
        self.blobs = blobs or BlobStore()

    # --- the record ---------------------------------------------------------------------------

    def create(self, workspace_id: str, **fields: Any) -> dict[str, Any]:
        # gsi1 lists workspaces by expiry (zero-padded epoch seconds sort as numbers) for the cleanup
        item = {**_key(workspace_id), **fields, "workspace_id": workspace_id, "created_at": now_iso(),
                "gsi1pk": "workspaces", "gsi1sk": f"{int(fields['expires_at']):012d}"}  # fmt: skip
        with_retries(lambda: self.table.put_item(Item=to_dynamo(item), ConditionExpression="attribute_not_exists(pk)"))
        return _public(item)

    def get(self, workspace_id: str) -> dict[str, Any] | None:
        item = with_retries(lambda: self.table.get_item(Key=_key(workspace_id), ConsistentRead=True)).get("Item")
        return None if item is None else _public(from_dynamo(item))

    def expired(self, now: float | None = None) -> list[str]:
        """Ids of workspaces past their ``expires_at`` (the hourly cleanup removes them)."""
        now = time.time() if now is None else now  # expires_at is whole seconds: "< now" is "<= floor(now)"
        found: list[str] = []
        kwargs: dict[str, Any] = {"IndexName": "gsi1",
                                  "KeyConditionExpression": Key("gsi1pk").eq("workspaces") & Key("gsi1sk").lte(f"{int(now):012d}")}  # fmt: skip
        while True:
            page = with_retries(lambda: self.table.query(**kwargs))
            found += [str(from_dynamo(i)["workspace_id"]) for i in page.get("Items", [])]
            if "LastEvaluatedKey" not in page:
                return found
            kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]

    def delete(self, workspace_id: str) -> None:
        """Files first: a record without files is harmless, files without a record would be kept forever."""
        for key in self._keys(workspace_id):
            s3_client().delete_object(Bucket=self._bucket, Key=key)
        with_retries(lambda: self.table.delete_item(Key=_key(workspace_id)))

    # --- files --------------------------------------------------------------------------------

    @property
    def _bucket(self) -> str:
        return get_settings().artifacts_bucket

    def _keys(self, workspace_id: str) -> list[str]:
        keys: list[str] = []
        paginator = s3_client().get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self._bucket, Prefix=_prefix(workspace_id)):
            keys += [o["Key"] for o in page.get("Contents", [])]
        return keys

    def sizes(self, workspace_id: str) -> dict[str, int]:
        """path -> bytes of every file."""
        sizes: dict[str, int] = {}
        prefix = _prefix(workspace_id)
        paginator = s3_client().get_paginator("list_objects_v2")
        for page in paginator.paginate(Bucket=self._bucket, Prefix=prefix):
            sizes.update({o["Key"][len(prefix):]: int(o["Size"]) for o in page.get("Contents", [])})
        return sizes

    def get_file(self, workspace_id: str, path: str) -> bytes:
        return self.blobs.get_bytes(self._bucket, _prefix(workspace_id) + path)

    def put_file(self, workspace_id: str, path: str, data: bytes) -> None:
        self.blobs.put_bytes(self._bucket, _prefix(workspace_id) + path, data)

    def load_encoded(self, workspace_id: str) -> dict[str, str]:
        """Every file, base64 (as the harness takes them)."""
        return {path: base64.b64encode(self.get_file(workspace_id, path)).decode("ascii") for path in self.sizes(workspace_id)}

    def save_encoded(self, workspace_id: str, files: dict[str, str], before: dict[str, str]) -> None:
        """Make the stored files what the run left (``files``), writing only what changed since ``before``."""
        for path, encoded in files.items():
            if before.get(path) != encoded:
                self.put_file(workspace_id, path, base64.b64decode(encoded))
        for path in set(before) - set(files):
            s3_client().delete_object(Bucket=self._bucket, Key=_prefix(workspace_id) + path)

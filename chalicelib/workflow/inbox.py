"""Uploads to the S3 inbox: which import an upload event starts, and who it publishes as.

An upload carries no API key, so the publisher comes from the inbox's prefix
map (governance/ownership.py): the owner an admin mapped the object's folder
to. An upload under no mapped prefix (or to another bucket) is refused before
any pipeline starts; its import record says why, and the object stays in the
bucket, so nothing is lost: map the prefix and upload again.
"""

from __future__ import annotations

import hashlib

from chalicelib.governance.ownership import InboxPrefix, Publisher

#: the actor that audit events and import records name for inbox uploads
INBOX_ACTOR = "s3-inbox"


def inbox_dedupe_key(bucket: str, key: str, identity: str) -> str:
    """What makes one upload one import, however often its event is delivered."""
    return hashlib.sha256(f"{bucket}\n{key}\n{identity}".encode()).hexdigest()


def inbox_import_id(bucket: str, key: str, identity: str) -> str:
    """The import an upload starts; with a versioned bucket ``identity`` is the object's version id,
    so the uploader (the CLI) can follow its import without waiting for the skill record."""
    return "imp-" + inbox_dedupe_key(bucket, key, identity)[:20]


def inbox_publisher(mapping: InboxPrefix) -> Publisher:
    return Publisher(owner_id=mapping.owner_id, admin=False, actor=INBOX_ACTOR)


def refusal_reason(bucket: str, key: str, inbox_bucket: str) -> str:
    """Why an upload that maps to no owner may not be imported."""
    if bucket != inbox_bucket:
        return f"s3://{bucket}/{key} is not in the inbox bucket {inbox_bucket}; only inbox uploads are imported"
    return (f"the inbox folder of {key!r} is not mapped to an owner, so nobody may publish from it; an admin maps "
            "it (PUT /api/inbox/prefixes, or: skillharbor inbox map PREFIX --owner OWNER) and you upload again")  # fmt: skip

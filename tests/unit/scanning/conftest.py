"""Fixtures for the scanning tests.

The PyPA advisory snapshot is the one ``SKILLHARBOR_ADVISORY_DB`` names, else
the snapshot embedded in the project (what a fresh clone scans with).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from chalicelib.scanning.advisories import EMBEDDED_DATABASE, AdvisoryDatabase
from chalicelib.scanning.typosquats import PopularNames, load_popular_names
from chalicelib.settings import get_settings


def _snapshot_path() -> Path:
    configured = get_settings().advisory_db
    return Path(configured) if configured else EMBEDDED_DATABASE


@pytest.fixture(scope="session")
def advisory_db_path() -> Path:
    path = _snapshot_path()
    if not path.exists():
        pytest.fail(f"advisory database snapshot not found at {path}: set SKILLHARBOR_ADVISORY_DB")
    return path


@pytest.fixture(scope="session")
def snapshot_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("osv-cache")


@pytest.fixture(scope="session")
def snapshot_db(advisory_db_path: Path, snapshot_cache: Path) -> AdvisoryDatabase:
    return AdvisoryDatabase.load(advisory_db_path, snapshot_cache)


@pytest.fixture(scope="session")
def popular() -> PopularNames:
    return load_popular_names()


def osv_record(
    advisory_id: str,
    package: str,
    *,
    events: list[dict[str, str]] | None = None,
    versions: list[str] | None = None,
    aliases: list[str] | None = None,
    withdrawn: str | None = None,
    ecosystem: str = "PyPI",
) -> dict[str, Any]:
    affected: dict[str, Any] = {"package": {"name": package, "ecosystem": ecosystem}}
    if events is not None:
        affected["ranges"] = [{"type": "ECOSYSTEM", "events": events}]
    if versions is not None:
        affected["versions"] = versions
    record: dict[str, Any] = {
        "id": advisory_id,
        "summary": f"{advisory_id} in {package}",
        "aliases": aliases or [],
        "affected": [affected],
    }
    if withdrawn:
        record["withdrawn"] = withdrawn
    return record


def write_records(root: Path, records: list[dict[str, Any]], *, fmt: str = "yaml") -> Path:
    """One file per record under ``root/vulns/<package>/`` (like the PyPA db)."""
    for record in records:
        folder = root / "vulns" / record["affected"][0]["package"]["name"]
        folder.mkdir(parents=True, exist_ok=True)
        if fmt == "json":
            (folder / f"{record['id']}.json").write_text(json.dumps(record))
        else:
            (folder / f"{record['id']}.yaml").write_text(yaml.safe_dump(record))
    return root


class OsvFactory:
    """Builds small synthetic OSV records and databases for the tests."""

    record = staticmethod(osv_record)
    write = staticmethod(write_records)


@pytest.fixture
def osv() -> OsvFactory:
    return OsvFactory()

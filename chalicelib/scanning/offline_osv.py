"""The offline vulnerability service: pins checked against an OSV database on disk.

Public interface::

    OfflineOsvService(source=None, cache_dir=None, *, database=None, max_age_days=30)
        .audit(pins) -> AuditResult
        .database_status(now) -> dict     # the database's age (and a warning), or why it failed
    offline_service(source, cache_dir, max_age_days) -> OfflineOsvService   # one per process and database
    offline_service_for(settings) -> OfflineOsvService    # the embedded snapshot unless advisory_db names one
    advisory_database_status(settings=None, now=None) -> dict   # for GET /api/health
    all_unaudited(pins, reason) -> AuditResult

Fail closed: a database that is missing or corrupt leaves every pin
unaudited with the reason; a failed load is retried on the next audit.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from packaging.utils import canonicalize_name

from chalicelib.errors import ScanUnavailable
from chalicelib.scanning.advisories import EMBEDDED_DATABASE, AdvisoryDatabase
from chalicelib.scanning.models import AuditResult, PinLike, UnauditedPin, VulnerabilityFinding


def all_unaudited(pins: Sequence[PinLike], reason: str) -> AuditResult:
    return AuditResult(
        unaudited=tuple(UnauditedPin(package=canonicalize_name(p.name), version=p.version, reason=reason) for p in pins)
    )


class OfflineOsvService:
    """Checks pins against an :class:`AdvisoryDatabase`, loaded on first use.

    Keep one instance per process (e.g. module level in the Lambda) so the
    database is loaded once; a failed load is retried on the next audit.
    """

    name = "osv-offline"

    def __init__(
        self,
        source: Path | str | None = None,
        cache_dir: Path | str | None = None,
        *,
        database: AdvisoryDatabase | None = None,
        max_age_days: float = 30.0,
    ):
        self.max_age_days = max_age_days
        if source is None and database is None:
            self._missing = "no advisory database is configured (set SKILLHARBOR_ADVISORY_DB)"
        else:
            self._missing = None
        self._source = source
        self._cache_dir = cache_dir
        self._database = database
        self._lock = threading.Lock()

    @property
    def database(self) -> AdvisoryDatabase:
        """The loaded database; raises :class:`ScanUnavailable` when it cannot be."""
        if self._database is None:
            if self._missing:
                raise ScanUnavailable(self._missing)
            with self._lock:
                if self._database is None:
                    self._database = AdvisoryDatabase.load(self._source, self._cache_dir)  # type: ignore[arg-type]
        return self._database

    def database_status(self, now: datetime | None = None) -> dict[str, Any]:
        """What the database is and how old (``warning`` past ``max_age_days``), or why it cannot load."""
        try:
            database = self.database
        except ScanUnavailable as exc:
            return {"ok": False, "error": exc.message}
        described = database.describe()
        snapshot = described.get("snapshot") or {}
        return {
            "ok": True, "source": described["source"], "records": described["records"],
            "upstream": snapshot.get("upstream"), "commit": snapshot.get("commit"),
            **database.freshness(now or datetime.now(timezone.utc), self.max_age_days),
        }  # fmt: skip

    def audit(self, pins: Sequence[PinLike]) -> AuditResult:
        try:
            database = self.database
        except ScanUnavailable as exc:
            return all_unaudited(pins, exc.message)
        findings: list[VulnerabilityFinding] = []
        unaudited: list[UnauditedPin] = []
        for pin in pins:
            match = database.match(pin.name, pin.version)
            findings.extend(match.findings)
            if match.problem:
                unaudited.append(
                    UnauditedPin(package=canonicalize_name(pin.name), version=pin.version, reason=match.problem)
                )
        return AuditResult(findings=tuple(findings), unaudited=tuple(unaudited))


_offline_services: dict[tuple[str, str, float], OfflineOsvService] = {}
_offline_lock = threading.Lock()


def offline_service(source: Path | str, cache_dir: Path | str, max_age_days: float = 30.0) -> OfflineOsvService:
    """The process's one service for ``source`` (loaded on first use, then kept)."""
    key = (str(source), str(cache_dir), float(max_age_days))
    with _offline_lock:
        service = _offline_services.get(key)
        if service is None:
            service = _offline_services[key] = OfflineOsvService(source, cache_dir, max_age_days=max_age_days)
        return service


def _settings(settings: Any) -> Any:
    if settings is None:
        from chalicelib.settings import get_settings

        settings = get_settings()
    return settings


def offline_service_for(settings: Any = None) -> OfflineOsvService:
    settings = _settings(settings)
    source = getattr(settings, "advisory_db", None) or EMBEDDED_DATABASE
    max_age = float(getattr(settings, "advisory_db_max_age_days", 30.0))
    return offline_service(source, Path(settings.cache_dir) / "advisories", max_age)


def advisory_database_status(settings: Any = None, now: datetime | None = None) -> dict[str, Any]:
    """The offline database's source and age, with a warning when stale (``ok`` false: it cannot load)."""
    return offline_service_for(settings).database_status(now)

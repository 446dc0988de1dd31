"""The embedded advisory snapshot and `make advisories`: provenance, licence, age, refresh sources."""

from __future__ import annotations

import hashlib
import http.server
import io
import json
import re
import socket
import tarfile
import threading
import zipfile
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

from chalicelib.errors import ScanUnavailable
from chalicelib.packages.pins import Pin
from chalicelib.scanning import advisories, advisory_snapshot
from chalicelib.scanning.advisories import EMBEDDED_DATABASE, AdvisoryDatabase
from chalicelib.scanning.advisory_sources import INDEX_MEMBER, SNAPSHOT_MEMBER
from chalicelib.scanning.scanner import Scanner
from chalicelib.scanning.vulnerabilities import OfflineOsvService, make_vulnerability_service

DATA = EMBEDDED_DATABASE.parent


def members(archive: Path) -> dict[str, bytes]:
    with tarfile.open(archive, "r:*") as tar:
        return {m.name: tar.extractfile(m).read() for m in tar if m.isfile()}


def ids(db: AdvisoryDatabase, name: str, version: str) -> set[str]:
    return {f.id for f in db.match(name, version).findings}


# --- the shipped snapshot ------------------------------------------------------------


def test_embedded_snapshot_loads_from_its_own_index_without_parsing_yaml(monkeypatch):
    def no_yaml(data: bytes):
        raise AssertionError("YAML parsed: the bundled index was not used")

    monkeypatch.setattr(advisories, "_parse_yaml", no_yaml)
    db = AdvisoryDatabase.load(EMBEDDED_DATABASE)
    # after a change of INDEX_FORMAT: make advisories FROM=chalicelib/scanning/data/advisory-db.tar.xz
    assert db.loaded_from == "bundled index" and db.embedded
    assert db.record_count > 2000 and db.package_count > 600
    assert "PYSEC-2018-28" in ids(db, "requests", "2.19.0")
    assert db.snapshot["upstream"] == "https://github.com/pypa/advisory-database"
    assert re.fullmatch(r"[0-9a-f]{40}", db.snapshot["commit"])
    assert db.as_of == db.snapshot["as_of"]


def test_a_warm_start_of_the_snapshot_reads_its_cached_index_without_unpacking(tmp_path, monkeypatch):
    first = AdvisoryDatabase.load(EMBEDDED_DATABASE, tmp_path)
    assert first.loaded_from == "bundled index"

    def no_unpacking(*args):
        raise AssertionError("the archive was opened on a warm start")

    monkeypatch.setattr(advisories, "open_source", no_unpacking)
    warm = AdvisoryDatabase.load(EMBEDDED_DATABASE, tmp_path)
    assert warm.loaded_from == "cache" and warm.key == first.key
    assert warm.snapshot == first.snapshot and warm.as_of == first.as_of
    assert ids(warm, "requests", "2.19.0") == ids(first, "requests", "2.19.0")


def test_a_changed_archive_is_not_read_from_the_old_cache(tmp_path, osv):
    source = _pypa_like(tmp_path / "db", osv)
    archive, cache = tmp_path / "db.tar.xz", tmp_path / "cache"
    assert advisory_snapshot.main(["--from", str(source), "--output", str(archive)]) == 0
    assert ids(AdvisoryDatabase.load(archive, cache), "beta", "1.0") == {"PYSEC-2"}
    (source / "vulns" / "beta" / "PYSEC-2.yaml").unlink()
    assert advisory_snapshot.main(["--from", str(source), "--output", str(archive)]) == 0
    again = AdvisoryDatabase.load(archive, cache)
    assert again.loaded_from == "bundled index" and ids(again, "beta", "1.0") == set()


@pytest.mark.slow
def test_embedded_snapshot_compiles_to_the_index_it_carries(tmp_path):
    """The bundled index is what the records in the archive compile to (nothing stale or hand-made)."""
    content = members(EMBEDDED_DATABASE)
    stripped = tmp_path / "records-only.tar"
    with tarfile.open(stripped, "w") as tar:
        for name, data in content.items():
            if name != INDEX_MEMBER:
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    compiled = AdvisoryDatabase.load(stripped)
    assert compiled.loaded_from == "records"
    bundled = json.loads(content[INDEX_MEMBER])
    assert compiled._raw == bundled["packages"] and compiled.key == bundled["key"]
    assert compiled.as_of == bundled["as_of"]


def test_embedded_snapshot_keeps_its_licence_and_a_true_provenance_note():
    content = members(EMBEDDED_DATABASE)
    licence = content["LICENSE"].decode()
    assert licence.startswith("Attribution 4.0 International")  # CC-BY-4.0, as the PyPA database is
    assert (DATA / "advisory-db.LICENSE").read_text() == licence
    note = json.loads(content[SNAPSHOT_MEMBER])
    provenance = (DATA / "PROVENANCE.md").read_text()
    section = provenance.split(advisory_snapshot.SECTION_BEGIN)[1].split(advisory_snapshot.SECTION_END)[0]
    assert hashlib.sha256(EMBEDDED_DATABASE.read_bytes()).hexdigest() in section
    assert f"{EMBEDDED_DATABASE.stat().st_size} bytes" in section
    for field in ("commit", "as_of", "records", "upstream"):
        assert str(note[field]) in section, field
    assert "CC-BY-4.0" in provenance
    assert 300_000 < EMBEDDED_DATABASE.stat().st_size < 2_000_000  # compressed: about half a megabyte


def test_settings_without_a_database_scan_with_the_embedded_snapshot(monkeypatch, tmp_path):
    monkeypatch.delenv("SKILLHARBOR_ADVISORY_DB", raising=False)
    monkeypatch.setenv("SKILLHARBOR_CACHE_DIR", str(tmp_path))
    report = Scanner(make_vulnerability_service()).scan([Pin(name="requests", version="2.19.0", sha256="0" * 64, direct=True)])
    assert report.status == "blocked" and any("PYSEC-2018-28" in line for line in report.reasons)
    assert report.advisory_db["source"] == "embedded snapshot"


# --- age -------------------------------------------------------------------------------


def _dated_db(tmp_path: Path, osv, modified: str) -> AdvisoryDatabase:
    record = osv.record("D-1", "alpha", versions=["1.0"])
    record["modified"] = modified
    return AdvisoryDatabase.load(osv.write(tmp_path / "db", [record]))


def test_age_is_the_newest_records_and_warns_past_the_limit(tmp_path, osv):
    db = _dated_db(tmp_path, osv, "2026-10-01T12:00:00Z")
    fresh = db.freshness(datetime(2026, 10, 20, tzinfo=timezone.utc), 30)
    assert fresh == {"as_of": "2026-10-01T12:00:00Z", "age_days": 18, "warning": None}
    stale = db.freshness(datetime(2026, 12, 1, tzinfo=timezone.utc), 30)
    assert stale["age_days"] == 60
    assert "60 days old (newest record 2026-10-01)" in stale["warning"]
    assert "SKILLHARBOR_ADVISORY_DB" in stale["warning"] and str(tmp_path) not in stale["warning"]


def test_a_database_that_gives_no_date_says_so(tmp_path, osv):
    db = AdvisoryDatabase.load(osv.write(tmp_path / "db", [osv.record("D-1", "alpha", versions=["1.0"])]))
    assert db.as_of is None
    assert "says nowhere how recent" in db.freshness(datetime.now(timezone.utc), 30)["warning"]


def test_scan_report_gives_the_age_and_warns_when_stale(tmp_path, osv):
    db = _dated_db(tmp_path, osv, "2026-10-01T00:00:00Z")
    scanner = Scanner(OfflineOsvService(database=db, max_age_days=30))
    pins = [Pin(name="alpha", version="2.0", sha256="0" * 64, direct=True)]
    soon = scanner.scan(pins, now=datetime(2026, 10, 15, tzinfo=timezone.utc))
    assert soon.status == "passed" and soon.warnings == ()
    assert soon.advisory_db["age_days"] == 14 and soon.advisory_db["as_of"] == "2026-10-01T00:00:00Z"
    late = scanner.scan(pins, now=datetime(2026, 10, 1, tzinfo=timezone.utc) + timedelta(days=45))
    assert late.status == "passed"  # a stale database warns; it does not block
    assert len(late.warnings) == 1 and "45 days old" in late.warnings[0]
    assert late.to_dict()["advisory_db"]["warning"] == late.warnings[0]
    nothing = scanner.scan([], now=datetime(2026, 10, 1, tzinfo=timezone.utc) + timedelta(days=45))
    assert nothing.warnings == () and nothing.advisory_db is None  # no package looked up: its age says nothing


# --- make advisories -------------------------------------------------------------------------


def _pypa_like(root: Path, osv) -> Path:
    old = osv.record("PYSEC-1", "alpha", events=[{"introduced": "0"}, {"fixed": "2.0"}])
    old["modified"] = "2026-01-02T03:04:05Z"
    new = osv.record("PYSEC-2", "beta", versions=["1.0"])
    new["modified"] = "2026-03-04T05:06:07.5Z"
    osv.write(root, [old, new])
    (root / "LICENSE").write_text("Attribution 4.0 International\n(test copy)\n")
    (root / "README.md").write_text("# an advisory database\n")
    return root


def test_snapshot_from_a_directory_keeps_records_licence_and_provenance(tmp_path, osv, monkeypatch):
    source = _pypa_like(tmp_path / "advisory-database", osv)
    out = tmp_path / "out" / "db.tar.xz"
    code = advisory_snapshot.main(["--from", str(source), "--commit", "a" * 40, "--upstream", "https://example.org/db",
                                   "--output", str(out)])  # fmt: skip
    assert code == 0
    content = members(out)
    assert content["LICENSE"].startswith(b"Attribution 4.0 International")
    assert content["README.md"] == b"# an advisory database\n"
    assert content["vulns/alpha/PYSEC-1.yaml"] == (source / "vulns/alpha/PYSEC-1.yaml").read_bytes()  # verbatim
    note = json.loads(content[SNAPSHOT_MEMBER])
    assert note["commit"] == "a" * 40 and note["upstream"] == "https://example.org/db" and note["records"] == 2
    assert note["as_of"] == "2026-03-04T05:06:07.500000Z"

    def no_yaml(data: bytes):
        raise AssertionError("YAML parsed: the bundled index was not used")

    monkeypatch.setattr(advisories, "_parse_yaml", no_yaml)
    db = AdvisoryDatabase.load(out)
    assert db.loaded_from == "bundled index" and db.as_of == note["as_of"]
    assert ids(db, "alpha", "1.5") == {"PYSEC-1"} and ids(db, "beta", "1.0") == {"PYSEC-2"}


@pytest.mark.slow
def test_repacking_a_snapshot_keeps_its_provenance(tmp_path):
    out = tmp_path / "again.tar.xz"
    assert advisory_snapshot.main(["--from", str(EMBEDDED_DATABASE), "--output", str(out)]) == 0
    before, after = AdvisoryDatabase.load(EMBEDDED_DATABASE), AdvisoryDatabase.load(out)
    assert after.loaded_from == "bundled index" and after._raw == before._raw
    for field in ("upstream", "commit", "as_of", "licence", "records"):
        assert after.snapshot[field] == before.snapshot[field], field
    assert members(out)["LICENSE"] == members(EMBEDDED_DATABASE)["LICENSE"]


def test_an_index_that_does_not_match_the_records_is_ignored(tmp_path, osv):
    source = _pypa_like(tmp_path / "db", osv)
    out = tmp_path / "db.tar.xz"
    assert advisory_snapshot.main(["--from", str(source), "--output", str(out)]) == 0
    content = members(out)
    content["vulns/alpha/PYSEC-1.yaml"] = content["vulns/alpha/PYSEC-1.yaml"].replace(b"fixed: '2.0'", b"fixed: '3.0'")
    tampered = tmp_path / "tampered.tar"
    with tarfile.open(tampered, "w") as tar:
        for name, data in content.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    db = AdvisoryDatabase.load(tampered)
    assert db.loaded_from == "records"  # the stale index was not believed
    assert ids(db, "alpha", "2.5") == {"PYSEC-1"}


class _OneFile(http.server.BaseHTTPRequestHandler):
    payload = b""

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self.send_response(200)
        self.send_header("Content-Length", str(len(self.payload)))
        self.end_headers()
        self.wfile.write(self.payload)

    def log_message(self, *args) -> None:
        pass


def test_snapshot_from_a_downloaded_osv_style_zip(tmp_path, osv):
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:  # the OSV export's shape: flat JSON records
        for advisory_id, name in (("GHSA-aaaa-bbbb-cccc", "alpha"), ("MAL-2026-1", "evil-pkg")):
            record = osv.record(advisory_id, name, versions=["1.0"])
            record["modified"] = "2026-11-30T00:00:00Z"
            archive.writestr(f"{advisory_id}.json", json.dumps(record))
    handler = type("Handler", (_OneFile,), {"payload": buffer.getvalue()})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    licence = tmp_path / "LICENCE-NOTE"
    licence.write_text("records under their sources' licences\n")
    out = tmp_path / "osv.tar.xz"
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/PyPI/all.zip"
        assert advisory_snapshot.main(["--from", url, "--licence", str(licence), "--output", str(out)]) == 0
    finally:
        server.shutdown()
    db = AdvisoryDatabase.load(out)
    assert db.snapshot["made_from"] == url and db.snapshot["upstream"] == url
    assert ids(db, "evil-pkg", "1.0") == {"MAL-2026-1"} and db.as_of == "2026-11-30T00:00:00Z"


def test_an_unreachable_export_fails_with_what_to_do_instead(tmp_path, capsys):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    out = tmp_path / "db.tar.xz"
    assert advisory_snapshot.main(["--from", f"http://127.0.0.1:{port}/PyPI/all.zip", "--output", str(out)]) == 1
    message = capsys.readouterr().err
    assert f"cannot download http://127.0.0.1:{port}/PyPI/all.zip" in message
    assert "make advisories FROM=" in message
    assert not out.exists()


def test_a_corrupt_record_writes_nothing(tmp_path, osv, capsys):
    source = _pypa_like(tmp_path / "db", osv)
    (source / "vulns" / "alpha" / "BROKEN.yaml").write_text("id: [unclosed\n  - :")
    out = tmp_path / "db.tar.xz"
    assert advisory_snapshot.main(["--from", str(source), "--output", str(out)]) == 1
    assert "BROKEN.yaml" in capsys.readouterr().err and not out.exists()


def test_a_source_without_a_licence_is_refused(tmp_path, osv, capsys):
    source = osv.write(tmp_path / "db", [osv.record("X-1", "alpha", versions=["1.0"])])
    assert advisory_snapshot.main(["--from", str(source), "--output", str(tmp_path / "db.tar.xz")]) == 1
    assert "--licence" in capsys.readouterr().err


def test_a_damaged_archive_fails_closed(tmp_path):
    good = EMBEDDED_DATABASE.read_bytes()
    damaged = tmp_path / "db.tar.xz"
    damaged.write_bytes(good[: len(good) // 2])
    with pytest.raises(ScanUnavailable, match="cannot be read"):
        AdvisoryDatabase.load(damaged)

"""Offline OSV database: real snapshot cases, OSV range semantics, fail-closed loading, index cache."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from chalicelib.errors import ScanUnavailable
from chalicelib.scanning import advisories
from chalicelib.scanning.advisories import AdvisoryDatabase


def ids(db: AdvisoryDatabase, name: str, version: str) -> set[str]:
    return {f.id for f in db.match(name, version).findings}


# --- the PyPA snapshot ----------------------------------------------------------------


def test_requests_2_19_0_is_vulnerable_with_ids_and_fixed_version(snapshot_db):
    findings = {f.id: f for f in snapshot_db.match("requests", "2.19.0").findings}
    assert "PYSEC-2018-28" in findings
    finding = findings["PYSEC-2018-28"]
    assert "GHSA-x84v-xcm2-53pg" in finding.aliases
    assert "CVE-2018-18074" in finding.aliases
    assert finding.fixed_in == "2.20.0"
    assert finding.package == "requests" and finding.version == "2.19.0"
    assert "Authorization" in finding.summary


def test_current_requests_has_no_findings(snapshot_db):
    assert snapshot_db.match("requests", "2.32.4").findings == []


def test_names_are_matched_pep503_normalized(snapshot_db):
    assert ids(snapshot_db, "Requests", "2.19.0") == ids(snapshot_db, "requests", "2.19.0")


def test_fixed_in_is_the_lowest_fix_above_the_pin(snapshot_db):
    by_id = {f.id: f for f in snapshot_db.match("requests", "2.20.0").findings}
    assert "PYSEC-2018-28" not in by_id  # fixed in 2.20.0 itself
    assert by_id["PYSEC-2023-74"].fixed_in == "2.31.0"


def test_unknown_package_has_no_findings(snapshot_db):
    assert snapshot_db.match("definitely-not-a-package-xyz", "1.0").findings == []


def test_snapshot_counts_withdrawn_records(snapshot_db):
    assert snapshot_db.record_count > 2000
    assert snapshot_db.withdrawn_count >= 1


# --- OSV semantics on synthetic records ------------------------------------------------------


@pytest.fixture
def synthetic(tmp_path, osv) -> AdvisoryDatabase:
    root = osv.write(
        tmp_path / "db",
        [
            osv.record(
                "TEST-1",
                "alpha",
                events=[{"introduced": "1.0"}, {"fixed": "1.5"}, {"introduced": "2.0"}, {"fixed": "2.1.3"}],
            ),
            osv.record("TEST-2", "alpha", events=[{"introduced": "0"}, {"last_affected": "0.9"}]),
            osv.record("TEST-3", "beta_pkg", versions=["3.0", "3.0.1"], aliases=["CVE-2099-1"]),
            osv.record("TEST-4", "gamma", events=[{"introduced": "0"}]),  # never fixed
            osv.record(
                "TEST-5", "alpha", events=[{"introduced": "0"}, {"fixed": "9.0"}], withdrawn="2024-01-01T00:00:00Z"
            ),
            osv.record("TEST-6", "alpha", events=[{"introduced": "0"}, {"fixed": "9.0"}], ecosystem="npm"),
            osv.record(
                "TEST-7", "delta", events=[{"introduced": "1.0"}, {"fixed": "not-a-version"}], versions=["1.0", "1.1"]
            ),
            osv.record("TEST-8", "epsilon", events=[{"introduced": "1.0"}, {"fixed": "bogus!"}]),
        ],
    )
    return AdvisoryDatabase.load(root)


@pytest.mark.parametrize(
    ("version", "expected"),
    [
        ("0.5", {"TEST-2"}),
        ("0.9", {"TEST-2"}),  # last_affected is inclusive
        ("0.9.1", set()),
        ("1.0", {"TEST-1"}),  # introduced is inclusive
        ("1.4.9", {"TEST-1"}),
        ("1.5", set()),  # fixed is exclusive
        ("1.9", set()),
        ("2.0rc1", set()),  # a pre-release sorts before 2.0
        ("2.1.2", {"TEST-1"}),
        ("2.1.3", set()),
        ("10.0", set()),
    ],
)
def test_ecosystem_ranges(synthetic, version, expected):
    assert ids(synthetic, "alpha", version) == expected


def test_fixed_in_picks_the_fix_of_the_range_the_version_is_in(synthetic):
    assert synthetic.match("alpha", "1.2").findings[0].fixed_in == "1.5"
    assert synthetic.match("alpha", "2.0.5").findings[0].fixed_in == "2.1.3"
    assert synthetic.match("alpha", "0.1").findings[0].fixed_in is None  # last_affected: no fix known
    assert synthetic.match("gamma", "123.0").findings[0].fixed_in is None


def test_explicit_versions_list(synthetic):
    assert ids(synthetic, "Beta.Pkg", "3.0") == {"TEST-3"}
    assert ids(synthetic, "beta-pkg", "3.0.0") == {"TEST-3"}  # same PEP 440 version
    assert ids(synthetic, "beta-pkg", "3.0.2") == set()
    assert synthetic.match("beta-pkg", "3.0.1").findings[0].aliases == ("CVE-2099-1",)


def test_withdrawn_and_other_ecosystems_are_skipped(synthetic):
    assert ids(synthetic, "alpha", "5.0") == set()
    assert synthetic.withdrawn_count == 1


def test_invalid_range_version_defers_to_versions_list(synthetic):
    assert ids(synthetic, "delta", "1.1") == {"TEST-7"}
    assert ids(synthetic, "delta", "1.2") == set()


def test_invalid_fixed_version_without_list_stays_affected(synthetic):
    # the fix cannot be compared, so every version from 1.0 on counts as affected
    assert ids(synthetic, "epsilon", "7.0") == {"TEST-8"}
    assert ids(synthetic, "epsilon", "0.5") == set()


def test_invalid_pinned_version_is_a_problem_not_a_crash(synthetic):
    match = synthetic.match("alpha", "not a version")
    assert match.findings == []
    assert "not a valid PEP 440 version" in match.problem
    assert synthetic.match("nothing-known", "weird version").problem is None


def test_zip_and_json_input(tmp_path, osv):
    records = [osv.record("JSON-1", "alpha", events=[{"introduced": "0"}, {"fixed": "2.0"}])]
    folder = osv.write(tmp_path / "json-db", records, fmt="json")
    assert ids(AdvisoryDatabase.load(folder), "alpha", "1.0") == {"JSON-1"}

    archive = tmp_path / "db.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("PYSEC-1.json", json.dumps(records[0]))
        zf.writestr(
            "nested/OTHER-1.yaml",
            "id: OTHER-1\naffected:\n- package: {name: beta, ecosystem: PyPI}\n  versions: ['1.0']\n",
        )
        zf.writestr("README.md", "not a record")
    db = AdvisoryDatabase.load(archive)
    assert ids(db, "alpha", "1.9") == {"JSON-1"}
    assert ids(db, "beta", "1.0") == {"OTHER-1"}
    assert db.record_count == 2


def test_unquoted_yaml_versions_stay_strings(tmp_path):
    # `fixed: 1.10` must not become the float 1.1
    folder = tmp_path / "db"
    folder.mkdir()
    (folder / "X-1.yaml").write_text(
        "id: X-1\naffected:\n- package: {name: alpha, ecosystem: PyPI}\n"
        "  ranges:\n  - type: ECOSYSTEM\n    events:\n    - introduced: 0\n    - fixed: 1.10\n"
    )
    db = AdvisoryDatabase.load(folder)
    assert ids(db, "alpha", "1.5") == {"X-1"}
    assert db.match("alpha", "1.5").findings[0].fixed_in == "1.10"


# --- fail closed --------------------------------------------------------------------


def test_missing_database_raises_scan_unavailable(tmp_path):
    with pytest.raises(ScanUnavailable, match="does not exist"):
        AdvisoryDatabase.load(tmp_path / "nowhere")


def test_empty_directory_raises_scan_unavailable(tmp_path):
    (tmp_path / "README.md").write_text("hello")
    with pytest.raises(ScanUnavailable, match="no OSV records"):
        AdvisoryDatabase.load(tmp_path)


def test_corrupt_record_raises_scan_unavailable_naming_the_file(tmp_path, osv):
    root = osv.write(tmp_path / "db", [osv.record("OK-1", "alpha", versions=["1.0"])])
    (root / "vulns" / "alpha" / "BROKEN-1.yaml").write_text("id: [unclosed\n  - :")
    with pytest.raises(ScanUnavailable, match="BROKEN-1.yaml"):
        AdvisoryDatabase.load(root)


def test_record_without_id_raises_scan_unavailable(tmp_path):
    (tmp_path / "X.json").write_text(json.dumps({"affected": []}))
    with pytest.raises(ScanUnavailable, match="not a valid OSV record"):
        AdvisoryDatabase.load(tmp_path)


def test_corrupt_zip_raises_scan_unavailable(tmp_path):
    bad = tmp_path / "db.zip"
    bad.write_bytes(b"PK\x03\x04 this is not really a zip")
    with pytest.raises(ScanUnavailable):
        AdvisoryDatabase.load(bad)


def test_scan_unavailable_has_its_reason(tmp_path):
    with pytest.raises(ScanUnavailable) as info:
        AdvisoryDatabase.load(tmp_path / "nowhere")
    assert info.value.reason == "scan_unavailable"


# --- compiled index cache ---------------------------------------------------------------


def test_warm_start_reuses_the_index_without_parsing_yaml(tmp_path, osv, monkeypatch):
    root = osv.write(tmp_path / "db", [osv.record("C-1", "alpha", events=[{"introduced": "0"}, {"fixed": "2.0"}])])
    cache = tmp_path / "cache"
    cold = AdvisoryDatabase.load(root, cache)
    assert not cold.loaded_from_cache

    def no_yaml(data: bytes):
        raise AssertionError("YAML parsed on a warm start")

    monkeypatch.setattr(advisories, "_parse_yaml", no_yaml)
    warm = AdvisoryDatabase.load(root, cache)
    assert warm.loaded_from_cache
    assert warm.key == cold.key
    assert ids(warm, "alpha", "1.0") == {"C-1"}


def test_changed_database_gets_a_new_index(tmp_path, osv):
    root = osv.write(tmp_path / "db", [osv.record("C-1", "alpha", versions=["1.0"])])
    cache = tmp_path / "cache"
    first = AdvisoryDatabase.load(root, cache)
    osv.write(root, [osv.record("C-2", "alpha", versions=["1.0"])])
    second = AdvisoryDatabase.load(root, cache)
    assert second.key != first.key
    assert not second.loaded_from_cache
    assert ids(second, "alpha", "1.0") == {"C-1", "C-2"}


def test_corrupt_index_is_rebuilt(tmp_path, osv):
    root = osv.write(tmp_path / "db", [osv.record("C-1", "alpha", versions=["1.0"])])
    cache = tmp_path / "cache"
    AdvisoryDatabase.load(root, cache)
    (index_file,) = list(cache.iterdir())
    index_file.write_text("{ truncated")
    db = AdvisoryDatabase.load(root, cache)
    assert not db.loaded_from_cache
    assert ids(db, "alpha", "1.0") == {"C-1"}
    assert json.loads(index_file.read_text())["key"] == db.key


def test_unwritable_cache_only_costs_a_recompile(tmp_path, osv):
    root = osv.write(tmp_path / "db", [osv.record("C-1", "alpha", versions=["1.0"])])
    blocker = tmp_path / "cache-is-a-file"
    blocker.write_text("x")
    db = AdvisoryDatabase.load(root, blocker / "sub")
    assert ids(db, "alpha", "1.0") == {"C-1"}


def test_hidden_files_are_not_records(tmp_path, osv):
    root = osv.write(tmp_path / "db", [osv.record("C-1", "alpha", versions=["1.0"])])
    (root / "vulns" / ".id-allocator").write_text("garbage: [")
    (root / ".github").mkdir()
    (root / ".github" / "workflow.yaml").write_text("on: push\njobs: {}\n")
    assert AdvisoryDatabase.load(root).record_count == 1


def test_snapshot_warm_start_uses_the_index(advisory_db_path: Path, snapshot_db, snapshot_cache: Path):
    warm = AdvisoryDatabase.load(advisory_db_path, snapshot_cache)
    # a directory is compiled once, the embedded archive's index is read from it once: then both from the cache
    assert warm.loaded_from == "cache"
    assert warm.key == snapshot_db.key
    assert ids(warm, "requests", "2.19.0") == ids(snapshot_db, "requests", "2.19.0")

"""The labelled skill corpus (tests/corpus) is sound: every case is a skill folder with a valid label or
source entry, payloads point only at documentation hosts, and local copies of real skills match their
pinned commits. The scanner benchmark trusts these labels, so a broken one would skew its figures."""

from __future__ import annotations

import importlib.util
import ipaddress
import re
import sys
from collections import Counter
from pathlib import Path

import pytest

_CORPUS_PY = Path(__file__).resolve().parents[1] / "corpus" / "corpus.py"
_spec = importlib.util.spec_from_file_location("skill_corpus", _CORPUS_PY)
corpus = importlib.util.module_from_spec(_spec)
sys.modules["skill_corpus"] = corpus  # dataclasses look their module up while the class is built
_spec.loader.exec_module(corpus)

MALICIOUS = corpus.malicious_cases()
SOURCES = corpus.sources()

# Payload hosts must be inert: documentation names and ranges (RFC 2606, RFC 5737), or the few real
# services whose own URL shape is the technique (webhooks, bot APIs, paste sites) with made-up ids.
_DOC_SUFFIXES = (".example", "example.com", "example.net", "example.org")
_REAL_SINKS = {
    "discord.com", "api.telegram.org", "pastebin.com", "api.openai.com", "wttr.in",
    "api.open-meteo.com", "geocoding-api.open-meteo.com", "github.com",
}
_TEST_NETS = [ipaddress.ip_network(n) for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24", "127.0.0.0/8")]
_URL_HOST = re.compile(r"\b(?:https?|tcp)://([A-Za-z0-9.-]+)")
_IPV4 = re.compile(r"(?<![\d.])(\d{1,3}(?:\.\d{1,3}){3})(?![\d.])")


def _frontmatter(text: str) -> str | None:
    match = re.match(r"^---[ \t]*\r?\n(.*?)\r?\n---[ \t]*\r?\n", text, re.S)
    return match.group(1) if match else None


def _text_files(folder: Path):
    for path in sorted(folder.rglob("*")):
        if path.is_file() and path.name != "label.json":
            data = path.read_bytes()
            if b"\0" not in data:
                yield path, data.decode("utf-8", errors="replace")


def test_the_malicious_corpus_is_large_and_spread_over_every_category():
    per_category = Counter(case.path.parent.name for case in MALICIOUS)
    assert len(MALICIOUS) >= 60
    assert set(per_category) == set(corpus.CATEGORIES), per_category
    assert min(per_category.values()) >= 5, per_category


@pytest.mark.parametrize("case", MALICIOUS, ids=lambda c: c.id)
def test_each_malicious_case_is_a_skill_with_a_sound_label(case):
    assert case.skill_md.is_file(), f"{case.id} has no SKILL.md"
    front = _frontmatter(case.skill_md.read_text(encoding="utf-8"))
    assert front is not None and re.search(r"^name:", front, re.M) and re.search(r"^description:", front, re.M), (
        f"{case.id}: SKILL.md needs frontmatter with name and description"
    )
    assert corpus.label_problems(case) == [], case.id


@pytest.mark.parametrize("case", MALICIOUS, ids=lambda c: c.id)
def test_malicious_payloads_point_only_at_documentation_hosts(case):
    for path, text in _text_files(case.path):
        for host in _URL_HOST.findall(text):
            host = host.lower().rstrip(".")
            if _IPV4.fullmatch(host):
                continue  # checked below with every other address literal
            assert host.endswith(_DOC_SUFFIXES) or host in _REAL_SINKS, f"{path}: real host {host}"
        for literal in _IPV4.findall(text):
            try:
                address = ipaddress.ip_address(literal)
            except ValueError:
                continue  # a version number such as 1.12.23.4, not an address
            assert any(address in net for net in _TEST_NETS), f"{path}: {literal} is not a TEST-NET address"


def test_no_corpus_file_looks_like_a_test_module_to_pytest():
    committed = [corpus.MALICIOUS_DIR, corpus.AUTHORED_DIR]
    offenders = [
        p for root in committed for p in root.rglob("*.py")
        if p.name == "conftest.py" or p.name.startswith("test_") or p.name.endswith("_test.py")
    ]
    assert offenders == []


def test_sources_cover_enough_benign_skills_from_enough_repositories():
    kinds = Counter(entry["kind"] for entry in SOURCES)
    repos = {entry["repo"] for entry in SOURCES if entry["kind"] == "real"}
    assert set(kinds) <= set(corpus.BENIGN_KINDS), kinds
    assert kinds["real"] >= 60 and kinds["authored"] >= 30, kinds
    assert len(repos) >= 5, repos
    assert len({entry["id"] for entry in SOURCES}) == len(SOURCES), "duplicate ids in SOURCES.json"


@pytest.mark.parametrize("entry", SOURCES, ids=lambda e: e["id"])
def test_each_source_entry_says_where_it_came_from_and_what_it_does(entry):
    assert entry["description"].strip() and entry["licence"].strip()
    if entry["kind"] == "authored":
        folder = corpus.AUTHORED_DIR / entry["id"].split("/", 1)[1]
        assert (folder / "SKILL.md").is_file(), f"{entry['id']}: no SKILL.md in {folder}"
        assert entry["hard_negative_for"] and set(entry["hard_negative_for"]) <= set(corpus.CATEGORIES)
        return
    assert re.fullmatch(r"[\w.-]+/[\w.-]+", entry["repo"]) and entry["path"]
    assert re.fullmatch(r"[0-9a-f]{40}", entry["commit"]), entry["commit"]
    assert re.fullmatch(r"\d{4}-\d{2}-\d{2}", entry["fetched"])
    if entry["kind"] == "reference-only":
        assert entry["redistributable"] is False
        assert not entry.get("files"), "a reference-only skill lists no copied files"
    else:
        assert entry["redistributable"] is True
        assert "SKILL.md" in {f["path"] for f in entry["files"]}
        assert all(re.fullmatch(r"[0-9a-f]{64}", f["sha256"]) for f in entry["files"])


def test_every_authored_benign_folder_has_a_source_entry():
    listed = {entry["id"].split("/", 1)[1] for entry in SOURCES if entry["kind"] == "authored"}
    on_disk = {p.name for p in corpus.AUTHORED_DIR.iterdir() if p.is_dir()}
    assert on_disk == listed


def test_local_copies_of_real_skills_match_their_pinned_commits():
    real_dir = corpus.real_skills_dir()
    if real_dir is None:
        pytest.skip(f"no local copy of the real skills (set {corpus.REAL_DIR_ENV}; see tests/corpus/README.md)")
    checked = 0
    for entry in SOURCES:
        folder = real_dir / entry["id"]
        if entry["kind"] == "real" and folder.is_dir():
            assert corpus.real_copy_problems(entry, folder) == [], entry["id"]
            checked += 1
        if entry["kind"] == "reference-only":
            assert not folder.exists(), f"{entry['id']} is not redistributable and must not be copied"
    assert checked > 0, f"{real_dir} holds none of the real skills listed in SOURCES.json"


def test_the_loader_yields_benign_cases_with_their_sources():
    benign = corpus.benign_cases(include_real=False)
    assert len(benign) == sum(1 for entry in SOURCES if entry["kind"] == "authored")
    assert all(not case.malicious and case.source and case.skill_md.is_file() for case in benign)

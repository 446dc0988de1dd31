"""Typosquat detection against the shipped popular-names list."""

from __future__ import annotations

import pytest

from chalicelib.scanning.typosquats import DEFAULT_POPULAR_FILE, PopularNames


@pytest.mark.parametrize(
    ("name", "target", "kind"),
    [
        ("reqeusts", "requests", "transposition"),
        ("python-dateutils", "python-dateutil", "insertion"),
        ("urlib3", "urllib3", "deletion"),
        ("requesrs", "requests", "substitution"),
        ("pythondateutil", "python-dateutil", "separator"),
        ("url-lib3", "urllib3", "separator"),
        ("djang0", "django", "homoglyph"),
        ("rnatplotlib", "matplotlib", "homoglyph"),
        ("numpу", "numpy", "homoglyph"),  # Cyrillic у
        ("reqùests", "requests", "homoglyph"),  # accent
    ],
)
def test_known_typosquats_are_flagged(popular, name, target, kind):
    match = popular.check(name)
    assert match is not None, name
    assert (match.target, match.kind) == (target, kind)
    assert match.target_rank == popular.rank(target)


@pytest.mark.parametrize("name", ["requests", "Requests", "python_dateutil", "Python.Dateutil", "urllib3", "attrs"])
def test_popular_names_and_their_spellings_are_not_flagged(popular, name):
    assert popular.check(name) is None


@pytest.mark.parametrize("name", ["skillharbor-weather-tools", "my-own-skill-lib", "zzqxv", "ab"])
def test_unrelated_names_are_not_flagged(popular, name):
    assert popular.check(name) is None


def test_most_popular_candidate_is_reported():
    names = PopularNames([(1, "boto3"), (50, "boto2"), (900, "botox")])
    match = names.check("boto4")
    assert (match.target, match.target_rank) == ("boto3", 1)


def test_short_names_only_match_by_separator_or_homoglyph():
    names = PopularNames([(1, "six"), (2, "a-b")])
    assert names.check("sax") is None  # one edit, but too short to mean anything
    assert names.check("ab").kind == "separator"
    assert names.check("s1x").kind == "homoglyph"


def test_no_false_positives_over_the_popular_list(popular):
    flagged = [name for name in popular.names() if popular.check(name)]
    assert flagged == []
    assert len(popular) > 14000


def test_look_alikes_inside_the_popular_list_are_measured(popular):
    # informative: popular names that sit one edit/separator/homoglyph from a more popular one
    look_alikes = popular.look_alikes()
    assert 0 < len(look_alikes) < len(popular) // 10
    assert all(m.target_rank < popular.rank(m.name) for m in look_alikes)


def test_list_errors_name_the_line(tmp_path):
    bad = tmp_path / "popular.csv"
    bad.write_text("rank,name\n1,requests\nnot-a-rank,foo\n")
    with pytest.raises(ValueError, match="line 3"):
        PopularNames.load(bad)
    with pytest.raises(ValueError, match="cannot read"):
        PopularNames.load(tmp_path / "missing.csv")


def test_shipped_list_has_provenance():
    provenance = (DEFAULT_POPULAR_FILE.parent / "PROVENANCE.md").read_text()
    assert DEFAULT_POPULAR_FILE.name in provenance and "2026" in provenance

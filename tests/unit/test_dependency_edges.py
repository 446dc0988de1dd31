"""dependency_edges: the SBOM graph from pip's installation report."""

from __future__ import annotations

from chalicelib.packages.pins import TargetPlatform
from chalicelib.packages.resolver import dependency_edges, target_marker_environment

ENV = target_marker_environment(TargetPlatform())


def _item(name: str, requires: list[str], extras: list[str] | None = None) -> dict:
    item = {"metadata": {"name": name, "version": "1.0", "requires_dist": requires}}
    if extras:
        item["requested_extras"] = extras
    return item


def test_edges_follow_markers_and_requested_extras() -> None:
    report = {"install": [
        _item("Top_Pkg", ["middle>=1", "windows-only; sys_platform == 'win32'", "fancy; extra == 'fancy'",
                          "old-backport; python_version < '3.8'"], extras=["fancy"]),
        _item("middle", ["leaf", "rich-extra; extra == 'rich'"]),
        _item("fancy", ["middle[rich]"]),
        _item("leaf", []),
        _item("rich-extra", []),
    ]}  # fmt: skip
    edges = dependency_edges(report, ENV)
    assert edges == {
        "top-pkg": {"middle", "fancy"},  # windows-only and the py<3.8 backport are not installed (and false here)
        "middle": {"leaf", "rich-extra"},  # 'rich' is asked of middle by fancy: that extra's edge counts
        "fancy": {"middle"},
        "leaf": set(),
        "rich-extra": set(),
    }


def test_an_extra_nobody_asked_for_draws_no_edge() -> None:
    report = {"install": [_item("a", ["b; extra == 'x'"]), _item("b", [])]}
    assert dependency_edges(report, ENV) == {"a": set(), "b": set()}


def test_what_a_chosen_extra_brings_in_counts_as_direct() -> None:
    """requests[socks] adds PySocks: checked like a package the skill named (issue 11, low item)."""
    from chalicelib.packages.resolver import extra_dependencies

    report = {"install": [
        _item("requests", ["urllib3<3", "PySocks!=1.5.7; extra == 'socks'", "chardet; extra == 'use-chardet'"], extras=["socks"]),
        _item("urllib3", ["brotli; extra == 'brotli'"]),
        _item("pysocks", []),
        _item("pkg", ["pkg[excel]; extra == 'all'", "openpyxl; extra == 'excel'", "numpy"], extras=["all"]),
        _item("openpyxl", ["et-xmlfile"]),
        _item("et-xmlfile", []),
        _item("numpy", []),
    ]}  # fmt: skip
    found = extra_dependencies(report, {"requests": {"socks"}, "pkg": {"all"}, "urllib3": set()}, ENV)
    # an extra that turns on another extra of its own package counts with it; what those need is transitive
    assert found == {"pysocks": "requests[socks]", "openpyxl": "pkg[excel]"}

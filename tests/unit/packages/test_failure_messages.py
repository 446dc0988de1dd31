"""One line from pip's failure output and the index's file list (issue 19's numpy==1.21.0, and its relatives)."""

from __future__ import annotations

from packaging.specifiers import SpecifierSet

from chalicelib.packages.failures import explain
from chalicelib.packages.index import IndexFile, IndexUnavailable, explain_unavailable, parse_project_page
from chalicelib.packages.pins import TargetPlatform

TARGET = TargetPlatform()
NUMPY = [
    IndexFile("numpy-1.21.0-cp39-cp39-manylinux_2_12_x86_64.manylinux2010_x86_64.whl", ">=3.7"),
    IndexFile("numpy-1.21.0.zip", ">=3.7"),
    IndexFile("numpy-1.21.6-cp310-cp310-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", ">=3.7,<3.11"),
    IndexFile("numpy-1.23.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", ">=3.12"),  # wrong Requires-Python
    IndexFile("numpy-1.23.1-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", ">=3.8", yanked=True),
    IndexFile("numpy-1.23.2-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", ">=3.8"),
    IndexFile("numpy-1.23.2-cp311-cp311-win_amd64.whl", ">=3.8"),
    IndexFile("numpy-2.0.0rc1-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", ">=3.9"),
    IndexFile("numpy-2.0.0-cp311-cp311-musllinux_1_1_x86_64.whl", ">=3.9"),
    IndexFile("numpy-2.0.0-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", ">=3.9"),
]


class FakeIndex:
    def __init__(self, files: list[IndexFile] | None = None, fail: bool = False):
        self._files, self._fail = files, fail

    def files(self, project: str) -> list[IndexFile] | None:
        if self._fail:
            raise IndexUnavailable("down")
        return self._files


def test_an_exact_pin_without_a_wheel_names_the_oldest_release_that_has_one() -> None:
    line = explain_unavailable("NumPy", SpecifierSet("==1.21.0"), NUMPY, TARGET)
    assert line == "numpy 1.21.0 has no wheel for CPython 3.11 on manylinux_2_36_x86_64; the oldest release that has one is 1.23.2"


def test_a_range_without_a_wheel_names_the_newest_match_too() -> None:
    line = explain_unavailable("numpy", SpecifierSet("<1.23"), NUMPY, TARGET)
    assert line == ("no release of numpy<1.23 has a wheel for CPython 3.11 on manylinux_2_36_x86_64 (newest matching: 1.21.6); "
                    "the oldest release that has one is 1.23.2")  # fmt: skip


def test_no_matching_release_and_no_project_are_said_plainly() -> None:
    assert explain_unavailable("numpy", SpecifierSet("==9.9"), NUMPY, TARGET) == "no release of numpy matches ==9.9; the newest is 2.0.0"
    assert explain_unavailable("nump", SpecifierSet(""), None, TARGET) == "the package index has no project named nump"
    only_sources = [IndexFile("oldlib-1.0.tar.gz")]
    assert explain_unavailable("oldlib", SpecifierSet(""), only_sources, TARGET) == (
        "oldlib 1.0 has no wheel for CPython 3.11 on manylinux_2_36_x86_64, and no release of oldlib has one "
        "(only source distributions, which are never built)"
    )
    assert explain_unavailable("numpy", SpecifierSet(">=2"), NUMPY, TARGET) is None  # a wheel exists: not this


def test_pips_no_match_output_becomes_that_line() -> None:
    stderr = ("ERROR: Could not find a version that satisfies the requirement numpy==1.21.0 (from versions: 1.23.2, 2.0.0)\n"
              "ERROR: No matching distribution found for numpy==1.21.0\n")  # fmt: skip
    explained = explain(stderr, TARGET, FakeIndex(NUMPY))
    assert explained.summary.startswith("numpy 1.21.0 has no wheel for CPython 3.11")
    assert explained.details == {"requirement": "numpy==1.21.0"} and not explained.transient
    assert explain(stderr, TARGET, FakeIndex(fail=True)).summary == (
        "pip found no usable release of numpy==1.21.0 for CPython 3.11 on manylinux_2_36_x86_64"
    )


def test_a_transitive_requirement_says_who_needs_it() -> None:
    stderr = "ERROR: Could not find a version that satisfies the requirement numpy<1.22 (from oldpandas==1.0) (from versions: 2.0.0)\n"
    assert explain(stderr, TARGET, FakeIndex(NUMPY)).summary.endswith("(needed by oldpandas==1.0)")


def test_a_conflict_lists_its_causes() -> None:
    output = ("ERROR: Cannot install requests==2.31.0 and urllib3==1.20 because these package versions have conflicting dependencies.\n"
              "The conflict is caused by:\n    The user requested urllib3==1.20\n"
              "    requests 2.31.0 depends on urllib3<3 and >=1.21.1\n\nTo fix this you could try to:\n"
              "ERROR: ResolutionImpossible: for help visit https://pip.pypa.io/\n")  # fmt: skip
    explained = explain(output, TARGET, FakeIndex(NUMPY))
    assert explained.summary == ("the requirements conflict on CPython 3.11 on manylinux_2_36_x86_64: The user requested "
                                 "urllib3==1.20; requests 2.31.0 depends on urllib3<3 and >=1.21.1")  # fmt: skip


def test_unrecognised_output_gives_a_generic_line_and_no_pip_text() -> None:
    explained = explain("Traceback (most recent call last):\n  boom\n", TARGET, FakeIndex(NUMPY))
    assert explained.summary == "the requirements cannot be resolved for CPython 3.11 on manylinux_2_36_x86_64"


def test_project_pages_are_read_as_json_and_as_html() -> None:
    json_page = b'{"files": [{"filename": "a-1.0-py3-none-any.whl", "requires-python": ">=3.8", "yanked": "bad"}]}'
    assert parse_project_page(json_page, "application/vnd.pypi.simple.v1+json") == [IndexFile("a-1.0-py3-none-any.whl", ">=3.8", True)]
    html_page = b'<a href="/f/a-1.0.tar.gz#sha256=00" data-requires-python="&gt;=3.8">a-1.0.tar.gz</a><a href="x" data-yanked>a-0.9.zip</a>'
    assert parse_project_page(html_page, "text/html") == [IndexFile("a-1.0.tar.gz", ">=3.8"), IndexFile("a-0.9.zip", None, True)]

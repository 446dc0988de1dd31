"""Typosquat detection against a list of popular PyPI project names.

Public interface::

    popular = PopularNames.load(path=None)      # default: data/top-pypi-packages.csv
    load_popular_names(path=None) -> PopularNames   # same, cached per path
    popular.check(name) -> TyposquatMatch | None
    popular.rank(name) -> int | None;  name in popular;  len(popular)
    popular.look_alikes() -> list[TyposquatMatch]   # popular names resembling a MORE popular one

A name that is itself popular is never flagged. Any other name is flagged
when, compared with a popular name, it is:

- ``separator``: equal once ``-``, ``_`` and ``.`` are removed
  (``pythondateutil``); names that differ only in separators or case are the
  same project under PEP 503 and are not compared at all;
- ``homoglyph``: equal once look-alike characters are folded (``0``/``o``,
  ``1``/``l``/``i``/``|``, ``rn``/``m``, ``vv``/``w``, accents, Cyrillic and
  Greek letters that look Latin);
- one ``insertion``, ``deletion``, ``substitution`` or adjacent
  ``transposition`` away (Damerau, restricted), for names of at least
  ``MIN_EDIT_LENGTH`` characters: shorter names sit one edit from too many
  unrelated projects.

When several popular names qualify, the most popular one is reported.
Lookups use a precomputed deletion-neighbourhood index (symmetric delete), so
a check costs a few dictionary lookups instead of 15,000 comparisons.
"""

from __future__ import annotations

import csv
import functools
import unicodedata
from collections.abc import Iterable
from pathlib import Path

from packaging.utils import canonicalize_name

from chalicelib.scanning.models import TyposquatKind, TyposquatMatch

DATA_DIR = Path(__file__).resolve().parent / "data"
DEFAULT_POPULAR_FILE = DATA_DIR / "top-pypi-packages.csv"
#: edit-based rules apply only to names (candidate and target) this long or longer
MIN_EDIT_LENGTH = 5  # 4-letter names (catt/cart) sit one edit from too many real, unrelated projects

_SEPARATORS = str.maketrans("", "", "-_.")
# Latin look-alikes of common Cyrillic and Greek letters, and ASCII confusions.
_CONFUSABLES = str.maketrans(
    {
        "а": "a", "в": "b", "с": "c", "ԁ": "d", "е": "e", "ё": "e", "һ": "h", "і": "l", "ї": "l",
        "ј": "j", "к": "k", "м": "m", "н": "h", "о": "o", "р": "p", "ԛ": "q", "ѕ": "s", "т": "t",
        "у": "y", "х": "x", "ԝ": "w", "ɡ": "g", "ı": "l", "ł": "l",
        "α": "a", "β": "b", "ε": "e", "η": "n", "ι": "l", "κ": "k", "ν": "v", "ο": "o", "ρ": "p",
        "τ": "t", "υ": "u", "χ": "x", "ω": "w",
        "0": "o", "1": "l", "i": "l", "|": "l", "!": "l",
    }
)  # fmt: skip
_MULTI_CONFUSABLES = (("rn", "m"), ("vv", "w"))


def _fold(name: str) -> str:
    """Separator-free, look-alike-folded skeleton of a name."""
    text = unicodedata.normalize("NFKD", name.lower())
    text = "".join(ch for ch in text if not unicodedata.combining(ch))
    text = text.translate(_CONFUSABLES).translate(_SEPARATORS)
    for pair, single in _MULTI_CONFUSABLES:
        text = text.replace(pair, single)
    return text


def _canonical(name: str) -> str:
    return canonicalize_name(unicodedata.normalize("NFKC", name.strip()))


def _deletions(word: str) -> set[str]:
    return {word[:i] + word[i + 1 :] for i in range(len(word))}


def _one_edit_kind(candidate: str, target: str) -> TyposquatKind | None:
    """How ``candidate`` is one edit away from ``target``, or None."""
    lc, lt = len(candidate), len(target)
    if candidate == target or abs(lc - lt) > 1:
        return None
    if lc == lt:
        diffs = [i for i in range(lc) if candidate[i] != target[i]]
        if len(diffs) == 1:
            return "substitution"
        if (
            len(diffs) == 2
            and diffs[1] == diffs[0] + 1
            and candidate[diffs[0]] == target[diffs[1]]
            and candidate[diffs[1]] == target[diffs[0]]
        ):
            return "transposition"
        return None
    longer, shorter = (candidate, target) if lc > lt else (target, candidate)
    i = 0
    while i < len(shorter) and longer[i] == shorter[i]:
        i += 1
    if longer[i + 1 :] != shorter[i:]:
        return None
    return "insertion" if lc > lt else "deletion"


class PopularNames:
    """Ranked popular names with the indexes that make checks cheap."""

    def __init__(self, ranked: Iterable[tuple[int, str]]):
        self._rank: dict[str, int] = {}
        for rank, name in ranked:
            canonical = _canonical(name)
            if canonical not in self._rank or rank < self._rank[canonical]:
                self._rank[canonical] = rank
        if not self._rank:
            raise ValueError("the popular names list is empty")
        self._names = sorted(self._rank, key=self._rank.__getitem__)
        self._by_fold: dict[str, list[str]] = {}
        self._by_deletion: dict[str, list[str]] = {}
        for name in self._names:  # most popular first, so lists stay rank-ordered
            self._by_fold.setdefault(_fold(name), []).append(name)
            if len(name) >= MIN_EDIT_LENGTH:
                self._index_deletions(name)

    def _index_deletions(self, name: str) -> None:
        index = self._by_deletion
        index.setdefault(name, []).append(name)
        previous = None
        for i in range(len(name)):
            variant = name[:i] + name[i + 1 :]
            if variant == previous:  # deleting either letter of a doubled pair gives the same text
                continue
            previous = variant
            bucket = index.get(variant)
            if bucket is None:
                index[variant] = [name]
            else:
                bucket.append(name)

    @classmethod
    def load(cls, path: Path | str | None = None) -> PopularNames:
        """Read a ``rank,name`` CSV (header optional); errors name the line."""
        path = Path(path) if path else DEFAULT_POPULAR_FILE
        ranked: list[tuple[int, str]] = []
        try:
            with path.open(newline="", encoding="utf-8") as handle:
                for line_no, row in enumerate(csv.reader(handle), start=1):
                    if not row or (line_no == 1 and row[0].strip().lower() == "rank"):
                        continue
                    if len(row) < 2 or not row[0].strip().isdigit() or not row[1].strip():
                        raise ValueError(f"{path}: line {line_no} is not 'rank,name': {','.join(row)!r}")
                    ranked.append((int(row[0]), row[1].strip()))
        except OSError as exc:
            raise ValueError(f"cannot read popular names list {path}: {exc}") from exc
        return cls(ranked)

    def __len__(self) -> int:
        return len(self._rank)

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and _canonical(name) in self._rank

    def rank(self, name: str) -> int | None:
        return self._rank.get(_canonical(name))

    def names(self) -> list[str]:
        """Popular names, most popular first."""
        return list(self._names)

    def _matches(self, canonical: str) -> list[tuple[str, TyposquatKind]]:
        found: list[tuple[str, TyposquatKind]] = []
        plain = canonical.translate(_SEPARATORS)
        for target in self._by_fold.get(_fold(canonical), ()):
            if target != canonical:
                found.append((target, "separator" if target.translate(_SEPARATORS) == plain else "homoglyph"))
        if len(canonical) >= MIN_EDIT_LENGTH:
            seen: set[str] = set()
            for variant in _deletions(canonical) | {canonical}:
                for target in self._by_deletion.get(variant, ()):
                    if target in seen:
                        continue
                    seen.add(target)
                    kind = _one_edit_kind(canonical, target)
                    if kind:
                        found.append((target, kind))
        return found

    def _best(self, name: str, found: list[tuple[str, TyposquatKind]]) -> TyposquatMatch | None:
        if not found:
            return None
        target, kind = min(found, key=lambda item: self._rank[item[0]])
        return TyposquatMatch(name=name, target=target, target_rank=self._rank[target], kind=kind)

    def check(self, name: str) -> TyposquatMatch | None:
        """The popular project ``name`` most likely imitates, or None."""
        canonical = _canonical(name)
        if not canonical or canonical in self._rank:
            return None
        return self._best(canonical, self._matches(canonical))

    def look_alikes(self) -> list[TyposquatMatch]:
        """Popular names that would be flagged next to a more popular one.

        Informative only (popular names are exempt from :meth:`check`): it
        shows how crowded the name space is.
        """
        result: list[TyposquatMatch] = []
        for name in self._names:
            rank = self._rank[name]
            better = [(t, k) for t, k in self._matches(name) if self._rank[t] < rank]
            match = self._best(name, better)
            if match:
                result.append(match)
        return result


@functools.lru_cache(maxsize=4)
def _load_cached(path: str) -> PopularNames:
    return PopularNames.load(Path(path))


def load_popular_names(path: Path | str | None = None) -> PopularNames:
    """:meth:`PopularNames.load`, built once per process and path."""
    return _load_cached(str(Path(path) if path else DEFAULT_POPULAR_FILE))

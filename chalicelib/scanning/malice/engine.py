"""Rule engine: regex rules from ``rules/*.yaml``, run over a text and over what it decodes to.

A rule is data (see ``rules/README`` in the module docstring of each pack):
``id``, ``severity`` (CRITICAL|HIGH|MEDIUM|LOW), ``category``, ``message``,
``rationale``, ``references``, ``fix``, ``patterns`` (any one matching fires),
optional ``all_of`` (every one of these must also match somewhere in the same
file: a file-level "source and sink" pairing), and ``examples`` (``positive``
must fire, ``negative`` must not; the unit suite runs them).

Start-up: a pattern is compiled on first use, and not at all when a text cannot match it. Each
pattern's required literals (``rules/compiled.json`` keeps them, see :mod:`.needs`) are checked
against the text first; compiling the whole pack was a quarter of ``skillharbor scan``'s wall time,
and a typical skill's files can match only a tenth of the patterns.

Obfuscation is looked through: base64 and hex literals and
``\\xNN`` escapes long enough to hide a command are decoded (zlib-inflated
when they are compressed) and the decoded text is scanned again, up to three
layers deep; findings from decoded text name the layer in their rule id.
"""

from __future__ import annotations

import base64
import binascii
import collections
import functools
import json
import re
import zlib
from pathlib import Path

TYPE_CHECKING = False  # typing is not imported at run time: it was a tenth of `skillharbor scan`'s start-up CPU
if TYPE_CHECKING:
    from typing import Any

from chalicelib.redact import redact

RULES_DIR = Path(__file__).resolve().parent / "rules"
COMPILED_NAME = "compiled.json"  # generated from the YAML: python -m chalicelib.scanning.malice
COMPILED_FORMAT = 2  # 2: with each pattern's required literals ("needs")
FLAGS = re.IGNORECASE | re.MULTILINE
SEVERITIES = ("LOW", "MEDIUM", "HIGH", "CRITICAL")
MAX_MATCH = 160  # matched text is bounded: a report quotes, it does not reproduce
MAX_DEPTH = 3

_B64 = re.compile(r"[A-Za-z0-9+/]{24,}={0,2}")
_HEX = re.compile(r"\b(?:[0-9a-fA-F]{2}){16,}\b")
_XESC = re.compile(r"(?:\\x[0-9a-fA-F]{2}){8,}")
_CHARCODES = re.compile(r"(?:\d{2,3}\s*,\s*){8,}\d{2,3}")


class LazyPattern:
    """A rule's regex, compiled on first use; :meth:`possible` tells, without compiling, whether a text
    may match it at all (``needs``: every group must have one literal in the folded text)."""

    __slots__ = ("pattern", "needs", "_compiled")

    def __init__(self, pattern: str, needs: tuple[tuple[str, ...], ...] = ()):
        self.pattern = pattern
        self.needs = needs
        self._compiled: re.Pattern[str] | None = None

    def compiled(self) -> re.Pattern[str]:
        if self._compiled is None:
            self._compiled = re.compile(self.pattern, FLAGS)
        return self._compiled

    def possible(self, folded: str) -> bool:
        return all(any(literal in folded for literal in group) for group in self.needs)

    def search(self, text: str) -> re.Match[str] | None:
        return self.compiled().search(text)

    def finditer(self, text: str) -> Any:
        return self.compiled().finditer(text)

    def __repr__(self) -> str:
        return f"LazyPattern({self.pattern!r})"


# the only characters outside ASCII that an ASCII letter matches under re.IGNORECASE (sre's case table:
# checked over every code point in tests/unit/test_malice_needs.py); folded to it so a literal check
# never misses a match that the regex would find
_FOLD = str.maketrans({"\u0130": "i", "\u0131": "i", "\u017f": "s", "\u212a": "k"})


def fold(text: str) -> str:
    """``text`` as the required-literal check compares it: ASCII lower case, look-alikes folded."""
    return text.lower() if text.isascii() else text.translate(_FOLD).lower()


# namedtuples rather than frozen dataclasses, and collections' rather than typing's NamedTuple: immutable
# all the same, and importing dataclasses (which loads inspect) or typing was a noticeable part of
# `skillharbor scan`'s start-up. Field types are in the comments.
_RULE_DEFAULTS = {"all_of": (), "references": (), "positive": (), "negative": (), "decoded_only": False,
                  "unless": (), "skip_quoted": False}  # fmt: skip


class Rule(collections.namedtuple("Rule", ["id", "severity", "category", "message", "rationale", "fix", "patterns",
                                           *_RULE_DEFAULTS], defaults=tuple(_RULE_DEFAULTS.values()))):  # fmt: skip
    """One rule of a pack. ``id``, ``severity``, ``category``, ``message``, ``rationale``, ``fix``: str;
    ``patterns`` and ``all_of``: tuple of :class:`LazyPattern`; ``references``, ``positive``, ``negative``:
    tuple of str; ``decoded_only``: bool; ``unless``: patterns a match that also matches one of does not
    fire; ``skip_quoted``: bool, a match right after a quote is a mention ("say 'ignore ...'"), not an
    instruction."""

    __slots__ = ()


class MaliceFinding(collections.namedtuple("MaliceFinding", ["file", "line", "rule_id", "severity", "category", "message",
                                                             "matched", "fix", "decoded"], defaults=(0,))):  # fmt: skip
    """``line`` and ``decoded`` (how many decode layers deep the match was) are int, the others str."""

    __slots__ = ()

    def to_dict(self) -> dict[str, Any]:
        return self._asdict()

    def describe(self) -> str:
        via = f" (after {self.decoded} decode layer(s))" if self.decoded else ""
        return f"{self.file}:{self.line} {self.rule_id} {self.severity}: {self.message}{via}: {self.matched!r}"


def _compile(items: list[str] | None, rule_id: str, needs: dict[str, list[list[str]]] | None) -> tuple[LazyPattern, ...]:
    """``needs`` from a fresh compiled.json (whose patterns compiled when it was written); without it (the
    YAML read directly) every pattern is compiled now, so a bad one is an error at load, and has no needs."""
    if needs is not None:
        return tuple(LazyPattern(p, tuple(tuple(g) for g in needs.get(p, ()))) for p in (items or ()))
    try:
        out = tuple(LazyPattern(p) for p in (items or ()))
        for pattern in out:
            pattern.compiled()
        return out
    except re.error as exc:
        raise ValueError(f"rule {rule_id}: bad pattern: {exc}") from exc


def _rule(raw: dict[str, Any], source: str, needs: dict[str, list[list[str]]] | None = None) -> Rule:
    missing = [k for k in ("id", "severity", "category", "message", "rationale", "fix", "patterns") if k not in raw]
    if missing:
        raise ValueError(f"{source}: rule {raw.get('id', '?')} lacks {', '.join(missing)}")
    if raw["severity"] not in SEVERITIES:
        raise ValueError(f"{source}: rule {raw['id']}: unknown severity {raw['severity']}")
    examples = raw.get("examples") or {}
    return Rule(
        id=raw["id"], severity=raw["severity"], category=raw["category"], message=raw["message"],
        rationale=raw["rationale"], fix=raw["fix"], patterns=_compile(raw["patterns"], raw["id"], needs),
        all_of=_compile(raw.get("all_of"), raw["id"], needs), references=tuple(raw.get("references") or ()),
        positive=tuple(examples.get("positive") or ()), negative=tuple(examples.get("negative") or ()),
        decoded_only=bool(raw.get("decoded_only", False)), unless=_compile(raw.get("unless"), raw["id"], needs),
        skip_quoted=bool(raw.get("skip_quoted", False)),
    )  # fmt: skip


def _sources_digest(directory: Path) -> str:
    """A checksum of the YAML packs (names and bytes): enough to notice an edit, and zlib is loaded anyway
    (hashlib alone would add a tenth of the scan's start-up)."""
    crc = 0
    for pack in sorted(directory.glob("*.yaml")):
        crc = zlib.crc32(pack.name.encode() + b"\0" + pack.read_bytes() + b"\0", crc)
    return f"crc32:{crc:08x}"


def read_packs(directory: Path = RULES_DIR) -> list[tuple[str, dict[str, Any]]]:
    """(pack file name, raw rule) for every rule of the YAML packs, in order."""
    import yaml  # lazy: only when the JSON copy is missing or stale

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml when present: several times faster
    return [
        (pack.name, raw)
        for pack in sorted(directory.glob("*.yaml"))
        for raw in yaml.load(pack.read_text(encoding="utf-8"), Loader=loader) or []  # noqa: S506 (a safe loader)
    ]


def write_compiled(directory: Path = RULES_DIR) -> Path:
    """Write ``rules/compiled.json``: the YAML packs as JSON with a checksum of the sources they came from, and
    each pattern's required literals. Every pattern is compiled first: a bad one is an error here."""
    from chalicelib.scanning.malice.needs import needs_of

    target = directory / COMPILED_NAME
    packs = read_packs(directory)
    for name, raw in packs:
        _rule(raw, name)  # validates (compiles every pattern)
    sources = sorted({p for _, raw in packs for key in ("patterns", "all_of", "unless") for p in raw.get(key) or ()})
    body = {"format": COMPILED_FORMAT, "sources_crc32": _sources_digest(directory),
            "rules": [[n, r] for n, r in packs], "needs": {p: needs_of(p, FLAGS) for p in sources}}  # fmt: skip
    target.write_text(json.dumps(body, ensure_ascii=False, indent=0) + "\n", encoding="utf-8")
    return target


def _raw_rules(directory: Path) -> tuple[list[tuple[str, dict[str, Any]]], dict[str, list[list[str]]] | None]:
    """(the packs, each pattern's needs) from ``compiled.json`` when its checksum is that of these YAML files
    (importing and parsing YAML was half of ``skillharbor scan``'s start-up), else from the YAML itself, with
    no needs: a stale copy is never used."""
    compiled = directory / COMPILED_NAME
    if compiled.is_file():
        body = json.loads(compiled.read_text(encoding="utf-8"))
        if body.get("format") == COMPILED_FORMAT and body.get("sources_crc32") == _sources_digest(directory):
            return [(name, raw) for name, raw in body["rules"]], body["needs"]
    return read_packs(directory), None


@functools.cache
def load_rules(directory: Path = RULES_DIR) -> tuple[Rule, ...]:
    packs, needs = _raw_rules(directory)
    rules = [_rule(raw, name, needs) for name, raw in packs]
    ids = [r.id for r in rules]
    dupes = {i for i in ids if ids.count(i) > 1}
    if dupes:
        raise ValueError(f"duplicate rule ids: {sorted(dupes)}")
    return tuple(rules)


def _bounded(text: str) -> str:
    text = redact(text.strip())
    return text if len(text) <= MAX_MATCH else text[: MAX_MATCH - 1] + "…"


def _printable(data: bytes) -> str | None:
    for attempt in (data, _inflate(data)):
        if attempt is None:
            continue
        try:
            text = attempt.decode("utf-8")
        except UnicodeDecodeError:
            continue
        if text and sum(c.isprintable() or c in "\n\t\r" for c in text) / len(text) > 0.9:
            return text
    return None


def _inflate(data: bytes) -> bytes | None:
    for wbits in (15, -15, 31):
        try:
            return zlib.decompress(data, wbits)
        except zlib.error:
            continue
    return None


def decoded_layers(text: str) -> list[tuple[int, str]]:
    """(offset in ``text``, decoded text) for every literal that decodes to readable text."""
    out: list[tuple[int, str]] = []
    for m in _B64.finditer(text):
        blob = m.group(0)
        try:
            data = base64.b64decode(blob + "=" * (-len(blob) % 4), validate=True)
        except (binascii.Error, ValueError):
            continue
        decoded = _printable(data)
        if decoded:
            out.append((m.start(), decoded))
    for m in _HEX.finditer(text):
        decoded = _printable(bytes.fromhex(m.group(0)))
        if decoded:
            out.append((m.start(), decoded))
    for m in _XESC.finditer(text):
        decoded = _printable(bytes.fromhex(m.group(0).replace("\\x", "")))
        if decoded:
            out.append((m.start(), decoded))
    for m in _CHARCODES.finditer(text):
        codes = [int(c) for c in re.findall(r"\d+", m.group(0))]
        if all(9 <= c < 127 for c in codes):
            out.append((m.start(), "".join(map(chr, codes))))
    return out


def _line_of(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


#: opening quote -> its closing one
_QUOTES = {'"': '"', "'": "'", "`": "`", "\u201c": "\u201d", "\u2018": "\u2019", "(": ")"}


def _quoted_mention(text: str, m: re.Match[str]) -> bool:
    """The match sits inside a quotation ("say 'ignore ...'"): a quote opens right before it and does not close
    within it. A quote that closes inside it is code formatting around a word (`MEMORY.md`, then the
    instruction goes on), which is no reason to look away."""
    closer = _QUOTES.get(text[m.start() - 1]) if m.start() > 0 else None
    return closer is not None and closer not in m.group(0)


def _counts(rule: Rule, text: str, m: re.Match[str]) -> bool:
    if rule.skip_quoted and _quoted_mention(text, m):
        return False
    return not any(u.search(m.group(0)) for u in rule.unless)


def scan_text(file: str, text: str, *, rules: tuple[Rule, ...] | None = None, _depth: int = 0,
              _line: int | None = None) -> list[MaliceFinding]:  # fmt: skip
    """Every rule over ``text``, then over what its encoded literals decode to."""
    rules = load_rules() if rules is None else rules
    folded = fold(text)
    findings: list[MaliceFinding] = []
    for rule in rules:
        if rule.decoded_only and _depth == 0:
            continue
        if rule.all_of and not all(p.possible(folded) and p.search(text) for p in rule.all_of):
            continue
        for pattern in rule.patterns:
            if not pattern.possible(folded):
                continue  # it cannot match: not even compiled
            m = next((m for m in pattern.finditer(text) if _counts(rule, text, m)), None)
            if m:
                line = _line if _line is not None else _line_of(text, m.start())
                findings.append(MaliceFinding(
                    file=file, line=line, rule_id=rule.id, severity=rule.severity, category=rule.category,
                    message=rule.message, matched=_bounded(m.group(0)), fix=rule.fix, decoded=_depth,
                ))  # fmt: skip
                break
    if _depth < MAX_DEPTH:
        for offset, decoded in decoded_layers(text):
            line = _line if _line is not None else _line_of(text, offset)
            findings += scan_text(file, decoded, rules=rules, _depth=_depth + 1, _line=line)
    return findings


def every_match(rule: Rule, text: str) -> list[str]:
    """Every text ``rule`` matches in ``text`` itself (not decoded), quoted as a finding quotes it. A finding names a
    rule's first match only; a context that excuses one (a declared vendor installer) must excuse them all."""
    if rule.all_of and not all(p.search(text) for p in rule.all_of):
        return []
    return [_bounded(m.group(0)) for p in rule.patterns for m in p.finditer(text) if _counts(rule, text, m)]


def fires(rule: Rule, text: str) -> bool:
    """Whether ``rule`` alone matches ``text`` (directly or decoded): for the examples' test."""
    return any(f.rule_id == rule.id for f in scan_text("example", text, rules=(rule,)))

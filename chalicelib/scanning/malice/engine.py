"""Rule engine: regex rules from ``rules/*.yaml``, run over a text and over what it decodes to.

A rule is data (see ``rules/README`` in the module docstring of each pack):
``id``, ``severity`` (CRITICAL|HIGH|MEDIUM|LOW), ``category``, ``message``,
``rationale``, ``references``, ``fix``, ``patterns`` (any one matching fires),
optional ``all_of`` (every one of these must also match somewhere in the same
file: a file-level "source and sink" pairing), and ``examples`` (``positive``
must fire, ``negative`` must not; the unit suite runs them).

Obfuscation is looked through: base64 and hex literals and
``\\xNN`` escapes long enough to hide a command are decoded (zlib-inflated
when they are compressed) and the decoded text is scanned again, up to three
layers deep; findings from decoded text name the layer in their rule id.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import re
import zlib
from pathlib import Path
from typing import Any, NamedTuple

from chalicelib.redact import redact

RULES_DIR = Path(__file__).resolve().parent / "rules"
COMPILED_NAME = "compiled.json"  # generated from the YAML: python -m chalicelib.scanning.malice
SEVERITIES = ("LOW", "MEDIUM", "HIGH", "CRITICAL")
MAX_MATCH = 160  # matched text is bounded: a report quotes, it does not reproduce
MAX_DEPTH = 3

_B64 = re.compile(r"[A-Za-z0-9+/]{24,}={0,2}")
_HEX = re.compile(r"\b(?:[0-9a-fA-F]{2}){16,}\b")
_XESC = re.compile(r"(?:\\x[0-9a-fA-F]{2}){8,}")
_CHARCODES = re.compile(r"(?:\d{2,3}\s*,\s*){8,}\d{2,3}")


# NamedTuple rather than a frozen dataclass: immutable all the same, and importing dataclasses (which loads
# inspect) was a noticeable part of `skillharbor scan`'s start-up
class Rule(NamedTuple):
    id: str
    severity: str
    category: str
    message: str
    rationale: str
    fix: str
    patterns: tuple[re.Pattern[str], ...]
    all_of: tuple[re.Pattern[str], ...] = ()
    references: tuple[str, ...] = ()
    positive: tuple[str, ...] = ()
    negative: tuple[str, ...] = ()
    decoded_only: bool = False
    unless: tuple[re.Pattern[str], ...] = ()  # a match that also matches one of these does not fire
    skip_quoted: bool = False  # a match right after a quote is a mention ("say 'ignore ...'"), not an instruction


class MaliceFinding(NamedTuple):
    file: str
    line: int
    rule_id: str
    severity: str
    category: str
    message: str
    matched: str
    fix: str
    decoded: int = 0  # how many decode layers deep the match was

    def to_dict(self) -> dict[str, Any]:
        return self._asdict()

    def describe(self) -> str:
        via = f" (after {self.decoded} decode layer(s))" if self.decoded else ""
        return f"{self.file}:{self.line} {self.rule_id} {self.severity}: {self.message}{via}: {self.matched!r}"


def _compile(items: list[str] | None, rule_id: str) -> tuple[re.Pattern[str], ...]:
    try:
        return tuple(re.compile(p, re.IGNORECASE | re.MULTILINE) for p in (items or ()))
    except re.error as exc:
        raise ValueError(f"rule {rule_id}: bad pattern: {exc}") from exc


def _rule(raw: dict[str, Any], source: str) -> Rule:
    missing = [k for k in ("id", "severity", "category", "message", "rationale", "fix", "patterns") if k not in raw]
    if missing:
        raise ValueError(f"{source}: rule {raw.get('id', '?')} lacks {', '.join(missing)}")
    if raw["severity"] not in SEVERITIES:
        raise ValueError(f"{source}: rule {raw['id']}: unknown severity {raw['severity']}")
    examples = raw.get("examples") or {}
    return Rule(
        id=raw["id"], severity=raw["severity"], category=raw["category"], message=raw["message"],
        rationale=raw["rationale"], fix=raw["fix"], patterns=_compile(raw["patterns"], raw["id"]),
        all_of=_compile(raw.get("all_of"), raw["id"]), references=tuple(raw.get("references") or ()),
        positive=tuple(examples.get("positive") or ()), negative=tuple(examples.get("negative") or ()),
        decoded_only=bool(raw.get("decoded_only", False)), unless=_compile(raw.get("unless"), raw["id"]),
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
    """Write ``rules/compiled.json``, the YAML packs as JSON with a checksum of the sources they came from."""
    target = directory / COMPILED_NAME
    body = {"sources_crc32": _sources_digest(directory), "rules": [[n, r] for n, r in read_packs(directory)]}
    target.write_text(json.dumps(body, ensure_ascii=False, indent=0) + "\n", encoding="utf-8")
    return target


def _raw_rules(directory: Path) -> list[tuple[str, dict[str, Any]]]:
    """The packs from ``compiled.json`` when its checksum is that of these YAML files (importing and parsing
    YAML was half of ``skillharbor scan``'s start-up), else from the YAML itself: a stale copy is never used."""
    compiled = directory / COMPILED_NAME
    if compiled.is_file():
        body = json.loads(compiled.read_text(encoding="utf-8"))
        if body.get("sources_crc32") == _sources_digest(directory):
            return [(name, raw) for name, raw in body["rules"]]
    return read_packs(directory)


@functools.cache
def load_rules(directory: Path = RULES_DIR) -> tuple[Rule, ...]:
    rules = [_rule(raw, name) for name, raw in _raw_rules(directory)]
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
    findings: list[MaliceFinding] = []
    for rule in rules:
        if rule.decoded_only and _depth == 0:
            continue
        if rule.all_of and not all(p.search(text) for p in rule.all_of):
            continue
        for pattern in rule.patterns:
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


def fires(rule: Rule, text: str) -> bool:
    """Whether ``rule`` alone matches ``text`` (directly or decoded): for the examples' test."""
    return any(f.rule_id == rule.id for f in scan_text("example", text, rules=(rule,)))

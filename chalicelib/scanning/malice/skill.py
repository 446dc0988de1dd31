"""Walk a whole skill (every file, archives inside it, compiled payloads) and run the rule pack.

Public interface::

    scan_skill(files: Mapping[str, bytes | str]) -> list[MaliceFinding]
    scan_path(path: str | Path) -> list[MaliceFinding]   # a folder, a .zip or one SKILL.md
    scan_upload(data: bytes, *, is_zip: bool) -> list[MaliceFinding]   # what the import received

Text files of every type (Markdown prose and fenced blocks, Python, shell,
JS/TS, PowerShell, batch, YAML, JSON, ...) are scanned whole, so a payload in
prose, an inline code span or frontmatter metadata is seen as well as one in
a script. Zip archives inside a skill are opened and their members scanned
(an encrypted member is CRITICAL: nothing may hide from the scanner); other
archive formats are refused (HIGH). Compiled payloads are reported: ``.pyc``
without its ``.py`` beside it is HIGH, and so is one holding text its ``.py``
does not (compiled from other code: see ``pyc.py``); so is any other file with NUL bytes (a compiled
binary: ELF, PE, Mach-O, WebAssembly, ...) unless its magic bytes make it an image, a font, a PDF, audio or
video, which are data (held all the same when an executable's header sits inside one). The strings of every
``.pyc``, binary and media file are scanned as text so a command inside one is still found.
"""

from __future__ import annotations

import functools
import io
import re
from collections.abc import Mapping
from pathlib import Path, PurePosixPath

from chalicelib.scanning.malice.context import declared_install_urls, declared_publishers, in_context
from chalicelib.scanning.malice.engine import MaliceFinding, every_match, load_rules, scan_text

MAX_FILE_BYTES = 2 * 1024 * 1024
MAX_ARCHIVE_DEPTH = 2
MAX_MEMBERS = 500
_OPAQUE_ARCHIVES = (".tar", ".tgz", ".tar.gz", ".tar.bz2", ".tar.xz", ".7z", ".rar", ".gz", ".bz2", ".xz", ".cab")
#: compiled code: ELF, PE (MZ), Mach-O (64/32-bit, both byte orders), fat Mach-O and Java class, WebAssembly, Dalvik,
#: LLVM bitcode, a disk image's trailer
_BINARY_MAGIC = (b"\x7fELF", b"MZ", b"\xcf\xfa\xed\xfe", b"\xfe\xed\xfa\xcf", b"\xce\xfa\xed\xfe", b"\xfe\xed\xfa\xce",
                 b"\xca\xfe\xba\xbe", b"\x00asm", b"dex\n0", b"BC\xc0\xde", b"koly")  # fmt: skip
#: media and data formats, by their magic bytes (every (offset, bytes) of an entry must be there); NUL bytes are normal
#: in them and they are not code. The extension is not looked at: an ELF named .png starts with \x7fELF
_DATA_MAGIC: tuple[tuple[str, tuple[tuple[int, bytes], ...]], ...] = (
    ("PNG image", ((0, b"\x89PNG\r\n\x1a\n"),)), ("JPEG image", ((0, b"\xff\xd8\xff"),)),
    ("GIF image", ((0, b"GIF87a"),)), ("GIF image", ((0, b"GIF89a"),)), ("WebP image", ((0, b"RIFF"), (8, b"WEBP"))),
    ("TIFF image", ((0, b"II*\x00"),)), ("TIFF image", ((0, b"MM\x00*"),)), ("Photoshop image", ((0, b"8BPS"),)),
    ("PDF document", ((0, b"%PDF-"),)),
    ("TrueType font", ((0, b"\x00\x01\x00\x00"),)), ("OpenType font", ((0, b"OTTO"),)), ("TrueType font", ((0, b"true"),)),
    ("TrueType collection", ((0, b"ttcf"),)), ("WOFF font", ((0, b"wOFF"),)), ("WOFF2 font", ((0, b"wOF2"),)),
    ("WAV audio", ((0, b"RIFF"), (8, b"WAVE"))), ("AVI video", ((0, b"RIFF"), (8, b"AVI "))),
    ("AIFF audio", ((0, b"FORM"), (8, b"AIFF"))), ("AIFF audio", ((0, b"FORM"), (8, b"AIFC"))),
    ("MP4/QuickTime/HEIF media", ((4, b"ftyp"),)), ("Matroska/WebM video", ((0, b"\x1a\x45\xdf\xa3"),)),
    ("Ogg media", ((0, b"OggS"),)), ("FLAC audio", ((0, b"fLaC"),)), ("MP3 audio", ((0, b"ID3"),)),
    ("MP3 audio", ((0, b"\xff\xfb"),)), ("MP3 audio", ((0, b"\xff\xf3"),)), ("MP3 audio", ((0, b"\xff\xf2"),)),
    ("AAC audio", ((0, b"\xff\xf1"),)), ("AAC audio", ((0, b"\xff\xf9"),)), ("MIDI audio", ((0, b"MThd"),)),
    ("BMP image", ((0, b"BM"), (6, b"\x00\x00\x00\x00"))),  # with its reserved bytes, "BM" alone is too short
    ("icon", ((0, b"\x00\x00\x01\x00"),)), ("cursor", ((0, b"\x00\x00\x02\x00"),)),
    ("AppleDouble metadata", ((0, b"\x00\x05\x16\x07"),)), ("AppleSingle metadata", ((0, b"\x00\x05\x16\x00"),)),
    ("BGEN genotype data", ((16, b"bgen"),)),
)  # fmt: skip
#: an executable's header inside a data file (appended to an image, a font's tail): ELF with its class, byte order and
#: version; 64-bit Mach-O for x86-64 or arm64; a PE header for i386, x86-64 or arm64. Six exact bytes: random data
#: (compressed pixels, glyph outlines) holds them once in 2^48 positions
_EMBEDDED_EXECUTABLE = re.compile(
    rb"\x7fELF[\x01\x02][\x01\x02]\x01|\xcf\xfa\xed\xfe[\x07\x0c]\x00\x00\x01|PE\x00\x00(?:\x4c\x01|\x64\x86|\x64\xaa)"
)
_STRINGS = re.compile(rb"[\x20-\x7e\t]{6,}")


def _finding(file: str, rule_id: str, severity: str, category: str, message: str, fix: str,
             matched: str = "") -> MaliceFinding:  # fmt: skip
    return MaliceFinding(file=file, line=1, rule_id=rule_id, severity=severity, category=category,
                         message=message, matched=matched, fix=fix)  # fmt: skip


def _is_binary(data: bytes) -> bool:
    return data.startswith(_BINARY_MAGIC) or b"\x00" in data[:4096]


def _data_format(data: bytes) -> str | None:
    """The media or data format ``data`` starts as (an image, a font, a PDF, audio or video), by its magic bytes;
    None for compiled code and for anything not recognised."""
    if data.startswith(_BINARY_MAGIC):
        return None
    for name, parts in _DATA_MAGIC:
        if all(data[offset : offset + len(magic)] == magic for offset, magic in parts):
            return name
    return None


def _zip(name: str, data: bytes, depth: int) -> list[MaliceFinding]:
    import zipfile  # lazy, like the other parts only some skills need: start-up of `skillharbor scan`

    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        return [_finding(name, "SKA002", "HIGH", "hidden-payload", "a file named like an archive cannot be opened",
                         "remove the file or ship its contents unpacked")]  # fmt: skip
    if depth >= MAX_ARCHIVE_DEPTH:
        return [_finding(name, "SKA003", "HIGH", "hidden-payload", "archives nested too deep to inspect",
                         "ship the contents unpacked")]  # fmt: skip
    findings = [_finding(name, "SKA004", "MEDIUM", "hidden-payload", "the skill bundles an archive",
                         "ship the files unpacked so reviewers see them")]  # fmt: skip
    members = {}
    for info in archive.infolist()[:MAX_MEMBERS]:
        if info.is_dir():
            continue
        member = f"{name}!{info.filename}"
        if info.flag_bits & 0x1:
            findings.append(_finding(member, "SKA001", "CRITICAL", "dropper",
                                     "password-protected archive member: its content is hidden from review",
                                     "ship the files unencrypted"))  # fmt: skip
            continue
        if info.file_size > MAX_FILE_BYTES:
            findings.append(_finding(member, "SKA005", "HIGH", "hidden-payload", "archive member too large to scan",
                                     "ship it unpacked or remove it"))  # fmt: skip
            continue
        members[member] = archive.read(info)
    return findings + _scan_files(members, depth + 1)


def _pyc(name: str, data: bytes, files: Mapping[str, bytes]) -> list[MaliceFinding]:
    """A compiled module: refused without its source, compared with it otherwise; its strings are scanned."""
    from chalicelib.scanning.malice.pyc import pyc_strings, unexplained

    stem = PurePosixPath(name.replace("/__pycache__/", "/")).name.split(".")[0]
    folder = str(PurePosixPath(name).parent).replace("/__pycache__", "").replace("__pycache__", "")
    source = f"{folder}/{stem}.py".lstrip("./") if folder not in ("", ".") else f"{stem}.py"
    strings = pyc_strings(data)
    findings = scan_text(name, "\n".join(strings))
    if source not in files:
        return findings + [_finding(name, "SKA010", "HIGH", "hidden-payload",
                                    "compiled Python without its source: it cannot be reviewed",
                                    "ship the .py source, not the .pyc")]  # fmt: skip
    extra = unexplained(strings, files[source].decode("utf-8", errors="replace"), source_name=f"{stem}.py")
    if extra:
        return findings + [_finding(name, "SKA012", "HIGH", "hidden-payload",
                                    f"compiled Python does not match {source}: it holds text its source does not",
                                    "delete __pycache__ from the skill; ship only the reviewed source",
                                    matched=extra[0][:160])]  # fmt: skip
    return findings + [_finding(name, "SKA011", "MEDIUM", "hidden-payload",
                                "compiled Python bundled: Python runs it instead of its source when newer",
                                "delete __pycache__ from the skill")]  # fmt: skip


def _scan_files(files: Mapping[str, bytes], depth: int) -> list[MaliceFinding]:
    findings: list[MaliceFinding] = []
    for name, data in sorted(files.items()):
        lower = name.lower()
        if len(data) > MAX_FILE_BYTES:
            findings.append(_finding(name, "SKA005", "HIGH", "hidden-payload", "file too large to scan",
                                     "remove it or split it"))  # fmt: skip
            continue
        if lower.endswith(".zip") or data.startswith(b"PK\x03\x04"):
            findings += _zip(name, data, depth)
            continue
        if lower.endswith(_OPAQUE_ARCHIVES):
            findings.append(_finding(name, "SKA006", "HIGH", "hidden-payload",
                                     "archive format that is not inspected: refused", "ship the files unpacked"))  # fmt: skip
            continue
        if lower.endswith(".pyc"):
            findings += _pyc(name, data, files)
            continue
        if _is_binary(data):
            kind = _data_format(data)  # an image, a font, a PDF, audio or video: data, not code
            if kind is None:
                findings.append(_finding(name, "SKA020", "HIGH", "hidden-payload",
                                         "a compiled binary is bundled: it cannot be reviewed",
                                         "build it from source at install time or drop it"))  # fmt: skip
            elif _EMBEDDED_EXECUTABLE.search(data):
                findings.append(_finding(name, "SKA020", "HIGH", "hidden-payload",
                                         f"a compiled binary is hidden inside a {kind} file: it cannot be reviewed",
                                         "ship the media file on its own; build code from source or drop it"))  # fmt: skip
            findings += scan_text(name, "\n".join(s.decode("ascii") for s in _STRINGS.findall(data)))
            continue
        text = data.decode("utf-8", errors="replace")
        findings += scan_text(name, text)
        if lower.endswith(".py"):
            from chalicelib.scanning.malice.taint import secret_flows  # needs ast: only for Python files

            findings += secret_flows(name, text)
    return findings


_NAME = re.compile(r"^name:\s*[\"']?([^\"'\n]+?)[\"']?\s*$", re.MULTILINE)
POPULAR_SKILLS_FILE = Path(__file__).resolve().parent / "popular-skills.txt"


# Latin look-alikes a squatter uses in a name (Cyrillic, Greek, digits); folded before comparing
_CONFUSABLES = str.maketrans({"а": "a", "е": "e", "о": "o", "р": "p", "с": "c", "у": "y", "х": "x", "і": "i", "ј": "j",
                              "ѕ": "s", "ԁ": "d", "ɡ": "g", "ο": "o", "α": "a", "ν": "v", "ρ": "p", "τ": "t", "0": "o",
                              "1": "l", "|": "l", "_": "-", ".": "-"})  # fmt: skip
MIN_EDIT_LENGTH = 5  # shorter names sit one edit away from too many unrelated skills


@functools.cache
def _popular_skills() -> tuple[str, ...]:
    lines = [n.strip() for n in POPULAR_SKILLS_FILE.read_text(encoding="utf-8").splitlines()]
    return tuple(n for n in lines if n and not n.startswith("#"))


def _fold(name: str) -> str:
    import unicodedata

    folded = unicodedata.normalize("NFKD", name.lower().translate(_CONFUSABLES))
    return "".join(c for c in folded if not unicodedata.combining(c)).replace("rn", "m").replace("vv", "w")


def _one_edit(a: str, b: str) -> bool:
    """Damerau distance exactly 1 (one insertion, deletion, substitution or adjacent swap)."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) == len(b):
        diff = [i for i in range(len(a)) if a[i] != b[i]]
        return len(diff) == 1 or (len(diff) == 2 and diff[1] == diff[0] + 1 and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]])
    short, long_ = (a, b) if len(a) < len(b) else (b, a)
    return any(long_[:i] + long_[i + 1:] == short for i in range(len(long_)))


def squat_target(name: str) -> tuple[str, str] | None:
    """(popular skill, how) when ``name`` imitates a popular skill it is not."""
    popular = _popular_skills()
    if name in popular:
        return None
    folded = _fold(name)
    for target in popular:
        if folded == _fold(target):
            return target, "look-alike characters"
    if len(folded) >= MIN_EDIT_LENGTH:
        for target in popular:
            if len(target) >= MIN_EDIT_LENGTH and _one_edit(folded, _fold(target)):
                return target, "one edit away"
    return None


def name_squats(files: Mapping[str, bytes]) -> list[MaliceFinding]:
    """The skill's own name (SKILL.md frontmatter) against popular skills' names."""
    skill_md = next((n for n in sorted(files, key=len) if n.rsplit("/", 1)[-1] == "SKILL.md"), None)
    if skill_md is None:
        return []
    head = files[skill_md].decode("utf-8", errors="replace")[:4000]
    found = _NAME.search(head.split("\n---", 1)[0]) if head.startswith("---") else None
    if not found:
        return []
    match = squat_target(found.group(1).strip())
    if match is None:
        return []
    target, how = match
    return [MaliceFinding(
        file=skill_md, line=head[: found.start()].count("\n") + 1, rule_id="SKM-SQUAT-001", severity="HIGH",
        category="typosquat", message=f"skill name imitates the popular skill {target!r} ({how})",
        matched=found.group(0)[:160], fix="choose a name that does not imitate another skill",
    )]  # fmt: skip


def _other_matches(finding: MaliceFinding, files: Mapping[str, bytes]) -> tuple[str, ...] | None:
    """The finding's rule's other matches in its file (a finding quotes only the first), or None when that text is
    not at hand (an archive member, a decoded layer, a binary's strings): then nothing may excuse the finding."""
    data = files.get(finding.file)
    if finding.decoded or data is None or _is_binary(data):
        return None
    rule = next(r for r in load_rules() if r.id == finding.rule_id)
    matches = every_match(rule, data.decode("utf-8", errors="replace"))
    return tuple(m for m in matches if m != finding.matched)


def scan_skill(files: Mapping[str, bytes | str]) -> list[MaliceFinding]:
    """Findings for a skill given as relative path -> content, worst first."""
    raw = {n: (c.encode("utf-8") if isinstance(c, str) else c) for n, c in files.items()}
    found = _scan_files(raw, 0)
    # reading the frontmatter's install metadata (YAML) only matters, and is only paid for, with an installer
    installer = any(f.rule_id == "SKM-DROP-001" for f in found)
    publishers = declared_publishers(raw) if installer else frozenset()
    install_urls = declared_install_urls(raw) if installer else frozenset()
    findings = [in_context(f, publishers, install_urls, _other_matches(f, raw) if f.rule_id == "SKM-DROP-001" else ())
                for f in found]  # fmt: skip
    squats = name_squats(raw)
    if squats and any(f.severity in ("HIGH", "CRITICAL") for f in findings):
        # an imitated name plus a risky behaviour is impersonation with intent
        squats = [MaliceFinding(**{**s.to_dict(), "severity": "CRITICAL"}) for s in squats]
    findings += squats
    order = {"CRITICAL": 0, "HIGH": 1, "MEDIUM": 2, "LOW": 3}
    unique: dict[tuple[str, int, str], MaliceFinding] = {}
    for f in sorted(findings, key=lambda f: order[f.severity]):  # one text matched twice: keep the worse rule
        unique.setdefault((f.file, f.line, f.matched or f.rule_id), f)
    return sorted(unique.values(), key=lambda f: (order[f.severity], f.file, f.line, f.rule_id))


def read_upload(data: bytes, *, is_zip: bool) -> dict[str, bytes]:
    """An uploaded skill (a .zip or one SKILL.md) as relative path -> bytes; encrypted members stay in as
    themselves so the walk reports them."""
    if not is_zip:
        return {"SKILL.md": data}
    import zipfile

    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
    except zipfile.BadZipFile:
        return {"upload.zip": data}
    out: dict[str, bytes] = {}
    for info in archive.infolist()[:MAX_MEMBERS]:
        if info.is_dir():
            continue
        if info.flag_bits & 0x1 or info.file_size > MAX_FILE_BYTES:
            out.setdefault("upload.zip", data)  # the walk reports the encrypted or oversized member
            continue
        out[info.filename] = archive.read(info)
    return out


def scan_upload(data: bytes, *, is_zip: bool) -> list[MaliceFinding]:
    return scan_skill(read_upload(data, is_zip=is_zip))


def read_skill(path: str | Path) -> dict[str, bytes]:
    """A folder, a .zip or one file as relative path -> bytes (symlinks are not followed)."""
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file or folder")
    if path.is_dir():
        return {
            p.relative_to(path).as_posix(): p.read_bytes()
            for p in sorted(path.rglob("*"))
            if p.is_file() and not p.is_symlink() and ".git" not in p.relative_to(path).parts
        }
    if path.suffix.lower() == ".zip":
        return read_upload(path.read_bytes(), is_zip=True)
    return {path.name: path.read_bytes()}


def scan_path(path: str | Path) -> list[MaliceFinding]:
    return scan_skill(read_skill(path))

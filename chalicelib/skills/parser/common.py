"""What every part of the parser shares: the size limits, how problems fail a parse, small text helpers."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NoReturn

from chalicelib.errors import InvalidSkill

MiB = 1024 * 1024


@dataclass(frozen=True)
class ParseLimits:
    """Size limits; the defaults match the settings' defaults."""

    max_skill_md_bytes: int = 1 * MiB
    max_zip_bytes: int = 20 * MiB
    max_total_uncompressed_bytes: int = 50 * MiB
    max_entries: int = 1000
    max_bundled_text_bytes: int = 1 * MiB  # larger bundled files go to skipped_files
    max_frontmatter_bytes: int = 64 * 1024
    max_yaml_depth: int = 32
    max_yaml_nodes: int = 10_000

    @classmethod
    def from_settings(cls, settings: Any) -> ParseLimits:
        """Take the limits that ``chalicelib.settings.Settings`` defines, defaults for the rest."""
        defaults = cls()
        return cls(
            max_skill_md_bytes=getattr(settings, "max_skill_md_bytes", defaults.max_skill_md_bytes),
            max_zip_bytes=getattr(settings, "max_zip_bytes", defaults.max_zip_bytes),
        )



def fail(source: str, problems: list[str], **identity: Any) -> NoReturn:
    count = len(problems)
    shown = "; ".join(problems[:3]) + (f"; and {count - 3} more" if count > 3 else "")
    raise InvalidSkill(
        f"{source} is not a valid skill ({count} problem{'s' if count != 1 else ''}): {shown}", problems=problems, **identity
    )


def one_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return (text.splitlines()[0] if text else type(exc).__name__)[:300]


def type_name(value: Any) -> str:
    return {
        dict: "a mapping",
        list: "a list",
        str: "a string",
        bool: "a boolean",
        int: "a number",
        float: "a number",
        type(None): "nothing",
    }.get(type(value), type(value).__name__)


def decode_utf8(data: bytes, label: str, problems: list[str]) -> str | None:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = data.count(b"\n", 0, exc.start) + 1
        column = exc.start - (data.rfind(b"\n", 0, exc.start) + 1) + 1
        hint = " (it looks like UTF-16; save it as UTF-8)" if data[:2] in (b"\xff\xfe", b"\xfe\xff") else ""
        problems.append(
            f"{label} is not valid UTF-8: byte 0x{data[exc.start]:02x} at line {line}, column {column} "
            f"(offset {exc.start}) cannot be decoded{hint}"
        )
        return None
    return text[1:] if text.startswith("\ufeff") else text


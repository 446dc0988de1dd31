"""What ``skillharbor import PATH`` sends: a SKILL.md's bytes, a zip's bytes, or a folder zipped in memory."""

from __future__ import annotations

import io
import os
import zipfile
from dataclasses import dataclass
from pathlib import Path

from chalicelib.skills.model import ParsedSkill
from chalicelib.skills.parser import parse_skill_md, parse_zip

ZIP_MAGIC = b"PK\x03\x04"
#: fixed timestamp, so zipping the same folder twice gives the same bytes
_ZIP_TIME = (2020, 1, 1, 0, 0, 0)
#: folders and files that never belong in an upload (the server ignores them too; skipping keeps uploads small)
_SKIPPED_NAMES = frozenset({"__MACOSX", "__pycache__", ".git", ".hg", ".svn", ".venv", ".DS_Store", "Thumbs.db"})


class BundleError(Exception):
    """PATH cannot be turned into an upload; the message says why."""


@dataclass(frozen=True)
class Upload:
    data: bytes
    is_zip: bool
    label: str  # what the user named

    @property
    def content_type(self) -> str:
        return "application/zip" if self.is_zip else "text/markdown"

    def parse(self) -> ParsedSkill:
        """Parse exactly the bytes that will be sent (InvalidSkill lists every problem)."""
        return parse_zip(self.data, label=self.label) if self.is_zip else parse_skill_md(self.data, label=self.label)


def load_upload(path: str | os.PathLike[str]) -> Upload:
    target = Path(path)
    if target.is_dir():
        return Upload(zip_folder(target), is_zip=True, label=str(target))
    if not target.exists():
        raise BundleError(f"{target} does not exist")
    if not target.is_file():
        raise BundleError(f"{target} is neither a file nor a folder")
    data = target.read_bytes()
    is_zip = data.startswith(ZIP_MAGIC)
    if target.suffix.lower() == ".zip" and not is_zip:
        raise BundleError(f"{target} is named .zip but is not a zip archive")
    return Upload(data, is_zip=is_zip, label=str(target))


def zip_folder(root: Path) -> bytes:
    """The folder's files, paths relative to it, in a deterministic zip (symbolic links refused)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for directory, dirnames, filenames in os.walk(root, followlinks=False):
            dirnames[:] = sorted(d for d in dirnames if d not in _SKIPPED_NAMES)
            for name in sorted(filenames):
                if name in _SKIPPED_NAMES or name.endswith(".pyc"):
                    continue
                full = Path(directory, name)
                relative = full.relative_to(root).as_posix()
                if full.is_symlink():
                    raise BundleError(f"{relative} in {root} is a symbolic link; skills may not contain links")
                info = zipfile.ZipInfo(relative, date_time=_ZIP_TIME)
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
                archive.writestr(info, full.read_bytes())
            for name in dirnames:
                if Path(directory, name).is_symlink():
                    relative = Path(directory, name).relative_to(root).as_posix()
                    raise BundleError(f"{relative} in {root} is a symbolic link; skills may not contain links")
    return buffer.getvalue()

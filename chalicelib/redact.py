"""Keeping secrets out of logs and messages.

:func:`redact` replaces, in any text, the values of known secrets (settings
and environment variables whose names say they hold one: ``*KEY*``,
``*SECRET*``, ``*TOKEN*``, ``*PASSWORD*``, ...) and anything shaped like a
credential: passwords in URLs, bearer tokens, skillharbor API keys, AWS
access key ids, ``secret=...``-style assignments, and long mixed-case
alphanumeric tokens. It is for text that comes from elsewhere (a child
process's output) on its way to the server log; nothing redacted here should
have been sent to a caller in the first place.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping

TYPE_CHECKING = False  # typing is not imported at run time: `skillharbor scan` loads this module
if TYPE_CHECKING:
    from typing import Any

REDACTED = "[redacted]"
#: names of settings and variables whose values are secrets
SECRET_NAME = re.compile(r"KEY|SECRET|TOKEN|PASSW|CREDENTIAL|PRIVATE|SIGNING|AUTH|COOKIE|SESSION", re.IGNORECASE)
#: shorter values are not redacted by value: they would blank out ordinary words
MIN_SECRET_LENGTH = 6

_PATTERNS: tuple[tuple[re.Pattern[str], str], ...] = (
    (re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*://[^/\s:@]*:)[^@\s/]+@"), rf"\1{REDACTED}@"),  # scheme://user:password@
    (re.compile(r"(?i)\b(bearer|basic|token)(\s+)[A-Za-z0-9._~+/=-]{8,}"), rf"\1\2{REDACTED}"),
    (re.compile(r"\bshk_[0-9a-f]{16}_[A-Za-z0-9_-]+"), REDACTED),
    (re.compile(r"\b(?:AKIA|ASIA|AGPA|AIDA|AROA)[0-9A-Z]{16}\b"), REDACTED),
    (
        re.compile(r"(?i)\b([a-z0-9_-]*(?:secret|token|passw(?:or)?d|api[_-]?key|access[_-]?key)[a-z0-9_-]*)(\s*[=:]\s*)(\"[^\"]*\"|'[^']*'|\S+)"),
        rf"\1\2{REDACTED}",
    ),
)
_TOKEN = re.compile(r"[A-Za-z0-9+/=_-]{32,}")


def _looks_like_a_key(token: str) -> bool:
    """Long, and mixing upper case, lower case and digits: random, unlike paths, hashes and wheel tags."""
    return any(c.isupper() for c in token) and any(c.islower() for c in token) and any(c.isdigit() for c in token)


def secret_values(settings: Any = None, environ: Mapping[str, str] | None = None) -> list[str]:
    """The values this process holds that are secrets, longest first."""
    environ = os.environ if environ is None else environ
    values = {value for name, value in environ.items() if SECRET_NAME.search(name)}
    if settings is None:
        from chalicelib.settings import get_settings

        settings = get_settings()
    for name in type(settings).model_fields:
        value = getattr(settings, name, None)
        if SECRET_NAME.search(name) and isinstance(value, str):
            values.add(value)
    return sorted((v for v in values if v and len(v) >= MIN_SECRET_LENGTH), key=len, reverse=True)


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every known secret value and every credential-shaped string replaced."""
    for value in secrets:
        if value and len(value) >= MIN_SECRET_LENGTH:
            text = text.replace(value, REDACTED)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return _TOKEN.sub(lambda m: REDACTED if _looks_like_a_key(m.group(0)) else m.group(0), text)

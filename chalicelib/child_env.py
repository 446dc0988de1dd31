"""Environments for child processes: what a process we start may inherit.

A child inherits every variable by default, and the API's process holds the
bootstrap admin key, the runner secret and cloud credentials. Whoever starts
a process passes ``child_environment()``: secrets are dropped unless the child
is named as needing them (``keep``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping

#: never handed to a child, whatever it keeps: the keys to the whole deployment's API
NEVER_INHERITED = frozenset({"SKILLHARBOR_ADMIN_KEY", "SKILLHARBOR_API_KEY"})
#: names that look like secrets (credentials, tokens, keys, passwords)
_SECRET_NAME = re.compile(r"SECRET|TOKEN|PASSW|CREDENTIAL|PRIVATE|API_?KEY|ACCESS_KEY|_KEY$", re.IGNORECASE)


def is_secret_name(name: str) -> bool:
    return name in NEVER_INHERITED or bool(_SECRET_NAME.search(name))


def child_environment(environ: Mapping[str, str] | None = None, *, keep: Iterable[str] = ()) -> dict[str, str]:
    """``environ`` (default: this process's) without secret-looking variables, except those in ``keep``;
    the bootstrap admin key and the CLI's API key are dropped even when kept."""
    kept = set(keep) - NEVER_INHERITED
    source = os.environ if environ is None else environ
    return {name: value for name, value in source.items() if name in kept or not is_secret_name(name)}

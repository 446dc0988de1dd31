"""The environment the resolver's pip runs with: an allow-list, nothing inherited by default.

pip needs to find programs and certificates, speak the locale, reach the index
(through a proxy where the network has one) and write temporary files. It
needs no credentials, no AWS settings and none of skillharbor's own
variables, so it gets none: a requirement that somehow named ``${VAR}`` would
find nothing to expand, and pip's own output cannot quote what it never had.
``HOME`` and ``TMPDIR`` point at a private directory made for one resolution,
so no ``~/.netrc``, ``~/.config/pip`` or keyring of the host's user is read.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

#: variables passed through from the host, unchanged, when set
PASSED_THROUGH = (
    "PATH", "LANG", "LC_ALL", "LC_CTYPE",
    "SSL_CERT_FILE", "SSL_CERT_DIR",
    "HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY", "all_proxy",
)  # fmt: skip
_DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"


def resolver_environment(home: Path, tmp: Path, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The whole environment of one pip run: the allow-listed variables, a private HOME and TMPDIR."""
    environ = os.environ if environ is None else environ
    env = {name: environ[name] for name in PASSED_THROUGH if environ.get(name)}
    env.setdefault("PATH", _DEFAULT_PATH)
    env.update(
        HOME=str(home),
        TMPDIR=str(tmp),
        PYTHONNOUSERSITE="1",  # no packages from the host user's site directory
        PYTHONIOENCODING="utf-8",
        PYTHONUTF8="1",
    )
    return env

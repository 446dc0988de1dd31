"""The ``skillharbor`` console script: ``scan`` starts without loading the API client's modules.

``skillharbor scan`` is meant for CI on every commit, so its start-up matters; every other command goes
through :mod:`chalicelib.cli.main` as before.
"""

from __future__ import annotations

import sys
from typing import NoReturn


def main(argv: list[str] | None = None) -> NoReturn:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["scan"]:
        from chalicelib.cli.scan import scan_command

        scan_command.main(args=args[1:], prog_name="skillharbor scan")
        raise SystemExit(0)
    from chalicelib.cli.main import main as full_main

    full_main(args)

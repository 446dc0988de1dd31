"""The ``skillharbor`` console script: ``scan`` starts without loading the API client's modules or click.

``skillharbor scan`` is meant for CI on every commit, so its start-up matters; every other command goes
through :mod:`chalicelib.cli.main` as before.
"""

from __future__ import annotations

import sys

TYPE_CHECKING = False  # typing is not imported at run time: a tenth of `skillharbor scan`'s start-up CPU
if TYPE_CHECKING:
    from typing import NoReturn


def main(argv: list[str] | None = None) -> NoReturn:
    args = sys.argv[1:] if argv is None else argv
    if args[:1] == ["scan"]:
        from chalicelib.cli.scan_run import main as scan_main  # argparse: click alone costs as much as a scan

        raise SystemExit(scan_main(args[1:]))
    from chalicelib.cli.main import main as full_main

    full_main(args)

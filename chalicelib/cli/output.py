"""Rendering for the CLI: rich tables for people, plain JSON for scripts."""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Iterable, Sequence
from typing import Any

from rich.console import Console
from rich.table import Table
from rich.text import Text

#: width used when output is not a terminal (pipes, files, tests): wide enough that ids are not folded
_PIPE_WIDTH = 160

STATUS_STYLES = {
    "ready": "green",
    "succeeded": "green",
    "SUCCEEDED": "green",
    "allowed": "green",
    "ok": "green",
    "importing": "cyan",
    "running": "cyan",
    "RUNNING": "cyan",
    "pending": "yellow",
    "pending_approval": "yellow",
    "waiting": "yellow",
    "skipped": "dim",
    "PENDING_APPROVAL": "yellow",
    "failed": "red",
    "FAILED": "red",
    "blocked": "red",
    "denied": "red",
    "banned": "red",
}


def stdout_console() -> Console:
    return _console(sys.stdout)


def stderr_console() -> Console:
    return _console(sys.stderr)


def _console(stream: Any) -> Console:
    is_tty = bool(getattr(stream, "isatty", lambda: False)())
    width = None if is_tty else max(_PIPE_WIDTH, shutil.get_terminal_size((_PIPE_WIDTH, 24)).columns)
    return Console(file=stream, width=width, highlight=False, soft_wrap=False)


def print_json(data: Any) -> None:
    """Machine-readable output: one JSON document on stdout (click.echo keeps CliRunner happy)."""
    import click

    click.echo(json.dumps(data, indent=2, sort_keys=True, default=str))


def styled(value: Any) -> Text:
    text = "" if value is None else str(value)
    return Text(text, style=STATUS_STYLES.get(text, ""))


def short(value: Any, length: int = 12) -> str:
    text = "" if value is None else str(value)
    return text[:length]


def table(columns: Sequence[str], rows: Iterable[Sequence[Any]], *, title: str | None = None) -> Table:
    grid = Table(title=title, title_justify="left", show_lines=False, header_style="bold")
    for column in columns:
        grid.add_column(column, overflow="fold")
    for row in rows:
        grid.add_row(*(cell if isinstance(cell, Text) else Text("" if cell is None else str(cell)) for cell in row))
    return grid


def key_values(pairs: Iterable[tuple[str, Any]]) -> Table:
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold")
    grid.add_column(overflow="fold")
    for key, value in pairs:
        if value is None or value == "" or value == [] or value == {}:
            continue
        if isinstance(value, (dict, list)):
            value = json.dumps(value, default=str)
        grid.add_row(key, value if isinstance(value, Text) else styled(value))
    return grid


def compact(value: Any, limit: int = 80) -> str:
    """A one-line rendering of a small value (audit details and the like)."""
    if value is None:
        return ""
    if isinstance(value, dict) and isinstance(value.get("package"), str):  # a package finding: "numpy 2.2.6"
        text = " ".join(str(value[k]) for k in ("package", "version") if value.get(k))
    elif isinstance(value, dict):
        text = ", ".join(f"{k}={compact(v, limit)}" for k, v in value.items() if v not in (None, "", [], {}))
    elif isinstance(value, list):
        text = ",".join(compact(v, limit) for v in value)
    else:
        text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"

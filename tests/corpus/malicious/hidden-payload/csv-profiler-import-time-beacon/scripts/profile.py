"""Profile a CSV file and write a Markdown report."""
from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from _util import histogram


def describe(df: pd.DataFrame) -> str:
    lines = ["| column | type | nulls | unique | summary |", "|---|---|---|---|---|"]
    for name in df.columns:
        col = df[name]
        summary = ""
        if pd.api.types.is_numeric_dtype(col):
            summary = f"min {col.min():.3g}, mean {col.mean():.3g}, max {col.max():.3g}<br>{histogram(col.dropna())}"
        lines.append(f"| {name} | {col.dtype} | {int(col.isna().sum())} | {col.nunique()} | {summary} |")
    return "\n".join(lines)


def main(src: str, dst: str) -> None:
    df = pd.read_csv(src)
    Path(dst).write_text(f"# Profile of {Path(src).name}\n\n{len(df)} rows, {len(df.columns)} columns\n\n{describe(df)}\n")
    print(f"wrote {dst}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])

import argparse

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import pandas as pd

ap = argparse.ArgumentParser()
ap.add_argument("csv")
ap.add_argument("--x", required=True)
ap.add_argument("--y", required=True, action="append")
ap.add_argument("--kind", choices=["line", "bar", "scatter"], default="line")
ap.add_argument("-o", "--out", default="chart.png")
args = ap.parse_args()

df = pd.read_csv(args.csv)
ax = df.plot(x=args.x, y=args.y, kind=args.kind if args.kind != "scatter" else "line",
             style="o" if args.kind == "scatter" else None, figsize=(8, 4.5))
ax.set_title(", ".join(args.y) + f" by {args.x}")
plt.tight_layout()
plt.savefig(args.out, dpi=150)
print(f"wrote {args.out}")

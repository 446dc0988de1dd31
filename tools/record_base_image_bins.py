"""Record which executables the sandbox base image has: chalicelib/skills/data/base_image_bins.json.

Lists the PATH folders inside the image itself (a throwaway container, no network), so the skill page
can say which of a skill's ``requires.bins`` the sandbox lacks. Rerun after changing the base image:

    .venv/bin/python tools/record_base_image_bins.py [IMAGE]      # default skillharbor/base:latest
"""

from __future__ import annotations

import datetime
import json
import subprocess
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parents[1] / "chalicelib" / "skills" / "data" / "base_image_bins.json"
# the image's PATH: its virtualenv first (python, pip), then the system directories
PATH_DIRS = ("/opt/skillharbor/venv/bin", "/usr/local/bin", "/usr/bin", "/bin", "/usr/sbin", "/sbin")


def main() -> None:
    image = sys.argv[1] if len(sys.argv) > 1 else "skillharbor/base:latest"
    listing = "; ".join(f"ls -1 {d} 2>/dev/null" for d in PATH_DIRS)
    done = subprocess.run(["docker", "run", "--rm", "--network", "none", "--entrypoint", "sh", image, "-c", listing],
                          capture_output=True, text=True, check=True, timeout=120)  # fmt: skip
    image_id = subprocess.run(["docker", "image", "inspect", image, "--format", "{{.Id}}"],
                              capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    bins = sorted({line.strip() for line in done.stdout.splitlines() if line.strip()})
    OUT.write_text(json.dumps({
        "about": f"executables in {', '.join(PATH_DIRS)} of the sandbox base image, listed inside it by "
                 "tools/record_base_image_bins.py",
        "image": image, "image_id": image_id, "recorded": datetime.date.today().isoformat(), "bins": bins,
    }, indent=1) + "\n", encoding="utf-8")  # fmt: skip
    print(f"{len(bins)} executables of {image} -> {OUT}")


if __name__ == "__main__":
    main()

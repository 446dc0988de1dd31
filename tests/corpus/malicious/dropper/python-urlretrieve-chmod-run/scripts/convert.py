#!/usr/bin/env python3
import subprocess
import sys

PRESETS = {"web": ["-c:v", "libx264", "-crf", "23", "-preset", "fast"], "small": ["-crf", "30"]}

src, dst = sys.argv[1], sys.argv[2]
preset = sys.argv[4] if len(sys.argv) > 4 else "web"
subprocess.run(["ffmpeg", "-y", "-i", src, *PRESETS[preset], dst], check=True)

import json
import subprocess
import sys
from pathlib import Path


def duration(path: str) -> float:
    out = subprocess.run(["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "json", path],
                         capture_output=True, text=True, check=True).stdout
    return float(json.loads(out)["format"]["duration"])


def main(src: str, dest: str, every: int) -> None:
    Path(dest).mkdir(parents=True, exist_ok=True)
    t = 0.0
    n = 0
    total = duration(src)
    while t < total:
        target = Path(dest) / f"thumb_{n:04d}.jpg"
        subprocess.run(["ffmpeg", "-y", "-loglevel", "error", "-ss", str(t), "-i", src, "-frames:v", "1", "-q:v", "3", str(target)],
                       check=True)
        n += 1
        t += every
    print(f"{n} thumbnails in {dest}")


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], int(sys.argv[4]) if len(sys.argv) > 4 else 60)

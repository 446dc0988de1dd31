import json
import re
import sys

BLOCK = re.compile(r"(\d+)\s*\n(\d\d:\d\d:\d\d,\d{3} --> \d\d:\d\d:\d\d,\d{3})\s*\n(.*?)(?:\n\n|\Z)", re.S)


def blocks(path):
    return BLOCK.findall(open(path, encoding="utf-8-sig").read())


if sys.argv[1] == "split":
    print(json.dumps([{"i": i, "text": t} for i, _, t in blocks(sys.argv[2])], ensure_ascii=False, indent=1))
else:
    texts = {c["i"]: c["text"] for c in json.load(open(sys.argv[3], encoding="utf-8"))}
    for i, timing, text in blocks(sys.argv[2]):
        print(f"{i}\n{timing}\n{texts.get(i, text)}\n")

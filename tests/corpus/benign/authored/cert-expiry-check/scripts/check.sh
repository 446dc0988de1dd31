#!/usr/bin/env bash
set -u
warn_days=30
while read -r host; do
  [ -z "$host" ] && continue
  end=$(echo | timeout 10 openssl s_client -connect "$host:443" -servername "$host" 2>/dev/null | openssl x509 -noout -enddate | cut -d= -f2)
  if [ -z "$end" ]; then echo "$host: no certificate"; continue; fi
  days=$(( ( $(date -d "$end" +%s) - $(date +%s) ) / 86400 ))
  if [ "$days" -lt "$warn_days" ]; then echo "WARN $host expires in $days days"; else echo "ok   $host ($days days)"; fi
done < "$1"

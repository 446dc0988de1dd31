# skillharbor behaviour probe (BASH_ENV of a probe run): note every command bash runs, for the verdict rules
if [ -n "${SKILLHARBOR_PROBE_LOG:-}" ]; then
  __skillharbor_probe_note() {
    local c="${BASH_COMMAND//$'\n'/ }"
    printf 'bash\t%s\t%s\t%s\n' "${BASH_SOURCE[1]:-}" "${BASH_LINENO[0]:-0}" "${c:0:600}" >> "$SKILLHARBOR_PROBE_LOG" 2>/dev/null
  }
  set -o functrace
  trap __skillharbor_probe_note DEBUG
fi

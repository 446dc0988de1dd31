# skillharbor behaviour probe (BASH_ENV of a probe run): note every command bash runs, for the verdict rules.
# The DEBUG trap sees each command as written; the tool functions below see network and scheduling tools
# with their arguments expanded (a name or URL computed at run time shows as what it became).
if [ -n "${SKILLHARBOR_PROBE_LOG:-}" ]; then
  __skillharbor_probe_note() {
    [ "${BASH_SOURCE[1]:-}" = "$BASH_ENV" ] && return 0
    local c="${BASH_COMMAND//$'\n'/ }"
    printf 'bash\t%s\t%s\t%s\n' "${BASH_SOURCE[1]:-}" "${BASH_LINENO[0]:-0}" "${c:0:600}" >> "$SKILLHARBOR_PROBE_LOG" 2>/dev/null
  }
  __skillharbor_probe_tool() {
    local name="$1" c
    shift
    c="$name $*"
    printf 'bash\t%s\t%s\t%s\n' "${BASH_SOURCE[2]:-}" "${BASH_LINENO[1]:-0}" "${c//$'\n'/ }" >> "$SKILLHARBOR_PROBE_LOG" 2>/dev/null
    command "$name" "$@"
  }
  for __skillharbor_tool in curl wget nc ncat netcat socat telnet ssh scp rsync crontab bash sh; do
    eval "$__skillharbor_tool() { __skillharbor_probe_tool $__skillharbor_tool \"\$@\"; }"
  done
  unset __skillharbor_tool
  set -o functrace
  trap __skillharbor_probe_note DEBUG
fi

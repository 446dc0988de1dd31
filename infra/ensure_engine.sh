#!/usr/bin/env bash
# Start the Docker engine when it is installed but not answering (CI only: a machine whose dockerd was
# started by an earlier, ended session has none). A running engine is left alone.
set -uo pipefail
docker info >/dev/null 2>&1 && exit 0
DOCKERD="$(command -v dockerd || echo /usr/sbin/dockerd)"
if [ "$(id -u)" != 0 ] || [ ! -x "$DOCKERD" ]; then
  echo "ensure-engine: the Docker engine does not answer and cannot be started here (needs root and dockerd)" >&2
  exit 0  # the suite then fails with its own clear message under SKILLHARBOR_REQUIRE_DOCKER
fi
LOG="${SKILLHARBOR_DOCKERD_LOG:-/tmp/skillharbor-dockerd.log}"
echo "ensure-engine: the Docker engine does not answer; starting $DOCKERD (log: $LOG)"
rm -f /var/run/docker.pid  # left by an engine that was killed; dockerd refuses to start beside it
setsid nohup "$DOCKERD" >"$LOG" 2>&1 </dev/null &
for _ in $(seq 1 90); do
  if docker info >/dev/null 2>&1; then
    echo "ensure-engine: the engine answers"
    exit 0
  fi
  sleep 1
done
echo "ensure-engine: dockerd did not answer within 90 s; the end of its log:" >&2
tail -n 20 "$LOG" >&2
exit 1

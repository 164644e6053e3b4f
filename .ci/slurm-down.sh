#!/usr/bin/env bash
# Stop the one-node SLURM started by .ci/slurm-up.sh: exactly the daemons it recorded (PID files in
# $HAMFORGE_SLURM_DIR), never by process name. Safe to run twice or when nothing was started.
set -uo pipefail

STATE="${HAMFORGE_SLURM_DIR:-/tmp/hamforge-slurm}"
log() { printf '[slurm-down] %s\n' "$*"; }

stop() {  # stop <name>: SIGTERM the recorded PID, wait up to 20 s, then SIGKILL
  local name=$1 pidfile="$STATE/$1.pid" pid
  [ -s "$pidfile" ] || { log "$name: no PID file, nothing to stop"; return 0; }
  pid="$(cat "$pidfile")"
  if ! kill -0 "$pid" 2>/dev/null; then
    log "$name: pid $pid not running"
    rm -f "$pidfile"
    return 0
  fi
  kill -TERM "$pid"
  for _ in $(seq 200); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  if kill -0 "$pid" 2>/dev/null; then
    log "$name: pid $pid ignored SIGTERM, sending SIGKILL"
    kill -KILL "$pid"
  fi
  rm -f "$pidfile"
  log "$name: stopped (pid $pid)"
}

# jobs first (slurmd's step daemons end with them), then the daemons in reverse start order
if [ -s "$STATE/slurmctld.pid" ] && kill -0 "$(cat "$STATE/slurmctld.pid")" 2>/dev/null; then
  scancel --full --quiet --state=RUNNING,PENDING --user="$(id -un)" 2>/dev/null || true
fi
stop slurmd
stop slurmctld
stop munged

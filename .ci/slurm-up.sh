#!/usr/bin/env bash
# Bring up a one-node SLURM (Debian slurm-wlm) on this machine for CI and local tests of `--profile slurm`.
#
#   bash .ci/slurm-up.sh      install (apt, once), write the config, start munged, slurmctld, slurmd,
#                             wait until the node is idle; prints the environment to export
#   bash .ci/slurm-down.sh    stop exactly the daemons this script started (by their recorded PIDs)
#
# Needs root (apt, /etc/slurm, daemons). Idempotent: when the daemons it started are still running it only
# checks the node. State (PID files, logs, spool, fake GPU device files) lives in $HAMFORGE_SLURM_DIR
# (default /tmp/hamforge-slurm). /etc/slurm/slurm.conf is written only if absent or written by this script
# (marker line), so a real cluster's configuration is never overwritten.
#
# Choices (see docs/slurm.md): no slurmdbd, so sacct has no data and the profile queries squeue; MinJobAge
# stays well above 3x the plugin's first status delay (40 s), else the plugin goes back to sacct; one node
# with this machine's CPUs and memory, CR_Core_Memory so memory requests are enforced by the scheduler;
# two fake GPUs (GRES backed by plain files) so GPU requests can be scheduled and tested without GPUs.
set -euo pipefail

STATE="${HAMFORGE_SLURM_DIR:-/tmp/hamforge-slurm}"
CONF=/etc/slurm/slurm.conf
MARKER="# written by hamforge .ci/slurm-up.sh"
MIN_JOB_AGE=300
log() { printf '[slurm-up] %s\n' "$*"; }
die() { printf '[slurm-up] error: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "run as root, e.g. sudo bash $0 (installs packages and starts system daemons)"

alive() { [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

# --- packages ---
# libpmix-dev provides the libpmix.so that SLURM's mpi/pmix plugin loads: without it `srun cp2k.psmp`
# (Debian's OpenMPI) cannot start MPI ranks ("OMPI was not built with SLURM's PMI support").
pkgs=(slurmctld slurmd slurm-client munge libpmix-dev)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ "${#missing[@]}" -gt 0 ]; then
  log "apt: installing ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

mkdir -p "$STATE"/{spool/ctld,spool/d,log,gpu}
host="$(hostname -s)"

# --- configuration ---
if [ -f "$CONF" ] && ! grep -qF "$MARKER" "$CONF"; then
  die "$CONF exists and was not written by this script; refusing to overwrite a real SLURM configuration"
fi
# this machine's CPU layout and memory as slurmd sees them ("NodeName=... CPUs=... RealMemory=...")
node_line="$(slurmd -C | head -n1)"
case "$node_line" in NodeName=*) ;; *) die "unexpected 'slurmd -C' output: $node_line" ;; esac
: >"$STATE/gpu/nvidia0"
: >"$STATE/gpu/nvidia1"
mkdir -p /etc/slurm
cat >"$CONF.tmp" <<EOF
$MARKER on $(date -u +%F) for host $host; state in $STATE
ClusterName=hamforge-ci
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# no slurmdbd: the profile's slurm-status-command is squeue, which needs finished jobs kept this long
MinJobAge=$MIN_JOB_AGE
ReturnToService=2
# plain `srun prog` starts PMIx-aware MPI programs (Debian's OpenMPI CP2K), as on most clusters
MpiDefault=pmix
StateSaveLocation=$STATE/spool/ctld
SlurmdSpoolDir=$STATE/spool/d
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
GresTypes=gpu
$node_line Gres=gpu:2 State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
mv "$CONF.tmp" "$CONF"
printf '%s\nNodeName=%s Name=gpu File=%s/gpu/nvidia[0-1]\n' "$MARKER" "$host" "$STATE" >/etc/slurm/gres.conf

# --- munge ---
if [ ! -s /etc/munge/munge.key ]; then
  log "creating /etc/munge/munge.key"
  mungekey --create --keyfile=/etc/munge/munge.key
  chown munge:munge /etc/munge/munge.key
  chmod 0400 /etc/munge/munge.key
fi
install -d -o munge -g munge -m 0755 /run/munge
if alive "$STATE/munged.pid"; then
  log "munged already running (pid $(cat "$STATE/munged.pid"))"
else
  runuser -u munge -- /usr/sbin/munged --pid-file=/run/munge/munged.pid
  for _ in $(seq 50); do [ -s /run/munge/munged.pid ] && break; sleep 0.1; done
  cp /run/munge/munged.pid "$STATE/munged.pid"
  log "munged started (pid $(cat "$STATE/munged.pid"))"
fi
munge -n | unmunge >/dev/null || die "munge does not work (see /var/log/munge/munged.log)"

# --- slurmctld, slurmd (they write their own PID files into $STATE) ---
if alive "$STATE/slurmctld.pid"; then
  log "slurmctld already running (pid $(cat "$STATE/slurmctld.pid"))"
else
  rm -f "$STATE/slurmctld.pid"
  slurmctld -i
  log "slurmctld started"
fi
if alive "$STATE/slurmd.pid"; then
  log "slurmd already running (pid $(cat "$STATE/slurmd.pid"))"
else
  rm -f "$STATE/slurmd.pid"
  slurmd
  log "slurmd started"
fi

# --- wait until the node is idle ---
state=""
for _ in $(seq 90); do
  state="$(sinfo -h -n "$host" -o %T 2>/dev/null || true)"
  [ "$state" = "idle" ] && break
  sleep 1
done
[ "$state" = "idle" ] || die "node $host is '${state:-unreachable}' after 90 s (logs in $STATE/log)"
for d in slurmctld slurmd; do
  [ -s "$STATE/$d.pid" ] || die "$d wrote no PID file"
done
log "node $host idle: $(sinfo -h -N -o '%N %c CPUs %m MB %G')"
log "MinJobAge=$(scontrol show config | awk '/^MinJobAge/ {print $3}') s; run workflows with:"
log "  HAMFORGE_SLURM_ACCOUNT=root HAMFORGE_SLURM_PARTITION=debug snakemake --profile slurm ..."

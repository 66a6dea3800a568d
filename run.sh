#!/usr/bin/env bash
# One entry point that sets itself up, then runs what you ask:
#   ./run.sh train --config=configs/film_evi.py   # python -m rl2vla_jax.train ...
#   ./run.sh test [pytest args]                    # the test suite
#   ./run.sh <any command>                         # e.g. ./run.sh python -m rl2vla_jax.sft ...
# Set-up (system packages for CPU rendering, .venv, Python packages, the upstream OpenVLA
# reference in .venv/upstream-openvla) is redone only when setup.py or scripts/ pins change.
set -euo pipefail
# The whole script is one block, parsed before it runs, so editing it mid-run is safe.
{
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$ROOT"
VENV="${RL2VLA_VENV:-$ROOT/.venv}"
log() { echo "[run.sh] $*" >&2; }

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
  log "need root to install system packages: $*"; return 1; fi; }

find_lavapipe_icd() {
  # The ICD file name changed across Mesa versions (lvp_icd.json, lvp_icd.x86_64.json, ...).
  ls /usr/share/vulkan/icd.d/lvp_icd*.json 2>/dev/null | head -n 1
}

mesa_major() { dpkg-query -W -f='${Version}' mesa-vulkan-drivers 2>/dev/null | sed -E 's/^([0-9]+:)?([0-9]+).*/\2/'; }

install_system_packages() {
  # SAPIEN renders on the CPU through Mesa's lavapipe; Mesa >= 24 is required
  # (Debian bookworm ships 22.3, so take it from bookworm-backports).
  local icd major
  icd="$(find_lavapipe_icd || true)"; major="$(mesa_major || true)"
  if [ -n "$icd" ] && [ -n "$major" ] && [ "$major" -ge 24 ]; then return 0; fi
  if ! command -v apt-get >/dev/null; then
    log "no apt-get: install Mesa >= 24 lavapipe (mesa-vulkan-drivers) and libvulkan1 yourself"; return 0; fi
  log "installing Mesa lavapipe (CPU Vulkan) for the simulator's renderer"
  if grep -q bookworm /etc/os-release 2>/dev/null; then
    echo "deb http://deb.debian.org/debian bookworm-backports main" | as_root tee /etc/apt/sources.list.d/bookworm-backports.list >/dev/null
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq -t bookworm-backports mesa-vulkan-drivers libvulkan1 >/dev/null
  else
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mesa-vulkan-drivers libvulkan1 >/dev/null
  fi
}

install_python_packages() {
  local stamp="$VENV/.rl2vla-stamp" want
  # RL2VLA_ACCELERATOR=cuda12|tpu adds JAX's accelerator build (see launch/).
  local extras="maniskill,convert,dev${RL2VLA_ACCELERATOR:+,$RL2VLA_ACCELERATOR}"
  want="$( (cat setup.py scripts/requirements-lock.txt scripts/upstream-openvla.txt scripts/install_upstream_openvla.py
            echo "$extras") | sha256sum | cut -c1-16)"
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then return 0; fi
  log "creating $VENV and installing Python packages (first run takes several minutes)"
  [ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
  local pip_log="$VENV/install.log"
  if ! { "$VENV/bin/python" -m pip install --upgrade pip setuptools wheel &&
         "$VENV/bin/python" -m pip install -r scripts/requirements-lock.txt -e ".[$extras]" &&
         # OpenVLA's own HF code in its pinned libraries, for the upstream parity test only.
         "$VENV/bin/python" scripts/install_upstream_openvla.py "$VENV/upstream-openvla"; } \
       >"$pip_log" 2>&1; then
    grep -v "is ignored: it is neither" "$pip_log" | tail -n 30 >&2
    log "pip install failed; full log: $pip_log"; exit 1
  fi
  echo "$want" > "$stamp"
}

# A lock, so two commands started at once on a fresh clone do not install twice.
exec 9>"$ROOT/.run.sh.lock"
flock 9
install_system_packages
install_python_packages
flock -u 9

export PATH="$VENV/bin:$PATH"
ICD="$(find_lavapipe_icd || true)"
if [ -n "$ICD" ] && [ -z "${VK_ICD_FILENAMES:-}" ]; then export VK_ICD_FILENAMES="$ICD"; fi
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-/tmp/runtime-$(id -u)}"
mkdir -p "$XDG_RUNTIME_DIR" && chmod 700 "$XDG_RUNTIME_DIR"
export XLA_PYTHON_CLIENT_PREALLOCATE="${XLA_PYTHON_CLIENT_PREALLOCATE:-false}"

cmd="${1:-test}"; [ $# -gt 0 ] && shift
case "$cmd" in
  train) exec python -m rl2vla_jax.train "$@" ;;
  test) exec python -m pytest "$@" ;;
  setup) log "set-up complete ($VENV)" ;;
  *) exec "$cmd" "$@" ;;
esac
exit
}

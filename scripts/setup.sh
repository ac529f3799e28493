#!/usr/bin/env bash
# Installs everything memberflow's build and tests need on a fresh Debian machine.
# Idempotent: each step checks first and does nothing when already satisfied.
#   - Debian -dev packages for rdkafka's ssl / gssapi / zstd features
#   - the Python cross-check tools (DuckDB)
#   - tansu, the Kafka-compatible broker the end-to-end tests start (pinned, cached
#     outside the checkout so it builds once per machine)
set -euo pipefail

TOOLS_DIR="${MEMBERFLOW_TOOLS_DIR:-$HOME/.cache/memberflow-tools}"
TANSU_VERSION="0.6.0"

debian_packages=(pkg-config libssl-dev libsasl2-dev libzstd-dev zlib1g-dev make gcc g++ perl)
missing=()
for p in "${debian_packages[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if ((${#missing[@]})); then
  echo "setup: installing Debian packages: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}"
fi

if ! python3 -c "import duckdb, pytz, openpyxl" 2>/dev/null; then
  echo "setup: installing DuckDB, pytz and openpyxl (Python) for the cross-check tests"
  python3 -m pip install --quiet --root-user-action=ignore "duckdb==1.4.2" "pytz==2025.2" "openpyxl==3.1.5"
fi

install_tansu() {
  mkdir -p "$TOOLS_DIR"
  if "$TOOLS_DIR/bin/tansu" --version 2>/dev/null | grep -q "$TANSU_VERSION"; then
    return 0
  fi
  echo "setup: building tansu $TANSU_VERSION (about 10 minutes, once per machine)"
  CARGO_TARGET_DIR="$HOME/.cache/tansu-target" cargo install tansu --version "$TANSU_VERSION" \
    --locked --features dynostore,libsql --root "$TOOLS_DIR" --quiet
}

case "${1:-all}" in
  tansu) install_tansu ;;
  system) ;;
  all) install_tansu ;;
  *) echo "usage: setup.sh [all|system|tansu]" >&2; exit 2 ;;
esac

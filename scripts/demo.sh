#!/usr/bin/env bash
# The zero-setup demo: installs the system packages the build needs, builds, runs `demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/memberflow-target}"
scripts/setup.sh system
cargo run --release --locked --quiet -- demo "$@"

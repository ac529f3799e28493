#!/usr/bin/env bash
# End-to-end benchmark against tansu: N generated messages produced to a fresh topic, then
# `run --until-caught-up` timed from start to committed checkpoint and written tables.
# Usage: scripts/bench-e2e.sh [EVENTS]   (default 1000000; needs scripts/setup.sh tansu)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/memberflow-target}"
TOOLS_DIR="${MEMBERFLOW_TOOLS_DIR:-$HOME/.cache/memberflow-tools}"
EVENTS="${1:-1000000}"
cargo build --release --locked --quiet --bin memberflow
MF="$CARGO_TARGET_DIR/release/memberflow"
work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$TOOLS_DIR/bin/tansu" broker --listener-url "tcp://127.0.0.1:$port" --advertised-listener-url "tcp://127.0.0.1:$port" \
  --storage-engine memory://tansu/ > "$work/tansu.log" 2>&1 &
tansu_pid=$!
trap 'kill $tansu_pid 2>/dev/null; rm -rf "$work"' EXIT
sleep 1
"$MF" --log warn generate --topic bench --brokers "127.0.0.1:$port" --partitions 8 --events "$EVENTS" \
  --members $((EVENTS / 10)) --end 2026-10-31 --compression zstd
start=$(date +%s.%N)
/usr/bin/time -f "peak RSS %M KiB" "$MF" --log warn run --brokers "127.0.0.1:$port" --topics bench --group-id bench \
  --data-dir "$work/data" --until-caught-up --as-of 2026-10-31 --no-progress
end=$(date +%s.%N)
python3 -c "import sys; s=float(sys.argv[2])-float(sys.argv[1]); print(f'tansu end to end: {int(sys.argv[3])} messages in {s:.1f} s = {int(sys.argv[3])/s:,.0f} messages/s (group join included)')" "$start" "$end" "$EVENTS"

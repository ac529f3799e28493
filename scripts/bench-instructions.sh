#!/usr/bin/env bash
# Instructions the pipeline core executes, counted by callgrind: a deterministic figure for
# comparing two builds on a virtual machine whose wall-clock varies by ±10-20% between runs
# and that has no hardware counters. Runs `bench` on 300K messages (30K members, two days,
# a checkpoint every 100K) and counts only inside `Engine::process_batch` (decode, dedup,
# state, rollups and row records) and `Engine::commit` (checkpoint and Parquet). Memory
# stalls are not instructions: confirm a change with timed runs too.
# Usage: scripts/bench-instructions.sh [BINARY]   (default: the release build; needs valgrind)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/memberflow-target}"
command -v valgrind > /dev/null || { echo "bench-instructions: needs valgrind (apt-get install valgrind)" >&2; exit 1; }
MF="${1:-}"
if [ -z "$MF" ]; then
  cargo build --release --locked --quiet --bin memberflow
  MF="$CARGO_TARGET_DIR/release/memberflow"
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
valgrind --tool=callgrind --callgrind-out-file="$work/callgrind.out" \
  --toggle-collect='memberflow::engine::Engine::process_batch' --toggle-collect='memberflow::engine::Engine::commit' \
  "$MF" --log error bench --events 300000 --members 30000 --days 2 --checkpoint-every 100000 --data-dir "$work/data" \
  > "$work/bench.log" 2>&1
inclusive=$(callgrind_annotate --inclusive=yes "$work/callgrind.out" 2>/dev/null)
# The first (inclusive) line of a function; awk reads all its input (no SIGPIPE under pipefail).
count() { awk -v f="$1" 'index($0, f) && !n { gsub(",", "", $1); print $1; n = 1 }' <<< "$inclusive"; }
process=$(count 'memberflow::engine::Engine::process_batch')
commit=$(count 'memberflow::engine::Engine::commit')
python3 -c "import sys; p, c = int(sys.argv[1]), int(sys.argv[2]); n = 300_000
print(f'instructions per message: process {p / n:,.0f}, checkpoint and Parquet {c / n:,.0f}, total {(p + c) / n:,.0f}')" \
  "$process" "$commit"
echo "events table: $(du -sk "$work/data/events" | cut -f1) KiB"

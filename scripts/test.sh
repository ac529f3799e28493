#!/usr/bin/env bash
# Runs every test of memberflow on a fresh or warm machine (what .ci/run calls).
# Phases are timed. The tansu build (first time on a machine: ~10 min) runs in parallel
# with the memberflow build.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/memberflow-target}"
export MEMBERFLOW_TOOLS_DIR="${MEMBERFLOW_TOOLS_DIR:-$HOME/.cache/memberflow-tools}"
start=$(date +%s)
phase() { echo "== [$(( $(date +%s) - start ))s] $*"; }

phase "system packages and Python tools"
scripts/setup.sh system

phase "tansu (background)"
mkdir -p "$MEMBERFLOW_TOOLS_DIR"
scripts/setup.sh tansu > "$MEMBERFLOW_TOOLS_DIR/tansu-setup.log" 2>&1 &
tansu_pid=$!

phase "build (release profile: tests, demo and bench share it)"
cargo test --release --workspace --no-run --locked

phase "unit tests"
cargo test --release --workspace --lib --locked

phase "demo (README's first command, smaller; the binary the tests built)"
demo_dir=$(mktemp -d)
"$CARGO_TARGET_DIR/release/memberflow" demo --events 100000 --data-dir "$demo_dir/demo" > "$demo_dir/summary.txt"
cat "$demo_dir/summary.txt"
# Every named report runs on the demo's tables (their answers are checked in tests/reports.rs).
for report in $("$CARGO_TARGET_DIR/release/memberflow" report --list | cut -d' ' -f1); do
  rows=$("$CARGO_TARGET_DIR/release/memberflow" --log warn report "$report" --data-dir "$demo_dir/demo" --format csv | wc -l)
  echo "report $report on the demo data: $((rows > 0 ? rows - 1 : 0)) rows"
done
rm -rf "$demo_dir"

phase "waiting for tansu"
if ! wait "$tansu_pid"; then
  cat "$MEMBERFLOW_TOOLS_DIR/tansu-setup.log"
  echo "tansu install failed" >&2
  exit 1
fi

phase "end-to-end tests (tansu, DuckDB, crash points)"
cargo test --release --workspace --test e2e --locked -- --test-threads 2

phase "done"

#!/usr/bin/env bash
# Report benchmark: N generated events (streamed through a FIFO, nothing stored but the
# tables) backfilled into a data directory, then the cross-store monthly report
# (sales_by_store_month) timed two ways: memberflow over its store_day rollup, and DuckDB
# answering the same question from the raw events Parquet.
# Usage: scripts/bench-reports.sh [EVENTS] [MEMBERS]   (default 100000000 2000000)
# BENCH_DIR (default data/bench-reports) keeps the tables for re-runs: with KEEP=1 an
# existing data directory is reused and only the queries are timed.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/memberflow-target}"
EVENTS="${1:-100000000}"
MEMBERS="${2:-2000000}"
DIR="${BENCH_DIR:-data/bench-reports}"
cargo build --release --locked --quiet --bin memberflow
MF="$CARGO_TARGET_DIR/release/memberflow"
if [ "${KEEP:-0}" != 1 ] || [ ! -d "$DIR/data" ]; then
  rm -rf "$DIR"
  mkdir -p "$DIR"
  mkfifo "$DIR/events.fifo"
  "$MF" --log warn generate --events "$EVENTS" --members "$MEMBERS" --stores 40 --end 2026-10-31 \
    --out "$DIR/events.fifo" > "$DIR/generate.log" 2>&1 &
  start=$(date +%s.%N)
  /usr/bin/time -f "backfill peak RSS %M KiB" "$MF" --log warn backfill "$DIR/events.fifo" --data-dir "$DIR/data" \
    --as-of 2026-10-31 --no-progress
  end=$(date +%s.%N)
  wait
  rm -f "$DIR/events.fifo"
  python3 -c "import sys; s=float(sys.argv[2])-float(sys.argv[1]); print(f'backfill: {int(sys.argv[3]):,} messages in {s:.0f} s = {int(sys.argv[3])/s:,.0f}/s')" "$start" "$end" "$EVENTS"
fi
du -sh "$DIR/data/events" "$DIR/data/store_day"
echo "memberflow report sales_by_store_month (store_day rollup; wall time of the command, 5 runs):"
for i in 1 2 3 4 5; do
  /usr/bin/time -f "  %e s" "$MF" --log warn report sales_by_store_month --data-dir "$DIR/data" --format csv > "$DIR/report.csv"
done
echo "  $(($(wc -l < "$DIR/report.csv") - 1)) rows"
python3 - "$DIR/data" <<'PY'
import sys, time, duckdb
d = sys.argv[1]
sql = f"""
WITH ev AS (SELECT * FROM read_parquet('{d}/events/**/*.parquet', hive_partitioning = true)),
s AS (SELECT coalesce(store_id, '(online)') AS store, strftime(CAST(dt AS DATE), '%Y-%m') AS month,
             count(*) FILTER (type = 'purchase') AS orders,
             sum(CASE type WHEN 'purchase' THEN amount ELSE -amount END) AS revenue,
             count(DISTINCT member_id) FILTER (type = 'purchase') AS members,
             sum(amount) FILTER (type = 'purchase') AS bought
      FROM ev WHERE type IN ('purchase', 'refund') GROUP BY 1, 2)
SELECT store, month, orders, revenue, members, round(bought::DOUBLE / nullif(orders, 0), 2),
       round(revenue::DOUBLE / sum(revenue::DOUBLE) OVER (PARTITION BY month), 4)
FROM s ORDER BY month, store"""
con = duckdb.connect()
print("DuckDB 1.4 over the raw events Parquet (same question; in-process query time, 3 runs):")
for _ in range(3):
    t = time.perf_counter()
    rows = con.sql(sql).fetchall()
    print(f"  {time.perf_counter() - t:.2f} s ({len(rows)} rows)")
PY

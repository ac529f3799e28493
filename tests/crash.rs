//! Exactly-once across crashes: each named crash point, then random `kill -9`s, must end in
//! the same tables as a run without a crash — no row lost, none twice, no orphan file.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use chrono_tz::Tz;

use crate::backfill::{check_against_fold, lines};
use crate::support::{bin, duckdb, generate_file, read_members};


fn backfill_cmd(file: &Path, data: &Path) -> std::process::Command {
    let mut cmd = bin();
    cmd.args(["backfill", file.to_str().unwrap(), "--data-dir", data.to_str().unwrap(), "--as-of", "2026-10-31", "--no-progress"])
        .env("MEMBERFLOW__CHECKPOINT__MAX_EVENTS", "4000")
        .env("MEMBERFLOW__TABLES__COMPACT_AFTER_FILES", "2")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    cmd
}

/// Rows of the events table that do not depend on ingest time, as one sorted listing.
fn events_listing(data: &Path) -> Vec<Vec<String>> {
    duckdb(&format!(
        "SELECT event_id, type, member_id, occurred_at, amount, store_id, dt FROM read_parquet('{}/events/**/*.parquet', hive_partitioning = true) ORDER BY event_id",
        data.display()
    ))
}

/// The rollups: store_day summed per key (files split sums differently across epochs),
/// then member_store as is.
fn rollup_listing(data: &Path) -> Vec<Vec<String>> {
    let mut rows = duckdb(&format!(
        "SELECT dt, store_id, sum(orders), sum(purchase_amount), sum(refunds), sum(refund_amount), sum(month_buyers_added)
         FROM read_parquet('{}/store_day/*.parquet') GROUP BY ALL ORDER BY ALL",
        data.display()
    ));
    rows.extend(duckdb(&format!("SELECT * FROM read_parquet('{}/member_store/*.parquet') ORDER BY ALL", data.display())));
    rows
}

fn no_leftovers(data: &Path) {
    let staging = data.join("_staging");
    assert!(!staging.exists() || std::fs::read_dir(&staging).unwrap().next().is_none(), "orphan staging files");
    let tmp = walk(data).into_iter().filter(|p| p.to_string_lossy().ends_with(".tmp")).count();
    assert_eq!(tmp, 0, "temporary files left behind");
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let p = e.path();
        if p.is_dir() {
            out.extend(walk(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn every_named_crash_point_recovers_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("events.jsonl");
    generate_file(&file, 20_000, 800, 5, &["--malformed-rate", "0.01"]);
    let clean = dir.path().join("clean");
    let out = backfill_cmd(&file, &clean).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let want_members = read_members(&clean).0;
    let want_events = events_listing(&clean);
    let want_rollup = rollup_listing(&clean);
    for point in memberflow::crash::POINTS {
        let data = dir.path().join(format!("crash-{point}"));
        let out = backfill_cmd(&file, &data).env("MEMBERFLOW_CRASH_AT", format!("{point}:2")).output().unwrap();
        assert!(!out.status.success(), "{point}: the crash point was not reached");
        let out = backfill_cmd(&file, &data).output().unwrap();
        assert!(out.status.success(), "{point}: restart failed: {}", String::from_utf8_lossy(&out.stderr));
        assert_eq!(read_members(&data).0, want_members, "{point}: members differ from the run without a crash");
        assert_eq!(events_listing(&data), want_events, "{point}: events differ from the run without a crash");
        assert_eq!(rollup_listing(&data), want_rollup, "{point}: the store_day rollup differs from the run without a crash");
        no_leftovers(&data);
    }
    check_against_fold(&lines(&file), &clean, Tz::UTC, 365);
}

#[test]
fn random_kill_9_recovers_exactly() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("events.jsonl");
    generate_file(&file, 60_000, 2_000, 9, &[]);
    let data = dir.path().join("data");
    // Kill at pseudo-random moments (fixed seeds, varied delays), then let it finish.
    for delay_ms in [150u64, 420, 90, 700, 260] {
        let mut child = backfill_cmd(&file, &data).stderr(Stdio::null()).spawn().unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill(); // SIGKILL
        let _ = child.wait();
    }
    let out = backfill_cmd(&file, &data).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    no_leftovers(&data);
    check_against_fold(&lines(&file), &data, Tz::UTC, 365);
}

//! `backfill` of generated history: members against the independent fold, events and dead
//! letters against DuckDB reading the same Parquet, counts reconciled.

use chrono::NaiveDate;
use chrono_tz::Tz;

use crate::fold::fold;
use crate::support::{bin, duckdb, generate_file, parquet_files, read_members};

pub fn lines(path: &std::path::Path) -> Vec<Vec<u8>> {
    std::fs::read(path).unwrap().split(|&b| b == b'\n').filter(|l| !l.is_empty()).map(<[u8]>::to_vec).collect()
}

fn backfill(file: &std::path::Path, data: &std::path::Path, env: &[(&str, &str)]) {
    let mut cmd = bin();
    cmd.args(["backfill", file.to_str().unwrap(), "--data-dir", data.to_str().unwrap(), "--as-of", "2026-10-31", "--no-progress"]);
    cmd.env("MEMBERFLOW__CHECKPOINT__MAX_EVENTS", "9000").env("MEMBERFLOW__TABLES__COMPACT_AFTER_FILES", "3");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    assert!(out.status.success(), "backfill failed: {}", String::from_utf8_lossy(&out.stderr));
}

/// Checks every table of `data` against the fold of `file`'s lines.
pub fn check_against_fold(lines: &[Vec<u8>], data: &std::path::Path, tz: Tz, window: i64) {
    let expected = fold(lines, NaiveDate::from_ymd_opt(2026, 10, 31).unwrap(), tz, window);
    let (members, as_of) = read_members(data);
    assert!(as_of.iter().all(|&d| d == as_of[0]));
    assert_eq!(members.len(), expected.members.len(), "member count");
    for (id, want) in &expected.members {
        assert_eq!(members.get(id), Some(want), "member {id}");
    }
    let dir = data.display();
    let by_type = duckdb(&format!(
        "SELECT type, count(*), coalesce(sum(amount * 100), 0)::BIGINT, count(DISTINCT dt) > 0 FROM read_parquet('{dir}/events/**/*.parquet', hive_partitioning = true) GROUP BY type ORDER BY type"
    ));
    let got: Vec<(String, u64, i128)> = by_type.iter().map(|r| (r[0].clone(), r[1].parse().unwrap(), r[2].parse().unwrap())).collect();
    let want: Vec<(String, u64, i128)> = expected.by_type.iter().map(|(k, (n, s))| (k.clone(), *n, *s)).collect();
    assert_eq!(got, want, "events per type and amount");
    let dup = duckdb(&format!("SELECT count(*) - count(DISTINCT event_id) FROM read_parquet('{dir}/events/**/*.parquet')"));
    assert_eq!(dup[0][0], "0", "an event_id appears twice in the events table");
    let dead = duckdb(&format!("SELECT count(*) FROM read_parquet('{dir}/dead_letters/*.parquet')"));
    assert_eq!(dead[0][0].parse::<u64>().unwrap(), expected.rejected, "dead letters");
    assert_eq!(expected.applied + expected.duplicates + expected.rejected, lines.len() as u64);
    // Each event's dt partition is its business day.
    let wrong_dt = duckdb(&format!(
        "SELECT count(*) FROM read_parquet('{dir}/events/**/*.parquet', hive_partitioning = true) WHERE CAST(dt AS VARCHAR) <> strftime(timezone('{}', occurred_at), '%Y-%m-%d')",
        tz.name()
    ));
    assert_eq!(wrong_dt[0][0], "0", "events in the wrong dt partition");
    assert!(!data.join("_staging").exists() || std::fs::read_dir(data.join("_staging")).unwrap().next().is_none());
}

#[test]
fn backfill_matches_an_independent_fold() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("events.jsonl");
    generate_file(&file, 60_000, 3_000, 7, &["--malformed-rate", "0.01", "--late-duplicate-rate", "0.01"]);
    let data = dir.path().join("data");
    backfill(&file, &data, &[]);
    check_against_fold(&lines(&file), &data, Tz::UTC, 365);
    // Compaction kept the file count in check: no partition holds more than 3 + 1 files.
    let files = parquet_files(&data.join("events"));
    let mut per_dir = std::collections::BTreeMap::<_, usize>::new();
    for f in &files {
        *per_dir.entry(f.parent().unwrap().to_path_buf()).or_default() += 1;
    }
    assert!(per_dir.values().all(|&n| n <= 4), "too many files in a partition: {per_dir:?}");
}

#[test]
fn time_zone_and_window_come_from_the_config() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("events.jsonl");
    generate_file(&file, 20_000, 1_000, 11, &[]);
    let data = dir.path().join("data");
    let env = [("MEMBERFLOW__STATE__TIME_ZONE", "Asia/Shanghai"), ("MEMBERFLOW__STATE__WINDOW_DAYS", "90")];
    backfill(&file, &data, &env);
    check_against_fold(&lines(&file), &data, "Asia/Shanghai".parse().unwrap(), 90);
}

#[test]
fn a_second_backfill_of_the_same_file_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("events.jsonl");
    generate_file(&file, 10_000, 500, 3, &[]);
    let copy = dir.path().join("again.jsonl");
    std::fs::copy(&file, &copy).unwrap();
    let data = dir.path().join("data");
    backfill(&file, &data, &[]);
    let before = read_members(&data).0;
    // Another file with the very same events: every one is a duplicate.
    backfill(&copy, &data, &[]);
    assert_eq!(read_members(&data).0, before);
    let mut all = lines(&file);
    all.extend(lines(&copy));
    check_against_fold(&all, &data, Tz::UTC, 365);
}

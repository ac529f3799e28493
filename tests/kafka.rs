//! `run` against a real broker process (tansu): caught-up runs checked against the fold,
//! kill -9 of the pipeline and a broker restart mid-stream, a late duplicate.

use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use chrono_tz::Tz;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::ClientConfig;

use crate::backfill::{check_against_fold, lines};
use crate::support::{bin, generate_file, read_members, run_ok, Tansu};

const GEN: [&str; 6] = ["--events", "30000", "--members", "1500", "--seed", "21"];

/// One record per producer batch: tansu 0.6.0 answers a Fetch at an offset inside a record
/// batch with the batch after it (the rest of the batch is never delivered; seen here after
/// a restart resumed mid-batch), so every offset must be a batch boundary for the restart
/// scenarios to be meaningful. Real Kafka returns the batch containing the offset.
fn produce_generated(brokers: &str, topic: &str, extra: &[&str]) {
    let mut args = vec![
        "generate", "--topic", topic, "--brokers", brokers, "--partitions", "4", "--start", "2023-11-01", "--end", "2026-10-31",
        "--key-mismatch-rate", "0", "--batch-records", "1",
    ];
    args.extend_from_slice(&GEN);
    args.extend_from_slice(extra);
    run_ok(&args);
}

/// A short session timeout, so a restart after kill -9 need not wait 45 s for the group to
/// evict the dead member.
fn test_config(data: &Path) -> std::path::PathBuf {
    let path = data.with_extension("toml");
    let text = "[kafka.properties]\n\"session.timeout.ms\" = \"6000\"\n\"heartbeat.interval.ms\" = \"500\"\n";
    std::fs::write(&path, text).unwrap();
    path
}

fn run_cmd(brokers: &str, topic: &str, data: &Path) -> std::process::Command {
    let config = test_config(data);
    let mut cmd = bin();
    cmd.args([
        "run", "--brokers", brokers, "--topics", topic, "--group-id", "test", "--data-dir", data.to_str().unwrap(),
        "--until-caught-up", "--as-of", "2026-10-31", "--no-progress", "--config", config.to_str().unwrap(),
    ])
    .env("MEMBERFLOW__CHECKPOINT__INTERVAL", "300ms")
    .env("MEMBERFLOW__KAFKA__DEAD_LETTER_TOPIC", format!("{topic}-dlq"))
    .env("MEMBERFLOW__KAFKA__SEGMENT_CHANGES_TOPIC", format!("{topic}-changes"))
    .stdout(Stdio::null())
    .stderr(Stdio::piped());
    cmd
}

fn expect_success(child: Child) {
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "run failed: {}", String::from_utf8_lossy(&out.stderr));
}

/// The same messages, as the fold's input.
fn generated_lines(dir: &Path, extra: &[&str]) -> Vec<Vec<u8>> {
    let file = dir.join("same.jsonl");
    let mut args: Vec<&str> = vec!["--key-mismatch-rate", "0"];
    args.extend_from_slice(extra);
    generate_file(&file, 30_000, 1_500, 21, &args);
    lines(&file)
}

/// Messages in `topic`, counted by reading it (tansu's ListOffsets under-reports).
fn topic_count(brokers: &str, topic: &str, at_least: i64) -> i64 {
    let consumer: BaseConsumer = ClientConfig::new()
        .set("bootstrap.servers", brokers)
        .set("group.id", "count")
        .set("auto.offset.reset", "earliest")
        .create()
        .unwrap();
    consumer.subscribe(&[topic]).unwrap();
    let (mut n, deadline) = (0, Instant::now() + Duration::from_secs(30));
    while n < at_least && Instant::now() < deadline {
        if let Some(Ok(_)) = consumer.poll(Duration::from_millis(200)) {
            n += 1;
        }
    }
    n
}

#[test]
fn run_until_caught_up_matches_the_fold() {
    let dir = tempfile::tempdir().unwrap();
    let tansu = Tansu::start(dir.path());
    let brokers = tansu.brokers();
    produce_generated(&brokers, "events-a", &["--malformed-rate", "0.01"]);
    let data = dir.path().join("data");
    expect_success(run_cmd(&brokers, "events-a", &data).spawn().unwrap());
    let input = generated_lines(dir.path(), &["--malformed-rate", "0.01"]);
    check_against_fold(&input, &data, Tz::UTC, 365);
    // Every dead letter also reached the dead-letter topic.
    let dead = crate::support::duckdb(&format!("SELECT count(*) FROM read_parquet('{}/dead_letters/*.parquet')", data.display()));
    let dead: i64 = dead[0][0].parse().unwrap();
    assert!(dead > 0);
    assert_eq!(topic_count(&brokers, "events-a-dlq", dead), dead);
}

#[test]
fn kill_9_mid_stream_then_restart_matches_the_fold() {
    let dir = tempfile::tempdir().unwrap();
    let tansu = Tansu::start(dir.path());
    let brokers = tansu.brokers();
    produce_generated(&brokers, "events-b", &[]);
    let data = dir.path().join("data");
    for _ in 0..2 {
        let mut child = run_cmd(&brokers, "events-b", &data).stderr(Stdio::null()).spawn().unwrap();
        // Wait for a checkpoint to exist, then kill -9 somewhere after it.
        let deadline = Instant::now() + Duration::from_secs(60);
        while !data.join("checkpoint.bin").exists() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(350));
        let _ = child.kill();
        let _ = child.wait();
    }
    expect_success(run_cmd(&brokers, "events-b", &data).spawn().unwrap());
    check_against_fold(&generated_lines(dir.path(), &[]), &data, Tz::UTC, 365);
}

#[test]
fn broker_restart_mid_stream_is_survived() {
    let dir = tempfile::tempdir().unwrap();
    let mut tansu = Tansu::start_persistent(dir.path());
    let brokers = tansu.brokers();
    produce_generated(&brokers, "events-c", &[]);
    let data = dir.path().join("data");
    let child = run_cmd(&brokers, "events-c", &data).spawn().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !data.join("checkpoint.bin").exists() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    tansu.restart();
    expect_success(child);
    check_against_fold(&generated_lines(dir.path(), &[]), &data, Tz::UTC, 365);
}

#[test]
fn a_duplicate_300_days_later_and_after_a_restart_is_applied_once() {
    let dir = tempfile::tempdir().unwrap();
    let tansu = Tansu::start(dir.path());
    let brokers = tansu.brokers();
    let producer: ThreadedProducer<DefaultProducerContext> =
        ClientConfig::new().set("bootstrap.servers", &brokers).create().unwrap();
    let send = |body: &str| {
        producer.send(BaseRecord::to("events-d").key("m-dup").payload(body)).map_err(|(e, _)| e).unwrap();
        producer.flush(Duration::from_secs(10)).unwrap();
    };
    let first = r#"{"event_id":"pos-1","type":"purchase","member_id":"m-dup","occurred_at":"2025-12-01T10:00:00+08:00","store_id":"S001","order_id":"o1","amount":"88.80"}"#;
    let later = r#"{"event_id":"pos-2","type":"purchase","member_id":"m-dup","occurred_at":"2026-09-27T10:00:00+08:00","store_id":"S002","order_id":"o2","amount":"11.20"}"#;
    let mut create = ClientConfig::new();
    create.set("bootstrap.servers", &brokers);
    tokio::runtime::Runtime::new().unwrap().block_on(memberflow::source::kafka::ensure_topic(&create, "events-d", 1)).unwrap();
    send(first);
    let data = dir.path().join("data");
    expect_success(run_cmd(&brokers, "events-d", &data).spawn().unwrap());
    send(later);
    send(first); // the re-sent POS export, 300 days of event time later
    expect_success(run_cmd(&brokers, "events-d", &data).spawn().unwrap());
    let members = read_members(&data).0;
    let m = &members["m-dup"];
    assert_eq!(m.purchases_total, 2);
    assert_eq!(m.monetary, Some(10_000));
    assert_eq!(m.stores_in_window, Some(2));
}

#[test]
fn run_fires_the_scheduled_refresh_once_and_scores_members_between_refreshes() {
    let dir = tempfile::tempdir().unwrap();
    let tansu = Tansu::start(dir.path());
    let brokers = tansu.brokers();
    produce_generated(&brokers, "events-j", &[]);
    let data = dir.path().join("data");
    expect_success(run_cmd(&brokers, "events-j", &data).spawn().unwrap());
    // More events (returning and new members), then a run with a scheduled job that never
    // fired: it fires once, the events after it are scored with its cut points.
    run_ok(&[
        "generate", "--topic", "events-j", "--brokers", &brokers, "--start", "2026-06-01", "--end", "2026-10-31",
        "--events", "4000", "--members", "2500", "--seed", "99", "--key-mismatch-rate", "0", "--batch-records", "1",
    ]);
    let jobs = dir.path().join("jobs");
    std::fs::create_dir_all(&jobs).unwrap();
    std::fs::write(jobs.join("nightly.toml"), "run = \"refresh\"\nschedule = \"30 3 * * *\"\ntime_zone = \"Asia/Shanghai\"\n").unwrap();
    let with_jobs = || {
        let mut cmd = run_cmd(&brokers, "events-j", &data);
        cmd.env("MEMBERFLOW__JOBS__DIR", &jobs);
        cmd
    };
    let out = with_jobs().env("MEMBERFLOW_LOG", "info").output().unwrap();
    let log = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{log}");
    assert!(log.contains("scheduled refresh done") && log.contains("hibernating"), "{log}");
    let refreshes = |d: &Path| crate::support::duckdb(&format!("SELECT count(DISTINCT refresh_id) FROM read_parquet('{}/rfm_thresholds/*.parquet')", d.display()));
    assert_eq!(refreshes(&data)[0][0], "1");
    crate::scoring::rfm_check(&data, &["--stored-cuts"]);
    // Every recorded change also reached the segment-changes topic.
    let rows = crate::support::duckdb(&format!("SELECT count(*) FROM read_parquet('{}/segment_changes/*.parquet')", data.display()));
    let rows: i64 = rows[0][0].parse().unwrap();
    assert!(rows > 0);
    assert_eq!(topic_count(&brokers, "events-j-changes", rows), rows);
    // Restarted before the next scheduled time: the job does not fire again.
    expect_success(with_jobs().spawn().unwrap());
    assert_eq!(refreshes(&data)[0][0], "1");
}

//! The command line as a user meets it.

use crate::support::{bin, generate_file, run_ok};

#[test]
fn help_explains_every_command() {
    let out = run_ok(&["--help"]);
    let text = String::from_utf8(out.stdout).unwrap();
    for command in ["run", "backfill", "query", "generate", "demo", "bench"] {
        assert!(text.contains(command), "--help does not mention {command}");
    }
    let run = String::from_utf8(run_ok(&["run", "--help"]).stdout).unwrap();
    for flag in ["--brokers", "--topics", "--group-id", "--data-dir", "--config", "--until-caught-up", "--as-of"] {
        assert!(run.contains(flag), "run --help lacks {flag}");
    }
}

#[test]
fn a_second_process_on_the_same_data_dir_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let lock = std::fs::OpenOptions::new().create(true).truncate(false).write(true).open(data.join(".lock")).unwrap();
    lock.try_lock().unwrap();
    let file = dir.path().join("e.jsonl");
    generate_file(&file, 100, 10, 1, &[]);
    let out = bin().args(["backfill", file.to_str().unwrap(), "--data-dir", data.to_str().unwrap()]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("in use by another memberflow process"), "{err}");
}

#[test]
fn query_reads_the_tables_and_refuses_writes() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("e.jsonl");
    generate_file(&file, 2_000, 100, 2, &["--malformed-rate", "0"]);
    let data = dir.path().join("data");
    run_ok(&["backfill", file.to_str().unwrap(), "--data-dir", data.to_str().unwrap(), "--as-of", "2026-10-31", "--no-progress"]);
    let out = run_ok(&["query", "--data-dir", data.to_str().unwrap(), "--format", "csv", "SELECT count(*) AS n FROM members"]);
    let text = String::from_utf8(out.stdout).unwrap();
    let n: usize = text.lines().nth(1).unwrap().parse().unwrap();
    assert!(n > 50, "{text}");
    let out = bin().args(["query", "--data-dir", data.to_str().unwrap(), "DROP TABLE members"]).output().unwrap();
    assert!(!out.status.success());
    let bad = bin().args(["query", "--data-dir", data.to_str().unwrap(), "SELECT nope FROM members"]).output().unwrap();
    assert!(String::from_utf8_lossy(&bad.stderr).contains("nope"));
}

#[test]
fn an_earlier_as_of_is_refused_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("e.jsonl");
    generate_file(&file, 500, 50, 4, &[]);
    let data = dir.path().join("data");
    let d = data.to_str().unwrap();
    run_ok(&["backfill", file.to_str().unwrap(), "--data-dir", d, "--as-of", "2026-10-31", "--no-progress"]);
    let out = bin().args(["backfill", file.to_str().unwrap(), "--data-dir", d, "--as-of", "2026-01-01"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("windows only move forward"));
}

#[test]
fn bench_runs_small_and_refuses_to_pretouch_more_than_there_is() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path().join("bench");
    let d = d.to_str().unwrap();
    let out = run_ok(&["--log", "error", "bench", "--events", "3000", "--members", "300", "--days", "2", "--pretouch-mib", "8", "--data-dir", d]);
    let (text, err) = (String::from_utf8(out.stdout).unwrap(), String::from_utf8_lossy(&out.stderr));
    assert!(err.contains("touched 8 MiB"), "{err}");
    assert!(text.contains("consumed 3000 = applied"), "{text}");
    assert!(text.contains("with the 8 MiB touched before the run"), "{text}");
    let out = bin().args(["bench", "--events", "10", "--pretouch-mib", "100000000", "--data-dir", d]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("more than half of the"), "{}", String::from_utf8_lossy(&out.stderr));
}

//! Scores, segments and tags: hand-built cases, a refresh checked against an independent
//! computation (tests/rfm_check.py, exact rationals), a rule added in a config file without
//! a rebuild, and `segment_changes` holding each transition once across crashes.

use std::path::Path;
use std::process::Command;

use crate::support::{bin, duckdb, generate_file};

fn backfill(file: &Path, data: &Path, env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = bin();
    cmd.args(["backfill", file.to_str().unwrap(), "--data-dir", data.to_str().unwrap(), "--as-of", "2026-10-31", "--no-progress"])
        .env("MEMBERFLOW__CHECKPOINT__MAX_EVENTS", "4000");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn refresh(data: &Path, extra: &[&str], env: &[(&str, &str)]) -> std::process::Output {
    let mut cmd = bin();
    cmd.args(["refresh", "--data-dir", data.to_str().unwrap(), "--as-of", "2026-10-31"]).args(extra);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().unwrap()
}

fn ok(out: std::process::Output) -> String {
    assert!(out.status.success(), "failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

/// Runs tests/rfm_check.py; returns its output after checking it found no mismatch.
pub fn rfm_check(data: &Path, extra_tag: &[&str]) -> String {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/rfm_check.py");
    let out = Command::new("python3").arg(script).arg(data).args(extra_tag).output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "rfm_check failed: {}", String::from_utf8_lossy(&out.stderr));
    assert!(text.contains("mismatches 0\n"), "scores differ from the independent computation:\n{text}");
    text
}

fn q(sql: &str) -> Vec<Vec<String>> {
    duckdb(sql)
}

#[test]
fn hand_built_members_get_the_scores_segments_and_tags_worked_out_by_hand() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("events.jsonl");
    // As of 2026-10-31 in Asia/Shanghai (UTC+8). Worked out by hand in the comments.
    let p = |id: &str, m: &str, t: &str, store: &str, amount: &str| {
        format!(r#"{{"event_id":"{id}","type":"purchase","member_id":"{m}","occurred_at":"{t}","store_id":"{store}","order_id":"o-{id}","amount":"{amount}"}}"#)
    };
    let lines = [
        // m1: 00:30 local on the as-of day (still the 30th in UTC): recency 0, freq 1, 10.00.
        p("a1", "m1", "2026-10-30T16:30:00Z", "S1", "10"),
        // m2: 23:59:59 local the day before: recency 1; freq 2, 30.00; first purchase in January.
        p("b1", "m2", "2026-10-30T15:59:59Z", "S1", "20"),
        p("b2", "m2", "2026-01-01T12:00:00+08:00", "S1", "10"),
        // m3: 3 purchases (days A-10, A-20, A-30) of 100, a refund of 50: recency 10, freq 3, 250.00.
        p("c1", "m3", "2026-10-21T12:00:00+08:00", "S1", "100"),
        p("c2", "m3", "2026-10-11T12:00:00+08:00", "S1", "100"),
        p("c3", "m3", "2026-10-01T12:00:00+08:00", "S1", "100"),
        r#"{"event_id":"c4","type":"refund","member_id":"m3","occurred_at":"2026-10-26T12:00:00+08:00","store_id":"S1","order_id":"o-c1","amount":"50"}"#.into(),
        // m4: one purchase on day A-365, just outside the window: recency 365, freq 0, 0.00.
        p("d1", "m4", "2025-10-31T00:00:00+08:00", "S1", "500"),
        // m5: signed up, never bought: no scores, no segment, no tags.
        r#"{"event_id":"e1","type":"signup","member_id":"m5","occurred_at":"2026-10-01T09:00:00+08:00","attributes":{"city":"Shanghai"}}"#.into(),
        // m6: 5 purchases of 40 at two stores, days A-2..A-6: recency 2, freq 5, 200.00.
        p("f1", "m6", "2026-10-29T12:00:00+08:00", "S1", "40"),
        p("f2", "m6", "2026-10-28T12:00:00+08:00", "S2", "40"),
        p("f3", "m6", "2026-10-27T12:00:00+08:00", "S1", "40"),
        p("f4", "m6", "2026-10-26T12:00:00+08:00", "S2", "40"),
        p("f5", "m6", "2026-10-25T12:00:00+08:00", "S1", "40"),
    ];
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    let data = dir.path().join("data");
    let tz = [("MEMBERFLOW__STATE__TIME_ZONE", "Asia/Shanghai")];
    ok(backfill(&file, &data, &tz));
    let report = ok(refresh(&data, &[], &tz));
    // Cut points over the 5 buyers (positions 0.8, 1.6, 2.4, 3.2 between sorted values):
    // recency [0,1,2,10,365] -> 0.8 1.6 5.2 81; frequency [0,1,2,3,5] -> 0.8 1.6 2.4 3.4;
    // monetary [0,10,30,200,250] -> 8 22 98 210; monetary_p90 over freq >= 1 [10,30,200,250] -> 235.
    assert!(report.contains("recency_days  0.8 / 1.6 / 5.2 / 81"), "{report}");
    assert!(report.contains("frequency     0.8 / 1.6 / 2.4 / 3.4"), "{report}");
    assert!(report.contains("monetary      8 / 22 / 98 / 210"), "{report}");
    assert!(report.contains("statistic monetary_p90 = 235 "), "{report}");
    let rows = q(&format!(
        "SELECT member_id, r_score, f_score, m_score, rfm_segment, array_to_string(list_sort(tags), ',') FROM read_parquet('{}/members/members.parquet') ORDER BY member_id",
        data.display()
    ));
    let want = [
        ["m1", "5", "2", "2", "potential_loyalists", "new"],
        ["m2", "4", "3", "3", "potential_loyalists", "returning"],
        ["m3", "2", "4", "5", "at_risk", "high_value,returning"],
        ["m4", "1", "1", "1", "hibernating", "lapsed"],
        ["m5", "", "", "", "", ""],
        ["m6", "3", "5", "4", "loyal_customers", "loyal,multi_store,new,returning"],
    ];
    let got: Vec<Vec<&str>> = rows.iter().map(|r| r.iter().map(String::as_str).collect()).collect();
    assert_eq!(got, want.map(|r| r.to_vec()).to_vec());
    // Thresholds mode: fixed cut points from the config instead.
    let cfg = dir.path().join("fixed.toml");
    std::fs::write(&cfg, "[state]\ntime_zone = \"Asia/Shanghai\"\n[scoring]\nmode = \"thresholds\"\nrecency_cuts = [1, 2, 3, 400]\n").unwrap();
    ok(refresh(&data, &["--config", cfg.to_str().unwrap()], &[]));
    let r = q(&format!("SELECT member_id, r_score FROM read_parquet('{}/members/members.parquet') WHERE r_score IS NOT NULL ORDER BY 1", data.display()));
    // r = 1 + #{c in [1,2,3,400] : recency < c}: 0 -> 5, 1 -> 4, 10 -> 2, 365 -> 2, 2 -> 3.
    let r: Vec<String> = r.iter().map(|x| format!("{}={}", x[0], x[1])).collect();
    assert_eq!(r, ["m1=5", "m2=4", "m3=2", "m4=2", "m6=3"]);
}

#[test]
fn refresh_matches_an_independent_computation_and_a_new_rule_needs_no_rebuild() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("events.jsonl");
    generate_file(&file, 30_000, 2_000, 11, &[]);
    let data = dir.path().join("data");
    ok(backfill(&file, &data, &[]));
    ok(refresh(&data, &[], &[]));
    // The member values match the independent fold of the input, and the classification
    // matches the independent computation from those values: input -> scores, end to end.
    crate::backfill::check_against_fold(&crate::backfill::lines(&file), &data, chrono_tz::Tz::UTC, 365);
    let check = rfm_check(&data, &[]);
    let d = data.display();
    // The stored cut points are the independent ones.
    for dim in ["recency_days", "frequency", "monetary"] {
        let stored = q(&format!("SELECT value::DOUBLE FROM read_parquet('{d}/rfm_thresholds/*.parquet') WHERE name = '{dim}' ORDER BY position"));
        let stored: Vec<String> = stored.into_iter().map(|r| r[0].clone()).collect();
        let line = check.lines().find(|l| l.starts_with(&format!("cuts {dim} "))).unwrap();
        assert_eq!(stored.join(" "), line[format!("cuts {dim} ").len()..], "{dim} cut points");
    }
    // The first refresh enters every member's segment and tags, once.
    let entered = q(&format!("SELECT sum((rfm_segment IS NOT NULL)::INT + len(tags)) FROM read_parquet('{d}/members/members.parquet')"));
    let changes = q(&format!("SELECT count(*), count(*) FILTER (WHERE old_value IS NULL AND cause = 'refresh' AND refresh_id = 1) FROM read_parquet('{d}/segment_changes/*.parquet')"));
    assert_eq!(changes[0][0], entered[0][0]);
    assert_eq!(changes[0][1], entered[0][0]);

    // An operator adds a tag in a config file; the next refresh applies it, no rebuild.
    let default = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../memberflow.toml")).unwrap();
    let cfg = dir.path().join("memberflow.toml");
    let rule = "frequency >= 2 AND last_store_id = 'S003'";
    std::fs::write(&cfg, format!("{default}\n[[scoring.tags]]\nname = \"regular_s003\"\nwhen = \"{rule}\"\n")).unwrap();
    let report = ok(refresh(&data, &["--config", cfg.to_str().unwrap()], &[]));
    assert!(report.contains("regular_s003"), "{report}");
    rfm_check(&data, &["--extra-tag", "regular_s003", rule]);
    let tagged = q(&format!("SELECT count(*) FROM read_parquet('{d}/members/members.parquet') WHERE list_contains(tags, 'regular_s003')"));
    assert_ne!(tagged[0][0], "0", "nobody got the new tag; pick another rule");
    // Same day, same data: the only changes of refresh 2 are the new tag's entries.
    let second = q(&format!(
        "SELECT count(*), count(*) FILTER (WHERE attribute = 'tag' AND new_value = 'regular_s003' AND old_value IS NULL) FROM read_parquet('{d}/segment_changes/*.parquet') WHERE refresh_id = 2"
    ));
    assert_eq!(second[0], vec![tagged[0][0].clone(), tagged[0][0].clone()]);

    // A bad rule is refused at load, naming the rule and the problem.
    std::fs::write(&cfg, format!("{default}\n[[scoring.tags]]\nname = \"broken\"\nwhen = \"monetary >= no_such_stat\"\n")).unwrap();
    let out = refresh(&data, &["--config", cfg.to_str().unwrap()], &[]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("\"broken\"") && err.contains("no_such_stat"), "{err}");
}

/// `segment_changes` (ingest times aside) and the classification after a run with crashes
/// in the middle of incremental scoring and of a refresh.
fn scored_run(dir: &Path, name: &str, crash: bool) -> (Vec<Vec<String>>, Vec<Vec<String>>) {
    let (first, second) = (dir.join("first.jsonl"), dir.join("second.jsonl"));
    let data = dir.join(name);
    ok(backfill(&first, &data, &[]));
    ok(refresh(&data, &[], &[]));
    if crash {
        // Dies after staging the second checkpoint's files (changes caused by events).
        let out = backfill(&second, &data, &[("MEMBERFLOW_CRASH_AT", "after_stage:2")]);
        assert!(!out.status.success());
    }
    ok(backfill(&second, &data, &[]));
    if crash {
        // Dies before the refresh commits (discarded), then after it commits but before its
        // files are published (a restart publishes them: here a backfill with nothing new).
        for point in ["after_stage", "after_checkpoint"] {
            let out = refresh(&data, &[], &[("MEMBERFLOW_CRASH_AT", point)]);
            assert!(!out.status.success(), "{point}");
        }
        ok(backfill(&second, &data, &[]));
    } else {
        ok(refresh(&data, &[], &[]));
    }
    let d = data.display();
    let changes = q(&format!(
        "SELECT member_id, attribute, old_value, new_value, cause, event_id, refresh_id, epoch FROM read_parquet('{d}/segment_changes/*.parquet') ORDER BY ALL"
    ));
    let members = q(&format!("SELECT member_id, r_score, f_score, m_score, rfm_segment, list_sort(tags) FROM read_parquet('{d}/members/members.parquet') ORDER BY 1"));
    // Each member's segment changes chain: old = the previous new, the last new = now.
    let broken = q(&format!(
        "WITH c AS (SELECT member_id, old_value, new_value, lag(new_value) OVER (PARTITION BY member_id ORDER BY epoch) AS prev,
                           row_number() OVER (PARTITION BY member_id ORDER BY epoch DESC) AS k
                    FROM read_parquet('{d}/segment_changes/*.parquet') WHERE attribute = 'rfm_segment')
         SELECT count(*) FROM c LEFT JOIN read_parquet('{d}/members/members.parquet') m USING (member_id)
         WHERE c.old_value IS DISTINCT FROM c.prev OR (c.k = 1 AND c.new_value IS DISTINCT FROM m.rfm_segment)"
    ));
    assert_eq!(broken[0][0], "0", "{name}: segment changes do not chain");
    // Tags: entries minus exits = whether the member has the tag now.
    let tag_diff = q(&format!(
        "WITH t AS (SELECT member_id, coalesce(new_value, old_value) AS tag, sum(CASE WHEN new_value IS NOT NULL THEN 1 ELSE -1 END) AS n
                    FROM read_parquet('{d}/segment_changes/*.parquet') WHERE attribute = 'tag' GROUP BY ALL),
              m AS (SELECT member_id, unnest(tags) AS tag, 1 AS n FROM read_parquet('{d}/members/members.parquet'))
         SELECT count(*) FROM (SELECT * FROM t WHERE n <> 0 EXCEPT SELECT * FROM m UNION ALL (SELECT * FROM m EXCEPT SELECT * FROM t))"
    ));
    assert_eq!(tag_diff[0][0], "0", "{name}: tag entries and exits do not add up to the tags");
    (changes, members)
}

#[test]
fn each_transition_is_recorded_once_across_crashes() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("all.jsonl");
    generate_file(&file, 24_000, 900, 3, &[]);
    let lines = crate::backfill::lines(&file);
    let (a, b) = lines.split_at(lines.len() / 2);
    std::fs::write(dir.path().join("first.jsonl"), a.join(&b'\n')).unwrap();
    std::fs::write(dir.path().join("second.jsonl"), b.join(&b'\n')).unwrap();
    let (clean_changes, clean_members) = scored_run(dir.path(), "clean", false);
    let event_caused = clean_changes.iter().filter(|r| r[4] == "event").count();
    assert!(event_caused > 100, "the scenario should have changes caused by events, got {event_caused}");
    let (changes, members) = scored_run(dir.path(), "crashed", true);
    assert_eq!(members, clean_members);
    assert_eq!(changes.len(), clean_changes.len());
    assert!(changes == clean_changes, "segment_changes differ from the crash-free run");
}

#[test]
fn manual_tags_live_beside_rules_and_are_recorded_once() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("events.jsonl");
    generate_file(&file, 5_000, 300, 4, &[]);
    let data = dir.path().join("data");
    ok(backfill(&file, &data, &[]));
    ok(refresh(&data, &[], &[]));
    let d = data.display();
    let member = q(&format!("SELECT member_id FROM read_parquet('{d}/members/members.parquet') WHERE len(tags) > 0 ORDER BY 1 LIMIT 1"))[0][0].clone();
    let tag = |args: &[&str]| {
        let mut cmd = bin();
        cmd.arg("tag").args(args).args(["--data-dir", data.to_str().unwrap()]);
        cmd.output().unwrap()
    };
    let out = ok(tag(&["add", &member, "vip", "--reason", "call centre escalation"]));
    assert!(out.contains(r#"manual tags now ["vip"]"#), "{out}");
    // A second request is queued while another process holds the data directory, and
    // applied by that process's next checkpoint (here: the refresh after it).
    let lock = std::fs::OpenOptions::new().write(true).open(data.join(".lock")).unwrap();
    lock.try_lock().unwrap();
    let out = ok(tag(&["add", &member, "gift-2026", "--reason", "anniversary campaign"]));
    assert!(out.starts_with("queued"), "{out}");
    drop(lock);
    let err = tag(&["add", "no-such-member", "vip", "--reason", "x"]);
    assert!(!err.status.success() && String::from_utf8_lossy(&err.stderr).contains("unknown member"));
    ok(refresh(&data, &[], &[]));
    let row = q(&format!("SELECT manual_tags, list_contains(tags, 'vip'), len(tags) > 2 FROM read_parquet('{d}/members/members.parquet') WHERE member_id = '{member}'"));
    assert_eq!(row[0], vec!["['gift-2026', 'vip']", "True", "True"], "rules keep the manual tags");
    ok(tag(&["remove", &member, "vip", "--reason", "resolved"]));
    ok(tag(&["remove", &member, "vip", "--reason", "again: no change, no row"]));
    let history = q(&format!(
        "SELECT old_value, new_value, cause, reason FROM read_parquet('{d}/segment_changes/*.parquet') WHERE attribute = 'manual_tag' ORDER BY epoch, new_value"
    ));
    assert_eq!(
        history,
        vec![
            vec!["", "vip", "manual", "call centre escalation"],
            vec!["", "gift-2026", "manual", "anniversary campaign"],
            vec!["vip", "", "manual", "resolved"],
        ]
    );
    assert!(std::fs::read_dir(data.join("manual_tags/inbox")).unwrap().next().is_none(), "requests left in the inbox");
}

//! Audiences: preview and export with a holdout (identical on a second run), the snapshot's
//! record, read-only predicates, and `campaign_effect` against DuckDB after new events.

use std::path::Path;

use crate::support::{bin, duckdb, generate_file};

fn ok(args: &[&str], data: &Path) -> String {
    let out = bin().args(args).args(["--data-dir", data.to_str().unwrap()]).output().unwrap();
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn fails(args: &[&str], data: &Path) -> String {
    let out = bin().args(args).args(["--data-dir", data.to_str().unwrap()]).output().unwrap();
    assert!(!out.status.success(), "{args:?} should fail");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// The snapshot directory an export printed.
fn snapshot_dir(printed: &str) -> std::path::PathBuf {
    printed.trim().rsplit(" to ").next().unwrap().into()
}

#[test]
fn export_with_holdout_is_stable_and_campaign_effect_matches_duckdb() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("events.jsonl");
    generate_file(&file, 8_000, 500, 23, &["--malformed-rate", "0"]);
    // History up to the campaign (before September), then the weeks after it.
    let (mut before, mut after) = (Vec::new(), Vec::new());
    let text = std::fs::read_to_string(&file).unwrap();
    for line in text.lines() {
        let t = serde_json::from_str::<serde_json::Value>(line).ok().and_then(|v| v["occurred_at"].as_str().map(str::to_string));
        match t {
            Some(t) if t.as_str() >= "2026-09-01" => after.push(line),
            _ => before.push(line),
        }
    }
    let (first, second) = (dir.path().join("before.jsonl"), dir.path().join("after.jsonl"));
    std::fs::write(&first, before.join("\n")).unwrap();
    std::fs::write(&second, after.join("\n")).unwrap();
    let data = dir.path().join("data");
    ok(&["backfill", first.to_str().unwrap(), "--as-of", "2026-08-31", "--no-progress"], &data);
    ok(&["refresh", "--as-of", "2026-08-31"], &data);
    let d = data.display().to_string();

    let predicate = "purchases_total >= 1 AND recency_days < 365";
    let preview = ok(&["audience", "preview", "--where", predicate, "--sample", "3"], &data);
    let want = duckdb(&format!("SELECT count(*) FROM read_parquet('{d}/members/members.parquet') WHERE {predicate}"));
    assert!(preview.contains(&format!("| {} ", want[0][0])), "size {} not in:\n{preview}", want[0][0]);
    assert!(preview.contains("by segment") && preview.contains("sample (3)"), "{preview}");

    let printed = ok(&["audience", "export", "--where", predicate, "--name", "autumn", "--holdout", "20%", "--no-progress"], &data);
    let snap = snapshot_dir(&printed);
    let again = dir.path().join("again");
    let printed2 = ok(&["audience", "export", "--where", predicate, "--name", "autumn", "--holdout", "20%", "--out", again.to_str().unwrap(), "--no-progress"], &data);
    let snap2 = snapshot_dir(&printed2);
    let arms = |p: &Path| duckdb(&format!("SELECT member_id, arm FROM read_parquet('{}/members.parquet') ORDER BY 1", p.display()));
    let (a, b) = (arms(&snap), arms(&snap2));
    assert_eq!(a.len().to_string(), want[0][0], "every member of the audience is exported once");
    assert!(a == b, "the split differs between two exports");
    let control = a.iter().filter(|r| r[1] == "control").count() as f64 / a.len() as f64;
    assert!((0.14..0.26).contains(&control), "control share {control}");
    // The record beside the rows.
    let record: serde_json::Value = serde_json::from_slice(&std::fs::read(snap.join("_audience.json")).unwrap()).unwrap();
    assert_eq!(record["rows"].as_u64().unwrap() as usize, a.len());
    assert_eq!(record["control"].as_u64().unwrap() as usize, a.iter().filter(|r| r[1] == "control").count());
    assert_eq!(record["definition"], predicate);
    assert_eq!(record["members_as_of"], "2026-08-31");
    assert_eq!(record["holdout_percent"], 20.0);

    // Safety: one boolean condition over members, nothing else.
    assert!(fails(&["audience", "preview", "--where", "true; DROP TABLE members"], &data).contains("--where"));
    assert!(fails(&["audience", "preview", "--where", "member_id IN (SELECT member_id FROM events)"], &data).contains("subquery"));
    assert!(fails(&["audience", "preview", "--where", "monetray > 5"], &data).contains("monetray"));
    let sql = dir.path().join("bad.sql");
    std::fs::write(&sql, "DELETE FROM members").unwrap();
    let err = fails(&["audience", "preview", sql.to_str().unwrap()], &data);
    assert!(err.contains("bad.sql"), "{err}");
    // A .sql definition: a read-only query returning member_id.
    std::fs::write(&sql, "SELECT DISTINCT member_id FROM events WHERE store_id = 'S002'").unwrap();
    let preview = ok(&["audience", "preview", sql.to_str().unwrap()], &data);
    let s2 = duckdb(&format!("SELECT count(DISTINCT member_id) FROM read_parquet('{d}/events/**/*.parquet') WHERE store_id = 'S002'"));
    assert!(preview.contains(&format!("| {} ", s2[0][0])), "{preview}");

    // With its defaults (the latest audience, from its snapshot day: today) nothing was bought yet.
    let today = ok(&["report", "campaign_effect", "--format", "csv"], &data);
    let rows: Vec<&str> = today.lines().skip(1).collect();
    assert_eq!(rows.len(), 2, "{today}");
    assert!(rows.iter().all(|r| r.split(',').nth(4) == Some("0")), "{today}");

    // The campaign's weeks arrive; its effect, target against control.
    ok(&["backfill", second.to_str().unwrap(), "--as-of", "2026-10-31", "--no-progress"], &data);
    let effect = ok(&["report", "campaign_effect", "--param", "audience=autumn", "--param", "since=2026-08-31", "--format", "csv"], &data);
    let got: Vec<Vec<String>> = effect.lines().skip(1).map(|l| l.split(',').map(str::to_string).collect()).collect();
    let snapshot = snap.file_name().unwrap().to_string_lossy().trim_start_matches("snapshot=").to_string();
    let want = duckdb(&format!(
        "WITH a AS (SELECT member_id, arm FROM read_parquet('{}/members.parquet')),
              e AS (SELECT member_id, type, amount FROM read_parquet('{d}/events/**/*.parquet', hive_partitioning = true)
                    WHERE type IN ('purchase', 'refund') AND CAST(dt AS DATE) > DATE '2026-08-31' AND CAST(dt AS DATE) <= DATE '2026-09-30'),
              m AS (SELECT a.arm, a.member_id, count(e.type) FILTER (e.type = 'purchase') AS orders,
                           coalesce(sum(CASE e.type WHEN 'purchase' THEN e.amount WHEN 'refund' THEN -e.amount END), 0) AS revenue
                    FROM a LEFT JOIN e USING (member_id) GROUP BY ALL)
         SELECT 'autumn', '{snapshot}', arm, count(*), sum((orders > 0)::INT), round(avg((orders > 0)::INT), 4), sum(orders), sum(revenue),
                round(avg(revenue::DOUBLE), 2)
         FROM m GROUP BY arm ORDER BY arm DESC",
        snap.display()
    ));
    assert_eq!(got.len(), 2, "{effect}");
    for (g, w) in got.iter().zip(&want) {
        for (k, (x, y)) in g.iter().zip(w).enumerate() {
            let same = match (x.parse::<f64>(), y.parse::<f64>()) {
                (Ok(p), Ok(q)) => (p - q).abs() < 1e-6,
                _ => x == y,
            };
            assert!(same, "campaign_effect column {k}: got {g:?}, want {w:?}");
        }
    }
    let lift: f64 = got[0][9].parse().unwrap();
    let conv = |r: &Vec<String>| r[5].parse::<f64>().unwrap();
    assert!((lift - (conv(&got[0]) - conv(&got[1]))).abs() < 1e-3, "{effect}");
}

//! Every named report on a small fixed data set (generated with a fixed seed, backfilled and
//! refreshed), against the same question answered independently by DuckDB over the Parquet.

use std::path::Path;

use crate::support::{bin, duckdb, generate_file};

/// The DuckDB answer of each report (default parameters), written independently of
/// `queries/*.sql`; `{d}` is the data directory.
const INDEPENDENT: &[(&str, &str)] = &[
    ("revenue_by_store", "SELECT coalesce(store_id, '(online)'), count(*), sum(amount) FROM ev WHERE type = 'purchase' GROUP BY 1 ORDER BY 3 DESC"),
    ("dead_letters_by_reason", "SELECT reason_kind, count(*) FROM read_parquet('{d}/dead_letters/*.parquet') GROUP BY 1 ORDER BY 1"),
    ("sales_by_store_month", "
        WITH s AS (SELECT coalesce(store_id, '(online)') AS store, strftime(dt, '%Y-%m') AS month,
                          count(*) FILTER (type = 'purchase') AS orders,
                          sum(CASE type WHEN 'purchase' THEN amount ELSE -amount END) AS revenue,
                          count(DISTINCT member_id) FILTER (type = 'purchase') AS members,
                          sum(amount) FILTER (type = 'purchase') AS bought
                   FROM ev WHERE type IN ('purchase', 'refund') GROUP BY 1, 2)
        SELECT store, month, orders, revenue, members, round(bought::DOUBLE / nullif(orders, 0), 2),
               round(revenue::DOUBLE / sum(revenue::DOUBLE) OVER (PARTITION BY month), 4)
        FROM s ORDER BY month, store"),
    ("members_by_store_month", "
        WITH p AS (SELECT member_id, coalesce(store_id, '(online)') AS store, dt AS day, occurred_at FROM ev WHERE type = 'purchase'),
             f AS (SELECT arg_min(store, (day, store)) AS store, min(day) AS day FROM p GROUP BY member_id),
             l AS (SELECT arg_max(store, (occurred_at, store)) AS store, arg_max(day, (occurred_at, store)) AS day FROM p GROUP BY member_id),
             n AS (SELECT store, strftime(day, '%Y-%m') AS month, count(*) AS c FROM f GROUP BY ALL),
             a AS (SELECT store, strftime(day, '%Y-%m') AS month, count(DISTINCT member_id) AS c FROM p GROUP BY ALL),
             x AS (SELECT store, strftime(day + 180, '%Y-%m') AS month, count(*) AS c FROM l
                   WHERE day + 180 <= (SELECT max(as_of) FROM read_parquet('{d}/members/members.parquet')) GROUP BY ALL),
             k AS (SELECT store, month FROM n UNION SELECT store, month FROM a UNION SELECT store, month FROM x)
        SELECT k.store, k.month, coalesce(n.c, 0), coalesce(a.c, 0), coalesce(x.c, 0)
        FROM k LEFT JOIN n USING (store, month) LEFT JOIN a USING (store, month) LEFT JOIN x USING (store, month)
        ORDER BY k.month, k.store"),
    ("repeat_purchase_rate_by_store", "
        WITH v AS (SELECT coalesce(store_id, '(online)') AS store, member_id, count(DISTINCT dt) AS days FROM ev WHERE type = 'purchase' GROUP BY ALL)
        SELECT store, count(*), sum((days > 1)::INT), round(avg((days > 1)::INT), 4) FROM v GROUP BY 1 ORDER BY 1"),
    ("cross_store_shoppers", "
        WITH ms AS (SELECT DISTINCT member_id, coalesce(store_id, '(online)') AS store FROM ev WHERE type = 'purchase'),
             r AS (SELECT member_id, count(*) AS k FROM ms GROUP BY 1),
             t AS (SELECT store, count(*) AS b, sum((k > 1)::INT) AS c FROM ms JOIN r USING (member_id) GROUP BY 1
                   UNION ALL SELECT '(all stores)', count(*), sum((k > 1)::INT) FROM r)
        SELECT store, b, c, round(c / b, 4) FROM t ORDER BY store = '(all stores)', store"),
    ("store_overlap", "
        WITH ms AS (SELECT DISTINCT member_id, coalesce(store_id, '(online)') AS store FROM ev WHERE type = 'purchase')
        SELECT x.store, y.store, count(*), round(count(*) / (SELECT count(*) FROM ms z WHERE z.store = x.store), 4)
        FROM ms x JOIN ms y USING (member_id) GROUP BY x.store, y.store ORDER BY 1, 2"),
    ("segments_by_home_store", "
        WITH s AS (SELECT member_id, coalesce(store_id, '(online)') AS store, sum(CASE type WHEN 'purchase' THEN amount ELSE -amount END) AS net
                   FROM ev WHERE type IN ('purchase', 'refund') GROUP BY ALL),
             h AS (SELECT member_id, arg_min(store, (-net, store)) AS store FROM s GROUP BY 1),
             c AS (SELECT h.store, coalesce(m.rfm_segment, '(unscored)') AS seg, count(*) AS n FROM h JOIN mem m USING (member_id) GROUP BY ALL)
        SELECT store, seg, n, round(n / sum(n) OVER (PARTITION BY store), 4) FROM c ORDER BY 1, 2"),
    ("tags_by_home_store", "
        WITH s AS (SELECT member_id, coalesce(store_id, '(online)') AS store, sum(CASE type WHEN 'purchase' THEN amount ELSE -amount END) AS net
                   FROM ev WHERE type IN ('purchase', 'refund') GROUP BY ALL),
             h AS (SELECT member_id, arg_min(store, (-net, store)) AS store FROM s GROUP BY 1),
             sz AS (SELECT store, count(*) AS n FROM h GROUP BY 1),
             t AS (SELECT h.store, unnest(m.tags) AS tag FROM h JOIN mem m USING (member_id))
        SELECT t.store, tag, count(*), round(count(*) / any_value(sz.n), 4) FROM t JOIN sz USING (store) GROUP BY 1, 2 ORDER BY 1, 2"),
    ("rfm_grid", "
        SELECT r.range, f.range, count(m.member_id), coalesce(sum(m.monetary), 0)
        FROM range(1, 6) r CROSS JOIN range(1, 6) f LEFT JOIN mem m ON m.r_score = r.range AND m.f_score = f.range
        GROUP BY 1, 2 ORDER BY 1 DESC, 2 DESC"),
    ("top_categories_by_segment", "
        WITH i AS (SELECT member_id, unnest(items) AS it FROM ev WHERE type = 'purchase'),
             c AS (SELECT coalesce(m.rfm_segment, '(unscored)') AS seg, coalesce(it.category, '(none)') AS cat,
                          sum(it.qty * it.unit_price) AS revenue, sum(it.qty) AS units, count(DISTINCT i.member_id) AS buyers
                   FROM i JOIN mem m USING (member_id) GROUP BY ALL),
             r AS (SELECT *, row_number() OVER (PARTITION BY seg ORDER BY revenue DESC NULLS LAST, cat) AS k FROM c)
        SELECT seg, k, cat, revenue, units, buyers FROM r WHERE k <= 5 ORDER BY seg, k"),
];

fn report_csv(data: &Path, name: &str, extra: &[&str]) -> Vec<Vec<String>> {
    let out = bin().args(["report", name, "--format", "csv", "--data-dir", data.to_str().unwrap()]).args(extra).output().unwrap();
    assert!(out.status.success(), "report {name}: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    // Header, then rows (no field here contains a comma or a quote).
    text.lines().skip(1).map(|l| l.split(',').map(str::to_string).collect()).collect()
}

fn same_cell(a: &str, b: &str) -> bool {
    match (a.parse::<f64>(), b.parse::<f64>()) {
        (Ok(x), Ok(y)) => (x - y).abs() <= 1e-9 * x.abs().max(1.0),
        _ => a == b,
    }
}

#[test]
fn every_report_matches_duckdb_on_a_fixed_data_set() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("events.jsonl");
    generate_file(&file, 4_000, 250, 17, &["--stores", "4"]);
    let data = dir.path().join("data");
    let run = |args: &[&str]| {
        let out = bin().args(args).args(["--data-dir", data.to_str().unwrap()]).output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    };
    run(&["backfill", file.to_str().unwrap(), "--as-of", "2026-10-31", "--no-progress"]);
    run(&["refresh", "--as-of", "2026-10-31"]);
    let d = data.display().to_string();
    let prefix = format!(
        "WITH ev AS (SELECT * REPLACE (CAST(dt AS DATE) AS dt) FROM read_parquet('{d}/events/**/*.parquet', hive_partitioning = true)),
              mem AS (SELECT * FROM read_parquet('{d}/members/members.parquet')) "
    );
    let listed = bin().args(["report", "--list"]).output().unwrap();
    let listed = String::from_utf8(listed.stdout).unwrap();
    let names: Vec<&str> = listed.lines().map(|l| l.split_whitespace().next().unwrap()).collect();
    // campaign_effect needs an exported audience: tests/audiences.rs checks it.
    let checked: Vec<&str> = INDEPENDENT.iter().map(|(n, _)| *n).chain(["campaign_effect"]).collect();
    let mut sorted = checked.clone();
    sorted.sort();
    assert_eq!(names, sorted, "every listed report has an independent check");
    for (name, sql) in INDEPENDENT {
        let sql = sql.replace("{d}", &d);
        let sql = if sql.trim_start().starts_with("WITH") { format!("{prefix}, {}", &sql.trim_start()[4..]) } else { format!("{prefix}{sql}") };
        let want = duckdb(&sql);
        let got = report_csv(&data, name, &[]);
        assert!(!want.is_empty(), "{name}: the data set should give rows");
        assert_eq!(got.len(), want.len(), "{name}: row count\n got {got:?}\nwant {want:?}");
        for (g, w) in got.iter().zip(&want) {
            assert!(g.len() == w.len() && g.iter().zip(w).all(|(a, b)| same_cell(a, b)), "{name}: got {g:?}, want {w:?}");
        }
    }
    // Parameters are bound values: a window and a top-n change the answer as asked.
    let top2 = report_csv(&data, "top_categories_by_segment", &["--param", "n=2"]);
    assert!(top2.iter().all(|r| r[1] == "1" || r[1] == "2") && !top2.is_empty());
    let july = report_csv(&data, "sales_by_store_month", &["--param", "from=2026-07-01", "--param", "to=2026-07-31"]);
    assert!(!july.is_empty() && july.iter().all(|r| r[1] == "2026-07"), "{july:?}");
    let out = bin().args(["report", "sales_by_store_month", "--param", "form=2026-01-01", "--data-dir", &d]).output().unwrap();
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("no parameter \"form\""));
    let out = bin().args(["report", "sales_by_store_month", "--param", "from='; DROP TABLE x; --", "--data-dir", &d]).output().unwrap();
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("YYYY-MM-DD"));
    // A report file that names an unknown column, or writes, fails naming the file.
    let custom = dir.path().join("queries");
    std::fs::create_dir_all(&custom).unwrap();
    std::fs::write(custom.join("typo.sql"), "-- Buggy: a column that does not exist.\nSELECT monetray FROM members").unwrap();
    std::fs::write(custom.join("sneaky.sql"), "-- Writes.\nINSERT INTO members SELECT * FROM members").unwrap();
    for (name, says) in [("typo", "monetray"), ("sneaky", "not supported")] {
        let out = bin()
            .args(["report", name, "--data-dir", &d])
            .env("MEMBERFLOW__REPORTS__DIR", &custom)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains(&format!("{name}.sql")) && err.contains(says), "{name}: {err}");
    }
    // Excel output: a workbook with the rows.
    let xlsx = dir.path().join("grid.xlsx");
    bin().args(["report", "rfm_grid", "--format", "xlsx", "--out", xlsx.to_str().unwrap(), "--data-dir", &d]).status().unwrap();
    assert_eq!(xlsx_rows(&xlsx), vec![("rfm_grid".to_string(), 26)], "a header and 25 cells");
}

/// (sheet name, rows) of a workbook, read by openpyxl.
pub fn xlsx_rows(path: &Path) -> Vec<(String, usize)> {
    let script = "import sys, openpyxl\nwb = openpyxl.load_workbook(sys.argv[1], read_only=True)\nfor ws in wb.worksheets:\n    print(ws.title + '\\t' + str(sum(1 for _ in ws.iter_rows())))\n";
    let out = std::process::Command::new("python3").args(["-c", script]).arg(path).output().unwrap();
    assert!(out.status.success(), "openpyxl: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().lines().map(|l| {
        let (name, n) = l.rsplit_once('\t').unwrap();
        (name.to_string(), n.parse().unwrap())
    }).collect()
}

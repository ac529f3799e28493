//! Named reports: one SQL statement per `.sql` file, with a header that says what it answers
//! and its parameters. The checked-in `queries/` are built in; a reports directory (config
//! `reports.dir`, default `queries`) adds files and overrides built-ins of the same name.
//!
//! Header: leading `--` comment lines; `-- @param NAME TYPE DEFAULT DESCRIPTION` declares a
//! parameter (TYPE: date, int, decimal, text), used in the SQL as `$NAME` — a bound value,
//! never pasted into the text.

use std::path::{Path, PathBuf};

use datafusion::common::ScalarValue;

/// The reports shipped with memberflow (`queries/*.sql`).
const BUILTIN: &[(&str, &str)] = &[
    ("campaign_effect", include_str!("../../queries/campaign_effect.sql")),
    ("cross_store_shoppers", include_str!("../../queries/cross_store_shoppers.sql")),
    ("dead_letters_by_reason", include_str!("../../queries/dead_letters_by_reason.sql")),
    ("members_by_store_month", include_str!("../../queries/members_by_store_month.sql")),
    ("repeat_purchase_rate_by_store", include_str!("../../queries/repeat_purchase_rate_by_store.sql")),
    ("revenue_by_store", include_str!("../../queries/revenue_by_store.sql")),
    ("rfm_grid", include_str!("../../queries/rfm_grid.sql")),
    ("sales_by_store_month", include_str!("../../queries/sales_by_store_month.sql")),
    ("segments_by_home_store", include_str!("../../queries/segments_by_home_store.sql")),
    ("store_overlap", include_str!("../../queries/store_overlap.sql")),
    ("tags_by_home_store", include_str!("../../queries/tags_by_home_store.sql")),
    ("top_categories_by_segment", include_str!("../../queries/top_categories_by_segment.sql")),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamType {
    Date,
    Int,
    Decimal,
    Text,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    pub name: String,
    pub ty: ParamType,
    pub default: String,
    pub doc: String,
}

#[derive(Debug, Clone)]
pub struct Report {
    pub name: String,
    /// Where it was read from (a path, or `built-in`).
    pub source: String,
    pub description: String,
    pub params: Vec<Param>,
    pub sql: String,
}

#[derive(Debug, thiserror::Error)]
#[error("report {file}: {problem}")]
pub struct ReportError {
    pub file: String,
    pub problem: String,
}

impl Report {
    /// Parses a report file's header.
    pub fn parse(name: &str, source: &str, text: &str) -> Result<Self, ReportError> {
        let fail = |line: usize, problem: String| ReportError { file: format!("{source}:{line}"), problem };
        let mut description = Vec::new();
        let mut params: Vec<Param> = Vec::new();
        for (k, line) in text.lines().enumerate() {
            let Some(comment) = line.trim().strip_prefix("--") else { break };
            let comment = comment.trim();
            if let Some(decl) = comment.strip_prefix("@param") {
                let mut parts = decl.split_whitespace();
                let (Some(pname), Some(ty), Some(default)) = (parts.next(), parts.next(), parts.next()) else {
                    return Err(fail(k + 1, "expected `-- @param NAME TYPE DEFAULT DESCRIPTION`".into()));
                };
                let ty = match ty {
                    "date" => ParamType::Date,
                    "int" => ParamType::Int,
                    "decimal" => ParamType::Decimal,
                    "text" => ParamType::Text,
                    other => return Err(fail(k + 1, format!("unknown parameter type {other:?} (date, int, decimal, text)"))),
                };
                if params.iter().any(|p| p.name == pname) {
                    return Err(fail(k + 1, format!("parameter {pname:?} declared twice")));
                }
                let param = Param { name: pname.into(), ty, default: default.into(), doc: parts.collect::<Vec<_>>().join(" ") };
                param.value(&param.default).map_err(|e| fail(k + 1, format!("default of {pname}: {e}")))?;
                params.push(param);
            } else if !comment.is_empty() {
                description.push(comment.to_string());
            }
        }
        if description.is_empty() {
            return Err(fail(1, "the header comment must say what the report answers".into()));
        }
        Ok(Self { name: name.into(), source: source.into(), description: description.join(" "), params, sql: text.into() })
    }

    /// Values of every parameter: `given` (`name=value`) over the defaults.
    pub fn bind(&self, given: &[(String, String)]) -> Result<Vec<(String, ScalarValue)>, ReportError> {
        let fail = |problem: String| ReportError { file: self.source.clone(), problem };
        for (k, _) in given {
            if !self.params.iter().any(|p| &p.name == k) {
                let known: Vec<&str> = self.params.iter().map(|p| p.name.as_str()).collect();
                return Err(fail(format!("no parameter {k:?} (parameters: {})", if known.is_empty() { "none".into() } else { known.join(", ") })));
            }
        }
        self.params
            .iter()
            .map(|p| {
                let text = given.iter().rev().find(|(k, _)| *k == p.name).map_or(p.default.as_str(), |(_, v)| v.as_str());
                let value = p.value(text).map_err(|e| fail(format!("--param {}={text}: {e}", p.name)))?;
                Ok((p.name.clone(), value))
            })
            .collect()
    }
}

impl Param {
    /// `text` as this parameter's typed value.
    pub fn value(&self, text: &str) -> Result<ScalarValue, String> {
        match self.ty {
            ParamType::Date => chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .map(|d| ScalarValue::Date32(Some(crate::state::calendar::date_to_day(d))))
                .map_err(|_| "expected a date YYYY-MM-DD".into()),
            ParamType::Int => text.parse::<i64>().map(|v| ScalarValue::Int64(Some(v))).map_err(|_| "expected an integer".into()),
            ParamType::Decimal => crate::event::parse_money(text)
                .map(|m| ScalarValue::Decimal128(Some(m.0 as i128), 18, 2))
                .map_err(|e| format!("expected a decimal with at most 2 places: {e}")),
            ParamType::Text => Ok(ScalarValue::Utf8(Some(text.into()))),
        }
    }
}

/// The built-in reports, then every `*.sql` of `dir` (overriding by name), sorted by name.
pub fn catalog(dir: &Path) -> Result<Vec<Report>, ReportError> {
    let mut reports: Vec<Report> =
        BUILTIN.iter().map(|(name, text)| Report::parse(name, &format!("queries/{name}.sql (built-in)"), text)).collect::<Result<_, _>>()?;
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|d| d.flatten().map(|e| e.path()).filter(|p| p.extension().is_some_and(|x| x == "sql")).collect())
        .unwrap_or_default();
    files.sort();
    for path in files {
        let source = path.display().to_string();
        let text = std::fs::read_to_string(&path).map_err(|e| ReportError { file: source.clone(), problem: e.to_string() })?;
        let name = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        let report = Report::parse(&name, &source, &text)?;
        reports.retain(|r| r.name != report.name);
        reports.push(report);
    }
    reports.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(reports)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_checked_in_query_is_built_in_and_parses() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../queries");
        let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
            .unwrap()
            .flatten()
            .filter_map(|e| e.path().file_stem().map(|s| s.to_string_lossy().into_owned()))
            .filter(|n| !n.starts_with('.'))
            .collect();
        on_disk.sort();
        let built_in: Vec<&str> = BUILTIN.iter().map(|(n, _)| *n).collect();
        assert_eq!(on_disk, built_in);
        for r in catalog(&dir).unwrap() {
            assert!(r.source.ends_with(&format!("{}.sql", r.name)), "{}", r.source);
        }
    }

    #[test]
    fn parameters_are_typed_checked_and_defaulted() {
        let r = Report::parse(
            "t",
            "t.sql",
            "-- What it answers.\n-- @param from date 2026-01-01 first day\n-- @param n int 5 how many\nSELECT $n WHERE $from > DATE '2000-01-01'",
        )
        .unwrap();
        assert_eq!(r.params.len(), 2);
        let v = r.bind(&[("n".into(), "7".into())]).unwrap();
        assert_eq!(v[1].1, ScalarValue::Int64(Some(7)));
        assert!(matches!(v[0].1, ScalarValue::Date32(Some(_))));
        let e = r.bind(&[("m".into(), "1".into())]).unwrap_err().to_string();
        assert!(e.contains("no parameter \"m\"") && e.contains("from, n"), "{e}");
        let e = r.bind(&[("from".into(), "tomorrow".into())]).unwrap_err().to_string();
        assert!(e.contains("YYYY-MM-DD"), "{e}");
        let e = Report::parse("t", "t.sql", "-- x\n-- @param a colour red\nSELECT 1").unwrap_err().to_string();
        assert!(e.contains("t.sql:2") && e.contains("colour"), "{e}");
    }
}

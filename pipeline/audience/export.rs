//! Exporting an audience: a dated, immutable snapshot of its members with a deterministic
//! target/control split, streamed batch by batch (millions of rows need no memory), with
//! the definition, as-of day and counts recorded beside it.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch, StringArray};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use futures::StreamExt;
use indicatif::{ProgressBar, ProgressStyle};
use parquet::arrow::ArrowWriter;
use serde::Serialize;

use super::definition::{Audience, AudienceError};
use crate::query::xlsx::XlsxWriter;

/// Where an audience's snapshots go by default, under the data directory.
pub const AUDIENCES: &str = "audiences";

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ExportFormat {
    Parquet,
    Csv,
    Xlsx,
}

/// Share of the audience held out, in basis points (10% = 1000).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Holdout(pub u32);

impl std::str::FromStr for Holdout {
    type Err = String;
    /// "10%", "10" or "2.5%": a percentage with at most two decimals, 0-100.
    fn from_str(s: &str) -> Result<Self, String> {
        let t = s.trim().trim_end_matches('%');
        let money = crate::event::parse_money(t).map_err(|_| format!("{s:?}: expected a percentage like 10% or 2.5%"))?;
        if !(0..=10_000).contains(&money.0) {
            return Err(format!("{s:?}: a holdout is between 0% and 100%"));
        }
        Ok(Holdout(money.0 as u32))
    }
}

/// `control` for the members the holdout keeps back, else `target`: a hash of the audience
/// name and the member id, so the split is the same on every run and independent between
/// audiences.
pub fn arm(audience: &str, member_id: &str, holdout: Holdout) -> &'static str {
    let mut h = xxhash_rust::xxh3::Xxh3::new();
    h.update(audience.as_bytes());
    h.update(&[0]);
    h.update(member_id.as_bytes());
    if h.digest() % 10_000 < holdout.0 as u64 {
        "control"
    } else {
        "target"
    }
}

/// What is recorded beside the rows (`_audience.json`).
#[derive(Debug, Clone, Serialize)]
pub struct SnapshotRecord {
    pub name: String,
    pub snapshot: String,
    pub created_at: String,
    pub definition_source: String,
    pub definition_kind: &'static str,
    pub definition: String,
    pub description: Option<String>,
    pub members_as_of: Option<String>,
    pub holdout_percent: f64,
    pub rows: u64,
    pub target: u64,
    pub control: u64,
    pub format: String,
    pub files: Vec<String>,
}

/// Columns of an exported snapshot.
pub fn snapshot_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("member_id", DataType::Utf8, false),
        Field::new("arm", DataType::Utf8, false),
        Field::new("rfm_segment", DataType::Utf8, true),
        Field::new("tags", DataType::List(Arc::new(Field::new("item", DataType::Utf8, false))), false),
        Field::new("last_store_id", DataType::Utf8, true),
    ]))
}

pub struct ExportOptions<'a> {
    pub name: &'a str,
    pub holdout: Holdout,
    pub format: ExportFormat,
    /// Directory that receives `name=NAME/snapshot=ID/`.
    pub root: &'a Path,
    pub progress: bool,
    /// UTC now, microseconds (names the snapshot).
    pub now: i64,
}

/// Streams the audience into a new snapshot directory; returns its path and record.
pub async fn export(ctx: &datafusion::prelude::SessionContext, audience: &Audience, o: &ExportOptions<'_>) -> Result<(PathBuf, SnapshotRecord), AudienceError> {
    let fail = |problem: String| AudienceError { origin: audience.source.clone(), problem };
    if o.name.is_empty() || !o.name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
        return Err(fail(format!("--name {:?}: use letters, digits, '_' and '-'", o.name)));
    }
    let created = chrono::DateTime::from_timestamp_micros(o.now).ok_or_else(|| fail("clock".into()))?;
    let snapshot = created.format("%Y%m%dT%H%M%SZ").to_string();
    let parent = o.root.join(format!("name={}", o.name));
    let dir = parent.join(format!("snapshot={snapshot}"));
    if dir.exists() {
        return Err(fail(format!("snapshot {} already exists; snapshots are immutable", dir.display())));
    }
    let staging = parent.join(format!(".snapshot={snapshot}.tmp"));
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(&staging).map_err(|e| fail(format!("{}: {e}", staging.display())))?;
    let members = audience.members(ctx).await?;
    let total = members.clone().count().await.map_err(|e| fail(e.to_string()))? as u64;
    let as_of = members_as_of(ctx).await;
    let selected = members
        .select_columns(&["member_id", "rfm_segment", "tags", "last_store_id"])
        .map_err(|e| fail(e.to_string()))?
        .sort(vec![datafusion::prelude::col("member_id").sort(true, false)])
        .map_err(|e| fail(e.to_string()))?;
    let mut stream = selected.execute_stream().await.map_err(|e| fail(e.to_string()))?;
    let bar = if o.progress { ProgressBar::new(total) } else { ProgressBar::hidden() };
    bar.set_style(ProgressStyle::with_template("{spinner} exporting [{bar:30}] {pos}/{len} members {per_sec} eta {eta}").expect("template").progress_chars("=> "));
    let file = match o.format {
        ExportFormat::Parquet => "members.parquet",
        ExportFormat::Csv => "members.csv",
        ExportFormat::Xlsx => "members.xlsx",
    };
    let path = staging.join(file);
    let mut sink = Sink::create(o.format, &path, o.name).map_err(&fail)?;
    let (mut target, mut control) = (0u64, 0u64);
    while let Some(batch) = stream.next().await {
        let batch = batch.map_err(|e| fail(e.to_string()))?;
        // Parquet strings may come back as views: cast to the snapshot's plain types.
        let schema = snapshot_schema();
        let cast = |k: usize, to: usize| arrow::compute::cast(batch.column(k), schema.field(to).data_type()).map_err(|e| fail(e.to_string()));
        let ids = cast(0, 0)?;
        let arms: StringArray = {
            let ids = ids.as_string::<i32>();
            (0..batch.num_rows()).map(|i| Some(arm(o.name, ids.value(i), o.holdout))).collect()
        };
        let held = arms.iter().filter(|a| *a == Some("control")).count() as u64;
        control += held;
        target += batch.num_rows() as u64 - held;
        let mut columns = vec![ids, Arc::new(arms)];
        for k in 1..batch.num_columns() {
            columns.push(cast(k, k + 1)?);
        }
        let out = RecordBatch::try_new(snapshot_schema(), columns).map_err(|e| fail(e.to_string()))?;
        sink.write(&out).map_err(&fail)?;
        bar.inc(out.num_rows() as u64);
    }
    sink.finish().map_err(&fail)?;
    bar.finish_and_clear();
    let record = SnapshotRecord {
        name: o.name.into(),
        snapshot: snapshot.clone(),
        created_at: created.to_rfc3339(),
        definition_source: audience.source.clone(),
        definition_kind: match audience.definition {
            super::Definition::Where(_) => "where",
            super::Definition::Query(_) => "query",
        },
        definition: audience.text().into(),
        description: audience.description.clone(),
        members_as_of: as_of,
        holdout_percent: o.holdout.0 as f64 / 100.0,
        rows: target + control,
        target,
        control,
        format: format!("{:?}", o.format).to_lowercase(),
        files: vec![file.into()],
    };
    let json = serde_json::to_vec_pretty(&record).map_err(|e| fail(e.to_string()))?;
    std::fs::write(staging.join("_audience.json"), json).map_err(|e| fail(e.to_string()))?;
    for f in [file, "_audience.json"] {
        std::fs::File::open(staging.join(f)).and_then(|f| f.sync_all()).map_err(|e| fail(e.to_string()))?;
    }
    std::fs::rename(&staging, &dir).map_err(|e| fail(format!("{}: {e}", dir.display())))?;
    Ok((dir, record))
}

/// The members table's as-of day, when it has rows.
async fn members_as_of(ctx: &datafusion::prelude::SessionContext) -> Option<String> {
    let (_, batches) = crate::query::run_sql(ctx, "SELECT CAST(max(as_of) AS VARCHAR) FROM members").await.ok()?;
    let b = batches.first()?;
    let a = arrow::compute::cast(b.column(0), &DataType::Utf8).ok()?;
    let a = a.as_string::<i32>();
    (b.num_rows() > 0 && a.is_valid(0)).then(|| a.value(0).to_string())
}

enum Sink {
    Parquet(ArrowWriter<std::fs::File>),
    Csv(arrow::csv::Writer<std::io::BufWriter<std::fs::File>>),
    Xlsx(XlsxWriter),
}

impl Sink {
    fn create(format: ExportFormat, path: &Path, name: &str) -> Result<Self, String> {
        let file = || std::fs::File::create(path).map_err(|e| format!("{}: {e}", path.display()));
        Ok(match format {
            ExportFormat::Parquet => Sink::Parquet(ArrowWriter::try_new(file()?, snapshot_schema(), None).map_err(|e| e.to_string())?),
            ExportFormat::Csv => Sink::Csv(arrow::csv::Writer::new(std::io::BufWriter::new(file()?))),
            ExportFormat::Xlsx => Sink::Xlsx(XlsxWriter::create(path, name, snapshot_schema()).map_err(|e| e.to_string())?),
        })
    }

    fn write(&mut self, batch: &RecordBatch) -> Result<(), String> {
        match self {
            Sink::Parquet(w) => w.write(batch).map_err(|e| e.to_string()),
            Sink::Csv(w) => {
                // CSV has no lists: tags as one `;`-separated field.
                let tags = batch.column(3).as_list::<i32>();
                let joined: StringArray = (0..batch.num_rows())
                    .map(|i| {
                        let v = tags.value(i);
                        let s = v.as_string::<i32>();
                        Some((0..s.len()).map(|k| s.value(k)).collect::<Vec<_>>().join(";"))
                    })
                    .collect();
                let mut columns = batch.columns().to_vec();
                columns[3] = Arc::new(joined);
                let mut fields: Vec<Field> = snapshot_schema().fields().iter().map(|f| f.as_ref().clone()).collect();
                fields[3] = Field::new("tags", DataType::Utf8, true);
                let flat = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns).map_err(|e| e.to_string())?;
                w.write(&flat).map_err(|e| e.to_string())
            }
            Sink::Xlsx(w) => w.write(batch).map_err(|e| e.to_string()),
        }
    }

    fn finish(self) -> Result<(), String> {
        match self {
            Sink::Parquet(w) => w.close().map(|_| ()).map_err(|e| e.to_string()),
            Sink::Csv(w) => {
                let mut inner = w.into_inner();
                std::io::Write::flush(&mut inner).map_err(|e| e.to_string())
            }
            Sink::Xlsx(w) => w.finish().map(|_| ()).map_err(|e| e.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn holdout_parses_percentages() {
        assert_eq!("10%".parse::<Holdout>(), Ok(Holdout(1000)));
        assert_eq!("2.5".parse::<Holdout>(), Ok(Holdout(250)));
        assert!("101%".parse::<Holdout>().is_err());
        assert!("ten".parse::<Holdout>().is_err());
    }

    #[test]
    fn the_split_is_stable_and_near_the_asked_share() {
        let h = Holdout(1000);
        let control = (0..100_000).filter(|i| arm("spring", &format!("M{i:07}"), h) == "control").count();
        assert!((9_500..10_500).contains(&control), "{control}");
        assert_eq!(arm("spring", "M0000001", h), arm("spring", "M0000001", h));
        // Another audience splits the same members differently.
        let same = (0..10_000).filter(|i| arm("spring", &format!("M{i:07}"), h) == arm("autumn", &format!("M{i:07}"), h)).count();
        assert!(same < 10_000);
        assert!((0..1000).all(|i| arm("x", &format!("{i}"), Holdout(0)) == "target"));
        assert!((0..1000).all(|i| arm("x", &format!("{i}"), Holdout(10_000)) == "control"));
    }
}

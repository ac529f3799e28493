//! DataFusion over the data directory's tables: `events` (partitioned by `dt`), `members`,
//! `dead_letters`, `segment_changes`, `rfm_thresholds`, `store_day` and `member_store` (rollups), `audiences` (exported snapshots,
//! partitioned by `name` and `snapshot`). Read-only.

use std::path::Path;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::{DataType, SchemaRef};
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl};
use datafusion::error::DataFusionError;
use datafusion::prelude::{DataFrame, SessionConfig, SessionContext};

use crate::sink::{schema, tables};

pub mod xlsx;

/// How results are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Table,
    Csv,
    Json,
    /// Excel (needs --out FILE).
    Xlsx,
}

/// A session with every table of `data_dir` registered (empty tables when absent).
pub async fn session(data_dir: &Path) -> Result<SessionContext, DataFusionError> {
    let ctx = SessionContext::new_with_config(SessionConfig::new().with_information_schema(true));
    let tables: [(&str, SchemaRef, &[&str]); 8] = [
        (tables::STORE_DAY, schema::store_day(), &[]),
        (tables::MEMBER_STORE, schema::member_store(), &[]),
        (tables::EVENTS, schema::events(), &["dt"]),
        (tables::MEMBERS, schema::members(), &[]),
        (tables::DEAD_LETTERS, schema::dead_letters(), &[]),
        (tables::SEGMENT_CHANGES, schema::segment_changes(), &[]),
        (tables::RFM_THRESHOLDS, schema::rfm_thresholds(), &[]),
        (crate::audience::AUDIENCES, crate::audience::export::snapshot_schema(), &["name", "snapshot"]),
    ];
    for (name, schema, partitions) in tables {
        let dir = data_dir.join(name);
        std::fs::create_dir_all(&dir)?;
        let url = ListingTableUrl::parse(format!("{}/", dir.canonicalize()?.display()))?;
        let mut options = ListingOptions::new(Arc::new(ParquetFormat::default())).with_file_extension(".parquet");
        if !partitions.is_empty() {
            options = options.with_table_partition_cols(partitions.iter().map(|p| (p.to_string(), DataType::Utf8)).collect());
        }
        let config = ListingTableConfig::new(url).with_listing_options(options).with_schema(schema);
        ctx.register_table(name, Arc::new(ListingTable::try_new(config)?))?;
    }
    Ok(ctx)
}

/// Plans one read-only SQL statement (no DDL, DML or other statements).
pub async fn read_only(ctx: &SessionContext, sql: &str) -> Result<DataFrame, DataFusionError> {
    let options = datafusion::execution::context::SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false);
    ctx.sql_with_options(sql, options).await
}

/// Runs one read-only SQL statement; returns its schema and rows.
pub async fn run_sql(ctx: &SessionContext, sql: &str) -> Result<(SchemaRef, Vec<RecordBatch>), DataFusionError> {
    let df = read_only(ctx, sql).await?;
    let schema = Arc::new(df.schema().as_arrow().clone());
    Ok((schema, df.collect().await?))
}

/// Writes `batches` (of `schema`) in `format` to `out` (a file) or standard output.
pub fn emit(schema: SchemaRef, batches: &[RecordBatch], format: OutputFormat, out: Option<&Path>, title: &str) -> Result<(), DataFusionError> {
    let external = |e: Box<dyn std::error::Error + Send + Sync>| DataFusionError::External(e);
    match (format, out) {
        (OutputFormat::Xlsx, None) => Err(DataFusionError::Plan("--format xlsx needs --out FILE".into())),
        (OutputFormat::Xlsx, Some(path)) => {
            let mut w = xlsx::XlsxWriter::create(path, title, schema).map_err(|e| external(e.into()))?;
            for b in batches {
                w.write(b).map_err(|e| external(e.into()))?;
            }
            w.finish().map_err(|e| external(e.into()))?;
            Ok(())
        }
        (_, Some(path)) => {
            let mut file = std::io::BufWriter::new(std::fs::File::create(path)?);
            print(batches, format, &mut file)?;
            std::io::Write::flush(&mut file)?;
            Ok(())
        }
        (_, None) => print(batches, format, &mut std::io::stdout().lock()),
    }
}

/// Writes batches in the chosen text format.
pub fn print(batches: &[RecordBatch], format: OutputFormat, out: &mut dyn std::io::Write) -> Result<(), DataFusionError> {
    match format {
        OutputFormat::Xlsx => return Err(DataFusionError::Plan("--format xlsx needs --out FILE".into())),
        OutputFormat::Table => writeln!(out, "{}", arrow::util::pretty::pretty_format_batches(batches)?)?,
        OutputFormat::Csv => {
            let mut writer = arrow::csv::Writer::new(out);
            for b in batches {
                writer.write(b)?;
            }
        }
        OutputFormat::Json => {
            let mut writer = arrow::json::LineDelimitedWriter::new(out);
            for b in batches {
                writer.write(b)?;
            }
            writer.finish()?;
        }
    }
    Ok(())
}

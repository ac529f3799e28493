//! DataFusion over the data directory's tables: `events` (partitioned by `dt`), `members`,
//! `dead_letters`, `segment_changes`, `rfm_thresholds`. Read-only.

use std::path::Path;
use std::sync::Arc;

use arrow::array::RecordBatch;
use arrow::datatypes::DataType;
use datafusion::datasource::file_format::parquet::ParquetFormat;
use datafusion::datasource::listing::{ListingOptions, ListingTable, ListingTableConfig, ListingTableUrl};
use datafusion::error::DataFusionError;
use datafusion::prelude::{SessionConfig, SessionContext};

use crate::sink::{schema, tables};

/// How `query` prints results.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum OutputFormat {
    Table,
    Csv,
    Json,
}

/// A session with every table of `data_dir` registered (empty tables when absent).
pub async fn session(data_dir: &Path) -> Result<SessionContext, DataFusionError> {
    let ctx = SessionContext::new_with_config(SessionConfig::new().with_information_schema(true));
    let tables = [
        (tables::EVENTS, schema::events(), true),
        (tables::MEMBERS, schema::members(), false),
        (tables::DEAD_LETTERS, schema::dead_letters(), false),
        (tables::SEGMENT_CHANGES, schema::segment_changes(), false),
        (tables::RFM_THRESHOLDS, schema::rfm_thresholds(), false),
    ];
    for (name, schema, by_day) in tables {
        let dir = data_dir.join(name);
        std::fs::create_dir_all(&dir)?;
        let url = ListingTableUrl::parse(format!("{}/", dir.canonicalize()?.display()))?;
        let mut options = ListingOptions::new(Arc::new(ParquetFormat::default())).with_file_extension(".parquet");
        if by_day {
            options = options.with_table_partition_cols(vec![("dt".to_string(), DataType::Utf8)]);
        }
        let config = ListingTableConfig::new(url).with_listing_options(options).with_schema(schema);
        ctx.register_table(name, Arc::new(ListingTable::try_new(config)?))?;
    }
    Ok(ctx)
}

/// Runs one read-only SQL statement.
pub async fn run_sql(ctx: &SessionContext, sql: &str) -> Result<Vec<RecordBatch>, DataFusionError> {
    let options = datafusion::execution::context::SQLOptions::new()
        .with_allow_ddl(false)
        .with_allow_dml(false)
        .with_allow_statements(false);
    let df = ctx.sql_with_options(sql, options).await?;
    df.collect().await
}

/// Writes batches in the chosen format.
pub fn print(batches: &[RecordBatch], format: OutputFormat, out: &mut dyn std::io::Write) -> Result<(), DataFusionError> {
    match format {
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

//! Named reports (`queries/*.sql`) run read-only through DataFusion, parameters bound as
//! values.

pub mod catalog;

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use datafusion::common::ScalarValue;
use datafusion::prelude::SessionContext;

pub use catalog::{catalog, Param, ParamType, Report, ReportError};

impl Report {
    /// Runs the report with `values` (see [`Report::bind`]); errors name the report's file.
    pub async fn run(&self, ctx: &SessionContext, values: Vec<(String, ScalarValue)>) -> Result<(SchemaRef, Vec<RecordBatch>), ReportError> {
        let fail = |e: datafusion::error::DataFusionError| ReportError { file: self.source.clone(), problem: e.to_string() };
        let df = crate::query::read_only(ctx, &self.sql).await.map_err(fail)?;
        let df = df.with_param_values(values).map_err(fail)?;
        let schema = std::sync::Arc::new(df.schema().as_arrow().clone());
        Ok((schema, df.collect().await.map_err(fail)?))
    }

    /// One line for `report --list`: name, parameters with defaults, description.
    pub fn summary(&self) -> String {
        let params: Vec<String> = self.params.iter().map(|p| format!("{}={}", p.name, p.default)).collect();
        let params = if params.is_empty() { String::new() } else { format!(" [{}]", params.join(" ")) };
        format!("{}{params}  {}", self.name, self.description)
    }
}

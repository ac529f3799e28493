//! `audience preview`: the size, the split by store and by segment, and a sample.

use arrow::array::RecordBatch;
use datafusion::functions_aggregate::expr_fn::count;
use datafusion::prelude::{col, lit, SessionContext};

use super::definition::{Audience, AudienceError};

/// Tables to print: size, by store (last store), by segment, a sample of `sample` members.
pub async fn preview(ctx: &SessionContext, audience: &Audience, sample: usize) -> Result<Vec<(String, Vec<RecordBatch>)>, AudienceError> {
    let fail = |e: datafusion::error::DataFusionError| AudienceError { origin: audience.source.clone(), problem: e.to_string() };
    let members = audience.members(ctx).await?;
    let size = members.clone().aggregate(vec![], vec![count(lit(1)).alias("members")]).map_err(fail)?.collect().await.map_err(fail)?;
    let split = |by: &str| {
        let members = members.clone();
        let by = by.to_string();
        async move {
            members
                .aggregate(vec![col(by.as_str())], vec![count(lit(1)).alias("members")])?
                .sort(vec![col("members").sort(false, false), col(by.as_str()).sort(true, true)])?
                .collect()
                .await
        }
    };
    let by_store = split("last_store_id").await.map_err(fail)?;
    let by_segment = split("rfm_segment").await.map_err(fail)?;
    let rows = members
        .select_columns(&["member_id", "rfm_segment", "tags", "last_store_id", "recency_days", "frequency", "monetary"])
        .map_err(fail)?
        .sort(vec![col("member_id").sort(true, false)])
        .map_err(fail)?
        .limit(0, Some(sample))
        .map_err(fail)?
        .collect()
        .await
        .map_err(fail)?;
    Ok(vec![("size".into(), size), ("by store (last purchase)".into(), by_store), ("by segment".into(), by_segment), (format!("sample ({sample})"), rows)])
}

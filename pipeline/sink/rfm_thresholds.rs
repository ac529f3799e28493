//! `rfm_thresholds`: a refresh's cut points and statistics, one row each, so every score
//! can be reproduced.

use std::sync::Arc;

use arrow::array::{Date32Array, Decimal128Array, Int32Array, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow::error::ArrowError;

use super::schema;
use crate::scoring::config::ScoreMode;
use crate::scoring::rules::numeric_column_scale;
use crate::state::scoring::RefreshRecord;

/// Rows of refresh `r`: c1..c4 of recency, frequency and monetary, then each statistic.
/// Values are decimals with 4 places in the column's unit (days, purchases, currency).
pub fn to_batch(r: &RefreshRecord) -> Result<RecordBatch, ArrowError> {
    let percentiles = r.config.mode == ScoreMode::Percentiles;
    let mut rows: Vec<(String, Option<i32>, Option<i32>, Option<i128>, Option<String>, u64)> = Vec::new();
    for (name, cuts, scale) in [("recency_days", r.cuts.recency, 0), ("frequency", r.cuts.frequency, 0), ("monetary", r.cuts.monetary, 2)] {
        for (k, c) in cuts.iter().enumerate() {
            let pct = percentiles.then_some(r.config.percentiles[k] as i32);
            let population = percentiles.then(|| "purchases_total >= 1".to_string());
            rows.push((name.into(), Some(k as i32 + 1), pct, Some(to_scale4(*c, scale)), population, r.scored_population));
        }
    }
    for (s, v) in r.config.stats.iter().zip(&r.stats) {
        let scale = numeric_column_scale(&s.column).unwrap_or(0);
        rows.push((v.name.clone(), None, Some(s.percentile as i32), v.value.map(|x| to_scale4(x, scale)), s.population.clone(), v.population_size));
    }
    let n = rows.len();
    RecordBatch::try_new(
        schema::rfm_thresholds(),
        vec![
            Arc::new(Int64Array::from(vec![r.id as i64; n])),
            Arc::new(Date32Array::from(vec![r.as_of; n])),
            Arc::new(TimestampMicrosecondArray::from(vec![r.computed_at; n]).with_timezone("UTC")),
            Arc::new(rows.iter().map(|x| Some(x.0.as_str())).collect::<StringArray>()),
            Arc::new(rows.iter().map(|x| x.1).collect::<Int32Array>()),
            Arc::new(rows.iter().map(|x| x.2).collect::<Int32Array>()),
            Arc::new(rows.iter().map(|x| x.3).collect::<Decimal128Array>().with_precision_and_scale(38, 4)?),
            Arc::new(rows.iter().map(|x| x.4.as_deref()).collect::<StringArray>()),
            Arc::new(rows.iter().map(|x| Some(x.5 as i64)).collect::<Int64Array>()),
        ],
    )
}

/// Hundredths of a column unit with `scale` places -> a decimal with 4 places.
fn to_scale4(hundredths: i128, scale: i8) -> i128 {
    hundredths * 10i128.pow((2 - scale) as u32)
}

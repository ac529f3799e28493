//! A refresh's numbers: the RFM cut points and the population statistics, computed over
//! every member's values as of the refresh day.

use arrow::array::{Array, AsArray, BooleanArray, RecordBatch};
use arrow::datatypes::{DataType, Decimal128Type, Int32Type, Int64Type};

use super::config::{ScoreMode, ScoringConfig};
use super::cuts::{cut_points, percentile_cont, Cuts};
use super::rules::{holds, RuleError, RuleSet};
use crate::sink::schema;
use crate::state::scoring::{RefreshRecord, StatValue};
use crate::state::Day;

/// Cut points and statistics of `config` over `batches` (every member's values).
pub fn compute(
    config: &ScoringConfig,
    batches: &[RecordBatch],
    id: u64,
    as_of: Day,
    computed_at: i64,
) -> Result<RefreshRecord, RuleError> {
    let rules = RuleSet::compile(config)?;
    let buyers = |b: &RecordBatch| -> BooleanArray {
        let recency = b.column_by_name("recency_days").expect("recency_days");
        BooleanArray::from((0..b.num_rows()).map(|i| recency.is_valid(i)).collect::<Vec<_>>())
    };
    let mut dims = [Vec::new(), Vec::new(), Vec::new()];
    for b in batches {
        let mask = buyers(b);
        for (values, name) in dims.iter_mut().zip(["recency_days", "frequency", "monetary"]) {
            values.extend(column_values(b, name, &mask));
        }
    }
    let scored_population = dims[0].len() as u64;
    let cuts = match rules.mode {
        ScoreMode::Thresholds => {
            let [recency, frequency, monetary] = rules.fixed_cuts;
            Cuts { recency, frequency, monetary }
        }
        ScoreMode::Percentiles => {
            let p = rules.percentiles;
            let [r, f, m] = dims.each_mut().map(|v| cut_points(v, p).unwrap_or_default());
            Cuts { recency: r, frequency: f, monetary: m }
        }
    };
    drop(dims);
    let mut stats = Vec::new();
    for stat in &rules.stats {
        let population = match &stat.population {
            Some(rule) => Some(rule.bind(&schema::member_values(), &[])?),
            None => None,
        };
        let mut values = Vec::new();
        for b in batches {
            let mask = match &population {
                Some(expr) => holds(expr, b)?,
                None => BooleanArray::from(vec![true; b.num_rows()]),
            };
            values.extend(column_values(b, &stat.column, &mask));
        }
        values.sort_unstable();
        stats.push(StatValue {
            name: stat.name.clone(),
            value: percentile_cont(&values, stat.percentile),
            population_size: values.len() as u64,
        });
    }
    Ok(RefreshRecord { id, as_of, computed_at, config: config.clone(), cuts, scored_population, stats })
}

/// The non-null values of numeric column `name` where `mask` holds, as integers in the
/// column's unit (minor units for money).
fn column_values(b: &RecordBatch, name: &str, mask: &BooleanArray) -> Vec<i64> {
    let a = b.column_by_name(name).expect("numeric member column");
    let keep = |i: usize| mask.value(i) && a.is_valid(i);
    let n = b.num_rows();
    match a.data_type() {
        DataType::Int32 => {
            let a = a.as_primitive::<Int32Type>();
            (0..n).filter(|&i| keep(i)).map(|i| a.value(i) as i64).collect()
        }
        DataType::Int64 => {
            let a = a.as_primitive::<Int64Type>();
            (0..n).filter(|&i| keep(i)).map(|i| a.value(i)).collect()
        }
        DataType::Decimal128(_, _) => {
            let a = a.as_primitive::<Decimal128Type>();
            (0..n).filter(|&i| keep(i)).map(|i| a.value(i) as i64).collect()
        }
        other => unreachable!("statistics over {other} are refused at load"),
    }
}

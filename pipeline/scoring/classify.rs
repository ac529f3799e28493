//! Classifying members: scores from the cut points of the latest refresh, then the segment
//! rules (first match wins), then the tag rules — over Arrow batches of member values.

use std::sync::Arc;

use arrow::array::{Array, ArrayRef, AsArray, Int32Array, RecordBatch, StringArray};
use arrow::datatypes::{Decimal128Type, Int32Type, Int64Type};
use datafusion::physical_expr::PhysicalExpr;

use super::cuts::{score_higher_is_better, score_lower_is_better};
use super::rules::{holds, numeric_column_scale, stat_literal, RuleError, RuleSet};
use crate::sink::schema;
use crate::state::scoring::{Class, RefreshRecord};

/// The rules of one refresh, bound to its statistics and ready to evaluate.
pub struct Scorer {
    pub refresh: RefreshRecord,
    pub rules: RuleSet,
    segments: Vec<Arc<dyn PhysicalExpr>>,
    tags: Vec<Arc<dyn PhysicalExpr>>,
}

impl Scorer {
    pub fn new(refresh: RefreshRecord) -> Result<Self, RuleError> {
        let rules = RuleSet::compile(&refresh.config)?;
        let stats: Vec<_> = rules
            .stats
            .iter()
            .map(|s| {
                let value = refresh.stats.iter().find(|v| v.name == s.name).and_then(|v| v.value);
                (s.name.clone(), stat_literal(value, numeric_column_scale(&s.column).unwrap_or(0)))
            })
            .collect();
        let bind = |rules: &[super::rules::Rule], inputs| -> Result<Vec<_>, RuleError> {
            rules.iter().map(|r| r.bind(&inputs, &stats)).collect()
        };
        let segments = bind(&rules.segments, schema::segment_inputs())?;
        let tags = bind(&rules.tags, schema::tag_inputs())?;
        Ok(Self { refresh, rules, segments, tags })
    }

    pub fn segment_name(&self, segment: u8) -> Option<&str> {
        (segment > 0).then(|| self.rules.segments[segment as usize - 1].name.as_str())
    }

    /// Classifies each row of `values` (a batch of [`schema::member_values`]).
    pub fn classify(&self, values: &RecordBatch, scored_at: i64) -> Result<Vec<Class>, RuleError> {
        let n = values.num_rows();
        let col = |name: &str| values.column(values.schema().index_of(name).expect("member value column")).clone();
        let recency = col("recency_days");
        let frequency = col("frequency");
        let monetary = col("monetary");
        let (recency, frequency, monetary) = (
            recency.as_primitive::<Int32Type>(),
            frequency.as_primitive::<Int64Type>(),
            monetary.as_primitive::<Decimal128Type>(),
        );
        let cuts = &self.refresh.cuts;
        let mut classes = vec![Class { scored_at, ..Class::default() }; n];
        for (i, c) in classes.iter_mut().enumerate() {
            // Members without any purchase have no recency and no scores.
            if recency.is_valid(i) {
                c.r = score_lower_is_better(recency.value(i) as i64, &cuts.recency);
                c.f = score_higher_is_better(frequency.value(i), &cuts.frequency);
                c.m = score_higher_is_better(monetary.value(i) as i64, &cuts.monetary);
            }
        }
        let score = |get: fn(&Class) -> u8| -> ArrayRef {
            Arc::new(classes.iter().map(|c| (c.r > 0).then_some(get(c) as i32)).collect::<Int32Array>())
        };
        let mut columns = values.columns().to_vec();
        columns.extend([score(|c| c.r), score(|c| c.f), score(|c| c.m)]);
        let inputs = RecordBatch::try_new(schema::segment_inputs(), columns.clone()).map_err(arrow_error)?;
        for (k, expr) in self.segments.iter().enumerate() {
            let hit = holds(expr, &inputs)?;
            for (c, h) in classes.iter_mut().zip(hit.values().iter()) {
                if h && c.segment == 0 {
                    c.segment = k as u8 + 1;
                }
            }
        }
        let segment: StringArray = classes.iter().map(|c| self.segment_name(c.segment)).collect();
        columns.push(Arc::new(segment));
        let inputs = RecordBatch::try_new(schema::tag_inputs(), columns).map_err(arrow_error)?;
        for (k, expr) in self.tags.iter().enumerate() {
            let hit = holds(expr, &inputs)?;
            for (c, h) in classes.iter_mut().zip(hit.values().iter()) {
                c.tags |= (h as u64) << k;
            }
        }
        Ok(classes)
    }
}

fn arrow_error(e: arrow::error::ArrowError) -> RuleError {
    RuleError { what: "classification".into(), text: String::new(), problem: e.to_string() }
}

//! One rule engine for segments, tags and statistics' populations: SQL boolean expressions
//! parsed by DataFusion against the member columns, checked at load, and evaluated as
//! vectorised physical expressions over Arrow batches of members — the same compiled
//! expressions for the few members an epoch changed and for everyone at a refresh.

use std::sync::Arc;

use arrow::array::{Array, BooleanArray, RecordBatch};
use arrow::datatypes::{DataType, Schema, SchemaRef};
use datafusion::common::tree_node::{Transformed, TreeNode};
use datafusion::common::{DFSchema, ScalarValue};
use datafusion::logical_expr::Expr;
use datafusion::physical_expr::PhysicalExpr;
use datafusion::prelude::SessionContext;

use super::changes::Labels;
use super::config::{RuleConfig, ScoreMode, ScoringConfig};
use super::cuts::Hundredths;
use crate::event::parse_money;
use crate::sink::schema;

/// A rule that cannot be used: which one, its text, and what is wrong.
#[derive(Debug, thiserror::Error)]
#[error("config: {what} `{text}`: {problem}")]
pub struct RuleError {
    pub what: String,
    pub text: String,
    pub problem: String,
}

/// A named rule, parsed and checked.
#[derive(Debug, Clone)]
pub struct Rule {
    pub name: String,
    pub text: String,
    expr: Expr,
}

/// A population statistic, checked.
#[derive(Debug, Clone)]
pub struct Stat {
    pub name: String,
    pub column: String,
    pub percentile: u8,
    pub population: Option<Rule>,
}

/// The rule set of one refresh: what its cut points and statistics were computed for.
#[derive(Debug, Clone)]
pub struct RuleSet {
    pub mode: ScoreMode,
    pub percentiles: [u8; 4],
    pub fixed_cuts: [[Hundredths; 4]; 3],
    pub stats: Vec<Stat>,
    pub segments: Vec<Rule>,
    pub tags: Vec<Rule>,
}

/// Columns a statistic may summarise, with their decimal scale.
pub fn numeric_column_scale(column: &str) -> Option<i8> {
    match column {
        "monetary" => Some(2),
        "recency_days" | "days_since_first_purchase" | "frequency" | "purchases_total" | "stores_in_window" => Some(0),
        _ => None,
    }
}

/// A statistic's value as the SQL literal rules compare with: hundredths of the column's
/// unit as a decimal with two more places than the column.
pub fn stat_literal(value: Option<Hundredths>, column_scale: i8) -> ScalarValue {
    ScalarValue::Decimal128(value, 38, column_scale + 2)
}

/// Most tags a rule set may define (they are a bit set per member).
pub const MAX_TAGS: usize = 64;

impl RuleSet {
    /// Parses and checks every rule of `config`: names, SQL, column names, boolean type.
    pub fn compile(config: &ScoringConfig) -> Result<Self, RuleError> {
        let problem = |what: String, text: &str, problem: String| RuleError { what, text: text.into(), problem };
        let fixed_cuts = fixed_cuts(config)?;
        if config.percentiles.windows(2).any(|w| w[0] > w[1]) || config.percentiles.iter().any(|&p| p > 100) {
            return Err(problem("scoring.percentiles".into(), &format!("{:?}", config.percentiles), "must be whole percents 0-100 in ascending order".into()));
        }
        let ctx = SessionContext::new();
        let values = DFSchema::try_from(schema::member_values().as_ref().clone()).expect("valid schema");
        let mut stats = Vec::new();
        for (i, s) in config.stats.iter().enumerate() {
            let what = format!("scoring.stats[{i}] {:?}", s.name);
            check_name(&what, &s.name, config.stats[..i].iter().map(|o| &o.name))?;
            if schema::members().field_with_name(&s.name).is_ok() {
                return Err(problem(what, &s.name, "a statistic may not reuse a member column's name".into()));
            }
            if numeric_column_scale(&s.column).is_none() {
                return Err(problem(what, &s.column, "column must be one of recency_days, days_since_first_purchase, frequency, monetary, purchases_total, stores_in_window".into()));
            }
            if s.percentile > 100 {
                return Err(problem(what, &s.percentile.to_string(), "percentile must be a whole percent 0-100".into()));
            }
            let population = match &s.population {
                Some(text) => Some(parse(&ctx, &format!("{what} population"), &s.name, text, &values)?),
                None => None,
            };
            stats.push(Stat { name: s.name.clone(), column: s.column.clone(), percentile: s.percentile, population });
        }
        let with_stats = |base: SchemaRef| -> DFSchema {
            let mut fields: Vec<_> = base.fields().iter().cloned().collect();
            for s in &stats {
                let scale = numeric_column_scale(&s.column).unwrap_or(0) + 2;
                fields.push(Arc::new(arrow::datatypes::Field::new(&s.name, DataType::Decimal128(38, scale), true)));
            }
            DFSchema::try_from(Schema::new(fields)).expect("valid schema")
        };
        let segment_schema = with_stats(schema::segment_inputs());
        let tag_schema = with_stats(schema::tag_inputs());
        let compile_all = |kind: &str, rules: &[RuleConfig], schema: &DFSchema| -> Result<Vec<Rule>, RuleError> {
            rules
                .iter()
                .enumerate()
                .map(|(i, r)| {
                    let what = format!("scoring.{kind}[{i}] {:?}", r.name);
                    check_name(&what, &r.name, rules[..i].iter().map(|o| &o.name))?;
                    parse(&ctx, &what, &r.name, &r.when, schema)
                })
                .collect()
        };
        let segments = compile_all("segments", &config.segments, &segment_schema)?;
        let tags = compile_all("tags", &config.tags, &tag_schema)?;
        if tags.len() > MAX_TAGS {
            return Err(problem("scoring.tags".into(), "", format!("at most {MAX_TAGS} tags, {} given", tags.len())));
        }
        if segments.len() > 250 {
            return Err(problem("scoring.segments".into(), "", "at most 250 segments".into()));
        }
        Ok(Self { mode: config.mode, percentiles: config.percentiles, fixed_cuts, stats, segments, tags })
    }

    pub fn labels(&self) -> Labels {
        let names = |rules: &[Rule]| rules.iter().map(|r| r.name.clone()).collect();
        Labels { segments: names(&self.segments), tags: names(&self.tags) }
    }
}

fn fixed_cuts(config: &ScoringConfig) -> Result<[[Hundredths; 4]; 3], RuleError> {
    let err = |what: &str, problem: String| RuleError { what: format!("scoring.{what}"), text: String::new(), problem };
    let mut monetary = [0; 4];
    for (m, text) in monetary.iter_mut().zip(&config.monetary_cuts) {
        *m = parse_money(text).map_err(|e| err("monetary_cuts", format!("{text:?}: {e}")))?.0 as i128 * 100;
    }
    let days = |c: [u32; 4]| c.map(|v| v as i128 * 100);
    let cuts = [days(config.recency_cuts), days(config.frequency_cuts), monetary];
    for (name, c) in ["recency_cuts", "frequency_cuts", "monetary_cuts"].iter().zip(&cuts) {
        if c.windows(2).any(|w| w[0] > w[1]) {
            return Err(err(name, "cut points must be in ascending order".into()));
        }
    }
    Ok(cuts)
}

fn check_name<'a>(what: &str, name: &str, earlier: impl Iterator<Item = &'a String>) -> Result<(), RuleError> {
    let bad = |problem: &str| Err(RuleError { what: what.into(), text: name.into(), problem: problem.into() });
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
        return bad("names are non-empty and use letters, digits, '_' and '-'");
    }
    if earlier.into_iter().any(|e| e == name) {
        return bad("the name is used twice");
    }
    Ok(())
}

fn parse(ctx: &SessionContext, what: &str, name: &str, text: &str, schema: &DFSchema) -> Result<Rule, RuleError> {
    let fail = |problem: String| RuleError { what: what.into(), text: text.into(), problem };
    let expr = ctx.parse_sql_expr(text, schema).map_err(|e| fail(e.to_string()))?;
    // Type-check (with coercion) and plan once, so a rule that cannot run fails here.
    let physical = ctx.create_physical_expr(expr.clone(), schema).map_err(|e| fail(e.to_string()))?;
    let ty = physical.data_type(schema.as_arrow()).map_err(|e| fail(e.to_string()))?;
    if ty != DataType::Boolean && ty != DataType::Null {
        return Err(fail(format!("the expression is {ty}, not a boolean condition")));
    }
    Ok(Rule { name: name.into(), text: text.into(), expr })
}

impl Rule {
    /// Plans this rule against `inputs` (the batch schema), with statistics as literals.
    pub fn bind(&self, inputs: &SchemaRef, stats: &[(String, ScalarValue)]) -> Result<Arc<dyn PhysicalExpr>, RuleError> {
        let fail = |problem: String| RuleError { what: format!("rule {:?}", self.name), text: self.text.clone(), problem };
        let expr = self
            .expr
            .clone()
            .transform(|e| {
                Ok(match &e {
                    Expr::Column(c) => match stats.iter().find(|(n, _)| *n == c.name) {
                        Some((_, v)) => Transformed::yes(Expr::Literal(v.clone(), None)),
                        None => Transformed::no(e),
                    },
                    _ => Transformed::no(e),
                })
            })
            .map_err(|e| fail(e.to_string()))?
            .data;
        let schema = DFSchema::try_from(inputs.as_ref().clone()).map_err(|e| fail(e.to_string()))?;
        SessionContext::new().create_physical_expr(expr, &schema).map_err(|e| fail(e.to_string()))
    }
}

/// Evaluates a bound rule over `batch`; null counts as false.
pub fn holds(expr: &Arc<dyn PhysicalExpr>, batch: &RecordBatch) -> Result<BooleanArray, RuleError> {
    let fail = |problem: String| RuleError { what: "rule evaluation".into(), text: expr.to_string(), problem };
    let value = expr.evaluate(batch).map_err(|e| fail(e.to_string()))?;
    let array = value.into_array(batch.num_rows()).map_err(|e| fail(e.to_string()))?;
    if array.data_type() == &DataType::Null {
        return Ok(BooleanArray::from(vec![false; batch.num_rows()]));
    }
    let b = array.as_any().downcast_ref::<BooleanArray>().ok_or_else(|| fail("not a boolean".into()))?;
    Ok(match b.nulls() {
        Some(nulls) => {
            let values = b.values() & nulls.inner();
            BooleanArray::new(values, None)
        }
        None => b.clone(),
    })
}

//! What an audience is: a boolean SQL predicate over the members table, or a read-only
//! query returning `member_id` — from a file (`.toml` with `where = "..."`, or `.sql`) or
//! given inline with `--where`.
//!
//! A predicate is parsed as one expression against the members table's schema (it cannot
//! end a statement or start another); subqueries, aggregates and window functions are
//! refused, so it cannot reach another table.

use std::path::Path;

use datafusion::common::tree_node::{TreeNode, TreeNodeRecursion};
use datafusion::common::DFSchema;
use datafusion::logical_expr::Expr;
use datafusion::prelude::{col, DataFrame, SessionContext};
use serde::Deserialize;

use crate::sink::schema;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Definition {
    /// A boolean expression over the members table.
    Where(String),
    /// A read-only query whose `member_id` column lists the members.
    Query(String),
}

#[derive(Debug, Clone)]
pub struct Audience {
    pub definition: Definition,
    /// Where it came from: a file, or `--where`.
    pub source: String,
    pub description: Option<String>,
}

#[derive(Debug, thiserror::Error)]
#[error("audience {origin}: {problem}")]
pub struct AudienceError {
    pub origin: String,
    pub problem: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AudienceFile {
    #[serde(default)]
    description: Option<String>,
    #[serde(rename = "where")]
    predicate: String,
}

impl Audience {
    pub fn inline(predicate: &str) -> Self {
        Self { definition: Definition::Where(predicate.into()), source: "--where".into(), description: None }
    }

    /// Reads a definition file: `.toml` (`where = "..."`, optional `description`) or `.sql`.
    pub fn from_file(path: &Path) -> Result<Self, AudienceError> {
        let source = path.display().to_string();
        let fail = |problem: String| AudienceError { origin: source.clone(), problem };
        let text = std::fs::read_to_string(path).map_err(|e| fail(e.to_string()))?;
        match path.extension().and_then(|x| x.to_str()) {
            Some("sql") => Ok(Self { definition: Definition::Query(text), source, description: None }),
            Some("toml") => {
                use figment::providers::{Format, Toml};
                let f: AudienceFile = figment::Figment::from(Toml::string(&text)).extract().map_err(|e| fail(e.to_string()))?;
                Ok(Self { definition: Definition::Where(f.predicate), source, description: f.description })
            }
            _ => Err(fail("a definition is a .toml file (where = \"...\") or a .sql query returning member_id".into())),
        }
    }

    /// The audience's members (every column of the members table), planned read-only.
    pub async fn members(&self, ctx: &SessionContext) -> Result<DataFrame, AudienceError> {
        let fail = |problem: String| AudienceError { origin: self.source.clone(), problem };
        let members = ctx.table("members").await.map_err(|e| fail(e.to_string()))?;
        match &self.definition {
            Definition::Where(predicate) => {
                let expr = parse_predicate(ctx, predicate).map_err(fail)?;
                members.filter(expr).map_err(|e| fail(e.to_string()))
            }
            Definition::Query(sql) => {
                let ids = crate::query::read_only(ctx, sql).await.map_err(|e| fail(e.to_string()))?;
                if ids.schema().field_with_unqualified_name("member_id").is_err() {
                    return Err(fail("the query must return a member_id column".into()));
                }
                let ids = ids.select(vec![col("member_id").alias("audience_member_id")]).map_err(|e| fail(e.to_string()))?.distinct().map_err(|e| fail(e.to_string()))?;
                members
                    .join(ids, datafusion::common::JoinType::LeftSemi, &["member_id"], &["audience_member_id"], None)
                    .map_err(|e| fail(e.to_string()))
            }
        }
    }

    /// The definition as text, for the snapshot's record.
    pub fn text(&self) -> &str {
        match &self.definition {
            Definition::Where(p) | Definition::Query(p) => p,
        }
    }
}

/// Parses `predicate` as one boolean expression over the members table.
pub fn parse_predicate(ctx: &SessionContext, predicate: &str) -> Result<Expr, String> {
    let schema = DFSchema::try_from_qualified_schema("members", &schema::members()).map_err(|e| e.to_string())?;
    let expr = ctx.parse_sql_expr(predicate, &schema).map_err(|e| {
        let e = e.to_string();
        // The expression planner resolves no table: a subquery fails with "table ... not found".
        if e.contains("table '") && e.contains("not found") {
            format!("the predicate may not contain a subquery or name another table: it is one condition over the members table ({e})")
        } else {
            e
        }
    })?;
    let mut refused = None;
    expr.apply(|e| {
        refused = match e {
            Expr::ScalarSubquery(_) | Expr::Exists(_) | Expr::InSubquery(_) => Some("a subquery"),
            Expr::AggregateFunction(_) => Some("an aggregate function"),
            Expr::WindowFunction(_) => Some("a window function"),
            _ => None,
        };
        Ok(if refused.is_some() { TreeNodeRecursion::Stop } else { TreeNodeRecursion::Continue })
    })
    .map_err(|e| e.to_string())?;
    if let Some(what) = refused {
        return Err(format!("the predicate may not contain {what}: it is one condition over the members table"));
    }
    let physical = ctx.create_physical_expr(expr.clone(), &schema).map_err(|e| e.to_string())?;
    let ty = physical.data_type(schema.as_arrow()).map_err(|e| e.to_string())?;
    if ty != arrow::datatypes::DataType::Boolean {
        return Err(format!("the predicate is {ty}, not a boolean condition"));
    }
    Ok(expr)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_predicate_is_one_condition_over_members() {
        let ctx = SessionContext::new();
        assert!(parse_predicate(&ctx, "list_contains(tags, 'lapsed') AND monetary > 100").is_ok());
        let e = parse_predicate(&ctx, "true; DROP TABLE members").unwrap_err();
        assert!(e.contains("DROP") || e.contains("Expected"), "{e}");
        let e = parse_predicate(&ctx, "member_id IN (SELECT member_id FROM events)").unwrap_err();
        assert!(e.contains("subquery"), "{e}");
        let e = parse_predicate(&ctx, "count(*) > 1").unwrap_err();
        assert!(e.contains("aggregate"), "{e}");
        let e = parse_predicate(&ctx, "monetray > 1").unwrap_err();
        assert!(e.contains("monetray"), "{e}");
        let e = parse_predicate(&ctx, "monetary + 1").unwrap_err();
        assert!(e.contains("not a boolean"), "{e}");
    }
}

//! `[scoring]`: how members are scored, segmented and tagged. Rules are SQL boolean
//! expressions over the member columns, read from the config (no rebuild to change them).

use serde::{Deserialize, Serialize};

/// Cut points of the three RFM dimensions: from the population at each refresh, or fixed.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum ScoreMode {
    Percentiles,
    Thresholds,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ScoringConfig {
    pub mode: ScoreMode,
    /// `percentiles` mode: the four percentiles (whole percents) giving c1..c4.
    pub percentiles: [u8; 4],
    /// `thresholds` mode: fixed cut points c1 <= .. <= c4 per dimension.
    pub recency_cuts: [u32; 4],
    pub frequency_cuts: [u32; 4],
    /// Currency units, as decimal strings ("99.50").
    pub monetary_cuts: [String; 4],
    /// Population statistics that rules use by name, computed at each refresh.
    pub stats: Vec<StatConfig>,
    /// `rfm_segment`: the first rule that holds names the segment.
    pub segments: Vec<RuleConfig>,
    /// Automatic tags: every rule that holds adds its tag.
    pub tags: Vec<RuleConfig>,
}

/// `name` = the `percentile`th percentile (linear interpolation) of `column` over the
/// members for which `population` holds (nulls never count).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct StatConfig {
    pub name: String,
    pub column: String,
    pub percentile: u8,
    #[serde(default)]
    pub population: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct RuleConfig {
    pub name: String,
    /// SQL boolean expression over the member columns (null counts as false).
    pub when: String,
}

fn rule(name: &str, when: &str) -> RuleConfig {
    RuleConfig { name: name.into(), when: when.into() }
}

impl Default for ScoringConfig {
    fn default() -> Self {
        Self {
            mode: ScoreMode::Percentiles,
            percentiles: [20, 40, 60, 80],
            recency_cuts: [30, 90, 180, 365],
            frequency_cuts: [1, 2, 4, 8],
            monetary_cuts: ["100", "500", "2000", "10000"].map(String::from),
            stats: vec![StatConfig {
                name: "monetary_p90".into(),
                column: "monetary".into(),
                percentile: 90,
                population: Some("frequency >= 1".into()),
            }],
            segments: vec![
                rule("hibernating", "r_score <= 2 AND f_score <= 2"),
                rule("at_risk", "r_score <= 2 AND f_score BETWEEN 3 AND 4"),
                rule("cant_lose", "r_score <= 2 AND f_score = 5"),
                rule("about_to_sleep", "r_score = 3 AND f_score <= 2"),
                rule("need_attention", "r_score = 3 AND f_score = 3"),
                rule("loyal_customers", "r_score BETWEEN 3 AND 4 AND f_score >= 4"),
                rule("promising", "r_score = 4 AND f_score = 1"),
                rule("new_customers", "r_score = 5 AND f_score = 1"),
                rule("potential_loyalists", "r_score >= 4 AND f_score BETWEEN 2 AND 3"),
                rule("champions", "r_score = 5 AND f_score >= 4"),
            ],
            tags: vec![
                rule("new", "days_since_first_purchase < 30"),
                rule("returning", "purchases_total >= 2"),
                rule("loyal", "frequency >= 4 AND recency_days < 90"),
                rule("high_value", "monetary >= monetary_p90"),
                rule("lapsed", "purchases_total >= 1 AND recency_days >= 180"),
                rule("multi_store", "stores_in_window >= 2"),
            ],
        }
    }
}

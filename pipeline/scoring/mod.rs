//! Scores, segments and tags (pure logic plus the DataFusion rule engine, no I/O).
//!
//! - [`config`]: `[scoring]` of `memberflow.toml` — mode, percentiles, statistics, rules.
//! - [`cuts`]: exact percentile cut points and the 1-5 scores.
//! - [`rules`]: SQL boolean rules, checked at load, evaluated over Arrow batches.
//! - [`refresh`]: a refresh's cut points and statistics over all members.
//! - [`classify`]: scores + first matching segment + tags for a batch of members.
//! - [`changes`]: entered/exited segments and tags between two classifications.

pub mod changes;
pub mod classify;
pub mod config;
pub mod manual;
pub mod cuts;
pub mod refresh;
pub mod rules;

pub use changes::{Change, Labels, Moves};
pub use classify::Scorer;
pub use config::ScoringConfig;
pub use rules::{RuleError, RuleSet};

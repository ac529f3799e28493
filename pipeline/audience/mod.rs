//! Audiences for campaigns: who (a predicate or query over the members table), how many and
//! where (preview), and an immutable snapshot with a deterministic holdout (export).

pub mod definition;
pub mod export;
pub mod preview;

pub use definition::{Audience, AudienceError, Definition};
pub use export::{arm, export, ExportFormat, ExportOptions, Holdout, AUDIENCES};

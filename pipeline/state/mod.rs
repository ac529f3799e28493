//! Member state, the pure fold over events, and its checkpoint.

pub mod calendar;
pub mod checkpoint;
mod codec;
pub mod counters;
pub mod dedup;
pub mod flat;
mod delta;
mod growth;
pub mod interner;
mod lists;
pub mod members;
mod profile;
mod thin;
pub mod rollups;
pub mod scoring;

#[cfg(test)]
mod tests;

pub use calendar::{BusinessCalendar, Day};
pub use checkpoint::{Checkpoint, Manifest, Offsets};
pub use counters::Counters;
pub use members::{Applied, Hashes, Known, MemberTable, StateRules};

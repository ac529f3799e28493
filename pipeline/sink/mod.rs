//! Where results go: Parquet tables (staged, then published by a checkpoint) and the
//! dead-letter topic.

pub mod topics;
pub mod dead_letters;
mod dictionary;
pub mod encoding;
pub mod events;
pub mod events_file;
pub mod members;
pub mod rfm_thresholds;
pub mod schema;
pub mod segment_changes;
pub mod rollups;
pub mod tables;

pub use dead_letters::{DeadLetter, DeadLetters};
pub use events::{EventsBuffer, Origin};
pub use segment_changes::{Cause, ChangesBuffer};
pub use tables::TableStore;

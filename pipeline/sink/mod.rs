//! Where results go: Parquet tables (staged, then published by a checkpoint) and the
//! dead-letter topic.

pub mod dead_letter_topic;
pub mod dead_letters;
pub mod events;
pub mod members;
pub mod schema;
pub mod tables;

pub use dead_letters::DeadLetter;
pub use events::{EventsBuffer, Origin};
pub use tables::TableStore;

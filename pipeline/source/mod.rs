//! Where messages come from: Kafka (`run`, `demo`) and JSON-lines files (`backfill`).

pub mod file;
pub mod kafka;

//! memberflow: stream-processing analytics and tagging for retail membership programs.
//!
//! ```text
//!   Kafka topics ──► source::kafka ─┐                        ┌─► sink::tables  (Parquet: events/dt=…,
//!   (member-events)                 │                        │                 members/, dead_letters/)
//!   JSON lines   ──► source::file ──┼─► engine ─► event::decode ─► state (dedup, fold) ─┤
//!   (backfill)                      │      │                                            ├─► sink::dead_letter_topic
//!   generate ───────────────────────┘      └─ checkpoint: state + offsets + manifest ───┘
//!                                                                                  query (DataFusion) ◄─ tables
//! ```
//!
//! - [`event`]: the event contract; bytes -> validated [`event::Event`] or a reason.
//! - [`state`]: per-member state rows, the pure fold, dedup memory, checkpoints.
//! - [`engine`]: the run loop's core shared by every command; exactly-once checkpoints.
//! - [`source`]: Kafka consumer (`run`) and JSON-lines files (`backfill`).
//! - [`sink`]: Parquet tables with staged, manifest-driven publication; dead-letter topic.
//! - [`query`]: DataFusion over the tables; table, CSV, JSON and Excel output.
//! - [`report`]: named reports (`queries/*.sql`) with typed, bound parameters.
//! - [`scoring`]: scores, segments, tags (SQL rules evaluated by DataFusion), refresh.
//! - [`job`]: scheduled jobs (`jobs/*.toml`) that `run` fires.
//! - [`generate`]: seeded synthetic chain data with stated fault rates.
//! - [`demo`], [`bench`]: the zero-setup demo and the benchmark.

pub mod audience;
pub mod bench;
pub mod config;
pub mod crash;
pub mod demo;
pub mod engine;
pub mod event;
pub mod generate;
pub mod job;
pub mod query;
pub mod report;
pub mod scoring;
pub mod sink;
pub mod source;
pub mod state;

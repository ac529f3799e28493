//! memberflow: stream-processing analytics and tagging for retail membership programs.
//!
//! ```text
//!   Kafka topics ──► source::kafka ─┐
//!   (member-events)                 │
//!   JSON lines   ──► source::file ──┼─► engine ─► event::decode ─► state (dedup, fold, rollups)
//!   (backfill)                      │      │                            │
//!   generate ───────────────────────┘      │        scoring (rules via DataFusion: changed members
//!                                          │        at each checkpoint, everyone at a refresh; job)
//!                                          │                            │
//!                                          └─ checkpoint: state + offsets + manifest ─┬─► sink::tables (Parquet:
//!                                                                                     │   events, members, rollups,
//!                                                                                     │   segment_changes, ...)
//!                                                                                     └─► sink::topics (dead
//!                                                                                         letters, segment changes)
//!   query / report / audience (DataFusion, read-only) ◄── tables ──► DuckDB, pandas, BI tools
//! ```
//!
//! - [`event`]: the event contract; bytes -> validated [`event::Event`] or a reason.
//! - [`state`]: per-member state rows (in fixed chunks that never move), the pure fold,
//!   dedup memory, prefetchable hash tables, checkpoints (a snapshot plus per-epoch deltas).
//! - [`engine`]: the run loop's core shared by every command: messages in batches of 32
//!   (decoded, their members' state prefetched, then applied in order); exactly-once
//!   checkpoints.
//! - [`source`]: Kafka consumer (`run`) and JSON-lines files (`backfill`).
//! - [`sink`]: Parquet tables with staged, manifest-driven publication; output topics.
//! - [`query`]: DataFusion over the tables; table, CSV, JSON and Excel output.
//! - [`report`]: named reports (`queries/*.sql`) with typed, bound parameters.
//! - [`audience`]: campaign audiences: preview, snapshots with a deterministic holdout.
//! - [`scoring`]: scores, segments, tags (SQL rules evaluated by DataFusion), refresh.
//! - [`job`]: scheduled jobs (`jobs/*.toml`) that `run` fires.
//! - [`generate`]: seeded synthetic chain data with stated fault rates.
//! - [`demo`], [`bench`]: the zero-setup demo and the benchmark.

pub mod append;
pub mod audience;
pub mod bench;
pub mod config;
pub mod crash;
pub mod demo;
pub mod direct_file;
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

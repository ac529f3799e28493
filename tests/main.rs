//! End-to-end tests: the real binary, a real broker (tansu), real Parquet read back by
//! real readers (arrow's and DuckDB's), checked against an independent fold of the input.

mod support;

mod audiences;
mod backfill;
mod cli;
mod compose;
mod crash;
mod fold;
mod kafka;
mod reports;
mod scoring;

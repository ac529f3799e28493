//! Named crash points for the exactly-once tests.
//!
//! `MEMBERFLOW_CRASH_AT=<point>[:<n>]` kills the process (abort: no destructor, no flush —
//! what `kill -9` does) the n-th time (default 1st) execution reaches `<point>`. Unset, a
//! point costs one relaxed atomic load.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;

/// Every point, in the order a checkpoint passes them.
pub const POINTS: &[&str] = &[
    "after_stage",
    "before_dead_letter_produce",
    "after_dead_letter_produce",
    "mid_checkpoint",
    "after_checkpoint",
    "mid_publish",
    "after_publish",
];

static TARGET: OnceLock<Option<(String, u32)>> = OnceLock::new();
static HITS: AtomicU32 = AtomicU32::new(0);

fn target() -> &'static Option<(String, u32)> {
    TARGET.get_or_init(|| {
        let spec = std::env::var("MEMBERFLOW_CRASH_AT").ok()?;
        let (name, n) = match spec.split_once(':') {
            Some((name, n)) => (name.to_string(), n.parse().unwrap_or(1)),
            None => (spec, 1),
        };
        assert!(POINTS.contains(&name.as_str()), "MEMBERFLOW_CRASH_AT: unknown crash point {name:?}");
        Some((name, n))
    })
}

/// Dies here if the environment asks for it.
pub fn point(name: &str) {
    debug_assert!(POINTS.contains(&name), "undeclared crash point {name}");
    if let Some((target, n)) = target() {
        if target == name && HITS.fetch_add(1, Ordering::Relaxed) + 1 == *n {
            eprintln!("memberflow: crash point {name} reached (MEMBERFLOW_CRASH_AT), aborting");
            std::process::abort();
        }
    }
}

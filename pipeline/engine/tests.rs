//! The batch path against the one-message path: a batch is decoded and its members looked
//! up and prefetched before any of it is applied, so what an event adds (a member, a store,
//! a remembered id) is not yet there when a later event of the batch is looked up. Applying
//! message by message has no such gap; both must end in the same state.

use super::*;
use crate::generate::{GenerateConfig, Generator};
use chrono::NaiveDate;

fn fixed_clock() -> i64 {
    1_793_000_000_000_000
}

/// Runs `messages` through a fresh engine, handing it `per_call` messages at a time.
fn run(messages: &[(String, Vec<u8>)], per_call: usize, end: NaiveDate, dir: &std::path::Path) -> Engine {
    let config = MemberflowConfig { data_dir: dir.to_path_buf(), ..MemberflowConfig::default() };
    let mut engine = Engine::open(&config, AsOf::Fixed(end), fixed_clock).unwrap();
    let batch: Vec<Message<'_>> = messages
        .iter()
        .enumerate()
        .map(|(i, (key, payload))| Message { key: Some(key.as_bytes()), payload, origin: Origin { source: "t", partition: 0, offset: i as i64 } })
        .collect();
    for call in batch.chunks(per_call) {
        engine.process_batch(call);
    }
    engine
}

/// One member's state as comparable values, by member id.
fn member_states(engine: &Engine) -> Vec<String> {
    let t = engine.members();
    let mut out: Vec<String> = (0..t.len())
        .map(|m| {
            let r = &t.rows[m];
            format!(
                "{} {} {} {} {} {} {} {:?} {:?} {:?} {:?}",
                t.ids.get(m as u32),
                r.signed_up_at,
                r.first_purchase,
                r.last_purchase,
                r.newest_event,
                r.updated_at,
                r.purchases_total,
                t.last_store_id(m),
                r.lists.window(),
                r.lists.store_days(),
                t.attributes_json(m),
            )
        })
        .collect();
    out.sort();
    out
}

fn rollup_states(engine: &Engine) -> (Vec<String>, Vec<String>, usize) {
    let (r, t) = (engine.rollups(), engine.members());
    let store = |s: u32| if (s as usize) < t.stores.len() { t.stores.get(s) } else { "-" };
    let mut stores: Vec<String> = r.member_stores.iter().map(|(k, v)| format!("{} {} {v:?}", t.ids.get((k >> 32) as u32), store(k as u32))).collect();
    stores.sort();
    let mut days: Vec<String> = r.epoch.iter().map(|((d, s), v)| format!("{d} {} {v:?}", store(*s))).collect();
    days.sort();
    (stores, days, r.month_buyers.len())
}

#[test]
fn batches_end_in_the_state_of_one_message_at_a_time() {
    let end = NaiveDate::from_ymd_opt(2026, 10, 31).unwrap();
    // Few members, many duplicates and late events, and each member's messages together
    // (sorted by key, stably): a member new in a batch comes again and again in it, with
    // copies of its events that dedup must catch and events older than its newest.
    let config = GenerateConfig {
        events: 6_000,
        members: 150,
        stores: 5,
        start: end - chrono::Duration::days(30),
        end,
        duplicate_rate: 0.15,
        conflict_rate: 0.01,
        malformed_rate: 0.02,
        late_rate: 0.3,
        max_items: 2,
        ..GenerateConfig::default()
    };
    let mut messages: Vec<(String, Vec<u8>)> = Generator::new(config).map(|m| (m.key, m.payload)).collect();
    messages.sort_by(|a, b| a.0.cmp(&b.0));
    let dir = tempfile::tempdir().unwrap();
    let one_at_a_time = run(&messages, 1, end, &dir.path().join("one"));
    for per_call in [BATCH, 3 * BATCH + 5, messages.len()] {
        let batched = run(&messages, per_call, end, &dir.path().join(per_call.to_string()));
        assert_eq!(batched.counters(), one_at_a_time.counters(), "{per_call} per call");
        assert!(batched.counters().duplicates > 500, "the input repeats events: {}", batched.counters());
        assert_eq!(member_states(&batched), member_states(&one_at_a_time), "{per_call} per call");
        assert_eq!(batched.members().rows.len(), batched.members().len(), "one row per member");
        assert_eq!(rollup_states(&batched), rollup_states(&one_at_a_time), "{per_call} per call");
        assert_eq!(batched.dead.len(), one_at_a_time.dead.len());
    }
}

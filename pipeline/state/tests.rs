//! The fold on hand-built cases: windows' edges, refunds, late and duplicate events,
//! members without purchases, and order independence.

use chrono::NaiveDate;
use proptest::prelude::*;

use super::calendar::{date_to_day, BusinessCalendar};
use super::members::{Applied, MemberTable, StateRules};
use super::Checkpoint;
use crate::event::{decode, DecodeLimits, RejectKind};

const RULES: StateRules = StateRules { window_days: 365, dedup_horizon_days: 400 };
const LIMITS: DecodeLimits = DecodeLimits { max_message_bytes: 65536, min_time: 0, max_time: i64::MAX };

fn ev(id: &str, kind: &str, member: &str, at: &str, store: Option<&str>, amount: Option<&str>) -> String {
    let mut s = format!(r#"{{"event_id":"{id}","type":"{kind}","member_id":"{member}","occurred_at":"{at}""#);
    if let Some(st) = store {
        s += &format!(r#","store_id":"{st}""#);
    }
    if let Some(a) = amount {
        s += &format!(r#","amount":"{a}","order_id":"o-{id}""#);
    }
    s + "}"
}

fn apply(table: &mut MemberTable, cal: &BusinessCalendar, text: &str) -> Applied {
    let e = decode(text.as_bytes(), &LIMITS).unwrap();
    table.apply(&e, cal.day(e.occurred_at), &RULES, 0)
}

fn day(s: &str) -> i32 {
    date_to_day(NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap())
}

fn derive(table: &MemberTable, cal: &BusinessCalendar, member: &str, as_of: &str) -> super::members::Derived {
    let m = table.ids.find(member).unwrap() as usize;
    let last = (table.rows[m].last_purchase != super::members::NONE).then(|| cal.day(table.rows[m].last_purchase));
    table.derive(m, day(as_of), RULES.window_days, last)
}

#[test]
fn window_edges_refunds_and_recency() {
    let cal = BusinessCalendar::new(chrono_tz::Tz::UTC);
    let mut t = MemberTable::new();
    // As of 2025-12-31 the window is 2025-01-01 ..= 2025-12-31.
    apply(&mut t, &cal, &ev("a", "purchase", "m", "2024-12-31T23:59:59Z", Some("s1"), Some("100")));
    apply(&mut t, &cal, &ev("b", "purchase", "m", "2025-01-01T00:00:00Z", Some("s2"), Some("10.50")));
    apply(&mut t, &cal, &ev("c", "purchase", "m", "2025-12-31T23:59:59Z", Some("s2"), Some("5")));
    apply(&mut t, &cal, &ev("d", "refund", "m", "2025-06-01T00:00:00Z", None, Some("3.25")));
    apply(&mut t, &cal, &ev("e", "purchase", "m", "2026-01-01T00:00:00Z", Some("s3"), Some("7")));
    let d = derive(&t, &cal, "m", "2025-12-31");
    assert_eq!(d.frequency, 2);
    assert_eq!(d.monetary, 1050 + 500 - 325);
    // Literal definition: recency counts from the last purchase ever (here after as-of).
    assert_eq!(d.recency_days, Some(-1));
    assert_eq!(t.rows[0].purchases_total, 4);
    // A day later 2025-01-01 has left the window (2025-01-02 ..= 2026-01-01).
    let d = derive(&t, &cal, "m", "2026-01-01");
    assert_eq!((d.frequency, d.monetary, d.stores_in_window, d.recency_days), (2, 500 - 325 + 700, 2, Some(0)));
}

#[test]
fn as_of_alone_moves_the_numbers() {
    let cal = BusinessCalendar::new(chrono_tz::Tz::UTC);
    let mut t = MemberTable::new();
    apply(&mut t, &cal, &ev("a", "purchase", "m", "2025-03-01T12:00:00Z", Some("s1"), Some("20")));
    assert_eq!(derive(&t, &cal, "m", "2025-03-01").frequency, 1);
    assert_eq!(derive(&t, &cal, "m", "2026-02-28").frequency, 1);
    assert_eq!(derive(&t, &cal, "m", "2026-03-01").frequency, 0);
    assert_eq!(derive(&t, &cal, "m", "2026-03-01").recency_days, Some(365));
    t.advance_as_of(day("2026-03-01"), 365).unwrap();
    assert!(t.rows[0].lists.window().is_empty(), "buckets that left every future window are dropped");
    assert!(t.advance_as_of(day("2026-02-01"), 365).is_err(), "as-of never moves back");
}

#[test]
fn business_time_zone_decides_the_day() {
    let cal = BusinessCalendar::new("Asia/Shanghai".parse().unwrap());
    let mut t = MemberTable::new();
    // 2025-03-01T16:30Z is March 2nd 00:30 in Shanghai: outside a window ending March 1st.
    apply(&mut t, &cal, &ev("a", "purchase", "m", "2025-03-01T16:30:00Z", Some("s1"), Some("20")));
    assert_eq!(derive(&t, &cal, "m", "2025-03-01").frequency, 0);
    assert_eq!(derive(&t, &cal, "m", "2025-03-02").frequency, 1);
}

#[test]
fn members_without_purchases_and_profiles() {
    let cal = BusinessCalendar::new(chrono_tz::Tz::UTC);
    let mut t = MemberTable::new();
    let signup = r#"{"event_id":"s","type":"signup","member_id":"n","occurred_at":"2025-01-01T00:00:00Z","attributes":{"city":"Hangzhou","birthday":"1990-05-01"}}"#;
    let moved = r#"{"event_id":"p","type":"profile_updated","member_id":"n","occurred_at":"2025-02-01T00:00:00Z","attributes":{"city":"Shanghai"}}"#;
    let stale = r#"{"event_id":"q","type":"profile_updated","member_id":"n","occurred_at":"2024-02-01T00:00:00Z","attributes":{"city":"Beijing"}}"#;
    for text in [signup, moved, stale] {
        assert!(matches!(apply(&mut t, &cal, text), Applied::New(_)));
    }
    let m = t.ids.find("n").unwrap() as usize;
    assert_eq!(t.rows[m].last_purchase, super::members::NONE);
    assert_eq!(t.attributes_json(m).unwrap(), r#"{"birthday":"1990-05-01","city":"Shanghai"}"#);
    // Keys that JSON must escape, against serde_json's own rendering of the same object.
    let attributes = r#"{"a\"b":1,"tab\tkey":"x","back\\slash":[1,{"k":null}],"plain":true,"é":"ü"}"#;
    let odd = format!(r#"{{"event_id":"o","type":"signup","member_id":"o","occurred_at":"2025-01-01T00:00:00Z","attributes":{attributes}}}"#);
    assert!(matches!(apply(&mut t, &cal, &odd), Applied::New(_)));
    let parsed: std::collections::BTreeMap<String, serde_json::Value> = serde_json::from_str(attributes).unwrap();
    let o = t.ids.find("o").unwrap() as usize;
    assert_eq!(t.attributes_json(o).unwrap(), serde_json::to_string(&parsed).unwrap());
}

#[test]
fn duplicates_conflicts_and_the_horizon() {
    let cal = BusinessCalendar::new(chrono_tz::Tz::UTC);
    let mut t = MemberTable::new();
    let first = ev("x", "purchase", "m", "2025-01-10T00:00:00Z", Some("s1"), Some("20"));
    assert!(matches!(apply(&mut t, &cal, &first), Applied::New(_)));
    assert_eq!(apply(&mut t, &cal, &first), Applied::Duplicate);
    let other = ev("x", "purchase", "m", "2025-01-10T00:00:00Z", Some("s1"), Some("21"));
    assert!(matches!(apply(&mut t, &cal, &other), Applied::Rejected(r) if r.kind == RejectKind::Conflict));
    // 300 days later the copy is still recognised.
    apply(&mut t, &cal, &ev("y", "purchase", "m", "2025-11-06T00:00:00Z", Some("s1"), Some("1")));
    assert_eq!(apply(&mut t, &cal, &first), Applied::Duplicate);
    // Beyond the horizon an event cannot be checked: quarantined.
    apply(&mut t, &cal, &ev("z", "sign_in", "m", "2026-03-01T00:00:00Z", None, None));
    let old = ev("w", "purchase", "m", "2025-01-11T00:00:00Z", Some("s1"), Some("5"));
    assert!(matches!(apply(&mut t, &cal, &old), Applied::Rejected(r) if r.kind == RejectKind::BeyondDedupHorizon));
    assert_eq!(t.rows[0].purchases_total, 2);
}

#[test]
fn checkpoint_round_trips_and_detects_damage() {
    let cal = BusinessCalendar::new(chrono_tz::Tz::UTC);
    let mut ckpt = Checkpoint::empty();
    for i in 0..500 {
        let text = ev(&format!("e{i}"), "purchase", &format!("m{}", i % 37), "2025-05-01T10:00:00Z", Some(&format!("s{}", i % 5)), Some("9.99"));
        apply(&mut ckpt.members, &cal, &text);
    }
    apply(&mut ckpt.members, &cal, r#"{"event_id":"s","type":"signup","member_id":"m1","occurred_at":"2025-01-01T00:00:00Z","attributes":{"city":"X"}}"#);
    ckpt.epoch = 7;
    ckpt.offsets.insert(("t".into(), 3), 501);
    ckpt.manifest.publish.push("events/dt=2025-05-01/part-0000000007.parquet".into());
    let dir = tempfile::tempdir().unwrap();
    ckpt.save(dir.path(), false).unwrap();
    let back = Checkpoint::load(dir.path()).unwrap();
    assert_eq!((back.epoch, &back.offsets, &back.manifest), (7, &ckpt.offsets, &ckpt.manifest));
    for m in 0..37 {
        let id = format!("m{m}");
        assert_eq!(derive(&back.members, &cal, &id, "2025-06-01"), derive(&ckpt.members, &cal, &id, "2025-06-01"));
    }
    assert_eq!(back.members.seen_by_row(), ckpt.members.seen_by_row());
    assert_eq!(back.members.attributes_json(1), ckpt.members.attributes_json(1));
    let path = dir.path().join(super::checkpoint::FILE_NAME);
    let mut bytes = std::fs::read(&path).unwrap();
    bytes[100] ^= 1;
    std::fs::write(&path, bytes).unwrap();
    assert!(Checkpoint::load(dir.path()).unwrap_err().to_string().contains("checksum"));
}

proptest! {
    /// Any order of the same events (within the horizon) gives the same member values.
    #[test]
    fn order_does_not_matter(order in Just((0..40usize).collect::<Vec<_>>()).prop_shuffle(), dup in 0..40usize) {
        let cal = BusinessCalendar::new(chrono_tz::Tz::UTC);
        let events: Vec<String> = (0..40).map(|i| {
            let kind = if i % 7 == 3 { "refund" } else { "purchase" };
            let at = format!("2025-{:02}-{:02}T{:02}:00:00Z", 1 + i % 12, 1 + i % 28, i % 24);
            ev(&format!("e{i}"), kind, &format!("m{}", i % 3), &at, Some(&format!("s{}", i % 4)), Some(&format!("{}.{:02}", i * 3, i)))
        }).collect();
        let mut a = MemberTable::new();
        let mut b = MemberTable::new();
        for e in &events { apply(&mut a, &cal, e); }
        for &i in &order { apply(&mut b, &cal, &events[i]); }
        apply(&mut b, &cal, &events[dup]);
        for m in ["m0", "m1", "m2"] {
            prop_assert_eq!(derive(&a, &cal, m, "2025-12-31"), derive(&b, &cal, m, "2025-12-31"));
            let (ia, ib) = (a.ids.find(m).unwrap() as usize, b.ids.find(m).unwrap() as usize);
            prop_assert_eq!(a.rows[ia].first_purchase, b.rows[ib].first_purchase);
            prop_assert_eq!(a.rows[ia].last_purchase, b.rows[ib].last_purchase);
            prop_assert_eq!(a.rows[ia].purchases_total, b.rows[ib].purchases_total);
            prop_assert_eq!(a.last_store_id(ia), b.last_store_id(ib));
        }
    }
}

#[test]
fn snapshot_plus_deltas_restore_the_state_exactly() {
    use super::scoring::Class;
    let cal = BusinessCalendar::new(chrono_tz::Tz::UTC);
    let dir = tempfile::tempdir().unwrap();
    let mut ckpt = Checkpoint::empty();
    ckpt.scoring.refresh = Some(super::scoring::RefreshRecord {
        id: 1,
        as_of: day("2025-06-01"),
        computed_at: 5,
        config: Default::default(),
        cuts: Default::default(),
        scored_population: 0,
        stats: Vec::new(),
    });
    let (mut kinds, mut forgot, mut refreshed) = (Vec::new(), false, None);
    for epoch in 1..=14u64 {
        // Each epoch touches a few of the earlier members and adds new ones.
        for i in 0..40u64 {
            let member = format!("m{}", (i * 7 + epoch * 3) % (10 + epoch * 4));
            let date = format!("2025-{:02}-{:02}T10:00:00Z", 1 + (epoch + i) % 12, 1 + i % 28);
            let kind = ["purchase", "purchase", "refund", "sign_in"][(i % 4) as usize];
            let amount = (kind != "sign_in").then(|| format!("{}.{:02}", i + epoch, i));
            let text = ev(&format!("e{epoch}-{i}"), kind, &member, &date, Some(&format!("s{}", i % 3 + epoch % 2)), amount.as_deref());
            if let Applied::New(m) = apply(&mut ckpt.members, &cal, &text) {
                let d = cal.day(decode(text.as_bytes(), &LIMITS).unwrap().occurred_at);
                ckpt.rollups.purchase(m, Some((i % 3) as u32), d, i as i64);
                let classes = &mut ckpt.scoring.classes;
                classes.resize(ckpt.members.len(), Class::default());
                classes[m as usize] = Class { r: epoch as u8, f: 1, m: 2, segment: 3, tags: epoch << 3, scored_at: epoch as i64 };
            }
        }
        // One heavy member, about half the ids, whose ids from epoch 12 on are two years
        // later: the table, full, then forgets its 2025 ids (a prune pays when a third of
        // the table goes), and that epoch's checkpoint is a snapshot.
        let (year, heavy) = if epoch >= 12 { (2027, 300) } else { (2025, 60) };
        for j in 0..heavy {
            let date = format!("{year}-{:02}-{:02}T11:00:00Z", 1 + (epoch + j / 28) % 12, 1 + j % 28);
            apply(&mut ckpt.members, &cal, &ev(&format!("h{epoch}-{j}"), "sign_in", "heavy", &date, None, None));
        }
        forgot |= ckpt.members.seen.forgot();
        if epoch == 3 {
            apply(&mut ckpt.members, &cal, r#"{"event_id":"p","type":"signup","member_id":"m5","occurred_at":"2025-01-01T00:00:00Z","attributes":{"city":"X"}}"#);
        }
        if epoch % 5 == 0 {
            ckpt.members.advance_as_of(day("2025-12-31") + epoch as i32 * 20, 365).unwrap();
        }
        ckpt.epoch = epoch;
        ckpt.offsets.insert(("t".into(), 0), epoch as i64 * 40);
        ckpt.manifest.publish = vec![format!("events/part-{epoch}.parquet")];
        // A refresh re-classifies everyone: the delta carries every classification. It
        // comes in the first epoch from 8 on that follows a snapshot, so that a delta is due.
        let refresh = refreshed.is_none() && epoch >= 8 && kinds.last() == Some(&true);
        if refresh {
            refreshed = Some(kinds.len());
            ckpt.scoring.refresh.as_mut().unwrap().id = 2;
            for (m, class) in ckpt.scoring.classes.iter_mut().enumerate() {
                class.segment = (m % 5) as u8;
                class.scored_at = 99;
            }
        }
        kinds.push(ckpt.save(dir.path(), refresh).unwrap().full);

        let back = Checkpoint::load(dir.path()).unwrap();
        assert_eq!((back.epoch, &back.offsets, &back.manifest), (ckpt.epoch, &ckpt.offsets, &ckpt.manifest));
        assert!(back.members.ids.iter().eq(ckpt.members.ids.iter()));
        assert!(back.members.stores.iter().eq(ckpt.members.stores.iter()));
        assert_eq!((back.members.window_floor, back.members.as_of_high), (ckpt.members.window_floor, ckpt.members.as_of_high));
        for (a, b) in back.members.rows.iter().zip(ckpt.members.rows.iter()) {
            let scalars = |r: &super::members::Member| (r.first_purchase, r.last_purchase, r.newest_event, r.purchases_total, r.last_store, r.signed_up_at);
            assert_eq!(scalars(a), scalars(b));
            assert_eq!((a.lists.window(), a.lists.store_days()), (b.lists.window(), b.lists.store_days()));
        }
        assert_eq!(back.members.seen_by_row(), ckpt.members.seen_by_row());
        assert_eq!(back.members.rows.len(), ckpt.members.rows.len());
        if let Some(m5) = ckpt.members.ids.find("m5") {
            assert_eq!(back.members.attributes_json(m5 as usize), ckpt.members.attributes_json(m5 as usize));
        }
        assert_eq!(back.scoring.classes, ckpt.scoring.classes);
        assert_eq!(back.scoring.refresh, ckpt.scoring.refresh);
        assert_eq!(back.rollups.month_buyers, ckpt.rollups.month_buyers);
        assert_eq!(back.rollups.member_stores, ckpt.rollups.member_stores);
    }
    assert!(ckpt.members.seen_by_row().iter().any(|ids| ids.len() > 32), "a heavy member's ids were saved and restored");
    assert!(forgot, "the heavy member's old ids were forgotten (and restored as forgotten)");
    assert!(kinds[0], "the first save is a snapshot");
    assert!(kinds.iter().filter(|full| !**full).count() >= 5, "mostly deltas: {kinds:?}");
    assert!(kinds.iter().skip(1).any(|full| *full), "a snapshot once the deltas add up: {kinds:?}");
    let refreshed = refreshed.expect("a snapshot from epoch 8 on, before the last epoch");
    assert!(!kinds[refreshed], "the refresh of epoch {} wrote a delta: {kinds:?}", refreshed + 1);

    // A delta lost from the middle of the chain is an error, not a silent gap.
    let mut deltas: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().map(|e| e.path())
        .filter(|p| p.to_string_lossy().contains("delta")).collect();
    deltas.sort();
    if deltas.len() >= 2 {
        std::fs::remove_file(&deltas[0]).unwrap();
        assert!(Checkpoint::load(dir.path()).unwrap_err().to_string().contains("missing"));
    }
}

/// Deltas of the earlier format (MFDELT01: the touched member-store entries as six
/// columns, no remembered ids after them) still load: a delta written now is rewritten in
/// that format by hand, and the rollups loaded from it must equal the live ones.
#[test]
fn a_delta_with_member_store_columns_still_loads() {
    use super::checkpoint::encode_member_stores;
    use super::codec::Encoder;
    let cal = BusinessCalendar::new(chrono_tz::Tz::UTC);
    let dir = tempfile::tempdir().unwrap();
    let mut ckpt = Checkpoint::empty();
    let (mut touched, mut added) = (0, 0);
    for epoch in 1..=2u64 {
        added = 0;
        for i in 0..30u64 {
            let text = ev(&format!("e{epoch}-{i}"), "purchase", &format!("m{}", i % 7), "2025-03-01T10:00:00Z", Some("s1"), Some("1.00"));
            if let Applied::New(m) = apply(&mut ckpt.members, &cal, &text) {
                ckpt.rollups.purchase(m, Some((i % 4) as u32), day("2025-03-01"), (i * epoch) as i64);
                added += 1;
            }
        }
        let mut keys = ckpt.rollups.touched_member_stores.clone();
        keys.sort_unstable();
        keys.dedup();
        touched = keys.len();
        ckpt.epoch = epoch;
        assert_eq!(ckpt.save(dir.path(), false).unwrap().full, epoch == 1);
    }
    let path = std::fs::read_dir(dir.path()).unwrap().flatten().map(|e| e.path()).find(|p| p.to_string_lossy().contains("delta")).unwrap();
    let file = std::fs::read(&path).unwrap();
    // The delta ends with the ids the epoch remembered (a count, 20 bytes each), before
    // them the entries: a count, then 36 bytes each (key first).
    let ids_at = file.len() - 8 - 8 - 20 * added;
    assert_eq!(u64::from_le_bytes(file[ids_at..ids_at + 8].try_into().unwrap()), added as u64);
    let body = &file[..ids_at];
    let rows_at = body.len() - 8 - 36 * touched;
    assert_eq!(u64::from_le_bytes(body[rows_at..rows_at + 8].try_into().unwrap()), touched as u64);
    let keys: Vec<u64> = body[rows_at + 8..].chunks_exact(36).map(|c| u64::from_le_bytes(c[..8].try_into().unwrap())).collect();
    let mut columns = Encoder::new(Vec::new());
    let entries = || keys.iter().map(|&k| (k, *ckpt.rollups.member_stores.get(k).unwrap()));
    encode_member_stores(entries, &mut columns).unwrap();
    let columns = columns.finish().unwrap();
    let mut old = b"MFDELT01".to_vec();
    old.extend_from_slice(&body[8..rows_at]);
    old.extend_from_slice(&columns[..columns.len() - 8]);
    let sum = xxhash_rust::xxh3::xxh3_64(&old);
    old.extend_from_slice(&sum.to_le_bytes());
    std::fs::write(&path, old).unwrap();
    let back = Checkpoint::load(dir.path()).unwrap();
    assert_eq!(back.rollups.member_stores, ckpt.rollups.member_stores);
    assert!(back.members.ids.iter().eq(ckpt.members.ids.iter()));
}

/// A snapshot of the earlier format (MFCKPT04: each member's remembered ids in its row)
/// still loads, with every id, and a delta written after it (MFDELT03) on top: the state
/// read back equals the live one, and a replayed event is still a duplicate.
#[test]
fn a_snapshot_with_ids_in_rows_still_loads() {
    let cal = BusinessCalendar::new(chrono_tz::Tz::UTC);
    let dir = tempfile::tempdir().unwrap();
    let mut ckpt = Checkpoint::empty();
    let text = |i: u64| {
        let date = format!("2025-{:02}-{:02}T10:00:00Z", 1 + i % 12, 1 + i % 28);
        ev(&format!("e{i}"), ["purchase", "sign_in"][(i % 2) as usize], &format!("m{}", i % 9), &date, Some("s1"), (i % 2 == 0).then_some("2.50"))
    };
    for i in 0..200 {
        apply(&mut ckpt.members, &cal, &text(i));
    }
    ckpt.epoch = 1;
    ckpt.write_format_04(dir.path()).unwrap();
    let mut back = Checkpoint::load(dir.path()).unwrap();
    assert_eq!(back.members.seen.len(), 200);
    assert_eq!(back.members.seen_by_row(), ckpt.members.seen_by_row());

    for i in 200..260 {
        apply(&mut ckpt.members, &cal, &text(i));
        apply(&mut back.members, &cal, &text(i));
    }
    back.epoch = 2;
    assert!(!back.save(dir.path(), false).unwrap().full, "a delta after the old snapshot");
    let mut again = Checkpoint::load(dir.path()).unwrap();
    assert_eq!(again.members.seen_by_row(), ckpt.members.seen_by_row());
    for i in [0, 199, 259] {
        assert!(matches!(apply(&mut again.members, &cal, &text(i)), Applied::Duplicate), "event e{i} after the reload");
    }
}

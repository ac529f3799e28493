//! Per-member state as columns (one `Vec` per field, indexed by a dense member number),
//! and the pure fold that applies one event to it.
//!
//! Memory per member is bounded: purchases are kept as one bucket per calendar day inside
//! the window, stores as one entry per store and purchase day inside the window, ids in
//! an arena.

use serde_json::value::RawValue;

use super::calendar::Day;
use super::dedup::{SeenIds, Verdict};
use super::interner::Interner;
use crate::event::{Event, EventType, RejectKind, Rejection};

/// "No value" for timestamp columns.
pub const NONE: i64 = i64::MIN;
const NO_STORE: u32 = u32::MAX;
const MICROS_PER_DAY: i64 = 86_400_000_000;

/// Purchases and net amount of one calendar day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DayBucket {
    pub day: Day,
    pub purchases: u32,
    /// Purchase amounts minus refund amounts, minor units.
    pub net: i64,
}

/// A day on which a member bought at a store (one entry per store and day in the window).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct StoreDay {
    pub store: u32,
    pub day: Day,
}

/// Profile attributes: per key the latest value by event time (ties: the larger text).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Profile {
    pub attrs: Vec<(Box<str>, Box<str>, i64)>,
}

/// The parameters of the fold.
#[derive(Debug, Clone, Copy)]
pub struct StateRules {
    pub window_days: i32,
    pub dedup_horizon_days: i32,
}

/// What applying an event did.
#[derive(Debug, Clone, PartialEq)]
pub enum Applied {
    /// Applied to this member.
    New(u32),
    /// Already applied once; ignored.
    Duplicate,
    /// Not applied; goes to the dead letters.
    Rejected(Rejection),
}

/// Values derived for one member at an as-of day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Derived {
    pub recency_days: Option<i32>,
    pub frequency: u32,
    pub monetary: i64,
    pub stores_in_window: u32,
}

#[derive(Debug, Clone, Default)]
pub struct MemberTable {
    pub ids: Interner,
    pub stores: Interner,
    pub signed_up_at: Vec<i64>,
    pub first_purchase: Vec<i64>,
    pub last_purchase: Vec<i64>,
    pub purchases_total: Vec<u32>,
    pub last_store: Vec<u32>,
    pub newest_event: Vec<i64>,
    /// Ingest clock of the last change, microseconds.
    pub updated_at: Vec<i64>,
    pub window: Vec<Vec<DayBucket>>,
    pub store_days: Vec<Vec<StoreDay>>,
    pub profile: Vec<Option<Box<Profile>>>,
    pub seen: Vec<SeenIds>,
    /// Days up to and including this one can no longer fall inside any window, because
    /// the as-of day only moves forward; their buckets are dropped.
    pub window_floor: Day,
    /// The latest as-of day used (none yet: `Day::MIN`).
    pub as_of_high: Day,
}

impl MemberTable {
    pub fn new() -> Self {
        Self { window_floor: Day::MIN, as_of_high: Day::MIN, ..Self::default() }
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    fn member(&mut self, id: &str) -> u32 {
        let (m, added) = self.ids.intern(id);
        if added {
            self.signed_up_at.push(NONE);
            self.first_purchase.push(NONE);
            self.last_purchase.push(NONE);
            self.purchases_total.push(0);
            self.last_store.push(NO_STORE);
            self.newest_event.push(NONE);
            self.updated_at.push(NONE);
            self.window.push(Vec::new());
            self.store_days.push(Vec::new());
            self.profile.push(None);
            self.seen.push(SeenIds::default());
        }
        m
    }

    /// Applies `event` (already decoded; `day` is its business day) exactly once.
    pub fn apply(&mut self, event: &Event<'_>, day: Day, rules: &StateRules, now: i64) -> Applied {
        let m = self.member(&event.member_id);
        let i = m as usize;
        let newest = self.newest_event[i];
        let horizon_micros = rules.dedup_horizon_days as i64 * MICROS_PER_DAY;
        if newest != NONE && event.occurred_at < newest - horizon_micros {
            return Applied::Rejected(Rejection::new(
                RejectKind::BeyondDedupHorizon,
                format!(
                    "event is more than {} days older than the newest applied event of member {:?}; \
                     it cannot be checked for duplicates",
                    rules.dedup_horizon_days, event.member_id
                ),
            ));
        }
        let id_hash = xxhash_rust::xxh3::xxh3_64(event.event_id.as_bytes());
        let content = event.content_hash() as u32;
        let newest_day = if newest == NONE { day } else { day.max((newest / MICROS_PER_DAY) as Day) };
        let forget_before = newest_day - rules.dedup_horizon_days - 2;
        match self.seen[i].check_and_insert(id_hash, content, day, forget_before) {
            Verdict::Duplicate => return Applied::Duplicate,
            Verdict::Conflict => {
                return Applied::Rejected(Rejection::new(
                    RejectKind::Conflict,
                    format!(
                        "event_id {:?} was already applied with a different payload; the first one wins",
                        event.event_id
                    ),
                ))
            }
            Verdict::New => {}
        }
        self.newest_event[i] = newest.max(event.occurred_at);
        self.updated_at[i] = now;
        match event.kind {
            EventType::Purchase => self.apply_purchase(i, event, day),
            EventType::Refund => {
                let amount = event.amount.map_or(0, |a| a.0);
                self.add_to_day(i, day, 0, -amount);
            }
            EventType::Signup | EventType::ProfileUpdated => {
                if event.kind == EventType::Signup {
                    let s = &mut self.signed_up_at[i];
                    if *s == NONE || event.occurred_at < *s {
                        *s = event.occurred_at;
                    }
                }
                if let Some(attributes) = event.attributes {
                    self.merge_profile(i, attributes, event.occurred_at);
                }
            }
            _ => {}
        }
        Applied::New(m)
    }

    fn apply_purchase(&mut self, i: usize, event: &Event<'_>, day: Day) {
        let t = event.occurred_at;
        if self.first_purchase[i] == NONE || t < self.first_purchase[i] {
            self.first_purchase[i] = t;
        }
        let store = event.store_id.as_deref().map(|s| self.stores.intern(s).0);
        let last = self.last_purchase[i];
        let later = last == NONE || t > last;
        let tie_wins = t == last && self.store_name(store) > self.store_name(Some(self.last_store[i]));
        if later || tie_wins {
            self.last_purchase[i] = t;
            self.last_store[i] = store.unwrap_or(NO_STORE);
        }
        self.purchases_total[i] += 1;
        self.add_to_day(i, day, 1, event.amount.map_or(0, |a| a.0));
        if let (Some(store), true) = (store, day > self.window_floor) {
            let days = &mut self.store_days[i];
            let entry = StoreDay { store, day };
            if let Err(k) = days.binary_search(&entry) {
                days.insert(k, entry);
            }
        }
    }

    fn store_name(&self, store: Option<u32>) -> Option<&str> {
        store.filter(|&s| s != NO_STORE).map(|s| self.stores.get(s))
    }

    fn add_to_day(&mut self, i: usize, day: Day, purchases: u32, net: i64) {
        if day <= self.window_floor {
            return;
        }
        let buckets = &mut self.window[i];
        match buckets.binary_search_by_key(&day, |b| b.day) {
            Ok(k) => {
                buckets[k].purchases += purchases;
                buckets[k].net += net;
            }
            Err(k) => buckets.insert(k, DayBucket { day, purchases, net }),
        }
    }

    fn merge_profile(&mut self, i: usize, attributes: &RawValue, t: i64) {
        // The decoder checked that `attributes` is an object.
        let Ok(map) = serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(attributes.get())
        else {
            return;
        };
        let profile = self.profile[i].get_or_insert_with(Default::default);
        for (key, value) in map {
            let value = value.to_string();
            match profile.attrs.iter_mut().find(|(k, _, _)| **k == *key) {
                Some((_, v, at)) => {
                    if t > *at || (t == *at && *value > **v) {
                        *v = value.into();
                        *at = t;
                    }
                }
                None => profile.attrs.push((key.into(), value.into(), t)),
            }
        }
        profile.attrs.sort_by(|a, b| a.0.cmp(&b.0));
    }

    /// Moves the as-of day forward and drops what can no longer enter a window.
    pub fn advance_as_of(&mut self, as_of: Day, window_days: i32) -> Result<(), String> {
        if as_of < self.as_of_high {
            return Err(format!(
                "the state was already computed as of {}; an earlier as-of day ({}) would need \
                 history that was dropped — replay into a fresh data directory instead",
                super::calendar::day_to_date(self.as_of_high),
                super::calendar::day_to_date(as_of)
            ));
        }
        self.as_of_high = as_of;
        let floor = as_of - window_days;
        if floor > self.window_floor {
            self.window_floor = floor;
            for buckets in &mut self.window {
                if buckets.first().is_some_and(|b| b.day <= floor) {
                    buckets.retain(|b| b.day > floor);
                }
            }
            for stores in &mut self.store_days {
                stores.retain(|s| s.day > floor);
            }
        }
        Ok(())
    }

    /// RFM values of member `m` at `as_of` (a purchase on day d is inside the window when
    /// `as_of - window_days < d <= as_of`).
    pub fn derive(&self, m: usize, as_of: Day, window_days: i32, last_purchase_day: Option<Day>) -> Derived {
        let inside = |d: Day| as_of - window_days < d && d <= as_of;
        let (mut frequency, mut monetary) = (0u32, 0i64);
        for b in self.window[m].iter().filter(|b| inside(b.day)) {
            frequency += b.purchases;
            monetary += b.net;
        }
        // Entries are sorted by store: count the stores with at least one day inside.
        let mut stores_in_window = 0;
        let mut last_counted = None;
        for s in self.store_days[m].iter().filter(|s| inside(s.day)) {
            if last_counted != Some(s.store) {
                stores_in_window += 1;
                last_counted = Some(s.store);
            }
        }
        Derived { recency_days: last_purchase_day.map(|d| as_of - d), frequency, monetary, stores_in_window }
    }

    pub fn last_store_id(&self, m: usize) -> Option<&str> {
        self.store_name(Some(self.last_store[m]))
    }

    /// The profile as a JSON object (keys sorted), or `None` when nothing was ever set.
    pub fn attributes_json(&self, m: usize) -> Option<String> {
        let profile = self.profile[m].as_ref()?;
        let mut out = String::from("{");
        for (n, (k, v, _)) in profile.attrs.iter().enumerate() {
            if n > 0 {
                out.push(',');
            }
            out.push_str(&serde_json::to_string(&**k).unwrap_or_default());
            out.push(':');
            out.push_str(v);
        }
        out.push('}');
        Some(out)
    }

    /// Heap and column bytes of the base state and of the dedup memory, separately.
    pub fn memory_bytes(&self) -> (usize, usize) {
        let n = self.len();
        let columns = n * (8 * 5 + 4 * 2 + 3 * 24 + 8);
        let window: usize = self.window.iter().map(|b| b.capacity() * 16).sum();
        let stores: usize = self.store_days.iter().map(|s| s.capacity() * 8).sum();
        let profiles: usize = self
            .profile
            .iter()
            .flatten()
            .map(|p| 24 + p.attrs.iter().map(|(k, v, _)| 40 + k.len() + v.len()).sum::<usize>())
            .sum();
        let base = columns + window + stores + profiles + self.ids.heap_bytes() + self.stores.heap_bytes();
        let dedup = self.seen.iter().map(SeenIds::heap_bytes).sum();
        (base, dedup)
    }
}

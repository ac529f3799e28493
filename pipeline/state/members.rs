//! Per-member state (one row per member, indexed by a dense member number), and the
//! pure fold that applies one event to it.
//!
//! Memory per member is bounded: purchases are kept as one bucket per calendar day inside
//! the window, stores as one entry per store and purchase day inside the window, ids in
//! an arena.

use super::calendar::Day;
use super::dedup::{Seen, SeenTable, Verdict};
use super::flat::prefetch;
use super::growth::ChunkedVec;
use super::lists::Lists;
pub use super::profile::Profile;
use super::interner::Interner;
use crate::event::{Event, EventType, RejectKind, Rejection};

/// "No value" for timestamp columns.
pub const NONE: i64 = i64::MIN;
const NO_STORE: u32 = u32::MAX;
const MICROS_PER_DAY: i64 = 86_400_000_000;

/// Purchases and net amount of one calendar day.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
pub struct DayBucket {
    pub day: Day,
    pub purchases: u32,
    /// Purchase amounts minus refund amounts, minor units.
    pub net: i64,
}

/// A day on which a member bought at a store (one entry per store and day in the window).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(C)]
pub struct StoreDay {
    pub store: u32,
    pub day: Day,
}


/// The parameters of the fold.
#[derive(Debug, Clone, Copy)]
pub struct StateRules {
    pub window_days: i32,
    pub dedup_horizon_days: i32,
}

/// An event's member and store indices when a lookup before applying it (the engine's
/// prefetch pass) found them; `None` when not looked up, absent or not yet known (then
/// applying the event looks them up, adding them when new). Indices are never reused,
/// so one found before stays right.
#[derive(Debug, Clone, Copy, Default)]
pub struct Known {
    pub member: Option<u32>,
    pub store: Option<u32>,
}

/// An event's hashes: of its member id (the id table's) and of its event id (the dedup
/// memory's), computed where they are first needed for prefetching, and of its content
/// (what tells a duplicate from a conflict).
#[derive(Debug, Clone, Copy, Default)]
pub struct Hashes {
    pub member: u64,
    pub event: u64,
    /// [`Event::content_hash`].
    pub content: u64,
}

impl Hashes {
    pub fn of(event: &Event<'_>) -> Self {
        Self::with_content(event, event.content_hash())
    }

    /// With the content hash already computed.
    pub fn with_content(event: &Event<'_>, content: u64) -> Self {
        Self { member: super::interner::hash(&event.member_id), event: xxhash_rust::xxh3::xxh3_64(event.event_id.as_bytes()), content }
    }
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

/// One member's state, 88 bytes: the scalars and the header of the member's one list
/// block, so applying an event touches the row's two lines plus the part of the block it
/// reads.
#[derive(Debug, Clone)]
pub struct Member {
    pub signed_up_at: i64,
    pub first_purchase: i64,
    pub last_purchase: i64,
    pub newest_event: i64,
    /// Ingest clock of the last change, microseconds.
    pub updated_at: i64,
    pub purchases_total: u32,
    pub last_store: u32,
    /// Window buckets and store days, in one allocation ([`Lists`]).
    pub lists: Lists,
    pub profile: Option<Profile>,
}

const _: () = assert!(std::mem::size_of::<Member>() == 88, "a row is 88 bytes of every member's base state");

impl Default for Member {
    fn default() -> Self {
        Self {
            signed_up_at: NONE,
            first_purchase: NONE,
            last_purchase: NONE,
            newest_event: NONE,
            updated_at: NONE,
            purchases_total: 0,
            last_store: NO_STORE,
            lists: Lists::default(),
            profile: None,
        }
    }
}

/// Every member, indexed by the dense number `ids` gives it.
#[derive(Debug, Clone, Default)]
pub struct MemberTable {
    pub ids: Interner,
    pub stores: Interner,
    pub rows: ChunkedVec<Member>,
    /// Days up to and including this one can no longer fall inside any window, because
    /// the as-of day only moves forward; their buckets are dropped.
    pub window_floor: Day,
    /// The latest as-of day used (none yet: `Day::MIN`).
    pub as_of_high: Day,
    /// Rows changed since the last checkpoint (what an incremental checkpoint writes).
    pub changed: ChangedRows,
    /// Every member's remembered event ids (the dedup memory).
    pub seen: SeenTable,
}

/// A set of row numbers: a bit per row, plus the list in the order they changed.
#[derive(Debug, Clone, Default)]
pub struct ChangedRows {
    bits: Vec<u64>,
    rows: Vec<u32>,
}

impl ChangedRows {
    pub fn mark(&mut self, row: u32) {
        let (word, bit) = ((row / 64) as usize, 1u64 << (row % 64));
        if word >= self.bits.len() {
            self.bits.resize((word + 1).next_power_of_two(), 0);
        }
        if self.bits[word] & bit == 0 {
            self.bits[word] |= bit;
            self.rows.push(row);
        }
    }

    pub fn contains(&self, row: u32) -> bool {
        self.bits.get((row / 64) as usize).is_some_and(|w| w & 1 << (row % 64) != 0)
    }

    /// The changed rows, ascending.
    pub fn sorted(&self) -> Vec<u32> {
        let mut rows = self.rows.clone();
        rows.sort_unstable();
        rows
    }

    pub fn clear(&mut self) {
        for &row in &self.rows {
            self.bits[(row / 64) as usize] = 0;
        }
        self.rows.clear();
    }
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

    /// Prefetches the row of the member with this id and interner hash, if known.
    #[inline]
    pub fn prefetch(&self, hash: u64, id: &str) -> Option<u32> {
        let m = self.ids.find_hashed(hash, id)?;
        if let Some(row) = self.rows.get(m as usize) {
            prefetch(row);
        }
        Some(m)
    }

    /// Prefetches the lists of a member's row an event of `kind` reads: for purchases and
    /// refunds the window and store days (other events read none). Lines that are not
    /// read still take a slot of the core's queue of outstanding misses, which the batch's
    /// prefetches fill.
    #[inline]
    pub fn prefetch_lists(&self, m: u32, kind: EventType) {
        if let (Some(row), EventType::Purchase | EventType::Refund) = (self.rows.get(m as usize), kind) {
            row.lists.prefetch();
        }
    }

    fn member(&mut self, hash: u64, id: &str) -> u32 {
        let (m, added) = self.ids.intern_hashed(hash, id);
        if added {
            self.rows.push(Member::default());
            self.changed.mark(m);
        }
        m
    }

    /// Applies `event` (already decoded; `day` is its business day) exactly once.
    pub fn apply(&mut self, event: &Event<'_>, day: Day, rules: &StateRules, now: i64) -> Applied {
        let hashes = Hashes::of(event);
        self.apply_hashed(event, hashes, Known::default(), day, rules, now)
    }

    /// `apply` with the member id's interner hash already computed (the engine hashed it
    /// to prefetch the member's state).
    pub fn apply_hashed(&mut self, event: &Event<'_>, hashes: Hashes, known: Known, day: Day, rules: &StateRules, now: i64) -> Applied {
        let m = known.member.unwrap_or_else(|| self.member(hashes.member, &event.member_id));
        let i = m as usize;
        let newest = self.rows[i].newest_event;
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
        let event_hash = hashes.event;
        let content = hashes.content as u32;
        // The table forgets, when full, what left a member's horizon (from the member's
        // newest event applied so far; two days of slack for the business time zone).
        let rows = &self.rows;
        let newest_day = |m: u32| match rows[m as usize].newest_event {
            NONE => Day::MIN,
            newest => (newest / MICROS_PER_DAY) as Day,
        };
        let seen = Seen { id_hash: event_hash, content, day };
        match self.seen.check_and_insert(m, seen, rules.dedup_horizon_days + 2, newest_day) {
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
        self.changed.mark(m);
        // A new member's block: sized for this event's inserts (a purchase's window bucket
        // and store day, a refund's bucket).
        match event.kind {
            EventType::Purchase => self.rows[i].lists.reserve_first(3),
            EventType::Refund => self.rows[i].lists.reserve_first(2),
            _ => {}
        }
        self.rows[i].newest_event = newest.max(event.occurred_at);
        self.rows[i].updated_at = now;
        match event.kind {
            EventType::Purchase => self.apply_purchase(i, event, known.store, day),
            EventType::Refund => {
                let amount = event.amount.map_or(0, |a| a.0);
                self.add_to_day(i, day, 0, -amount);
            }
            EventType::Signup | EventType::ProfileUpdated => {
                if event.kind == EventType::Signup {
                    let s = &mut self.rows[i].signed_up_at;
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

    fn apply_purchase(&mut self, i: usize, event: &Event<'_>, store: Option<u32>, day: Day) {
        let t = event.occurred_at;
        let store = self.store_of(event, store);
        let tie_wins = t == self.rows[i].last_purchase
            && self.store_name(store) > self.store_name(Some(self.rows[i].last_store));
        let row = &mut self.rows[i];
        if row.first_purchase == NONE || t < row.first_purchase {
            row.first_purchase = t;
        }
        if row.last_purchase == NONE || t > row.last_purchase || tie_wins {
            row.last_purchase = t;
            row.last_store = store.unwrap_or(NO_STORE);
        }
        row.purchases_total += 1;
        if let (Some(store), true) = (store, day > self.window_floor) {
            let entry = StoreDay { store, day };
            if let Err(k) = row.lists.store_days().binary_search(&entry) {
                row.lists.insert_store_day(k, entry);
            }
        }
        self.add_to_day(i, day, 1, event.amount.map_or(0, |a| a.0));
    }

    /// The index of the event's store: `known` when given, else looked up (added when new).
    pub fn store_of(&mut self, event: &Event<'_>, known: Option<u32>) -> Option<u32> {
        known.or_else(|| event.store_id.as_deref().map(|s| self.stores.intern(s).0))
    }

    fn store_name(&self, store: Option<u32>) -> Option<&str> {
        store.filter(|&s| s != NO_STORE).map(|s| self.stores.get(s))
    }

    fn add_to_day(&mut self, i: usize, day: Day, purchases: u32, net: i64) {
        if day <= self.window_floor {
            return;
        }
        let lists = &mut self.rows[i].lists;
        let buckets = lists.window_mut();
        // Most events are of the newest day: look at the end before searching.
        let found = match buckets.last() {
            Some(last) if last.day == day => Ok(buckets.len() - 1),
            Some(last) if last.day < day => Err(buckets.len()),
            _ => buckets.binary_search_by_key(&day, |b| b.day),
        };
        match found {
            Ok(k) => {
                buckets[k].purchases += purchases;
                buckets[k].net += net;
            }
            Err(k) => lists.insert_window(k, DayBucket { day, purchases, net }),
        }
    }

    fn merge_profile(&mut self, i: usize, attributes: &str, t: i64) {
        let row = &mut self.rows[i];
        let mut pairs = [("", ""); crate::event::PLAIN_MAX];
        if let Some(n) = crate::event::plain_object(attributes, &mut pairs) {
            let profile = row.profile.get_or_insert_with(|| Profile::with_room_for(pairs[..n].iter().copied()));
            for (key, value) in &pairs[..n] {
                profile.merge(key, value, t);
            }
            return;
        }
        let profile = row.profile.get_or_insert_with(Default::default);
        // The decoder checked that `attributes` is an object.
        let Ok(map) = serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(attributes)
        else {
            return;
        };
        for (key, value) in map {
            profile.merge(&key, &value.to_string(), t);
        }
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
            self.drop_below_floor();
        }
        Ok(())
    }

    /// Drops the buckets and store days at or below the window floor. Not a change of
    /// any value (nothing below the floor can enter a window again), so rows are not
    /// marked changed: a checkpoint restored from older rows repeats it.
    pub fn drop_below_floor(&mut self) {
        let floor = self.window_floor;
        for row in self.rows.iter_mut() {
            if row.lists.window().first().is_some_and(|b| b.day <= floor) {
                row.lists.retain_window(|b| b.day > floor);
            }
            if row.lists.store_days().iter().any(|s| s.day <= floor) {
                row.lists.retain_store_days(|s| s.day > floor);
            }
        }
    }

    /// RFM values of member `m` at `as_of` (a purchase on day d is inside the window when
    /// `as_of - window_days < d <= as_of`).
    pub fn derive(&self, m: usize, as_of: Day, window_days: i32, last_purchase_day: Option<Day>) -> Derived {
        let inside = |d: Day| as_of - window_days < d && d <= as_of;
        let (mut frequency, mut monetary) = (0u32, 0i64);
        for b in self.rows[m].lists.window().iter().filter(|b| inside(b.day)) {
            frequency += b.purchases;
            monetary += b.net;
        }
        // Entries are sorted by store: count the stores with at least one day inside.
        let mut stores_in_window = 0;
        let mut last_counted = None;
        for s in self.rows[m].lists.store_days().iter().filter(|s| inside(s.day)) {
            if last_counted != Some(s.store) {
                stores_in_window += 1;
                last_counted = Some(s.store);
            }
        }
        Derived { recency_days: last_purchase_day.map(|d| as_of - d), frequency, monetary, stores_in_window }
    }

    pub fn last_store_id(&self, m: usize) -> Option<&str> {
        self.store_name(Some(self.rows[m].last_store))
    }

    /// The profile as a JSON object (keys sorted), or `None` when nothing was ever set.
    #[cfg(test)]
    pub fn attributes_json(&self, m: usize) -> Option<String> {
        let mut out = String::new();
        self.write_attributes_json(m, &mut out).expect("a String takes any text").then_some(out)
    }

    /// Writes the profile as a JSON object (keys sorted) to `out`, e.g. straight into a
    /// table's string column (a `String` per member, and one per key for its quoting, were
    /// most of writing the members table's attributes); false, writing nothing, when
    /// nothing was ever set.
    pub fn write_attributes_json(&self, m: usize, out: &mut impl std::fmt::Write) -> Result<bool, std::fmt::Error> {
        let Some(profile) = self.rows[m].profile.as_ref() else { return Ok(false) };
        out.write_char('{')?;
        for (n, (k, v, _)) in profile.iter().enumerate() {
            if n > 0 {
                out.write_char(',')?;
            }
            // serde_json escapes only quotes, backslashes and control characters.
            if k.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20) {
                out.write_str(&serde_json::to_string(k).map_err(|_| std::fmt::Error)?)?;
            } else {
                out.write_char('"')?;
                out.write_str(k)?;
                out.write_char('"')?;
            }
            out.write_char(':')?;
            out.write_str(v)?;
        }
        out.write_char('}')?;
        Ok(true)
    }

    /// Each row's remembered ids, sorted (for comparisons).
    #[cfg(test)]
    pub fn seen_by_row(&self) -> Vec<Vec<Seen>> {
        let grouped = self.seen.by_member(self.len(), |_| true);
        (0..self.len())
            .map(|m| {
                let mut ids = grouped.of(m).to_vec();
                ids.sort();
                ids
            })
            .collect()
    }

    /// Bytes of the base state and of the dedup memory, separately: rows, list contents,
    /// profiles and the id arenas; the table of remembered ids (allocator overhead aside).
    pub fn memory_bytes(&self) -> (usize, usize) {
        let mut base = self.rows.capacity() * std::mem::size_of::<Member>();
        for row in self.rows.iter() {
            base += row.lists.heap_bytes();
            base += row.profile.as_ref().map_or(0, Profile::heap_bytes);
        }
        (base + self.ids.heap_bytes() + self.stores.heap_bytes(), self.seen.heap_bytes())
    }
}

//! Per-member memory of applied `event_id`s, bounded by the dedup horizon.
//!
//! Most members have a few dozen events in the horizon: a small unsorted list scanned
//! linearly. Heavy buyers switch to a hash table, so an event costs O(1) for them too; its
//! slot for an event can be prefetched (`Lists::prefetch_seen`).

use super::flat::{FlatTable, Slot};
use super::lists::Lists;
use super::members::{DayBucket, StoreDay};

/// One remembered event: 16 bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
#[repr(C)]
pub struct Seen {
    pub id_hash: u64,
    /// Low 32 bits of the event's content hash: same id + other content = conflict.
    pub content: u32,
    /// Business day of the event, to forget it once it leaves the horizon.
    pub day: i32,
}

/// What the dedup memory says about an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    New,
    Duplicate,
    Conflict,
}

/// Up to this many entries stay in the linear list.
const SMALL: usize = 32;

/// An unused slot of a heavy member's table: no event's business day is `i32::MIN`.
impl Slot for Seen {
    const EMPTY: Self = Seen { id_hash: 0, content: 0, day: i32::MIN };
    fn is_empty(&self) -> bool {
        self.day == i32::MIN
    }
}

/// The remembered ids of a heavy member: a hash table instead of the list, probed from
/// the top bits of the id hash. A standard Swiss table offered no prefetch, and loading its
/// control bytes was most of the dedup's time in the benchmark's steady state.
#[derive(Debug, Clone)]
pub struct Large {
    table: FlatTable<Seen>,
    /// Forget what left the horizon when the table reaches this size.
    prune_at: usize,
}

fn verdict(found: &Seen, content: u32) -> Verdict {
    if found.content == content {
        Verdict::Duplicate
    } else {
        Verdict::Conflict
    }
}

fn large(entries: Vec<Seen>) -> Box<Large> {
    let prune_at = entries.len() * 2;
    Box::new(Large { table: table_of(entries), prune_at })
}

/// A table of `entries` (distinct ids).
fn table_of(entries: Vec<Seen>) -> FlatTable<Seen> {
    let mut table = FlatTable::with_capacity(entries.len());
    for s in entries {
        insert_new(&mut table, s);
    }
    table
}

/// Adds an entry whose id the table does not hold (a day of `i32::MIN`, which marks an
/// empty slot and no event has, is kept as the day after it: both are long forgotten).
fn insert_new(table: &mut FlatTable<Seen>, entry: Seen) {
    let entry = Seen { day: entry.day.max(i32::MIN + 1), ..entry };
    table.find_or_insert(entry.id_hash, |_| false, || entry, |s| s.id_hash);
}

/// The dedup memory of a member, kept with its other lists: the small form is the last
/// list of the block, the large form a table beside it.
impl Lists {
    /// Rebuilds the lists of a restored member from checkpointed entries.
    pub fn restore(window: &[DayBucket], seen: Vec<Seen>, store_days: &[StoreDay]) -> Self {
        if seen.len() <= SMALL {
            return Self::from_parts(window, &seen, store_days);
        }
        let mut lists = Self::from_parts(window, &[], store_days);
        lists.large = Some(large(seen));
        lists
    }

    pub fn seen_len(&self) -> usize {
        self.seen().len() + self.large.as_ref().map_or(0, |l| l.table.len())
    }

    /// Every remembered id, in no particular order: the small form's, then the table's.
    pub fn seen_iter(&self) -> impl Iterator<Item = &Seen> {
        self.seen().iter().chain(self.seen_large())
    }

    /// The remembered ids in a heavy member's table (none in the small form).
    pub fn seen_large(&self) -> impl Iterator<Item = &Seen> {
        self.large.iter().flat_map(|l| l.table.iter())
    }

    /// Looks the event up and remembers it when new. `forget_before` is the first day still
    /// inside the horizon: older entries are dropped when the memory would otherwise grow.
    pub fn check_and_insert(&mut self, id_hash: u64, content: u32, day: i32, forget_before: i32) -> Verdict {
        let entry = Seen { id_hash, content, day };
        if let Some(large) = self.large.as_mut() {
            if let Some(found) = large.table.find(id_hash, |s| s.id_hash == id_hash) {
                return verdict(found, content);
            }
            if large.table.len() >= large.prune_at {
                // Rebuilt only when something left the horizon: a table of the same ids
                // was a fresh allocation and every id hashed again, for nothing.
                if large.table.iter().any(|s| s.day < forget_before) {
                    large.table = table_of(large.table.iter().filter(|s| s.day >= forget_before).copied().collect());
                }
                large.prune_at = (large.table.len() * 2).max(SMALL * 2);
            }
            insert_new(&mut large.table, entry);
            return Verdict::New;
        }
        if let Some(found) = self.seen().iter().find(|s| s.id_hash == id_hash) {
            return verdict(found, content);
        }
        if self.seen().len() >= SMALL {
            self.retain_seen(|s| s.day >= forget_before);
        }
        self.push_seen(entry);
        if self.seen().len() > SMALL {
            let entries = self.take_seen();
            self.large = Some(large(entries));
        }
        Verdict::New
    }

    /// Remembered ids sorted, for comparisons.
    pub fn seen_sorted(&self) -> Vec<Seen> {
        let mut v: Vec<Seen> = self.seen_iter().copied().collect();
        v.sort();
        v
    }

    /// Heap bytes of a heavy member's table (the small form is counted with the block).
    pub fn large_heap_bytes(&self) -> usize {
        self.large.as_ref().map_or(0, |l| std::mem::size_of::<Large>() + l.table.heap_bytes())
    }

    /// Hints the CPU to load the slot of a heavy member's table that a lookup of `id_hash`
    /// starts at (nothing for the small form, which [`Lists::prefetch`] covers). The
    /// table's header should be in cache already (`prefetch` loads it).
    #[inline]
    pub fn prefetch_seen(&self, id_hash: u64) {
        if let Some(large) = &self.large {
            large.table.prefetch(id_hash);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn duplicates_conflicts_and_forgetting() {
        let mut seen = Lists::default();
        assert_eq!(seen.check_and_insert(7, 1, 100, 0), Verdict::New);
        assert_eq!(seen.check_and_insert(7, 1, 100, 0), Verdict::Duplicate);
        assert_eq!(seen.check_and_insert(7, 2, 100, 0), Verdict::Conflict);
        for id in 0..100u64 {
            assert_eq!(seen.check_and_insert(1000 + id, 0, 500 + id as i32, 0), Verdict::New);
        }
        assert!(seen.large.is_some(), "a heavy member switches to the table");
        assert_eq!(seen.check_and_insert(7, 1, 100, 0), Verdict::Duplicate);
        // Day 100 is now outside the horizon: the entry goes when the memory next grows.
        for id in 0..400u64 {
            seen.check_and_insert(5000 + id, 0, 700, 450);
        }
        assert!(seen.seen_iter().all(|s| s.id_hash != 7));
        assert_eq!(seen.check_and_insert(1050, 0, 550, 450), Verdict::Duplicate);
        let restored = Lists::restore(&[], seen.seen_iter().copied().collect(), &[]);
        assert_eq!(restored.seen_sorted(), seen.seen_sorted());
    }

    /// At a prune point with every id inside the horizon the table is kept as it is (not
    /// rebuilt in a new allocation); with ids outside it, those go.
    #[test]
    fn a_prune_point_rebuilds_the_table_only_to_forget() {
        let mut seen = Lists::default();
        let mut id = 0u64;
        let mut add = |seen: &mut Lists, day: i32, forget_before: i32| {
            id += 1;
            assert_eq!(seen.check_and_insert(id.wrapping_mul(0x9E37_79B9_7F4A_7C15), 0, day, forget_before), Verdict::New);
        };
        while seen.large.is_none() {
            add(&mut seen, 10, 0);
        }
        let at = |seen: &Lists| {
            let large = seen.large.as_ref().unwrap();
            (large.prune_at, large.table.len(), large.table.capacity(), large.table.iter().next().unwrap() as *const Seen)
        };
        while at(&seen).1 < at(&seen).0 {
            add(&mut seen, 10, 0);
        }
        let (_, len, capacity, first) = at(&seen);
        add(&mut seen, 11, 0);
        let after = at(&seen);
        assert!(after.2 == capacity, "the insert itself grew the table: pick another size");
        assert_eq!((after.1, after.3), (len + 1, first), "nothing to forget: the same table");
        assert_eq!(after.0, (len * 2).max(SMALL * 2), "the next prune point");
        // Day 10 leaves the horizon: at the next prune point only day 11's ids stay.
        while at(&seen).1 < at(&seen).0 {
            add(&mut seen, 12, 11);
        }
        let before = at(&seen).1;
        add(&mut seen, 12, 11);
        assert_eq!(seen.seen_len(), before + 1 - len, "day 10's {len} ids forgotten");
        assert!(seen.seen_iter().all(|s| s.day >= 11));
    }

    /// One heavy member's ids against a map of first sightings: an id seen inside the
    /// horizon is a duplicate (same content) or a conflict, a new one is new; an id whose
    /// first sighting left the horizon may be either, as it is forgotten only when the
    /// memory grows. Thousands of ids, so the table grows and is pruned many times.
    #[test]
    fn a_heavy_member_agrees_with_a_map_of_first_sightings() {
        let mut seen = Lists::default();
        let mut first: std::collections::HashMap<u64, (u32, i32)> = Default::default();
        let mut x = 7u64;
        let mut next = |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        };
        let horizon = 30;
        let (mut decided, mut large_seen) = (0, false);
        for step in 0..60_000i32 {
            let day = step / 200;
            let forget_before = day - horizon;
            // Ids from a pool that drifts with the day: repeats near and far.
            let id = (day as u64 * 50 + next(3_000)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
            let content = next(2) as u32;
            let verdict = seen.check_and_insert(id, content, day, forget_before);
            large_seen |= seen.large.is_some();
            match first.get(&id) {
                Some(&(c, d)) if d >= forget_before => {
                    let expected = if c == content { Verdict::Duplicate } else { Verdict::Conflict };
                    assert_eq!(verdict, expected, "step {step}: id seen on day {d}");
                    decided += 1;
                }
                None => assert_eq!(verdict, Verdict::New, "step {step}: a new id"),
                Some(_) => {}
            }
            if verdict == Verdict::New {
                first.insert(id, (content, day));
            }
        }
        assert!(large_seen && decided > 10_000, "large form used: {large_seen}; repeats decided: {decided}");
        // Forgetting keeps the memory near the horizon's ids, not all 60,000.
        assert!(seen.seen_len() < 40_000, "{} ids remembered", seen.seen_len());
    }
}

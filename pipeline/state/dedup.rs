//! Per-member memory of applied `event_id`s, bounded by the dedup horizon.
//!
//! Most members have a few dozen events in the horizon: a small unsorted list scanned
//! linearly. Heavy buyers switch to a hash table, so an event costs O(1) for them too.

use hashbrown::HashTable;

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

/// The remembered ids of a heavy member: a hash table instead of the list.
#[derive(Debug, Clone)]
pub struct Large {
    table: HashTable<Seen>,
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
    let mut table = HashTable::with_capacity(entries.len());
    let prune_at = entries.len() * 2;
    for s in entries {
        table.insert_unique(s.id_hash, s, |s| s.id_hash);
    }
    Box::new(Large { table, prune_at })
}

/// The dedup memory of a member, kept with its other lists: the small form is the middle
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
                large.table.retain(|s| s.day >= forget_before);
                large.prune_at = (large.table.len() * 2).max(SMALL * 2);
            }
            large.table.insert_unique(id_hash, entry, |s| s.id_hash);
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
        let entry = std::mem::size_of::<Seen>();
        self.large.as_ref().map_or(0, |l| std::mem::size_of::<Large>() + l.table.capacity() * (entry + 1))
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
}

//! The members' memory of applied `event_id`s, bounded by each member's dedup horizon.
//!
//! One open-addressing table for every member, keyed by the event id's hash: its slot is
//! known as soon as the event is decoded, so the engine prefetches it in the decode pass,
//! before the member is even found. Per-member lists in the member's block (this memory
//! until session 18) cost about a seventh of the benchmark's steady window: the block's
//! reallocations as ids were appended, the lines scanned, and every changed member's whole
//! list in each checkpoint delta.

use super::flat::{FlatTable, Slot};

/// One remembered event of a member, as the checkpoint stores it: 16 bytes.
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

/// One slot of the table: 20 bytes (the id hash in two halves keeps it 4-byte aligned).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(C)]
struct Entry {
    id_hash: [u32; 2],
    member: u32,
    content: u32,
    day: i32,
}

const _: () = assert!(std::mem::size_of::<Entry>() == 20);

/// No member has the row number `u32::MAX` (rows are numbered densely from 0).
impl Slot for Entry {
    const EMPTY: Self = Entry { id_hash: [0; 2], member: u32::MAX, content: 0, day: 0 };
    fn is_empty(&self) -> bool {
        self.member == u32::MAX
    }
}

impl Entry {
    fn new(member: u32, s: Seen) -> Self {
        Entry { id_hash: [s.id_hash as u32, (s.id_hash >> 32) as u32], member, content: s.content, day: s.day }
    }

    #[inline]
    fn id_hash(&self) -> u64 {
        u64::from(self.id_hash[0]) | u64::from(self.id_hash[1]) << 32
    }

    fn seen(&self) -> Seen {
        Seen { id_hash: self.id_hash(), content: self.content, day: self.day }
    }
}

/// Slots prefetched from a lookup's first (three cache lines): most lookups are of new
/// ids, whose probe reads on to an empty slot, and runs are long in a table up to 3/4 full.
/// Measured in session 19 (dedup+state per event, pre-touched): 1 slot 282-293 ns, 4 slots
/// 266-276, 8 slots 253-259, 12 slots no better.
const PROBED: usize = 8;

/// Entries sampled to decide whether a full table is pruned or grows.
const SAMPLE: usize = 256;

/// Every member's remembered event ids.
#[derive(Debug, Clone, Default)]
pub struct SeenTable {
    table: FlatTable<Entry>,
    /// The ids remembered since the last checkpoint, in order: what a delta adds.
    added: Vec<(u32, Seen)>,
    /// Whether ids were forgotten since the last checkpoint (a delta only adds ids: the
    /// next checkpoint is then a snapshot).
    forgot: bool,
    /// At most the oldest and at least the newest day of the entries: when the horizon
    /// spans them nothing can be forgotten, and a full table grows without a pass that
    /// looks up every entry's member.
    min_day: i32,
    max_day: i32,
}

impl SeenTable {
    pub fn len(&self) -> usize {
        self.table.len()
    }

    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    /// Hints the CPU to load the slots a lookup of `id_hash` reads first ([`PROBED`]).
    #[inline]
    pub fn prefetch(&self, id_hash: u64) {
        self.table.prefetch_run(id_hash, PROBED);
    }

    /// Looks member `member`'s event up and remembers it when new. When the table is full
    /// and a sample says at least a third of its ids are more than `horizon` days older than
    /// their member's newest day (`newest_day`; `i32::MIN` for none), those ids go first;
    /// otherwise the table grows.
    pub fn check_and_insert(&mut self, member: u32, seen: Seen, horizon: i32, newest_day: impl Fn(u32) -> i32) -> Verdict {
        // A member's newest day may be a day past its ids' business days (UTC).
        if self.table.full() && self.min_day < self.max_day.saturating_add(1).saturating_sub(horizon) {
            let forget_before = |m| newest_day(m).saturating_sub(horizon);
            if self.stale_share_at_least_a_third(&forget_before) {
                self.prune(forget_before);
            }
        }
        let id_hash = seen.id_hash;
        let is_it = |e: &Entry| e.member == member && e.id_hash() == id_hash;
        let (entry, added) = self.table.find_or_insert(id_hash, is_it, || Entry::new(member, seen), Entry::id_hash);
        if !added {
            return if entry.content == seen.content { Verdict::Duplicate } else { Verdict::Conflict };
        }
        self.note_day(seen.day);
        self.added.push((member, seen));
        Verdict::New
    }

    /// The ids remembered since the last checkpoint, in order.
    pub fn added(&self) -> &[(u32, Seen)] {
        &self.added
    }

    /// Whether ids were forgotten since the last checkpoint.
    pub fn forgot(&self) -> bool {
        self.forgot
    }

    /// Starts the next checkpoint's epoch (the last one is saved).
    pub fn saved(&mut self) {
        self.added.clear();
        self.forgot = false;
    }

    /// Whether, judged from [`SAMPLE`] entries, at least a third of the entries are outside
    /// their members' horizons. A prune looks up every entry's member (a cache miss each,
    /// about a second at tens of millions of ids) and pays only when it spares the table
    /// its doubling: when a third of a table 3/4 full goes. Otherwise the table grows and
    /// keeps its stale ids until a later check; they stay under about half its entries.
    fn stale_share_at_least_a_third(&self, forget_before: &impl Fn(u32) -> i32) -> bool {
        let (mut stale, mut sampled) = (0, 0);
        for e in self.table.sample(SAMPLE) {
            sampled += 1;
            stale += usize::from(e.day < forget_before(e.member));
        }
        stale * 3 >= sampled && stale > 0
    }

    /// Drops every entry outside its member's horizon, into a table of the same capacity
    /// (which grows if more than 3/4 of it is kept).
    fn prune(&mut self, forget_before: impl Fn(u32) -> i32) {
        let (old, started) = (std::mem::take(&mut self.table), std::time::Instant::now());
        self.table = FlatTable::with_slots(old.capacity());
        for e in old.iter() {
            if e.day >= forget_before(e.member) {
                self.insert_new(e.member, e.seen());
            }
        }
        self.forgot |= self.table.len() < old.len();
        tracing::debug!(kept = self.table.len(), of = old.len(), ms = started.elapsed().as_millis() as u64, "remembered event ids pruned");
    }

    /// Adds an entry the table does not hold.
    fn insert_new(&mut self, member: u32, seen: Seen) {
        let entry = Entry::new(member, seen);
        self.table.find_or_insert(seen.id_hash, |_| false, || entry, Entry::id_hash);
        self.note_day(seen.day);
    }

    /// Widens the entries' span of days to `day` (the table holds its entry).
    fn note_day(&mut self, day: i32) {
        if self.table.len() == 1 {
            (self.min_day, self.max_day) = (day, day);
        }
        (self.min_day, self.max_day) = (self.min_day.min(day), self.max_day.max(day));
    }

    /// Adds the ids a checkpoint delta remembered (ids the table does not hold).
    pub fn restore_added(&mut self, added: impl IntoIterator<Item = (u32, Seen)>) {
        for (member, seen) in added {
            self.insert_new(member, seen);
        }
    }

    /// Replaces the remembered ids of the members in `lists` with the ids given (a
    /// restored checkpoint's: a snapshot's every member, an older delta's changed ones).
    pub fn restore(&mut self, lists: Vec<(u32, Vec<Seen>)>) {
        if lists.is_empty() {
            return;
        }
        if !self.table.is_empty() {
            let mut replaced = std::collections::HashSet::with_capacity(lists.len());
            replaced.extend(lists.iter().map(|(m, _)| *m));
            let kept: Vec<Entry> = self.table.iter().filter(|e| !replaced.contains(&e.member)).copied().collect();
            self.table = FlatTable::default();
            for e in kept {
                self.insert_new(e.member, e.seen());
            }
        }
        for (member, seen) in lists {
            for s in seen {
                self.insert_new(member, s);
            }
        }
    }

    /// The remembered ids of the members for which `wanted` holds, grouped by member (for
    /// comparisons):
    /// `members` row numbers, the ids of row `m` at `entries[starts[m]..starts[m + 1]]`.
    #[cfg(test)]
    pub fn by_member(&self, members: usize, wanted: impl Fn(u32) -> bool) -> ByMember {
        let mut starts = vec![0u32; members + 1];
        for e in self.table.iter() {
            if (e.member as usize) < members && wanted(e.member) {
                starts[e.member as usize + 1] += 1;
            }
        }
        for m in 0..members {
            starts[m + 1] += starts[m];
        }
        let mut next = starts.clone();
        let mut entries = vec![Seen { id_hash: 0, content: 0, day: 0 }; starts[members] as usize];
        for e in self.table.iter() {
            if (e.member as usize) < members && wanted(e.member) {
                let at = &mut next[e.member as usize];
                entries[*at as usize] = e.seen();
                *at += 1;
            }
        }
        ByMember { starts, entries }
    }

    /// Every remembered id with its member, in the table's order.
    pub fn entries(&self) -> impl ExactSizeIterator<Item = (u32, Seen)> + '_ {
        let n = self.table.len();
        Counted { n, inner: self.table.iter().map(|e| (e.member, e.seen())) }
    }

    /// Heap bytes of the table.
    pub fn heap_bytes(&self) -> usize {
        self.table.heap_bytes()
    }
}

/// An iterator of a known length.
struct Counted<I> {
    n: usize,
    inner: I,
}

impl<I: Iterator> Iterator for Counted<I> {
    type Item = I::Item;
    fn next(&mut self) -> Option<I::Item> {
        let item = self.inner.next()?;
        self.n -= 1;
        Some(item)
    }
    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.n, Some(self.n))
    }
}

impl<I: Iterator> ExactSizeIterator for Counted<I> {}

/// Remembered ids grouped by member ([`SeenTable::by_member`]).
#[cfg(test)]
pub struct ByMember {
    starts: Vec<u32>,
    entries: Vec<Seen>,
}

#[cfg(test)]
impl ByMember {
    /// Row `m`'s remembered ids, in no particular order.
    pub fn of(&self, m: usize) -> &[Seen] {
        match (self.starts.get(m), self.starts.get(m + 1)) {
            (Some(&a), Some(&b)) => &self.entries[a as usize..b as usize],
            _ => &[],
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen(id: u64, content: u32, day: i32) -> Seen {
        Seen { id_hash: id.wrapping_mul(0x9E37_79B9_7F4A_7C15), content, day }
    }

    #[test]
    fn duplicates_conflicts_and_members_apart() {
        let mut t = SeenTable::default();
        let keep_all = |_| i32::MIN;
        let horizon = 400;
        assert_eq!(t.check_and_insert(0, seen(7, 1, 100), horizon, keep_all), Verdict::New);
        assert_eq!(t.check_and_insert(0, seen(7, 1, 100), horizon, keep_all), Verdict::Duplicate);
        assert_eq!(t.check_and_insert(0, seen(7, 2, 100), horizon, keep_all), Verdict::Conflict);
        // The same id of another member is that member's own.
        assert_eq!(t.check_and_insert(1, seen(7, 2, 100), horizon, keep_all), Verdict::New);
        assert_eq!(t.check_and_insert(1, seen(7, 2, 100), horizon, keep_all), Verdict::Duplicate);
        assert_eq!(t.len(), 2);
        assert_eq!(t.added(), [(0, seen(7, 1, 100)), (1, seen(7, 2, 100))], "what a delta adds");
        t.saved();
        assert!(t.added().is_empty());
    }

    /// A full table forgets its stale ids when a third or more of its ids are stale (by a
    /// sample), and otherwise grows, keeping them.
    #[test]
    fn a_full_table_prunes_only_when_a_third_is_stale() {
        for (every, pruned) in [(5, false), (2, true)] {
            let mut t = SeenTable::default();
            // Fill the table to its load (3/4 of 1,024 slots) while the members have no
            // newest day; one id in `every` is of day 0, the others of day 1,000.
            let day = |id: u64| if id % every == 0 { 0 } else { 1_000 };
            for id in 0..768 {
                assert_eq!(t.check_and_insert((id % 7) as u32, seen(id, 0, day(id)), 30, |_| i32::MIN), Verdict::New);
            }
            // Now the members' newest day is 1,000: day 0 is outside the horizon (30 days).
            let newest = |_| 1_000;
            let (capacity, stale) = (t.heap_bytes(), (0..768).filter(|&id| day(id) == 0).count());
            assert_eq!(t.check_and_insert(0, seen(768, 0, 1_000), 30, newest), Verdict::New);
            if pruned {
                assert!(t.forgot(), "1 in {every} stale: forgot");
                assert_eq!((t.len(), t.heap_bytes()), (769 - stale, capacity), "1 in {every} stale: same capacity");
                assert_eq!(t.check_and_insert(0, seen(0, 0, 0), 30, newest), Verdict::New, "a forgotten id");
            } else {
                assert!(!t.forgot(), "1 in {every} stale: kept");
                assert_eq!((t.len(), t.heap_bytes()), (769, capacity * 2), "1 in {every} stale: grown");
                assert_eq!(t.check_and_insert(0, seen(0, 0, 0), 30, newest), Verdict::Duplicate, "a kept id");
            }
        }
    }

    /// Many members' ids against a map of first sightings: an id seen inside its member's
    /// horizon is a duplicate (same content) or a conflict, a new one is new; an id whose
    /// first sighting left the horizon may be either, as it is forgotten only when the
    /// table is full. A replica fed each epoch's added ids (as checkpoint deltas are) holds
    /// every id the table holds; the table's memory stays near the ids inside the horizons.
    /// Then the grouping by member and a restore give back the same ids.
    #[test]
    fn agrees_with_a_map_of_first_sightings() {
        let mut t = SeenTable::default();
        let mut first: std::collections::HashMap<(u32, u64), (u32, i32)> = Default::default();
        let mut x = 7u64;
        let mut next = |n: u64| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x % n
        };
        let (horizon, members) = (30, 50u32);
        let mut newest = vec![i32::MIN; members as usize];
        let (mut decided, mut forgot) = (0, false);
        // A copy restored as checkpoints would: from the ids added since the last save.
        let mut replica = SeenTable::default();
        for step in 0..200_000i32 {
            let member = next(members as u64) as u32;
            // Members' clocks drift apart: member m's days run at its own pace.
            let day = step / (200 + member as i32 * 10);
            newest[member as usize] = newest[member as usize].max(day);
            let id = day as u64 * 50 + next(3_000);
            let content = next(2) as u32;
            let s = seen(id, content, day);
            let nw = &newest;
            let verdict = t.check_and_insert(member, s, horizon, |m| nw[m as usize]);
            if step % 10_000 == 0 {
                forgot |= t.forgot();
                replica.restore_added(t.added().iter().copied());
                t.saved();
            }
            match first.get(&(member, s.id_hash)) {
                Some(&(c, d)) if d >= newest[member as usize] - horizon => {
                    let expected = if c == content { Verdict::Duplicate } else { Verdict::Conflict };
                    assert_eq!(verdict, expected, "step {step}: member {member}'s id seen on day {d}");
                    decided += 1;
                }
                None => assert_eq!(verdict, Verdict::New, "step {step}: a new id"),
                Some(_) => {}
            }
            if verdict == Verdict::New {
                first.insert((member, s.id_hash), (content, day));
            }
        }
        assert!(decided > 10_000, "repeats decided: {decided}");
        assert!(forgot, "the table forgot ids");
        // Without forgetting, the replica holds every id the table holds.
        replica.restore_added(t.added().iter().copied());
        let have = replica.by_member(members as usize, |_| true);
        let want = t.by_member(members as usize, |_| true);
        for m in 0..members as usize {
            assert!(want.of(m).iter().all(|s| have.of(m).contains(s)), "member {m}");
        }
        let inside = first.iter().filter(|((m, _), (_, d))| *d >= newest[*m as usize] - horizon).count();
        assert!(t.len() < inside * 3, "{} ids remembered, {inside} inside the horizons", t.len());
        // Grouped by member: exactly the table's ids, each under its member.
        let grouped = t.by_member(members as usize, |_| true);
        let mut restored = SeenTable::default();
        restored.restore((0..members).map(|m| (m, grouped.of(m as usize).to_vec())).collect());
        assert_eq!(restored.len(), t.len());
        for m in 0..members {
            for s in grouped.of(m as usize) {
                assert_eq!(first.get(&(m, s.id_hash)).map(|f| f.0), Some(s.content));
                assert_eq!(restored.check_and_insert(m, *s, 1, |_| i32::MIN), Verdict::Duplicate);
            }
        }
        // A restore of some members replaces their ids and keeps the others'.
        let odd: Vec<u32> = (0..members).filter(|m| m % 2 == 1).collect();
        restored.restore(odd.iter().map(|&m| (m, vec![seen(1_000_000 + m as u64, 0, 0)])).collect());
        let after = restored.by_member(members as usize, |_| true);
        for m in 0..members {
            if m % 2 == 1 {
                assert_eq!(after.of(m as usize), [seen(1_000_000 + m as u64, 0, 0)]);
            } else {
                let (mut a, mut b) = (after.of(m as usize).to_vec(), grouped.of(m as usize).to_vec());
                (a.sort(), b.sort());
                assert_eq!(a, b, "member {m}");
            }
        }
        // Only the members asked for.
        let some = t.by_member(members as usize, |m| m < 3);
        assert!((3..members).all(|m| some.of(m as usize).is_empty()));
        assert_eq!(some.of(1), grouped.of(1));
    }
}

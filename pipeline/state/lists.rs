//! A member's lists in one heap block: its window's day buckets, the event ids it
//! remembers (the small form of the dedup memory, `dedup`), and its store days.
//!
//! Three `Vec`s were three allocations: an event that touched them read three scattered
//! cache lines, a snapshot of 10M members missed the cache three times per member, and each
//! list grew (and was copied) on its own. Here the lists sit back to back in one block of
//! 8-byte words, `[window | store days | seen]`, which grows by half when full. Nearly every
//! event remembers its id, which is then appended at the block's end; a new day's bucket or
//! store day shifts the lists after it (a few hundred bytes at most for all but the
//! heaviest members, whose remembered ids move to a hash table). With the ids in the middle
//! every event shifted the store days after them.

use super::dedup::{Large, Seen};
use super::growth::class_bytes;
use super::members::{DayBucket, StoreDay};

/// The lists of one member.
#[derive(Debug, Clone, Default)]
pub struct Lists {
    /// `window` buckets (2 words each), then `stores` store days (1 word each), then the
    /// remembered ids (2 words each) up to the end.
    words: Vec<u64>,
    window: u32,
    stores: u32,
    /// The remembered ids of a heavy member, instead of `seen` entries.
    pub(super) large: Option<Box<Large>>,
}

/// The element types kept in the block: plain integers in `repr(C)` without padding, so
/// any bit pattern is a valid value and a word slice of the right length can be viewed
/// as a slice of them.
///
/// # Safety
/// Implementors are `repr(C)`, made of integers only, without padding, aligned to at most
/// 8 bytes, and a whole number of 8-byte words long.
pub(super) unsafe trait Element: Copy {
    const WORDS: usize = std::mem::size_of::<Self>() / 8;
}

// SAFETY: each is repr(C) and integers only; the sizes below leave no room for padding
// (i32 + u32 + i64, u64 + u32 + i32, u32 + i32) and the alignments are at most 8.
unsafe impl Element for DayBucket {}
unsafe impl Element for Seen {}
unsafe impl Element for StoreDay {}
const _: () = assert!(std::mem::size_of::<DayBucket>() == 16 && std::mem::size_of::<Seen>() == 16);
const _: () = assert!(std::mem::size_of::<StoreDay>() == 8);
const _: () = assert!(std::mem::align_of::<DayBucket>() <= 8 && std::mem::align_of::<Seen>() <= 8 && std::mem::align_of::<StoreDay>() <= 8);

fn view<T: Element>(words: &[u64]) -> &[T] {
    debug_assert_eq!(words.len() % T::WORDS, 0);
    // SAFETY: `T` is integers without padding, aligned to at most 8 (u64's alignment),
    // `T::WORDS` words long; the slice covers exactly `words`.
    unsafe { std::slice::from_raw_parts(words.as_ptr() as *const T, words.len() / T::WORDS) }
}

/// The bytes of `items` as they lie in memory: on a little-endian machine each field's
/// little-endian encoding, fields in declaration order (what the checkpoint writes).
pub(super) fn raw_bytes<T: Element>(items: &[T]) -> &[u8] {
    // SAFETY: `T` is integers without padding, so every byte of the slice is initialized.
    unsafe { std::slice::from_raw_parts(items.as_ptr() as *const u8, std::mem::size_of_val(items)) }
}

fn view_mut<T: Element>(words: &mut [u64]) -> &mut [T] {
    debug_assert_eq!(words.len() % T::WORDS, 0);
    // SAFETY: as in `view`; the borrow of `words` is exclusive.
    unsafe { std::slice::from_raw_parts_mut(words.as_mut_ptr() as *mut T, words.len() / T::WORDS) }
}

impl Lists {
    /// The lists of a restored member.
    pub fn from_parts(window: &[DayBucket], seen: &[Seen], store_days: &[StoreDay]) -> Self {
        let mut lists = Self::default();
        let words = window.len() * 2 + store_days.len() + seen.len() * 2;
        lists.words.reserve_exact(words);
        lists.words.resize(words, 0);
        (lists.window, lists.stores) = (window.len() as u32, store_days.len() as u32);
        lists.window_mut().copy_from_slice(window);
        lists.store_days_mut().copy_from_slice(store_days);
        let start = lists.seen_start();
        view_mut::<Seen>(&mut lists.words[start..]).copy_from_slice(seen);
        lists
    }

    fn store_start(&self) -> usize {
        self.window as usize * 2
    }

    fn seen_start(&self) -> usize {
        self.store_start() + self.stores as usize
    }

    pub fn window(&self) -> &[DayBucket] {
        view(&self.words[..self.store_start()])
    }

    pub fn window_mut(&mut self) -> &mut [DayBucket] {
        let end = self.store_start();
        view_mut(&mut self.words[..end])
    }

    /// The remembered ids in the small form (empty once they moved to `large`).
    pub fn seen(&self) -> &[Seen] {
        view(&self.words[self.seen_start()..])
    }

    pub fn store_days(&self) -> &[StoreDay] {
        view(&self.words[self.store_start()..self.seen_start()])
    }

    fn store_days_mut(&mut self) -> &mut [StoreDay] {
        let (start, end) = (self.store_start(), self.seen_start());
        view_mut(&mut self.words[start..end])
    }

    /// Gives a member without a block one for the `n` words its first event inserts (its
    /// id, and a purchase's window bucket and store day), to the end of that size class:
    /// most members of a large program have a single event, a sign-up, and a block sized
    /// for a growing member was 48 bytes more for each of them (10.1M members).
    pub fn reserve_first(&mut self, n: usize) {
        if self.words.capacity() == 0 {
            self.words.reserve_exact(class_words(n));
        }
    }

    /// Makes room for `n` more words. When full, the block grows by half its capacity (or
    /// to what `n` needs), to at least [`MIN_WORDS`] and up to the end of the allocator's
    /// size class ([`class_words`]): the space the allocator hands out anyway.
    fn reserve(&mut self, n: usize) {
        let (len, capacity) = (self.words.len(), self.words.capacity());
        if len + n > capacity {
            self.words.reserve_exact(class_words((len + n).max(capacity + capacity / 2).max(MIN_WORDS)) - len);
        }
    }

    /// Opens `n` zeroed words at word `at`, growing the block when full.
    fn open(&mut self, at: usize, n: usize) {
        let len = self.words.len();
        self.reserve(n);
        self.words.resize(len + n, 0);
        self.words.copy_within(at..len, at + n);
    }

    /// Closes the words `range`, shifting the rest down.
    fn close(&mut self, range: std::ops::Range<usize>) {
        self.words.drain(range);
    }

    pub fn insert_window(&mut self, k: usize, bucket: DayBucket) {
        self.open(k * 2, 2);
        self.window += 1;
        self.window_mut()[k] = bucket;
    }

    pub fn insert_store_day(&mut self, k: usize, day: StoreDay) {
        let at = self.store_start() + k;
        self.open(at, 1);
        self.stores += 1;
        self.store_days_mut()[k] = day;
    }

    /// Appends a remembered id at the block's end.
    pub(super) fn push_seen(&mut self, entry: Seen) {
        let len = self.words.len();
        self.reserve(2);
        self.words.resize(len + 2, 0);
        view_mut::<Seen>(&mut self.words[len..])[0] = entry;
    }

    /// Keeps the window buckets for which `keep` holds.
    pub fn retain_window(&mut self, keep: impl Fn(&DayBucket) -> bool) {
        let kept = compact(self.window_mut(), keep);
        self.close(kept * 2..self.store_start());
        self.window = kept as u32;
    }

    /// Keeps the store days for which `keep` holds.
    pub fn retain_store_days(&mut self, keep: impl Fn(&StoreDay) -> bool) {
        let kept = compact(self.store_days_mut(), keep);
        self.close(self.store_start() + kept..self.seen_start());
        self.stores = kept as u32;
    }

    /// Keeps the small-form remembered ids for which `keep` holds.
    pub(super) fn retain_seen(&mut self, keep: impl Fn(&Seen) -> bool) {
        let start = self.seen_start();
        let kept = compact(view_mut::<Seen>(&mut self.words[start..]), keep);
        self.words.truncate(start + kept * 2);
    }

    /// Removes and returns the small-form remembered ids.
    pub(super) fn take_seen(&mut self) -> Vec<Seen> {
        let taken = self.seen().to_vec();
        self.retain_seen(|_| false);
        taken
    }

    /// Heap bytes of the block: its window and store days, and its small-form remembered
    /// ids, separately (the unused capacity shared in proportion).
    pub fn heap_bytes(&self) -> (usize, usize) {
        let (used, capacity) = (self.words.len() * 8, self.words.capacity() * 8);
        let seen = (self.words.len() - self.seen_start()) * 8;
        let seen = if used == 0 { 0 } else { seen + (capacity - used) * seen / used };
        (capacity - seen, seen)
    }

    /// Prefetches what an event reads: the remembered ids (a lookup scans them; at most 32
    /// entries), and for a purchase or refund (`window`) from the window's four newest
    /// buckets on, through the store days; for a heavy member the header of its id table
    /// (the table's own slots depend on it).
    #[inline]
    pub fn prefetch(&self, window: bool) {
        let (from, bytes) = if window { (self.store_start().saturating_sub(8), 640) } else { (self.seen_start(), 512) };
        super::flat::prefetch_slice(&self.words[from..], bytes);
        if let Some(large) = &self.large {
            super::flat::prefetch(&**large);
        }
    }

    /// Prefetches what a checkpoint encodes: the block (its first KB), and a heavy
    /// member's table header.
    #[inline]
    pub fn prefetch_all(&self) {
        super::flat::prefetch_slice(&self.words, 1024);
        if let Some(large) = &self.large {
            super::flat::prefetch(&**large);
        }
    }
}

/// The smallest block a growth gives: a first purchase's remembered id, window bucket and
/// store day (five words) and a few more remembered ids. Growing by half from what one
/// event needed reallocated a new member's block at each of its first three events.
const MIN_WORDS: usize = 8;

/// `words` rounded up to the end of the allocator's size class ([`class_bytes`]).
fn class_words(words: usize) -> usize {
    class_bytes(words * 8) / 8
}

/// Moves the elements for which `keep` holds to the front, in order; their number.
fn compact<T: Copy>(items: &mut [T], keep: impl Fn(&T) -> bool) -> usize {
    let mut kept = 0;
    for i in 0..items.len() {
        if keep(&items[i]) {
            items[kept] = items[i];
            kept += 1;
        }
    }
    kept
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Against three plain vectors: inserts anywhere in each list, retains and takes,
    /// across growths.
    #[test]
    fn behaves_as_three_vectors() {
        let mut lists = Lists::default();
        let (mut window, mut seen, mut stores): (Vec<DayBucket>, Vec<Seen>, Vec<StoreDay>) = Default::default();
        let mut x = 1u64;
        let mut next = |n: usize| {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (x >> 33) as usize % n.max(1)
        };
        for i in 0..600u32 {
            match next(7) {
                0 | 1 => {
                    let k = next(window.len() + 1);
                    let b = DayBucket { day: i as i32, purchases: i, net: -(i as i64) };
                    window.insert(k, b);
                    lists.insert_window(k, b);
                }
                2 | 3 => {
                    let s = Seen { id_hash: u64::from(i) << 40 | 7, content: i * 3, day: -(i as i32) };
                    seen.push(s);
                    lists.push_seen(s);
                }
                4 | 5 => {
                    let k = next(stores.len() + 1);
                    let s = StoreDay { store: i, day: i as i32 * 2 };
                    stores.insert(k, s);
                    lists.insert_store_day(k, s);
                }
                _ => match next(4) {
                    0 => {
                        window.retain(|b| b.day % 3 != 0);
                        lists.retain_window(|b| b.day % 3 != 0);
                    }
                    1 => {
                        stores.retain(|s| s.store % 2 == 0);
                        lists.retain_store_days(|s| s.store % 2 == 0);
                    }
                    2 => {
                        seen.retain(|s| s.content % 2 == 0);
                        lists.retain_seen(|s| s.content % 2 == 0);
                    }
                    _ => assert_eq!(lists.take_seen(), std::mem::take(&mut seen)),
                },
            }
            assert_eq!((lists.window(), lists.seen(), lists.store_days()), (&window[..], &seen[..], &stores[..]), "step {i}");
            if let Some(b) = lists.window_mut().first_mut() {
                b.purchases += 1;
                window[0].purchases += 1;
            }
        }
        // Grown by half when full (plus the rest of the allocator's size class): little
        // unused capacity (a tenth of the state at 600K members when lists doubled).
        let mut grown = Lists::default();
        for i in 0..200 {
            grown.insert_store_day(0, StoreDay { store: i, day: 0 });
            let (len, capacity) = (grown.words.len(), grown.words.capacity());
            assert!(capacity <= class_words((len * 3 / 2 + 1).max(MIN_WORDS)), "{capacity} of {len}");
        }
        // A member's first block is its first event's size class (a purchase's five words
        // in six, a sign-up's id in two); then the block grows to at least eight words, so
        // its next two events take one reallocation and forty events a few, not one each.
        let mut signed_up = Lists::default();
        signed_up.reserve_first(2);
        signed_up.push_seen(Seen { id_hash: 1, content: 0, day: 0 });
        assert_eq!(signed_up.words.capacity(), 2);
        let mut member = Lists::default();
        let mut reallocations = 0;
        for i in 0..40 {
            let before = member.words.capacity();
            member.reserve_first(5);
            member.push_seen(Seen { id_hash: i, content: 0, day: 0 });
            if i == 0 {
                member.insert_window(0, DayBucket { day: 0, purchases: 1, net: 1 });
                member.insert_store_day(0, StoreDay { store: 0, day: 0 });
                assert_eq!(member.words.capacity(), 6);
            }
            reallocations += usize::from(member.words.capacity() != before);
            if i == 2 {
                assert_eq!(reallocations, 2, "a member's first three events reallocate its block once");
            }
        }
        assert!(reallocations <= 7, "{reallocations} reallocations for 40 events");
        let copy = Lists::from_parts(&window, &seen, &stores);
        assert_eq!((copy.window(), copy.seen(), copy.store_days()), (&window[..], &seen[..], &stores[..]));
        assert_eq!(copy.heap_bytes().0 + copy.heap_bytes().1, (window.len() * 2 + seen.len() * 2 + stores.len()) * 8);
    }
}

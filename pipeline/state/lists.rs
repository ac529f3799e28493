//! A member's lists in one heap block: its window's day buckets and its store days.
//!
//! Separate `Vec`s were separate allocations: an event that touched them read scattered
//! cache lines, a snapshot of 10M members missed the cache once per list and member, and
//! each list grew (and was copied) on its own. Here the lists sit back to back in one block
//! of 8-byte words, `[window | store days]`, which grows by half when full; a new day's
//! bucket shifts the store days after it. (The remembered event ids were a third list here
//! until session 18; they are in one table for all members now, `dedup`.)

use super::dedup::Seen;
use super::growth::class_bytes;
use super::members::{DayBucket, StoreDay};

/// The lists of one member.
#[derive(Debug, Clone, Default)]
pub struct Lists {
    /// `window` buckets (2 words each), then the store days (1 word each) up to the end.
    words: Vec<u64>,
    window: u32,
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
// (i32 + u32 + i64, u32 + i32) and the alignments are at most 8.
unsafe impl Element for DayBucket {}
unsafe impl Element for StoreDay {}
const _: () = assert!(std::mem::size_of::<DayBucket>() == 16 && std::mem::size_of::<StoreDay>() == 8);
const _: () = assert!(std::mem::align_of::<DayBucket>() <= 8 && std::mem::align_of::<StoreDay>() <= 8);
// SAFETY: as above (u64 + u32 + i32), for the checkpoint's copy of remembered ids.
unsafe impl Element for Seen {}
const _: () = assert!(std::mem::size_of::<Seen>() == 16 && std::mem::align_of::<Seen>() <= 8);

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
    pub fn from_parts(window: &[DayBucket], store_days: &[StoreDay]) -> Self {
        let mut lists = Self::default();
        let words = window.len() * 2 + store_days.len();
        lists.words.reserve_exact(words);
        lists.words.resize(words, 0);
        lists.window = window.len() as u32;
        lists.window_mut().copy_from_slice(window);
        lists.store_days_mut().copy_from_slice(store_days);
        lists
    }

    fn store_start(&self) -> usize {
        self.window as usize * 2
    }

    pub fn window(&self) -> &[DayBucket] {
        view(&self.words[..self.store_start()])
    }

    pub fn window_mut(&mut self) -> &mut [DayBucket] {
        let end = self.store_start();
        view_mut(&mut self.words[..end])
    }

    pub fn store_days(&self) -> &[StoreDay] {
        view(&self.words[self.store_start()..])
    }

    fn store_days_mut(&mut self) -> &mut [StoreDay] {
        let start = self.store_start();
        view_mut(&mut self.words[start..])
    }

    /// Gives a member without a block one for the `n` words its first event inserts (a
    /// purchase's window bucket and store day), to the end of that size class: a block
    /// sized for a growing member was more memory for each member with one purchase.
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
        self.store_days_mut()[k] = day;
    }

    /// Keeps the window buckets for which `keep` holds.
    pub fn retain_window(&mut self, keep: impl Fn(&DayBucket) -> bool) {
        let kept = compact(self.window_mut(), keep);
        self.close(kept * 2..self.store_start());
        self.window = kept as u32;
    }

    /// Keeps the store days for which `keep` holds.
    pub fn retain_store_days(&mut self, keep: impl Fn(&StoreDay) -> bool) {
        let start = self.store_start();
        let kept = compact(self.store_days_mut(), keep);
        self.words.truncate(start + kept);
    }

    /// Heap bytes of the block.
    pub fn heap_bytes(&self) -> usize {
        self.words.capacity() * 8
    }

    /// Prefetches what a purchase or refund reads: from the window's four newest buckets
    /// on, through the store days.
    #[inline]
    pub fn prefetch(&self) {
        super::flat::prefetch_slice(&self.words[self.store_start().saturating_sub(8)..], 640);
    }

    /// Prefetches what a checkpoint encodes: the block (its first KB).
    #[inline]
    pub fn prefetch_all(&self) {
        super::flat::prefetch_slice(&self.words, 1024);
    }
}

/// The smallest block a growth gives: a first purchase's window bucket and store day
/// (three words) and a few more. Growing by half from what one event needed reallocated a
/// new member's block at each of its next events.
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

    /// Against two plain vectors: inserts anywhere in each list and retains, across
    /// growths.
    #[test]
    fn behaves_as_two_vectors() {
        let mut lists = Lists::default();
        let (mut window, mut stores): (Vec<DayBucket>, Vec<StoreDay>) = Default::default();
        let mut x = 1u64;
        let mut next = |n: usize| {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (x >> 33) as usize % n.max(1)
        };
        for i in 0..600u32 {
            match next(5) {
                0 | 1 => {
                    let k = next(window.len() + 1);
                    let b = DayBucket { day: i as i32, purchases: i, net: -(i as i64) };
                    window.insert(k, b);
                    lists.insert_window(k, b);
                }
                2 | 3 => {
                    let k = next(stores.len() + 1);
                    let s = StoreDay { store: i, day: i as i32 * 2 };
                    stores.insert(k, s);
                    lists.insert_store_day(k, s);
                }
                _ if next(2) == 0 => {
                    window.retain(|b| b.day % 3 != 0);
                    lists.retain_window(|b| b.day % 3 != 0);
                }
                _ => {
                    stores.retain(|s| s.store % 2 == 0);
                    lists.retain_store_days(|s| s.store % 2 == 0);
                }
            }
            assert_eq!((lists.window(), lists.store_days()), (&window[..], &stores[..]), "step {i}");
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
        // A member's first block is its first event's size class (a purchase's three words
        // in four); then the block grows to at least eight words, so forty purchases on
        // new days and at new stores take a few reallocations, not one each.
        let mut member = Lists::default();
        let mut reallocations = 0;
        for i in 0..40 {
            let before = member.words.capacity();
            member.reserve_first(3);
            member.insert_window(i as usize, DayBucket { day: i, purchases: 1, net: 1 });
            member.insert_store_day(i as usize, StoreDay { store: i as u32, day: i });
            if i == 0 {
                assert_eq!(member.words.capacity(), class_words(3));
            }
            reallocations += usize::from(member.words.capacity() != before);
        }
        assert!(reallocations <= 12, "{reallocations} reallocations for 40 purchases");
        let copy = Lists::from_parts(&window, &stores);
        assert_eq!((copy.window(), copy.store_days()), (&window[..], &stores[..]));
        assert_eq!(copy.heap_bytes(), (window.len() * 2 + stores.len()) * 8);
    }
}

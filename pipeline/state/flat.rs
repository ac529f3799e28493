//! Open-addressing hash tables (linear probing, power-of-two capacity) whose slot for a
//! hash can be prefetched before it is needed.
//!
//! The state is larger than the caches, so an event's cost is its cache misses. The engine
//! looks a batch of events up in passes (`Engine::process_batch`): first it prefetches every
//! event's slots, then it reads them, so the misses of one event overlap those of the next.
//! A standard Swiss table keeps its control bytes apart from its slots (two misses per
//! lookup) and offers no prefetch; here a slot carries what decides a match.

/// An entry that knows its "empty" value.
pub trait Slot: Copy {
    const EMPTY: Self;
    fn is_empty(&self) -> bool;
}

/// Hints the CPU to load the cache lines of `value` (a no-op off x86_64).
#[inline]
pub fn prefetch<T>(value: &T) {
    prefetch_bytes(value as *const T as *const u8, std::mem::size_of::<T>());
}

/// Prefetches a slice's elements: its heap buffer, up to `max_bytes`.
#[inline]
pub fn prefetch_slice<T>(values: &[T], max_bytes: usize) {
    if !values.is_empty() {
        prefetch_bytes(values.as_ptr() as *const u8, std::mem::size_of_val(values).min(max_bytes));
    }
}

/// Every cache line of `len` bytes from `start` (the first may begin before it).
#[inline]
pub(super) fn prefetch_bytes(start: *const u8, len: usize) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
        let mut line = 0;
        while line < len.max(1) + (start as usize & 63) {
            // SAFETY: prefetching is a hint; it never faults, whatever the address.
            unsafe { _mm_prefetch::<_MM_HINT_T0>(start.wrapping_add(line) as *const i8) };
            line += 64;
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (start, len);
}

/// At most this share of the slots is used (3/4): probe runs stay short for misses too.
const fn over_load(len: usize, capacity: usize) -> bool {
    len * 4 > capacity * 3
}

#[derive(Debug, Clone)]
pub struct FlatTable<T> {
    slots: Vec<T>,
    len: usize,
    /// 64 - log2(capacity): a slot's home is the top bits of its hash.
    shift: u32,
}

impl<T: Slot> Default for FlatTable<T> {
    fn default() -> Self {
        Self { slots: Vec::new(), len: 0, shift: 64 }
    }
}

impl<T: Slot> FlatTable<T> {
    pub fn with_capacity(entries: usize) -> Self {
        let mut table = Self::default();
        if entries > 0 {
            let mut capacity = 16;
            while over_load(entries, capacity) {
                capacity *= 2;
            }
            table.resize(capacity, |_| unreachable!("empty table"));
        }
        table
    }

    /// An empty table of `capacity` slots (a power of two).
    pub fn with_slots(capacity: usize) -> Self {
        assert!(capacity.is_power_of_two(), "{capacity} slots");
        let mut table = Self::default();
        table.resize(capacity, |_| unreachable!("empty table"));
        table
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Whether inserting one more entry would grow the table (it has slots and is full).
    #[inline]
    pub fn full(&self) -> bool {
        !self.slots.is_empty() && over_load(self.len + 1, self.slots.len())
    }

    #[inline]
    fn home(&self, hash: u64) -> usize {
        // `shift` < 64 whenever there are slots.
        (hash >> self.shift) as usize
    }

    /// Hints the CPU to load the slot `hash` starts probing at.
    #[inline]
    pub fn prefetch(&self, hash: u64) {
        self.prefetch_run(hash, 1);
    }

    /// Hints the CPU to load `slots` slots from the one `hash` starts probing at (a probe
    /// that misses in a fuller table reads on until an empty slot).
    #[inline]
    pub fn prefetch_run(&self, hash: u64, slots: usize) {
        if !self.slots.is_empty() {
            let home = self.home(hash);
            prefetch_slice(&self.slots[home..self.slots.len().min(home + slots)], usize::MAX);
        }
    }

    /// The position of the entry matching `eq`, or of the empty slot ending its probe run.
    #[inline]
    fn probe(&self, hash: u64, mut eq: impl FnMut(&T) -> bool) -> (usize, bool) {
        let mask = self.slots.len() - 1;
        let mut i = self.home(hash);
        loop {
            let slot = &self.slots[i];
            if slot.is_empty() {
                return (i, false);
            }
            if eq(slot) {
                return (i, true);
            }
            i = (i + 1) & mask;
        }
    }

    #[inline]
    pub fn find(&self, hash: u64, eq: impl FnMut(&T) -> bool) -> Option<&T> {
        if self.slots.is_empty() {
            return None;
        }
        match self.probe(hash, eq) {
            (i, true) => Some(&self.slots[i]),
            _ => None,
        }
    }

    /// The entry matching `eq`, inserting `make()` when there is none; the flag says
    /// whether it was inserted. `rehash` gives an existing entry's hash when the table grows.
    #[inline]
    pub fn find_or_insert(
        &mut self,
        hash: u64,
        mut eq: impl FnMut(&T) -> bool,
        make: impl FnOnce() -> T,
        rehash: impl Fn(&T) -> u64,
    ) -> (&mut T, bool) {
        let mut vacant = None;
        if !self.slots.is_empty() {
            match self.probe(hash, &mut eq) {
                (i, true) => return (&mut self.slots[i], false),
                (i, false) => vacant = Some(i),
            }
        }
        // The probe's empty slot, unless the table grows first.
        let i = match vacant {
            Some(i) if !self.full() => i,
            _ => {
                let capacity = (self.slots.len() * 2).max(16);
                self.resize(capacity, &rehash);
                self.probe(hash, |_| false).0
            }
        };
        let value = make();
        debug_assert!(!value.is_empty(), "the empty value cannot be stored");
        self.slots[i] = value;
        self.len += 1;
        (&mut self.slots[i], true)
    }

    fn resize(&mut self, capacity: usize, rehash: impl Fn(&T) -> u64) {
        let old = std::mem::replace(&mut self.slots, vec![T::EMPTY; capacity]);
        self.shift = 64 - capacity.trailing_zeros();
        for slot in old.into_iter().filter(|s| !s.is_empty()) {
            let (i, _) = self.probe(rehash(&slot), |_| false);
            self.slots[i] = slot;
        }
    }

    pub fn iter(&self) -> impl Iterator<Item = &T> {
        self.slots.iter().filter(|s| !s.is_empty())
    }

    /// About `n` entries spread over the table: of `n` equal runs of slots, each run's
    /// first entry (if it has one). Homes are hashes, so this samples entries evenly.
    pub fn sample(&self, n: usize) -> impl Iterator<Item = &T> {
        let run = (self.slots.len() / n.max(1)).max(1);
        self.slots.chunks(run).filter_map(|slots| slots.iter().find(|s| !s.is_empty()))
    }

    pub fn heap_bytes(&self) -> usize {
        self.slots.capacity() * std::mem::size_of::<T>()
    }
}

/// Fibonacci hashing: spreads packed integer keys over the top bits.
#[inline]
pub fn hash_u64(key: u64) -> u64 {
    (key ^ (key >> 29)).wrapping_mul(0x9E37_79B9_7F4A_7C15)
}

/// `u64::MAX` marks an empty slot, so it cannot be a key.
const NO_KEY: u64 = u64::MAX;

/// A value type of a [`U64Map`]: `FILLER` sits beside the empty key in unused slots.
pub trait MapValue: Copy + Default {
    const FILLER: Self;
}

#[derive(Debug, Clone, Copy)]
struct Entry<V> {
    key: u64,
    value: V,
}

impl<V: MapValue> Slot for Entry<V> {
    const EMPTY: Self = Entry { key: NO_KEY, value: V::FILLER };
    fn is_empty(&self) -> bool {
        self.key == NO_KEY
    }
}

/// A map from packed `u64` keys (not `u64::MAX`) to small values.
#[derive(Debug, Clone)]
pub struct U64Map<V>(FlatTable<Entry<V>>);

/// A set of packed `u64` keys: a map to nothing (8 bytes a slot).
pub type U64Set = U64Map<()>;

impl MapValue for () {
    const FILLER: Self = ();
}

impl<V: MapValue> Default for U64Map<V> {
    fn default() -> Self {
        Self(FlatTable::default())
    }
}

impl<V: MapValue> U64Map<V> {
    /// The value of `key`, inserting the default when absent; the flag says whether it was.
    #[inline]
    fn find_or_insert(&mut self, key: u64) -> (&mut V, bool) {
        assert_ne!(key, NO_KEY, "u64::MAX cannot be a key");
        let make = || Entry { key, value: V::default() };
        let (entry, added) = self.0.find_or_insert(hash_u64(key), |e| e.key == key, make, |e| hash_u64(e.key));
        (&mut entry.value, added)
    }

    /// The value of `key`, inserting the default when absent.
    #[inline]
    pub fn entry(&mut self, key: u64) -> &mut V {
        self.find_or_insert(key).0
    }

    pub fn insert(&mut self, key: u64, value: V) {
        *self.entry(key) = value;
    }

    pub fn get(&self, key: u64) -> Option<&V> {
        self.0.find(hash_u64(key), |e| e.key == key).map(|e| &e.value)
    }

    pub fn contains_key(&self, key: u64) -> bool {
        self.get(key).is_some()
    }

    pub fn prefetch(&self, key: u64) {
        self.0.prefetch(hash_u64(key));
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = (u64, &V)> + '_ {
        self.0.iter().map(|e| (e.key, &e.value))
    }

    pub fn keys(&self) -> impl Iterator<Item = u64> + '_ {
        self.0.iter().map(|e| e.key)
    }

    pub fn heap_bytes(&self) -> usize {
        self.0.heap_bytes()
    }
}

impl U64Set {
    /// Adds `key`; true when it was new.
    #[inline]
    pub fn add(&mut self, key: u64) -> bool {
        self.find_or_insert(key).1
    }
}

impl<V: MapValue> FromIterator<(u64, V)> for U64Map<V> {
    fn from_iter<I: IntoIterator<Item = (u64, V)>>(entries: I) -> Self {
        let entries = entries.into_iter();
        let mut map = Self(FlatTable::with_capacity(entries.size_hint().0));
        map.extend(entries);
        map
    }
}

impl<V: MapValue> Extend<(u64, V)> for U64Map<V> {
    fn extend<I: IntoIterator<Item = (u64, V)>>(&mut self, entries: I) {
        for (key, value) in entries {
            self.insert(key, value);
        }
    }
}

impl<V: MapValue + PartialEq> PartialEq for U64Map<V> {
    fn eq(&self, other: &Self) -> bool {
        self.len() == other.len() && self.iter().all(|(k, v)| other.get(k) == Some(v))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    impl MapValue for u32 {
        const FILLER: Self = 0;
    }

    #[test]
    fn set_and_map_agree_with_std_collections() {
        let mut set = U64Set::default();
        let mut map: U64Map<u32> = U64Map::default();
        let (mut std_set, mut std_map) = (std::collections::HashSet::new(), std::collections::HashMap::new());
        let mut x: u64 = 7;
        for i in 0..200_000u32 {
            // Keys shaped like the packed (member, store) ones, with many repeats.
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let key = (x >> 40) % 50_000 << 32 | (x >> 20) % 300;
            assert_eq!(set.add(key), std_set.insert(key));
            *map.entry(key) += i;
            *std_map.entry(key).or_insert(0u32) += i;
        }
        assert_eq!(set.len(), std_set.len());
        assert!(std_set.iter().all(|&k| set.contains_key(k)));
        assert!(!set.contains_key(1 << 63));
        assert_eq!(set.keys().count(), std_set.len());
        assert_eq!(map.len(), std_map.len());
        assert!(std_map.iter().all(|(&k, v)| map.get(k) == Some(v)));
        assert_eq!(map.iter().count(), std_map.len());
        let copy: U64Map<u32> = map.iter().map(|(k, v)| (k, *v)).collect();
        assert_eq!(copy, map);
        let mut other = copy.clone();
        *other.entry(1 << 40) += 1;
        assert_ne!(other, map);
        assert!(over_load(13, 16) && !over_load(12, 16));
    }
}

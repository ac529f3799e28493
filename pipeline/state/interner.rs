//! Compact string -> dense index maps: member ids and store ids are stored once, in an arena.
//!
//! Each table slot carries the string's length and first 16 bytes, so finding a short id
//! (most member ids) touches one table cache line — not the arena — before the caller
//! goes on to the member's row; and the slot can be prefetched from the hash alone.

use xxhash_rust::xxh3::xxh3_64;

use super::flat::{self, FlatTable};

const HEAD: usize = 16;

/// One table entry: 24 bytes.
#[derive(Debug, Clone, Copy)]
struct Slot {
    head: [u8; HEAD],
    len: u32,
    index: u32,
}

impl flat::Slot for Slot {
    const EMPTY: Self = Slot { head: [0; HEAD], len: 0, index: u32::MAX };
    fn is_empty(&self) -> bool {
        self.index == u32::MAX
    }
}

/// The hash `find_hashed` and `prefetch` take.
pub fn hash(s: &str) -> u64 {
    xxh3_64(s.as_bytes())
}

fn head(s: &[u8]) -> [u8; HEAD] {
    let mut head = [0; HEAD];
    let n = s.len().min(HEAD);
    head[..n].copy_from_slice(&s[..n]);
    head
}

/// Strings in one byte arena, indexed densely in insertion order.
#[derive(Debug, Default, Clone)]
pub struct Interner {
    bytes: Vec<u8>,
    ends: Vec<u32>,
    table: FlatTable<Slot>,
}

/// Whether a slot holds `s`: length and head first (in the slot), the arena only for ids
/// longer than the head.
fn matches<'a>(bytes: &'a [u8], ends: &'a [u32], s: &'a [u8]) -> impl Fn(&Slot) -> bool + 'a {
    let h = head(s);
    move |slot| slot.len as usize == s.len() && slot.head == h && (s.len() <= HEAD || arena_get(bytes, ends, slot.index) == s)
}

fn arena_get<'a>(bytes: &'a [u8], ends: &[u32], index: u32) -> &'a [u8] {
    let i = index as usize;
    let start = if i == 0 { 0 } else { ends[i - 1] as usize };
    &bytes[start..ends[i] as usize]
}

impl Interner {
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    pub fn get(&self, index: u32) -> &str {
        // The arena only ever receives whole `&str`s.
        std::str::from_utf8(arena_get(&self.bytes, &self.ends, index)).expect("arena holds UTF-8")
    }

    pub fn find(&self, s: &str) -> Option<u32> {
        self.find_hashed(hash(s), s)
    }

    /// `find` with the string's [`hash`] already computed.
    #[inline]
    pub fn find_hashed(&self, hash: u64, s: &str) -> Option<u32> {
        self.table.find(hash, matches(&self.bytes, &self.ends, s.as_bytes())).map(|slot| slot.index)
    }

    /// Hints the CPU to load the table slot of a string with this [`hash`].
    #[inline]
    pub fn prefetch(&self, hash: u64) {
        self.table.prefetch(hash);
    }

    /// The index of `s`, adding it when new; the flag says whether it was added.
    #[inline]
    pub fn intern(&mut self, s: &str) -> (u32, bool) {
        self.intern_hashed(hash(s), s)
    }

    /// `intern` with the string's [`hash`] already computed.
    #[inline]
    pub fn intern_hashed(&mut self, hash: u64, s: &str) -> (u32, bool) {
        debug_assert_eq!(hash, self::hash(s));
        let s = s.as_bytes();
        let (bytes, ends) = (&self.bytes, &self.ends);
        let make = || Slot { head: head(s), len: s.len() as u32, index: ends.len() as u32 };
        let rehash = |slot: &Slot| xxh3_64(arena_get(bytes, ends, slot.index));
        let (slot, added) = self.table.find_or_insert(hash, matches(bytes, ends, s), make, rehash);
        let index = slot.index;
        if added {
            self.bytes.extend_from_slice(s);
            assert!(self.bytes.len() <= u32::MAX as usize, "interner arena exceeds 4 GiB");
            self.ends.push(self.bytes.len() as u32);
        }
        (index, added)
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> + '_ {
        (0..self.len() as u32).map(|i| self.get(i))
    }

    /// Heap bytes held (arena, offsets, hash table).
    pub fn heap_bytes(&self) -> usize {
        self.bytes.capacity() + self.ends.capacity() * 4 + self.table.heap_bytes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interns_once_and_finds_again() {
        let mut interner = Interner::default();
        let words: Vec<String> = (0..10_000).map(|i| format!("m{i}")).collect();
        for (i, w) in words.iter().enumerate() {
            assert_eq!(interner.intern(w), (i as u32, true));
        }
        for (i, w) in words.iter().enumerate() {
            assert_eq!(interner.intern(w), (i as u32, false));
            assert_eq!(interner.get(i as u32), w);
        }
        assert_eq!(interner.find("nope"), None);
        // Long strings sharing their first 16 bytes, and short ones differing only in length.
        let long = ["0123456789abcdef-one", "0123456789abcdef-two", "0123456789abcdef"];
        let firsts: Vec<u32> = long.iter().map(|s| interner.intern(s).0).collect();
        for (s, i) in long.iter().zip(&firsts) {
            assert_eq!(interner.intern(s), (*i, false));
            assert_eq!(interner.get(*i), *s);
        }
        assert_eq!(interner.find("0123456789abcdef-thr"), None);
        let a = interner.intern("m1").0;
        assert_ne!(interner.intern("m1\0").0, a);
        let (empty, added) = interner.intern("");
        assert!(added);
        assert_eq!(interner.get(empty), "");
    }
}

//! Compact string -> dense index maps: member ids and store ids are stored once, in an arena.

use hashbrown::HashTable;
use xxhash_rust::xxh3::xxh3_64;

/// Strings in one byte arena, indexed densely in insertion order.
#[derive(Debug, Default, Clone)]
pub struct Interner {
    bytes: Vec<u8>,
    ends: Vec<u32>,
    table: HashTable<u32>,
}

impl Interner {
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    pub fn get(&self, index: u32) -> &str {
        let i = index as usize;
        let start = if i == 0 { 0 } else { self.ends[i - 1] as usize };
        // The arena only ever receives whole `&str`s.
        std::str::from_utf8(&self.bytes[start..self.ends[i] as usize]).expect("arena holds UTF-8")
    }

    pub fn find(&self, s: &str) -> Option<u32> {
        self.table.find(xxh3_64(s.as_bytes()), |&i| self.get(i) == s).copied()
    }

    /// The index of `s`, adding it when new; the flag says whether it was added.
    pub fn intern(&mut self, s: &str) -> (u32, bool) {
        let hash = xxh3_64(s.as_bytes());
        let Self { bytes, ends, table } = self;
        let lookup = |i: u32| {
            let i = i as usize;
            let start = if i == 0 { 0 } else { ends[i - 1] as usize };
            &bytes[start..ends[i] as usize]
        };
        if let Some(&i) = table.find(hash, |&i| lookup(i) == s.as_bytes()) {
            return (i, false);
        }
        let index = ends.len() as u32;
        bytes.extend_from_slice(s.as_bytes());
        assert!(bytes.len() <= u32::MAX as usize, "interner arena exceeds 4 GiB");
        ends.push(bytes.len() as u32);
        let (bytes, ends) = (&*bytes, &*ends);
        table.insert_unique(hash, index, |&i| {
            let i = i as usize;
            let start = if i == 0 { 0 } else { ends[i - 1] as usize };
            xxh3_64(&bytes[start..ends[i] as usize])
        });
        (index, true)
    }

    pub fn iter(&self) -> impl Iterator<Item = &str> + '_ {
        (0..self.len() as u32).map(|i| self.get(i))
    }

    /// Heap bytes held (arena, offsets, hash table).
    pub fn heap_bytes(&self) -> usize {
        self.bytes.capacity() + self.ends.capacity() * 4 + self.table.capacity() * 5
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
        assert_eq!(interner.intern(""), (10_000, true));
        assert_eq!(interner.get(10_000), "");
    }
}

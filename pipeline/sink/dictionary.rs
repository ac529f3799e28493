//! A column chunk's dictionary for the events writer: each distinct value once, in order of
//! first appearance, and its index for every value looked up.
//!
//! Looked up for every dictionary-encoded value of the table (about eight per event), so
//! it avoids what a general hash map spends on short strings: a value is summarised once as
//! two 64-bit words and its length — for up to 16 bytes the words hold every byte, so two
//! summaries are equal exactly when the values are — and the table compares summaries,
//! touching the text only for longer values. Open addressing, linear probing, at most half
//! full.

#[derive(Default)]
pub struct Dictionary<'a> {
    table: Table,
    pub strs: Vec<&'a str>,
    pub ints: Vec<i64>,
    /// Bytes of its PLAIN page.
    pub bytes: usize,
    /// The value last looked up and its index: a column often repeats the row before's
    /// value (the topic, the partition, the currency, a burst of one event type), which is
    /// then found without hashing.
    last: Option<(Key, u32)>,
    /// Index + 1 of the value numbered `k` by the caller ([`Dictionary::keyed_index`]); 0
    /// until it is looked up.
    keyed: [u32; KEYS],
}

/// Values a caller can number for [`Dictionary::keyed_index`].
pub const KEYS: usize = 16;

#[derive(Clone, Copy, PartialEq)]
struct Key {
    a: u64,
    b: u64,
    len: u32,
}

impl Key {
    #[inline]
    fn of_str(s: &str) -> Self {
        let s = s.as_bytes();
        let n = s.len();
        let word = |at: usize| u64::from_le_bytes(s[at..at + 8].try_into().expect("8 bytes"));
        let half = |at: usize| u64::from(u32::from_le_bytes(s[at..at + 4].try_into().expect("4 bytes")));
        let (a, b) = match n {
            8.. => (word(0), word(n - 8)),
            4..=7 => (half(0), half(n - 4)),
            1..=3 => (u64::from(s[0]) | u64::from(s[n / 2]) << 8 | u64::from(s[n - 1]) << 16, 0),
            0 => (0, 0),
        };
        Self { a, b, len: n as u32 }
    }

    /// Its slot in a table of 2^`bits` slots: the top bits of a multiplicative
    /// (Fibonacci) hash, which depend on every bit of the key.
    #[inline]
    fn slot(self, bits: u32) -> usize {
        const K: u64 = 0x9E37_79B9_7F4A_7C15;
        let x = (self.a.wrapping_mul(K) ^ self.b).wrapping_add(u64::from(self.len)).wrapping_mul(K);
        (x >> (64 - bits)) as usize
    }
}

impl<'a> Dictionary<'a> {
    pub fn len(&self) -> usize {
        self.table.keys.len()
    }

    pub fn clear(&mut self) {
        self.table.slots.iter_mut().for_each(|s| *s = 0);
        self.table.keys.clear();
        self.strs.clear();
        self.ints.clear();
        self.bytes = 0;
        self.last = None;
        self.keyed = [0; KEYS];
    }

    /// The index of `s`, added if new.
    #[inline]
    pub fn str_index(&mut self, s: &'a str) -> u32 {
        let key = Key::of_str(s);
        if let Some((last, index)) = self.last {
            if last == key && (key.len <= 16 || self.strs[index as usize] == s) {
                return index;
            }
        }
        let strs = &self.strs;
        let (index, new) = self.table.find(key, |i| key.len <= 16 || strs[i] == s);
        if new {
            self.strs.push(s);
            self.bytes += s.len() + 4;
        }
        self.last = Some((key, index));
        index
    }

    /// The index of `s`, which the caller numbers `key` (below [`KEYS`]; one number per
    /// text): found by its number once looked up.
    #[inline]
    pub fn keyed_index(&mut self, key: usize, s: &'a str) -> u32 {
        match self.keyed[key] {
            0 => {
                let index = self.str_index(s);
                self.keyed[key] = index + 1;
                index
            }
            known => known - 1,
        }
    }

    /// The index of `v`, added if new.
    #[inline]
    pub fn int_index(&mut self, v: i64) -> u32 {
        let key = Key { a: v as u64, b: 0, len: 8 };
        if let Some((last, index)) = self.last {
            if last == key {
                return index;
            }
        }
        let (index, new) = self.table.find(key, |_| true);
        if new {
            self.ints.push(v);
            self.bytes += 8;
        }
        self.last = Some((key, index));
        index
    }
}

/// Entry indices by key.
#[derive(Default)]
struct Table {
    /// Index + 1 of the entry in each slot; 0 for an empty slot. A power of two long.
    slots: Vec<u32>,
    keys: Vec<Key>,
}

impl Table {
    /// The entry whose key is `key` and for which `same` holds, or a new one (true).
    #[inline]
    fn find(&mut self, key: Key, same: impl Fn(usize) -> bool) -> (u32, bool) {
        if self.keys.len() * 2 >= self.slots.len() {
            self.grow();
        }
        let mask = self.slots.len() - 1;
        let mut slot = key.slot(self.slots.len().trailing_zeros());
        loop {
            match self.slots[slot] {
                0 => break,
                entry => {
                    let i = entry as usize - 1;
                    if self.keys[i] == key && same(i) {
                        return (i as u32, false);
                    }
                }
            }
            slot = (slot + 1) & mask;
        }
        self.keys.push(key);
        self.slots[slot] = self.keys.len() as u32;
        (self.keys.len() as u32 - 1, true)
    }

    #[cold]
    fn grow(&mut self) {
        let size = (self.slots.len() * 2).max(64);
        self.slots = vec![0; size];
        for (i, key) in self.keys.iter().enumerate() {
            let mut slot = key.slot(size.trailing_zeros());
            while self.slots[slot] != 0 {
                slot = (slot + 1) & (size - 1);
            }
            self.slots[slot] = i as u32 + 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    /// Against a HashMap: short and long texts, texts that share their first and last eight
    /// bytes, the empty text, across many growths and a clear.
    #[test]
    fn indices_are_first_appearance_order_as_a_map_assigns_them() {
        let mut texts: Vec<String> = Vec::new();
        for i in 0..5000u64 {
            let n = i.wrapping_mul(0x2545_F491_4F6C_DD1D) >> 40;
            texts.push(match i % 6 {
                0 => format!("{}", n % 97),
                1 => format!("S{:03}", n % 500),
                2 => format!("sku-{:06}", n % 3000),
                3 => format!("0123456789-{:05}-abcdefgh", n % 200), // same first and last 8 bytes
                4 => String::new(),
                _ => "é".repeat((n % 9) as usize),
            });
        }
        // Equal texts elsewhere in memory.
        let copies = texts.clone();
        let mut dictionary = Dictionary::default();
        for round in 0..2 {
            let mut reference: HashMap<&str, u32> = HashMap::new();
            for (i, t) in texts.iter().enumerate() {
                let next = reference.len() as u32;
                let expected = *reference.entry(t).or_insert(next);
                assert_eq!(dictionary.str_index(t), expected, "{t:?} (round {round})");
                if i % 5 == 0 {
                    // The same value again, as an equal text elsewhere in memory.
                    assert_eq!(dictionary.str_index(&copies[i]), expected, "{t:?} repeated (round {round})");
                }
            }
            assert_eq!(dictionary.len(), reference.len());
            assert!(dictionary.strs.iter().enumerate().all(|(i, s)| reference[s] == i as u32));
            dictionary.clear();
            // After a clear the last text looked up is new again.
            let last = texts.last().unwrap();
            assert_eq!(dictionary.str_index(last), 0);
            dictionary.clear();
        }
        let mut reference: HashMap<i64, u32> = HashMap::new();
        for i in 0..10_000i64 {
            let v = (i * 7919) % 1013 - 500 + if i % 3 == 0 { i64::MIN } else { 0 };
            let next = reference.len() as u32;
            let expected = *reference.entry(v).or_insert(next);
            assert_eq!(dictionary.int_index(v), expected);
            assert_eq!(dictionary.int_index(v), expected, "{v} repeated");
        }
        assert_eq!(dictionary.ints.len(), reference.len());
    }

    /// Keyed lookups give the indices text lookups give, in first-appearance order across
    /// both, and a clear forgets the keys.
    #[test]
    fn keyed_lookups_agree_with_text_lookups() {
        let names = ["purchase", "refund", "a-type-name-longer-than-16", "sign_in"];
        let mut dictionary = Dictionary::default();
        for round in 0..2 {
            let mut reference: HashMap<&str, u32> = HashMap::new();
            for i in 0..200usize {
                let key = (i * 7 + round) % names.len();
                let next = reference.len() as u32;
                let expected = *reference.entry(names[key]).or_insert(next);
                let found = if i % 3 == 0 { dictionary.str_index(names[key]) } else { dictionary.keyed_index(key, names[key]) };
                assert_eq!(found, expected, "{} (round {round}, step {i})", names[key]);
            }
            assert_eq!(dictionary.strs.len(), names.len());
            dictionary.clear();
        }
    }
}

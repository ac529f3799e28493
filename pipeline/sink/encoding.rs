//! Parquet value and level encodings (format spec `Encodings.md`), written straight from
//! the events buffer's records by [`super::events_file`]: PLAIN, the RLE/bit-packed hybrid
//! (levels and dictionary indices), DELTA_BINARY_PACKED and DELTA_BYTE_ARRAY.

/// Unsigned LEB128, as the encodings' headers use.
pub fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push(v as u8 | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

/// Bits needed for `max` (0 for 0).
pub fn bit_width(max: u64) -> u8 {
    (64 - max.leading_zeros()) as u8
}

/// Packs eight values of `width` bits into `width` bytes, least significant bit first.
#[inline]
fn pack8(out: &mut Vec<u8>, group: &[u64; 8], width: u8) {
    let w = usize::from(width);
    if w == 0 {
        return;
    }
    if w <= 8 {
        let acc = group.iter().enumerate().fold(0u64, |acc, (k, &v)| acc | v << (k * w));
        out.extend_from_slice(&acc.to_le_bytes()[..w]);
    } else if w <= 16 {
        let acc = group.iter().enumerate().fold(0u128, |acc, (k, &v)| acc | u128::from(v) << (k * w));
        out.extend_from_slice(&acc.to_le_bytes()[..w]);
    } else {
        // Whole 64-bit words as they fill; eight values end on a byte boundary.
        let (mut acc, mut bits) = (0u128, 0);
        for &v in group {
            acc |= u128::from(v) << bits;
            bits += w;
            if bits >= 64 {
                out.extend_from_slice(&(acc as u64).to_le_bytes());
                acc >>= 64;
                bits -= 64;
            }
        }
        out.extend_from_slice(&acc.to_le_bytes()[..bits / 8]);
    }
}

/// Packs `values` in groups of eight, the last one padded with zeros.
fn bit_pack<T: Copy + Into<u64>>(out: &mut Vec<u8>, values: &[T], width: u8) {
    for chunk in values.chunks(8) {
        let mut group = [0u64; 8];
        for (g, &v) in group.iter_mut().zip(chunk) {
            *g = v.into();
        }
        pack8(out, &group, width);
    }
}

/// The RLE/bit-packed hybrid of `values` (each below 2^`width`): runs of eight or more
/// equal values as RLE runs, the rest bit-packed in groups of eight (the last group padded
/// with zeros; readers stop at the page's value count).
pub fn rle_hybrid(out: &mut Vec<u8>, values: &[u32], width: u8) {
    let repeats_8 = |i: usize| values.get(i..i + 8).is_some_and(|g| g.iter().all(|&v| v == values[i]));
    let value_bytes = usize::from(width).div_ceil(8);
    let mut i = 0;
    while i < values.len() {
        if repeats_8(i) {
            let run = values[i..].iter().take_while(|&&v| v == values[i]).count();
            varint(out, (run as u64) << 1);
            out.extend_from_slice(&values[i].to_le_bytes()[..value_bytes]);
            i += run;
            continue;
        }
        let start = i;
        i = (i + 8).min(values.len());
        while i < values.len() && !repeats_8(i) {
            i = (i + 8).min(values.len());
        }
        varint(out, ((i - start).div_ceil(8) as u64) << 1 | 1);
        bit_pack(out, &values[start..i], width);
    }
}

const BLOCK: usize = 128;
const MINIBLOCKS: usize = 4;
const MINIBLOCK: usize = BLOCK / MINIBLOCKS;

/// DELTA_BINARY_PACKED: blocks of 128 deltas in four miniblocks, each bit-packed at the
/// width its largest (delta - block minimum) needs.
pub fn delta_binary_packed(out: &mut Vec<u8>, values: &[i64]) {
    varint(out, BLOCK as u64);
    varint(out, MINIBLOCKS as u64);
    varint(out, values.len() as u64);
    varint(out, zigzag(values.first().copied().unwrap_or(0)));
    let mut start = 1;
    while start < values.len() {
        let end = (start + BLOCK).min(values.len());
        let n = end - start;
        // The block's deltas and their minimum in one pass, then each delta's excess over
        // it; past the last delta the excess stays 0 (the padding of the last miniblock).
        let mut deltas = [0i64; BLOCK];
        let mut min = i64::MAX;
        for (d, pair) in deltas.iter_mut().zip(values[start - 1..end].windows(2)) {
            *d = pair[1].wrapping_sub(pair[0]);
            min = min.min(*d);
        }
        varint(out, zigzag(min));
        let mut relative = [0u64; BLOCK];
        for (r, &d) in relative.iter_mut().zip(&deltas[..n]) {
            *r = d.wrapping_sub(min) as u64;
        }
        // A miniblock's width is that of the OR of its values (the same as its maximum's).
        let mut widths = [0u8; MINIBLOCKS];
        for (w, mini) in widths.iter_mut().zip(relative.chunks_exact(MINIBLOCK)) {
            *w = bit_width(mini.iter().fold(0, |acc, &r| acc | r));
        }
        out.extend_from_slice(&widths);
        for (mini, &width) in relative.chunks_exact(MINIBLOCK).take(n.div_ceil(MINIBLOCK)).zip(&widths) {
            for group in mini.as_chunks::<8>().0 {
                pack8(out, group, width);
            }
        }
        start = end;
    }
}

/// DELTA_BYTE_ARRAY, built one value at a time while the value is in cache (the events
/// writer's values lie in records spread over the epoch's arena, evicted by the time a
/// page is encoded): each value's prefix shared with the previous one and the length of
/// the rest (both DELTA_BINARY_PACKED when encoded), then the rest of every value.
#[derive(Default)]
pub struct DeltaByteArray<'a> {
    previous: &'a [u8],
    prefixes: Vec<i64>,
    suffix_lengths: Vec<i64>,
    suffixes: Vec<u8>,
}

impl<'a> DeltaByteArray<'a> {
    /// An empty page, in buffers a previous one used.
    pub fn reusing((mut prefixes, mut suffix_lengths, mut suffixes): (Vec<i64>, Vec<i64>, Vec<u8>)) -> Self {
        prefixes.clear();
        suffix_lengths.clear();
        suffixes.clear();
        Self { previous: &[], prefixes, suffix_lengths, suffixes }
    }

    /// Inlined into the events writer's visitor: as a call, its register saves and
    /// restores were a fifth of its instructions.
    #[inline(always)]
    pub fn push(&mut self, value: &'a str) {
        let v = value.as_bytes();
        let prefix = common_prefix(self.previous, v);
        self.prefixes.push(prefix as i64);
        self.suffix_lengths.push((v.len() - prefix) as i64);
        crate::append::append(&mut self.suffixes, &v[prefix..]);
        self.previous = v;
    }

    /// Appends the page's encoding to `out` and empties it for the next page.
    pub fn encode(&mut self, out: &mut Vec<u8>) {
        delta_binary_packed(out, &self.prefixes);
        delta_binary_packed(out, &self.suffix_lengths);
        out.extend_from_slice(&self.suffixes);
        self.previous = &[];
        self.prefixes.clear();
        self.suffix_lengths.clear();
        self.suffixes.clear();
    }

    /// The buffers, for [`DeltaByteArray::reusing`].
    pub fn into_buffers(self) -> (Vec<i64>, Vec<i64>, Vec<u8>) {
        (self.prefixes, self.suffix_lengths, self.suffixes)
    }
}

/// The length of the prefix `a` and `b` share, compared eight bytes at a time.
#[inline(always)]
fn common_prefix(a: &[u8], b: &[u8]) -> usize {
    let n = a.len().min(b.len());
    let mut i = 0;
    while i + 8 <= n {
        let word = |s: &[u8]| u64::from_le_bytes(s[i..i + 8].try_into().expect("8 bytes"));
        let diff = word(a) ^ word(b);
        if diff != 0 {
            return i + diff.trailing_zeros() as usize / 8;
        }
        i += 8;
    }
    i + a[i..n].iter().zip(&b[i..n]).take_while(|(x, y)| x == y).count()
}

/// PLAIN byte arrays: a 4-byte length before each value.
pub fn plain_strings<'a>(out: &mut Vec<u8>, values: impl IntoIterator<Item = &'a str>) {
    for v in values {
        out.extend_from_slice(&(v.len() as u32).to_le_bytes());
        crate::append::append(out, v.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rle_hybrid_matches_the_spec_s_layout() {
        // Ten 1s at width 1: one RLE run (header 10 << 1, one value byte).
        let mut out = Vec::new();
        rle_hybrid(&mut out, &[1; 10], 1);
        assert_eq!(out, [20, 1]);
        // The spec's bit-packing example: 0..8 at width 3, one group.
        out.clear();
        rle_hybrid(&mut out, &[0, 1, 2, 3, 4, 5, 6, 7], 3);
        assert_eq!(out, [0b11, 0b1000_1000, 0b1100_0110, 0b1111_1010]);
        // Three values are padded to a group of eight.
        out.clear();
        rle_hybrid(&mut out, &[1, 0, 1], 1);
        assert_eq!(out, [0b11, 0b101]);
    }

    #[test]
    fn common_prefix_compares_words_and_tails() {
        let pairs = [("", "abc", 0), ("evt-00001234", "evt-00001299", 10), ("abcdefgh", "abcdefgh", 8), ("abcdefghij", "abcdefgh", 8), ("x", "y", 0)];
        for (a, b, n) in pairs {
            assert_eq!(common_prefix(a.as_bytes(), b.as_bytes()), n, "{a:?} {b:?}");
        }
    }

    #[test]
    fn wide_values_pack_least_significant_bit_first() {
        // Eight values of 20 bits: 20 bytes, the same as packing bit by bit.
        let group: [u64; 8] = [1, 0xfffff, 3, 0x12345, 0, 7, 0x80000, 9];
        let mut out = Vec::new();
        pack8(&mut out, &group, 20);
        let mut bits = Vec::new();
        for v in group {
            bits.extend((0..20).map(|b| (v >> b) & 1));
        }
        let expected: Vec<u8> = bits.chunks(8).map(|c| c.iter().enumerate().map(|(k, &b)| (b as u8) << k).sum()).collect();
        assert_eq!(out, expected);
    }

    /// DELTA_BINARY_PACKED read back as `Encodings.md` describes it, bit by bit.
    fn decode_delta_binary_packed(b: &[u8]) -> Vec<i64> {
        fn varint(b: &[u8], at: &mut usize) -> u64 {
            let (mut v, mut shift) = (0u64, 0);
            loop {
                let byte = b[*at];
                *at += 1;
                v |= u64::from(byte & 0x7f) << shift;
                shift += 7;
                if byte < 0x80 {
                    return v;
                }
            }
        }
        let unzigzag = |v: u64| (v >> 1) as i64 ^ -((v & 1) as i64);
        let mut at = 0;
        let (block, minis, count) = (varint(b, &mut at) as usize, varint(b, &mut at) as usize, varint(b, &mut at) as usize);
        let mut values = vec![unzigzag(varint(b, &mut at))];
        while values.len() < count {
            let min = unzigzag(varint(b, &mut at));
            let widths: Vec<usize> = b[at..at + minis].iter().map(|&w| usize::from(w)).collect();
            at += minis;
            for w in widths {
                if values.len() >= count {
                    break;
                }
                let bit = |i: usize| u64::from(b[at + i / 8] >> (i % 8) & 1);
                for k in 0..block / minis {
                    let delta = (0..w).fold(0u64, |v, j| v | bit(k * w + j) << j);
                    if values.len() < count {
                        let last = *values.last().unwrap();
                        values.push(last.wrapping_add(min.wrapping_add(delta as i64)));
                    }
                }
                at += block / minis * w / 8;
            }
        }
        values
    }

    #[test]
    fn delta_binary_packed_reads_back_bit_by_bit() {
        let mut x = 5u64;
        let mut next = || {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            x
        };
        for n in [1, 2, 33, 128, 129, 200, 257, 1000] {
            for spread in [0u32, 1, 7, 20, 40, 64] {
                let values: Vec<i64> = (0..n).map(|_| if spread == 0 { 42 } else { (next() >> (64 - spread)) as i64 }).collect();
                let mut out = Vec::new();
                delta_binary_packed(&mut out, &values);
                assert_eq!(decode_delta_binary_packed(&out), values, "{n} values of {spread} bits");
            }
        }
        let extremes = [i64::MIN, i64::MAX, 0, i64::MIN, -1, i64::MAX, 1];
        let mut out = Vec::new();
        delta_binary_packed(&mut out, &extremes);
        assert_eq!(decode_delta_binary_packed(&out), extremes);
    }

    #[test]
    fn delta_binary_packed_matches_the_spec_s_example() {
        // Encodings.md: 1 2 3 4 5 -> header (128, 4, 5, zigzag 1), min delta 1, widths 0.
        let mut out = Vec::new();
        delta_binary_packed(&mut out, &[1, 2, 3, 4, 5]);
        assert_eq!(out, [0x80, 0x01, 4, 5, 2, 2, 0, 0, 0, 0]);
        // 7 5 3 1 2 3 4 5: deltas -2 -2 -2 1 1 1 1, min -2, width 2 for 0 0 0 3 3 3 3.
        out.clear();
        delta_binary_packed(&mut out, &[7, 5, 3, 1, 2, 3, 4, 5]);
        let mut expected = vec![0x80, 0x01, 4, 8, 14, 3, 2, 0, 0, 0];
        expected.extend([0b1100_0000, 0b0011_1111]);
        expected.extend([0; 6]); // the miniblock padded to 32 values of 2 bits
        assert_eq!(out, expected);
    }
}

//! How the member rows grow: in fixed chunks, so growing never moves what they hold (a
//! `Vec` of 10M rows grows by copying a gigabyte into fresh memory, which the kernel zeroes
//! first; at 600K members that growth was 4% of the pipeline's time). A member's lists
//! grow in `lists`, to whole size classes of the allocator ([`class_bytes`]).

use std::ops::{Index, IndexMut};

/// `bytes` rounded up to the end of the allocator's size class for that many bytes
/// (mimalloc's, the process's allocator; under another a block is merely a little larger
/// than asked). A block asked for 72 bytes takes an 80-byte slot whatever its capacity
/// says: a growing list that claims those bytes reallocates later, for free.
pub(super) fn class_bytes(bytes: usize) -> usize {
    // SAFETY: a pure function of its argument; it neither allocates nor touches memory.
    unsafe { libmimalloc_sys::mi_good_size(bytes) }.max(bytes)
}

/// Elements per chunk (a power of two).
const CHUNK: usize = 1 << 14;

/// Elements in chunks of [`CHUNK`]: every chunk but the last is full; the first grows by
/// doubling up to a chunk, so a small table stays small.
#[derive(Debug, Clone)]
pub struct ChunkedVec<T> {
    chunks: Vec<Vec<T>>,
    len: usize,
}

impl<T> Default for ChunkedVec<T> {
    fn default() -> Self {
        Self { chunks: Vec::new(), len: 0 }
    }
}

impl<T> ChunkedVec<T> {
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Elements the allocated chunks can hold.
    pub fn capacity(&self) -> usize {
        self.chunks.iter().map(Vec::capacity).sum()
    }

    pub fn push(&mut self, value: T) {
        match self.chunks.last_mut() {
            Some(chunk) if chunk.len() < CHUNK => {
                if chunk.len() == chunk.capacity() {
                    chunk.reserve_exact((chunk.len() * 2).min(CHUNK) - chunk.len());
                }
                chunk.push(value);
            }
            _ => {
                let mut chunk = Vec::with_capacity(if self.chunks.is_empty() { 64 } else { CHUNK });
                chunk.push(value);
                self.chunks.push(chunk);
            }
        }
        self.len += 1;
    }

    /// Grows to `len` elements made by `make` (never shrinks).
    pub fn resize_with(&mut self, len: usize, mut make: impl FnMut() -> T) {
        while self.len < len {
            self.push(make());
        }
    }

    #[inline]
    pub fn get(&self, i: usize) -> Option<&T> {
        self.chunks.get(i / CHUNK)?.get(i % CHUNK)
    }

    pub fn iter(&self) -> Iter<'_, T> {
        Iter { inner: self.chunks.iter().flatten(), left: self.len }
    }

    pub fn iter_mut(&mut self) -> impl Iterator<Item = &mut T> + '_ {
        self.chunks.iter_mut().flatten()
    }
}

/// The elements in order; knows how many are left (the checkpoint writes the count first).
pub struct Iter<'a, T> {
    inner: std::iter::Flatten<std::slice::Iter<'a, Vec<T>>>,
    left: usize,
}

impl<'a, T> Iterator for Iter<'a, T> {
    type Item = &'a T;

    #[inline]
    fn next(&mut self) -> Option<&'a T> {
        let next = self.inner.next()?;
        self.left -= 1;
        Some(next)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl<T> ExactSizeIterator for Iter<'_, T> {}

impl<T> Index<usize> for ChunkedVec<T> {
    type Output = T;

    #[inline]
    fn index(&self, i: usize) -> &T {
        &self.chunks[i / CHUNK][i % CHUNK]
    }
}

impl<T> IndexMut<usize> for ChunkedVec<T> {
    #[inline]
    fn index_mut(&mut self, i: usize) -> &mut T {
        &mut self.chunks[i / CHUNK][i % CHUNK]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Sizes are whole size classes: at least what was asked, at most a quarter more past
    /// 64 bytes (four classes per doubling), and a class's own size is its class (asking
    /// for it takes no larger slot).
    #[test]
    fn class_bytes_are_whole_size_classes() {
        for bytes in 1..=(256 << 10) {
            let class = class_bytes(bytes);
            assert!(class >= bytes && class <= bytes + bytes / 4 + 16, "{bytes} bytes: {class}");
            assert_eq!(class_bytes(class), class, "{bytes} bytes: {class}");
        }
        assert_eq!([40, 72, 136, 264].map(class_bytes), [48, 80, 160, 320]);
    }

    #[test]
    fn behaves_as_a_vec_across_chunks() {
        let mut chunked = ChunkedVec::default();
        let mut plain = Vec::new();
        for i in 0..CHUNK * 3 + 17 {
            chunked.push(i as u64 * 3);
            plain.push(i as u64 * 3);
            if i % 1000 == 0 {
                chunked[i / 2] += 1;
                plain[i / 2] += 1;
            }
        }
        chunked.resize_with(CHUNK * 4 + 1, || 7);
        plain.resize_with(CHUNK * 4 + 1, || 7);
        assert_eq!(chunked.len(), plain.len());
        assert!(chunked.iter().eq(plain.iter()));
        assert_eq!(chunked.iter().skip(5).len(), plain.len() - 5);
        assert!((0..plain.len()).all(|i| chunked[i] == plain[i] && chunked.get(i) == plain.get(i)));
        assert_eq!(chunked.get(plain.len()), None);
        chunked.iter_mut().for_each(|v| *v += 1);
        assert!(chunked.iter().zip(&plain).all(|(a, b)| *a == b + 1));
        assert_eq!(chunked.capacity(), CHUNK * 5);
        let mut small = ChunkedVec::default();
        (0..100).for_each(|i| small.push(i));
        assert_eq!(small.capacity(), 128, "a small table doubles like a Vec");
    }
}

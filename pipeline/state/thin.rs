//! A growable byte buffer behind one thin pointer: its length and capacity live in the
//! heap block, before the bytes.
//!
//! A member's profile was an `Option<Box<Profile>>` around a `Vec<u8>`: two allocations per
//! member that has attributes (most members), 24 bytes of `Vec` in the box, and two
//! dependent cache misses to reach the bytes. Here the row holds one pointer (a null one
//! for no buffer, through `Option`'s niche) and the block holds everything else.

use std::alloc::{self, Layout};
use std::ptr::NonNull;

/// Bytes before the buffer's bytes: its length and its capacity (u32 each).
pub const HEADER: usize = 8;

/// Owns a block of `HEADER + capacity` bytes, all of them initialized (zeroed when the
/// block is allocated or grown), of which the first `len` are the buffer's.
pub struct ThinBytes {
    block: NonNull<u8>,
}

// SAFETY: a `ThinBytes` owns its block exclusively, as a `Box<[u8]>` owns its bytes.
unsafe impl Send for ThinBytes {}
// SAFETY: `&ThinBytes` only reads the block.
unsafe impl Sync for ThinBytes {}

fn layout(capacity: usize) -> Layout {
    Layout::from_size_align(HEADER + capacity, 8).expect("a profile block under isize::MAX")
}

impl ThinBytes {
    /// An empty buffer with room for `capacity` bytes.
    pub fn with_capacity(capacity: usize) -> Self {
        assert!(capacity <= u32::MAX as usize, "a profile of more than 4 GiB");
        let layout = layout(capacity);
        // SAFETY: the layout's size is at least HEADER, never zero.
        let block = unsafe { alloc::alloc_zeroed(layout) };
        let Some(block) = NonNull::new(block) else { alloc::handle_alloc_error(layout) };
        let mut thin = Self { block };
        thin.set_header(0, capacity);
        thin
    }

    fn header(&self) -> (usize, usize) {
        // SAFETY: the block starts with HEADER initialized bytes, 8-aligned.
        let words = unsafe { std::ptr::read(self.block.as_ptr() as *const [u32; 2]) };
        (words[0] as usize, words[1] as usize)
    }

    fn set_header(&mut self, len: usize, capacity: usize) {
        // SAFETY: as in `header`; the block is this buffer's alone.
        unsafe { std::ptr::write(self.block.as_ptr() as *mut [u32; 2], [len as u32, capacity as u32]) };
    }

    pub fn len(&self) -> usize {
        self.header().0
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn capacity(&self) -> usize {
        self.header().1
    }

    /// Bytes of the block: what the allocator was asked for.
    pub fn block_bytes(&self) -> usize {
        HEADER + self.capacity()
    }

    /// Hints the CPU to load the block's first `bytes` bytes (header included), without
    /// reading the header for the length first (a load the hint would wait for).
    #[inline]
    pub fn prefetch(&self, bytes: usize) {
        super::flat::prefetch_bytes(self.block.as_ptr(), bytes);
    }

    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: `len` <= capacity bytes follow the header, all initialized.
        unsafe { std::slice::from_raw_parts(self.block.as_ptr().add(HEADER), self.len()) }
    }

    /// All `capacity` bytes (those past the length are zero or stale, never uninitialized).
    pub fn spare_mut(&mut self) -> &mut [u8] {
        // SAFETY: as in `as_slice`, for the whole capacity; borrowed exclusively.
        unsafe { std::slice::from_raw_parts_mut(self.block.as_ptr().add(HEADER), self.capacity()) }
    }

    /// Sets the length (at most the capacity): the first `len` bytes of [`Self::spare_mut`]
    /// become the buffer's.
    pub fn set_len(&mut self, len: usize) {
        let capacity = self.capacity();
        assert!(len <= capacity, "length {len} beyond capacity {capacity}");
        self.set_header(len, capacity);
    }

    /// Grows the capacity to `capacity` bytes (no change when it is not larger).
    pub fn grow_to(&mut self, capacity: usize) {
        let (len, old) = self.header();
        if capacity <= old {
            return;
        }
        assert!(capacity <= u32::MAX as usize, "a profile of more than 4 GiB");
        // SAFETY: the block was allocated with `layout(old)`; the new size is non-zero and
        // under isize::MAX (`layout` checks it).
        let block = unsafe { alloc::realloc(self.block.as_ptr(), layout(old), layout(capacity).size()) };
        let Some(block) = NonNull::new(block) else { alloc::handle_alloc_error(layout(capacity)) };
        // SAFETY: the grown block has `capacity - old` bytes past the old ones to zero.
        unsafe { block.as_ptr().add(HEADER + old).write_bytes(0, capacity - old) };
        self.block = block;
        self.set_header(len, capacity);
    }
}

impl Drop for ThinBytes {
    fn drop(&mut self) {
        // SAFETY: allocated with this layout, and not used again.
        unsafe { alloc::dealloc(self.block.as_ptr(), layout(self.capacity())) };
    }
}

impl Clone for ThinBytes {
    fn clone(&self) -> Self {
        let mut copy = Self::with_capacity(self.capacity());
        copy.spare_mut()[..self.len()].copy_from_slice(self.as_slice());
        copy.set_len(self.len());
        copy
    }
}

impl PartialEq for ThinBytes {
    fn eq(&self, other: &Self) -> bool {
        self.as_slice() == other.as_slice()
    }
}

impl std::fmt::Debug for ThinBytes {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ThinBytes").field("len", &self.len()).field("capacity", &self.capacity()).finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Against a `Vec<u8>` doing the same edits: inserts and removals in the middle, growth.
    #[test]
    fn edits_agree_with_a_vec() {
        let mut thin = ThinBytes::with_capacity(0);
        let mut model: Vec<u8> = Vec::new();
        let mut x = 5u64;
        for step in 0..2000u32 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let at = (x >> 33) as usize % (model.len() + 1);
            if x % 3 == 0 && !model.is_empty() {
                let end = (at + (x >> 50) as usize % 9).min(model.len());
                model.drain(at..end);
                let len = thin.len();
                thin.spare_mut().copy_within(end..len, at);
                thin.set_len(len - (end - at));
            } else {
                let insert: Vec<u8> = (0..(x >> 45) % 13).map(|i| (step as u64 + i) as u8).collect();
                model.splice(at..at, insert.iter().copied());
                let len = thin.len();
                if len + insert.len() > thin.capacity() {
                    thin.grow_to((len + insert.len()) * 3 / 2);
                }
                let spare = thin.spare_mut();
                spare.copy_within(at..len, at + insert.len());
                spare[at..at + insert.len()].copy_from_slice(&insert);
                thin.set_len(len + insert.len());
            }
            assert_eq!(thin.as_slice(), &model[..], "step {step}");
        }
        let mut copy = thin.clone();
        assert_eq!(copy, thin);
        assert!(copy.spare_mut().len() >= copy.len());
        assert_eq!(std::mem::size_of::<Option<ThinBytes>>(), 8, "a row holds one pointer");
    }
}

//! Appending byte strings to a buffer, with the short ones (most fields of an event) copied
//! inline: `Vec::extend_from_slice` calls `memcpy` for any length it does not know, and
//! those calls were a fifth of what building an event's record and content hash cost
//! (callgrind).

/// Appends `bytes` to `out`.
#[inline(always)]
pub fn append(out: &mut Vec<u8>, bytes: &[u8]) {
    let n = bytes.len();
    if n > 16 {
        out.extend_from_slice(bytes);
        return;
    }
    out.reserve(n);
    let len = out.len();
    let (src, dst) = (bytes.as_ptr(), out.as_mut_ptr());
    // SAFETY: `reserve` made room for `n` more bytes after `len`; every read lies inside
    // `bytes` and every write inside `dst[len..len + n]` (the two copies of a range
    // overlap when `n` is not a power of two, writing some bytes twice with equal values).
    unsafe {
        let dst = dst.add(len);
        if n >= 8 {
            let (a, b) = ((src as *const u64).read_unaligned(), (src.add(n - 8) as *const u64).read_unaligned());
            (dst as *mut u64).write_unaligned(a);
            (dst.add(n - 8) as *mut u64).write_unaligned(b);
        } else if n >= 4 {
            let (a, b) = ((src as *const u32).read_unaligned(), (src.add(n - 4) as *const u32).read_unaligned());
            (dst as *mut u32).write_unaligned(a);
            (dst.add(n - 4) as *mut u32).write_unaligned(b);
        } else if n > 0 {
            *dst = *src;
            *dst.add(n / 2) = *src.add(n / 2);
            *dst.add(n - 1) = *src.add(n - 1);
        }
        out.set_len(len + n);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn appends_every_length_exactly() {
        let source: Vec<u8> = (0..40u8).map(|b| b.wrapping_mul(37)).collect();
        for start in 0..3 {
            for n in 0..=source.len() - start {
                let mut out = vec![0xaa; start];
                out.reserve_exact(0);
                append(&mut out, &source[start..start + n]);
                append(&mut out, b"xyz");
                let mut expected = vec![0xaa; start];
                expected.extend_from_slice(&source[start..start + n]);
                expected.extend_from_slice(b"xyz");
                assert_eq!(out, expected, "length {n} after {start}");
            }
        }
    }
}

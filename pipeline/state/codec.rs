//! A small binary encoding for checkpoints: little-endian, length-prefixed, checksummed.

use std::io::{self, Write};

use xxhash_rust::xxh3::Xxh3;

/// An iterator whose length is known up front, for the encoder's columns (a hash table's
/// entries, say, without collecting them into a vector first).
pub struct Exact<I> {
    inner: I,
    left: usize,
}

/// `iter`, which yields exactly `len` items, as an [`ExactSizeIterator`].
pub fn exact<I: Iterator>(iter: I, len: usize) -> Exact<I> {
    Exact { inner: iter, left: len }
}

impl<I: Iterator> Iterator for Exact<I> {
    type Item = I::Item;

    fn next(&mut self) -> Option<I::Item> {
        let next = self.inner.next()?;
        self.left -= 1;
        Some(next)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        (self.left, Some(self.left))
    }
}

impl<I: Iterator> ExactSizeIterator for Exact<I> {}

/// Writes values and hashes every byte, for the trailing checksum. Small writes are
/// gathered into a buffer of [`Encoder::BUFFER`] bytes before they are hashed and written:
/// the streaming hash copies every input shorter than its block into its own buffer, and
/// a checkpoint writes millions of ids and lengths (same bytes, same checksum).
pub struct Encoder<W: Write> {
    out: W,
    hash: Xxh3,
    buf: Vec<u8>,
    pub written: u64,
}

impl<W: Write> Encoder<W> {
    const BUFFER: usize = 64 << 10;

    pub fn new(out: W) -> Self {
        Self { out, hash: Xxh3::new(), buf: Vec::with_capacity(Self::BUFFER), written: 0 }
    }

    pub fn bytes(&mut self, b: &[u8]) -> io::Result<()> {
        self.written += b.len() as u64;
        if self.buf.len() + b.len() > Self::BUFFER {
            self.drain()?;
            if b.len() >= Self::BUFFER {
                self.hash.update(b);
                return self.out.write_all(b);
            }
        }
        self.buf.extend_from_slice(b);
        Ok(())
    }

    /// Hashes and writes the gathered bytes.
    fn drain(&mut self) -> io::Result<()> {
        self.hash.update(&self.buf);
        self.out.write_all(&self.buf)?;
        self.buf.clear();
        Ok(())
    }

    pub fn u64(&mut self, v: u64) -> io::Result<()> {
        self.bytes(&v.to_le_bytes())
    }

    pub fn i64(&mut self, v: i64) -> io::Result<()> {
        self.bytes(&v.to_le_bytes())
    }

    pub fn i32(&mut self, v: i32) -> io::Result<()> {
        self.bytes(&v.to_le_bytes())
    }

    pub fn str(&mut self, s: &str) -> io::Result<()> {
        self.blob(s.as_bytes())
    }

    pub fn blob(&mut self, b: &[u8]) -> io::Result<()> {
        self.u64(b.len() as u64)?;
        self.bytes(b)
    }

    pub fn i64s(&mut self, v: impl ExactSizeIterator<Item = i64>) -> io::Result<()> {
        self.fixed(v, i64::to_le_bytes)
    }

    pub fn u32s(&mut self, v: impl ExactSizeIterator<Item = u32>) -> io::Result<()> {
        self.fixed(v, u32::to_le_bytes)
    }

    /// A length, then each value's fixed-size encoding, appended a buffer's worth at a time.
    fn fixed<T, const N: usize>(&mut self, mut v: impl ExactSizeIterator<Item = T>, bytes: impl Fn(T) -> [u8; N]) -> io::Result<()> {
        self.u64(v.len() as u64)?;
        while v.len() > 0 {
            let n = v.len().min(Self::BUFFER / N);
            let mut taken = 0;
            self.put(|buf| {
                buf.reserve(n * N);
                for x in v.by_ref().take(n) {
                    buf.extend_from_slice(&bytes(x));
                    taken += 1;
                }
            })?;
            if taken < n {
                return Err(io::Error::other("an iterator yielded fewer values than its length said"));
            }
        }
        Ok(())
    }

    /// Appends what `put` writes straight into the buffer (no intermediate copy), e.g. a
    /// row's fields and lists; the buffer is written out once it passes [`Encoder::BUFFER`].
    pub fn put(&mut self, put: impl FnOnce(&mut Vec<u8>)) -> io::Result<()> {
        let before = self.buf.len();
        put(&mut self.buf);
        self.written += (self.buf.len() - before) as u64;
        if self.buf.len() >= Self::BUFFER {
            self.drain()?;
        }
        Ok(())
    }

    pub fn flush(&mut self) -> io::Result<()> {
        self.drain()?;
        self.out.flush()
    }

    /// Writes the checksum of everything so far and returns the writer.
    pub fn finish(mut self) -> io::Result<W> {
        self.drain()?;
        let sum = self.hash.digest();
        self.out.write_all(&sum.to_le_bytes())?;
        self.out.flush()?;
        Ok(self.out)
    }
}

/// Reads what [`Encoder`] wrote; every read checks bounds.
pub struct Decoder<'a> {
    buf: &'a [u8],
    pos: usize,
}

#[derive(Debug, thiserror::Error)]
#[error("checkpoint is corrupt: {0}")]
pub struct Corrupt(pub String);

impl<'a> Decoder<'a> {
    /// Verifies the trailing checksum.
    pub fn new(file: &'a [u8]) -> Result<Self, Corrupt> {
        if file.len() < 8 {
            return Err(Corrupt("file is shorter than its checksum".into()));
        }
        let (body, sum) = file.split_at(file.len() - 8);
        let expected = u64::from_le_bytes(sum.try_into().unwrap());
        if xxhash_rust::xxh3::xxh3_64(body) != expected {
            return Err(Corrupt("checksum mismatch (a torn or damaged write)".into()));
        }
        Ok(Self { buf: body, pos: 0 })
    }

    pub fn bytes(&mut self, n: usize) -> Result<&'a [u8], Corrupt> {
        let end = self.pos.checked_add(n).filter(|&e| e <= self.buf.len());
        let end = end.ok_or_else(|| Corrupt(format!("truncated at byte {}", self.pos)))?;
        let out = &self.buf[self.pos..end];
        self.pos = end;
        Ok(out)
    }

    pub fn u32(&mut self) -> Result<u32, Corrupt> {
        Ok(u32::from_le_bytes(self.bytes(4)?.try_into().unwrap()))
    }

    pub fn u64(&mut self) -> Result<u64, Corrupt> {
        Ok(u64::from_le_bytes(self.bytes(8)?.try_into().unwrap()))
    }

    pub fn i64(&mut self) -> Result<i64, Corrupt> {
        Ok(i64::from_le_bytes(self.bytes(8)?.try_into().unwrap()))
    }

    pub fn i32(&mut self) -> Result<i32, Corrupt> {
        Ok(i32::from_le_bytes(self.bytes(4)?.try_into().unwrap()))
    }

    pub fn len(&mut self) -> Result<usize, Corrupt> {
        let n = self.u64()? as usize;
        if n > self.buf.len() - self.pos {
            return Err(Corrupt(format!("length {n} at byte {} exceeds the file", self.pos)));
        }
        Ok(n)
    }

    pub fn blob(&mut self) -> Result<&'a [u8], Corrupt> {
        let n = self.len()?;
        self.bytes(n)
    }

    pub fn str(&mut self) -> Result<&'a str, Corrupt> {
        std::str::from_utf8(self.blob()?).map_err(|_| Corrupt(format!("invalid UTF-8 before byte {}", self.pos)))
    }

    pub fn i64s(&mut self) -> Result<Vec<i64>, Corrupt> {
        let n = self.len()?;
        let raw = self.bytes(n * 8)?;
        Ok(raw.chunks_exact(8).map(|c| i64::from_le_bytes(c.try_into().unwrap())).collect())
    }

    pub fn u32s(&mut self) -> Result<Vec<u32>, Corrupt> {
        let n = self.len()?;
        let raw = self.bytes(n * 4)?;
        Ok(raw.chunks_exact(4).map(|c| u32::from_le_bytes(c.try_into().unwrap())).collect())
    }

    pub fn at_end(&self) -> bool {
        self.pos == self.buf.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gathered_writes_are_the_bytes_written_with_their_checksum() {
        let big = vec![7u8; Encoder::<Vec<u8>>::BUFFER * 2 + 3];
        let ints: Vec<i64> = (0..200_000).map(|i| i * 3 - 7).collect();
        let mut e = Encoder::new(Vec::new());
        let mut expected = Vec::new();
        for i in 0..10_000u64 {
            e.u64(i).unwrap();
            e.str("member").unwrap();
            expected.extend_from_slice(&i.to_le_bytes());
            expected.extend_from_slice(&6u64.to_le_bytes());
            expected.extend_from_slice(b"member");
        }
        e.flush().unwrap();
        // A flush leaves every byte so far in the writer (the mid-checkpoint crash point).
        assert_eq!(e.out, expected);
        e.blob(&big).unwrap();
        e.i64s(ints.iter().copied()).unwrap();
        e.u32s(ints.iter().map(|&v| v as u32)).unwrap();
        e.i32(-5).unwrap();
        for i in 0..20_000u32 {
            e.put(|buf| buf.extend_from_slice(&i.to_le_bytes())).unwrap();
        }
        expected.extend_from_slice(&(big.len() as u64).to_le_bytes());
        expected.extend_from_slice(&big);
        expected.extend_from_slice(&(ints.len() as u64).to_le_bytes());
        ints.iter().for_each(|v| expected.extend_from_slice(&v.to_le_bytes()));
        expected.extend_from_slice(&(ints.len() as u64).to_le_bytes());
        ints.iter().for_each(|&v| expected.extend_from_slice(&(v as u32).to_le_bytes()));
        expected.extend_from_slice(&(-5i32).to_le_bytes());
        (0..20_000u32).for_each(|i| expected.extend_from_slice(&i.to_le_bytes()));
        assert_eq!(e.written, expected.len() as u64);
        let file = e.finish().unwrap();
        assert_eq!(&file[..expected.len()], &expected[..]);
        assert_eq!(file[expected.len()..], xxhash_rust::xxh3::xxh3_64(&expected).to_le_bytes());
        let mut d = Decoder::new(&file).unwrap();
        assert_eq!((d.u64().unwrap(), d.str().unwrap()), (0, "member"));
    }

    #[test]
    fn a_sequence_shorter_than_its_length_is_an_error_not_a_corrupt_file() {
        let mut e = Encoder::new(Vec::new());
        assert!(e.i64s(exact(0..3i64, 5)).is_err());
    }
}

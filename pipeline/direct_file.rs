//! Files written around the page cache (`O_DIRECT`), for what the pipeline writes once,
//! fsyncs and rarely reads back soon: checkpoint files (read at a restart) and staged table
//! files. A buffered write copies every byte into page-cache pages the kernel allocates
//! for it; on this project's VM that copy into fresh pages was 11-16% of the benchmark's
//! steady state (perf: `copy_folio_from_iter_atomic` under the checkpoint's writes), and a
//! new 256 MB file took 0.17-0.71 s to write buffered against 0.09-0.14 s direct (`dd`, three
//! runs each). The RocksDB option `use_direct_io_for_flush_and_compaction` exists for the
//! same reason.
//!
//! Direct writes need their buffer, length and file offset aligned to the device's logical
//! block: bytes are gathered in an aligned buffer and written a chunk at a time, and the
//! last block is padded with zeros, then the file cut to its length. Where the file system
//! refuses `O_DIRECT` (tmpfs, some network file systems) the same writer writes through the
//! page cache. Durability is unchanged: callers still fsync (metadata, device caches).
//!
//! A direct write returns when the device has the bytes: about 2.5 ms per 4 MB chunk on
//! this project's VM, time the pipeline's one core would otherwise spend waiting (a
//! checkpoint writes 80-240 MB). A thread of the file writes each full chunk while the
//! caller fills the next one (two buffers).

use std::cell::RefCell;
use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::Path;
use std::sync::mpsc;

/// Alignment of a direct write's buffer, length and offset: a multiple of every logical
/// block size in use (512 or 4096 bytes).
const ALIGN: usize = 4096;
/// Bytes gathered per write.
const CHUNK: usize = 4 << 20;

thread_local! {
    /// The gathering buffers, kept between files: a backfill checkpoint writes a file per
    /// day of history, and a fresh 4 MB buffer for each would be new memory to zero.
    static SPARE: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
}

/// A new file (created or truncated) that takes writes like a `File` and writes them
/// directly when it can; [`DirectFile::finish`] writes the rest.
pub struct DirectFile {
    file: File,
    buffer: Buffer,
    /// Bytes in the buffer, and bytes written to the file before them.
    len: usize,
    flushed: u64,
    direct: bool,
    /// Writes full chunks in the background, from a file's first full chunk on.
    writer: Option<Writer>,
}

impl DirectFile {
    pub fn create(path: &Path) -> io::Result<Self> {
        Self::open(path, true)
    }

    /// `create`, through the page cache unless `try_direct`.
    fn open(path: &Path, try_direct: bool) -> io::Result<Self> {
        let open = |flags| OpenOptions::new().write(true).create(true).truncate(true).custom_flags(flags).open(path);
        let (file, direct) = match try_direct.then(|| open(libc::O_DIRECT)) {
            Some(Ok(file)) => (file, true),
            Some(Err(e)) if e.raw_os_error() != Some(libc::EINVAL) => return Err(e),
            _ => (open(0)?, false),
        };
        Ok(Self { file, buffer: Buffer::take(), len: 0, flushed: 0, direct, writer: None })
    }

    /// Whether writes go around the page cache (the file system took `O_DIRECT`).
    #[cfg(test)]
    fn is_direct(&self) -> bool {
        self.direct
    }

    /// Writes what is buffered and returns the file, as long as what was written to it (the
    /// padding of the last direct block cut off). Not fsynced.
    pub fn finish(mut self) -> io::Result<File> {
        if let Some(mut writer) = self.writer.take() {
            // The last chunk sent; its buffer back to the spares.
            writer.wait()?;
        }
        let len = self.len;
        if len > 0 {
            if self.direct {
                let end = self.flushed + len as u64;
                let padded = len.next_multiple_of(ALIGN);
                self.buffer.window()[len..padded].fill(0);
                self.write_out(padded)?;
                self.file.set_len(end)?;
            } else {
                self.write_out(len)?;
            }
        }
        Ok(self.file)
    }

    /// Writes the buffer's first `n` bytes at the end of what was written.
    fn write_out(&mut self, n: usize) -> io::Result<()> {
        write_at(&self.file, &mut self.direct, &self.buffer.bytes()[..n], self.flushed)?;
        self.flushed += n as u64;
        self.len = 0;
        Ok(())
    }

    /// Hands the full buffer to the file's writer thread (started at the first full chunk:
    /// a smaller file is written by [`DirectFile::finish`] alone) and goes on with the
    /// other buffer, once the writer is done with it.
    fn write_chunk(&mut self) -> io::Result<()> {
        let writer = match &mut self.writer {
            Some(writer) => writer,
            None => self.writer.insert(Writer::start(self.file.try_clone()?, self.direct)?),
        };
        let next = writer.wait()?.unwrap_or_else(Buffer::take);
        let full = std::mem::replace(&mut self.buffer, next);
        writer.send(full, self.flushed)?;
        self.flushed += CHUNK as u64;
        self.len = 0;
        Ok(())
    }

    #[cfg(test)]
    fn undirect(&mut self) -> io::Result<()> {
        undirect(&self.file)?;
        self.direct = false;
        Ok(())
    }
}

/// Writes `bytes` at `offset` of `file`. A file system that opens with O_DIRECT but wants
/// another alignment: `file` is switched to the page cache, from here on (for every
/// descriptor of its open file, the writer thread's too), and the write done again.
fn write_at(file: &File, direct: &mut bool, bytes: &[u8], offset: u64) -> io::Result<()> {
    match file.write_all_at(bytes, offset) {
        Err(e) if *direct && e.raw_os_error() == Some(libc::EINVAL) => {
            undirect(file)?;
            *direct = false;
            file.write_all_at(bytes, offset)
        }
        result => result,
    }
}

fn undirect(file: &File) -> io::Result<()> {
    let fd = std::os::fd::AsRawFd::as_raw_fd(file);
    // SAFETY: F_GETFL/F_SETFL on an open descriptor; no memory is passed.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    // SAFETY: as above.
    if flags < 0 || unsafe { libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_DIRECT) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// A file's writer thread: takes one full chunk at a time and gives its buffer back.
struct Writer {
    chunks: Option<mpsc::SyncSender<(Buffer, u64)>>,
    done: mpsc::Receiver<(Buffer, io::Result<()>)>,
    thread: Option<std::thread::JoinHandle<()>>,
    /// A chunk was sent and its buffer not yet taken back.
    busy: bool,
}

impl Writer {
    fn start(file: File, mut direct: bool) -> io::Result<Self> {
        let (chunks, todo) = mpsc::sync_channel::<(Buffer, u64)>(1);
        let (finished, done) = mpsc::channel();
        let thread = std::thread::Builder::new().name("direct-write".into()).spawn(move || {
            for (mut buffer, offset) in todo {
                let result = write_at(&file, &mut direct, buffer.bytes(), offset);
                // The buffer goes back to the caller's thread (its spare list is there).
                let failed = result.is_err();
                buffer.keep = true;
                if finished.send((buffer, result)).is_err() || failed {
                    return;
                }
            }
        })?;
        Ok(Self { chunks: Some(chunks), done, thread: Some(thread), busy: false })
    }

    fn send(&mut self, buffer: Buffer, offset: u64) -> io::Result<()> {
        let sent = self.chunks.as_ref().expect("open until dropped").send((buffer, offset));
        sent.map_err(|_| io::Error::other("the direct-write thread stopped"))?;
        self.busy = true;
        Ok(())
    }

    /// Waits for the chunk in flight, if any: its buffer, or its write's error.
    fn wait(&mut self) -> io::Result<Option<Buffer>> {
        if !std::mem::take(&mut self.busy) {
            return Ok(None);
        }
        let (mut buffer, result) = self.done.recv().map_err(|_| io::Error::other("the direct-write thread stopped"))?;
        buffer.keep = false;
        result.map(|()| Some(buffer))
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        // Closing the channel ends the thread once its chunk is written.
        self.chunks = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Write for DirectFile {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        let n = data.len().min(CHUNK - self.len);
        let len = self.len;
        self.buffer.window()[len..len + n].copy_from_slice(&data[..n]);
        self.len += n;
        if self.len == CHUNK {
            self.write_chunk()?;
        }
        Ok(n)
    }

    /// Writes nothing: a direct write takes whole blocks, so the buffer's tail waits for
    /// [`DirectFile::finish`].
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// `CHUNK + ALIGN` bytes, of which the aligned `CHUNK` are used; back to `SPARE` when
/// dropped (unless `keep`: on its way back from the writer thread).
struct Buffer {
    bytes: Vec<u8>,
    keep: bool,
}

/// Buffers kept in `SPARE`: the two of a file being written in the background.
const SPARES: usize = 2;

impl Buffer {
    fn take() -> Self {
        let bytes = SPARE.with_borrow_mut(Vec::pop).unwrap_or_else(|| vec![0; CHUNK + ALIGN]);
        Self { bytes, keep: false }
    }

    /// Where the aligned chunk starts.
    fn start(&self) -> usize {
        self.bytes.as_ptr().align_offset(ALIGN)
    }

    fn window(&mut self) -> &mut [u8] {
        let start = self.start();
        &mut self.bytes[start..start + CHUNK]
    }

    /// The aligned chunk, read-only.
    fn bytes(&self) -> &[u8] {
        &self.bytes[self.start()..self.start() + CHUNK]
    }
}

impl Drop for Buffer {
    fn drop(&mut self) {
        if self.keep {
            return;
        }
        let bytes = std::mem::take(&mut self.bytes);
        SPARE.with_borrow_mut(|spare| {
            if spare.len() < SPARES {
                spare.push(bytes);
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Files of every length around the block and chunk sizes, written in pieces of varied
    /// sizes, directly (where the temporary directory's file system allows it, which the
    /// test reports) and through the page cache, read back byte for byte.
    #[test]
    fn every_length_reads_back() {
        let dir = tempfile::tempdir().unwrap();
        let lengths = [0, 1, 511, 4095, 4096, 4097, 100_000, CHUNK - 1, CHUNK, CHUNK + 1, 2 * CHUNK + 12_345];
        for try_direct in [true, false] {
            for (n, &len) in lengths.iter().enumerate() {
                let data: Vec<u8> = (0..len).map(|i| (i * 31 + i / 4096) as u8).collect();
                let path = dir.path().join(format!("f{n}"));
                // A longer file first: creating must truncate it.
                std::fs::write(&path, vec![7u8; 3 * CHUNK]).unwrap();
                let mut file = DirectFile::open(&path, try_direct).unwrap();
                if n == 0 {
                    eprintln!("direct writes asked {try_direct} in {}: {}", dir.path().display(), file.is_direct());
                }
                assert!(try_direct || !file.is_direct());
                let mut rest = &data[..];
                let mut piece = 1;
                while !rest.is_empty() {
                    let k = piece.min(rest.len());
                    file.write_all(&rest[..k]).unwrap();
                    rest = &rest[k..];
                    piece = piece * 7 % 1_000_003 + 1;
                }
                let file = file.finish().unwrap();
                assert_eq!(file.metadata().unwrap().len(), len as u64, "length {len}");
                assert!(std::fs::read(&path).unwrap() == data, "contents of a file of {len} bytes");
            }
        }
    }

    /// A write that fails in the background (here: a device that is always full) fails
    /// the caller's next write or its `finish`, not silently.
    #[test]
    fn a_background_write_error_reaches_the_caller() {
        let path = Path::new("/dev/full");
        if !path.exists() {
            eprintln!("no /dev/full here: skipped");
            return;
        }
        let mut file = DirectFile::open(path, false).unwrap();
        let chunk = vec![1u8; CHUNK];
        let result = (0..3).try_for_each(|_| file.write_all(&chunk)).and_then(|()| file.finish().map(drop));
        let error = result.expect_err("writes to a full device");
        assert_eq!(error.raw_os_error(), Some(libc::ENOSPC), "{error}");
    }

    /// The switch a refused direct write makes (to the page cache, mid-file) keeps every
    /// byte in its place: a file started directly, switched after a whole chunk and part of
    /// the next, read back against the bytes written.
    #[test]
    fn switching_to_buffered_mid_file_keeps_the_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let data: Vec<u8> = (0..CHUNK * 2 + 777).map(|i| (i * 13 + i / 9973) as u8).collect();
        let mut file = DirectFile::open(&path, true).unwrap();
        let switch_at = CHUNK + 5_000;
        file.write_all(&data[..switch_at]).unwrap();
        file.undirect().unwrap();
        assert!(!file.is_direct());
        file.write_all(&data[switch_at..]).unwrap();
        let file = file.finish().unwrap();
        assert_eq!(file.metadata().unwrap().len(), data.len() as u64);
        assert!(std::fs::read(&path).unwrap() == data, "contents after the switch");
    }
}

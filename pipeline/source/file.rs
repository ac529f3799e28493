//! `backfill`: JSON-lines files (POS exports, history) through the same engine as Kafka.
//! The source of a line is its file's canonical path, partition 0, offset = line number,
//! so a restart after a crash resumes at the first line the checkpoint does not cover.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use indicatif::{ProgressBar, ProgressStyle};

use crate::engine::{Engine, EngineError, Message, OutputTopics, BATCH};
use crate::sink::Origin;

#[derive(Debug, thiserror::Error)]
pub enum FileSourceError {
    #[error("cannot read {path}: {source}")]
    Io { path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// Feeds every line of `files` to the engine, checkpointing as configured, and commits a
/// final checkpoint with the members table.
pub fn backfill(
    engine: &mut Engine,
    files: &[PathBuf],
    outputs: &mut dyn OutputTopics,
    progress: bool,
) -> Result<(), FileSourceError> {
    let total: u64 = files.iter().filter_map(|f| f.metadata().ok()).map(|m| m.len()).sum();
    let bar = if progress { ProgressBar::new(total) } else { ProgressBar::hidden() };
    bar.set_style(
        ProgressStyle::with_template("{spinner} backfill [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta} {msg}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    for path in files {
        feed_file(engine, path, outputs, &bar)?;
    }
    engine.checkpoint(outputs, true)?;
    bar.finish_and_clear();
    Ok(())
}

fn feed_file(engine: &mut Engine, path: &Path, outputs: &mut dyn OutputTopics, bar: &ProgressBar) -> Result<(), FileSourceError> {
    let io = |source| FileSourceError::Io { path: path.to_path_buf(), source };
    let canonical = path.canonicalize().map_err(io)?;
    let source = canonical.to_string_lossy().into_owned();
    let skip = engine.resume_offset(&source, 0).unwrap_or(0);
    let mut reader = BufReader::with_capacity(1 << 20, File::open(path).map_err(io)?);
    // Up to `BATCH` lines at a time, back to back in one buffer.
    let (mut lines, mut ends) = (Vec::with_capacity(BATCH * 1024), Vec::with_capacity(BATCH));
    let mut offset: i64 = 0;
    loop {
        let first = offset;
        lines.clear();
        ends.clear();
        while ends.len() < BATCH {
            let n = reader.read_until(b'\n', &mut lines).map_err(io)?;
            if n == 0 {
                break;
            }
            bar.inc(n as u64);
            if offset < skip {
                lines.truncate(ends.last().copied().unwrap_or(0));
            } else {
                ends.push(lines.len());
            }
            offset += 1;
        }
        if ends.is_empty() {
            if offset == first {
                break;
            }
            continue;
        }
        let first = offset - ends.len() as i64;
        let mut start = 0;
        let batch: Vec<Message<'_>> = ends
            .iter()
            .enumerate()
            .map(|(i, &end)| {
                let line = &lines[start..end];
                start = end;
                let payload = line.strip_suffix(b"\n").unwrap_or(line);
                let payload = payload.strip_suffix(b"\r").unwrap_or(payload);
                Message { key: None, payload, origin: Origin { source: &source, partition: 0, offset: first + i as i64 } }
            })
            .collect();
        engine.process_batch(&batch);
        if engine.checkpoint_due() {
            let report = engine.checkpoint(outputs, false)?;
            bar.set_message(format!("checkpoint {}", report.epoch));
        }
    }
    Ok(())
}

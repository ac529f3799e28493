//! `bench`: the pipeline core alone over an in-memory source, with per-stage costs.

use std::time::Instant;

use anyhow::Result;
use chrono::NaiveDate;

use crate::config::MemberflowConfig;
use crate::engine::{wall_clock_micros, AsOf, Engine, Message, StageTimes, TableOnly, BATCH};
use crate::generate::{GenerateConfig, Generator};
use crate::sink::Origin;

#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
    /// Messages in the in-memory source.
    #[arg(long, default_value_t = 2_000_000)]
    pub events: u64,
    /// Members they belong to.
    #[arg(long, default_value_t = 200_000)]
    pub members: u64,
    /// Days of event time the messages span, ending 2026-10-31: the default, three years,
    /// is a backfill of history (a file per day per checkpoint); a few days is a live stream.
    #[arg(long, default_value_t = 1095)]
    pub days: u32,
    /// A purchase carries 1 to this many line items (0: none, as from a till that sends
    /// order totals): the default makes messages of 315 bytes on average, 1 makes 254 and 0
    /// makes 205 (the size the core's target is stated for).
    #[arg(long, default_value_t = 4)]
    pub max_items: u32,
    /// Checkpoint every this many messages (as `checkpoint.max_events` does in production).
    #[arg(long, default_value_t = 2_000_000)]
    pub checkpoint_every: u64,
    /// After the run, refresh twice (first scoring, then a re-score) and report their cost.
    #[arg(long)]
    pub refresh: bool,
    /// Before generating, touch this many MiB of heap (in 4 MiB blocks) and free it for the
    /// run to reuse. On a VM whose host takes freed guest memory back (virtio-balloon free
    /// page reporting, as on this project's machines) the first touch of each page costs
    /// about 10 µs, and the state a run grows pays it; with enough pre-touched memory the
    /// figures are those of a machine whose memory is already backed (a long-running
    /// process's, once its state stopped growing). 0: touch nothing.
    #[arg(long, default_value_t = 0)]
    pub pretouch_mib: usize,
    /// Scratch data directory (wiped).
    #[arg(long, default_value = "data/bench")]
    pub data_dir: std::path::PathBuf,
}

pub async fn run(args: BenchArgs) -> Result<()> {
    let end = NaiveDate::from_ymd_opt(2026, 10, 31).expect("valid date");
    let gen = GenerateConfig {
        events: args.events,
        members: args.members,
        end,
        start: end - chrono::Duration::days(args.days.max(1) as i64 - 1),
        max_items: args.max_items,
        ..GenerateConfig::default()
    };
    if args.pretouch_mib > 0 {
        if let Some(available) = available_mib().filter(|&a| args.pretouch_mib > a / 2) {
            anyhow::bail!(
                "--pretouch-mib {} is more than half of the {available} MiB this machine has available \
                 (MemAvailable in /proc/meminfo); the run itself needs the rest",
                args.pretouch_mib
            );
        }
        let started = Instant::now();
        pretouch(args.pretouch_mib);
        eprintln!("bench: touched {} MiB of heap in {:.2?}", args.pretouch_mib, started.elapsed());
    }
    eprintln!("bench: generating {} messages for {} members in memory", args.events, args.members);
    let messages: Vec<(String, Vec<u8>)> = Generator::new(gen).map(|m| (m.key, m.payload)).collect();
    let bytes: usize = messages.iter().map(|(_, p)| p.len()).sum();
    let _ = std::fs::remove_dir_all(&args.data_dir);
    // The environment (MEMBERFLOW__TABLES__COMPRESSION=snappy, ...) can vary the setup.
    let mut config = MemberflowConfig::load(None)?;
    config.data_dir = args.data_dir.clone();
    config.checkpoint.max_events = args.checkpoint_every;
    config.checkpoint.interval = std::time::Duration::from_secs(3600);
    let mut engine = Engine::open(&config, AsOf::Fixed(end), wall_clock_micros)?;
    engine.stage_times = Some(StageTimes::default());
    let started = Instant::now();
    let (mut checkpoints, mut checkpoint_time) = (0u32, std::time::Duration::ZERO);
    // Of the checkpoints' time: the events table's files, and the state.
    let (mut events_time, mut state_time) = (std::time::Duration::ZERO, std::time::Duration::ZERO);
    // Steady state: from the end of the first checkpoint to the end of the last one in the
    // loop (the allocator and the row arena warm, as in a long-running process).
    let (mut first_end, mut last_end) = (None, None);
    // Checkpoint files written: (snapshots, their bytes, deltas, their bytes).
    let mut files = (0u32, 0u64, 0u32, 0u64);
    let mut count_file = |r: &crate::engine::CheckpointReport| {
        if r.checkpoint_full {
            (files.0, files.1) = (files.0 + 1, r.checkpoint_bytes);
        } else {
            (files.2, files.3) = (files.2 + 1, files.3 + r.checkpoint_bytes);
        }
    };
    let mut steady_checkpoint_time = std::time::Duration::ZERO;
    let mut batch = Vec::with_capacity(BATCH);
    for (n, chunk) in messages.chunks(BATCH).enumerate() {
        let first = n * BATCH;
        batch.clear();
        batch.extend(chunk.iter().enumerate().map(|(i, (key, payload))| {
            let origin = Origin { source: "bench", partition: 0, offset: (first + i) as i64 };
            Message { key: Some(key.as_bytes()), payload, origin }
        }));
        engine.process_batch(&batch);
        let offset = first + chunk.len() - 1;
        if engine.checkpoint_due() {
            let report = tokio::task::block_in_place(|| engine.checkpoint(&mut TableOnly, false))?;
            checkpoints += 1;
            checkpoint_time += report.elapsed;
            (events_time, state_time) = (events_time + report.events_elapsed, state_time + report.state_elapsed);
            count_file(&report);
            if first_end.is_some() {
                steady_checkpoint_time += report.elapsed;
            }
            let end = (Instant::now(), offset + 1);
            first_end.get_or_insert(end);
            last_end = Some(end);
        }
    }
    let report = tokio::task::block_in_place(|| engine.checkpoint(&mut TableOnly, true))?;
    checkpoints += 1;
    checkpoint_time += report.elapsed;
    (events_time, state_time) = (events_time + report.events_elapsed, state_time + report.state_elapsed);
    count_file(&report);
    let total = started.elapsed();
    let processing = total - checkpoint_time;
    let times = engine.stage_times.unwrap_or_default();
    let n = messages.len() as f64;
    let (base, dedup) = engine.members().memory_bytes();
    let members = engine.members().len().max(1) as f64;
    println!("bench: {} messages ({:.0} bytes avg), {} members", messages.len(), bytes as f64 / n, engine.members().len());
    println!("  core end to end (process + checkpoint + Parquet): {:.0} events/s on one core", n / total.as_secs_f64());
    println!("  process only: {:.0} events/s", n / processing.as_secs_f64());
    if let (Some((t0, n0)), Some((t1, n1))) = (first_end, last_end) {
        if n1 > n0 {
            let (n, elapsed) = ((n1 - n0) as f64, t1 - t0);
            println!(
                "  steady state (after the first checkpoint, {} events): {:.0} events/s end to end, {:.0} process only",
                n1 - n0,
                n / elapsed.as_secs_f64(),
                n / (elapsed - steady_checkpoint_time).as_secs_f64()
            );
        }
    }
    println!(
        "  per event: decode+record {:.0} ns, dedup+state {:.0} ns, rollups+rows {:.0} ns; checkpoint+Parquet {:.0} ns \
         (events table {:.0} ns, state {:.0} ns, the rest {:.0} ns)",
        times.decode.as_nanos() as f64 / n,
        times.apply.as_nanos() as f64 / n,
        times.buffer.as_nanos() as f64 / n,
        checkpoint_time.as_nanos() as f64 / n,
        events_time.as_nanos() as f64 / n,
        state_time.as_nanos() as f64 / n,
        (checkpoint_time - events_time - state_time).as_nanos() as f64 / n,
    );
    println!("  checkpoints: {checkpoints} taking {checkpoint_time:.2?} in all; the last (with the members table) {:.2?}", report.elapsed);
    println!(
        "  checkpoint files: {} full snapshots (the last {} bytes, {:.0} bytes/member), {} deltas ({:.0} bytes on average)",
        files.0,
        files.1,
        files.1 as f64 / members,
        files.2,
        files.3 as f64 / files.2.max(1) as f64
    );
    println!(
        "  state per member: base {:.0} bytes, dedup {:.0} bytes; report rollups {:.0} bytes, scoring {:.0} bytes",
        base as f64 / members,
        dedup as f64 / members,
        engine.rollups().memory_bytes() as f64 / members,
        engine.scoring().memory_bytes() as f64 / members
    );
    if args.refresh {
        drop(messages);
        for label in ["first refresh (everyone enters)", "second refresh (re-score)"] {
            let started = Instant::now();
            let (ckpt, r) = tokio::task::block_in_place(|| engine.refresh(&mut TableOnly))?;
            println!(
                "  {label}: {:.2?} in all for {} members — scoring and staging {:.2?}, checkpoint file {} bytes; {} segment_changes rows",
                started.elapsed(),
                r.members,
                r.elapsed,
                ckpt.checkpoint_bytes,
                ckpt.segment_changes
            );
        }
    }
    let touched = if args.pretouch_mib > 0 { format!(" (with the {} MiB touched before the run)", args.pretouch_mib) } else { String::new() };
    println!("  peak RSS: {} MiB{touched}", peak_rss_kib() / 1024);
    println!("  files: events {}, dead_letters {}, members {}", engine.tables().file_count("events"), engine.tables().file_count("dead_letters"), engine.tables().file_count("members"));
    println!("  {}", engine.counters());
    Ok(())
}

/// VmHWM of this process, KiB.
pub fn peak_rss_kib() -> u64 {
    proc_kib("/proc/self/status", "VmHWM:").unwrap_or(0)
}

/// MemAvailable of the machine, MiB.
fn available_mib() -> Option<usize> {
    proc_kib("/proc/meminfo", "MemAvailable:").map(|kib| (kib / 1024) as usize)
}

/// The value of a `Key:   N kB` line of a /proc file, where there is one.
fn proc_kib(path: &str, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines().find(|l| l.starts_with(key))?.split_whitespace().nth(1)?.parse().ok()
}

/// Touches `mib` MiB of heap and frees it: blocks of 4 MiB, which the allocator (mimalloc)
/// hands out again in pieces, where one allocation of the whole went back to the kernel.
fn pretouch(mib: usize) {
    let blocks: Vec<Vec<u8>> = (0..mib.div_ceil(4)).map(|_| vec![1u8; 4 << 20]).collect();
    std::hint::black_box(&blocks);
}

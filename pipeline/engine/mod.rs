//! The run loop's core, shared by `run`, `backfill`, `demo` and `bench`: message bytes in,
//! member state, buffered table rows and dead letters out; `checkpoint` makes them durable
//! together with the offsets they reflect. Sync and source-agnostic: sources drive it.

mod lock;
mod scoring;
#[cfg(test)]
mod tests;

use std::path::Path;
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use tracing::{info, warn};

pub use lock::{DataDirLock, LockError};
pub use scoring::RefreshReport;

use crate::config::{ConfigError, MemberflowConfig};
use crate::crash;
use crate::event::{decode, DecodeLimits};
use crate::scoring::{RuleError, Scorer};
use crate::sink::tables::{TableError, DEAD_LETTERS, EVENTS, MEMBERS, MEMBER_STORE, SEGMENT_CHANGES, STORE_DAY};
use crate::sink::{rollups, schema, ChangesBuffer, DeadLetters, EventsBuffer, Origin, TableStore};
use crate::state::calendar::{date_to_day, day_to_date};
use crate::state::checkpoint::CheckpointError;
use crate::state::{Applied, BusinessCalendar, Checkpoint, Counters, Day, Hashes, Known, Manifest, StateRules};

/// Which day is "today" for windows and recency.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AsOf {
    /// The current day in the business time zone, read from the clock at each checkpoint.
    Today,
    /// A fixed day, for replays (`--as-of`).
    Fixed(chrono::NaiveDate),
    /// The latest as-of day the state was computed for (today for a new state): for
    /// commands that change no values, such as setting a manual tag.
    Latest,
}

/// One consumed message.
#[derive(Debug, Clone, Copy)]
pub struct Message<'a> {
    pub key: Option<&'a [u8]>,
    pub payload: &'a [u8],
    pub origin: Origin<'a>,
}

/// Receives an epoch's dead letters and segment changes, durably, before the checkpoint
/// that covers them commits (at-least-once: a crash in between sends them again).
pub trait OutputTopics {
    fn send(&mut self, letters: &DeadLetters, changes: Option<&RecordBatch>) -> Result<(), EngineError>;
}

/// No output topics: the tables only.
pub struct TableOnly;

impl OutputTopics for TableOnly {
    fn send(&mut self, _: &DeadLetters, _: Option<&RecordBatch>) -> Result<(), EngineError> {
        Ok(())
    }
}

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Lock(#[from] LockError),
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    #[error("table write failed: {0}")]
    Table(#[from] TableError),
    #[error("building table rows: {0}")]
    Arrow(#[from] arrow::error::ArrowError),
    #[error("--as-of: {0}")]
    AsOf(String),
    #[error("output topic: {0}")]
    OutputTopic(String),
    #[error(transparent)]
    Rules(#[from] RuleError),
}

/// What one checkpoint did.
#[derive(Debug, Clone, Default)]
pub struct CheckpointReport {
    pub epoch: u64,
    pub events_rows: usize,
    pub dead_letters: usize,
    pub files_written: usize,
    pub files_retired: usize,
    pub members_written: bool,
    /// Members re-classified because events changed them, and the changes recorded.
    pub members_rescored: usize,
    /// Manual tag requests read from the inbox (applied or refused).
    pub manual_requests: usize,
    pub segment_changes: usize,
    /// Size of the checkpoint file written: a full snapshot or a delta.
    pub checkpoint_bytes: u64,
    pub checkpoint_full: bool,
    pub elapsed: Duration,
    /// Of `elapsed`: writing the events table's files, and saving the state.
    pub events_elapsed: Duration,
    pub state_elapsed: Duration,
}

/// Time spent per stage, for the benchmark.
#[derive(Debug, Clone, Copy, Default)]
pub struct StageTimes {
    /// Decoding, and writing each event's events-table record (its content hashed there).
    pub decode: Duration,
    /// Prefetching the state, dedup and the state fold.
    pub apply: Duration,
    /// The rollups, and adding the applied events' records to their days.
    pub buffer: Duration,
}

pub struct Engine {
    config: MemberflowConfig,
    rules: StateRules,
    calendar: BusinessCalendar,
    min_event_time: i64,
    as_of: AsOf,
    clock: fn() -> i64,
    tables: TableStore,
    ckpt: Checkpoint,
    positions: Vec<(String, i32, i64)>,
    events: EventsBuffer,
    dead: DeadLetters,
    /// Rules and cut points of the latest refresh (none before the first).
    scorer: Option<Scorer>,
    dirty: scoring::Dirty,
    changes: ChangesBuffer,
    jobs: Vec<crate::job::Job>,
    since_checkpoint: u64,
    offset_jumps: u64,
    /// The ingest clock, read every [`CLOCK_EVERY`] messages.
    now: i64,
    since_clock: u64,
    last_checkpoint: Instant,
    last_members: Option<Instant>,
    /// Per-stage timing, only when asked for (it costs clock reads).
    pub stage_times: Option<StageTimes>,
    _lock: DataDirLock,
}

/// Messages between two readings of the ingest clock (it only stamps `ingested_at` and
/// bounds "absurdly in the future"; a few milliseconds of staleness do not matter).
const CLOCK_EVERY: u64 = 1024;
/// Messages decoded and prefetched together (see [`Engine::process_batch`]).
pub const BATCH: usize = 32;

pub fn wall_clock_micros() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

impl Engine {
    /// Locks the data directory, loads its checkpoint and finishes or discards whatever a
    /// crash left half done.
    pub fn open(config: &MemberflowConfig, as_of: AsOf, clock: fn() -> i64) -> Result<Self, EngineError> {
        config.validate()?;
        let dir = &config.data_dir;
        let lock = DataDirLock::acquire(dir)?;
        let ckpt = Checkpoint::load(dir)?;
        let tables = TableStore::new(dir, &config.tables);
        let discarded = tables.recover(ckpt.epoch, &ckpt.manifest)?;
        if ckpt.epoch > 0 {
            info!(
                epoch = ckpt.epoch,
                members = ckpt.members.len(),
                discarded_staging = discarded,
                "resumed from checkpoint ({})",
                ckpt.counters
            );
        }
        let positions = ckpt.offsets.iter().map(|((s, p), o)| (s.clone(), *p, *o)).collect();
        let scorer = ckpt.scoring.refresh.clone().map(Scorer::new).transpose()?;
        let engine = Self {
            rules: StateRules {
                window_days: config.state.window_days as i32,
                dedup_horizon_days: config.state.dedup_horizon_days as i32,
            },
            calendar: BusinessCalendar::new(config.time_zone()?),
            min_event_time: config.min_event_time()?,
            as_of,
            clock,
            tables,
            ckpt,
            positions,
            events: EventsBuffer::default(),
            dead: DeadLetters::default(),
            scorer,
            dirty: scoring::Dirty::default(),
            changes: ChangesBuffer::default(),
            jobs: Vec::new(),
            since_checkpoint: 0,
            offset_jumps: 0,
            now: clock(),
            since_clock: 0,
            last_checkpoint: Instant::now(),
            last_members: None,
            stage_times: None,
            config: config.clone(),
            _lock: lock,
        };
        engine.as_of_day()?;
        Ok(engine)
    }

    pub fn config(&self) -> &MemberflowConfig {
        &self.config
    }

    pub fn counters(&self) -> &Counters {
        &self.ckpt.counters
    }

    pub fn members(&self) -> &crate::state::MemberTable {
        &self.ckpt.members
    }

    pub fn rollups(&self) -> &crate::state::rollups::Rollups {
        &self.ckpt.rollups
    }

    pub fn scoring(&self) -> &crate::state::scoring::ScoringState {
        &self.ckpt.scoring
    }

    pub fn tables(&self) -> &TableStore {
        &self.tables
    }

    pub fn epoch(&self) -> u64 {
        self.ckpt.epoch
    }

    /// The next offset to read for a source partition, if this state has read it before.
    pub fn resume_offset(&self, source: &str, partition: i32) -> Option<i64> {
        self.positions.iter().find(|(s, p, _)| s == source && *p == partition).map(|(_, _, o)| *o)
    }

    /// Every source partition read so far, with the next offset to read.
    pub fn positions(&self) -> impl Iterator<Item = (&str, i32, i64)> + '_ {
        self.positions.iter().map(|(s, p, o)| (s.as_str(), *p, *o))
    }

    /// The as-of day now, checked against what the state has already been computed for.
    pub fn as_of_day(&self) -> Result<Day, EngineError> {
        let day = match self.as_of {
            AsOf::Today => self.calendar.today((self.clock)()),
            AsOf::Fixed(date) => date_to_day(date),
            AsOf::Latest if self.ckpt.members.as_of_high != Day::MIN => self.ckpt.members.as_of_high,
            AsOf::Latest => self.calendar.today((self.clock)()),
        };
        if day < self.ckpt.members.as_of_high {
            return Err(EngineError::AsOf(format!(
                "{} is before {}, the as-of day this data directory was already computed for; \
                 windows only move forward — replay into a fresh data directory instead",
                day_to_date(day),
                day_to_date(self.ckpt.members.as_of_high)
            )));
        }
        Ok(day)
    }

    /// Applies one message: decode, dedup, fold into the member state, buffer its row.
    pub fn process(&mut self, msg: &Message<'_>) {
        self.process_batch(std::slice::from_ref(msg));
    }

    /// Applies messages in order, with the same effect as [`Engine::process`] on each.
    /// Every [`BATCH`] messages are decoded first and their members' state is prefetched
    /// in passes (table slot, then row, then the row's lists), so the cache misses of one
    /// event overlap those of the next instead of adding up.
    pub fn process_batch(&mut self, msgs: &[Message<'_>]) {
        for chunk in msgs.chunks(BATCH) {
            self.process_chunk(chunk);
        }
    }

    fn process_chunk(&mut self, msgs: &[Message<'_>]) {
        self.since_clock += msgs.len() as u64;
        if self.since_clock >= CLOCK_EVERY {
            self.since_clock = 0;
            self.now = (self.clock)();
        }
        let now = self.now;
        let timed = self.stage_times.is_some();
        self.ckpt.counters.consumed += msgs.len() as u64;
        self.since_checkpoint += msgs.len() as u64;
        let limits = DecodeLimits {
            max_message_bytes: self.config.input.max_message_bytes,
            min_time: self.min_event_time,
            max_time: now.saturating_add(self.config.input.max_future.as_micros() as i64),
        };
        let t0 = timed.then(Instant::now);
        // Events as decoded, and beside them (not wrapped with them: a move of the event,
        // a few hundred bytes, per message) their day, id hash and the indices found.
        let mut decoded = Vec::with_capacity(msgs.len());
        let mut side = Vec::with_capacity(msgs.len());
        for msg in msgs {
            self.advance_position(msg.origin);
            // The key is compared with the member id when the event is applied; it may lie
            // apart from the payload (in the benchmark's source it always does).
            if let Some(key) = msg.key {
                crate::state::flat::prefetch_slice(key, 64);
            }
            decoded.push(decode(msg.payload, &limits));
            let (day, hashes, record) = match decoded.last() {
                Some(Ok(event)) => {
                    // Its events-table record, whose content part gives the content hash
                    // dedup compares (the fields copied once, not once more to be hashed).
                    let (record, content) = self.events.record(event, msg.origin, now);
                    let hashes = Hashes::with_content(event, content);
                    self.ckpt.members.ids.prefetch(hashes.member);
                    self.ckpt.members.seen.prefetch(hashes.event);
                    (self.calendar.day(event.occurred_at), hashes, record)
                }
                _ => (0, Hashes::default(), 0),
            };
            side.push((day, hashes, Known::default(), record));
        }
        let t1 = timed.then(Instant::now);
        // Second pass: the slots are (mostly) in cache; prefetch rows and rollup entries.
        // The member and store found are kept for applying (not looked up again).
        let mut rows = Vec::with_capacity(msgs.len());
        let mut purchases = Vec::with_capacity(msgs.len());
        for (decoded, (day, hashes, known, _)) in decoded.iter().zip(&mut side) {
            let Ok(event) = decoded else { continue };
            known.member = self.ckpt.members.prefetch(hashes.member, &event.member_id);
            if let Some(m) = known.member {
                if let Some(store) = self.prefetch_rollups(m, event, known) {
                    if event.kind == crate::event::EventType::Purchase {
                        purchases.push((m, store, *day));
                    }
                }
                rows.push((m, event.kind));
            }
        }
        // Third pass: the rows and member-store entries are in cache; prefetch the rows'
        // lists, and the month-buyer slots the purchases will look at.
        for &(m, kind) in &rows {
            self.ckpt.members.prefetch_lists(m, kind);
        }
        for &(m, store, day) in &purchases {
            self.ckpt.rollups.prefetch_month(m, store, day);
        }
        if let (Some(times), Some(t0), Some(t1)) = (self.stage_times.as_mut(), t0, t1) {
            times.decode += t1 - t0;
            times.apply += t1.elapsed();
        }
        // Then in stages over the chunk, each timed once: dedup and state in message order
        // (dead letters too), then the applied events' rollups, then their rows. Stages
        // commute: rollups are sums and sets, and the events table keeps message order.
        let t2 = timed.then(Instant::now);
        let mut applied = Vec::with_capacity(msgs.len());
        // By reference: moving each decoded event (a few hundred bytes) out of the vector
        // was a copy per message.
        for (k, ((msg, decoded), (day, hashes, known, _))) in msgs.iter().zip(&mut decoded).zip(&side).enumerate() {
            match decoded {
                Ok(event) => {
                    if let Some(m) = self.apply_decoded(msg, event, *hashes, *known, *day, now) {
                        applied.push((k, m));
                    }
                }
                Err(rejection) => {
                    let rejection = crate::event::Rejection { kind: rejection.kind, reason: std::mem::take(&mut rejection.reason) };
                    self.dead_letter(msg, rejection, None, None, now);
                }
            }
        }
        let t3 = timed.then(Instant::now);
        let scoring = self.scoring_active();
        for &(k, m) in &applied {
            let Ok(event) = &decoded[k] else { continue };
            self.roll_up(m, event, side[k].2.store, side[k].0);
            if scoring {
                self.dirty.mark(m, &event.event_id);
            }
        }
        for &(k, _) in &applied {
            self.events.push(side[k].0, side[k].3);
        }
        if let (Some(times), Some(t2), Some(t3)) = (self.stage_times.as_mut(), t2, t3) {
            times.apply += t3 - t2;
            times.buffer += t3.elapsed();
        }
    }

    /// Hints the CPU to load the member-store entry a purchase or refund will update, and
    /// sets `known.store` when the event names a known store; returns the entry's store
    /// index (`ONLINE` for none), `None` when there is no entry to load.
    fn prefetch_rollups(&self, member: u32, event: &crate::event::Event<'_>, known: &mut Known) -> Option<u32> {
        use crate::event::EventType;
        if !matches!(event.kind, EventType::Purchase | EventType::Refund) {
            return None;
        }
        let store = match event.store_id.as_deref() {
            Some(s) => {
                let found = self.ckpt.members.stores.find(s)?;
                known.store = Some(found);
                found
            }
            None => crate::state::rollups::ONLINE,
        };
        self.ckpt.rollups.member_stores.prefetch(crate::state::rollups::member_store_key(member, store));
        Some(store)
    }

    /// Dedup and state of one decoded event; the member's index when it was applied (its
    /// rollups and row still to do), else it was counted as a duplicate or dead-lettered.
    fn apply_decoded(&mut self, msg: &Message<'_>, event: &crate::event::Event<'_>, hashes: Hashes, known: Known, day: Day, now: i64) -> Option<u32> {
        if let Some(key) = msg.key {
            if key != event.member_id.as_bytes() {
                self.ckpt.counters.key_mismatches += 1;
                let n = self.ckpt.counters.key_mismatches;
                if n <= 10 || n.is_power_of_two() {
                    warn!(
                        key_mismatches = n,
                        source = msg.origin.source,
                        partition = msg.origin.partition,
                        offset = msg.origin.offset,
                        key = %String::from_utf8_lossy(key),
                        member_id = %event.member_id,
                        "message key differs from member_id; the body wins"
                    );
                }
            }
        }
        match self.ckpt.members.apply_hashed(event, hashes, known, day, &self.rules, now) {
            Applied::New(m) => {
                self.ckpt.counters.applied += 1;
                Some(m)
            }
            Applied::Duplicate => {
                self.ckpt.counters.duplicates += 1;
                None
            }
            Applied::Rejected(rejection) => {
                let (id, member) = (event.event_id.to_string(), event.member_id.to_string());
                self.dead_letter(msg, rejection, Some(&id), Some(&member), now);
                None
            }
        }
    }

    /// Stages the `member_store` rollup (written with the members table), in member order.
    fn stage_member_store(&self, epoch: u64) -> Result<(), EngineError> {
        let mut entries: Vec<(u32, u32, crate::state::rollups::MemberStore)> =
            self.ckpt.rollups.member_stores.iter().map(|(k, v)| ((k >> 32) as u32, k as u32, *v)).collect();
        entries.sort_unstable_by_key(|(m, s, _)| (*m, *s));
        let (ids, stores) = (&self.ckpt.members.ids, &self.ckpt.members.stores);
        let batches = entries
            .chunks(scoring::CHUNK)
            .map(|c| Ok(rollups::member_store_batch(c, |m| ids.get(m), |s| stores.get(s))?));
        self.tables.stage(epoch, &format!("{MEMBER_STORE}/member_store.parquet"), schema::member_store(), batches)?;
        Ok(())
    }

    /// Adds an applied purchase or refund to the epoch's store-day rollup.
    fn roll_up(&mut self, member: u32, event: &crate::event::Event<'_>, store: Option<u32>, day: Day) {
        use crate::event::EventType;
        if !matches!(event.kind, EventType::Purchase | EventType::Refund) {
            return;
        }
        let store = self.ckpt.members.store_of(event, store);
        let amount = event.amount.map_or(0, |a| a.0);
        match event.kind {
            EventType::Purchase => self.ckpt.rollups.purchase(member, store, day, amount),
            _ => self.ckpt.rollups.refund(member, store, day, amount),
        }
    }

    fn advance_position(&mut self, origin: Origin<'_>) {
        let next = origin.offset + 1;
        match self.positions.iter_mut().find(|(s, p, _)| *p == origin.partition && s == origin.source) {
            Some(entry) => {
                if origin.offset != entry.2 {
                    // Gaps are normal on compacted or transactional topics, and a rewind
                    // means the source re-delivered (dedup absorbs it); either is worth a
                    // line, since a broker that skips records loses data.
                    self.offset_jumps += 1;
                    if self.offset_jumps <= 10 || self.offset_jumps.is_power_of_two() {
                        warn!(
                            offset_jumps = self.offset_jumps,
                            source = origin.source,
                            partition = origin.partition,
                            expected = entry.2,
                            got = origin.offset,
                            "offset jump (gap or re-delivery)"
                        );
                    }
                }
                entry.2 = entry.2.max(next)
            }
            None => self.positions.push((origin.source.to_string(), origin.partition, next)),
        }
    }

    fn dead_letter(&mut self, msg: &Message<'_>, rejection: crate::event::Rejection, id: Option<&str>, member: Option<&str>, now: i64) {
        *self.ckpt.counters.dead_lettered.entry(rejection.kind).or_default() += 1;
        let n = self.ckpt.counters.dead_lettered_total();
        if n <= 20 || n.is_power_of_two() {
            warn!(
                dead_lettered = n,
                kind = rejection.kind.name(),
                source = msg.origin.source,
                partition = msg.origin.partition,
                offset = msg.origin.offset,
                "dead letter: {}",
                rejection.reason
            );
        }
        self.dead.push(msg.origin, msg.key, msg.payload, rejection, id, member, now);
    }

    /// Whether the checkpoint interval or size has been reached.
    pub fn checkpoint_due(&self) -> bool {
        let interval = self.last_checkpoint.elapsed() >= self.config.checkpoint.interval;
        (self.since_checkpoint > 0 && (interval || self.since_checkpoint >= self.config.checkpoint.max_events))
            || (interval && self.manual_requests_waiting())
    }

    /// Whether an operator's manual tag request waits in the inbox (checked once per
    /// checkpoint interval while no events flow).
    fn manual_requests_waiting(&self) -> bool {
        std::fs::read_dir(self.config.data_dir.join(crate::scoring::manual::INBOX))
            .is_ok_and(|mut d| d.any(|e| e.is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".json"))))
    }

    /// Whether the members table should be rewritten at this checkpoint of a long run.
    pub fn members_due(&self) -> bool {
        self.last_members.is_none_or(|t| t.elapsed() >= self.config.checkpoint.members_interval)
    }

    /// Makes everything since the last checkpoint durable: stage files, send dead letters,
    /// commit the checkpoint (state + offsets + manifest), publish the files.
    ///
    /// An error is fatal for this engine (its buffers were handed over): stop, and let the
    /// next `open` discard the epoch's staging and replay from the last checkpoint.
    pub fn checkpoint(&mut self, outputs: &mut dyn OutputTopics, write_members: bool) -> Result<CheckpointReport, EngineError> {
        Ok(self.commit(outputs, write_members, false)?.0)
    }

    /// A checkpoint that also refreshes: new cut points, every member re-scored, what moved
    /// recorded; the tables change atomically with the checkpoint, or not at all.
    pub fn refresh(&mut self, outputs: &mut dyn OutputTopics) -> Result<(CheckpointReport, RefreshReport), EngineError> {
        let (report, refresh) = self.commit(outputs, true, true)?;
        Ok((report, refresh.expect("a refresh was asked for")))
    }

    fn commit(
        &mut self,
        outputs: &mut dyn OutputTopics,
        write_members: bool,
        refresh: bool,
    ) -> Result<(CheckpointReport, Option<RefreshReport>), EngineError> {
        let started = Instant::now();
        let as_of = self.as_of_day()?;
        let epoch = self.ckpt.epoch + 1;
        let mut manifest = Manifest::default();
        let mut report = CheckpointReport { epoch, ..Default::default() };
        let mut touched = Vec::new();
        let events_started = Instant::now();
        let days = self.events.take_days();
        for &(day, ref records) in &days {
            report.events_rows += records.len();
            let dir = format!("{EVENTS}/dt={}", day_to_date(day));
            let rel = format!("{dir}/part-{epoch:010}.parquet");
            self.tables.stage_events(epoch, &rel, &self.events.records(&self.config.input.default_currency), records)?;
            manifest.publish.push(rel);
            touched.push((dir, schema::events()));
        }
        self.events.clear(days);
        report.events_elapsed = events_started.elapsed();
        let mut sums: Vec<_> = self.ckpt.rollups.epoch.drain().collect();
        sums.sort_unstable_by_key(|(key, _)| *key);
        if !sums.is_empty() {
            let rel = format!("{STORE_DAY}/part-{epoch:010}.parquet");
            let stores = &self.ckpt.members.stores;
            self.tables.stage(epoch, &rel, schema::store_day(), [Ok(rollups::to_batch(&sums, |s| stores.get(s))?)])?;
            manifest.publish.push(rel);
            touched.push((STORE_DAY.to_string(), schema::store_day()));
        }
        let dead = &self.dead;
        if !dead.is_empty() {
            report.dead_letters = dead.len();
            let rel = format!("{DEAD_LETTERS}/part-{epoch:010}.parquet");
            self.tables.stage(epoch, &rel, schema::dead_letters(), dead.batches().map(|b| Ok(b?)))?;
            manifest.publish.push(rel);
            touched.push((DEAD_LETTERS.to_string(), schema::dead_letters()));
        }
        self.ckpt.members.advance_as_of(as_of, self.rules.window_days).map_err(EngineError::AsOf)?;
        let now = (self.clock)();
        report.manual_requests = self.apply_manual_tags(epoch, as_of, now, &mut manifest.delete);
        report.members_rescored = self.score_changed(epoch, as_of, now)?;
        let refreshed = if refresh {
            let (refreshed, rel) = self.full_refresh(epoch, as_of, now)?;
            manifest.publish.push(rel);
            Some(refreshed)
        } else {
            if write_members {
                self.stage_members(epoch, as_of)?;
            }
            None
        };
        if write_members || refresh {
            self.stage_member_store(epoch)?;
            manifest.publish.push(format!("{MEMBER_STORE}/member_store.parquet"));
            manifest.publish.push(format!("{MEMBERS}/members.parquet"));
            report.members_written = true;
            self.last_members = Some(Instant::now());
        }
        let changes = self.changes.take()?;
        if let Some(batch) = &changes {
            report.segment_changes = batch.num_rows();
            let rel = format!("{SEGMENT_CHANGES}/part-{epoch:010}.parquet");
            self.tables.stage(epoch, &rel, schema::segment_changes(), [Ok(batch.clone())])?;
            manifest.publish.push(rel);
            touched.push((SEGMENT_CHANGES.to_string(), schema::segment_changes()));
        }
        for (dir, schema) in touched {
            if let Some((rel, retired)) = self.tables.compact(epoch, &dir, schema)? {
                manifest.publish.push(rel);
                manifest.delete.extend(retired);
            }
        }
        self.tables.sync()?;
        crash::point("after_stage");
        crash::point("before_dead_letter_produce");
        outputs.send(&self.dead, changes.as_ref())?;
        self.dead.clear();
        crash::point("after_dead_letter_produce");
        report.files_written = manifest.publish.len();
        report.files_retired = manifest.delete.len();
        self.ckpt.epoch = epoch;
        self.ckpt.offsets = self.positions.iter().map(|(s, p, o)| ((s.clone(), *p), *o)).collect();
        self.ckpt.manifest = manifest;
        let state_started = Instant::now();
        let saved = self.ckpt.save(&self.config.data_dir, refresh)?;
        report.state_elapsed = state_started.elapsed();
        (report.checkpoint_bytes, report.checkpoint_full) = (saved.bytes, saved.full);
        crash::point("after_checkpoint");
        self.tables.publish(epoch, &self.ckpt.manifest)?;
        self.since_checkpoint = 0;
        self.last_checkpoint = Instant::now();
        report.elapsed = started.elapsed();
        info!(
            epoch,
            events_rows = report.events_rows,
            dead_letters = report.dead_letters,
            files_written = report.files_written,
            files_retired = report.files_retired,
            members_written = report.members_written,
            members_rescored = report.members_rescored,
            segment_changes = report.segment_changes,
            checkpoint_bytes = report.checkpoint_bytes,
            checkpoint_full = report.checkpoint_full,
            elapsed_ms = report.elapsed.as_millis() as u64,
            "checkpoint committed ({})",
            self.ckpt.counters
        );
        Ok((report, refreshed))
    }

    /// Where the checkpoint lives.
    pub fn data_dir(&self) -> &Path {
        &self.config.data_dir
    }
}

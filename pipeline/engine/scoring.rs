//! The engine's scoring: members changed in an epoch are re-classified at its checkpoint
//! (cut points and rules of the latest refresh); a refresh re-scores everyone with new cut
//! points. Both record what moved in `segment_changes`, committed with the checkpoint.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use arrow::array::RecordBatch;
use tracing::{info, warn};

use super::{OutputTopics, Engine, EngineError};
use crate::job::{Job, JobKind};
use crate::scoring::manual::{self, TagOp};
use crate::scoring::{changes::diff, refresh, Change, Labels, Moves, Scorer};
use crate::sink::tables::MEMBERS;
use crate::sink::{members, rfm_thresholds, schema, Cause};
use crate::state::scoring::{Class, RefreshRecord};
use crate::state::Day;

/// Members per Arrow batch when the whole table is rendered.
pub(super) const CHUNK: usize = 256 * 1024;

/// Members changed since the last checkpoint, each with the last event applied to it.
#[derive(Default)]
pub(super) struct Dirty {
    last_event: hashbrown::HashMap<u32, String>,
}

impl Dirty {
    pub(super) fn mark(&mut self, member: u32, event_id: &str) {
        let id = self.last_event.entry(member).or_default();
        id.clear();
        id.push_str(event_id);
    }

    fn take_sorted(&mut self) -> Vec<(u32, String)> {
        let mut v: Vec<_> = self.last_event.drain().collect();
        v.sort_unstable_by_key(|(m, _)| *m);
        v
    }
}

/// What a refresh did.
#[derive(Debug, Clone)]
pub struct RefreshReport {
    pub refresh: RefreshRecord,
    pub members: usize,
    /// Entered/exited per segment and tag.
    pub moves: Moves,
    /// Members per segment and per tag after the refresh.
    pub segment_counts: BTreeMap<String, u64>,
    pub tag_counts: BTreeMap<String, u64>,
    pub elapsed: Duration,
}

impl Engine {
    /// The scheduled jobs this engine fires (only the long-running `run` sets them).
    pub fn set_jobs(&mut self, jobs: Vec<Job>) {
        for j in &jobs {
            info!(job = %j.name, file = %j.file.display(), "scheduled job loaded");
        }
        self.jobs = jobs;
    }

    /// A job whose scheduled time has passed since it last fired, with that time.
    pub fn due_job(&self) -> Option<(usize, i64)> {
        let now = (self.clock)();
        self.jobs.iter().enumerate().find_map(|(k, j)| j.due(now, self.ckpt.scoring.last_fired(&j.name)).map(|at| (k, at)))
    }

    /// Runs job `k` for its scheduled time `at`; when it fired is committed with its effect.
    pub fn run_job(&mut self, outputs: &mut dyn OutputTopics, k: usize, at: i64) -> Result<RefreshReport, EngineError> {
        let job = self.jobs[k].clone();
        info!(job = %job.name, scheduled_at = at, "running scheduled job");
        self.ckpt.scoring.set_last_fired(&job.name, at);
        match job.kind {
            JobKind::Refresh => Ok(self.refresh(outputs)?.1),
        }
    }

    /// Whether members are classified yet (after the first refresh).
    pub(super) fn scoring_active(&self) -> bool {
        self.scorer.is_some()
    }

    fn labels(&self) -> Labels {
        self.scorer.as_ref().map(|s| s.rules.labels()).unwrap_or_default()
    }

    /// Re-classifies the members the epoch changed, recording changes caused by events.
    pub(super) fn score_changed(&mut self, epoch: u64, as_of: Day, now: i64) -> Result<usize, EngineError> {
        let dirty = self.dirty.take_sorted();
        let Some(scorer) = &self.scorer else { return Ok(0) };
        let labels = scorer.rules.labels();
        let table = &self.ckpt.members;
        let classes = &mut self.ckpt.scoring.classes;
        classes.resize(table.len(), Class::default());
        let mut out = Vec::new();
        for chunk in dirty.chunks(CHUNK) {
            let ids = chunk.iter().map(|(m, _)| *m as usize);
            let values = members::values_batch(table, ids, as_of, self.rules.window_days, &self.calendar)?;
            let new = scorer.classify(&values, now)?;
            for ((m, event_id), new) in chunk.iter().zip(new) {
                let old = &mut classes[*m as usize];
                out.clear();
                diff(old, &labels, &new, &labels, &mut out);
                for change in &out {
                    let member = table.ids.get(*m);
                    self.changes.push(member, change, Cause::Event(event_id), Some(scorer.refresh.id), now, as_of, epoch);
                }
                *old = new;
            }
        }
        Ok(dirty.len())
    }

    /// Computes new cut points and statistics from every member, re-classifies everyone,
    /// records what moved and stages `rfm_thresholds` and the members table.
    pub(super) fn full_refresh(&mut self, epoch: u64, as_of: Day, now: i64) -> Result<(RefreshReport, String), EngineError> {
        let started = Instant::now();
        let table = &self.ckpt.members;
        let n = table.len();
        let window = self.rules.window_days;
        let values: Vec<RecordBatch> = (0..n.div_ceil(CHUNK))
            .map(|c| members::values_batch(table, c * CHUNK..((c + 1) * CHUNK).min(n), as_of, window, &self.calendar))
            .collect::<Result<_, _>>()?;
        let id = self.ckpt.scoring.refresh.as_ref().map_or(1, |r| r.id + 1);
        let record = refresh::compute(&self.config.scoring, &values, id, as_of, now)?;
        let scorer = Scorer::new(record.clone())?;
        let (old_labels, new_labels) = (self.labels(), scorer.rules.labels());
        let classes = &mut self.ckpt.scoring.classes;
        classes.resize(n, Class::default());
        let mut moves = Moves::default();
        let mut out: Vec<Change<'_>> = Vec::new();
        for (c, batch) in values.iter().enumerate() {
            let new = scorer.classify(batch, now)?;
            for (k, new) in new.into_iter().enumerate() {
                let m = c * CHUNK + k;
                out.clear();
                diff(&classes[m], &old_labels, &new, &new_labels, &mut out);
                for change in &out {
                    moves.count(change);
                    self.changes.push(table.ids.get(m as u32), change, Cause::Refresh, Some(id), now, as_of, epoch);
                }
                classes[m] = new;
            }
        }
        let (mut segment_counts, mut tag_counts) = (BTreeMap::new(), BTreeMap::new());
        for c in classes.iter() {
            if c.segment > 0 {
                *segment_counts.entry(new_labels.segments[c.segment as usize - 1].clone()).or_default() += 1;
            }
            for (k, t) in new_labels.tags.iter().enumerate() {
                if c.tags >> k & 1 == 1 {
                    *tag_counts.entry(t.clone()).or_default() += 1;
                }
            }
        }
        let rel = format!("rfm_thresholds/refresh-{id:010}.parquet");
        self.tables.stage(epoch, &rel, schema::rfm_thresholds(), [Ok(rfm_thresholds::to_batch(&record)?)])?;
        let scoring = &self.ckpt.scoring;
        let batches = values.iter().enumerate().map(|(c, v)| {
            let ids = c * CHUNK..c * CHUNK + v.num_rows();
            Ok(members::table_batch(v, ids, scoring, &new_labels)?)
        });
        self.tables.stage(epoch, &format!("{MEMBERS}/members.parquet"), schema::members(), batches)?;
        self.ckpt.scoring.refresh = Some(record.clone());
        self.scorer = Some(scorer);
        let report = RefreshReport { refresh: record, members: n, moves, segment_counts, tag_counts, elapsed: started.elapsed() };
        info!(refresh_id = id, members = n, elapsed_ms = report.elapsed.as_millis() as u64, "refresh computed");
        Ok((report, rel))
    }

    /// Applies the operators' pending manual tag requests; their files are deleted by this
    /// epoch's manifest, so each is applied once. Returns how many were read.
    pub(super) fn apply_manual_tags(&mut self, epoch: u64, as_of: Day, now: i64, delete: &mut Vec<String>) -> usize {
        let pending = manual::pending(&self.config.data_dir);
        let refresh = self.ckpt.scoring.refresh.as_ref().map(|r| r.id);
        for (rel, request) in &pending {
            let applied = request.as_ref().map_err(Clone::clone).and_then(|r| {
                let m = self.ckpt.members.ids.find(&r.member_id).ok_or_else(|| format!("unknown member {:?}", r.member_id))?;
                let add = r.op == TagOp::Add;
                if self.ckpt.scoring.set_manual(m, &r.tag, add, &r.reason, r.requested_at) {
                    let change = Change {
                        attribute: "manual_tag",
                        old: (!add).then_some(r.tag.as_str()),
                        new: add.then_some(r.tag.as_str()),
                    };
                    self.changes.push(&r.member_id, &change, Cause::Manual(&r.reason), refresh, now, as_of, epoch);
                }
                Ok(())
            });
            match applied {
                Ok(()) => info!(file = %rel, "manual tag request applied"),
                Err(problem) => warn!(file = %rel, "manual tag request not applied: {problem}"),
            }
            delete.push(rel.clone());
        }
        pending.len()
    }

    /// Stages the members table with each member's stored classification.
    pub(super) fn stage_members(&self, epoch: u64, as_of: Day) -> Result<(), EngineError> {
        let table = &self.ckpt.members;
        let n = table.len();
        let labels = self.labels();
        let window = self.rules.window_days;
        let batches = (0..n.div_ceil(CHUNK).max(1)).map(|c| {
            let range = c * CHUNK..((c + 1) * CHUNK).min(n);
            let values = members::values_batch(table, range.clone(), as_of, window, &self.calendar)?;
            Ok(members::table_batch(&values, range, &self.ckpt.scoring, &labels)?)
        });
        self.tables.stage(epoch, &format!("{MEMBERS}/members.parquet"), schema::members(), batches)?;
        Ok(())
    }
}

impl std::fmt::Display for RefreshReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let r = &self.refresh;
        writeln!(
            f,
            "refresh {} as of {}: {} members, {} with a purchase (scored), {:.2?}",
            r.id,
            crate::state::calendar::day_to_date(r.as_of),
            self.members,
            r.scored_population,
            self.elapsed
        )?;
        let cuts = |c: [i128; 4], scale: i8| c.map(|v| hundredths_text(v, scale)).join(" / ");
        writeln!(f, "  cut points c1..c4 ({:?}):", r.config.mode)?;
        writeln!(f, "    recency_days  {}", cuts(r.cuts.recency, 0))?;
        writeln!(f, "    frequency     {}", cuts(r.cuts.frequency, 0))?;
        writeln!(f, "    monetary      {}", cuts(r.cuts.monetary, 2))?;
        for (s, v) in r.config.stats.iter().zip(&r.stats) {
            let scale = crate::scoring::rules::numeric_column_scale(&s.column).unwrap_or(0);
            let value = v.value.map_or("null".into(), |x| hundredths_text(x, scale));
            writeln!(f, "  statistic {} = {value} (p{} of {} over {} members)", v.name, s.percentile, s.column, v.population_size)?;
        }
        writeln!(f, "  {:<22} {:>10} {:>10} {:>10}", "segment", "members", "entered", "exited")?;
        for seg in &r.config.segments {
            let (entered, exited) = self.moves.segments.get(&seg.name).copied().unwrap_or_default();
            let now = self.segment_counts.get(&seg.name).copied().unwrap_or_default();
            writeln!(f, "  {:<22} {now:>10} {entered:>10} {exited:>10}", seg.name)?;
        }
        writeln!(f, "  {:<22} {:>10} {:>10} {:>10}", "tag", "members", "entered", "exited")?;
        let mut names: Vec<&String> = r.config.tags.iter().map(|t| &t.name).collect();
        // Tags that left the rules still show their exits.
        names.extend(self.moves.tags.keys().filter(|k| !r.config.tags.iter().any(|t| &t.name == *k)));
        for name in names {
            let (entered, exited) = self.moves.tags.get(name).copied().unwrap_or_default();
            let now = self.tag_counts.get(name).copied().unwrap_or_default();
            writeln!(f, "  {name:<22} {now:>10} {entered:>10} {exited:>10}")?;
        }
        Ok(())
    }
}

/// Hundredths of a unit with `scale` decimal places, as text in that unit ("12.35").
fn hundredths_text(v: i128, scale: i8) -> String {
    let places = (scale + 2) as u32;
    let div = 10i128.pow(places);
    let sign = if v < 0 { "-" } else { "" };
    let (whole, frac) = (v.abs() / div, v.abs() % div);
    let frac = format!("{frac:0width$}", width = places as usize);
    let frac = frac.trim_end_matches('0');
    if frac.is_empty() { format!("{sign}{whole}") } else { format!("{sign}{whole}.{frac}") }
}

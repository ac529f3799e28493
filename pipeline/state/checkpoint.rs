//! The checkpoint: member state, counters, the source offsets it reflects and the files its
//! epoch publishes.
//!
//! On disk: a full snapshot (`checkpoint.bin`) and the deltas written after it
//! (`checkpoint.delta-<epoch>.bin`: the rows, classes and rollup entries changed in that
//! epoch; see [`super::delta`]). Each file is written to a temporary name and renamed into
//! place, which is its commit. A new snapshot is written when the deltas since the last
//! one add up to its size (so loading reads at most about twice the state), and at most
//! every [`MAX_DELTAS`] checkpoints; it retires the deltas.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use super::codec::{exact, Corrupt, Decoder, Encoder};
use super::counters::Counters;
use super::dedup::Seen;
use super::lists::{raw_bytes, Lists};
use super::members::{DayBucket, Member, MemberTable, Profile, StoreDay};
use super::rollups::{MemberStore, Rollups};
use super::scoring::{Class, ManualTag, RefreshRecord, ScoringState, StatValue};
use crate::scoring::cuts::Cuts;
use crate::crash;
use crate::direct_file::DirectFile;
use crate::event::RejectKind;

/// Snapshots whose remembered ids follow the members' rows and profiles, in the table's
/// order, instead of a list in each row.
const MAGIC: &[u8; 8] = b"MFCKPT05";
/// Snapshots with each member's remembered ids in its row (still read).
const MAGIC_LISTS: &[u8; 8] = b"MFCKPT04";
pub const FILE_NAME: &str = "checkpoint.bin";
const DELTA_PREFIX: &str = "checkpoint.delta-";
/// Checkpoints between two full snapshots, at most.
pub const MAX_DELTAS: u32 = 64;

/// Where reading resumes: source (topic or file) and partition -> next offset to read.
pub type Offsets = BTreeMap<(String, i32), i64>;

/// Files an epoch publishes (staged, relative to the data directory) and retires.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Manifest {
    pub publish: Vec<String>,
    pub delete: Vec<String>,
}

#[derive(Debug, Default)]
pub struct Checkpoint {
    /// Epochs count checkpoints; files of epoch n are named with n.
    pub epoch: u64,
    pub offsets: Offsets,
    pub counters: Counters,
    pub manifest: Manifest,
    pub members: MemberTable,
    pub scoring: ScoringState,
    pub rollups: Rollups,
    /// What the files on disk hold (not itself saved).
    pub(super) disk: OnDisk,
}

/// The snapshot and deltas on disk.
#[derive(Debug, Clone, Default)]
pub(super) struct OnDisk {
    pub snapshot_bytes: u64,
    pub delta_bytes: u64,
    pub deltas: u32,
    /// Member and store ids already saved (a delta adds the ones after).
    pub ids: usize,
    pub stores: usize,
}

/// What one save wrote.
#[derive(Debug, Clone, Copy)]
pub struct Saved {
    pub bytes: u64,
    /// A full snapshot (else a delta).
    pub full: bool,
}

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("cannot write checkpoint {path}: {source}")]
    Write { path: PathBuf, source: io::Error },
    #[error("cannot read checkpoint {path}: {source}")]
    Read { path: PathBuf, source: io::Error },
    #[error("checkpoint {path}: {source}")]
    Corrupt { path: PathBuf, source: Corrupt },
}

impl Checkpoint {
    pub fn empty() -> Self {
        Self { members: MemberTable::new(), ..Default::default() }
    }

    /// Saves the state: a delta of what changed since the last save (with every member's
    /// classification when `reclassified`, after a refresh), or a full snapshot when due.
    pub fn save(&mut self, dir: &Path, reclassified: bool) -> Result<Saved, CheckpointError> {
        let d = &self.disk;
        // A delta adds remembered ids; ids forgotten since the last checkpoint need a snapshot.
        let full = d.snapshot_bytes == 0 || d.delta_bytes >= d.snapshot_bytes || d.deltas >= MAX_DELTAS || self.members.seen.forgot();
        let bytes = if full {
            let bytes = write_atomically(dir, FILE_NAME, |e| self.encode(e))?;
            for (_, path) in delta_files(dir).map_err(|source| CheckpointError::Write { path: dir.into(), source })? {
                let _ = fs::remove_file(path);
            }
            self.disk = OnDisk { snapshot_bytes: bytes, ..OnDisk::default() };
            bytes
        } else {
            // The delta lists each touched entry once, in order.
            let touched = &mut self.rollups.touched_member_stores;
            touched.sort_unstable();
            touched.dedup();
            let name = delta_name(self.epoch);
            let bytes = write_atomically(dir, &name, |e| super::delta::encode(self, reclassified, e))?;
            self.disk.delta_bytes += bytes;
            self.disk.deltas += 1;
            bytes
        };
        remove_temporaries(dir);
        self.disk.ids = self.members.ids.len();
        self.disk.stores = self.members.stores.len();
        self.members.changed.clear();
        self.members.seen.saved();
        self.rollups.new_month_buyers.clear();
        self.rollups.touched_member_stores.clear();
        Ok(Saved { bytes, full })
    }

    /// Loads the snapshot and the deltas after it, or an empty checkpoint when there is
    /// none yet.
    pub fn load(dir: &Path) -> Result<Self, CheckpointError> {
        let path = dir.join(FILE_NAME);
        let read = |path: &Path| fs::read(path).map_err(|source| CheckpointError::Read { path: path.into(), source });
        let corrupt = |path: &Path| {
            let path = path.to_path_buf();
            move |source| CheckpointError::Corrupt { path, source }
        };
        let deltas = delta_files(dir).map_err(|source| CheckpointError::Read { path: dir.into(), source })?;
        let mut ckpt = match read(&path) {
            Ok(bytes) => {
                let mut ckpt = Self::decode(&bytes).map_err(corrupt(&path))?;
                ckpt.disk.snapshot_bytes = bytes.len() as u64;
                ckpt
            }
            Err(CheckpointError::Read { source, .. }) if source.kind() == io::ErrorKind::NotFound => {
                if let Some((_, delta)) = deltas.first() {
                    return Err(corrupt(delta)(Corrupt(format!("a delta without the snapshot {FILE_NAME}"))));
                }
                return Ok(Self::empty());
            }
            Err(e) => return Err(e),
        };
        for (epoch, delta) in deltas {
            if epoch <= ckpt.epoch {
                continue; // retired by the snapshot; a crash left it behind
            }
            if epoch != ckpt.epoch + 1 {
                return Err(corrupt(&delta)(Corrupt(format!("the delta of epoch {} is missing", ckpt.epoch + 1))));
            }
            let bytes = read(&delta)?;
            super::delta::apply(&mut ckpt, &bytes).map_err(corrupt(&delta))?;
            ckpt.disk.delta_bytes += bytes.len() as u64;
            ckpt.disk.deltas += 1;
        }
        if ckpt.disk.deltas > 0 {
            ckpt.members.drop_below_floor();
        }
        ckpt.disk.ids = ckpt.members.ids.len();
        ckpt.disk.stores = ckpt.members.stores.len();
        Ok(ckpt)
    }

    fn encode<W: io::Write>(&self, e: &mut Encoder<W>) -> io::Result<()> {
        self.encode_as(e, None)
    }

    /// A snapshot; of the format MFCKPT04 when `ids_in_rows` gives each row's remembered
    /// ids (for the test that such a snapshot still loads).
    fn encode_as<W: io::Write>(&self, e: &mut Encoder<W>, ids_in_rows: Option<&[Vec<Seen>]>) -> io::Result<()> {
        e.bytes(if ids_in_rows.is_some() { MAGIC_LISTS } else { MAGIC })?;
        self.encode_header(e)?;
        encode_members(&self.members, e, ids_in_rows)?;
        encode_scoring(&self.scoring, e)?;
        encode_rollups(&self.rollups, e)
    }

    /// Writes the snapshot as memberflow did before MFCKPT05, each member's remembered ids
    /// in its row.
    #[cfg(test)]
    pub(super) fn write_format_04(&self, dir: &Path) -> Result<u64, CheckpointError> {
        let ids = self.members.seen_by_row();
        write_atomically(dir, FILE_NAME, |e| self.encode_as(e, Some(&ids)))
    }

    /// Epoch, offsets, counters and manifest: the part every file repeats in full.
    pub(super) fn encode_header<W: io::Write>(&self, e: &mut Encoder<W>) -> io::Result<()> {
        e.u64(self.epoch)?;
        e.u64(self.offsets.len() as u64)?;
        for ((source, partition), offset) in &self.offsets {
            e.str(source)?;
            e.i32(*partition)?;
            e.i64(*offset)?;
        }
        let c = &self.counters;
        for v in [c.consumed, c.applied, c.duplicates, c.key_mismatches] {
            e.u64(v)?;
        }
        for kind in RejectKind::ALL {
            e.u64(c.dead_lettered.get(&kind).copied().unwrap_or(0))?;
        }
        for list in [&self.manifest.publish, &self.manifest.delete] {
            e.u64(list.len() as u64)?;
            for p in list {
                e.str(p)?;
            }
        }
        Ok(())
    }

    fn decode(bytes: &[u8]) -> Result<Self, Corrupt> {
        let mut d = Decoder::new(bytes)?;
        let magic = d.bytes(8)?;
        let ids_apart = magic == MAGIC;
        if magic.starts_with(b"MFCKPT") && !ids_apart && magic != MAGIC_LISTS {
            return Err(Corrupt(format!(
                "format {} of an older memberflow; replay into a fresh data directory",
                String::from_utf8_lossy(&magic[6..])
            )));
        }
        if !ids_apart && magic != MAGIC_LISTS {
            return Err(Corrupt("not a memberflow checkpoint (bad magic)".into()));
        }
        let mut ckpt = Self::empty();
        ckpt.decode_header(&mut d)?;
        ckpt.members = decode_members(&mut d, ids_apart)?;
        ckpt.scoring = decode_scoring(&mut d, ckpt.members.len())?;
        ckpt.rollups = decode_rollups(&mut d)?;
        if !d.at_end() {
            return Err(Corrupt("trailing bytes after the rollups".into()));
        }
        Ok(ckpt)
    }

    pub(super) fn decode_header(&mut self, d: &mut Decoder<'_>) -> Result<(), Corrupt> {
        let epoch = d.u64()?;
        let mut offsets = Offsets::new();
        for _ in 0..d.len()? {
            let source = d.str()?.to_string();
            let partition = d.i32()?;
            offsets.insert((source, partition), d.i64()?);
        }
        let mut counters = Counters {
            consumed: d.u64()?,
            applied: d.u64()?,
            duplicates: d.u64()?,
            key_mismatches: d.u64()?,
            ..Default::default()
        };
        for kind in RejectKind::ALL {
            let n = d.u64()?;
            if n > 0 {
                counters.dead_lettered.insert(kind, n);
            }
        }
        let mut lists = [Vec::new(), Vec::new()];
        for list in &mut lists {
            for _ in 0..d.len()? {
                list.push(d.str()?.to_string());
            }
        }
        let [publish, delete] = lists;
        (self.epoch, self.offsets, self.counters, self.manifest) = (epoch, offsets, counters, Manifest { publish, delete });
        Ok(())
    }
}

/// Writes `dir/name` through a temporary file, fsynced, renamed into place; its size.
fn write_atomically(
    dir: &Path,
    name: &str,
    encode: impl FnOnce(&mut Encoder<DirectFile>) -> io::Result<()>,
) -> Result<u64, CheckpointError> {
    let path = dir.join(name);
    let tmp = dir.join(format!("{name}.tmp"));
    let err = |source| CheckpointError::Write { path: path.clone(), source };
    // Around the page cache: the file is read back only at a restart.
    let mut enc = Encoder::new(DirectFile::create(&tmp).map_err(err)?);
    encode(&mut enc).map_err(err)?;
    let size = enc.written + 8;
    let file = enc.finish().map_err(err)?.finish().map_err(err)?;
    file.sync_all().map_err(err)?;
    fs::rename(&tmp, &path).map_err(err)?;
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(size)
}

/// Deletes what a crash in the middle of writing a checkpoint file left (`*.tmp`): the
/// epoch it belonged to may be redone as the other kind of file, under another name.
fn remove_temporaries(dir: &Path) {
    for entry in fs::read_dir(dir).into_iter().flatten().flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if name.starts_with("checkpoint") && name.ends_with(".tmp") {
            let _ = fs::remove_file(entry.path());
        }
    }
}

fn delta_name(epoch: u64) -> String {
    format!("{DELTA_PREFIX}{epoch:010}.bin")
}

/// The delta files in `dir` by epoch, ascending.
fn delta_files(dir: &Path) -> io::Result<Vec<(u64, PathBuf)>> {
    let entries = match fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut files = Vec::new();
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let epoch = name.to_str().and_then(|n| n.strip_prefix(DELTA_PREFIX)?.strip_suffix(".bin")?.parse().ok());
        if let Some(epoch) = epoch {
            files.push((epoch, entry.path()));
        }
    }
    files.sort();
    Ok(files)
}

fn encode_members<W: io::Write>(m: &MemberTable, e: &mut Encoder<W>, ids_in_rows: Option<&[Vec<Seen>]>) -> io::Result<()> {
    e.i32(m.window_floor)?;
    e.i32(m.as_of_high)?;
    for interner in [&m.ids, &m.stores] {
        e.u64(interner.len() as u64)?;
        for s in interner.iter() {
            e.str(s)?;
        }
    }
    // Scalars column by column (they compress and read back as columns).
    let times: [fn(&Member) -> i64; 5] =
        [|r| r.signed_up_at, |r| r.first_purchase, |r| r.last_purchase, |r| r.newest_event, |r| r.updated_at];
    for get in times {
        e.i64s(m.rows.iter().map(get))?;
    }
    e.u32s(m.rows.iter().map(|r| r.purchases_total))?;
    e.u32s(m.rows.iter().map(|r| r.last_store))?;
    for i in 0..m.len() {
        if let Some(ahead) = m.rows.get(i + AHEAD) {
            ahead.lists.prefetch_all();
        }
        e.put(|buf| encode_lists(buf, &m.rows[i], ids_in_rows.map_or(&[], |ids| &ids[i])))?;
        if i == m.len() / 2 {
            e.flush()?;
            crash::point("mid_checkpoint");
        }
    }
    let profiles: Vec<(usize, &Profile)> =
        m.rows.iter().enumerate().filter_map(|(i, r)| r.profile.as_ref().map(|p| (i, p))).collect();
    e.u64(profiles.len() as u64)?;
    for (k, &(i, p)) in profiles.iter().enumerate() {
        // The row's pointer to the profile two steps ahead, the block of the one a step
        // ahead (its pointer prefetched the step before).
        if let Some(&(_, far)) = profiles.get(k + 2 * AHEAD) {
            super::flat::prefetch(far);
        }
        if let Some(&(_, near)) = profiles.get(k + AHEAD) {
            near.prefetch();
        }
        e.u64(i as u64)?;
        encode_profile(e, p)?;
    }
    match ids_in_rows {
        None => encode_ids(e, m.seen.entries()),
        Some(_) => Ok(()),
    }
}

/// Rows ahead of the one being encoded whose lists (and profiles) are prefetched: each
/// is a heap block of its own, a cache miss when reached.
pub(super) const AHEAD: usize = 8;

/// Bytes of one remembered id with its member: member, id hash, content, day.
const MEMBER_ID: usize = 20;

/// Remembered ids with their members: a count, then [`MEMBER_ID`] bytes each.
pub(super) fn encode_ids<W: io::Write>(e: &mut Encoder<W>, ids: impl ExactSizeIterator<Item = (u32, Seen)>) -> io::Result<()> {
    e.u64(ids.len() as u64)?;
    let mut ids = ids.peekable();
    while ids.peek().is_some() {
        e.put(|buf| {
            for (member, s) in ids.by_ref().take(4096) {
                let mut b = [0u8; MEMBER_ID];
                b[0..4].copy_from_slice(&member.to_le_bytes());
                b[4..12].copy_from_slice(&s.id_hash.to_le_bytes());
                b[12..16].copy_from_slice(&s.content.to_le_bytes());
                b[16..20].copy_from_slice(&s.day.to_le_bytes());
                buf.extend_from_slice(&b);
            }
        })?;
    }
    Ok(())
}

/// What [`encode_ids`] wrote, for a table of `members` members.
pub(super) fn decode_ids(d: &mut Decoder<'_>, members: usize) -> Result<Vec<(u32, Seen)>, Corrupt> {
    let k = d.len()?;
    let ids: Vec<(u32, Seen)> = d
        .bytes(k * MEMBER_ID)?
        .chunks_exact(MEMBER_ID)
        .map(|b| {
            let member = u32::from_le_bytes(b[0..4].try_into().unwrap());
            let seen = Seen {
                id_hash: u64::from_le_bytes(b[4..12].try_into().unwrap()),
                content: u32::from_le_bytes(b[12..16].try_into().unwrap()),
                day: i32::from_le_bytes(b[16..20].try_into().unwrap()),
            };
            (member, seen)
        })
        .collect();
    if let Some((member, _)) = ids.iter().find(|(member, _)| *member as usize >= members) {
        return Err(Corrupt(format!("a remembered id of member #{member} beyond {members} members")));
    }
    Ok(ids)
}

/// A member's window buckets, store days and remembered event ids (`seen`; none since
/// MFCKPT05 and MFDELT03, whose ids follow as [`encode_ids`] writes them).
pub(super) fn encode_lists(buf: &mut Vec<u8>, row: &Member, seen: &[Seen]) {
    let (window, store_days) = (row.lists.window(), row.lists.store_days());
    buf.reserve(12 + window.len() * 16 + store_days.len() * 8 + seen.len() * 16);
    buf.extend_from_slice(&(window.len() as u32).to_le_bytes());
    if cfg!(target_endian = "little") {
        // The entries' fields lie in memory as they are written: one copy per list
        // (entry by entry was most of a snapshot's encoding).
        buf.extend_from_slice(raw_bytes(window));
        buf.extend_from_slice(&(store_days.len() as u32).to_le_bytes());
        buf.extend_from_slice(raw_bytes(store_days));
        buf.extend_from_slice(&(seen.len() as u32).to_le_bytes());
        buf.extend_from_slice(raw_bytes(seen));
        return;
    }
    /// Appends one entry's fields, little-endian, with one copy into `buf`.
    fn entry<const N: usize>(buf: &mut Vec<u8>, parts: [&[u8]; 3]) {
        let mut bytes = [0u8; N];
        let mut at = 0;
        for part in parts {
            bytes[at..at + part.len()].copy_from_slice(part);
            at += part.len();
        }
        buf.extend_from_slice(&bytes[..at]);
    }
    for b in window {
        entry::<16>(buf, [&b.day.to_le_bytes(), &b.purchases.to_le_bytes(), &b.net.to_le_bytes()]);
    }
    buf.extend_from_slice(&(store_days.len() as u32).to_le_bytes());
    for s in store_days {
        entry::<8>(buf, [&s.store.to_le_bytes(), &s.day.to_le_bytes(), &[]]);
    }
    buf.extend_from_slice(&(seen.len() as u32).to_le_bytes());
    for s in seen {
        entry::<16>(buf, [&s.id_hash.to_le_bytes(), &s.content.to_le_bytes(), &s.day.to_le_bytes()]);
    }
}

/// Reads what [`encode_lists`] wrote into `row`'s lists; returns the remembered ids.
pub(super) fn decode_lists(d: &mut Decoder<'_>, row: &mut Member) -> Result<Vec<Seen>, Corrupt> {
    let k = d.u32()? as usize;
    let window: Vec<DayBucket> = d
        .bytes(k * 16)?
        .chunks_exact(16)
        .map(|c| DayBucket {
            day: i32::from_le_bytes(c[0..4].try_into().unwrap()),
            purchases: u32::from_le_bytes(c[4..8].try_into().unwrap()),
            net: i64::from_le_bytes(c[8..16].try_into().unwrap()),
        })
        .collect();
    let k = d.u32()? as usize;
    let store_days: Vec<StoreDay> = d
        .bytes(k * 8)?
        .chunks_exact(8)
        .map(|c| StoreDay {
            store: u32::from_le_bytes(c[0..4].try_into().unwrap()),
            day: i32::from_le_bytes(c[4..8].try_into().unwrap()),
        })
        .collect();
    let k = d.u32()? as usize;
    let seen = d
        .bytes(k * 16)?
        .chunks_exact(16)
        .map(|c| Seen {
            id_hash: u64::from_le_bytes(c[0..8].try_into().unwrap()),
            content: u32::from_le_bytes(c[8..12].try_into().unwrap()),
            day: i32::from_le_bytes(c[12..16].try_into().unwrap()),
        })
        .collect();
    row.lists = Lists::from_parts(&window, &store_days);
    Ok(seen)
}

pub(super) fn encode_profile<W: io::Write>(e: &mut Encoder<W>, p: &Profile) -> io::Result<()> {
    e.u64(p.len() as u64)?;
    for (k, v, t) in p.iter() {
        e.str(k)?;
        e.str(v)?;
        e.i64(t)?;
    }
    Ok(())
}

pub(super) fn decode_profile(d: &mut Decoder<'_>) -> Result<Profile, Corrupt> {
    let mut p = Profile::default();
    for _ in 0..d.len()? {
        let (k, v, t) = (d.str()?, d.str()?, d.i64()?);
        p.merge(k, v, t);
    }
    Ok(p)
}

/// The members; their remembered ids after the profiles (`ids_apart`, MFCKPT05) or in
/// their rows (MFCKPT04).
fn decode_members(d: &mut Decoder<'_>, ids_apart: bool) -> Result<MemberTable, Corrupt> {
    let mut m = MemberTable::new();
    m.window_floor = d.i32()?;
    m.as_of_high = d.i32()?;
    for interner in [&mut m.ids, &mut m.stores] {
        for _ in 0..d.len()? {
            interner.intern(d.str()?);
        }
    }
    let n = m.ids.len();
    let columns = [d.i64s()?, d.i64s()?, d.i64s()?, d.i64s()?, d.i64s()?];
    let (totals, last_stores) = (d.u32s()?, d.u32s()?);
    if columns.iter().any(|c| c.len() != n) || totals.len() != n || last_stores.len() != n {
        return Err(Corrupt("member columns disagree in length".into()));
    }
    let mut seen = Vec::with_capacity(n);
    for i in 0..n {
        let mut row = Member {
            signed_up_at: columns[0][i],
            first_purchase: columns[1][i],
            last_purchase: columns[2][i],
            newest_event: columns[3][i],
            updated_at: columns[4][i],
            purchases_total: totals[i],
            last_store: last_stores[i],
            ..Member::default()
        };
        seen.push((i as u32, decode_lists(d, &mut row)?));
        m.rows.push(row);
    }
    for _ in 0..d.len()? {
        let i = d.u64()? as usize;
        if i >= n {
            return Err(Corrupt(format!("profile of member #{i} beyond {n} members")));
        }
        m.rows[i].profile = Some(decode_profile(d)?);
    }
    if ids_apart {
        m.seen.restore_added(decode_ids(d, n)?);
    } else {
        m.seen.restore(seen);
    }
    Ok(m)
}

fn encode_scoring<W: io::Write>(s: &ScoringState, e: &mut Encoder<W>) -> io::Result<()> {
    encode_scoring_meta(s, e)?;
    let Some(r) = &s.refresh else {
        return e.u64(0);
    };
    encode_refresh(r, e)?;
    let packed: Vec<_> = s.classes.iter().map(pack_class).collect();
    e.u32s(packed.iter().map(|c| c.0))?;
    e.i64s(packed.iter().map(|c| c.1))?;
    e.i64s(packed.iter().map(|c| c.2))
}

/// Jobs' last firing and the manual tags (small: saved in full every time).
pub(super) fn encode_scoring_meta<W: io::Write>(s: &ScoringState, e: &mut Encoder<W>) -> io::Result<()> {
    e.u64(s.last_fired.len() as u64)?;
    for (job, at) in &s.last_fired {
        e.str(job)?;
        e.i64(*at)?;
    }
    e.u64(s.manual.len() as u64)?;
    for t in &s.manual {
        e.u64(t.member as u64)?;
        e.str(&t.tag)?;
        e.str(&t.reason)?;
        e.i64(t.set_at)?;
    }
    Ok(())
}

/// The refresh record, preceded by 1 (0 alone: none).
pub(super) fn encode_refresh<W: io::Write>(r: &RefreshRecord, e: &mut Encoder<W>) -> io::Result<()> {
    e.u64(1)?;
    e.u64(r.id)?;
    e.i32(r.as_of)?;
    e.i64(r.computed_at)?;
    e.str(&serde_json::to_string(&r.config).map_err(io::Error::other)?)?;
    for c in [r.cuts.recency, r.cuts.frequency, r.cuts.monetary].iter().flatten() {
        e.bytes(&c.to_le_bytes())?;
    }
    e.u64(r.scored_population)?;
    e.u64(r.stats.len() as u64)?;
    for st in &r.stats {
        e.str(&st.name)?;
        e.u64(st.value.is_some() as u64)?;
        e.bytes(&st.value.unwrap_or(0).to_le_bytes())?;
        e.u64(st.population_size)?;
    }
    Ok(())
}

fn decode_scoring(d: &mut Decoder<'_>, members: usize) -> Result<ScoringState, Corrupt> {
    let mut s = decode_scoring_meta(d, members)?;
    s.refresh = decode_refresh(d)?;
    if s.refresh.is_none() {
        return Ok(s);
    }
    let (packed, tags, scored_at) = (d.u32s()?, d.i64s()?, d.i64s()?);
    if packed.len() != tags.len() || tags.len() != scored_at.len() || packed.len() > members {
        return Err(Corrupt("member classes disagree in length".into()));
    }
    s.classes = packed.iter().zip(tags).zip(scored_at).map(|((p, t), at)| unpack_class(*p, t, at)).collect();
    Ok(s)
}

pub(super) fn pack_class(c: &Class) -> (u32, i64, i64) {
    (u32::from_le_bytes([c.r, c.f, c.m, c.segment]), c.tags as i64, c.scored_at)
}

pub(super) fn unpack_class(packed: u32, tags: i64, scored_at: i64) -> Class {
    let [r, f, m, segment] = packed.to_le_bytes();
    Class { r, f, m, segment, tags: tags as u64, scored_at }
}

/// Jobs and manual tags; no refresh and no classes yet.
pub(super) fn decode_scoring_meta(d: &mut Decoder<'_>, members: usize) -> Result<ScoringState, Corrupt> {
    let mut s = ScoringState::default();
    for _ in 0..d.len()? {
        let job = d.str()?.to_string();
        s.last_fired.push((job, d.i64()?));
    }
    for _ in 0..d.len()? {
        let member = d.u64()?;
        if member >= members as u64 {
            return Err(Corrupt(format!("manual tag of member #{member} beyond {members} members")));
        }
        let (tag, reason) = (d.str()?.to_string(), d.str()?.to_string());
        s.manual.push(ManualTag { member: member as u32, tag, reason, set_at: d.i64()? });
    }
    Ok(s)
}

pub(super) fn decode_refresh(d: &mut Decoder<'_>) -> Result<Option<RefreshRecord>, Corrupt> {
    if d.u64()? == 0 {
        return Ok(None);
    }
    let (id, as_of, computed_at) = (d.u64()?, d.i32()?, d.i64()?);
    let config = serde_json::from_str(d.str()?).map_err(|e| Corrupt(format!("refresh rules: {e}")))?;
    let mut cuts = [0i128; 12];
    for c in &mut cuts {
        *c = i128::from_le_bytes(d.bytes(16)?.try_into().unwrap());
    }
    let part = |k: usize| -> [i128; 4] { cuts[k * 4..k * 4 + 4].try_into().unwrap() };
    let cuts = Cuts { recency: part(0), frequency: part(1), monetary: part(2) };
    let scored_population = d.u64()?;
    let mut stats = Vec::new();
    for _ in 0..d.len()? {
        let name = d.str()?.to_string();
        let has = d.u64()? == 1;
        let v = i128::from_le_bytes(d.bytes(16)?.try_into().unwrap());
        stats.push(StatValue { name, value: has.then_some(v), population_size: d.u64()? });
    }
    Ok(Some(RefreshRecord { id, as_of, computed_at, config, cuts, scored_population, stats }))
}

fn encode_rollups<W: io::Write>(r: &Rollups, e: &mut Encoder<W>) -> io::Result<()> {
    // Straight from the tables: collecting them first took a fresh block of memory (at 10M
    // members hundreds of MB) at every snapshot, which the kernel zeroed.
    e.i64s(exact(r.month_buyers.keys().map(|k| k as i64), r.month_buyers.len()))?;
    encode_member_stores(|| exact(r.member_stores.iter().map(|(k, v)| (k, *v)), r.member_stores.len()), e)
}

fn decode_rollups(d: &mut Decoder<'_>) -> Result<Rollups, Corrupt> {
    let month_buyers = d.i64s()?.into_iter().map(|k| (k as u64, ())).collect();
    let member_stores = decode_member_stores(d)?.into_iter().collect();
    Ok(Rollups { month_buyers, member_stores, ..Rollups::default() })
}

/// (member, store) entries of the `member_store` rollup, column by column (`entries`
/// yields them again for each column).
pub(super) fn encode_member_stores<W: io::Write, I: ExactSizeIterator<Item = (u64, MemberStore)>>(
    entries: impl Fn() -> I,
    e: &mut Encoder<W>,
) -> io::Result<()> {
    e.i64s(entries().map(|(k, _)| k as i64))?;
    e.u32s(entries().map(|(_, v)| v.orders))?;
    e.i64s(entries().map(|(_, v)| v.purchase_amount))?;
    e.i64s(entries().map(|(_, v)| v.refund_amount))?;
    e.u32s(entries().map(|(_, v)| v.first_day as u32))?;
    e.u32s(entries().map(|(_, v)| v.last_day as u32))
}

pub(super) fn decode_member_stores(d: &mut Decoder<'_>) -> Result<Vec<(u64, MemberStore)>, Corrupt> {
    let (keys, orders, purchases, refunds, firsts, lasts) = (d.i64s()?, d.u32s()?, d.i64s()?, d.i64s()?, d.u32s()?, d.u32s()?);
    let n = keys.len();
    if [orders.len(), purchases.len(), refunds.len(), firsts.len(), lasts.len()].iter().any(|&l| l != n) {
        return Err(Corrupt("member-store rollup columns disagree in length".into()));
    }
    Ok((0..n)
        .map(|i| {
            let v = MemberStore {
                orders: orders[i],
                purchase_amount: purchases[i],
                refund_amount: refunds[i],
                first_day: firsts[i] as i32,
                last_day: lasts[i] as i32,
            };
            (keys[i] as u64, v)
        })
        .collect())
}

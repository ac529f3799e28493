//! The checkpoint: member state, counters, the source offsets it reflects and the files its
//! epoch publishes — one file, written to a temporary name and renamed into place.

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, BufWriter};
use std::path::{Path, PathBuf};

use super::codec::{Corrupt, Decoder, Encoder};
use super::counters::Counters;
use super::dedup::{Seen, SeenIds};
use super::members::{DayBucket, Member, MemberTable, Profile, StoreDay};
use super::rollups::{MemberStore, Rollups};
use super::scoring::{Class, ManualTag, RefreshRecord, ScoringState, StatValue};
use crate::scoring::cuts::Cuts;
use crate::crash;
use crate::event::RejectKind;

const MAGIC: &[u8; 8] = b"MFCKPT04";
pub const FILE_NAME: &str = "checkpoint.bin";

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

    /// Writes `dir/checkpoint.bin` atomically; returns its size in bytes.
    pub fn save(&self, dir: &Path) -> Result<u64, CheckpointError> {
        let path = dir.join(FILE_NAME);
        let tmp = dir.join(format!("{FILE_NAME}.tmp"));
        let err = |source| CheckpointError::Write { path: path.clone(), source };
        let file = File::create(&tmp).map_err(err)?;
        let mut enc = Encoder::new(BufWriter::with_capacity(1 << 20, file));
        self.encode(&mut enc).map_err(err)?;
        let size = enc.written + 8;
        let file = enc.finish().map_err(err)?.into_inner().map_err(|e| err(e.into_error()))?;
        file.sync_all().map_err(err)?;
        fs::rename(&tmp, &path).map_err(err)?;
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
        Ok(size)
    }

    /// Loads `dir/checkpoint.bin`, or an empty checkpoint when there is none yet.
    pub fn load(dir: &Path) -> Result<Self, CheckpointError> {
        let path = dir.join(FILE_NAME);
        let bytes = match fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Self::empty()),
            Err(source) => return Err(CheckpointError::Read { path, source }),
        };
        Self::decode(&bytes).map_err(|source| CheckpointError::Corrupt { path, source })
    }

    fn encode<W: io::Write>(&self, e: &mut Encoder<W>) -> io::Result<()> {
        e.bytes(MAGIC)?;
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
        encode_members(&self.members, e)?;
        encode_scoring(&self.scoring, e)?;
        encode_rollups(&self.rollups, e)
    }

    fn decode(bytes: &[u8]) -> Result<Self, Corrupt> {
        let mut d = Decoder::new(bytes)?;
        let magic = d.bytes(8)?;
        if magic.starts_with(b"MFCKPT") && magic != MAGIC {
            return Err(Corrupt(format!(
                "format {} of an older memberflow; replay into a fresh data directory",
                String::from_utf8_lossy(&magic[6..])
            )));
        }
        if magic != MAGIC {
            return Err(Corrupt("not a memberflow checkpoint (bad magic)".into()));
        }
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
        let members = decode_members(&mut d)?;
        let scoring = decode_scoring(&mut d, members.len())?;
        let rollups = decode_rollups(&mut d)?;
        if !d.at_end() {
            return Err(Corrupt("trailing bytes after the rollups".into()));
        }
        Ok(Self { epoch, offsets, counters, manifest: Manifest { publish, delete }, members, scoring, rollups })
    }
}

fn encode_members<W: io::Write>(m: &MemberTable, e: &mut Encoder<W>) -> io::Result<()> {
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
    let mut buf = Vec::with_capacity(1 << 16);
    for i in 0..m.len() {
        buf.clear();
        buf.extend_from_slice(&(m.rows[i].window.len() as u32).to_le_bytes());
        for b in &m.rows[i].window {
            buf.extend_from_slice(&b.day.to_le_bytes());
            buf.extend_from_slice(&b.purchases.to_le_bytes());
            buf.extend_from_slice(&b.net.to_le_bytes());
        }
        buf.extend_from_slice(&(m.rows[i].store_days.len() as u32).to_le_bytes());
        for s in &m.rows[i].store_days {
            buf.extend_from_slice(&s.store.to_le_bytes());
            buf.extend_from_slice(&s.day.to_le_bytes());
        }
        buf.extend_from_slice(&(m.rows[i].seen.len() as u32).to_le_bytes());
        for s in m.rows[i].seen.iter() {
            buf.extend_from_slice(&s.id_hash.to_le_bytes());
            buf.extend_from_slice(&s.content.to_le_bytes());
            buf.extend_from_slice(&s.day.to_le_bytes());
        }
        e.bytes(&buf)?;
        if i == m.len() / 2 {
            e.flush()?;
            crash::point("mid_checkpoint");
        }
    }
    let profiles: Vec<(usize, &Profile)> =
        m.rows.iter().enumerate().filter_map(|(i, r)| r.profile.as_deref().map(|p| (i, p))).collect();
    e.u64(profiles.len() as u64)?;
    for (i, p) in profiles {
        e.u64(i as u64)?;
        e.u64(p.attrs.len() as u64)?;
        for (k, v, t) in &p.attrs {
            e.str(k)?;
            e.str(v)?;
            e.i64(*t)?;
        }
    }
    Ok(())
}

fn decode_members(d: &mut Decoder<'_>) -> Result<MemberTable, Corrupt> {
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
    m.rows.reserve_exact(n);
    for i in 0..n {
        let k = d.u32()? as usize;
        let raw = d.bytes(k * 16)?;
        let window = raw
            .chunks_exact(16)
            .map(|c| DayBucket {
                day: i32::from_le_bytes(c[0..4].try_into().unwrap()),
                purchases: u32::from_le_bytes(c[4..8].try_into().unwrap()),
                net: i64::from_le_bytes(c[8..16].try_into().unwrap()),
            })
            .collect();
        let k = d.u32()? as usize;
        let raw = d.bytes(k * 8)?;
        let store_days = raw
            .chunks_exact(8)
            .map(|c| StoreDay {
                store: u32::from_le_bytes(c[0..4].try_into().unwrap()),
                day: i32::from_le_bytes(c[4..8].try_into().unwrap()),
            })
            .collect();
        let k = d.u32()? as usize;
        let raw = d.bytes(k * 16)?;
        let seen = SeenIds::restore(
            raw.chunks_exact(16)
                .map(|c| Seen {
                    id_hash: u64::from_le_bytes(c[0..8].try_into().unwrap()),
                    content: u32::from_le_bytes(c[8..12].try_into().unwrap()),
                    day: i32::from_le_bytes(c[12..16].try_into().unwrap()),
                })
                .collect(),
        );
        m.rows.push(Member {
            signed_up_at: columns[0][i],
            first_purchase: columns[1][i],
            last_purchase: columns[2][i],
            newest_event: columns[3][i],
            updated_at: columns[4][i],
            purchases_total: totals[i],
            last_store: last_stores[i],
            window,
            store_days,
            seen,
            profile: None,
        });
    }
    for _ in 0..d.len()? {
        let i = d.u64()? as usize;
        if i >= n {
            return Err(Corrupt(format!("profile of member #{i} beyond {n} members")));
        }
        let mut p = Profile::default();
        for _ in 0..d.len()? {
            let (k, v, t) = (d.str()?.into(), d.str()?.into(), d.i64()?);
            p.attrs.push((k, v, t));
        }
        m.rows[i].profile = Some(Box::new(p));
    }
    Ok(m)
}

fn encode_scoring<W: io::Write>(s: &ScoringState, e: &mut Encoder<W>) -> io::Result<()> {
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
    let Some(r) = &s.refresh else {
        return e.u64(0);
    };
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
    let c = &s.classes;
    e.u32s(c.iter().map(|c| u32::from_le_bytes([c.r, c.f, c.m, c.segment])))?;
    e.i64s(c.iter().map(|c| c.tags as i64))?;
    e.i64s(c.iter().map(|c| c.scored_at))
}

fn decode_scoring(d: &mut Decoder<'_>, members: usize) -> Result<ScoringState, Corrupt> {
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
    if d.u64()? == 0 {
        return Ok(s);
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
    s.refresh = Some(RefreshRecord { id, as_of, computed_at, config, cuts, scored_population, stats });
    let (packed, tags, scored_at) = (d.u32s()?, d.i64s()?, d.i64s()?);
    if packed.len() != tags.len() || tags.len() != scored_at.len() || packed.len() > members {
        return Err(Corrupt("member classes disagree in length".into()));
    }
    s.classes = packed
        .iter()
        .zip(tags)
        .zip(scored_at)
        .map(|((p, t), at)| {
            let [r, f, m, segment] = p.to_le_bytes();
            Class { r, f, m, segment, tags: t as u64, scored_at: at }
        })
        .collect();
    Ok(s)
}

fn encode_rollups<W: io::Write>(r: &Rollups, e: &mut Encoder<W>) -> io::Result<()> {
    e.i64s(r.month_buyers.iter().map(|&k| k as i64))?;
    let ms = &r.member_stores;
    e.i64s(ms.keys().map(|&k| k as i64))?;
    e.u32s(ms.values().map(|v| v.orders))?;
    e.i64s(ms.values().map(|v| v.purchase_amount))?;
    e.i64s(ms.values().map(|v| v.refund_amount))?;
    e.u32s(ms.values().map(|v| v.first_day as u32))?;
    e.u32s(ms.values().map(|v| v.last_day as u32))
}

fn decode_rollups(d: &mut Decoder<'_>) -> Result<Rollups, Corrupt> {
    let month_buyers = d.i64s()?.into_iter().map(|k| k as u64).collect();
    let (keys, orders, purchases, refunds, firsts, lasts) = (d.i64s()?, d.u32s()?, d.i64s()?, d.i64s()?, d.u32s()?, d.u32s()?);
    let n = keys.len();
    if [orders.len(), purchases.len(), refunds.len(), firsts.len(), lasts.len()].iter().any(|&l| l != n) {
        return Err(Corrupt("member-store rollup columns disagree in length".into()));
    }
    let member_stores = (0..n)
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
        .collect();
    Ok(Rollups { month_buyers, member_stores, ..Rollups::default() })
}

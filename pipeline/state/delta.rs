//! A checkpoint delta: what one epoch changed, applied on top of the snapshot and the
//! deltas before it. It repeats the small parts in full (offsets, counters, manifest, as-of
//! days, jobs, manual tags, the latest refresh) and holds only the changed part of the
//! large ones: new member and store ids, the rows and classes of the members the epoch
//! changed, the event ids it remembered (an epoch that forgot ids writes a snapshot
//! instead), the month-buyer keys it added and the member-store entries it touched.
//! Incremental scoring only re-classifies changed members; after a refresh (everyone
//! re-classified) the delta holds every member's classification, 24 bytes each.

use std::io;

use super::checkpoint::{
    decode_ids, decode_lists, decode_member_stores, encode_ids, decode_profile, decode_refresh, decode_scoring_meta, encode_lists, encode_profile,
    encode_refresh, encode_scoring_meta, pack_class, unpack_class, Checkpoint, AHEAD,
};
use super::flat::prefetch;
use super::codec::{Corrupt, Decoder, Encoder};
use super::members::Member;
use super::rollups::MemberStore;
use crate::crash;

/// Deltas whose rows carry no remembered ids: the ids the epoch added follow the rows
/// (member, id), and a changed member's whole list is no longer written again.
const MAGIC: &[u8; 8] = b"MFDELT03";
/// Deltas whose rows carry each changed member's whole list of remembered ids (still read).
const MAGIC_LISTS: &[u8; 8] = b"MFDELT02";
/// Deltas written before those, with the touched member-store entries as columns (still
/// read; since MFDELT02 they are rows, key and sums together).
const MAGIC_COLUMNS: &[u8; 8] = b"MFDELT01";
/// Bytes of one member-store row: key, orders, purchase and refund amounts, first and last day.
const MEMBER_STORE_ROW: usize = 36;

pub(super) fn encode<W: io::Write>(c: &Checkpoint, reclassified: bool, e: &mut Encoder<W>) -> io::Result<()> {
    e.bytes(MAGIC)?;
    c.encode_header(e)?;
    let m = &c.members;
    e.i32(m.window_floor)?;
    e.i32(m.as_of_high)?;
    for (interner, saved) in [(&m.ids, c.disk.ids), (&m.stores, c.disk.stores)] {
        e.u64(saved as u64)?;
        e.u64((interner.len() - saved) as u64)?;
        for i in saved..interner.len() {
            e.str(interner.get(i as u32))?;
        }
    }
    let rows = m.changed.sorted();
    e.u64(rows.len() as u64)?;
    for (k, &i) in rows.iter().enumerate() {
        // Each step further on is a load that the next one's address depends on: the row,
        // then its lists block, then its profile's block (the row's pointer to it loaded).
        let ahead = |n: usize| rows.get(k + n * AHEAD).map(|&i| &m.rows[i as usize]);
        if let Some(row) = ahead(3) {
            prefetch(row);
        }
        if let Some(row) = ahead(2) {
            row.lists.prefetch_all();
        }
        if let Some(p) = ahead(1).and_then(|row| row.profile.as_ref()) {
            p.prefetch();
        }
        let row = &m.rows[i as usize];
        e.put(|buf| {
            buf.extend_from_slice(&(i as u64).to_le_bytes());
            for v in [row.signed_up_at, row.first_purchase, row.last_purchase, row.newest_event, row.updated_at] {
                buf.extend_from_slice(&v.to_le_bytes());
            }
            buf.extend_from_slice(&row.purchases_total.to_le_bytes());
            buf.extend_from_slice(&row.last_store.to_le_bytes());
            encode_lists(buf, row, &[]);
            buf.extend_from_slice(&u64::from(row.profile.is_some()).to_le_bytes());
        })?;
        if let Some(p) = &row.profile {
            encode_profile(e, p)?;
        }
        if k == rows.len() / 2 {
            e.flush()?;
            crash::point("mid_checkpoint");
        }
    }
    if rows.is_empty() {
        e.flush()?;
        crash::point("mid_checkpoint");
    }
    let s = &c.scoring;
    encode_scoring_meta(s, e)?;
    match &s.refresh {
        Some(r) => encode_refresh(r, e)?,
        None => e.u64(0)?,
    }
    e.u64(s.classes.len() as u64)?;
    let classes: Vec<u32> = if reclassified {
        (0..s.classes.len() as u32).collect()
    } else {
        rows.iter().copied().filter(|&i| (i as usize) < s.classes.len()).collect()
    };
    e.u64(classes.len() as u64)?;
    for i in classes {
        let (packed, tags, scored_at) = pack_class(&s.classes[i as usize]);
        e.u64(i as u64)?;
        e.bytes(&packed.to_le_bytes())?;
        e.i64(tags)?;
        e.i64(scored_at)?;
    }
    let r = &c.rollups;
    e.i64s(r.new_month_buyers.iter().map(|&k| k as i64))?;
    // Sorted and deduplicated by `Checkpoint::save`.
    let touched = &r.touched_member_stores;
    debug_assert!(touched.windows(2).all(|w| w[0] < w[1]));
    e.u64(touched.len() as u64)?;
    // Entries ahead whose table slots are prefetched (the keys are in key order, the
    // slots in hash order).
    for (i, &k) in touched.iter().enumerate() {
        if let Some(&ahead) = touched.get(i + 2 * AHEAD) {
            r.member_stores.prefetch(ahead);
        }
        let v = r.member_stores.get(k).expect("a touched entry exists");
        e.put(|buf| {
            let mut row = [0u8; MEMBER_STORE_ROW];
            row[0..8].copy_from_slice(&k.to_le_bytes());
            row[8..12].copy_from_slice(&v.orders.to_le_bytes());
            row[12..20].copy_from_slice(&v.purchase_amount.to_le_bytes());
            row[20..28].copy_from_slice(&v.refund_amount.to_le_bytes());
            row[28..32].copy_from_slice(&v.first_day.to_le_bytes());
            row[32..36].copy_from_slice(&v.last_day.to_le_bytes());
            buf.extend_from_slice(&row);
        })?;
    }
    // Last, the ids the epoch remembered (a format older than MFDELT03 ends above).
    encode_ids(e, c.members.seen.added().iter().copied())?;
    Ok(())
}

/// The member-store rows [`encode`] writes.
fn decode_member_store_rows(d: &mut Decoder<'_>) -> Result<Vec<(u64, MemberStore)>, Corrupt> {
    let n = d.len()?;
    let rows = d.bytes(n.checked_mul(MEMBER_STORE_ROW).ok_or_else(|| Corrupt(format!("{n} member-store rows")))?)?;
    let int = |c: &[u8], at: usize| i64::from_le_bytes(c[at..at + 8].try_into().unwrap());
    let word = |c: &[u8], at: usize| i32::from_le_bytes(c[at..at + 4].try_into().unwrap());
    Ok(rows
        .chunks_exact(MEMBER_STORE_ROW)
        .map(|c| {
            let v = MemberStore {
                orders: word(c, 8) as u32,
                purchase_amount: int(c, 12),
                refund_amount: int(c, 20),
                first_day: word(c, 28),
                last_day: word(c, 32),
            };
            (int(c, 0) as u64, v)
        })
        .collect())
}

/// Applies the delta in `file` to `c`, which must hold the epoch just before it.
pub(super) fn apply(c: &mut Checkpoint, file: &[u8]) -> Result<(), Corrupt> {
    let mut d = Decoder::new(file)?;
    let magic = d.bytes(8)?;
    let added_ids = magic == MAGIC;
    let row_wise = added_ids || magic == MAGIC_LISTS;
    if !row_wise && magic != MAGIC_COLUMNS {
        return Err(Corrupt("not a memberflow checkpoint delta (bad magic)".into()));
    }
    let before = c.epoch;
    c.decode_header(&mut d)?;
    if c.epoch != before + 1 {
        return Err(Corrupt(format!("delta of epoch {} applied to epoch {before}", c.epoch)));
    }
    let m = &mut c.members;
    m.window_floor = d.i32()?;
    m.as_of_high = d.i32()?;
    for interner in [&mut m.ids, &mut m.stores] {
        let (saved, added) = (d.u64()? as usize, d.len()?);
        if saved != interner.len() {
            return Err(Corrupt(format!("delta adds ids after {saved}, the state has {}", interner.len())));
        }
        for _ in 0..added {
            interner.intern(d.str()?);
        }
    }
    let n = m.ids.len();
    m.rows.resize_with(n, Member::default);
    let rows = d.len()?;
    let mut seen = Vec::with_capacity(rows);
    for _ in 0..rows {
        let i = d.u64()? as usize;
        if i >= n {
            return Err(Corrupt(format!("row #{i} beyond {n} members")));
        }
        let mut row = Member {
            signed_up_at: d.i64()?,
            first_purchase: d.i64()?,
            last_purchase: d.i64()?,
            newest_event: d.i64()?,
            updated_at: d.i64()?,
            purchases_total: d.u32()?,
            last_store: d.u32()?,
            ..Member::default()
        };
        seen.push((i as u32, decode_lists(&mut d, &mut row)?));
        if d.u64()? == 1 {
            row.profile = Some(decode_profile(&mut d)?);
        }
        m.rows[i] = row;
    }
    let classes = std::mem::take(&mut c.scoring.classes);
    c.scoring = decode_scoring_meta(&mut d, n)?;
    c.scoring.refresh = decode_refresh(&mut d)?;
    c.scoring.classes = classes;
    let len = d.u64()? as usize;
    if len > n {
        return Err(Corrupt(format!("{len} classes for {n} members")));
    }
    c.scoring.classes.resize(len, Default::default());
    for _ in 0..d.len()? {
        let i = d.u64()? as usize;
        let (packed, tags, scored_at) = (d.u32()?, d.i64()?, d.i64()?);
        *c.scoring.classes.get_mut(i).ok_or_else(|| Corrupt(format!("class #{i} beyond {len}")))? =
            unpack_class(packed, tags, scored_at);
    }
    let r = &mut c.rollups;
    r.month_buyers.extend(d.i64s()?.into_iter().map(|k| (k as u64, ())));
    r.member_stores.extend(if row_wise { decode_member_store_rows(&mut d)? } else { decode_member_stores(&mut d)? });
    if added_ids {
        let added = decode_ids(&mut d, n)?;
        c.members.seen.restore_added(added);
    } else {
        c.members.seen.restore(seen);
    }
    if !d.at_end() {
        return Err(Corrupt("trailing bytes after the rollups".into()));
    }
    Ok(())
}

//! An independent computation of the members table from the raw JSON lines: its own
//! parsing (serde_json::Value), validation, dedup and window arithmetic. It shares no code
//! with the pipeline, so agreement means something.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use chrono::{DateTime, NaiveDate, TimeZone};
use chrono_tz::Tz;
use serde_json::Value;

use crate::support::MemberRow;

const DAY_US: i64 = 86_400_000_000;

#[derive(Debug, Default)]
pub struct FoldResult {
    pub members: BTreeMap<String, MemberRow>,
    pub applied: u64,
    pub duplicates: u64,
    pub rejected: u64,
    /// Applied events per type, and summed amounts per type (minor units).
    pub by_type: BTreeMap<String, (u64, i128)>,
}

#[derive(Default)]
struct Member {
    purchases: Vec<(i64, i128, Option<String>)>,
    refunds: Vec<(i64, i128)>,
    seen: HashMap<String, Value>,
    newest: Option<i64>,
}

fn cents(v: &Value) -> Option<i128> {
    let s = match v {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    let (neg, s) = s.strip_prefix('-').map_or((false, s.as_str()), |r| (true, r));
    let (i, f) = s.split_once('.').unwrap_or((s, ""));
    if f.len() > 2 || i.is_empty() && f.is_empty() {
        return None;
    }
    let v: i128 = format!("{i}{f:0<2}").parse().ok()?;
    Some(if neg { -v } else { v })
}

/// Folds `lines` in order, as of `as_of`, in business zone `tz`, with a `window` of days.
pub fn fold(lines: &[Vec<u8>], as_of: NaiveDate, tz: Tz, window: i64) -> FoldResult {
    let mut r = FoldResult::default();
    let mut members: BTreeMap<String, Member> = BTreeMap::new();
    let min = DateTime::parse_from_rfc3339("2000-01-01T00:00:00Z").unwrap().timestamp_micros();
    let day = |us: i64| {
        let t = tz.timestamp_micros(us).unwrap();
        (t.date_naive() - NaiveDate::from_ymd_opt(1970, 1, 1).unwrap()).num_days()
    };
    let a = (as_of - NaiveDate::from_ymd_opt(1970, 1, 1).unwrap()).num_days();
    for line in lines {
        let Some(v) = valid(line, min) else {
            r.rejected += 1;
            continue;
        };
        let t = DateTime::parse_from_rfc3339(v["occurred_at"].as_str().unwrap()).unwrap().timestamp_micros();
        let m = members.entry(v["member_id"].as_str().unwrap().to_string()).or_default();
        if m.newest.is_some_and(|n| t < n - 400 * DAY_US) {
            r.rejected += 1;
            continue;
        }
        let id = v["event_id"].as_str().unwrap().to_string();
        match m.seen.get(&id) {
            Some(prev) if *prev == v => {
                r.duplicates += 1;
                continue;
            }
            Some(_) => {
                r.rejected += 1;
                continue;
            }
            None => {
                m.seen.insert(id, v.clone());
            }
        }
        m.newest = Some(m.newest.map_or(t, |n| n.max(t)));
        r.applied += 1;
        let kind = v["type"].as_str().unwrap().to_string();
        let amount = v.get("amount").and_then(cents);
        let e = r.by_type.entry(kind.clone()).or_default();
        e.0 += 1;
        e.1 += amount.unwrap_or(0);
        match kind.as_str() {
            "purchase" => m.purchases.push((t, amount.unwrap(), v.get("store_id").and_then(|s| s.as_str()).map(str::to_string))),
            "refund" => m.refunds.push((t, amount.unwrap())),
            _ => {}
        }
    }
    for (id, m) in members {
        let inside = |us: i64| a - window < day(us) && day(us) <= a;
        let first = m.purchases.iter().map(|p| p.0).min();
        let last = m.purchases.iter().max_by(|x, y| x.0.cmp(&y.0).then(x.2.cmp(&y.2)));
        let buyer = last.is_some();
        let frequency = m.purchases.iter().filter(|p| inside(p.0)).count() as i64;
        let monetary = m.purchases.iter().filter(|p| inside(p.0)).map(|p| p.1).sum::<i128>()
            - m.refunds.iter().filter(|x| inside(x.0)).map(|x| x.1).sum::<i128>();
        let stores: BTreeSet<&String> = m.purchases.iter().filter(|p| inside(p.0)).filter_map(|p| p.2.as_ref()).collect();
        r.members.insert(
            id,
            MemberRow {
                first_purchase_at: first,
                last_purchase_at: last.map(|p| p.0),
                recency_days: last.map(|p| (a - day(p.0)) as i32),
                frequency: buyer.then_some(frequency),
                monetary: buyer.then_some(monetary),
                purchases_total: m.purchases.len() as i64,
                stores_in_window: buyer.then_some(stores.len() as i64),
                last_store_id: last.and_then(|p| p.2.clone()),
            },
        );
    }
    r
}

/// The contract's checks, restated.
fn valid(line: &[u8], min_time: i64) -> Option<Value> {
    if line.len() > 65536 {
        return None;
    }
    let v: Value = serde_json::from_slice(line).ok()?;
    let o = v.as_object()?;
    for f in ["event_id", "type", "member_id", "occurred_at"] {
        if o.get(f)?.as_str()?.is_empty() {
            return None;
        }
    }
    let kinds = [
        "purchase", "refund", "points_earned", "points_redeemed", "topup", "signup",
        "profile_updated", "sign_in", "review", "coupon_redeemed", "store_visit",
    ];
    let kind = o["type"].as_str()?;
    if !kinds.contains(&kind) {
        return None;
    }
    let t = DateTime::parse_from_rfc3339(o["occurred_at"].as_str()?).ok()?.timestamp_micros();
    if t < min_time {
        return None;
    }
    if let Some(a) = o.get("amount") {
        if cents(a)? < 0 {
            return None;
        }
    } else if ["purchase", "refund", "topup"].contains(&kind) {
        return None;
    }
    if ["purchase", "refund"].contains(&kind) && o.get("order_id").is_none() {
        return None;
    }
    Some(v)
}

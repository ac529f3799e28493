//! Rollups maintained in the stream for fast reports: per store and business day, orders,
//! amounts and refunds of the epoch (additive across epochs, since each event is applied
//! exactly once), and `month_buyers_added` — members buying at the store for the first time
//! in that month — which sums to distinct buyers per store and month. The memory of which
//! (member, store, month) already counted is part of the checkpoint.

use std::collections::BTreeMap;

use chrono::Datelike;

use super::calendar::{day_to_date, Day};

/// Store index for purchases without a store (online).
pub const ONLINE: u32 = (1 << 20) - 1;

/// (member, store, month) packed: member in the high 32 bits, store in 20, month in 12.
fn key(member: u32, store: u32, day: Day) -> u64 {
    let d = day_to_date(day);
    let month = ((d.year() - 2000) * 12 + d.month0() as i32).clamp(0, 4095) as u64;
    (member as u64) << 32 | ((store.min(ONLINE) as u64) << 12) | month
}

/// One store-day's sums within an epoch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreDay {
    pub orders: i64,
    pub purchase_amount: i64,
    pub refunds: i64,
    pub refund_amount: i64,
    pub month_buyers_added: i64,
}

#[derive(Debug, Clone, Default)]
pub struct Rollups {
    /// (member, store, month) keys that already counted as a month buyer.
    pub month_buyers: hashbrown::HashSet<u64>,
    /// This epoch's sums per (day, store index); emptied by each checkpoint.
    pub epoch: BTreeMap<(Day, u32), StoreDay>,
}

impl Rollups {
    pub fn purchase(&mut self, member: u32, store: Option<u32>, day: Day, amount: i64) {
        let store = store.unwrap_or(ONLINE);
        let added = self.month_buyers.insert(key(member, store, day));
        let s = self.epoch.entry((day, store)).or_default();
        s.orders += 1;
        s.purchase_amount += amount;
        s.month_buyers_added += added as i64;
    }

    pub fn refund(&mut self, store: Option<u32>, day: Day, amount: i64) {
        let s = self.epoch.entry((day, store.unwrap_or(ONLINE))).or_default();
        s.refunds += 1;
        s.refund_amount += amount;
    }

    pub fn memory_bytes(&self) -> usize {
        self.month_buyers.capacity() * 9
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn month_buyers_count_once_per_store_and_month() {
        let mut r = Rollups::default();
        let day = |s: &str| super::super::calendar::date_to_day(chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap());
        r.purchase(1, Some(3), day("2026-05-20"), 1000);
        r.purchase(1, Some(3), day("2026-05-03"), 500); // late, same month: not a new buyer
        r.purchase(1, Some(4), day("2026-05-03"), 200); // other store
        r.purchase(1, Some(3), day("2026-06-01"), 100); // next month
        r.purchase(2, None, day("2026-05-03"), 100); // online
        r.refund(Some(3), day("2026-05-20"), 300);
        let added: i64 = r.epoch.iter().filter(|((d, s), _)| *s == 3 && day_to_date(*d).month() == 5).map(|(_, v)| v.month_buyers_added).sum();
        assert_eq!(added, 1);
        assert_eq!(r.epoch[&(day("2026-05-20"), 3)], StoreDay { orders: 1, purchase_amount: 1000, refunds: 1, refund_amount: 300, month_buyers_added: 1 });
        assert_eq!(r.epoch[&(day("2026-05-03"), ONLINE)].month_buyers_added, 1);
        assert_eq!(r.month_buyers.len(), 4);
    }
}

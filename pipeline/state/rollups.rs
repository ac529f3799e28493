//! Rollups maintained in the stream for fast reports:
//! - per store and business day, orders, amounts and refunds of the epoch (additive across
//!   epochs, since each event is applied exactly once), and `month_buyers_added` — members
//!   buying at the store for the first time in that month — which sums to distinct buyers
//!   per store and month; the memory of which (member, store, month) already counted is part
//!   of the checkpoint;
//! - per member and store, all-time orders, amounts and first/last purchase day (the
//!   `member_store` table, written with the members table).

use super::calendar::{year_month, Day};
use super::flat::{MapValue, U64Map, U64Set};

/// Store index for purchases without a store (online).
pub const ONLINE: u32 = (1 << 20) - 1;

/// (member, store, month) packed: member in the high 32 bits, store in 20, month in 12.
pub fn month_key(member: u32, store: u32, day: Day) -> u64 {
    (member as u64) << 32 | ((store.min(ONLINE) as u64) << 12) | month_number(day)
}

/// The month part of [`month_key`]: months since January 2000, clamped to 12 bits.
fn month_number(day: Day) -> u64 {
    let (year, month) = year_month(day);
    ((year - 2000) * 12 + month as i32 - 1).clamp(0, 4095) as u64
}

/// Whether a member's purchases at a store already counted it as a buyer there in `day`'s
/// month. The days of its first and last purchase there each added their month's key, so
/// the key of a purchase in either month is known without looking at `month_buyers` (a
/// purchase in the same month as the last one is the usual case).
fn month_counted(m: &MemberStore, day: Day) -> bool {
    m.orders > 0
        && (m.last_day == day
            || m.first_day == day
            || month_number(m.last_day) == month_number(day)
            || month_number(m.first_day) == month_number(day))
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

/// One member's business at one store, all time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemberStore {
    pub orders: u32,
    pub purchase_amount: i64,
    pub refund_amount: i64,
    /// Business days of the first and last purchase (`Day::MAX` / `Day::MIN`: none yet).
    pub first_day: Day,
    pub last_day: Day,
}

impl MemberStore {
    const NONE: Self = Self { orders: 0, purchase_amount: 0, refund_amount: 0, first_day: Day::MAX, last_day: Day::MIN };
}

impl Default for MemberStore {
    fn default() -> Self {
        Self::NONE
    }
}

impl MapValue for MemberStore {
    const FILLER: Self = Self::NONE;
}

/// (member, store) packed: member in the high 32 bits.
pub fn member_store_key(member: u32, store: u32) -> u64 {
    (member as u64) << 32 | store as u64
}

#[derive(Debug, Clone, Default)]
pub struct Rollups {
    /// (member, store, month) keys that already counted as a month buyer.
    pub month_buyers: U64Set,
    /// (member, store index) -> all-time sums.
    pub member_stores: U64Map<MemberStore>,
    /// This epoch's sums per (day, store index); emptied by each checkpoint.
    pub epoch: hashbrown::HashMap<(Day, u32), StoreDay>,
    /// `month_buyers` keys added and `member_stores` keys touched since the last
    /// checkpoint (what an incremental checkpoint writes).
    pub new_month_buyers: Vec<u64>,
    pub touched_member_stores: Vec<u64>,
}

impl Rollups {
    pub fn purchase(&mut self, member: u32, store: Option<u32>, day: Day, amount: i64) {
        let store = store.unwrap_or(ONLINE);
        self.touched_member_stores.push(member_store_key(member, store));
        let m = self.member_stores.entry(member_store_key(member, store));
        let counted = month_counted(m, day);
        m.orders += 1;
        m.purchase_amount += amount;
        m.first_day = m.first_day.min(day);
        m.last_day = m.last_day.max(day);
        let added = !counted && {
            let month_key = self::month_key(member, store, day);
            let added = self.month_buyers.add(month_key);
            if added {
                self.new_month_buyers.push(month_key);
            }
            added
        };
        let s = self.epoch.entry((day, store)).or_default();
        s.orders += 1;
        s.purchase_amount += amount;
        s.month_buyers_added += added as i64;
    }

    /// Hints the CPU to load the `month_buyers` slot a purchase will look at, unless its
    /// (already loaded) member-store entry shows that the purchase need not look.
    #[inline]
    pub fn prefetch_month(&self, member: u32, store: u32, day: Day) {
        if !self.member_stores.get(member_store_key(member, store)).is_some_and(|m| month_counted(m, day)) {
            self.month_buyers.prefetch(month_key(member, store, day));
        }
    }

    pub fn refund(&mut self, member: u32, store: Option<u32>, day: Day, amount: i64) {
        let store = store.unwrap_or(ONLINE);
        let s = self.epoch.entry((day, store)).or_default();
        s.refunds += 1;
        s.refund_amount += amount;
        self.touched_member_stores.push(member_store_key(member, store));
        self.member_stores.entry(member_store_key(member, store)).refund_amount += amount;
    }

    pub fn memory_bytes(&self) -> usize {
        self.month_buyers.heap_bytes() + self.member_stores.heap_bytes()
    }
}

#[cfg(test)]
mod tests {
    use chrono::Datelike;

    use super::super::calendar::day_to_date;
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
        r.refund(1, Some(3), day("2026-05-20"), 300);
        let added: i64 = r.epoch.iter().filter(|((d, s), _)| *s == 3 && day_to_date(*d).month() == 5).map(|(_, v)| v.month_buyers_added).sum();
        assert_eq!(added, 1);
        assert_eq!(r.epoch[&(day("2026-05-20"), 3)], StoreDay { orders: 1, purchase_amount: 1000, refunds: 1, refund_amount: 300, month_buyers_added: 1 });
        assert_eq!(r.epoch[&(day("2026-05-03"), ONLINE)].month_buyers_added, 1);
        assert_eq!(r.month_buyers.len(), 4);
        let ms = r.member_stores.get(member_store_key(1, 3)).copied().unwrap();
        assert_eq!((ms.orders, ms.purchase_amount, ms.refund_amount), (3, 1600, 300));
        assert_eq!((ms.first_day, ms.last_day), (day("2026-05-03"), day("2026-06-01")));
    }

    /// In any order of purchase days (late ones between a member's first and last month
    /// at a store among them), the month buyers added sum to the distinct (member, store,
    /// month) of a plain set.
    #[test]
    fn month_buyers_added_match_a_set_of_buyers() {
        let mut r = Rollups::default();
        let mut model = std::collections::HashSet::new();
        let mut x = 5u64;
        for _ in 0..20_000 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let (member, store, day) = ((x >> 20) as u32 % 40, (x >> 30) as u32 % 3, 20_000 + ((x >> 40) % 400) as Day);
            let store = (store < 2).then_some(store);
            r.purchase(member, store, day, 1);
            let (year, month) = year_month(day);
            model.insert((member, store, year, month));
        }
        let mut added = std::collections::HashMap::new();
        for (&(day, store), sums) in &r.epoch {
            *added.entry((store, year_month(day))).or_insert(0) += sums.month_buyers_added;
        }
        let mut want = std::collections::HashMap::new();
        for &(_, store, year, month) in &model {
            *want.entry((store.unwrap_or(ONLINE), (year, month))).or_insert(0) += 1;
        }
        assert_eq!(added, want);
    }
}

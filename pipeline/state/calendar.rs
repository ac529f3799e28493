//! Calendar days in the business time zone: the unit of windows, recency and `dt=`.

use std::cell::Cell;

use chrono::{NaiveDate, Offset, TimeZone};
use chrono_tz::Tz;

/// Days since 1970-01-01 in the business time zone.
pub type Day = i32;

const MICROS_PER_DAY: i64 = 86_400_000_000;
/// Offsets change only on quarter-hour boundaries in every zone of the tz database.
const MICROS_PER_QUARTER_HOUR: i64 = 900_000_000;

/// Quarter hours whose zone offsets [`BusinessCalendar`] remembers (direct-mapped): the
/// days of a live stream, late events included, fit, so the zone's rules are looked up
/// about once per quarter hour instead of at every jump back and forth in time.
const CACHED_QUARTERS: usize = 256;

/// Maps instants to business days, caching the zone offset of recent quarter hours.
#[derive(Debug, Clone)]
pub struct BusinessCalendar {
    tz: Tz,
    /// (quarter hour index, offset in micros) at `quarter % CACHED_QUARTERS`.
    cache: Box<[Cell<(i64, i64)>]>,
}

impl BusinessCalendar {
    pub fn new(tz: Tz) -> Self {
        Self { tz, cache: (0..CACHED_QUARTERS).map(|_| Cell::new((i64::MIN, 0))).collect() }
    }

    pub fn tz(&self) -> Tz {
        self.tz
    }

    /// The business day of an instant given in microseconds since the epoch (UTC).
    pub fn day(&self, micros: i64) -> Day {
        let quarter = micros.div_euclid(MICROS_PER_QUARTER_HOUR);
        let slot = &self.cache[quarter.rem_euclid(CACHED_QUARTERS as i64) as usize];
        let (cached_quarter, cached_offset) = slot.get();
        let offset = if cached_quarter == quarter {
            cached_offset
        } else {
            let offset = self.offset_micros(micros);
            slot.set((quarter, offset));
            offset
        };
        (micros + offset).div_euclid(MICROS_PER_DAY) as Day
    }

    fn offset_micros(&self, micros: i64) -> i64 {
        let utc = chrono::DateTime::from_timestamp_micros(micros).unwrap_or_default().naive_utc();
        self.tz.offset_from_utc_datetime(&utc).fix().local_minus_utc() as i64 * 1_000_000
    }

    /// Today in the business time zone, for a clock reading in microseconds.
    pub fn today(&self, now_micros: i64) -> Day {
        self.day(now_micros)
    }
}

pub fn day_to_date(day: Day) -> NaiveDate {
    NaiveDate::from_ymd_opt(1970, 1, 1).unwrap() + chrono::Duration::days(day as i64)
}

/// The year and month (1-12) of a day: H. Hinnant's `civil_from_days` in plain integer
/// arithmetic (the rollups ask it for every purchase; a chrono date costs table lookups).
pub fn year_month(day: Day) -> (i32, u32) {
    let z = day as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    // Months counted from March, as in the algorithm.
    let m = (5 * day_of_year + 2) / 153;
    let month = if m < 10 { m + 3 } else { m - 9 } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year as i32, month)
}

pub fn date_to_day(date: NaiveDate) -> Day {
    (date - NaiveDate::from_ymd_opt(1970, 1, 1).unwrap()).num_days() as Day
}

#[cfg(test)]
mod tests {
    use super::*;

    fn micros(rfc3339: &str) -> i64 {
        chrono::DateTime::parse_from_rfc3339(rfc3339).unwrap().timestamp_micros()
    }

    #[test]
    fn days_follow_the_business_zone() {
        let shanghai = BusinessCalendar::new("Asia/Shanghai".parse().unwrap());
        let utc = BusinessCalendar::new(Tz::UTC);
        // 2025-03-01 23:30 UTC is already March 2nd in Shanghai.
        let t = micros("2025-03-01T23:30:00Z");
        assert_eq!(day_to_date(utc.day(t)).to_string(), "2025-03-01");
        assert_eq!(day_to_date(shanghai.day(t)).to_string(), "2025-03-02");
        assert_eq!(day_to_date(shanghai.day(micros("2025-03-01T15:59:59Z"))).to_string(), "2025-03-01");
        assert_eq!(day_to_date(shanghai.day(micros("2025-03-01T16:00:00Z"))).to_string(), "2025-03-02");
    }

    #[test]
    fn year_month_agrees_with_chrono() {
        use chrono::Datelike;
        for day in (-800_000..800_000).step_by(7).chain(-1000..1000) {
            let date = day_to_date(day);
            assert_eq!(year_month(day), (date.year(), date.month()), "{date}");
        }
    }

    #[test]
    fn cached_offsets_agree_with_the_zone_rules_in_any_order() {
        for zone in ["America/New_York", "Asia/Shanghai", "Australia/Lord_Howe", "UTC"] {
            let calendar = BusinessCalendar::new(zone.parse().unwrap());
            let mut t = micros("2025-03-08T00:00:00Z");
            let mut rng = 0x2545_f491_4f6c_dd1du64;
            for _ in 0..100_000 {
                rng ^= rng << 13;
                rng ^= rng >> 7;
                rng ^= rng << 17;
                // Forward a little, or back up to two months (late events), across the
                // March and April daylight-saving changes.
                t += (rng % 3_000_000_000) as i64 - if rng % 10 == 0 { 60 * MICROS_PER_DAY / 10 } else { 0 };
                let expected = (t + calendar.offset_micros(t)).div_euclid(MICROS_PER_DAY) as Day;
                assert_eq!(calendar.day(t), expected, "{zone} at {t}");
            }
        }
    }

    #[test]
    fn daylight_saving_moves_midnight() {
        let ny = BusinessCalendar::new("America/New_York".parse().unwrap());
        // Summer: UTC-4, winter: UTC-5; cached offsets must not leak across the change.
        assert_eq!(day_to_date(ny.day(micros("2025-07-02T03:30:00Z"))).to_string(), "2025-07-01");
        assert_eq!(day_to_date(ny.day(micros("2025-01-02T04:30:00Z"))).to_string(), "2025-01-01");
        assert_eq!(day_to_date(ny.day(micros("2025-01-02T05:00:00Z"))).to_string(), "2025-01-02");
        assert_eq!(day_to_date(ny.day(micros("1969-12-31T23:00:00Z"))).to_string(), "1969-12-31");
    }
}

//! Calendar days in the business time zone: the unit of windows, recency and `dt=`.

use std::cell::Cell;

use chrono::{NaiveDate, Offset, TimeZone};
use chrono_tz::Tz;

/// Days since 1970-01-01 in the business time zone.
pub type Day = i32;

const MICROS_PER_DAY: i64 = 86_400_000_000;
/// Offsets change only on quarter-hour boundaries in every zone of the tz database.
const MICROS_PER_QUARTER_HOUR: i64 = 900_000_000;

/// Maps instants to business days. Caches the zone offset of the last quarter hour seen,
/// because streams arrive roughly in time order.
#[derive(Debug, Clone)]
pub struct BusinessCalendar {
    tz: Tz,
    cache: Cell<(i64, i64)>, // (quarter hour index, offset in micros)
}

impl BusinessCalendar {
    pub fn new(tz: Tz) -> Self {
        Self { tz, cache: Cell::new((i64::MIN, 0)) }
    }

    pub fn tz(&self) -> Tz {
        self.tz
    }

    /// The business day of an instant given in microseconds since the epoch (UTC).
    pub fn day(&self, micros: i64) -> Day {
        let quarter = micros.div_euclid(MICROS_PER_QUARTER_HOUR);
        let (cached_quarter, cached_offset) = self.cache.get();
        let offset = if cached_quarter == quarter {
            cached_offset
        } else {
            let offset = self.offset_micros(micros);
            self.cache.set((quarter, offset));
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
    fn daylight_saving_moves_midnight() {
        let ny = BusinessCalendar::new("America/New_York".parse().unwrap());
        // Summer: UTC-4, winter: UTC-5; cached offsets must not leak across the change.
        assert_eq!(day_to_date(ny.day(micros("2025-07-02T03:30:00Z"))).to_string(), "2025-07-01");
        assert_eq!(day_to_date(ny.day(micros("2025-01-02T04:30:00Z"))).to_string(), "2025-01-01");
        assert_eq!(day_to_date(ny.day(micros("2025-01-02T05:00:00Z"))).to_string(), "2025-01-02");
        assert_eq!(day_to_date(ny.day(micros("1969-12-31T23:00:00Z"))).to_string(), "1969-12-31");
    }
}

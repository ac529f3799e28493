//! The fast path of `occurred_at`: the usual RFC 3339 shape,
//! `YYYY-MM-DDTHH:MM:SS[.f{1,9}](Z|±HH:MM)`, to microseconds since the epoch (UTC).
//! Anything else — and every error — is chrono's; a test holds the two equal.

const MICROS_PER_SECOND: i64 = 1_000_000;

/// Days from 1970-01-01 to a valid proleptic Gregorian date (`None` if invalid), by
/// H. Hinnant's `days_from_civil`: plain arithmetic instead of chrono's validated date
/// type and its table lookups.
fn days_from_civil(year: i64, month: u32, day: u32) -> Option<i64> {
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let month_days = match month {
        2 if leap => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        1..=12 => 31,
        _ => return None,
    };
    if day == 0 || day > month_days {
        return None;
    }
    // Years start in March, so the leap day is the last of its year.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let year_of_era = y - era * 400;
    let day_of_year = (153 * ((month as i64 + 9) % 12) + 2) / 5 + day as i64 - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    Some(era * 146_097 + day_of_era - 719_468)
}

/// Days from 1970-01-01 to the date `YYYY-MM-DD` in `date`. Consecutive events mostly fall
/// on one date: the last date's answer is kept (per thread) and reused for the same bytes.
fn date_days(date: &[u8; 10]) -> Option<i64> {
    thread_local! {
        static LAST: std::cell::Cell<(u128, i64)> = const { std::cell::Cell::new((0, 0)) };
    }
    let mut key = [0u8; 16];
    key[..10].copy_from_slice(date);
    // Never 0 for a date: its bytes are ASCII digits and dashes.
    let key = u128::from_le_bytes(key);
    let (last, days) = LAST.get();
    if last == key {
        return Some(days);
    }
    let days = days_from_civil(digits(&date[0..4])? as i64, digits(&date[5..7])?, digits(&date[8..10])?)?;
    LAST.set((key, days));
    Some(days)
}

fn digits(b: &[u8]) -> Option<u32> {
    b.iter().try_fold(0u32, |n, &c| c.is_ascii_digit().then(|| n * 10 + (c - b'0') as u32))
}

/// `HH:MM:SS` (eight bytes, one load): the three numbers, each two ASCII digits, unchecked
/// for range. A byte is a digit when its high nibble is 3 and its low one is at most 9;
/// XOR with the expected bytes leaves each digit's value and zero for each colon.
fn clock(b: &[u8; 8]) -> Option<(u32, u32, u32)> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const COLONS: u64 = 0x0000_ff00_00ff_0000;
    let d = u64::from_le_bytes(*b) ^ u64::from_le_bytes(*b"00:00:00");
    // Every byte below 16; digits (d + 6 below 16) at most 9; colons exactly zero.
    if d & (0xf0 * ONES) != 0 || (d + 6 * ONES) & (0x10 * ONES) != 0 || d & COLONS != 0 {
        return None;
    }
    let two = |at: u32| ((d >> at) & 0xff) as u32 * 10 + ((d >> (at + 8)) & 0xff) as u32;
    Some((two(0), two(24), two(48)))
}

/// Two ASCII digits.
fn two_digits(a: u8, b: u8) -> Option<u32> {
    let (a, b) = (a.wrapping_sub(b'0'), b.wrapping_sub(b'0'));
    (a < 10 && b < 10).then(|| a as u32 * 10 + b as u32)
}

/// Microseconds since the Unix epoch, or `None` to leave `text` to chrono.
pub(super) fn rfc3339_micros(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' {
        return None;
    }
    let days = date_days(b[..10].try_into().expect("10 bytes"))?;
    let (hour, minute, second) = clock(b[11..19].try_into().expect("8 bytes"))?;
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let mut rest = &b[19..];
    let mut micros = 0i64;
    if let [b'.', fraction @ ..] = rest {
        // Up to nine digits, read in the same pass that counts them.
        let (mut n, mut frac) = (0, 0i64);
        while let Some(d) = fraction.get(n).map(|c| c.wrapping_sub(b'0')).filter(|d| *d < 10) {
            frac = frac * 10 + d as i64;
            n += 1;
            if n > 9 {
                return None;
            }
        }
        if n == 0 {
            return None;
        }
        // Scale to nanoseconds, then truncate to microseconds as chrono does.
        const SCALE: [i64; 10] = [0, 100_000_000, 10_000_000, 1_000_000, 100_000, 10_000, 1_000, 100, 10, 1];
        micros = frac * SCALE[n] / 1000;
        rest = &fraction[n..];
    }
    let offset_seconds = match *rest {
        [b'Z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let (h, m) = (two_digits(h1, h2)?, two_digits(m1, m2)?);
            if h > 23 || m > 59 {
                return None;
            }
            let seconds = (h * 3600 + m * 60) as i64;
            if sign == b'-' {
                -seconds
            } else {
                seconds
            }
        }
        _ => return None,
    };
    let seconds = days * 86_400 + (hour * 3600 + minute * 60 + second) as i64 - offset_seconds;
    Some(seconds * MICROS_PER_SECOND + micros)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn chrono_micros(text: &str) -> Option<i64> {
        chrono::DateTime::parse_from_rfc3339(text).ok().map(|t| t.timestamp_micros())
    }

    #[test]
    fn agrees_with_chrono_wherever_it_answers() {
        let mut rng = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = |n: u64| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng % n
        };
        let mut answered = 0;
        for _ in 0..200_000 {
            let frac = match next(4) {
                0 => String::new(),
                1 => format!(".{:03}", next(1000)),
                2 => format!(".{:06}", next(1_000_000)),
                _ => format!(".{}", "123456789012".get(..next(12) as usize).unwrap_or("")),
            };
            let offset = match next(3) {
                0 => "Z".to_string(),
                1 => format!("{}{:02}:{:02}", if next(2) == 0 { '+' } else { '-' }, next(26), next(62)),
                _ => ["z", "+0800", "+08", " ", "+08:00:00", ""][next(6) as usize].to_string(),
            };
            let sep = ['T', 'T', 'T', 't', ' '][next(5) as usize];
            let text = format!(
                "{:04}-{:02}-{:02}{sep}{:02}:{:02}:{:02}{frac}{offset}",
                1900 + next(300),
                next(14),
                next(33),
                next(26),
                next(62),
                next(62)
            );
            // Now and then one byte replaced: digits next to their neighbours in ASCII
            // (`/`, `:`), letters, separators, a non-ASCII character.
            let text = if next(4) == 0 {
                let at = next(text.len() as u64) as usize;
                let with = ["/", ":", "0", "9", "a", "Z", ".", "-", "+", " ", "é"][next(11) as usize];
                text.char_indices().map(|(i, c)| if i == at { with.to_string() } else { c.to_string() }).collect()
            } else {
                text
            };
            if let Some(fast) = rfc3339_micros(&text) {
                answered += 1;
                assert_eq!(Some(fast), chrono_micros(&text), "{text}");
            }
        }
        assert!(answered > 20_000, "the fast path answered only {answered} times");
        // Runs of one date (its days are then reused), broken by other and invalid dates.
        for text in ["2026-10-30T01:00:00Z", "2026-10-30T23:59:59+08:00", "2026-10-31T00:00:00Z", "2026-02-30T00:00:00Z", "2026-10-31T12:00:00-05:00", "2024-02-29T00:00:00Z", "2024-02-29T10:00:00Z"]
            .iter()
            .flat_map(|t| [*t, *t])
        {
            assert_eq!(rfc3339_micros(text), chrono_micros(text), "{text}");
        }
        assert_eq!(rfc3339_micros("2025-03-01T10:00:00+08:00"), Some(1_740_794_400_000_000));
        assert_eq!(rfc3339_micros("1969-12-31T23:59:59.999999Z"), Some(-1));
        assert_eq!(rfc3339_micros("0000-03-01T00:00:00Z"), chrono_micros("0000-03-01T00:00:00Z"));
    }

    #[test]
    fn days_match_chrono_for_every_date_of_five_centuries_and_the_ends_of_the_range() {
        let epoch = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).unwrap();
        for year in (0..=9999).filter(|y| *y < 100 || (1800..2300).contains(y) || *y > 9900) {
            for month in 0..=13 {
                for day in 0..=32 {
                    let chrono_days = chrono::NaiveDate::from_ymd_opt(year, month, day).map(|d| (d - epoch).num_days());
                    assert_eq!(days_from_civil(year as i64, month, day), chrono_days, "{year}-{month}-{day}");
                }
            }
        }
    }
}

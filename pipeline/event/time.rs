//! The fast path of `occurred_at`: the usual RFC 3339 shape,
//! `YYYY-MM-DDTHH:MM:SS[.f{1,9}](Z|±HH:MM)`, to microseconds since the epoch (UTC).
//! Anything else — and every error — is chrono's; a test holds the two equal.

use chrono::NaiveDate;

const MICROS_PER_SECOND: i64 = 1_000_000;

fn digits(b: &[u8]) -> Option<u32> {
    b.iter().try_fold(0u32, |n, &c| c.is_ascii_digit().then(|| n * 10 + (c - b'0') as u32))
}

/// Microseconds since the Unix epoch, or `None` to leave `text` to chrono.
pub(super) fn rfc3339_micros(text: &str) -> Option<i64> {
    let b = text.as_bytes();
    if b.len() < 20 || b[4] != b'-' || b[7] != b'-' || b[10] != b'T' || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let date = NaiveDate::from_ymd_opt(digits(&b[0..4])? as i32, digits(&b[5..7])?, digits(&b[8..10])?)?;
    let (hour, minute, second) = (digits(&b[11..13])?, digits(&b[14..16])?, digits(&b[17..19])?);
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let mut rest = &b[19..];
    let mut micros = 0i64;
    if rest.first() == Some(&b'.') {
        let n = rest[1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if n == 0 || n > 9 {
            return None;
        }
        let frac = digits(&rest[1..1 + n])? as i64;
        // Scale to nanoseconds, then truncate to microseconds as chrono does.
        micros = frac * 10i64.pow(9 - n as u32) / 1000;
        rest = &rest[1 + n..];
    }
    let offset_seconds = match rest {
        [b'Z'] => 0,
        [sign @ (b'+' | b'-'), h1, h2, b':', m1, m2] => {
            let (h, m) = (digits(&[*h1, *h2])?, digits(&[*m1, *m2])?);
            if h > 23 || m > 59 {
                return None;
            }
            let seconds = (h * 3600 + m * 60) as i64;
            if *sign == b'-' {
                -seconds
            } else {
                seconds
            }
        }
        _ => return None,
    };
    let days = date.signed_duration_since(NaiveDate::from_ymd_opt(1970, 1, 1)?).num_days();
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
            if let Some(fast) = rfc3339_micros(&text) {
                answered += 1;
                assert_eq!(Some(fast), chrono_micros(&text), "{text}");
            }
        }
        assert!(answered > 20_000, "the fast path answered only {answered} times");
        assert_eq!(rfc3339_micros("2025-03-01T10:00:00+08:00"), Some(1_740_794_400_000_000));
        assert_eq!(rfc3339_micros("1969-12-31T23:59:59.999999Z"), Some(-1));
    }
}

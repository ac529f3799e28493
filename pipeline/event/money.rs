//! Exact money: an integer count of minor units (scale 2: fen, cents). Never f64.

use std::fmt;

/// Decimal places of every amount; the Parquet type is `Decimal128(18, 2)`.
pub const MONEY_SCALE: u32 = 2;
/// Largest accepted magnitude in minor units: what `Decimal128(18, 2)` holds.
const MAX_MINOR: i128 = 10i128.pow(18) - 1;

/// An amount in minor units (1/100 of the currency unit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct Money(pub i64);

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&format_money(self.0))
    }
}

/// `12345` -> `"123.45"`, `-5` -> `"-0.05"`.
pub fn format_money(minor: i64) -> String {
    let sign = if minor < 0 { "-" } else { "" };
    let abs = minor.unsigned_abs();
    format!("{sign}{}.{:02}", abs / 100, abs % 100)
}

/// Parses a JSON number or decimal string (`"12.5"`, `12.50`, `1.25e2`) exactly.
/// Refuses more than two significant decimal places, signs other than a leading `-`,
/// and magnitudes beyond 16 integer digits. The sign is kept: callers reject negatives.
pub fn parse_money(text: &str) -> Result<Money, String> {
    match parse_plain(text.as_bytes()) {
        Some(minor) => Ok(Money(minor)),
        None => parse_general(text),
    }
}

/// The shapes nearly every amount has — `12`, `12.5`, `12.50`, at most 16 integer digits —
/// in one pass over the bytes; `None` for anything else (signs, exponents, more decimals,
/// errors), which [`parse_general`] then decides. A third of the decoder's work was here.
#[inline]
fn parse_plain(text: &[u8]) -> Option<i64> {
    let mut value: i64 = 0;
    let mut i = 0;
    while let Some(d) = text.get(i).filter(|b| b.is_ascii_digit()) {
        if i == 16 {
            return None;
        }
        value = value * 10 + i64::from(d - b'0');
        i += 1;
    }
    if i == 0 {
        return None;
    }
    let mut decimals = 0;
    if i < text.len() {
        if text[i] != b'.' {
            return None;
        }
        for &d in &text[i + 1..] {
            if !d.is_ascii_digit() || decimals == MONEY_SCALE {
                return None;
            }
            value = value * 10 + i64::from(d - b'0');
            decimals += 1;
        }
        if decimals == 0 {
            return None;
        }
    }
    Some(value * 10i64.pow(MONEY_SCALE - decimals))
}

fn parse_general(text: &str) -> Result<Money, String> {
    let bad = || format!("{text:?} is not a decimal amount");
    let (negative, rest) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        _ => (false, text),
    };
    let (mantissa, exponent) = match rest.find(['e', 'E']) {
        Some(i) => {
            let exp: i32 = rest[i + 1..].parse().map_err(|_| bad())?;
            (&rest[..i], exp)
        }
        None => (rest, 0),
    };
    let (int_part, frac_part) = match mantissa.find('.') {
        Some(i) => (&mantissa[..i], &mantissa[i + 1..]),
        None => (mantissa, ""),
    };
    let digits_ok = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
    if (int_part.is_empty() && frac_part.is_empty()) || !digits_ok(int_part) || !digits_ok(frac_part)
    {
        return Err(bad());
    }
    if !(-40..=40).contains(&exponent) {
        return Err(format!("{text:?} is out of range"));
    }
    // value = digits * 10^(exponent - frac_len); we want value * 100 exactly. Walk the
    // digits (integer part, then fraction) without allocating.
    let shift = exponent - frac_part.len() as i32 + MONEY_SCALE as i32;
    let digits = int_part.bytes().chain(frac_part.bytes());
    let total = int_part.len() + frac_part.len();
    // With a negative shift the last `-shift` digits are below the scale: they must be 0.
    let keep = if shift < 0 { total.saturating_sub((-shift) as usize) } else { total };
    let mut value: i128 = 0;
    for (i, d) in digits.enumerate() {
        let d = (d - b'0') as i128;
        if i < keep {
            value = value * 10 + d;
            if value > MAX_MINOR {
                return Err(format!("{text:?} is out of range"));
            }
        } else if d != 0 {
            return Err(format!("{text:?} has more than {MONEY_SCALE} decimal places"));
        }
    }
    if shift > 0 {
        for _ in 0..shift {
            value *= 10;
            if value > MAX_MINOR {
                return Err(format!("{text:?} is out of range"));
            }
        }
    }
    Ok(Money(if negative { -(value as i64) } else { value as i64 }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_exactly() {
        for (text, minor) in [
            ("12", 1200),
            ("12.5", 1250),
            ("12.50", 1250),
            ("0.01", 1),
            ("0.10", 10),
            ("1.25e2", 12500),
            ("125E-2", 125),
            ("12.500", 1250),
            ("-3.2", -320),
            (".5", 50),
            ("0", 0),
            ("9999999999999999.99", 999_999_999_999_999_999),
        ] {
            assert_eq!(parse_money(text), Ok(Money(minor)), "{text}");
        }
    }

    #[test]
    fn refuses_what_is_not_exact() {
        for text in ["1.234", "abc", "", "1.2.3", "+1", "1e400", "12345678901234567", "--1", "."] {
            assert!(parse_money(text).is_err(), "{text}");
        }
        assert!(parse_money("1.234").unwrap_err().contains("decimal places"));
    }

    /// The one-pass path agrees with the general one wherever it answers, and answers for
    /// the common shapes.
    #[test]
    fn the_fast_path_agrees_with_the_general_one() {
        let mut texts: Vec<String> = ["12.", ".5", "0.1", "00.10", "1.234", "1e2", "-1.5", "9999999999999999.99", "99999999999999999", "1..2", "1.a"]
            .map(String::from)
            .to_vec();
        let mut x: u64 = 7;
        for _ in 0..20_000 {
            x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            let int = (x >> 33) % 10u64.pow((x % 17) as u32 + 1);
            let text = match x % 5 {
                0 => format!("{int}"),
                1 => format!("{int}.{}", (x >> 20) % 10),
                2 => format!("{int}.{:02}", (x >> 20) % 100),
                3 => format!("{int:0>18}"),
                _ => format!("{int}.{:03}", (x >> 20) % 1000),
            };
            texts.push(text);
        }
        let mut answered = 0;
        for text in &texts {
            if let Some(minor) = parse_plain(text.as_bytes()) {
                assert_eq!(parse_general(text), Ok(Money(minor)), "{text}");
                answered += 1;
            }
        }
        assert!(answered > texts.len() / 2, "the fast path answered only {answered} of {}", texts.len());
        assert_eq!(parse_plain(b"12.50"), Some(1250));
    }

    #[test]
    fn formats_minor_units() {
        assert_eq!(format_money(12345), "123.45");
        assert_eq!(format_money(-5), "-0.05");
        assert_eq!(format_money(0), "0.00");
    }
}

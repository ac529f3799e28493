//! The fast path of decoding: one pass over a message of the usual shape (a flat object of
//! the contract's fields, strings without escapes, `items` as an array of flat objects).
//!
//! It either extracts exactly the [`Fields`] that serde_json would, or gives up (`None`) and
//! leaves the message to the serde path, which also words every error. It never decides
//! that a message is bad. A differential test holds it to serde_json on generated, faulty
//! and mutated messages.

use std::borrow::Cow;

use super::decode::{Fields, ItemFields};

/// Nesting deeper than this inside `attributes` or an unknown field goes to serde
/// (whose own limit is 128).
const MAX_DEPTH: u32 = 64;

/// Fills `fields` (default on entry) from `bytes`; `None` leaves them partly filled. Filled
/// in place: returning them (a few hundred bytes) was a copy at each return.
pub(super) fn scan<'a>(bytes: &'a [u8], fields: &mut Fields<'a>) -> Option<()> {
    let text = utf8(bytes)?;
    let mut s = Scanner { text, b: bytes, i: 0 };
    s.event(fields)?;
    s.ws();
    (s.i == bytes.len()).then_some(())
}

/// Pairs in an object this many at most are read by [`plain_object`].
pub const PLAIN_MAX: usize = 16;

/// The pairs of a JSON object (valid JSON: a sign-up's `attributes`) whose keys and values
/// serde_json would give back as they are written: keys and strings without escapes,
/// integers of at most 18 digits (not `-0`), `true`, `false`, `null`; no key twice. `None`
/// for anything else (nested values, fractions, escapes, more than [`PLAIN_MAX`] pairs),
/// which the caller leaves to serde_json. Parsing into a map and printing each value again
/// cost as much as the rest of a sign-up's state update.
pub fn plain_object<'a>(text: &'a str, pairs: &mut [(&'a str, &'a str); PLAIN_MAX]) -> Option<usize> {
    let mut s = Scanner { text, b: text.as_bytes(), i: 0 };
    let mut n = 0;
    s.object(|s, key| {
        let value = match s.peek()? {
            b'"' | b't' | b'f' | b'n' => s.raw()?,
            _ => {
                let start = s.i;
                s.integer()?;
                &s.text[start..s.i]
            }
        };
        (n < PLAIN_MAX && !pairs[..n].iter().any(|(k, _)| *k == key)).then_some(())?;
        pairs[n] = (key, value);
        n += 1;
        Some(())
    })?;
    s.ws();
    (s.i == s.b.len()).then_some(n)
}

/// `bytes` as text, if valid UTF-8. Messages are almost always pure ASCII, which a
/// vectorisable OR over the bytes proves at a fraction of a full validation's cost.
fn utf8(bytes: &[u8]) -> Option<&str> {
    let (words, tail) = bytes.as_chunks::<8>();
    let high = words.iter().fold(0, |acc, w| acc | u64::from_ne_bytes(*w)) & 0x8080_8080_8080_8080;
    if high == 0 && tail.iter().all(u8::is_ascii) {
        // SAFETY: every byte is below 0x80, and ASCII is valid UTF-8.
        return Some(unsafe { std::str::from_utf8_unchecked(bytes) });
    }
    std::str::from_utf8(bytes).ok()
}

struct Scanner<'a> {
    text: &'a str,
    b: &'a [u8],
    i: usize,
}

/// The position of the first `"`, `\\` or control character in `b`: sixteen bytes at a
/// time with SSE2 (every x86_64 has it), then eight at a time.
fn special_byte(b: &[u8]) -> Option<usize> {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::*;
        let mut i = 0;
        while i + 16 <= b.len() {
            // SAFETY: SSE2 is part of x86_64; the load reads b[i..i + 16], inside `b`.
            let hits = unsafe {
                let x = _mm_loadu_si128(b.as_ptr().add(i) as *const __m128i);
                let quote = _mm_cmpeq_epi8(x, _mm_set1_epi8(b'"' as i8));
                let backslash = _mm_cmpeq_epi8(x, _mm_set1_epi8(b'\\' as i8));
                // Below 0x20 (unsigned): max(x, 0x1f) == 0x1f.
                let control = _mm_cmpeq_epi8(_mm_max_epu8(x, _mm_set1_epi8(0x1f)), _mm_set1_epi8(0x1f));
                _mm_movemask_epi8(_mm_or_si128(_mm_or_si128(quote, backslash), control)) as u32
            };
            if hits != 0 {
                return Some(i + hits.trailing_zeros() as usize);
            }
            i += 16;
        }
        special_byte_swar(&b[i..]).map(|p| i + p)
    }
    #[cfg(not(target_arch = "x86_64"))]
    special_byte_swar(b)
}

/// `special_byte` eight bytes at a time.
fn special_byte_swar(b: &[u8]) -> Option<usize> {
    const ONES: u64 = 0x0101_0101_0101_0101;
    const HIGH: u64 = 0x8080_8080_8080_8080;
    // A byte's high bit is set in `zero(x)` when that byte of x is 0; exact for the lowest
    // such byte, which is the only one used.
    let zero = |x: u64| x.wrapping_sub(ONES) & !x & HIGH;
    let mut i = 0;
    while i + 8 <= b.len() {
        let x = u64::from_le_bytes(b[i..i + 8].try_into().expect("8 bytes"));
        // Bytes below 0x20: those whose top three bits are all 0.
        let control = zero(x & (0xe0 * ONES));
        let hits = zero(x ^ (b'"' as u64 * ONES)) | zero(x ^ (b'\\' as u64 * ONES)) | control;
        if hits != 0 {
            return Some(i + hits.trailing_zeros() as usize / 8);
        }
        i += 8;
    }
    b[i..].iter().position(|&c| c == b'"' || c == b'\\' || c < 0x20).map(|p| i + p)
}

/// The number of an event field, by name. By length first: each comparison left then has a
/// constant length, which compiles to a word compare instead of a `memcmp` call.
fn event_field(key: &str) -> Option<usize> {
    let n = match (key.len(), key) {
        (8, "event_id") => 0,
        (4, "type") => 1,
        (9, "member_id") => 2,
        (11, "occurred_at") => 3,
        (8, "store_id") => 4,
        (7, "channel") => 5,
        (8, "order_id") => 6,
        (6, "amount") => 7,
        (8, "currency") => 8,
        (6, "points") => 9,
        (5, "items") => 10,
        (10, "attributes") => 11,
        _ => return None,
    };
    Some(n)
}

/// The number of an item field, by name (as [`event_field`]).
fn item_field(key: &str) -> Option<usize> {
    let n = match (key.len(), key) {
        (3, "sku") => 0,
        (8, "category") => 1,
        (5, "brand") => 2,
        (3, "qty") => 3,
        (10, "unit_price") => 4,
        _ => return None,
    };
    Some(n)
}

/// A field name as it usually appears in a message, `"name":`, as the low bytes of a
/// 16-byte word: a key is recognised with one load and compare instead of a string scan,
/// a colon and a name lookup.
#[derive(Clone, Copy)]
struct KeyPattern {
    word: u128,
    mask: u128,
    len: usize,
}

const fn key_pattern(name: &str) -> KeyPattern {
    let name = name.as_bytes();
    let len = name.len() + 3;
    assert!(len <= 16, "a field name of at most 13 bytes");
    let mut bytes = [0u8; 16];
    bytes[0] = b'"';
    let mut i = 0;
    while i < name.len() {
        bytes[i + 1] = name[i];
        i += 1;
    }
    bytes[name.len() + 1] = b'"';
    bytes[name.len() + 2] = b':';
    let mask = if len == 16 { u128::MAX } else { (1u128 << (len * 8)) - 1 };
    KeyPattern { word: u128::from_le_bytes(bytes), mask, len }
}

const fn key_patterns<const N: usize>(names: [&str; N]) -> [KeyPattern; N] {
    let mut patterns = [KeyPattern { word: 0, mask: 0, len: 0 }; N];
    let mut i = 0;
    while i < N {
        patterns[i] = key_pattern(names[i]);
        i += 1;
    }
    patterns
}

/// The event fields in [`event_field`]'s numbering, and the item fields in [`item_field`]'s.
const EVENT_KEYS: [KeyPattern; 12] = key_patterns([
    "event_id", "type", "member_id", "occurred_at", "store_id", "channel", "order_id", "amount", "currency", "points",
    "items", "attributes",
]);
const ITEM_KEYS: [KeyPattern; 5] = key_patterns(["sku", "category", "brand", "qty", "unit_price"]);

/// A key of an object: one of the known fields by number, or another name.
enum Key<'a> {
    Known(usize),
    Other(&'a str),
}

/// Sets the bit of field `n`; `None` when it was already set (a duplicate field is
/// serde's error to word).
fn first(seen: &mut u32, n: u32) -> Option<()> {
    let bit = 1 << n;
    (*seen & bit == 0).then(|| *seen |= bit)
}

impl<'a> Scanner<'a> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    /// Skips whitespace. Messages rarely have any: one compare when the next byte is
    /// above a space.
    #[inline(always)]
    fn ws(&mut self) {
        if self.peek().is_some_and(|c| c > b' ') {
            return;
        }
        while let Some(b' ' | b'\n' | b'\r' | b'\t') = self.peek() {
            self.i += 1;
        }
    }

    #[inline(always)]
    fn eat(&mut self, c: u8) -> Option<()> {
        if self.peek() != Some(c) {
            self.ws();
        }
        (self.peek()? == c).then(|| self.i += 1)
    }

    /// A string without escapes or control characters; its contents.
    #[inline(always)]
    fn string(&mut self) -> Option<&'a str> {
        self.eat(b'"')?;
        let start = self.i;
        let len = special_byte(&self.b[start..])?;
        self.i = start + len;
        (self.peek()? == b'"').then_some(())?;
        self.i += 1;
        debug_assert!(self.text.is_char_boundary(start) && self.text.is_char_boundary(start + len));
        // SAFETY: `text` is valid UTF-8 and both ends are next to an ASCII `"` (`start`
        // follows one, `start + len` is one), and an ASCII byte is never inside a multi-byte
        // character, so both are character boundaries within `text`. Checking them again
        // was a tenth of this function's instructions (callgrind).
        Some(unsafe { self.text.get_unchecked(start..start + len) })
    }

    #[inline(always)]
    fn cow(&mut self) -> Option<Cow<'a, str>> {
        self.string().map(Cow::Borrowed)
    }

    /// `{ "key": value, ... }`, calling `field` after each key's colon.
    fn object(&mut self, mut field: impl FnMut(&mut Self, &'a str) -> Option<()>) -> Option<()> {
        self.keyed_object(&[], |_| None, |s, key| match key {
            Key::Other(name) => field(s, name),
            Key::Known(_) => unreachable!("no known keys"),
        })
    }

    /// An object whose keys are mostly the fields `keys` (numbered by `lookup`): each key is
    /// first matched against their patterns, trying the field after the previous one first
    /// (producers write fields in one order); other spellings are read as strings.
    fn keyed_object(
        &mut self,
        keys: &[KeyPattern],
        lookup: impl Fn(&str) -> Option<usize>,
        mut field: impl FnMut(&mut Self, Key<'a>) -> Option<()>,
    ) -> Option<()> {
        self.eat(b'{')?;
        self.ws();
        if self.peek()? == b'}' {
            self.i += 1;
            return Some(());
        }
        let mut next = 0;
        loop {
            self.ws();
            let key = match self.known_key(keys, next) {
                Some(n) => Key::Known(n),
                None => {
                    let name = self.string()?;
                    self.eat(b':')?;
                    lookup(name).map_or(Key::Other(name), Key::Known)
                }
            };
            if let Key::Known(n) = key {
                next = n + 1;
            }
            self.ws();
            field(self, key)?;
            self.ws();
            match self.peek()? {
                b',' => self.i += 1,
                b'}' => {
                    self.i += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// The number of the field whose `"name":` starts at the position, which it then
    /// passes; `None` (not moving) when none does or fewer than 16 bytes are left.
    #[inline]
    fn known_key(&mut self, keys: &[KeyPattern], next: usize) -> Option<usize> {
        let bytes: [u8; 16] = self.b.get(self.i..self.i + 16)?.try_into().expect("16 bytes");
        let word = u128::from_le_bytes(bytes);
        let (earlier, later) = keys.split_at(next.min(keys.len()));
        let n = (later.iter().position(|k| word & k.mask == k.word).map(|p| p + next))
            .or_else(|| earlier.iter().position(|k| word & k.mask == k.word))?;
        self.i += keys[n].len;
        Some(n)
    }

    fn event(&mut self, f: &mut Fields<'a>) -> Option<()> {
        let (mut event_id, mut kind, mut member_id, mut occurred_at) = (None, None, None, None);
        let mut seen = 0u32;
        self.keyed_object(&EVENT_KEYS, event_field, |s, key| {
            let Key::Known(n) = key else { return s.skip(0) };
            first(&mut seen, n as u32)?;
            match n {
                0 => event_id = Some(s.cow()?),
                1 => kind = Some(s.cow()?),
                2 => member_id = Some(s.cow()?),
                3 => occurred_at = Some(s.cow()?),
                4 => f.store_id = Some(s.cow()?),
                5 => f.channel = Some(s.cow()?),
                6 => f.order_id = Some(s.cow()?),
                7 => f.amount = Some(s.amount()?),
                8 => f.currency = Some(s.cow()?),
                9 => f.points = Some(s.integer()?),
                10 => f.items = Some(s.items()?),
                _ => f.attributes = Some(s.raw()?),
            }
            Some(())
        })?;
        f.event_id = event_id?;
        f.kind = kind?;
        f.member_id = member_id?;
        f.occurred_at = occurred_at?;
        Some(())
    }

    fn items(&mut self) -> Option<Vec<ItemFields<'a>>> {
        let mut items = Vec::new();
        self.array(|s| {
            let (mut sku, mut qty, mut seen) = (None, None, 0u32);
            let mut item = ItemFields::default();
            s.keyed_object(&ITEM_KEYS, item_field, |s, key| {
                let Key::Known(n) = key else { return s.skip(0) };
                first(&mut seen, n as u32)?;
                match n {
                    0 => sku = Some(s.cow()?),
                    1 => item.category = Some(s.cow()?),
                    2 => item.brand = Some(s.cow()?),
                    3 => qty = Some(s.integer()?),
                    _ => item.unit_price = Some(s.amount()?),
                }
                Some(())
            })?;
            item.sku = sku?;
            item.qty = qty?;
            items.push(item);
            Some(())
        })?;
        Some(items)
    }

    /// `[ value, ... ]`, calling `element` at each value.
    fn array(&mut self, mut element: impl FnMut(&mut Self) -> Option<()>) -> Option<()> {
        self.eat(b'[')?;
        self.ws();
        if self.peek()? == b']' {
            self.i += 1;
            return Some(());
        }
        loop {
            self.ws();
            element(self)?;
            self.ws();
            match self.peek()? {
                b',' => self.i += 1,
                b']' => {
                    self.i += 1;
                    return Some(());
                }
                _ => return None,
            }
        }
    }

    /// An amount as its JSON text: a number, or a string with its quotes.
    #[inline(always)]
    fn amount(&mut self) -> Option<&'a str> {
        match self.peek()? {
            b'"' => {
                let start = self.i;
                self.string()?;
                Some(&self.text[start..self.i])
            }
            _ => self.number(),
        }
    }

    /// A JSON integer of at most 18 digits (serde refuses fractions and exponents for an
    /// i64, reads `-0` as a float, and words the errors of longer ones), read in one pass.
    fn integer(&mut self) -> Option<i64> {
        let negative = self.peek() == Some(b'-');
        let start = self.i + usize::from(negative);
        let digits = self.b.get(start..)?.iter().take_while(|c| c.is_ascii_digit()).count();
        let end = start + digits;
        if digits == 0 || digits > 18 || (digits > 1 && self.b[start] == b'0') || matches!(self.b.get(end), Some(b'.' | b'e' | b'E')) {
            return None;
        }
        let value = self.b[start..end].iter().fold(0i64, |v, &d| v * 10 + i64::from(d - b'0'));
        if negative && value == 0 {
            return None;
        }
        self.i = end;
        Some(if negative { -value } else { value })
    }

    /// A number per the JSON grammar; its text.
    fn number(&mut self) -> Option<&'a str> {
        let start = self.i;
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        match self.peek()? {
            b'0' => self.i += 1,
            b'1'..=b'9' => self.digits(),
            _ => return None,
        }
        if self.peek() == Some(b'.') {
            self.i += 1;
            self.one_or_more_digits()?;
        }
        if let Some(b'e' | b'E') = self.peek() {
            self.i += 1;
            if let Some(b'+' | b'-') = self.peek() {
                self.i += 1;
            }
            self.one_or_more_digits()?;
        }
        Some(&self.text[start..self.i])
    }

    fn digits(&mut self) {
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.i += 1;
        }
    }

    fn one_or_more_digits(&mut self) -> Option<()> {
        let start = self.i;
        self.digits();
        (self.i > start).then_some(())
    }

    /// Any JSON value, checked and skipped; its text.
    fn raw(&mut self) -> Option<&'a str> {
        let start = self.i;
        self.skip(0)?;
        Some(&self.text[start..self.i])
    }

    fn skip(&mut self, depth: u32) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        match self.peek()? {
            b'"' => self.string().map(drop),
            b'{' => self.object(|s, _| s.skip(depth + 1)),
            b'[' => self.array(|s| s.skip(depth + 1)),
            b't' => self.literal("true"),
            b'f' => self.literal("false"),
            b'n' => self.literal("null"),
            _ => self.number().map(drop),
        }
    }

    fn literal(&mut self, word: &str) -> Option<()> {
        self.b[self.i..].starts_with(word.as_bytes()).then(|| self.i += word.len())
    }
}

#[cfg(test)]
mod tests {
    use super::super::decode::serde_fields;
    use super::*;
    use crate::generate::{GenerateConfig, Generator};

    /// Whenever the scanner answers, serde_json answers the same.
    fn agree(bytes: &[u8]) -> bool {
        let mut fast = Fields::default();
        match scan(bytes, &mut fast) {
            Some(()) => {
                assert_eq!(serde_fields(bytes).as_ref(), Ok(&fast), "{}", String::from_utf8_lossy(bytes));
                true
            }
            None => false,
        }
    }

    /// Where the plain reading answers, it gives what serde_json's map and printing give;
    /// the usual sign-up attributes take it, and what it cannot give exactly it declines.
    #[test]
    fn plain_objects_agree_with_serde_json() {
        let plain = [
            r#"{"birthday":"1990-04-01","city":"上海"}"#,
            r#"{}"#,
            r#" { "a" : 1 , "b":-12, "c":0, "d":true, "e":false, "f":null, "g":"" } "#,
            r#"{"n":123456789012345678,"m":-5}"#,
        ];
        let declined = [
            r#"{"a":1.5}"#,
            r#"{"a":1e3}"#,
            r#"{"a":-0}"#,
            r#"{"a":1234567890123456789}"#,
            r#"{"a":"x\"y"}"#,
            r#"{"a\u0041":1}"#,
            r#"{"a":{"b":1}}"#,
            r#"{"a":[1]}"#,
            r#"{"a":1,"a":2}"#,
        ];
        for (text, expect_plain) in plain.iter().map(|t| (t, true)).chain(declined.iter().map(|t| (t, false))) {
            let map: serde_json::Map<String, serde_json::Value> = serde_json::from_str(text).unwrap();
            let want: Vec<(String, String)> = map.into_iter().map(|(k, v)| (k, v.to_string())).collect();
            let mut pairs = [("", ""); PLAIN_MAX];
            match plain_object(text, &mut pairs) {
                Some(n) => {
                    let mut got: Vec<(String, String)> = pairs[..n].iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
                    got.sort();
                    assert_eq!(got, want, "{text}");
                    assert!(expect_plain, "{text} should have been left to serde_json");
                }
                None => assert!(!expect_plain, "{text} should have been read plainly"),
            }
        }
        let many: String = format!("{{{}}}", (0..=PLAIN_MAX).map(|i| format!(r#""k{i}":{i}"#)).collect::<Vec<_>>().join(","));
        assert_eq!(plain_object(&many, &mut [("", ""); PLAIN_MAX]), None);
    }

    /// Each pattern recognises its field's `"name":` (and numbers it as the lookup does),
    /// whatever follows, and nothing shorter, longer or spaced.
    #[test]
    fn key_patterns_recognise_exactly_their_fields() {
        let fields: [(&[KeyPattern], fn(&str) -> Option<usize>, &[&str]); 2] = [
            (&EVENT_KEYS, event_field, &["event_id", "type", "member_id", "occurred_at", "store_id", "channel", "order_id", "amount", "currency", "points", "items", "attributes"]),
            (&ITEM_KEYS, item_field, &["sku", "category", "brand", "qty", "unit_price"]),
        ];
        for (keys, lookup, names) in fields {
            for name in names {
                for next in 0..=keys.len() {
                    let text = format!(r#""{name}":"some value that is long enough""#);
                    let mut s = Scanner { text: &text, b: text.as_bytes(), i: 0 };
                    assert_eq!(s.known_key(keys, next), lookup(name), "{name} from {next}");
                    assert_eq!(s.i, name.len() + 3);
                }
                for text in [format!(r#""{name}x":1, "padding": 1"#), format!(r#""{name}" : 1, "padding": 1"#), format!(r#""x{name}":1, "padding":1"#)] {
                    let mut s = Scanner { text: &text, b: text.as_bytes(), i: 0 };
                    assert_eq!(s.known_key(keys, 0), None, "{text}");
                    assert_eq!(s.i, 0);
                }
            }
        }
        let short = r#""sku":1}"#;
        assert_eq!(Scanner { text: short, b: short.as_bytes(), i: 0 }.known_key(&ITEM_KEYS, 0), None, "fewer than 16 bytes left");
    }

    #[test]
    fn field_names_map_to_their_numbers_and_nothing_else_does() {
        let events = ["event_id", "type", "member_id", "occurred_at", "store_id", "channel", "order_id", "amount", "currency", "points", "items", "attributes"];
        let items = ["sku", "category", "brand", "qty", "unit_price"];
        for (names, field) in [(&events[..], event_field as fn(&str) -> Option<usize>), (&items[..], item_field)] {
            for (n, name) in names.iter().enumerate() {
                assert_eq!(field(name), Some(n), "{name}");
                assert_eq!(field(&name[1..]), None);
                assert_eq!(field(&format!("{name}x")), None);
                assert_eq!(field(&name.to_uppercase()), None);
            }
            assert_eq!(field(""), None);
        }
    }

    #[test]
    fn answers_as_serde_does_on_generated_faulty_and_mutated_messages() {
        let config = GenerateConfig { events: 20_000, malformed_rate: 0.05, ..GenerateConfig::default() };
        let messages: Vec<Vec<u8>> = Generator::new(config).map(|m| m.payload).collect();
        let answered = messages.iter().filter(|m| agree(m)).count();
        assert!(answered as f64 > 0.9 * messages.len() as f64, "the fast path took only {answered} messages");
        let mut rng = 7u64;
        let mut next = |n: usize| {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng as usize % n
        };
        const PIECES: [&str; 16] =
            ["\"", "{", "}", "[", "]", ",", ":", "\\", " ", "0", "-", ".", "e", "null", "\"x\":1,", "\u{e9}"];
        for m in messages.iter().take(5_000) {
            for _ in 0..8 {
                let mut bytes = m.clone();
                for _ in 0..1 + next(2) {
                    let at = next(bytes.len() + 1);
                    match next(3) {
                        0 if at < bytes.len() => drop(bytes.remove(at)),
                        1 if at < bytes.len() => bytes[at] = PIECES[next(PIECES.len())].as_bytes()[0],
                        _ => bytes.splice(at..at, PIECES[next(PIECES.len())].bytes()).for_each(drop),
                    }
                }
                agree(&bytes);
            }
        }
    }

    #[test]
    fn finds_the_first_special_byte_as_a_plain_loop_does() {
        let plain = |b: &[u8]| b.iter().position(|&c| c == b'"' || c == b'\\' || c < 0x20);
        let mut rng = 11u64;
        for _ in 0..100_000 {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let len = (rng % 40) as usize;
            let bytes: Vec<u8> = (0..len)
                .map(|k| match (rng >> (k % 60)) % 23 {
                    0 => b'"',
                    1 => b'\\',
                    2 => (rng >> 3) as u8 % 0x20,
                    3 => 0x7f,
                    4 => 0xe9,
                    5 => 0x20,
                    n => b'a' + n as u8,
                })
                .collect();
            assert_eq!(special_byte(&bytes), plain(&bytes), "{bytes:?}");
            assert_eq!(special_byte_swar(&bytes), plain(&bytes), "{bytes:?}");
        }
    }

    #[test]
    fn utf8_agrees_with_std() {
        let mut rng = 5u64;
        for _ in 0..100_000 {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            let len = (rng % 50) as usize;
            // Mostly ASCII, sometimes a high byte anywhere (in the words or the tail),
            // sometimes a whole multi-byte character.
            let mut bytes: Vec<u8> = (0..len).map(|k| b'a' + ((rng >> (k % 50)) % 26) as u8).collect();
            match rng % 5 {
                0 if len > 0 => bytes[(rng >> 8) as usize % len] = 0x80 | (rng >> 16) as u8,
                1 => bytes.extend_from_slice("上海".as_bytes()),
                2 if len > 0 => bytes[len - 1] = 0xff,
                _ => {}
            }
            assert_eq!(utf8(&bytes), std::str::from_utf8(&bytes).ok(), "{bytes:?}");
        }
    }

    #[test]
    fn leaves_unusual_shapes_to_serde() {
        let base = r#""event_id":"e","type":"purchase","member_id":"m","occurred_at":"2025-01-01T00:00:00Z""#;
        for (text, fast) in [
            (format!("{{{base}}}"), true),
            (format!(" {{ {} }}\n", base.replace(',', " ,\t")), true),
            (format!(r#"{{{base},"x":{{"a":[1,2.5e3,true,null,{{}}]}},"points":-3}}"#), true),
            (format!(r#"{{{base},"points":-0}}"#), false),
            (format!(r#"{{{base},"amount":"12.50","items":[]}}"#), true),
            (format!(r#"{{{base},"items":[{{"sku":"a","qty":1,"unit_price":1.5,"z":"q"}}]}}"#), true),
            (format!(r#"{{{base},"attributes":{{"city":"上海"}}}}"#), true),
            (format!(r#"{{{base},"event_id":"again"}}"#), false),
            (format!(r#"{{{base},"store_id":null}}"#), false),
            (format!(r#"{{{base},"channel":"a\"b"}}"#), false),
            (format!(r#"{{{base},"points":1.0}}"#), false),
            (format!(r#"{{{base},"points":99999999999999999999}}"#), false),
            (format!(r#"{{{base},"points":123456789012345678}}"#), true),
            (format!(r#"{{{base},"points":1234567890123456789}}"#), false),
            (format!(r#"{{{base},"points":-12}}"#), true),
            (format!(r#"{{{base},"points":0}}"#), true),
            (format!(r#"{{{base},"points":01}}"#), false),
            (format!(r#"{{{base},"points":1e2}}"#), false),
            (format!(r#"{{{base},"points":-}}"#), false),
            (format!(r#"{{{base},"amount":01}}"#), false),
            (format!(r#"{{{base}}} x"#), false),
            (format!(r#"{{{base},}}"#), false),
            (r#"{"type":"purchase"}"#.to_string(), false),
        ] {
            assert_eq!(agree(text.as_bytes()), fast, "{text}");
        }
    }
}

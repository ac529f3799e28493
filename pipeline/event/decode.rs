//! Message bytes -> [`Event`], or a [`Rejection`] saying what was wrong and where.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::value::RawValue;

use super::{parse_money, Event, EventType, Item, Money, RejectKind, Rejection};

/// Bounds that make an input absurd.
#[derive(Debug, Clone, Copy)]
pub struct DecodeLimits {
    pub max_message_bytes: usize,
    /// Earliest accepted `occurred_at`, microseconds since the epoch.
    pub min_time: i64,
    /// Latest accepted `occurred_at` (the ingest clock plus the allowed skew).
    pub max_time: i64,
}

const MAX_ID_LEN: usize = 256;

/// The fields of a message before validation, as either path extracts them.
#[derive(Debug, Default, PartialEq)]
pub(super) struct Fields<'a> {
    pub event_id: Cow<'a, str>,
    pub kind: Cow<'a, str>,
    pub member_id: Cow<'a, str>,
    pub occurred_at: Cow<'a, str>,
    pub store_id: Option<Cow<'a, str>>,
    pub channel: Option<Cow<'a, str>>,
    pub order_id: Option<Cow<'a, str>>,
    /// JSON text: a number, or a string with its quotes.
    pub amount: Option<&'a str>,
    pub currency: Option<Cow<'a, str>>,
    pub points: Option<i64>,
    pub items: Option<Vec<ItemFields<'a>>>,
    /// JSON text of any value (checked to be an object later).
    pub attributes: Option<&'a str>,
}

#[derive(Debug, Default, PartialEq)]
pub(super) struct ItemFields<'a> {
    pub sku: Cow<'a, str>,
    pub category: Option<Cow<'a, str>>,
    pub brand: Option<Cow<'a, str>>,
    pub qty: i64,
    pub unit_price: Option<&'a str>,
}

/// The general path: serde_json, for every shape the scanner leaves alone, and the wording
/// of every syntax and type error.
#[derive(Deserialize)]
struct RawEvent<'a> {
    #[serde(borrow)]
    event_id: Cow<'a, str>,
    #[serde(borrow, rename = "type")]
    kind: Cow<'a, str>,
    #[serde(borrow)]
    member_id: Cow<'a, str>,
    #[serde(borrow)]
    occurred_at: Cow<'a, str>,
    #[serde(borrow, default)]
    store_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    channel: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    order_id: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    amount: Option<&'a RawValue>,
    #[serde(borrow, default)]
    currency: Option<Cow<'a, str>>,
    #[serde(default)]
    points: Option<i64>,
    #[serde(borrow, default)]
    items: Option<Vec<RawItem<'a>>>,
    #[serde(borrow, default)]
    attributes: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct RawItem<'a> {
    #[serde(borrow)]
    sku: Cow<'a, str>,
    #[serde(borrow, default)]
    category: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    brand: Option<Cow<'a, str>>,
    qty: i64,
    #[serde(borrow, default)]
    unit_price: Option<&'a RawValue>,
}

pub(super) fn serde_fields(bytes: &[u8]) -> Result<Fields<'_>, Rejection> {
    let raw: RawEvent<'_> = serde_json::from_slice(bytes).map_err(|e| {
        let kind = match e.classify() {
            serde_json::error::Category::Data => RejectKind::InvalidField,
            _ => RejectKind::MalformedJson,
        };
        Rejection::new(kind, e.to_string())
    })?;
    Ok(Fields {
        event_id: raw.event_id,
        kind: raw.kind,
        member_id: raw.member_id,
        occurred_at: raw.occurred_at,
        store_id: raw.store_id,
        channel: raw.channel,
        order_id: raw.order_id,
        amount: raw.amount.map(RawValue::get),
        currency: raw.currency,
        points: raw.points,
        items: raw.items.map(|items| {
            items
                .into_iter()
                .map(|i| ItemFields {
                    sku: i.sku,
                    category: i.category,
                    brand: i.brand,
                    qty: i.qty,
                    unit_price: i.unit_price.map(RawValue::get),
                })
                .collect()
        }),
        attributes: raw.attributes.map(RawValue::get),
    })
}

fn invalid(reason: impl Into<String>) -> Rejection {
    Rejection::new(RejectKind::InvalidField, reason)
}

/// Decodes and validates one message body.
pub fn decode<'a>(bytes: &'a [u8], limits: &DecodeLimits) -> Result<Event<'a>, Rejection> {
    if bytes.len() > limits.max_message_bytes {
        return Err(Rejection::new(
            RejectKind::Oversized,
            format!("message is {} bytes, the limit is {}", bytes.len(), limits.max_message_bytes),
        ));
    }
    let mut raw = Fields::default();
    if super::scan::scan(bytes, &mut raw).is_none() {
        raw = serde_fields(bytes)?;
    }
    let kind = EventType::parse(&raw.kind).ok_or_else(|| {
        Rejection::new(RejectKind::UnknownType, format!("unknown event type {:?}", raw.kind))
    })?;
    check_id("event_id", &raw.event_id)?;
    check_id("member_id", &raw.member_id)?;
    let occurred_at = parse_time(&raw.occurred_at, limits)?;
    let amount = match raw.amount {
        Some(text) => Some(parse_amount("amount", text)?),
        None if kind.needs_amount() => {
            return Err(invalid(format!("missing field `amount` (required for {})", kind.as_str())))
        }
        None => None,
    };
    let points = match raw.points {
        Some(p) if p < 0 => {
            return Err(Rejection::new(RejectKind::NegativeAmount, format!("points is negative: {p}")))
        }
        None if kind.needs_points() => {
            return Err(invalid(format!("missing field `points` (required for {})", kind.as_str())))
        }
        p => p,
    };
    if matches!(kind, EventType::Purchase | EventType::Refund) && raw.order_id.is_none() {
        return Err(invalid(format!("missing field `order_id` (required for {})", kind.as_str())));
    }
    if let Some(attributes) = raw.attributes {
        if !attributes.starts_with('{') {
            return Err(invalid("`attributes` must be a JSON object"));
        }
    }
    let items = match raw.items {
        Some(items) if !items.is_empty() => items.into_iter().map(convert_item).collect::<Result<_, _>>()?,
        _ => Vec::new(),
    };
    Ok(Event {
        event_id: raw.event_id,
        kind,
        member_id: raw.member_id,
        occurred_at,
        store_id: raw.store_id.filter(|s| !s.is_empty()),
        channel: raw.channel,
        order_id: raw.order_id,
        amount,
        currency: raw.currency,
        points,
        items,
        attributes: raw.attributes,
    })
}

fn check_id(field: &str, value: &str) -> Result<(), Rejection> {
    if value.is_empty() {
        return Err(invalid(format!("`{field}` is empty")));
    }
    if value.len() > MAX_ID_LEN {
        return Err(invalid(format!("`{field}` is {} bytes, the limit is {MAX_ID_LEN}", value.len())));
    }
    Ok(())
}

fn parse_time(text: &str, limits: &DecodeLimits) -> Result<i64, Rejection> {
    let micros = match super::time::rfc3339_micros(text) {
        Some(micros) => micros,
        None => chrono::DateTime::parse_from_rfc3339(text)
            .map_err(|e| invalid(format!("`occurred_at` {text:?} is not RFC 3339 with an offset: {e}")))?
            .timestamp_micros(),
    };
    if micros < limits.min_time || micros > limits.max_time {
        return Err(Rejection::new(
            RejectKind::AbsurdTimestamp,
            format!("`occurred_at` {text:?} is outside the accepted range"),
        ));
    }
    Ok(micros)
}

/// `text` is the JSON text of the value: a number, or a string with its quotes.
fn parse_amount(field: &str, text: &str) -> Result<Money, Rejection> {
    let text = match text.as_bytes().first() {
        Some(b'"') => match text[1..].strip_suffix('"') {
            Some(inner) if !inner.contains('\\') => Cow::Borrowed(inner),
            _ => serde_json::from_str::<Cow<'_, str>>(text).map_err(|e| invalid(format!("`{field}`: {e}")))?,
        },
        Some(b'-' | b'0'..=b'9') => Cow::Borrowed(text),
        _ => return Err(invalid(format!("`{field}` must be a number or a decimal string, got {text}"))),
    };
    let money = parse_money(&text).map_err(|e| invalid(format!("`{field}`: {e}")))?;
    if money.0 < 0 {
        return Err(Rejection::new(RejectKind::NegativeAmount, format!("`{field}` is negative: {text}")));
    }
    Ok(money)
}

fn convert_item(raw: ItemFields<'_>) -> Result<Item<'_>, Rejection> {
    if raw.qty <= 0 {
        return Err(invalid(format!("item {:?}: `qty` must be positive, got {}", raw.sku, raw.qty)));
    }
    let unit_price = raw.unit_price.map(|p| parse_amount("items[].unit_price", p)).transpose()?;
    Ok(Item { sku: raw.sku, category: raw.category, brand: raw.brand, qty: raw.qty, unit_price })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// xxh3 of the purchase below as session 2 hashed it (checked with Python's xxhash).
    const PINNED_CONTENT_HASH: u64 = 17_106_923_529_995_041_778;

    const LIMITS: DecodeLimits =
        DecodeLimits { max_message_bytes: 1024, min_time: 946_684_800_000_000, max_time: i64::MAX };

    fn purchase(extra: &str) -> String {
        format!(
            r#"{{"event_id":"e1","type":"purchase","member_id":"m1","occurred_at":"2025-03-01T10:00:00+08:00","store_id":"s1","order_id":"o1","amount":"12.50"{extra}}}"#
        )
    }

    fn reject(text: &str) -> Rejection {
        decode(text.as_bytes(), &LIMITS).unwrap_err()
    }

    #[test]
    fn decodes_a_purchase() {
        let text = purchase(r#","items":[{"sku":"A","qty":2,"unit_price":6.25}]"#);
        let e = decode(text.as_bytes(), &LIMITS).unwrap();
        assert_eq!(e.kind, EventType::Purchase);
        assert_eq!(e.amount, Some(Money(1250)));
        assert_eq!(e.occurred_at, 1_740_794_400_000_000);
        assert_eq!(e.items[0].unit_price, Some(Money(625)));
    }

    #[test]
    fn each_bad_input_has_its_kind_and_reason() {
        assert_eq!(reject("{not json").kind, RejectKind::MalformedJson);
        let missing = reject(r#"{"event_id":"e","type":"purchase","occurred_at":"2025-01-01T00:00:00Z"}"#);
        assert_eq!(missing.kind, RejectKind::InvalidField);
        assert!(missing.reason.contains("member_id"), "{}", missing.reason);
        assert_eq!(reject(&purchase("").replace("purchase", "teleport")).kind, RejectKind::UnknownType);
        let negative = reject(&purchase("").replace("\"12.50\"", "-3"));
        assert_eq!(negative.kind, RejectKind::NegativeAmount);
        assert_eq!(reject(&purchase("").replace("2025-03-01", "1970-03-01")).kind, RejectKind::AbsurdTimestamp);
        assert_eq!(reject(&purchase("").replace("+08:00", "")).kind, RejectKind::InvalidField);
        assert_eq!(reject(&purchase("").replace("\"12.50\"", "true")).kind, RejectKind::InvalidField);
        assert_eq!(reject(&purchase("").replace("\"12.50\"", "\"1.234\"")).kind, RejectKind::InvalidField);
        let big = purchase(&format!(r#","attributes":{{"pad":"{}"}}"#, "x".repeat(2000)));
        assert_eq!(reject(&big).kind, RejectKind::Oversized);
        let no_amount = r#"{"event_id":"e","type":"topup","member_id":"m","occurred_at":"2025-01-01T00:00:00Z"}"#;
        assert!(reject(no_amount).reason.contains("amount"));
        let points = r#"{"event_id":"e","type":"points_earned","member_id":"m","occurred_at":"2025-01-01T00:00:00Z","points":"7"}"#;
        assert_eq!(reject(points).kind, RejectKind::InvalidField);
    }

    #[test]
    fn content_hash_is_the_streamed_hash_of_the_fields() {
        // The digest checkpoints were written with: xxh3 streamed over each field's
        // length-prefixed bytes. It must not change.
        let text = purchase(r#","items":[{"sku":"A","qty":2,"unit_price":6.25}],"attributes":{"a":1}"#);
        let e = decode(text.as_bytes(), &LIMITS).unwrap();
        let mut h = xxhash_rust::xxh3::Xxh3::new();
        e.content_bytes(|s| {
            h.update(&(s.len() as u32).to_le_bytes());
            h.update(s);
        });
        assert_eq!(e.content_hash(), h.digest());
        let pinned = decode(purchase("").as_bytes(), &LIMITS).unwrap().content_hash();
        assert_eq!(pinned, PINNED_CONTENT_HASH, "the content hash of a fixed event changed: old checkpoints would see conflicts");
    }

    #[test]
    fn content_hash_tells_conflicts_from_duplicates() {
        let a = purchase("");
        let b = purchase("").replace("12.50", "12.60");
        let ha = decode(a.as_bytes(), &LIMITS).unwrap().content_hash();
        assert_eq!(ha, decode(a.as_bytes(), &LIMITS).unwrap().content_hash());
        assert_ne!(ha, decode(b.as_bytes(), &LIMITS).unwrap().content_hash());
        // Same content, other spelling of the same instant and amount: a duplicate.
        let c = purchase("").replace("2025-03-01T10:00:00+08:00", "2025-03-01T02:00:00Z").replace("\"12.50\"", "12.5");
        assert_eq!(ha, decode(c.as_bytes(), &LIMITS).unwrap().content_hash());
    }
}

//! The event contract (`schemas/member-event.schema.json`): one JSON object per message.
//!
//! [`decode`] turns message bytes into a borrowed [`Event`] or a [`Rejection`] with a readable
//! reason; nothing here does I/O.

mod decode;
mod money;
mod scan;
mod time;

use std::borrow::Cow;
use std::fmt;

pub use decode::{decode, DecodeLimits};
pub use scan::{plain_object, PLAIN_MAX};
pub use money::{format_money, parse_money, Money, MONEY_SCALE};

/// What happened to a member. The names are the `type` values of the contract.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EventType {
    Purchase,
    Refund,
    PointsEarned,
    PointsRedeemed,
    Topup,
    Signup,
    ProfileUpdated,
    SignIn,
    Review,
    CouponRedeemed,
    StoreVisit,
}

impl EventType {
    pub const ALL: [EventType; 11] = [
        Self::Purchase,
        Self::Refund,
        Self::PointsEarned,
        Self::PointsRedeemed,
        Self::Topup,
        Self::Signup,
        Self::ProfileUpdated,
        Self::SignIn,
        Self::Review,
        Self::CouponRedeemed,
        Self::StoreVisit,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Purchase => "purchase",
            Self::Refund => "refund",
            Self::PointsEarned => "points_earned",
            Self::PointsRedeemed => "points_redeemed",
            Self::Topup => "topup",
            Self::Signup => "signup",
            Self::ProfileUpdated => "profile_updated",
            Self::SignIn => "sign_in",
            Self::Review => "review",
            Self::CouponRedeemed => "coupon_redeemed",
            Self::StoreVisit => "store_visit",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|t| t.as_str() == s)
    }

    /// Types whose `amount` is required.
    pub fn needs_amount(self) -> bool {
        matches!(self, Self::Purchase | Self::Refund | Self::Topup)
    }

    /// Types whose `points` is required.
    pub fn needs_points(self) -> bool {
        matches!(self, Self::PointsEarned | Self::PointsRedeemed)
    }
}

/// One line item of a purchase or refund.
#[derive(Debug, Clone, PartialEq)]
pub struct Item<'a> {
    pub sku: Cow<'a, str>,
    pub category: Option<Cow<'a, str>>,
    pub brand: Option<Cow<'a, str>>,
    pub qty: i64,
    pub unit_price: Option<Money>,
}

/// A decoded, validated event, borrowing from the message bytes where it can.
#[derive(Debug, Clone)]
pub struct Event<'a> {
    pub event_id: Cow<'a, str>,
    pub kind: EventType,
    pub member_id: Cow<'a, str>,
    /// Microseconds since the Unix epoch, UTC.
    pub occurred_at: i64,
    pub store_id: Option<Cow<'a, str>>,
    pub channel: Option<Cow<'a, str>>,
    pub order_id: Option<Cow<'a, str>>,
    pub amount: Option<Money>,
    pub currency: Option<Cow<'a, str>>,
    pub points: Option<i64>,
    pub items: Vec<Item<'a>>,
    /// The `attributes` object as it was sent (its JSON text).
    pub attributes: Option<&'a str>,
}

/// How [`Event::content_bytes`] writes an absent optional text field: one byte 0xff, which
/// no UTF-8 text is, so a reader of the content tells it from every value.
pub(crate) const ABSENT: &[u8] = b"\xff";
/// How it writes an absent amount, points or unit price: no value the decoder accepts
/// (they are never negative).
pub(crate) const NO_NUMBER: i64 = i64::MIN;

impl Event<'_> {
    /// A 64-bit fingerprint of everything the event says, to tell a true duplicate (same
    /// `event_id`, same content) from a conflict (same `event_id`, different content).
    ///
    /// xxh3 of [`Event::write_content`]'s bytes (checkpoints keep its low 32 bits, so the
    /// byte sequence must never change). Built in a reused buffer and hashed in one call:
    /// the same digest as streaming the pieces, without the streaming state. The engine
    /// hashes the content its events-table record carries instead (one copy of the fields,
    /// not two).
    pub fn content_hash(&self) -> u64 {
        thread_local! {
            static BUF: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
        }
        BUF.with_borrow_mut(|buf| {
            buf.clear();
            self.write_content(buf);
            xxhash_rust::xxh3::xxh3_64(buf)
        })
    }

    /// Appends the content to `buf`: each field of [`Event::content_bytes`] as its length
    /// (u32, little-endian) and its bytes.
    #[inline]
    pub fn write_content(&self, buf: &mut Vec<u8>) {
        self.content_bytes(|s| {
            buf.extend_from_slice(&(s.len() as u32).to_le_bytes());
            crate::append::append(buf, s);
        });
    }

    /// Feeds the fields that make up the content, in order: event_id, type, member_id,
    /// occurred_at, store_id, channel, order_id, amount, currency, points, per item (sku,
    /// category, brand, qty, unit_price), attributes. Numbers as 8 little-endian bytes;
    /// absent ones as [`NO_NUMBER`], absent texts as [`ABSENT`].
    pub(crate) fn content_bytes(&self, mut put: impl FnMut(&[u8])) {
        fn opt<'s>(s: &'s Option<Cow<'_, str>>) -> &'s [u8] {
            s.as_deref().map(str::as_bytes).unwrap_or(ABSENT)
        }
        put(self.event_id.as_bytes());
        put(self.kind.as_str().as_bytes());
        put(self.member_id.as_bytes());
        put(&self.occurred_at.to_le_bytes());
        put(opt(&self.store_id));
        put(opt(&self.channel));
        put(opt(&self.order_id));
        put(&self.amount.map(|m| m.0).unwrap_or(NO_NUMBER).to_le_bytes());
        put(opt(&self.currency));
        put(&self.points.unwrap_or(NO_NUMBER).to_le_bytes());
        for item in &self.items {
            put(item.sku.as_bytes());
            put(opt(&item.category));
            put(opt(&item.brand));
            put(&item.qty.to_le_bytes());
            put(&item.unit_price.map(|m| m.0).unwrap_or(NO_NUMBER).to_le_bytes());
        }
        put(self.attributes.map(str::as_bytes).unwrap_or(ABSENT));
    }
}

/// Why a message was not applied. Each kind is counted and logged under its [`Self::name`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RejectKind {
    Oversized,
    MalformedJson,
    InvalidField,
    UnknownType,
    NegativeAmount,
    AbsurdTimestamp,
    Conflict,
    BeyondDedupHorizon,
}

impl RejectKind {
    pub const ALL: [RejectKind; 8] = [
        Self::Oversized,
        Self::MalformedJson,
        Self::InvalidField,
        Self::UnknownType,
        Self::NegativeAmount,
        Self::AbsurdTimestamp,
        Self::Conflict,
        Self::BeyondDedupHorizon,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::Oversized => "oversized",
            Self::MalformedJson => "malformed_json",
            Self::InvalidField => "invalid_field",
            Self::UnknownType => "unknown_type",
            Self::NegativeAmount => "negative_amount",
            Self::AbsurdTimestamp => "absurd_timestamp",
            Self::Conflict => "conflict",
            Self::BeyondDedupHorizon => "beyond_dedup_horizon",
        }
    }
}

/// A message that goes to the dead letters, with a reason a person can act on.
#[derive(Debug, Clone, PartialEq)]
pub struct Rejection {
    pub kind: RejectKind,
    pub reason: String,
}

impl Rejection {
    pub fn new(kind: RejectKind, reason: impl Into<String>) -> Self {
        Self { kind, reason: reason.into() }
    }
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.name(), self.reason)
    }
}

//! The kinds of broken message the generator injects, each a transformation of a valid one.

use serde_json::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Fault {
    NotJson,
    MissingField,
    WrongType,
    UnknownType,
    NegativeAmount,
    AbsurdTimestamp,
    Oversized,
}

impl Fault {
    pub const ALL: [Fault; 7] = [
        Self::NotJson,
        Self::MissingField,
        Self::WrongType,
        Self::UnknownType,
        Self::NegativeAmount,
        Self::AbsurdTimestamp,
        Self::Oversized,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Self::NotJson => "not_json",
            Self::MissingField => "missing_field",
            Self::WrongType => "wrong_type",
            Self::UnknownType => "unknown_type",
            Self::NegativeAmount => "negative_amount",
            Self::AbsurdTimestamp => "absurd_timestamp",
            Self::Oversized => "oversized",
        }
    }
}

fn edit(payload: &[u8], f: impl FnOnce(&mut serde_json::Map<String, Value>)) -> Vec<u8> {
    let mut v: Value = serde_json::from_slice(payload).expect("generator output is JSON");
    f(v.as_object_mut().expect("an object"));
    serde_json::to_vec(&v).expect("serialisable")
}

/// Breaks a valid message in the way `fault` says.
pub fn corrupt(fault: Fault, payload: &[u8]) -> Vec<u8> {
    match fault {
        Fault::NotJson => payload[..payload.len() / 2].to_vec(),
        Fault::MissingField => edit(payload, |o| {
            o.remove("occurred_at");
        }),
        Fault::WrongType => edit(payload, |o| {
            o.insert("member_id".into(), Value::from(12345));
        }),
        Fault::UnknownType => edit(payload, |o| {
            o.insert("type".into(), Value::from("teleport"));
        }),
        Fault::NegativeAmount => edit(payload, |o| {
            o.insert("type".into(), Value::from("topup"));
            o.insert("amount".into(), Value::from("-25.00"));
        }),
        Fault::AbsurdTimestamp => edit(payload, |o| {
            o.insert("occurred_at".into(), Value::from("1899-12-31T00:00:00+08:00"));
        }),
        Fault::Oversized => edit(payload, |o| {
            o.insert("attributes".into(), serde_json::json!({ "note": "x".repeat(80_000) }));
        }),
    }
}

/// Same `event_id`, other content: the later copy is a conflict.
pub fn conflicting(original: &[u8]) -> Vec<u8> {
    edit(original, |o| {
        o.insert("channel".into(), Value::from("conflicting-copy"));
    })
}

//! `generate`: a seeded, streaming source of realistic member events for a multi-store
//! chain, with stated rates of duplicates, conflicts, late events and malformed messages.
//!
//! Nothing is kept per event or per member beyond two small buffers (recent messages for
//! duplicates, a reservoir for late duplicates), so 100M events need no memory.

mod faults;
pub mod output;

use chrono::{DateTime, FixedOffset, NaiveDate, TimeZone, Utc};
use rand::{RngExt, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, LogNormal};
use serde::Serialize;

pub use faults::Fault;

/// What to generate.
#[derive(Debug, Clone)]
pub struct GenerateConfig {
    pub events: u64,
    pub members: u64,
    pub stores: u32,
    pub seed: u64,
    /// First and last day of event time.
    pub start: NaiveDate,
    pub end: NaiveDate,
    /// Share of messages that repeat a recent message byte for byte (producer retries).
    pub duplicate_rate: f64,
    /// Share that repeat an old message (a re-sent day of POS export).
    pub late_duplicate_rate: f64,
    /// Share that reuse an `event_id` with other content.
    pub conflict_rate: f64,
    /// Share of malformed messages, spread evenly over the kinds of [`Fault`].
    pub malformed_rate: f64,
    /// Share of events whose time lies a few days before their neighbours' (offline batches).
    pub late_rate: f64,
    /// Share of messages whose Kafka key is another member than the body's.
    pub key_mismatch_rate: f64,
    /// A purchase carries 1 to this many line items (0: none).
    pub max_items: u32,
}

impl Default for GenerateConfig {
    fn default() -> Self {
        let end = Utc::now().date_naive();
        Self {
            events: 300_000,
            members: 20_000,
            stores: 12,
            seed: 42,
            start: end - chrono::Duration::days(3 * 365),
            end,
            duplicate_rate: 0.01,
            late_duplicate_rate: 0.002,
            conflict_rate: 0.0005,
            malformed_rate: 0.002,
            late_rate: 0.02,
            key_mismatch_rate: 0.0005,
            max_items: 4,
        }
    }
}

/// One message: the Kafka key and the body.
#[derive(Debug, Clone)]
pub struct GeneratedMessage {
    pub key: String,
    pub payload: Vec<u8>,
    pub kind: MessageKind,
}

/// What a message was made as, for the producer's own tally.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum MessageKind {
    Event,
    Duplicate,
    LateDuplicate,
    Conflict,
    Malformed(Fault),
}

#[derive(Serialize)]
struct Item {
    sku: String,
    category: &'static str,
    brand: &'static str,
    qty: i64,
    unit_price: String,
}

#[derive(Serialize)]
struct Body {
    event_id: String,
    #[serde(rename = "type")]
    kind: &'static str,
    member_id: String,
    occurred_at: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    store_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    channel: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    order_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    amount: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    currency: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    points: Option<i64>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    items: Vec<Item>,
    #[serde(skip_serializing_if = "Option::is_none")]
    attributes: Option<serde_json::Value>,
}

const CATEGORIES: [(&str, [&str; 3]); 6] = [
    ("infant_formula", ["Aptamil", "Feihe", "Wyeth"]),
    ("diapers", ["Pampers", "Huggies", "Merries"]),
    ("snacks", ["Oreo", "Three Squirrels", "Lays"]),
    ("beverages", ["Nongfu", "Coca-Cola", "Yili"]),
    ("personal_care", ["Head&Shoulders", "Colgate", "Nivea"]),
    ("household", ["Tide", "Vinda", "Blue Moon"]),
];
const CITIES: [&str; 6] = ["Shanghai", "Beijing", "Hangzhou", "Shenzhen", "Chengdu", "Suzhou"];

/// The stream itself; an iterator of messages.
pub struct Generator {
    config: GenerateConfig,
    rng: ChaCha8Rng,
    produced: u64,
    next_signup: u64,
    start_micros: i64,
    span_micros: i64,
    recent: Vec<Vec<u8>>,
    reservoir: Vec<Vec<u8>>,
    seen: u64,
    amounts: LogNormal<f64>,
    offset: FixedOffset,
}

impl Generator {
    pub fn new(config: GenerateConfig) -> Self {
        let start = Utc.from_utc_datetime(&config.start.and_hms_opt(0, 0, 0).expect("midnight"));
        let end = Utc.from_utc_datetime(&config.end.and_hms_opt(23, 59, 59).expect("valid"));
        Self {
            rng: ChaCha8Rng::seed_from_u64(config.seed),
            produced: 0,
            next_signup: initial_members(config.members),
            start_micros: start.timestamp_micros(),
            span_micros: (end - start).num_microseconds().unwrap_or(1).max(1),
            recent: Vec::with_capacity(1024),
            reservoir: Vec::with_capacity(4096),
            seen: 0,
            amounts: LogNormal::new(4.0, 0.7).expect("valid parameters"),
            offset: FixedOffset::east_opt(8 * 3600).expect("valid offset"),
            config,
        }
    }

    /// Event time of the `i`-th event: spread over the span with a yearly season (denser
    /// around the turn of the year), plus a little jitter.
    fn time_of(&mut self, fraction: f64) -> i64 {
        let years = (self.span_micros as f64 / 3.156e13).max(1.0);
        let warped = fraction - 0.12 * (2.0 * std::f64::consts::PI * years * fraction).sin() / (2.0 * std::f64::consts::PI * years);
        let jitter = self.rng.random_range(-1_800_000_000i64..1_800_000_000);
        (self.start_micros + (warped.clamp(0.0, 1.0) * self.span_micros as f64) as i64 + jitter)
            .clamp(self.start_micros, self.start_micros + self.span_micros)
    }

    fn stamp(&self, micros: i64) -> String {
        let t = DateTime::from_timestamp_micros(micros).expect("in range").with_timezone(&self.offset);
        t.to_rfc3339_opts(chrono::SecondsFormat::Millis, false)
    }

    /// Members active at `fraction` of the span: 30% exist at the start, the rest sign up
    /// evenly over the span. Low numbers are long-standing, heavier buyers.
    fn pick_member(&mut self) -> u64 {
        let active = self.next_signup.max(1);
        let x: f64 = self.rng.random();
        ((active as f64) * x.powf(2.2)) as u64
    }

    fn home_store(&self, member: u64) -> u32 {
        let h = mix(member ^ self.config.seed) as f64 / u64::MAX as f64;
        ((self.config.stores as f64) * h.powf(1.6)) as u32
    }

    fn store_for(&mut self, member: u64) -> u32 {
        let cross = mix(member.wrapping_mul(31) ^ self.config.seed) % 4 == 0;
        if cross && self.rng.random_bool(0.35) {
            let other = mix(member.wrapping_add(7)) as u32 % self.config.stores.max(1);
            return other;
        }
        self.home_store(member)
    }

    fn body(&mut self, member: u64, micros: i64) -> Body {
        let n = self.produced;
        let mut body = Body {
            event_id: format!("E{:012}-{:x}", n, self.config.seed),
            kind: "",
            member_id: member_id(member),
            occurred_at: self.stamp(micros),
            store_id: None,
            channel: None,
            order_id: None,
            amount: None,
            currency: None,
            points: None,
            items: Vec::new(),
            attributes: None,
        };
        let roll: f64 = self.rng.random();
        let kinds = [
            (0.52, "purchase"),
            (0.55, "refund"),
            (0.67, "points_earned"),
            (0.70, "points_redeemed"),
            (0.73, "topup"),
            (0.85, "sign_in"),
            (0.88, "review"),
            (0.92, "coupon_redeemed"),
            (0.98, "store_visit"),
            (1.01, "profile_updated"),
        ];
        body.kind = kinds.iter().find(|(p, _)| roll < *p).map_or("purchase", |(_, k)| k);
        let online = self.rng.random_bool(0.15);
        let store = self.store_for(member);
        match body.kind {
            "purchase" => {
                let heavy = if member < self.config.members / 50 { 1.6 } else { 1.0 };
                let items = match self.config.max_items {
                    0 => 0,
                    max => self.rng.random_range(1..=max),
                };
                let mut total = 0i64;
                for _ in 0..items {
                    let (category, brands) = CATEGORIES[self.rng.random_range(0..CATEGORIES.len())];
                    let brand = brands[self.rng.random_range(0..3)];
                    let price = ((self.amounts.sample(&mut self.rng) * heavy / items as f64) * 100.0).round().max(50.0) as i64;
                    let qty = self.rng.random_range(1..=3);
                    total += price * qty;
                    body.items.push(Item {
                        sku: format!("{}-{}", &category[..3].to_uppercase(), self.rng.random_range(100..400)),
                        category,
                        brand,
                        qty,
                        unit_price: money(price),
                    });
                }
                body.amount = Some(money(total));
                body.order_id = Some(format!("O{n:012}"));
                body.currency = Some("CNY");
                self.place(&mut body, online, store);
            }
            "refund" => {
                body.amount = Some(money(self.rng.random_range(500..15_000)));
                body.order_id = Some(format!("O{:012}", n.saturating_sub(self.rng.random_range(1..5_000))));
                self.place(&mut body, online, store);
            }
            "topup" => {
                body.amount = Some(money(self.rng.random_range(1..=20) * 5_000));
                body.store_id = Some(store_id(store));
                body.channel = Some("pos");
            }
            "points_earned" => body.points = Some(self.rng.random_range(1..=500)),
            "points_redeemed" => body.points = Some(self.rng.random_range(1..=10) * 100),
            "store_visit" | "coupon_redeemed" => {
                body.store_id = Some(store_id(store));
            }
            "profile_updated" => {
                body.attributes = Some(serde_json::json!({ "city": CITIES[self.rng.random_range(0..CITIES.len())] }));
            }
            _ => body.channel = Some("app"),
        }
        body
    }

    fn place(&mut self, body: &mut Body, online: bool, store: u32) {
        if online {
            body.channel = Some("online");
        } else {
            body.channel = Some("pos");
            body.store_id = Some(store_id(store));
        }
    }

    fn signup(&mut self, member: u64, micros: i64) -> Body {
        let month = 1 + (mix(member) % 12);
        let day = 1 + (mix(member + 1) % 28);
        Body {
            event_id: format!("E{:012}-{:x}", self.produced, self.config.seed),
            kind: "signup",
            member_id: member_id(member),
            occurred_at: self.stamp(micros),
            store_id: Some(store_id(self.home_store(member))),
            channel: Some("pos"),
            order_id: None,
            amount: None,
            currency: None,
            points: None,
            items: Vec::new(),
            attributes: Some(serde_json::json!({
                "birthday": format!("{}-{month:02}-{day:02}", 1960 + mix(member + 2) % 45),
                "city": CITIES[(mix(member + 3) % CITIES.len() as u64) as usize],
            })),
        }
    }

    fn remember(&mut self, payload: &[u8]) {
        if self.recent.len() < 1024 {
            self.recent.push(payload.to_vec());
        } else {
            let i = (self.seen % 1024) as usize;
            self.recent[i] = payload.to_vec();
        }
        self.seen += 1;
        if self.reservoir.len() < 4096 {
            self.reservoir.push(payload.to_vec());
        } else {
            let j = self.rng.random_range(0..self.seen);
            if j < 4096 {
                self.reservoir[j as usize] = payload.to_vec();
            }
        }
    }

    fn key_for(&mut self, member_id: String) -> String {
        if self.rng.random_bool(self.config.key_mismatch_rate) {
            format!("{member_id}-other")
        } else {
            member_id
        }
    }
}

impl Iterator for Generator {
    type Item = GeneratedMessage;

    fn next(&mut self) -> Option<GeneratedMessage> {
        if self.produced >= self.config.events {
            return None;
        }
        let c = self.config.clone();
        let (dup, late_dup, conflict, bad) = (c.duplicate_rate, c.late_duplicate_rate, c.conflict_rate, c.malformed_rate);
        let roll: f64 = self.rng.random();
        let fraction = self.produced as f64 / c.events as f64;
        self.produced += 1;
        if !self.recent.is_empty() && roll < dup {
            let payload = self.recent[self.rng.random_range(0..self.recent.len())].clone();
            return Some(GeneratedMessage { key: key_of(&payload), payload, kind: MessageKind::Duplicate });
        }
        if !self.reservoir.is_empty() && roll < dup + late_dup {
            let payload = self.reservoir[self.rng.random_range(0..self.reservoir.len())].clone();
            return Some(GeneratedMessage { key: key_of(&payload), payload, kind: MessageKind::LateDuplicate });
        }
        if !self.recent.is_empty() && roll < dup + late_dup + conflict {
            let original = &self.recent[self.rng.random_range(0..self.recent.len())];
            let payload = faults::conflicting(original);
            return Some(GeneratedMessage { key: key_of(&payload), payload, kind: MessageKind::Conflict });
        }
        let mut micros = self.time_of(fraction);
        if self.rng.random_bool(c.late_rate) {
            micros -= self.rng.random_range(1..=5) * 86_400_000_000;
            micros = micros.max(self.start_micros);
        }
        let signups_due = initial_members(c.members) + ((c.members - initial_members(c.members)) as f64 * fraction) as u64;
        let body = if self.next_signup < c.members && self.next_signup <= signups_due {
            self.next_signup += 1;
            self.signup(self.next_signup - 1, micros)
        } else {
            let member = self.pick_member();
            self.body(member, micros)
        };
        let member = body.member_id.clone();
        let payload = serde_json::to_vec(&body).expect("serialisable");
        if roll < dup + late_dup + conflict + bad {
            let fault = Fault::ALL[self.rng.random_range(0..Fault::ALL.len())];
            let payload = faults::corrupt(fault, &payload);
            return Some(GeneratedMessage { key: member, payload, kind: MessageKind::Malformed(fault) });
        }
        self.remember(&payload);
        let key = self.key_for(member);
        Some(GeneratedMessage { key, payload, kind: MessageKind::Event })
    }
}

fn initial_members(members: u64) -> u64 {
    (members * 3 / 10).max(1).min(members)
}

pub fn member_id(n: u64) -> String {
    format!("M{n:08}")
}

fn store_id(n: u32) -> String {
    format!("S{:03}", n + 1)
}

fn money(minor: i64) -> String {
    format!("{}.{:02}", minor / 100, minor % 100)
}

fn key_of(payload: &[u8]) -> String {
    serde_json::from_slice::<serde_json::Value>(payload)
        .ok()
        .and_then(|v| v.get("member_id").and_then(|m| m.as_str()).map(str::to_string))
        .unwrap_or_default()
}

/// A fixed 64-bit mixer (splitmix64), so derived traits are stable across versions.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    x = (x ^ (x >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    x ^ (x >> 31)
}

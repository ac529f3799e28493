//! Arrow schemas of the Parquet tables (documented in `schemas/tables.md`).

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};
use parquet::basic::Encoding;

pub const MONEY: DataType = DataType::Decimal128(18, 2);

pub fn timestamp() -> DataType {
    DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()))
}

pub fn item_fields() -> Fields {
    Fields::from(vec![
        Field::new("sku", DataType::Utf8, false),
        Field::new("category", DataType::Utf8, true),
        Field::new("brand", DataType::Utf8, true),
        Field::new("qty", DataType::Int64, false),
        Field::new("unit_price", MONEY, true),
    ])
}

/// `events/dt=YYYY-MM-DD/*.parquet`: every applied event (`dt` lives in the path).
pub fn events() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("event_id", DataType::Utf8, false),
        Field::new("type", DataType::Utf8, false),
        Field::new("member_id", DataType::Utf8, false),
        Field::new("occurred_at", timestamp(), false),
        Field::new("store_id", DataType::Utf8, true),
        Field::new("channel", DataType::Utf8, true),
        Field::new("order_id", DataType::Utf8, true),
        Field::new("amount", MONEY, true),
        Field::new("currency", DataType::Utf8, false),
        Field::new("points", DataType::Int64, true),
        Field::new(
            "items",
            DataType::List(Arc::new(Field::new("item", DataType::Struct(item_fields()), true))),
            true,
        ),
        Field::new("attributes", DataType::Utf8, true),
        Field::new("source", DataType::Utf8, false),
        Field::new("partition", DataType::Int32, false),
        Field::new("offset", DataType::Int64, false),
        Field::new("ingested_at", timestamp(), false),
    ]))
}

/// Columns of `table` with too many distinct values for a dictionary to pay, by Parquet
/// column path (see `TableStore::properties`): unique per row (`event_id`, `order_id`,
/// `offset`, a member's id in `members`, ...) or nearly (a day's `member_id`s,
/// `occurred_at`s and `amount`s: measured at 600K members, without a dictionary the events
/// table is 7% smaller and faster to write; the members and member_store tables a quarter
/// and a third smaller, with 13% fewer instructions to write them — callgrind, 30K members).
pub fn dictionary_free_columns(table: &str) -> &'static [&'static str] {
    match table {
        "events" => &[
            "event_id", "order_id", "attributes", "offset", "ingested_at", "member_id", "occurred_at", "amount",
        ],
        "members" => &["member_id", "attributes", "signed_up_at", "first_purchase_at", "last_purchase_at", "monetary"],
        "member_store" => &["member_id", "purchase_amount", "refund_amount"],
        // A dead letter's raw message is as unique as its offset, and can be megabytes
        // (an oversized message is kept whole): a dictionary hashed and copied every one
        // before falling back.
        "dead_letters" => &["offset", "key", "payload", "event_id", "member_id", "ingested_at"],
        _ => &[],
    }
}

/// Columns of `table` written with a delta encoding instead of PLAIN (dictionary-free
/// columns only): DELTA_BINARY_PACKED for integers close to the previous row's (offsets,
/// ingest and event times, amounts), DELTA_BYTE_ARRAY for ids sharing a prefix with the
/// previous row's (`member_store` lists a member's stores in consecutive rows). zstd then
/// has a fraction of the bytes to compress: measured on the benchmark's events (callgrind,
/// 300K events), 6% fewer instructions writing the tables and a 10% smaller events table.
/// Every Parquet reader of the last years decodes them (parquet-mr/Spark, Arrow
/// C++/pyarrow, DuckDB, DataFusion).
pub fn delta_encoded_columns(table: &str) -> &'static [(&'static str, Encoding)] {
    const INTEGERS: Encoding = Encoding::DELTA_BINARY_PACKED;
    const IDS: Encoding = Encoding::DELTA_BYTE_ARRAY;
    match table {
        "events" => &[
            ("event_id", IDS),
            ("member_id", IDS),
            ("order_id", IDS),
            ("occurred_at", INTEGERS),
            ("amount", INTEGERS),
            ("offset", INTEGERS),
            ("ingested_at", INTEGERS),
        ],
        "members" => &[("member_id", IDS)],
        "member_store" => &[("member_id", IDS)],
        _ => &[],
    }
}

/// The only columns of `table` with statistics, when not all: min/max per page and row
/// group select something only where values follow the file's order. Events are written
/// in arrival order, so `occurred_at` prunes; member, store, type and item columns are
/// spread over every page (their statistics took a sixth of the time spent writing the
/// table: perf samples in parquet and zstd, 6M events at 600K members).
pub fn statistics_columns(table: &str) -> Option<&'static [&'static str]> {
    match table {
        "events" => Some(&["occurred_at"]),
        // Not on the raw messages: their minimum and maximum were compared (and copied)
        // in full, megabytes per oversized message.
        "dead_letters" => Some(&["partition", "offset", "ingested_at"]),
        _ => None,
    }
}

/// The member values the state derives as of a day: the first columns of the members table
/// and what population statistics and rules see.
pub fn member_values() -> SchemaRef {
    Arc::new(Schema::new(member_value_fields()))
}

fn member_value_fields() -> Vec<Field> {
    vec![
        Field::new("member_id", DataType::Utf8, false),
        Field::new("signed_up_at", timestamp(), true),
        Field::new("first_purchase_at", timestamp(), true),
        Field::new("last_purchase_at", timestamp(), true),
        Field::new("recency_days", DataType::Int32, true),
        Field::new("days_since_first_purchase", DataType::Int32, true),
        Field::new("frequency", DataType::Int64, true),
        Field::new("monetary", MONEY, true),
        Field::new("purchases_total", DataType::Int64, false),
        Field::new("stores_in_window", DataType::Int64, true),
        Field::new("last_store_id", DataType::Utf8, true),
        Field::new("attributes", DataType::Utf8, true),
        Field::new("as_of", DataType::Date32, false),
        Field::new("updated_at", timestamp(), false),
    ]
}

fn string_list() -> DataType {
    DataType::List(Arc::new(Field::new("item", DataType::Utf8, false)))
}

fn score_fields() -> [Field; 3] {
    ["r_score", "f_score", "m_score"].map(|n| Field::new(n, DataType::Int32, true))
}

/// What segment rules see: the member values and the three scores.
pub fn segment_inputs() -> SchemaRef {
    let mut f = member_value_fields();
    f.extend(score_fields());
    Arc::new(Schema::new(f))
}

/// What tag rules see: segment inputs and the segment.
pub fn tag_inputs() -> SchemaRef {
    let mut f = member_value_fields();
    f.extend(score_fields());
    f.push(Field::new("rfm_segment", DataType::Utf8, true));
    Arc::new(Schema::new(f))
}

/// `members/members.parquet`: one row per member, as of `as_of`, with the classification
/// of the latest scoring (`scored_at`, with the cut points of refresh `refresh_id`).
pub fn members() -> SchemaRef {
    let mut f = member_value_fields();
    f.extend(score_fields());
    f.push(Field::new("rfm_segment", DataType::Utf8, true));
    f.push(Field::new("tags", string_list(), false));
    f.push(Field::new("manual_tags", string_list(), false));
    f.push(Field::new("scored_at", timestamp(), true));
    f.push(Field::new("refresh_id", DataType::Int64, true));
    Arc::new(Schema::new(f))
}

/// `store_day/*.parquet`: per business day and store, one epoch's sums (add rows up).
pub fn store_day() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("dt", DataType::Date32, false),
        Field::new("store_id", DataType::Utf8, true),
        Field::new("orders", DataType::Int64, false),
        Field::new("purchase_amount", MONEY, false),
        Field::new("refunds", DataType::Int64, false),
        Field::new("refund_amount", MONEY, false),
        Field::new("month_buyers_added", DataType::Int64, false),
    ]))
}

/// `member_store/member_store.parquet`: per member and store (null: online), all time.
pub fn member_store() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("member_id", DataType::Utf8, false),
        Field::new("store_id", DataType::Utf8, true),
        Field::new("orders", DataType::Int64, false),
        Field::new("purchase_amount", MONEY, false),
        Field::new("refund_amount", MONEY, false),
        Field::new("first_purchase_day", DataType::Date32, true),
        Field::new("last_purchase_day", DataType::Date32, true),
    ]))
}

/// `rfm_thresholds/*.parquet`: every refresh's cut points and statistics, one per row.
pub fn rfm_thresholds() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("refresh_id", DataType::Int64, false),
        Field::new("as_of", DataType::Date32, false),
        Field::new("computed_at", timestamp(), false),
        Field::new("name", DataType::Utf8, false),
        Field::new("position", DataType::Int32, true),
        Field::new("percentile", DataType::Int32, true),
        Field::new("value", DataType::Decimal128(38, 4), true),
        Field::new("population", DataType::Utf8, true),
        Field::new("population_size", DataType::Int64, false),
    ]))
}

/// `segment_changes/*.parquet`: each change of a member's segment or tags, once.
pub fn segment_changes() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("member_id", DataType::Utf8, false),
        Field::new("changed_at", timestamp(), false),
        Field::new("attribute", DataType::Utf8, false),
        Field::new("old_value", DataType::Utf8, true),
        Field::new("new_value", DataType::Utf8, true),
        Field::new("cause", DataType::Utf8, false),
        Field::new("event_id", DataType::Utf8, true),
        Field::new("refresh_id", DataType::Int64, true),
        Field::new("reason", DataType::Utf8, true),
        Field::new("as_of", DataType::Date32, false),
        Field::new("epoch", DataType::Int64, false),
    ]))
}

/// `dead_letters/*.parquet`: every message that was not applied, with why.
pub fn dead_letters() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("source", DataType::Utf8, false),
        Field::new("partition", DataType::Int32, false),
        Field::new("offset", DataType::Int64, false),
        Field::new("key", DataType::Binary, true),
        Field::new("payload", DataType::Binary, false),
        Field::new("reason_kind", DataType::Utf8, false),
        Field::new("reason", DataType::Utf8, false),
        Field::new("event_id", DataType::Utf8, true),
        Field::new("member_id", DataType::Utf8, true),
        Field::new("ingested_at", timestamp(), false),
    ]))
}

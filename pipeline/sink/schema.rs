//! Arrow schemas of the Parquet tables (documented in `schemas/tables.md`).

use std::sync::Arc;

use arrow::datatypes::{DataType, Field, Fields, Schema, SchemaRef, TimeUnit};

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

/// `members/members.parquet`: one row per member, as of `as_of`.
pub fn members() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("member_id", DataType::Utf8, false),
        Field::new("signed_up_at", timestamp(), true),
        Field::new("first_purchase_at", timestamp(), true),
        Field::new("last_purchase_at", timestamp(), true),
        Field::new("recency_days", DataType::Int32, true),
        Field::new("frequency", DataType::Int64, true),
        Field::new("monetary", MONEY, true),
        Field::new("purchases_total", DataType::Int64, false),
        Field::new("stores_in_window", DataType::Int64, true),
        Field::new("last_store_id", DataType::Utf8, true),
        Field::new("attributes", DataType::Utf8, true),
        Field::new("as_of", DataType::Date32, false),
        Field::new("updated_at", timestamp(), false),
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

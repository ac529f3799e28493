//! Accepted events, buffered as Arrow columns per business day until the next checkpoint.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{
    ArrayBuilder, ArrayRef, Decimal128Builder, Int32Builder, Int64Builder, ListArray, RecordBatch, StringBuilder,
    StructArray, TimestampMicrosecondBuilder,
};
use arrow::buffer::OffsetBuffer;
use arrow::datatypes::{DataType, Field};
use arrow::error::ArrowError;

use super::schema;
use crate::event::Event;
use crate::state::Day;

/// Where a message came from: a topic or a file, its partition (0 for files), its offset
/// (the line number for files).
#[derive(Debug, Clone, Copy)]
pub struct Origin<'a> {
    pub source: &'a str,
    pub partition: i32,
    pub offset: i64,
}

#[derive(Default)]
struct DayColumns {
    event_id: StringBuilder,
    kind: StringBuilder,
    member_id: StringBuilder,
    occurred_at: TimestampMicrosecondBuilder,
    store_id: StringBuilder,
    channel: StringBuilder,
    order_id: StringBuilder,
    amount: Decimal128Builder,
    currency: StringBuilder,
    points: Int64Builder,
    item_offsets: Vec<i32>,
    item_valid: Vec<bool>,
    sku: StringBuilder,
    category: StringBuilder,
    brand: StringBuilder,
    qty: Int64Builder,
    unit_price: Decimal128Builder,
    attributes: StringBuilder,
    source: StringBuilder,
    partition: Int32Builder,
    offset: Int64Builder,
    ingested_at: TimestampMicrosecondBuilder,
    rows: usize,
}

/// Accepted events of the current epoch, grouped by `dt`.
#[derive(Default)]
pub struct EventsBuffer {
    days: BTreeMap<Day, DayColumns>,
    rows: usize,
}

impl EventsBuffer {
    pub fn rows(&self) -> usize {
        self.rows
    }

    pub fn push(&mut self, day: Day, e: &Event<'_>, origin: Origin<'_>, default_currency: &str, now: i64) {
        let c = self.days.entry(day).or_default();
        if c.item_offsets.is_empty() {
            c.item_offsets.push(0);
        }
        c.event_id.append_value(&e.event_id);
        c.kind.append_value(e.kind.as_str());
        c.member_id.append_value(&e.member_id);
        c.occurred_at.append_value(e.occurred_at);
        c.store_id.append_option(e.store_id.as_deref());
        c.channel.append_option(e.channel.as_deref());
        c.order_id.append_option(e.order_id.as_deref());
        c.amount.append_option(e.amount.map(|m| m.0 as i128));
        c.currency.append_value(e.currency.as_deref().unwrap_or(default_currency));
        c.points.append_option(e.points);
        for item in &e.items {
            c.sku.append_value(&item.sku);
            c.category.append_option(item.category.as_deref());
            c.brand.append_option(item.brand.as_deref());
            c.qty.append_value(item.qty);
            c.unit_price.append_option(item.unit_price.map(|m| m.0 as i128));
        }
        c.item_offsets.push(c.sku.len() as i32);
        c.item_valid.push(!e.items.is_empty());
        c.attributes.append_option(e.attributes);
        c.source.append_value(origin.source);
        c.partition.append_value(origin.partition);
        c.offset.append_value(origin.offset);
        c.ingested_at.append_value(now);
        c.rows += 1;
        self.rows += 1;
    }

    /// Empties the buffer into one record batch per day, oldest day first.
    pub fn take(&mut self) -> Result<Vec<(Day, RecordBatch)>, ArrowError> {
        self.rows = 0;
        std::mem::take(&mut self.days).into_iter().map(|(day, c)| Ok((day, c.finish()?))).collect()
    }
}

impl DayColumns {
    fn finish(mut self) -> Result<RecordBatch, ArrowError> {
        let money = |b: &mut Decimal128Builder| -> Result<ArrayRef, ArrowError> {
            Ok(Arc::new(b.finish().with_precision_and_scale(18, 2)?))
        };
        let utc = |b: &mut TimestampMicrosecondBuilder| -> ArrayRef {
            Arc::new(b.finish().with_timezone("UTC"))
        };
        let item_struct = StructArray::try_new(
            schema::item_fields(),
            vec![
                Arc::new(self.sku.finish()),
                Arc::new(self.category.finish()),
                Arc::new(self.brand.finish()),
                Arc::new(self.qty.finish()),
                money(&mut self.unit_price)?,
            ],
            None,
        )?;
        let items = ListArray::try_new(
            Arc::new(Field::new("item", DataType::Struct(schema::item_fields()), true)),
            OffsetBuffer::new(self.item_offsets.into()),
            Arc::new(item_struct),
            Some(self.item_valid.into()),
        )?;
        RecordBatch::try_new(
            schema::events(),
            vec![
                Arc::new(self.event_id.finish()),
                Arc::new(self.kind.finish()),
                Arc::new(self.member_id.finish()),
                utc(&mut self.occurred_at),
                Arc::new(self.store_id.finish()),
                Arc::new(self.channel.finish()),
                Arc::new(self.order_id.finish()),
                money(&mut self.amount)?,
                Arc::new(self.currency.finish()),
                Arc::new(self.points.finish()),
                Arc::new(items),
                Arc::new(self.attributes.finish()),
                Arc::new(self.source.finish()),
                Arc::new(self.partition.finish()),
                Arc::new(self.offset.finish()),
                utc(&mut self.ingested_at),
            ],
        )
    }
}

//! The members table: the member state rendered as rows, as of a day.

use std::sync::Arc;

use arrow::array::{
    Date32Builder, Decimal128Builder, Int32Builder, Int64Builder, RecordBatch, StringBuilder,
    TimestampMicrosecondBuilder,
};
use arrow::error::ArrowError;

use super::schema;
use crate::state::members::NONE;
use crate::state::{BusinessCalendar, Day, MemberTable};

/// Rows `range` of the members table as of `as_of`.
pub fn to_batch(
    table: &MemberTable,
    range: std::ops::Range<usize>,
    as_of: Day,
    window_days: i32,
    calendar: &BusinessCalendar,
) -> Result<RecordBatch, ArrowError> {
    let n = range.len();
    let mut member_id = StringBuilder::with_capacity(n, n * 12);
    let mut signed_up_at = TimestampMicrosecondBuilder::with_capacity(n);
    let mut first = TimestampMicrosecondBuilder::with_capacity(n);
    let mut last = TimestampMicrosecondBuilder::with_capacity(n);
    let mut recency = Int32Builder::with_capacity(n);
    let mut frequency = Int64Builder::with_capacity(n);
    let mut monetary = Decimal128Builder::with_capacity(n);
    let mut total = Int64Builder::with_capacity(n);
    let mut stores = Int64Builder::with_capacity(n);
    let mut last_store = StringBuilder::new();
    let mut attributes = StringBuilder::new();
    let mut as_of_col = Date32Builder::with_capacity(n);
    let mut updated_at = TimestampMicrosecondBuilder::with_capacity(n);
    let opt = |t: i64| (t != NONE).then_some(t);
    for m in range {
        member_id.append_value(table.ids.get(m as u32));
        signed_up_at.append_option(opt(table.rows[m].signed_up_at));
        first.append_option(opt(table.rows[m].first_purchase));
        let last_purchase = opt(table.rows[m].last_purchase);
        last.append_option(last_purchase);
        let d = table.derive(m, as_of, window_days, last_purchase.map(|t| calendar.day(t)));
        recency.append_option(d.recency_days);
        // Members without any purchase have null purchase fields.
        let buyer = last_purchase.is_some();
        frequency.append_option(buyer.then_some(d.frequency as i64));
        monetary.append_option(buyer.then_some(d.monetary as i128));
        stores.append_option(buyer.then_some(d.stores_in_window as i64));
        total.append_value(table.rows[m].purchases_total as i64);
        last_store.append_option(table.last_store_id(m));
        attributes.append_option(table.attributes_json(m));
        as_of_col.append_value(as_of);
        updated_at.append_value(table.rows[m].updated_at);
    }
    RecordBatch::try_new(
        schema::members(),
        vec![
            Arc::new(member_id.finish()),
            Arc::new(signed_up_at.finish().with_timezone("UTC")),
            Arc::new(first.finish().with_timezone("UTC")),
            Arc::new(last.finish().with_timezone("UTC")),
            Arc::new(recency.finish()),
            Arc::new(frequency.finish()),
            Arc::new(monetary.finish().with_precision_and_scale(18, 2)?),
            Arc::new(total.finish()),
            Arc::new(stores.finish()),
            Arc::new(last_store.finish()),
            Arc::new(attributes.finish()),
            Arc::new(as_of_col.finish()),
            Arc::new(updated_at.finish().with_timezone("UTC")),
        ],
    )
}

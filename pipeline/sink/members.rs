//! The members table: the member state rendered as rows, as of a day, with each member's
//! latest classification.

use std::sync::Arc;

use arrow::array::{
    ArrayRef, Date32Builder, ListBuilder, Decimal128Builder, Int32Builder, Int64Builder, RecordBatch, StringBuilder,
    TimestampMicrosecondBuilder,
};
use arrow::datatypes::{DataType, Field};
use arrow::error::ArrowError;

use super::schema;
use crate::scoring::Labels;
use crate::state::members::NONE;
use crate::state::scoring::ScoringState;
use crate::state::{BusinessCalendar, Day, MemberTable};

/// The values (see [`schema::member_values`]) of `members` as of `as_of`.
pub fn values_batch(
    table: &MemberTable,
    members: impl ExactSizeIterator<Item = usize>,
    as_of: Day,
    window_days: i32,
    calendar: &BusinessCalendar,
) -> Result<RecordBatch, ArrowError> {
    let n = members.len();
    let mut member_id = StringBuilder::with_capacity(n, n * 12);
    let mut signed_up_at = TimestampMicrosecondBuilder::with_capacity(n);
    let mut first = TimestampMicrosecondBuilder::with_capacity(n);
    let mut last = TimestampMicrosecondBuilder::with_capacity(n);
    let mut recency = Int32Builder::with_capacity(n);
    let mut since_first = Int32Builder::with_capacity(n);
    let mut frequency = Int64Builder::with_capacity(n);
    let mut monetary = Decimal128Builder::with_capacity(n);
    let mut total = Int64Builder::with_capacity(n);
    let mut stores = Int64Builder::with_capacity(n);
    let mut last_store = StringBuilder::new();
    let mut attributes = StringBuilder::new();
    let mut as_of_col = Date32Builder::with_capacity(n);
    let mut updated_at = TimestampMicrosecondBuilder::with_capacity(n);
    let opt = |t: i64| (t != NONE).then_some(t);
    for m in members {
        member_id.append_value(table.ids.get(m as u32));
        signed_up_at.append_option(opt(table.rows[m].signed_up_at));
        let first_purchase = opt(table.rows[m].first_purchase);
        first.append_option(first_purchase);
        let last_purchase = opt(table.rows[m].last_purchase);
        last.append_option(last_purchase);
        let d = table.derive(m, as_of, window_days, last_purchase.map(|t| calendar.day(t)));
        recency.append_option(d.recency_days);
        since_first.append_option(first_purchase.map(|t| as_of - calendar.day(t)));
        // Members without any purchase have null purchase fields.
        let buyer = last_purchase.is_some();
        frequency.append_option(buyer.then_some(d.frequency as i64));
        monetary.append_option(buyer.then_some(d.monetary as i128));
        stores.append_option(buyer.then_some(d.stores_in_window as i64));
        total.append_value(table.rows[m].purchases_total as i64);
        last_store.append_option(table.last_store_id(m));
        let written = table.write_attributes_json(m, &mut attributes);
        if written.map_err(|_| ArrowError::ComputeError(format!("member {m}'s attributes could not be written")))? {
            attributes.append_value("");
        } else {
            attributes.append_null();
        }
        as_of_col.append_value(as_of);
        updated_at.append_value(table.rows[m].updated_at);
    }
    RecordBatch::try_new(
        schema::member_values(),
        vec![
            Arc::new(member_id.finish()),
            Arc::new(signed_up_at.finish().with_timezone("UTC")),
            Arc::new(first.finish().with_timezone("UTC")),
            Arc::new(last.finish().with_timezone("UTC")),
            Arc::new(recency.finish()),
            Arc::new(since_first.finish()),
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

/// The members table's rows: `values` (of members `members`, in order) with their
/// classification from `scoring` (labels of refresh `refresh_id`).
pub fn table_batch(
    values: &RecordBatch,
    members: impl ExactSizeIterator<Item = usize>,
    scoring: &ScoringState,
    labels: &Labels,
) -> Result<RecordBatch, ArrowError> {
    let n = members.len();
    let mut scores = [0, 1, 2].map(|_| Int32Builder::with_capacity(n));
    let mut segment = StringBuilder::with_capacity(n, n * 12);
    let list = || ListBuilder::new(StringBuilder::new()).with_field(Arc::new(Field::new("item", DataType::Utf8, false)));
    let (mut tags, mut manual_tags) = (list(), list());
    let mut scored_at = TimestampMicrosecondBuilder::with_capacity(n);
    let mut refresh_id = Int64Builder::with_capacity(n);
    let refresh = scoring.refresh.as_ref().map(|r| r.id as i64);
    for m in members {
        let c = scoring.class(m);
        let score = |s: u8| (c.scored() && s > 0).then_some(s as i32);
        for (b, s) in scores.iter_mut().zip([c.r, c.f, c.m]) {
            b.append_option(score(s));
        }
        segment.append_option((c.scored() && c.segment > 0).then(|| labels.segments[c.segment as usize - 1].as_str()));
        for (k, t) in labels.tags.iter().enumerate() {
            if c.scored() && c.tags >> k & 1 == 1 {
                tags.values().append_value(t);
            }
        }
        for t in scoring.manual_tags(m as u32) {
            if !(c.scored() && labels.tags.iter().enumerate().any(|(k, a)| *a == t.tag && c.tags >> k & 1 == 1)) {
                tags.values().append_value(&t.tag);
            }
            manual_tags.values().append_value(&t.tag);
        }
        tags.append(true);
        manual_tags.append(true);
        scored_at.append_option(c.scored().then_some(c.scored_at));
        refresh_id.append_option(refresh.filter(|_| c.scored()));
    }
    let mut columns = values.columns().to_vec();
    columns.extend(scores.iter_mut().map(|b| Arc::new(b.finish()) as ArrayRef));
    columns.push(Arc::new(segment.finish()));
    columns.push(Arc::new(tags.finish()));
    columns.push(Arc::new(manual_tags.finish()));
    columns.push(Arc::new(scored_at.finish().with_timezone("UTC")));
    columns.push(Arc::new(refresh_id.finish()));
    RecordBatch::try_new(schema::members(), columns)
}

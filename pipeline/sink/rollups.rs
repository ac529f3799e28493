//! The rollup tables (see `state::rollups`) as record batches: `store_day` (an epoch's per-store, per-day sums) and
//! `member_store` (per member and store, all time).

use std::sync::Arc;

use arrow::array::{
    Date32Array, Date32Builder, Decimal128Array, Decimal128Builder, Int64Array, Int64Builder, RecordBatch, StringArray,
    StringBuilder,
};
use arrow::error::ArrowError;

use super::schema;
use crate::state::rollups::{MemberStore, StoreDay, ONLINE};
use crate::state::Day;

/// Rows for `sums` ((day, store index) -> sums); `store` names a store index.
pub fn to_batch<'a>(sums: &[((Day, u32), StoreDay)], store: impl Fn(u32) -> &'a str) -> Result<RecordBatch, ArrowError> {
    let money = |f: fn(&StoreDay) -> i64| -> Result<Decimal128Array, ArrowError> {
        sums.iter().map(|(_, s)| Some(f(s) as i128)).collect::<Decimal128Array>().with_precision_and_scale(18, 2)
    };
    let int = |f: fn(&StoreDay) -> i64| Int64Array::from_iter_values(sums.iter().map(|(_, s)| f(s)));
    RecordBatch::try_new(
        schema::store_day(),
        vec![
            Arc::new(Date32Array::from_iter_values(sums.iter().map(|((d, _), _)| *d))),
            Arc::new(sums.iter().map(|((_, s), _)| (*s != ONLINE).then(|| store(*s))).collect::<StringArray>()),
            Arc::new(int(|s| s.orders)),
            Arc::new(money(|s| s.purchase_amount)?),
            Arc::new(int(|s| s.refunds)),
            Arc::new(money(|s| s.refund_amount)?),
            Arc::new(int(|s| s.month_buyers_added)),
        ],
    )
}

/// The `member_store` rows of `entries` ((member, store index) -> sums), named by `member`
/// and `store`.
pub fn member_store_batch<'a>(
    entries: &[(u32, u32, MemberStore)],
    member: impl Fn(u32) -> &'a str,
    store: impl Fn(u32) -> &'a str,
) -> Result<RecordBatch, ArrowError> {
    let n = entries.len();
    let (mut ids, mut stores) = (StringBuilder::with_capacity(n, n * 10), StringBuilder::with_capacity(n, n * 5));
    let mut orders = Int64Builder::with_capacity(n);
    let (mut bought, mut refunded) = (Decimal128Builder::with_capacity(n), Decimal128Builder::with_capacity(n));
    let (mut first, mut last) = (Date32Builder::with_capacity(n), Date32Builder::with_capacity(n));
    for (m, s, v) in entries {
        ids.append_value(member(*m));
        stores.append_option((*s != ONLINE).then(|| store(*s)));
        orders.append_value(v.orders as i64);
        bought.append_value(v.purchase_amount as i128);
        refunded.append_value(v.refund_amount as i128);
        first.append_option((v.orders > 0).then_some(v.first_day));
        last.append_option((v.orders > 0).then_some(v.last_day));
    }
    RecordBatch::try_new(
        schema::member_store(),
        vec![
            Arc::new(ids.finish()),
            Arc::new(stores.finish()),
            Arc::new(orders.finish()),
            Arc::new(bought.finish().with_precision_and_scale(18, 2)?),
            Arc::new(refunded.finish().with_precision_and_scale(18, 2)?),
            Arc::new(first.finish()),
            Arc::new(last.finish()),
        ],
    )
}

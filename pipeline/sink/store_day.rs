//! `store_day`: the epoch's per-store, per-day sums as a record batch.

use std::sync::Arc;

use arrow::array::{Date32Array, Decimal128Array, Int64Array, RecordBatch, StringArray};
use arrow::error::ArrowError;

use super::schema;
use crate::state::rollups::{StoreDay, ONLINE};
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

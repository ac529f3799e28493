//! Messages that were not applied, with the raw bytes and the reason, until the checkpoint.

use std::sync::Arc;

use arrow::array::{BinaryBuilder, Int32Builder, Int64Builder, RecordBatch, StringBuilder, TimestampMicrosecondBuilder};
use arrow::error::ArrowError;

use super::events::Origin;
use super::schema;
use crate::event::Rejection;

/// One dead letter, kept whole for the dead-letter topic as well as the table.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    pub source: String,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub payload: Vec<u8>,
    pub rejection: Rejection,
    pub event_id: Option<String>,
    pub member_id: Option<String>,
    pub ingested_at: i64,
}

impl DeadLetter {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        origin: Origin<'_>,
        key: Option<&[u8]>,
        payload: &[u8],
        rejection: Rejection,
        event_id: Option<&str>,
        member_id: Option<&str>,
        now: i64,
    ) -> Self {
        Self {
            source: origin.source.to_string(),
            partition: origin.partition,
            offset: origin.offset,
            key: key.map(<[u8]>::to_vec),
            payload: payload.to_vec(),
            rejection,
            event_id: event_id.map(str::to_string),
            member_id: member_id.map(str::to_string),
            ingested_at: now,
        }
    }
}

/// Payload bytes per Arrow batch: a checkpoint's dead letters can hold hundreds of
/// oversized messages (tens of MB), and one batch of them all was fresh memory at every
/// checkpoint (page zeroing was 2.5% of the benchmark); batches this size reuse theirs.
const BATCH_PAYLOAD_BYTES: usize = 4 << 20;

/// The letters as Arrow batches of at most [`BATCH_PAYLOAD_BYTES`] of payload (or one
/// letter, when a single payload is larger), in order.
pub fn batches(letters: &[DeadLetter]) -> impl Iterator<Item = Result<RecordBatch, ArrowError>> + '_ {
    let mut rest = letters;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let mut bytes = 0;
        let n = rest
            .iter()
            .position(|d| {
                bytes += d.payload.len();
                bytes > BATCH_PAYLOAD_BYTES
            })
            .unwrap_or(rest.len())
            .max(1);
        let (head, tail) = rest.split_at(n);
        rest = tail;
        Some(to_batch(head))
    })
}

fn to_batch(letters: &[DeadLetter]) -> Result<RecordBatch, ArrowError> {
    let mut source = StringBuilder::new();
    let mut partition = Int32Builder::new();
    let mut offset = Int64Builder::new();
    let mut key = BinaryBuilder::new();
    // Exact size: payloads can be megabytes (oversized messages are kept whole), and a
    // growing buffer would copy them again at every doubling.
    let mut payload = BinaryBuilder::with_capacity(letters.len(), letters.iter().map(|d| d.payload.len()).sum());
    let mut kind = StringBuilder::new();
    let mut reason = StringBuilder::new();
    let mut event_id = StringBuilder::new();
    let mut member_id = StringBuilder::new();
    let mut ingested_at = TimestampMicrosecondBuilder::new();
    for d in letters {
        source.append_value(&d.source);
        partition.append_value(d.partition);
        offset.append_value(d.offset);
        key.append_option(d.key.as_deref());
        payload.append_value(&d.payload);
        kind.append_value(d.rejection.kind.name());
        reason.append_value(&d.rejection.reason);
        event_id.append_option(d.event_id.as_deref());
        member_id.append_option(d.member_id.as_deref());
        ingested_at.append_value(d.ingested_at);
    }
    RecordBatch::try_new(
        schema::dead_letters(),
        vec![
            Arc::new(source.finish()),
            Arc::new(partition.finish()),
            Arc::new(offset.finish()),
            Arc::new(key.finish()),
            Arc::new(payload.finish()),
            Arc::new(kind.finish()),
            Arc::new(reason.finish()),
            Arc::new(event_id.finish()),
            Arc::new(member_id.finish()),
            Arc::new(ingested_at.finish().with_timezone("UTC")),
        ],
    )
}

#[cfg(test)]
mod tests {
    use arrow::array::{Array, AsArray};

    use super::*;
    use crate::event::RejectKind;

    #[test]
    fn batches_bound_their_payload_and_keep_every_letter_in_order() {
        let origin = |offset| Origin { source: "t", partition: 0, offset };
        // Small letters, a run of large ones, and one larger than a whole batch.
        let sizes: Vec<usize> = (0..3000).map(|i| if i % 700 == 5 { BATCH_PAYLOAD_BYTES + 10 } else if i % 3 == 0 { 80_000 } else { 50 }).collect();
        let letters: Vec<DeadLetter> = sizes
            .iter()
            .enumerate()
            .map(|(i, &n)| DeadLetter::new(origin(i as i64), None, &vec![b'x'; n], Rejection::new(RejectKind::Oversized, "big"), None, None, 0))
            .collect();
        let built: Vec<RecordBatch> = batches(&letters).collect::<Result<_, _>>().unwrap();
        assert!(built.len() > 1);
        let mut offsets = Vec::new();
        for batch in &built {
            let payload = batch.column_by_name("payload").unwrap().as_binary::<i32>();
            let bytes = payload.value_data().len();
            assert!(bytes <= BATCH_PAYLOAD_BYTES || payload.len() == 1, "{} rows, {bytes} bytes", payload.len());
            offsets.extend(batch.column_by_name("offset").unwrap().as_primitive::<arrow::datatypes::Int64Type>().values().iter().copied());
        }
        assert_eq!(offsets, (0..letters.len() as i64).collect::<Vec<_>>());
        assert_eq!(batches(&[]).count(), 0);
    }
}

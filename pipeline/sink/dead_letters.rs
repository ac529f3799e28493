//! Messages that were not applied, with the raw bytes and the reason, until the checkpoint.

use std::ops::Range;
use std::sync::Arc;

use arrow::array::{BinaryBuilder, Int32Builder, Int64Builder, RecordBatch, StringBuilder, TimestampMicrosecondBuilder};
use arrow::error::ArrowError;

use super::events::Origin;
use super::schema;
use crate::event::Rejection;

/// One dead letter, kept whole for the dead-letter topic as well as the table; its payload
/// is in the [`DeadLetters`] buffer it belongs to.
#[derive(Debug, Clone)]
pub struct DeadLetter {
    pub source: String,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    payload: Range<usize>,
    pub rejection: Rejection,
    pub event_id: Option<String>,
    pub member_id: Option<String>,
    pub ingested_at: i64,
}

/// An epoch's dead letters. Their payloads share one buffer, cleared but not freed at
/// each checkpoint: a checkpoint's letters can hold hundreds of oversized messages (tens
/// of MB), and a vector per payload was fresh memory again at every epoch (its page
/// zeroing was 3% of the benchmark's steady state).
#[derive(Debug, Default)]
pub struct DeadLetters {
    letters: Vec<DeadLetter>,
    payloads: Vec<u8>,
}

impl DeadLetters {
    #[allow(clippy::too_many_arguments)]
    pub fn push(
        &mut self,
        origin: Origin<'_>,
        key: Option<&[u8]>,
        payload: &[u8],
        rejection: Rejection,
        event_id: Option<&str>,
        member_id: Option<&str>,
        now: i64,
    ) {
        let start = self.payloads.len();
        self.payloads.extend_from_slice(payload);
        self.letters.push(DeadLetter {
            source: origin.source.to_string(),
            partition: origin.partition,
            offset: origin.offset,
            key: key.map(<[u8]>::to_vec),
            payload: start..self.payloads.len(),
            rejection,
            event_id: event_id.map(str::to_string),
            member_id: member_id.map(str::to_string),
            ingested_at: now,
        });
    }

    pub fn len(&self) -> usize {
        self.letters.len()
    }

    pub fn is_empty(&self) -> bool {
        self.letters.is_empty()
    }

    /// The letters in order, each with its payload.
    pub fn iter(&self) -> impl Iterator<Item = (&DeadLetter, &[u8])> {
        self.letters.iter().map(|d| (d, &self.payloads[d.payload.clone()]))
    }

    /// Forgets the letters, keeping the payload buffer's memory for the next epoch (unless
    /// a burst of bad input grew it past [`KEEP_PAYLOAD_BYTES`]).
    pub fn clear(&mut self) {
        self.letters.clear();
        if self.payloads.capacity() > KEEP_PAYLOAD_BYTES {
            self.payloads = Vec::new();
        }
        self.payloads.clear();
    }

    /// The letters as Arrow batches of at most [`BATCH_PAYLOAD_BYTES`] of payload (or one
    /// letter, when a single payload is larger), in order.
    pub fn batches(&self) -> impl Iterator<Item = Result<RecordBatch, ArrowError>> + '_ {
        let mut rest = &self.letters[..];
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
            Some(self.to_batch(head))
        })
    }

    fn to_batch(&self, letters: &[DeadLetter]) -> Result<RecordBatch, ArrowError> {
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
            payload.append_value(&self.payloads[d.payload.clone()]);
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
}

/// The payload buffer kept between epochs, at most.
const KEEP_PAYLOAD_BYTES: usize = 256 << 20;

/// Payload bytes per Arrow batch: one batch of a checkpoint's letters could be tens of MB
/// of fresh memory at every checkpoint; batches this size reuse theirs.
const BATCH_PAYLOAD_BYTES: usize = 4 << 20;

#[cfg(test)]
mod tests {
    use arrow::array::{Array, AsArray};

    use super::*;
    use crate::event::RejectKind;

    fn payload(i: usize, n: usize) -> Vec<u8> {
        (0..n).map(|j| (i * 7 + j) as u8).collect()
    }

    /// Each row's offset and payload, over all batches, checking each batch's bound.
    fn rows(letters: &DeadLetters) -> (usize, Vec<(i64, Vec<u8>)>) {
        let built: Vec<RecordBatch> = letters.batches().collect::<Result<_, _>>().unwrap();
        let mut rows = Vec::new();
        for batch in &built {
            let payloads = batch.column_by_name("payload").unwrap().as_binary::<i32>();
            let bytes = payloads.value_data().len();
            assert!(bytes <= BATCH_PAYLOAD_BYTES || payloads.len() == 1, "{} rows, {bytes} bytes", payloads.len());
            let offsets = batch.column_by_name("offset").unwrap().as_primitive::<arrow::datatypes::Int64Type>();
            rows.extend((0..batch.num_rows()).map(|r| (offsets.value(r), payloads.value(r).to_vec())));
        }
        (built.len(), rows)
    }

    #[test]
    fn batches_bound_their_payload_and_keep_every_letter_in_order_across_epochs() {
        let origin = |offset| Origin { source: "t", partition: 0, offset };
        let mut letters = DeadLetters::default();
        // Two epochs in one buffer: the second (after a clear) must not see the first.
        for epoch in 0..2 {
            // Small letters, a run of large ones, and one larger than a whole batch.
            let sizes: Vec<usize> =
                (0..3000 - epoch * 1000).map(|i| if i % 700 == 5 { BATCH_PAYLOAD_BYTES + 10 } else if i % 3 == epoch { 80_000 } else { 50 }).collect();
            for (i, &n) in sizes.iter().enumerate() {
                letters.push(origin(i as i64), None, &payload(i + epoch, n), Rejection::new(RejectKind::Oversized, "big"), None, None, 0);
            }
            let (batches, rows) = rows(&letters);
            assert!(batches > 1);
            let expected: Vec<(i64, Vec<u8>)> = sizes.iter().enumerate().map(|(i, &n)| (i as i64, payload(i + epoch, n))).collect();
            assert!(rows == expected, "epoch {epoch}: rows differ");
            assert_eq!(letters.iter().map(|(d, p)| (d.offset, p.to_vec())).collect::<Vec<_>>(), expected);
            letters.clear();
            assert!(letters.is_empty());
            assert_eq!(letters.batches().count(), 0);
        }
    }
}

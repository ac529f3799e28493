//! `segment_changes`: every entered/exited segment and tag, buffered until the checkpoint
//! that commits it (so a replay after a crash records each change once).

use std::sync::Arc;

use arrow::array::{Date32Builder, Int64Builder, RecordBatch, StringBuilder, TimestampMicrosecondBuilder};
use arrow::error::ArrowError;

use super::schema;
use crate::scoring::Change;
use crate::state::Day;

/// Why a change happened: an applied event, a refresh, or an operator (with a reason).
#[derive(Debug, Clone, Copy)]
pub enum Cause<'a> {
    Event(&'a str),
    Refresh,
    Manual(&'a str),
}

#[derive(Default)]
pub struct ChangesBuffer {
    member_id: StringBuilder,
    changed_at: TimestampMicrosecondBuilder,
    attribute: StringBuilder,
    old_value: StringBuilder,
    new_value: StringBuilder,
    cause: StringBuilder,
    event_id: StringBuilder,
    refresh_id: Int64Builder,
    reason: StringBuilder,
    as_of: Date32Builder,
    epoch: Int64Builder,
    rows: usize,
}

impl ChangesBuffer {
    pub fn rows(&self) -> usize {
        self.rows
    }

    #[allow(clippy::too_many_arguments)]
    pub fn push(&mut self, member_id: &str, change: &Change<'_>, cause: Cause<'_>, refresh_id: Option<u64>, changed_at: i64, as_of: Day, epoch: u64) {
        self.member_id.append_value(member_id);
        self.changed_at.append_value(changed_at);
        self.attribute.append_value(change.attribute);
        self.old_value.append_option(change.old);
        self.new_value.append_option(change.new);
        match cause {
            Cause::Event(id) => {
                self.cause.append_value("event");
                self.event_id.append_value(id);
            }
            Cause::Refresh | Cause::Manual(_) => {
                self.cause.append_value(if matches!(cause, Cause::Refresh) { "refresh" } else { "manual" });
                self.event_id.append_null();
            }
        }
        self.reason.append_option(match cause {
            Cause::Manual(reason) => Some(reason),
            _ => None,
        });
        self.refresh_id.append_option(refresh_id.map(|r| r as i64));
        self.as_of.append_value(as_of);
        self.epoch.append_value(epoch as i64);
        self.rows += 1;
    }

    /// Empties the buffer into one batch (`None` when nothing changed).
    pub fn take(&mut self) -> Result<Option<RecordBatch>, ArrowError> {
        if self.rows == 0 {
            return Ok(None);
        }
        let mut b = std::mem::take(self);
        RecordBatch::try_new(
            schema::segment_changes(),
            vec![
                Arc::new(b.member_id.finish()),
                Arc::new(b.changed_at.finish().with_timezone("UTC")),
                Arc::new(b.attribute.finish()),
                Arc::new(b.old_value.finish()),
                Arc::new(b.new_value.finish()),
                Arc::new(b.cause.finish()),
                Arc::new(b.event_id.finish()),
                Arc::new(b.refresh_id.finish()),
                Arc::new(b.reason.finish()),
                Arc::new(b.as_of.finish()),
                Arc::new(b.epoch.finish()),
            ],
        )
        .map(Some)
    }
}

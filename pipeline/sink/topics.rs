//! The output topics: the dead-letter topic (each rejected message's raw bytes and key, with
//! the reason and its source coordinates in headers) and the segment-changes topic (each
//! `segment_changes` row as a JSON object, key = member_id). Sent and flushed before the
//! checkpoint that covers them commits, so none is lost; a crash between the two sends them
//! again after the restart (at-least-once; the tables are exactly-once).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use arrow::array::{AsArray, RecordBatch};
use rdkafka::error::KafkaError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::{ClientConfig, ClientContext};

use super::DeadLetters;
use crate::engine::{EngineError, OutputTopics};

#[derive(Default)]
struct DeliveryErrors(Arc<Mutex<Vec<String>>>);

impl ClientContext for DeliveryErrors {}

impl ProducerContext for DeliveryErrors {
    type DeliveryOpaque = ();

    fn delivery(&self, result: &DeliveryResult<'_>, _: ()) {
        if let Err((e, _)) = result {
            self.0.lock().expect("not poisoned").push(e.to_string());
        }
    }
}

pub struct KafkaOutputs {
    dead_letter_topic: String,
    changes_topic: String,
    producer: BaseProducer<DeliveryErrors>,
    errors: Arc<Mutex<Vec<String>>>,
}

impl KafkaOutputs {
    /// An empty topic name disables that output.
    pub fn new(client: &ClientConfig, dead_letter_topic: &str, changes_topic: &str) -> Result<Self, KafkaError> {
        let errors = Arc::new(Mutex::new(Vec::new()));
        let producer = client
            .clone()
            .set("enable.idempotence", "true")
            .set("compression.type", "zstd")
            .create_with_context(DeliveryErrors(errors.clone()))?;
        Ok(Self { dead_letter_topic: dead_letter_topic.into(), changes_topic: changes_topic.into(), producer, errors })
    }

    fn produce(&self, mut record: BaseRecord<'_, [u8], [u8]>) -> Result<(), EngineError> {
        loop {
            match self.producer.send(record) {
                Ok(()) => return Ok(()),
                Err((KafkaError::MessageProduction(rdkafka::types::RDKafkaErrorCode::QueueFull), r)) => {
                    self.producer.poll(Duration::from_millis(50));
                    record = r;
                }
                Err((e, _)) => return Err(EngineError::OutputTopic(e.to_string())),
            }
        }
    }

    fn send_dead_letters(&self, letters: &DeadLetters) -> Result<(), EngineError> {
        for (d, payload) in letters.iter() {
            let (partition, offset) = (d.partition.to_string(), d.offset.to_string());
            let headers = OwnedHeaders::new()
                .insert(Header { key: "mf-reason-kind", value: Some(d.rejection.kind.name()) })
                .insert(Header { key: "mf-reason", value: Some(&d.rejection.reason) })
                .insert(Header { key: "mf-source", value: Some(&d.source) })
                .insert(Header { key: "mf-partition", value: Some(&partition) })
                .insert(Header { key: "mf-offset", value: Some(&offset) });
            let mut record = BaseRecord::to(&self.dead_letter_topic).payload(payload).headers(headers);
            if let Some(key) = &d.key {
                record = record.key(&key[..]);
            }
            self.produce(record)?;
        }
        Ok(())
    }

    fn send_changes(&self, changes: &RecordBatch) -> Result<(), EngineError> {
        let mut json = Vec::with_capacity(changes.num_rows() * 200);
        let mut writer = arrow::json::LineDelimitedWriter::new(&mut json);
        writer.write(changes).and_then(|()| writer.finish()).map_err(|e| EngineError::OutputTopic(e.to_string()))?;
        let members = changes.column_by_name("member_id").expect("member_id column").as_string::<i32>();
        for (row, line) in json.split(|&b| b == b'\n').filter(|l| !l.is_empty()).enumerate() {
            let record = BaseRecord::to(&self.changes_topic).key(members.value(row).as_bytes()).payload(line);
            self.produce(record)?;
        }
        Ok(())
    }
}

impl OutputTopics for KafkaOutputs {
    fn send(&mut self, letters: &DeadLetters, changes: Option<&RecordBatch>) -> Result<(), EngineError> {
        let changes = changes.filter(|_| !self.changes_topic.is_empty());
        let letters = Some(letters).filter(|l| !self.dead_letter_topic.is_empty() && !l.is_empty());
        if letters.is_none() && changes.is_none() {
            return Ok(());
        }
        if let Some(letters) = letters {
            self.send_dead_letters(letters)?;
        }
        if let Some(changes) = changes {
            self.send_changes(changes)?;
        }
        self.producer.flush(Duration::from_secs(60)).map_err(|e| EngineError::OutputTopic(e.to_string()))?;
        let errors = std::mem::take(&mut *self.errors.lock().expect("not poisoned"));
        match errors.first() {
            Some(first) => Err(EngineError::OutputTopic(format!("{} messages were not delivered: {first}", errors.len()))),
            None => Ok(()),
        }
    }
}

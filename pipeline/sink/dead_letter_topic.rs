//! The dead-letter Kafka topic: each rejected message's raw bytes and key, with the reason
//! and its source coordinates in headers. Sent and flushed before the checkpoint that covers
//! them commits, so none is lost; a crash between the two re-sends them after the restart
//! (at-least-once; `mf-source`/`mf-partition`/`mf-offset` identify a message uniquely).

use std::sync::{Arc, Mutex};
use std::time::Duration;

use rdkafka::error::KafkaError;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{BaseProducer, BaseRecord, DeliveryResult, Producer, ProducerContext};
use rdkafka::{ClientConfig, ClientContext};

use super::DeadLetter;
use crate::engine::{DeadLetterSink, EngineError};

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

pub struct DeadLetterTopic {
    topic: String,
    producer: BaseProducer<DeliveryErrors>,
    errors: Arc<Mutex<Vec<String>>>,
}

impl DeadLetterTopic {
    pub fn new(client: &ClientConfig, topic: &str) -> Result<Self, KafkaError> {
        let errors = Arc::new(Mutex::new(Vec::new()));
        let producer = client
            .clone()
            .set("enable.idempotence", "true")
            .set("compression.type", "zstd")
            .create_with_context(DeliveryErrors(errors.clone()))?;
        Ok(Self { topic: topic.to_string(), producer, errors })
    }
}

impl DeadLetterSink for DeadLetterTopic {
    fn send(&mut self, letters: &[DeadLetter]) -> Result<(), EngineError> {
        if letters.is_empty() {
            return Ok(());
        }
        for d in letters {
            let (partition, offset) = (d.partition.to_string(), d.offset.to_string());
            let headers = OwnedHeaders::new()
                .insert(Header { key: "mf-reason-kind", value: Some(d.rejection.kind.name()) })
                .insert(Header { key: "mf-reason", value: Some(&d.rejection.reason) })
                .insert(Header { key: "mf-source", value: Some(&d.source) })
                .insert(Header { key: "mf-partition", value: Some(&partition) })
                .insert(Header { key: "mf-offset", value: Some(&offset) });
            let mut record = BaseRecord::to(&self.topic).payload(&d.payload[..]).headers(headers);
            if let Some(key) = &d.key {
                record = record.key(&key[..]);
            }
            let mut record = Some(record);
            while let Some(r) = record.take() {
                match self.producer.send(r) {
                    Ok(()) => {}
                    Err((KafkaError::MessageProduction(rdkafka::types::RDKafkaErrorCode::QueueFull), r)) => {
                        self.producer.poll(Duration::from_millis(50));
                        record = Some(r);
                    }
                    Err((e, _)) => return Err(EngineError::DeadLetterTopic(e.to_string())),
                }
            }
        }
        self.producer.flush(Duration::from_secs(60)).map_err(|e| EngineError::DeadLetterTopic(e.to_string()))?;
        let errors = std::mem::take(&mut *self.errors.lock().expect("not poisoned"));
        match errors.first() {
            Some(first) => Err(EngineError::DeadLetterTopic(format!(
                "{} of {} dead letters were not delivered to {:?}: {first}",
                errors.len(),
                letters.len(),
                self.topic
            ))),
            None => Ok(()),
        }
    }
}

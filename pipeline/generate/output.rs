//! Where generated messages go: a JSON-lines file or a Kafka topic (key = member id).

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::Path;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressStyle};
use rdkafka::error::KafkaError;
use rdkafka::producer::{BaseRecord, DefaultProducerContext, Producer, ThreadedProducer};
use rdkafka::types::RDKafkaErrorCode;
use rdkafka::ClientConfig;

use super::{GeneratedMessage, MessageKind};

/// Counts of what was written, by kind.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    pub total: u64,
    pub by_kind: BTreeMap<MessageKind, u64>,
}

impl Tally {
    fn add(&mut self, kind: MessageKind) {
        self.total += 1;
        *self.by_kind.entry(kind).or_default() += 1;
    }

    pub fn count(&self, f: impl Fn(&MessageKind) -> bool) -> u64 {
        self.by_kind.iter().filter(|(k, _)| f(k)).map(|(_, v)| v).sum()
    }
}

fn bar(total: u64, show: bool) -> ProgressBar {
    let bar = if show { ProgressBar::new(total) } else { ProgressBar::hidden() };
    bar.set_style(
        ProgressStyle::with_template("{spinner} generate [{bar:30}] {pos}/{len} {per_sec} eta {eta}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar
}

pub fn to_file(messages: impl Iterator<Item = GeneratedMessage>, total: u64, path: &Path, progress: bool) -> std::io::Result<Tally> {
    let mut out = BufWriter::with_capacity(1 << 20, File::create(path)?);
    let mut tally = Tally::default();
    let bar = bar(total, progress);
    for m in messages {
        out.write_all(&m.payload)?;
        out.write_all(b"\n")?;
        tally.add(m.kind);
        if tally.total % 4096 == 0 {
            bar.set_position(tally.total);
        }
    }
    out.flush()?;
    bar.finish_and_clear();
    Ok(tally)
}

/// How the generator's producer batches.
#[derive(Debug, Clone)]
pub struct ProducerSettings {
    pub compression: String,
    pub batch_records: u32,
}

/// Produces every message with its key; waits until all are acknowledged.
pub fn to_topic(
    messages: impl Iterator<Item = GeneratedMessage>,
    total: u64,
    client: &ClientConfig,
    topic: &str,
    settings: &ProducerSettings,
    progress: bool,
) -> Result<Tally, KafkaError> {
    let producer: ThreadedProducer<DefaultProducerContext> = client
        .clone()
        .set("compression.type", &settings.compression)
        .set("linger.ms", if settings.batch_records > 1 { "100" } else { "0" })
        .set("batch.size", "1000000")
        .set("batch.num.messages", settings.batch_records.to_string())
        .set("message.max.bytes", "2000000")
        .set("queue.buffering.max.messages", "1000000")
        .set("enable.idempotence", "true")
        .create()?;
    let mut tally = Tally::default();
    let bar = bar(total, progress);
    for m in messages {
        let mut record = Some(BaseRecord::to(topic).key(&m.key).payload(&m.payload));
        while let Some(r) = record.take() {
            match producer.send(r) {
                Ok(()) => {}
                Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), r)) => {
                    std::thread::sleep(Duration::from_millis(5));
                    record = Some(r);
                }
                Err((e, _)) => return Err(e),
            }
        }
        tally.add(m.kind);
        if tally.total % 4096 == 0 {
            bar.set_position(tally.total);
        }
    }
    producer.flush(Duration::from_secs(300))?;
    bar.finish_and_clear();
    Ok(tally)
}

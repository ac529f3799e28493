//! `run`: an rdkafka consumer in a consumer group feeding the engine.
//!
//! Positions come from the checkpoint, not from the group's committed offsets: on every
//! assignment the consumer starts each partition where the state left it (or at the
//! beginning for a partition the state has never read). Offsets are committed to the
//! group after each checkpoint only so that lag monitors see progress.

use std::collections::HashMap;
use std::ffi::CString;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::FutureExt;
use indicatif::{ProgressBar, ProgressStyle};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, CommitMode, Consumer, ConsumerContext, StreamConsumer};
use rdkafka::error::KafkaError;
use rdkafka::types::{RDKafkaErrorCode, RDKafkaRespErr};
use rdkafka::{ClientConfig, ClientContext, Message as _, Offset, TopicPartitionList};
use tracing::{error, info, warn};

use crate::config::KafkaConfig;
use crate::engine::{Engine, EngineError, Message, OutputTopics, TableOnly, BATCH};
use crate::sink::topics::KafkaOutputs;
use crate::sink::Origin;

#[derive(Debug, thiserror::Error)]
pub enum KafkaSourceError {
    #[error("kafka: {0}")]
    Kafka(#[from] KafkaError),
    #[error(transparent)]
    Engine(#[from] EngineError),
    #[error("kafka: {0} — stopping: this does not heal by retrying (check credentials, ACLs, the group id)")]
    Fatal(KafkaError),
    #[error("no partition of {topics:?} was assigned to group {group:?} within {waited:?} (do the topics exist on {brokers}?)")]
    NoAssignment { topics: Vec<String>, group: String, brokers: String, waited: Duration },
}

/// The librdkafka client settings every memberflow client shares (user properties last).
pub fn client_config(kafka: &KafkaConfig) -> ClientConfig {
    let mut config = ClientConfig::new();
    config.set("bootstrap.servers", &kafka.brokers);
    for (k, v) in &kafka.properties {
        config.set(k, v);
    }
    config
}

/// Creates `topic` with `partitions` partitions unless it exists.
pub async fn ensure_topic(client: &ClientConfig, topic: &str, partitions: i32) -> Result<(), KafkaError> {
    let admin: AdminClient<DefaultClientContext> = client.create()?;
    let metadata = admin.inner().fetch_metadata(Some(topic), Duration::from_secs(30))?;
    if metadata.topics().iter().any(|t| t.name() == topic && t.error().is_none() && !t.partitions().is_empty()) {
        return Ok(());
    }
    let new = NewTopic::new(topic, partitions, TopicReplication::Fixed(1));
    let options = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    for result in admin.create_topics([&new], &options).await? {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((name, code)) => {
                error!(topic = name, "create topic failed: {code}");
                return Err(KafkaError::AdminOp(code));
            }
        }
    }
    Ok(())
}

/// Topic -> partition -> next offset the state needs, kept current after every message so
/// that an assignment in the middle of an epoch resumes exactly where the state is (a
/// rewind would re-deliver dead letters, which dedup cannot recognise).
pub type Positions = Arc<Mutex<HashMap<String, HashMap<i32, i64>>>>;

/// Starts every assigned partition at the engine's position for it.
struct ResumeContext {
    positions: Positions,
    assigned: Arc<Mutex<Vec<(String, i32)>>>,
}

impl ClientContext for ResumeContext {}

impl ConsumerContext for ResumeContext {
    fn rebalance(&self, consumer: &BaseConsumer<Self>, err: RDKafkaRespErr, tpl: &mut TopicPartitionList) {
        match err {
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__ASSIGN_PARTITIONS => {
                let positions = self.positions.lock().expect("not poisoned");
                let parts: Vec<(String, i32)> =
                    tpl.elements().iter().map(|e| (e.topic().to_string(), e.partition())).collect();
                for (topic, partition) in &parts {
                    let offset = match positions.get(topic).and_then(|p| p.get(partition)) {
                        Some(&o) => Offset::Offset(o),
                        None => Offset::Beginning,
                    };
                    let _ = tpl.set_partition_offset(topic, *partition, offset);
                }
                info!(partitions = parts.len(), "partitions assigned; resuming from the checkpoint");
                if let Err(e) = consumer.assign(tpl) {
                    error!("assign failed: {e}");
                }
                *self.assigned.lock().expect("not poisoned") = parts;
            }
            RDKafkaRespErr::RD_KAFKA_RESP_ERR__REVOKE_PARTITIONS => {
                info!(partitions = tpl.count(), "partitions revoked");
                let _ = consumer.unassign();
                self.assigned.lock().expect("not poisoned").clear();
            }
            other => error!("rebalance error: {other:?}"),
        }
    }
}

#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Stop once every assigned partition reached the end offset it had at the start.
    pub until_caught_up: bool,
    pub progress: bool,
    /// How long to wait for the group to assign partitions before giving up.
    pub assignment_timeout: Duration,
}

/// End offsets fixed at the start of an `--until-caught-up` run.
struct CatchUp {
    targets: HashMap<(String, i32), i64>,
    started: Instant,
}

/// Consumes until shut down (Ctrl-C / SIGTERM) or, with `until_caught_up`, until caught up;
/// then commits a final checkpoint with the members table.
pub async fn run(engine: &mut Engine, options: &RunOptions) -> Result<(), KafkaSourceError> {
    let kafka = engine.config().kafka.clone();
    // The output topics must exist before the first checkpoint sends to them.
    let mut outputs: Box<dyn OutputTopics> = if kafka.dead_letter_topic.is_empty() && kafka.segment_changes_topic.is_empty() {
        Box::new(TableOnly)
    } else {
        for topic in [&kafka.dead_letter_topic, &kafka.segment_changes_topic] {
            if !topic.is_empty() {
                ensure_topic(&client_config(&kafka), topic, 1).await?;
            }
        }
        Box::new(KafkaOutputs::new(&client_config(&kafka), &kafka.dead_letter_topic, &kafka.segment_changes_topic)?)
    };
    let positions: Positions = Arc::new(Mutex::new(HashMap::new()));
    publish_positions(engine, &positions, &kafka.topics);
    let assigned = Arc::new(Mutex::new(Vec::new()));
    let context = ResumeContext { positions: positions.clone(), assigned: assigned.clone() };
    let consumer: StreamConsumer<ResumeContext> = client_config(&kafka)
        .set("group.id", &kafka.group_id)
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .set("auto.offset.reset", "earliest")
        .create_with_context(context)?;
    let topics: Vec<&str> = kafka.topics.iter().map(String::as_str).collect();
    consumer.subscribe(&topics)?;
    let stop = shutdown_flag();
    let bar = progress_bar(options.progress);
    let mut tick = tokio::time::interval(Duration::from_millis(200));
    let mut catch_up: Option<CatchUp> = None;
    let started = Instant::now();
    loop {
        // Unbiased: the tick (shutdown, catch-up check) gets its turn while data flows.
        tokio::select! {
            first = consumer.recv() => {
                // Take what else is already fetched, without waiting: the engine looks a
                // batch of events up together.
                let mut received = vec![first];
                while received.len() < BATCH {
                    match consumer.recv().now_or_never() {
                        Some(next) => received.push(next),
                        None => break,
                    }
                }
                let mut batch = Vec::with_capacity(received.len());
                let mut positions = positions.lock().expect("not poisoned");
                for received in &received {
                    match received {
                        Ok(m) => {
                            let origin = Origin { source: m.topic(), partition: m.partition(), offset: m.offset() };
                            batch.push(Message { key: m.key(), payload: m.payload().unwrap_or_default(), origin });
                            if let Some(p) = positions.get_mut(m.topic()) {
                                p.insert(m.partition(), m.offset() + 1);
                            }
                        }
                        Err(KafkaError::PartitionEOF(_)) => {}
                        Err(e) if is_fatal(e) => return Err(KafkaSourceError::Fatal(e.clone())),
                        Err(e) => warn!("consumer: {e} (librdkafka retries)"),
                    }
                }
                drop(positions);
                engine.process_batch(&batch);
                bar.inc(batch.len() as u64);
                if engine.checkpoint_due() {
                    checkpoint(engine, &consumer, outputs.as_mut(), &kafka.topics)?;
                }
            },
            _ = tick.tick() => {
                if stop.load(Ordering::Relaxed) {
                    info!("shutdown requested");
                    break;
                }
                if let Some((job, at)) = engine.due_job() {
                    let report = tokio::task::block_in_place(|| engine.run_job(outputs.as_mut(), job, at))?;
                    commit_offsets(engine, &consumer, &kafka.topics);
                    info!("scheduled refresh done:\n{report}");
                } else if engine.checkpoint_due() {
                    checkpoint(engine, &consumer, outputs.as_mut(), &kafka.topics)?;
                }
                if options.until_caught_up {
                    let parts = assigned.lock().expect("not poisoned").clone();
                    if parts.is_empty() {
                        if started.elapsed() > options.assignment_timeout {
                            return Err(KafkaSourceError::NoAssignment {
                                topics: kafka.topics.clone(),
                                group: kafka.group_id.clone(),
                                brokers: kafka.brokers.clone(),
                                waited: options.assignment_timeout,
                            });
                        }
                        continue;
                    }
                    let state = catch_up.get_or_insert_with(|| CatchUp { targets: HashMap::new(), started: Instant::now() });
                    if caught_up(engine, &consumer, &parts, state, &bar)? {
                        info!(elapsed_ms = state.started.elapsed().as_millis() as u64, "caught up with the end offsets of the run's start");
                        break;
                    }
                }
            }
        }
    }
    bar.finish_and_clear();
    let report = engine.checkpoint(outputs.as_mut(), true)?;
    commit_offsets(engine, &consumer, &kafka.topics);
    info!(epoch = report.epoch, "final checkpoint committed ({})", engine.counters());
    Ok(())
}

/// Errors librdkafka reports that retrying will not fix. The run stops without a final
/// checkpoint; a restart replays from the last one.
fn is_fatal(e: &KafkaError) -> bool {
    matches!(
        e.rdkafka_error_code(),
        Some(
            RDKafkaErrorCode::Fatal
                | RDKafkaErrorCode::Authentication
                | RDKafkaErrorCode::SaslAuthenticationFailed
                | RDKafkaErrorCode::TopicAuthorizationFailed
                | RDKafkaErrorCode::GroupAuthorizationFailed
                | RDKafkaErrorCode::ClusterAuthorizationFailed
                | RDKafkaErrorCode::InvalidGroupId
        )
    )
}

fn checkpoint(
    engine: &mut Engine,
    consumer: &StreamConsumer<ResumeContext>,
    outputs: &mut dyn OutputTopics,
    topics: &[String],
) -> Result<(), KafkaSourceError> {
    let members = engine.members_due();
    tokio::task::block_in_place(|| engine.checkpoint(outputs, members))?;
    commit_offsets(engine, consumer, topics);
    Ok(())
}

/// Seeds the shared positions from the checkpoint the engine resumed from.
fn publish_positions(engine: &Engine, positions: &Positions, topics: &[String]) {
    let mut map = positions.lock().expect("not poisoned");
    for topic in topics {
        map.entry(topic.clone()).or_default();
    }
    for (source, partition, offset) in engine.positions() {
        if let Some(p) = map.get_mut(source) {
            p.insert(partition, offset);
        }
    }
}

fn commit_offsets(engine: &Engine, consumer: &StreamConsumer<ResumeContext>, topics: &[String]) {
    let mut tpl = TopicPartitionList::new();
    for (source, partition, offset) in engine.positions() {
        if topics.iter().any(|t| t == source) {
            let _ = tpl.add_partition_offset(source, partition, Offset::Offset(offset));
        }
    }
    if tpl.count() > 0 {
        if let Err(e) = consumer.commit(&tpl, CommitMode::Async) {
            warn!("committing offsets to the group (for monitoring only): {e}");
        }
    }
}

/// Fixes each partition's target the first time the broker has told us its end offset:
/// the larger of ListOffsets and the high watermark of the fetch responses (some brokers,
/// e.g. tansu 0.6, under-report the former).
fn caught_up(
    engine: &Engine,
    consumer: &StreamConsumer<ResumeContext>,
    parts: &[(String, i32)],
    state: &mut CatchUp,
    bar: &ProgressBar,
) -> Result<bool, KafkaSourceError> {
    let mut done = true;
    let (mut behind, mut all_known) = (0i64, true);
    for (topic, partition) in parts {
        let key = (topic.clone(), *partition);
        let (lo, fetched_hi) = cached_watermarks(consumer, topic, *partition);
        if !state.targets.contains_key(&key) {
            if fetched_hi < 0 {
                all_known = false;
                done = false;
                continue;
            }
            let (_, listed_hi) = consumer.fetch_watermarks(topic, *partition, Duration::from_secs(10))?;
            state.targets.insert(key.clone(), listed_hi.max(fetched_hi));
        }
        let target = state.targets[&key];
        let position = engine.resume_offset(topic, *partition).unwrap_or(lo.max(0));
        if position < target {
            done = false;
            behind += target - position;
        }
    }
    if all_known {
        bar.set_length(bar.position() + behind.max(0) as u64);
    }
    Ok(done)
}

/// The watermarks librdkafka cached from the last fetch response (negative when unknown).
fn cached_watermarks(consumer: &StreamConsumer<ResumeContext>, topic: &str, partition: i32) -> (i64, i64) {
    let (mut lo, mut hi) = (-1i64, -1i64);
    let Ok(topic) = CString::new(topic) else { return (lo, hi) };
    // SAFETY: a valid client handle, a NUL-terminated topic name and two out-pointers.
    let err = unsafe {
        rdkafka::bindings::rd_kafka_get_watermark_offsets(
            consumer.client().native_ptr(),
            topic.as_ptr(),
            partition,
            &mut lo,
            &mut hi,
        )
    };
    if err != RDKafkaRespErr::RD_KAFKA_RESP_ERR_NO_ERROR {
        return (-1, -1);
    }
    (lo, hi)
}

fn progress_bar(show: bool) -> ProgressBar {
    let bar = if show { ProgressBar::new(0) } else { ProgressBar::hidden() };
    bar.set_style(
        ProgressStyle::with_template("{spinner} consuming [{bar:30}] {pos}/{len} messages {per_sec} eta {eta}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar
}

/// Set on Ctrl-C or SIGTERM: the loop then commits a final checkpoint and exits.
pub fn shutdown_flag() -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    let f = flag.clone();
    tokio::spawn(async move {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = async { match term.as_mut() { Some(t) => { t.recv().await; } None => std::future::pending().await } } => {}
        }
        f.store(true, Ordering::Relaxed);
    });
    flag
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorisation_failures_stop_the_run_and_transport_errors_do_not() {
        assert!(is_fatal(&KafkaError::MessageConsumption(RDKafkaErrorCode::TopicAuthorizationFailed)));
        assert!(is_fatal(&KafkaError::MessageConsumption(RDKafkaErrorCode::SaslAuthenticationFailed)));
        assert!(!is_fatal(&KafkaError::MessageConsumption(RDKafkaErrorCode::BrokerTransportFailure)));
        assert!(!is_fatal(&KafkaError::MessageConsumption(RDKafkaErrorCode::UnknownTopicOrPartition)));
    }
}

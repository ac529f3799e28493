//! `demo`: the whole path with no external service. librdkafka's in-process mock broker
//! holds the topic; the generator produces into it (gzip, large batches: the mock keeps at
//! most 5 MiB or 100,000 batches per partition and silently drops older data); the real
//! consumer runs `--until-caught-up`; the summary proves nothing was lost.

use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use arrow::array::AsArray;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::mocking::MockCluster;
use rdkafka::ClientConfig;

use crate::config::MemberflowConfig;
use crate::engine::{wall_clock_micros, AsOf, Engine, TableOnly};
use crate::generate::{output, GenerateConfig, Generator, MessageKind};
use crate::query;
use crate::source::kafka;

const TOPIC: &str = "member-events";
/// Messages per partition that stay well inside the mock's 5 MiB per partition (gzip).
const MESSAGES_PER_PARTITION: u64 = 62_500;
const REVENUE_BY_STORE: &str = include_str!("../queries/revenue_by_store.sql");
const DEAD_LETTERS_BY_REASON: &str = include_str!("../queries/dead_letters_by_reason.sql");

pub async fn run(events: u64, data_dir: &Path) -> Result<()> {
    prepare_dir(data_dir)?;
    let cluster = MockCluster::new(1).context("starting the embedded Kafka broker")?;
    let partitions = events.div_ceil(MESSAGES_PER_PARTITION).max(8) as i32;
    cluster.create_topic(TOPIC, partitions, 1)?;
    // Created here: the mock answers CreateTopics slowly once it holds a large topic (timed
    // out at 1M messages), and `run` skips CreateTopics for a topic that exists.
    cluster.create_topic(&MemberflowConfig::default().kafka.dead_letter_topic, 1, 1)?;
    let brokers = cluster.bootstrap_servers();
    eprintln!("demo: embedded broker at {brokers}, topic {TOPIC} with {partitions} partitions");

    let gen = GenerateConfig { events, members: (events / 15).max(100), ..GenerateConfig::default() };
    let as_of = gen.end;
    let mut client = ClientConfig::new();
    client.set("bootstrap.servers", &brokers);
    let started = Instant::now();
    let tally = tokio::task::block_in_place(|| output::to_topic(Generator::new(gen), events, &client, TOPIC, &output::ProducerSettings { compression: "gzip".into(), batch_records: 100_000 }, true))?;
    eprintln!("demo: produced {} messages in {:.1?}", tally.total, started.elapsed());

    let mut config = MemberflowConfig::default();
    config.data_dir = data_dir.to_path_buf();
    config.kafka.brokers = brokers.clone();
    config.kafka.group_id = "memberflow-demo".into();
    // The demo's refresh runs after the consumer, with the tables as its only output.
    config.kafka.segment_changes_topic = String::new();
    let mut engine = Engine::open(&config, AsOf::Fixed(as_of), wall_clock_micros)?;
    let started = Instant::now();
    let options = kafka::RunOptions { until_caught_up: true, progress: true, assignment_timeout: Duration::from_secs(30) };
    kafka::run(&mut engine, &options).await?;
    let consumed_in = started.elapsed();
    let (_, refresh) = tokio::task::block_in_place(|| engine.refresh(&mut TableOnly))?;

    let low_marks = low_watermarks(&client, partitions)?;
    let counters = engine.counters().clone();
    let members = engine.members().len();
    drop(engine);

    println!("memberflow demo — as of {as_of}, tables in {}", data_dir.display());
    println!(
        "  produced  {} messages ({} events, {} duplicates, {} late duplicates, {} conflicts, {} malformed)",
        tally.total,
        tally.count(|k| *k == MessageKind::Event),
        tally.count(|k| *k == MessageKind::Duplicate),
        tally.count(|k| *k == MessageKind::LateDuplicate),
        tally.count(|k| *k == MessageKind::Conflict),
        tally.count(|k| matches!(k, MessageKind::Malformed(_))),
    );
    println!("  result    {counters}; consumed in {consumed_in:.1?} (group join included)");
    println!("  members   {members}");
    let lost = tally.total as i64 - counters.consumed as i64;
    let all_zero = low_marks.iter().all(|&lo| lo == 0);
    println!(
        "  broker    low watermark of every partition {:?} -> {}; produced - consumed = {lost}",
        low_marks,
        if all_zero { "nothing was dropped by the broker" } else { "THE BROKER DROPPED DATA" }
    );
    let ctx = query::session(data_dir).await?;
    let (_, batches) = query::run_sql(&ctx, REVENUE_BY_STORE).await?;
    println!("  revenue per store (purchases, before refunds):");
    query::print(&batches, query::OutputFormat::Table, &mut std::io::stdout().lock())?;
    let (_, dead) = query::run_sql(&ctx, DEAD_LETTERS_BY_REASON).await?;
    let parts: Vec<String> = dead
        .iter()
        .flat_map(|b| {
            let kinds = b.column(0).as_string::<i32>().clone();
            let counts = b.column(1).as_primitive::<arrow::datatypes::Int64Type>().clone();
            (0..b.num_rows()).map(move |i| format!("{} {}", kinds.value(i), counts.value(i)))
        })
        .collect();
    println!("  dead letters: {}", if parts.is_empty() { "none".into() } else { parts.join(", ") });
    print!("  {refresh}");
    println!("  try: memberflow query --data-dir {} \"SELECT * FROM members ORDER BY monetary DESC LIMIT 5\"", data_dir.display());
    println!("       memberflow report --list; memberflow report rfm_grid --data-dir {}", data_dir.display());
    println!("       memberflow audience preview --data-dir {} --where \"list_contains(tags, 'lapsed') AND monetary >= 500\"", data_dir.display());
    if !all_zero || lost != 0 || !counters.reconciles() {
        bail!("the demo lost messages: produced {}, consumed {}, low watermarks {low_marks:?}", tally.total, counters.consumed);
    }
    drop(cluster);
    Ok(())
}

/// The demo starts from scratch, but never wipes a directory that is not a memberflow one.
fn prepare_dir(dir: &Path) -> Result<()> {
    if dir.exists() {
        let ours = ["checkpoint.bin", ".lock"].iter().any(|f| dir.join(f).exists()) || std::fs::read_dir(dir)?.next().is_none();
        if !ours {
            bail!("{} exists and is not a memberflow data directory; choose another --data-dir", dir.display());
        }
        std::fs::remove_dir_all(dir).with_context(|| format!("clearing {}", dir.display()))?;
    }
    Ok(())
}

fn low_watermarks(client: &ClientConfig, partitions: i32) -> Result<Vec<i64>> {
    let consumer: BaseConsumer = client.clone().set("group.id", "memberflow-demo-check").create()?;
    (0..partitions)
        .map(|p| Ok(consumer.fetch_watermarks(TOPIC, p, Duration::from_secs(10))?.0))
        .collect()
}

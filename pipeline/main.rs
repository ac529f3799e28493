//! The `memberflow` command line: a thin shell over the library.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use chrono::NaiveDate;
use clap::{Args, Parser, Subcommand};
use memberflow::config::MemberflowConfig;
use memberflow::engine::{wall_clock_micros, AsOf, Engine, EngineError, LockError, TableOnly};
use memberflow::scoring::manual::{TagOp, TagRequest};
use memberflow::generate::{output, GenerateConfig, Generator};
use memberflow::query::{self, OutputFormat};
use memberflow::source::{file, kafka};
use memberflow::{bench, demo, report};

/// mimalloc instead of glibc malloc: the per-day row buffers and Parquet writers allocate and
/// free many mid-sized blocks per checkpoint, which glibc returns to the kernel and page-faults
/// back in (measured: a fifth of the benchmark was page zeroing).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc returns freed memory to the kernel 10 ms after it was last used; every
/// checkpoint then faults its buffers back in, zeroed (on this VM that was a third of a
/// checkpoint). Keep freed memory for half a minute, longer than a checkpoint interval.
///
/// The C libraries (zstd, librdkafka) allocate with glibc's malloc, which maps blocks above
/// its threshold afresh and unmaps them on free: zstd's context for each Parquet column
/// chunk (a few MB) was a new mapping every time, and its page faults were most of the
/// pipeline's in steady state. Serve such blocks from the heap and keep it.
fn keep_freed_memory() {
    unsafe extern "C" {
        fn mi_option_set(option: std::ffi::c_int, value: std::ffi::c_long);
    }
    /// `mi_option_purge_delay` in the mimalloc 3 bundled by libmimalloc-sys 0.1.
    const PURGE_DELAY: std::ffi::c_int = 15;
    // SAFETY: sets a plain option value; mimalloc reads it at each purge.
    unsafe { mi_option_set(PURGE_DELAY, 30_000) };
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets glibc's tuning values; called before any thread starts.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 64 << 20);
        libc::mallopt(libc::M_TRIM_THRESHOLD, 512 << 20);
    }
}

#[derive(Parser)]
#[command(name = "memberflow", version, about = "Membership (loyalty) analytics for retail: Kafka events -> exactly-once member state -> Parquet tables -> SQL")]
struct Cli {
    /// Log filter (tracing-subscriber syntax), e.g. `info`, `memberflow=debug` [default: info; demo: error].
    #[arg(long, global = true, env = "MEMBERFLOW_LOG")]
    log: Option<String>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Consume member events from Kafka into member state and Parquet tables.
    Run(RunArgs),
    /// Load history from JSON-lines files (same contract, same exactly-once path as `run`).
    Backfill(BackfillArgs),
    /// Re-score every member now (cut points, scores, segments, tags) and print what moved.
    Refresh(RefreshArgs),
    /// Set or clear an operator's manual tag on a member (with a reason); rules never touch it.
    #[command(subcommand)]
    Tag(TagCommand),
    /// Run a named report (queries/*.sql) with parameters; `report --list` lists them.
    Report(ReportArgs),
    /// Campaign audiences: preview who a definition selects, export a snapshot with a holdout.
    #[command(subcommand)]
    Audience(AudienceCommand),
    /// Run one read-only SQL statement over the tables (events, members, segment_changes, store_day, audiences, ...).
    Query(QueryArgs),
    /// Generate realistic synthetic events for a multi-store chain, to a file or a topic.
    Generate(GenerateArgs),
    /// Zero-setup demo: in-process Kafka broker, generated events, the real consumer, a summary.
    Demo(DemoArgs),
    /// Benchmark the pipeline core over an in-memory source (end to end: `demo --events N`, scripts/bench-e2e.sh).
    Bench(bench::BenchArgs),
}

/// Flags every command that reads or writes tables accepts.
#[derive(Args, Clone)]
struct TableArgs {
    /// Config file (default: ./memberflow.toml when present; env MEMBERFLOW__SECTION__KEY overrides).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Data directory holding the tables and the checkpoint [config: data_dir].
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
}

#[derive(Args, Clone)]
struct KafkaArgs {
    /// Bootstrap servers, comma separated [config: kafka.brokers].
    #[arg(long)]
    brokers: Option<String>,
    /// Topics to consume, comma separated [config: kafka.topics].
    #[arg(long, value_delimiter = ',')]
    topics: Option<Vec<String>>,
    /// Consumer group [config: kafka.group_id].
    #[arg(long)]
    group_id: Option<String>,
}

#[derive(Args)]
struct RunArgs {
    #[command(flatten)]
    tables: TableArgs,
    #[command(flatten)]
    kafka: KafkaArgs,
    /// Consume every assigned partition up to the end offset it had at the start, write the tables, exit 0.
    #[arg(long)]
    until_caught_up: bool,
    /// Fix "today" (YYYY-MM-DD, business time zone) for windows and recency, e.g. for replays.
    #[arg(long, value_name = "DATE")]
    as_of: Option<NaiveDate>,
    /// Hide the progress bar.
    #[arg(long)]
    no_progress: bool,
}

#[derive(Args)]
struct BackfillArgs {
    /// JSON-lines files, one event per line.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    #[command(flatten)]
    tables: TableArgs,
    #[command(flatten)]
    kafka: KafkaArgs,
    /// Fix "today" (YYYY-MM-DD) for windows and recency.
    #[arg(long, value_name = "DATE")]
    as_of: Option<NaiveDate>,
    /// Hide the progress bar.
    #[arg(long)]
    no_progress: bool,
}

#[derive(Args)]
struct RefreshArgs {
    #[command(flatten)]
    tables: TableArgs,
    /// Score as of this day (YYYY-MM-DD, business time zone) instead of today.
    #[arg(long, value_name = "DATE")]
    as_of: Option<NaiveDate>,
}

#[derive(Subcommand)]
enum TagCommand {
    /// Add manual tag TAG to member MEMBER.
    Add(TagArgs),
    /// Remove manual tag TAG from member MEMBER.
    Remove(TagArgs),
}

#[derive(Args)]
struct TagArgs {
    member: String,
    tag: String,
    /// Why (kept in the members' history, segment_changes.reason).
    #[arg(long, required = true)]
    reason: String,
    #[command(flatten)]
    tables: TableArgs,
}

#[derive(Args)]
struct ReportArgs {
    /// The report's name (see --list).
    #[arg(required_unless_present = "list")]
    name: Option<String>,
    /// List the reports, one per line: name, parameters with defaults, what it answers.
    #[arg(long)]
    list: bool,
    /// A parameter value, NAME=VALUE (repeatable); unset parameters take their defaults.
    #[arg(long = "param", value_name = "NAME=VALUE", value_parser = parse_param)]
    params: Vec<(String, String)>,
    #[arg(long, value_enum, default_value = "table")]
    format: OutputFormat,
    /// Write to this file instead of standard output (required for xlsx).
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
    #[command(flatten)]
    tables: TableArgs,
}

fn parse_param(s: &str) -> Result<(String, String), String> {
    s.split_once('=').map(|(k, v)| (k.trim().to_string(), v.to_string())).ok_or_else(|| format!("{s:?}: expected NAME=VALUE"))
}

#[derive(Subcommand)]
enum AudienceCommand {
    /// Print the audience's size, its split by store and segment, and a sample of members.
    Preview(PreviewArgs),
    /// Write a dated, immutable snapshot (member_id, arm, ...) with the definition and counts.
    Export(ExportArgs),
}

#[derive(Args)]
struct AudienceArgs {
    /// A definition file: .toml (`where = "..."`, optional `description`) or .sql (a query returning member_id).
    #[arg(required_unless_present = "predicate", conflicts_with = "predicate")]
    definition: Option<PathBuf>,
    /// An inline definition: one boolean condition over the members table, e.g. "list_contains(tags, 'lapsed') AND monetary > 500".
    #[arg(long = "where", value_name = "PREDICATE")]
    predicate: Option<String>,
    #[command(flatten)]
    tables: TableArgs,
}

#[derive(Args)]
struct PreviewArgs {
    #[command(flatten)]
    audience: AudienceArgs,
    /// Members shown in the sample.
    #[arg(long, default_value_t = 10)]
    sample: usize,
}

#[derive(Args)]
struct ExportArgs {
    #[command(flatten)]
    audience: AudienceArgs,
    /// The audience's name (letters, digits, '_', '-'): names the snapshot's directory and seeds the holdout split.
    #[arg(long)]
    name: String,
    /// Share of the audience held out as the control arm, e.g. 10% (deterministic per member and name).
    #[arg(long, default_value = "0%")]
    holdout: memberflow::audience::Holdout,
    /// Directory receiving name=NAME/snapshot=.../ [default: <data-dir>/audiences, which `query` and reports read].
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// File format of the snapshot's rows (Parquet snapshots under the data directory are the `audiences` table).
    #[arg(long, value_enum, default_value = "parquet")]
    format: memberflow::audience::ExportFormat,
    /// Hide the progress bar.
    #[arg(long)]
    no_progress: bool,
}

#[derive(Args)]
struct QueryArgs {
    /// The SQL statement (read-only).
    sql: String,
    #[command(flatten)]
    tables: TableArgs,
    #[arg(long, value_enum, default_value = "table")]
    format: OutputFormat,
    /// Write to this file instead of standard output (required for xlsx).
    #[arg(long, value_name = "FILE")]
    out: Option<PathBuf>,
}

#[derive(Args)]
struct GenerateArgs {
    /// Number of messages (events, duplicates and malformed ones together).
    #[arg(long, default_value_t = 300_000)]
    events: u64,
    /// Members of the chain.
    #[arg(long, default_value_t = 20_000)]
    members: u64,
    /// Stores of the chain.
    #[arg(long, default_value_t = 12)]
    stores: u32,
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// First day of event time (default: three years before --end).
    #[arg(long)]
    start: Option<NaiveDate>,
    /// Last day of event time (default: today, UTC).
    #[arg(long)]
    end: Option<NaiveDate>,
    /// Share of byte-identical repeats of recent messages (producer retries).
    #[arg(long, default_value_t = 0.01)]
    duplicate_rate: f64,
    /// Share of repeats of old messages (re-sent POS exports).
    #[arg(long, default_value_t = 0.002)]
    late_duplicate_rate: f64,
    /// Share of messages reusing an event_id with other content.
    #[arg(long, default_value_t = 0.0005)]
    conflict_rate: f64,
    /// Share of malformed messages, spread over: not JSON, missing field, wrong type, unknown type, negative amount, absurd timestamp, oversized.
    #[arg(long, default_value_t = 0.002)]
    malformed_rate: f64,
    /// Share of events dated a few days before their neighbours (offline batches).
    #[arg(long, default_value_t = 0.02)]
    late_rate: f64,
    /// Share of messages whose Kafka key names another member than the body (the body wins).
    #[arg(long, default_value_t = 0.0005)]
    key_mismatch_rate: f64,
    /// A purchase carries 1 to this many line items (0: none).
    #[arg(long, default_value_t = 4)]
    max_items: u32,
    /// Write JSON lines to this file...
    #[arg(long, value_name = "FILE", conflicts_with = "topic")]
    out: Option<PathBuf>,
    /// ... or produce to this topic (key = member_id); created when missing.
    #[arg(long)]
    topic: Option<String>,
    /// Bootstrap servers for --topic.
    #[arg(long, default_value = "127.0.0.1:9092")]
    brokers: String,
    /// Partitions when creating --topic.
    #[arg(long, default_value_t = 8)]
    partitions: i32,
    /// Producer compression for --topic (none, gzip, snappy, lz4, zstd).
    #[arg(long, default_value = "zstd")]
    compression: String,
    /// Most records per producer batch for --topic (librdkafka batch.num.messages).
    #[arg(long, default_value_t = 100_000)]
    batch_records: u32,
}

#[derive(Args)]
struct DemoArgs {
    /// Messages to generate into the embedded broker.
    #[arg(long, default_value_t = 300_000)]
    events: u64,
    /// Where the demo writes its tables (wiped first).
    #[arg(long, default_value = "data/demo")]
    data_dir: PathBuf,
}

fn main() -> ExitCode {
    keep_freed_memory();
    let cli = Cli::parse();
    let default_log = if matches!(cli.command, Command::Demo(_)) { "error" } else { "info" };
    let log = cli.log.as_deref().unwrap_or(default_log);
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_new(log).unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    match runtime.block_on(dispatch(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("memberflow: error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn load_config(tables: &TableArgs, kafka: Option<&KafkaArgs>) -> Result<MemberflowConfig> {
    let mut config = MemberflowConfig::load(tables.config.as_deref())?;
    if let Some(dir) = &tables.data_dir {
        config.data_dir = dir.clone();
    }
    if let Some(k) = kafka {
        if let Some(b) = &k.brokers {
            config.kafka.brokers = b.clone();
        }
        if let Some(t) = &k.topics {
            config.kafka.topics = t.clone();
        }
        if let Some(g) = &k.group_id {
            config.kafka.group_id = g.clone();
        }
    }
    config.validate()?;
    Ok(config)
}

fn as_of(date: Option<NaiveDate>) -> AsOf {
    date.map_or(AsOf::Today, AsOf::Fixed)
}

async fn dispatch(command: Command) -> Result<()> {
    match command {
        Command::Run(a) => {
            let config = load_config(&a.tables, Some(&a.kafka))?;
            let mut engine = Engine::open(&config, as_of(a.as_of), wall_clock_micros)?;
            engine.set_jobs(memberflow::job::load_dir(&config.jobs.dir)?);
            let options = kafka::RunOptions {
                until_caught_up: a.until_caught_up,
                progress: !a.no_progress,
                assignment_timeout: std::time::Duration::from_secs(60),
            };
            kafka::run(&mut engine, &options).await?;
            report_end(&engine);
        }
        Command::Backfill(a) => {
            let config = load_config(&a.tables, Some(&a.kafka))?;
            let mut engine = Engine::open(&config, as_of(a.as_of), wall_clock_micros)?;
            tokio::task::block_in_place(|| file::backfill(&mut engine, &a.files, &mut TableOnly, !a.no_progress))?;
            report_end(&engine);
        }
        Command::Refresh(a) => {
            let config = load_config(&a.tables, None)?;
            let mut engine = Engine::open(&config, as_of(a.as_of), wall_clock_micros)?;
            let (_, report) = tokio::task::block_in_place(|| engine.refresh(&mut TableOnly))
                .context("refresh failed; the previous tables are intact")?;
            print!("{report}");
        }
        Command::Tag(t) => tokio::task::block_in_place(|| manual_tag(t))?,
        Command::Report(a) => {
            let config = load_config(&a.tables, None)?;
            let reports = report::catalog(&config.reports.dir)?;
            if a.list {
                for r in &reports {
                    println!("{}", r.summary());
                }
                return Ok(());
            }
            let name = a.name.expect("clap requires a name without --list");
            let Some(r) = reports.iter().find(|r| r.name == name) else {
                let names: Vec<&str> = reports.iter().map(|r| r.name.as_str()).collect();
                bail!("no report {name:?}; reports: {}", names.join(", "));
            };
            let values = r.bind(&a.params)?;
            let ctx = query::session(&config.data_dir).await?;
            let (schema, batches) = r.run(&ctx, values).await?;
            query::emit(schema, &batches, a.format, a.out.as_deref(), &r.name)?;
        }
        Command::Audience(command) => audience(command).await?,
        Command::Query(a) => {
            let config = load_config(&a.tables, None)?;
            let ctx = query::session(&config.data_dir).await?;
            let (schema, batches) = query::run_sql(&ctx, &a.sql).await.context("query failed")?;
            query::emit(schema, &batches, a.format, a.out.as_deref(), "query")?;
        }
        Command::Generate(a) => generate(a).await?,
        Command::Demo(a) => demo::run(a.events, &a.data_dir).await?,
        Command::Bench(a) => bench::run(a).await?,
    }
    Ok(())
}

async fn audience(command: AudienceCommand) -> Result<()> {
    use memberflow::audience::{self, Audience};
    let a = match &command {
        AudienceCommand::Preview(p) => &p.audience,
        AudienceCommand::Export(e) => &e.audience,
    };
    let config = load_config(&a.tables, None)?;
    let definition = match (&a.definition, &a.predicate) {
        (Some(path), _) => Audience::from_file(path)?,
        (None, Some(p)) => Audience::inline(p),
        (None, None) => bail!("give a definition file or --where PREDICATE"),
    };
    let ctx = query::session(&config.data_dir).await?;
    match command {
        AudienceCommand::Preview(p) => {
            for (title, batches) in audience::preview::preview(&ctx, &definition, p.sample).await? {
                println!("{title}:");
                query::print(&batches, OutputFormat::Table, &mut std::io::stdout().lock())?;
            }
        }
        AudienceCommand::Export(e) => {
            let root = e.out.clone().unwrap_or_else(|| config.data_dir.join(audience::AUDIENCES));
            let options = audience::ExportOptions {
                name: &e.name,
                holdout: e.holdout,
                format: e.format,
                root: &root,
                progress: !e.no_progress,
                now: wall_clock_micros(),
            };
            let (dir, r) = audience::export(&ctx, &definition, &options).await?;
            println!(
                "exported audience {} snapshot {}: {} members ({} target, {} control, holdout {}%) to {}",
                r.name, r.snapshot, r.rows, r.target, r.control, r.holdout_percent, dir.display()
            );
        }
    }
    Ok(())
}

/// Applies the request at once when the data directory is free; otherwise leaves it in the
/// inbox for the process that holds it (applied at its next checkpoint).
fn manual_tag(command: TagCommand) -> Result<()> {
    let (op, a) = match command {
        TagCommand::Add(a) => (TagOp::Add, a),
        TagCommand::Remove(a) => (TagOp::Remove, a),
    };
    let config = load_config(&a.tables, None)?;
    let request = TagRequest { op, member_id: a.member, tag: a.tag, reason: a.reason, requested_at: wall_clock_micros() };
    request.check().map_err(|e| anyhow::anyhow!(e))?;
    match Engine::open(&config, AsOf::Latest, wall_clock_micros) {
        Err(EngineError::Lock(busy @ LockError::Busy { .. })) => {
            let file = request.submit(&config.data_dir)?;
            println!("queued {}: {busy}; that process applies it at its next checkpoint", file.display());
        }
        Err(e) => return Err(e.into()),
        Ok(mut engine) => {
            let Some(m) = engine.members().ids.find(&request.member_id) else {
                bail!("unknown member {:?} in {}", request.member_id, config.data_dir.display());
            };
            request.submit(&config.data_dir)?;
            tokio::task::block_in_place(|| engine.checkpoint(&mut TableOnly, true))?;
            let tags: Vec<&str> = engine.scoring().manual_tags(m).iter().map(|t| t.tag.as_str()).collect();
            println!("member {}: manual tags now {tags:?}", request.member_id);
        }
    }
    Ok(())
}

fn report_end(engine: &Engine) {
    let c = engine.counters();
    eprintln!("memberflow: {c}");
    eprintln!(
        "memberflow: {} members; tables in {} (events {} files, dead_letters {} files)",
        engine.members().len(),
        engine.data_dir().display(),
        engine.tables().file_count("events"),
        engine.tables().file_count("dead_letters"),
    );
}

async fn generate(a: GenerateArgs) -> Result<()> {
    let defaults = GenerateConfig::default();
    let end = a.end.unwrap_or(defaults.end);
    let config = GenerateConfig {
        events: a.events,
        members: a.members,
        stores: a.stores.max(1),
        seed: a.seed,
        start: a.start.unwrap_or(end - chrono::Duration::days(3 * 365)),
        end,
        duplicate_rate: a.duplicate_rate,
        late_duplicate_rate: a.late_duplicate_rate,
        conflict_rate: a.conflict_rate,
        malformed_rate: a.malformed_rate,
        late_rate: a.late_rate,
        key_mismatch_rate: a.key_mismatch_rate,
        max_items: a.max_items,
        ..defaults
    };
    if config.start > config.end {
        bail!("--start {} is after --end {}", config.start, config.end);
    }
    let generator = Generator::new(config);
    let tally = match (&a.out, &a.topic) {
        (Some(path), _) => output::to_file(generator, a.events, path, true).with_context(|| format!("writing {}", path.display()))?,
        (None, Some(topic)) => {
            let mut client = rdkafka::ClientConfig::new();
            client.set("bootstrap.servers", &a.brokers);
            kafka::ensure_topic(&client, topic, a.partitions).await.with_context(|| format!("creating topic {topic}"))?;
            tokio::task::block_in_place(|| output::to_topic(generator, a.events, &client, topic, &output::ProducerSettings { compression: a.compression.clone(), batch_records: a.batch_records }, true))?
        }
        (None, None) => bail!("say where the events go: --out FILE or --topic TOPIC"),
    };
    eprintln!("memberflow: generated {} messages: {:?}", tally.total, tally.by_kind);
    Ok(())
}

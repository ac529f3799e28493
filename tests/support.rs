//! Test helpers: run the binary, start and stop tansu, read Parquet, ask DuckDB.

use std::collections::BTreeMap;
use std::fs::File;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{Date32Type, Decimal128Type, Int32Type, Int64Type, TimestampMicrosecondType};
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

pub fn bin() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_memberflow"));
    c.env("MEMBERFLOW_LOG", "warn").env_remove("MEMBERFLOW_CRASH_AT");
    c
}

/// Runs the binary with `args`; panics with its stderr unless it succeeds.
pub fn run_ok(args: &[&str]) -> Output {
    let out = bin().args(args).output().expect("run memberflow");
    assert!(out.status.success(), "memberflow {args:?} failed:\n{}", String::from_utf8_lossy(&out.stderr));
    out
}

pub fn generate_file(path: &Path, events: u64, members: u64, seed: u64, extra: &[&str]) {
    let (events, members, seed) = (events.to_string(), members.to_string(), seed.to_string());
    let mut args = vec![
        "generate", "--events", &events, "--members", &members, "--seed", &seed,
        "--start", "2023-11-01", "--end", "2026-10-31", "--out", path.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    run_ok(&args);
}

/// One member row as read back from `members/members.parquet`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MemberRow {
    pub first_purchase_at: Option<i64>,
    pub last_purchase_at: Option<i64>,
    pub recency_days: Option<i32>,
    pub frequency: Option<i64>,
    pub monetary: Option<i128>,
    pub purchases_total: i64,
    pub stores_in_window: Option<i64>,
    pub last_store_id: Option<String>,
}

pub fn read_batches(path: &Path) -> Vec<RecordBatch> {
    let file = File::open(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    ParquetRecordBatchReaderBuilder::try_new(file).unwrap().build().unwrap().map(Result::unwrap).collect()
}

pub fn read_members(data_dir: &Path) -> (BTreeMap<String, MemberRow>, Vec<i32>) {
    let mut rows = BTreeMap::new();
    let mut as_of = Vec::new();
    for b in read_batches(&data_dir.join("members/members.parquet")) {
        let col = |name: &str| b.column_by_name(name).unwrap().clone();
        let ids = col("member_id");
        let ids = ids.as_string::<i32>();
        let ts = |name: &str, i: usize| {
            let c = col(name);
            let c = c.as_primitive::<TimestampMicrosecondType>();
            c.is_valid(i).then(|| c.value(i))
        };
        let i64s = |name: &str, i: usize| {
            let c = col(name);
            let c = c.as_primitive::<Int64Type>();
            c.is_valid(i).then(|| c.value(i))
        };
        for i in 0..b.num_rows() {
            let recency = col("recency_days");
            let recency = recency.as_primitive::<Int32Type>();
            let monetary = col("monetary");
            let monetary = monetary.as_primitive::<Decimal128Type>();
            let store = col("last_store_id");
            let store = store.as_string::<i32>();
            let as_of_col = col("as_of");
            as_of.push(as_of_col.as_primitive::<Date32Type>().value(i));
            rows.insert(
                ids.value(i).to_string(),
                MemberRow {
                    first_purchase_at: ts("first_purchase_at", i),
                    last_purchase_at: ts("last_purchase_at", i),
                    recency_days: recency.is_valid(i).then(|| recency.value(i)),
                    frequency: i64s("frequency", i),
                    monetary: monetary.is_valid(i).then(|| monetary.value(i)),
                    purchases_total: i64s("purchases_total", i).unwrap(),
                    stores_in_window: i64s("stores_in_window", i),
                    last_store_id: store.is_valid(i).then(|| store.value(i).to_string()),
                },
            );
        }
    }
    (rows, as_of)
}

/// Every published Parquet file under `dir`, sorted.
pub fn parquet_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else if p.extension().is_some_and(|x| x == "parquet") {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// Runs a DuckDB query (Python package installed by scripts/setup.sh); rows as strings.
pub fn duckdb(sql: &str) -> Vec<Vec<String>> {
    // One thread: DuckDB 1.4.2 sometimes splits a GROUP BY group in two when it aggregates
    // these files in parallel (seen ~1 run in 3 on 4,000 events; single-threaded is exact).
    let script = "import sys, duckdb\ncon = duckdb.connect(config={'threads': 1})\nfor row in con.sql(sys.stdin.read()).fetchall():\n    print('\\t'.join('' if v is None else str(v) for v in row))\n";
    let mut child = Command::new("python3")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 (run scripts/setup.sh)");
    use std::io::Write;
    child.stdin.take().unwrap().write_all(sql.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "duckdb failed: {}\n{sql}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap().lines().map(|l| l.split('\t').map(str::to_string).collect()).collect()
}

pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A tansu broker process on a loopback port; stopped on drop.
pub struct Tansu {
    child: Option<Child>,
    pub port: u16,
    storage: String,
    dir: PathBuf,
}

pub fn tansu_binary() -> PathBuf {
    let tools = std::env::var("MEMBERFLOW_TOOLS_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|_| PathBuf::from(std::env::var("HOME").unwrap()).join(".cache/memberflow-tools"));
    let bin = tools.join("bin/tansu");
    assert!(bin.exists(), "tansu is not installed at {}: run scripts/setup.sh", bin.display());
    bin
}

impl Tansu {
    /// In-memory storage.
    pub fn start(dir: &Path) -> Self {
        Self::start_with(dir, "memory://tansu/".into())
    }

    /// SQLite storage under `dir`, surviving a restart of the broker.
    pub fn start_persistent(dir: &Path) -> Self {
        Self::start_with(dir, "sqlite://tansu.db".into())
    }

    fn start_with(dir: &Path, storage: String) -> Self {
        let mut t = Tansu { child: None, port: free_port(), storage, dir: dir.to_path_buf() };
        t.spawn();
        t
    }

    pub fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    fn spawn(&mut self) {
        let url = format!("tcp://127.0.0.1:{}", self.port);
        let stamp = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
        let log = File::create(self.dir.join(format!("tansu-{}-{stamp}.log", self.port))).unwrap();
        let child = Command::new(tansu_binary())
            .current_dir(&self.dir)
            .args(["broker", "--listener-url", &url, "--advertised-listener-url", &url, "--storage-engine", &self.storage])
            .env("RUST_LOG", "warn")
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start tansu");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "tansu did not listen on port {}", self.port);
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    pub fn restart(&mut self) {
        self.stop();
        self.spawn();
    }
}

impl Drop for Tansu {
    fn drop(&mut self) {
        self.stop();
    }
}

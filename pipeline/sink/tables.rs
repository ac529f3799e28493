//! The data directory's Parquet tables and how files enter them.
//!
//! An epoch's files are written flat into `_staging/e<epoch>/` (no reader looks there;
//! one directory, so a backfill epoch touching a thousand days creates no directories
//! while staging), then the checkpoint that lists them commits, then they are renamed
//! into the tables. Recovery repeats the renames of the committed epoch and deletes the staging
//! of any uncommitted one, so a reader never sees a partial file, and a replay rewrites
//! instead of duplicating.

use std::fs::{self, File};
use std::io;
use std::path::{Path, PathBuf};

use arrow::array::RecordBatch;
use arrow::datatypes::SchemaRef;
use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use parquet::arrow::ArrowWriter;
use parquet::basic::{Compression as PqCompression, ZstdLevel};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::schema::types::ColumnPath;

use crate::config::{Compression, TablesConfig};
use crate::crash;
use crate::direct_file::DirectFile;
use crate::sink::events::Records;
use crate::sink::{events_file, schema};
use crate::state::Manifest;

pub const EVENTS: &str = "events";
pub const MEMBERS: &str = "members";
pub const DEAD_LETTERS: &str = "dead_letters";
pub const SEGMENT_CHANGES: &str = "segment_changes";
pub const RFM_THRESHOLDS: &str = "rfm_thresholds";
pub const STORE_DAY: &str = "store_day";
pub const MEMBER_STORE: &str = "member_store";
const STAGING: &str = "_staging";

#[derive(Debug, thiserror::Error)]
pub enum TableError {
    #[error("{path}: {source}")]
    Io { path: PathBuf, source: io::Error },
    #[error("{path}: {source}")]
    Parquet { path: PathBuf, source: parquet::errors::ParquetError },
    #[error("{0}")]
    Arrow(#[from] arrow::error::ArrowError),
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> TableError + '_ {
    move |source| TableError::Io { path: path.to_path_buf(), source }
}

/// The tables under one data directory.
#[derive(Debug, Clone)]
pub struct TableStore {
    root: PathBuf,
    config: TablesConfig,
}

impl TableStore {
    pub fn new(root: &Path, config: &TablesConfig) -> Self {
        Self { root: root.to_path_buf(), config: config.clone() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    fn staging(&self, epoch: u64) -> PathBuf {
        self.root.join(STAGING).join(format!("e{epoch:010}"))
    }

    /// Where `rel` is staged: the table path flattened into one file name (`/` -> `#`,
    /// which table paths never contain).
    fn staged(&self, epoch: u64, rel: &str) -> PathBuf {
        self.staging(epoch).join(rel.replace('/', "#"))
    }

    /// Writer settings for the table file `rel`: columns with (nearly) as many distinct
    /// values as rows are written without a dictionary — it would only overflow and fall
    /// back — some of them delta-encoded, and statistics only where a query can prune on
    /// them (see `schema`).
    fn properties(&self, rel: &str) -> WriterProperties {
        let mut builder = WriterProperties::builder()
            .set_compression(codec(self.config.compression))
            .set_max_row_group_row_count(Some(256 * 1024));
        let table = rel.split('/').next().unwrap_or_default();
        let path = |column: &str| ColumnPath::new(column.split('.').map(str::to_string).collect());
        for column in schema::dictionary_free_columns(table) {
            builder = builder.set_column_dictionary_enabled(path(column), false);
        }
        for (column, encoding) in schema::delta_encoded_columns(table) {
            builder = builder.set_column_encoding(path(column), *encoding);
        }
        if let Some(columns) = schema::statistics_columns(table) {
            builder = builder.set_statistics_enabled(EnabledStatistics::None);
            for column in columns {
                builder = builder.set_column_statistics_enabled(path(column), EnabledStatistics::Page);
            }
        }
        builder.build()
    }

    /// Writes `batches` as the staged file `rel` of `epoch`; returns its size.
    pub fn stage<I>(&self, epoch: u64, rel: &str, schema: SchemaRef, batches: I) -> Result<u64, TableError>
    where
        I: IntoIterator<Item = Result<RecordBatch, TableError>>,
    {
        let properties = self.properties(rel);
        self.stage_with(epoch, rel, |file, pq| {
            let mut writer = ArrowWriter::try_new(file, schema, Some(properties)).map_err(pq)?;
            for batch in batches {
                writer.write(&batch?).map_err(pq)?;
            }
            writer.into_inner().map_err(pq)
        })
    }

    /// Writes one day's events (`addresses` into `records`) as the staged file `rel`.
    pub fn stage_events(&self, epoch: u64, rel: &str, records: &Records<'_>, addresses: &[u64]) -> Result<u64, TableError> {
        self.stage_with(epoch, rel, |file, pq| events_file::write(file, records, addresses, self.config.compression).map_err(pq))
    }

    /// Creates the staged file `rel` of `epoch` and has `write` fill it (mapping Parquet
    /// errors with the function it is given); returns the file's size.
    fn stage_with<F>(&self, epoch: u64, rel: &str, write: F) -> Result<u64, TableError>
    where
        F: FnOnce(DirectFile, &dyn Fn(parquet::errors::ParquetError) -> TableError) -> Result<DirectFile, TableError>,
    {
        let path = self.staged(epoch, rel);
        // Around the page cache (`direct_file`): written once, synced, read by others later.
        let file = match DirectFile::create(&path) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                fs::create_dir_all(self.staging(epoch)).map_err(io_err(&path))?;
                DirectFile::create(&path)
            }
            file => file,
        }
        .map_err(io_err(&path))?;
        let pq = |source| TableError::Parquet { path: path.clone(), source };
        let file = write(file, &pq)?.finish().map_err(io_err(&path))?;
        Ok(file.metadata().map_err(io_err(&path))?.len())
    }

    /// Makes every staged file durable with one `syncfs` (instead of an fsync per file:
    /// a backfill checkpoint can stage a file for each of a thousand days). Call before
    /// the checkpoint that lists them commits.
    pub fn sync(&self) -> Result<(), TableError> {
        let dir = File::open(&self.root).map_err(io_err(&self.root))?;
        // SAFETY: a valid, open file descriptor for the duration of the call.
        if unsafe { libc::syncfs(std::os::fd::AsRawFd::as_raw_fd(&dir)) } != 0 {
            return Err(io_err(&self.root)(io::Error::last_os_error()));
        }
        Ok(())
    }

    /// Moves the committed epoch's staged files into the tables and retires the files it
    /// replaces. Idempotent: recovery calls it again after a crash at any point.
    pub fn publish(&self, epoch: u64, manifest: &Manifest) -> Result<(), TableError> {
        let staging = self.staging(epoch);
        for (n, rel) in manifest.publish.iter().enumerate() {
            // Staged flat; before 2026-11-22 (session 3) under its table path, which a crash
            // may have left committed but unpublished. Neither: moved by an earlier attempt.
            let from = [self.staged(epoch, rel), staging.join(rel)].into_iter().find(|p| p.exists());
            if let Some(from) = from {
                let to = self.root.join(rel);
                if let Err(e) = fs::rename(&from, &to) {
                    if e.kind() != io::ErrorKind::NotFound {
                        return Err(io_err(&to)(e));
                    }
                    // A new partition directory.
                    fs::create_dir_all(to.parent().expect("rel has a parent")).map_err(io_err(&to))?;
                    fs::rename(&from, &to).map_err(io_err(&to))?;
                }
            }
            if n == 0 {
                crash::point("mid_publish");
            }
        }
        for rel in &manifest.delete {
            let path = self.root.join(rel);
            match fs::remove_file(&path) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(io_err(&path)(e)),
                _ => {}
            }
        }
        remove_dir_if_exists(&staging)?;
        crash::point("after_publish");
        Ok(())
    }

    /// Finishes the committed epoch and discards anything staged after it.
    pub fn recover(&self, committed_epoch: u64, manifest: &Manifest) -> Result<usize, TableError> {
        self.publish(committed_epoch, manifest)?;
        let staging_root = self.root.join(STAGING);
        let mut discarded = 0;
        if let Ok(entries) = fs::read_dir(&staging_root) {
            for entry in entries.flatten() {
                remove_dir_if_exists(&entry.path())?;
                discarded += 1;
            }
        }
        Ok(discarded)
    }

    /// Plans the merge of small files in `dir` (relative) into one staged file of `epoch`.
    /// Returns the new file and the retired ones, or nothing when there is nothing to do.
    pub fn compact(&self, epoch: u64, dir: &str, schema: SchemaRef) -> Result<Option<(String, Vec<String>)>, TableError> {
        let small = self.small_files(dir)?;
        if small.len() <= self.config.compact_after_files {
            return Ok(None);
        }
        let rel = format!("{dir}/part-{epoch:010}-compacted.parquet");
        let readers = small.iter().map(|f| {
            let path = self.root.join(f);
            let file = File::open(&path).map_err(io_err(&path))?;
            let pq = |source| TableError::Parquet { path: path.clone(), source };
            ParquetRecordBatchReaderBuilder::try_new(file).map_err(pq)?.with_batch_size(64 * 1024).build().map_err(pq)
        });
        let mut batches = Vec::new();
        for reader in readers {
            for batch in reader? {
                batches.push(batch.map_err(TableError::from));
            }
        }
        self.stage(epoch, &rel, schema, batches)?;
        Ok(Some((rel, small)))
    }

    /// Published `.parquet` files under `dir` smaller than the compaction threshold, sorted.
    fn small_files(&self, dir: &str) -> Result<Vec<String>, TableError> {
        let path = self.root.join(dir);
        let entries = match fs::read_dir(&path) {
            Ok(e) => e,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err(&path)(e)),
        };
        let mut files = Vec::new();
        for entry in entries {
            let entry = entry.map_err(io_err(&path))?;
            let name = entry.file_name().to_string_lossy().into_owned();
            let size = entry.metadata().map_err(io_err(&path))?.len();
            if name.ends_with(".parquet") && size < self.config.small_file_bytes {
                files.push(format!("{dir}/{name}"));
            }
        }
        files.sort();
        Ok(files)
    }

    /// Counts the published Parquet files of a table (all partitions).
    pub fn file_count(&self, table: &str) -> usize {
        fn walk(p: &Path) -> usize {
            fs::read_dir(p)
                .map(|entries| {
                    entries
                        .flatten()
                        .map(|e| {
                            let path = e.path();
                            if path.is_dir() {
                                walk(&path)
                            } else {
                                usize::from(path.extension().is_some_and(|x| x == "parquet"))
                            }
                        })
                        .sum()
                })
                .unwrap_or(0)
        }
        walk(&self.root.join(table))
    }
}

/// The Parquet codec of a configured compression (zstd at level 1).
pub(super) fn codec(compression: Compression) -> PqCompression {
    match compression {
        Compression::Zstd => PqCompression::ZSTD(ZstdLevel::try_new(1).expect("valid level")),
        Compression::Snappy => PqCompression::SNAPPY,
    }
}

fn remove_dir_if_exists(path: &Path) -> Result<(), TableError> {
    match fs::remove_dir_all(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(io_err(path)(e)),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_moves_flat_and_older_nested_staging_into_the_tables() {
        let dir = tempfile::tempdir().unwrap();
        let store = TableStore::new(dir.path(), &TablesConfig::default());
        let (flat, nested) = ("events/dt=2025-01-01/part-0000000003.parquet", "events/dt=2025-01-02/part-0000000003.parquet");
        fs::create_dir_all(store.staging(3)).unwrap();
        fs::write(store.staged(3, flat), b"flat").unwrap();
        let old = store.staging(3).join(nested);
        fs::create_dir_all(old.parent().unwrap()).unwrap();
        fs::write(&old, b"nested").unwrap();
        let manifest = Manifest { publish: vec![flat.into(), nested.into()], delete: vec![] };
        store.publish(3, &manifest).unwrap();
        store.publish(3, &manifest).unwrap(); // idempotent, as recovery repeats it
        assert_eq!(fs::read(dir.path().join(flat)).unwrap(), b"flat");
        assert_eq!(fs::read(dir.path().join(nested)).unwrap(), b"nested");
        assert!(!store.staging(3).exists());
    }

    #[test]
    fn member_tables_write_ids_and_amounts_without_a_dictionary() {
        use parquet::basic::Encoding;
        let store = TableStore::new(Path::new("unused"), &TablesConfig::default());
        let path = |c: &str| ColumnPath::new(vec![c.to_string()]);
        let members = store.properties("members/members.parquet");
        for column in ["member_id", "attributes", "monetary", "last_purchase_at"] {
            assert!(!members.dictionary_enabled(&path(column)), "members.{column} has a dictionary");
        }
        for column in ["recency_days", "rfm_segment", "last_store_id"] {
            assert!(members.dictionary_enabled(&path(column)), "members.{column} has no dictionary");
        }
        assert_eq!(members.encoding(&path("member_id")), Some(Encoding::DELTA_BYTE_ARRAY));
        let member_store = store.properties("member_store/member_store.parquet");
        assert!(!member_store.dictionary_enabled(&path("purchase_amount")));
        assert!(member_store.dictionary_enabled(&path("store_id")));
        // A dead letter's raw message: no dictionary, no statistics; its position keeps both.
        let dead_letters = store.properties("dead_letters/part-0000000001.parquet");
        for column in ["payload", "key", "offset"] {
            assert!(!dead_letters.dictionary_enabled(&path(column)), "dead_letters.{column} has a dictionary");
        }
        assert!(dead_letters.dictionary_enabled(&path("reason_kind")));
        for (column, statistics) in [("payload", EnabledStatistics::None), ("reason", EnabledStatistics::None), ("offset", EnabledStatistics::Page)] {
            assert_eq!(dead_letters.statistics_enabled(&path(column)), statistics, "dead_letters.{column}");
        }
        // Other tables keep the writer's defaults.
        assert!(store.properties("store_day/part-0000000001.parquet").dictionary_enabled(&path("store_id")));
    }

    #[test]
    fn events_columns_have_the_schema_s_dictionaries_and_statistics() {
        use std::sync::Arc;
        use arrow::array::{ArrayRef, Decimal128Array, Int32Array, Int64Array, ListArray, StringArray, TimestampMicrosecondArray};
        let dir = tempfile::tempdir().unwrap();
        let store = TableStore::new(dir.path(), &TablesConfig::default());
        let schema = schema::events();
        let rows = 1000;
        let text = |f: &dyn Fn(usize) -> String| -> ArrayRef { Arc::new(StringArray::from_iter_values((0..rows).map(f))) };
        let ts = |f: &dyn Fn(usize) -> i64| -> ArrayRef {
            Arc::new(TimestampMicrosecondArray::from_iter_values((0..rows).map(f)).with_timezone("UTC"))
        };
        let arrow::datatypes::DataType::List(item) = schema.field(10).data_type() else { panic!("items is a list") };
        let items = ListArray::new_null(item.clone(), rows);
        let columns: Vec<ArrayRef> = vec![
            text(&|i| format!("e{i}")),
            text(&|i| ["purchase", "refund"][i % 2].to_string()),
            text(&|i| format!("m{}", i % 7)),
            ts(&|i| i as i64 * 1_000_000),
            text(&|i| format!("s{}", i % 3)),
            text(&|_| "pos".to_string()),
            text(&|i| format!("o{i}")),
            Arc::new(Decimal128Array::from_iter_values((0..rows).map(|i| i as i128)).with_precision_and_scale(18, 2).unwrap()),
            text(&|_| "CNY".to_string()),
            Arc::new(Int64Array::from_iter_values((0..rows).map(|i| i as i64))),
            Arc::new(items),
            text(&|_| "{}".to_string()),
            text(&|_| "topic".to_string()),
            Arc::new(Int32Array::from_iter_values((0..rows).map(|_| 0))),
            Arc::new(Int64Array::from_iter_values((0..rows).map(|i| i as i64))),
            ts(&|i| i as i64),
        ];
        let batch = RecordBatch::try_new(schema.clone(), columns).unwrap();
        // The Arrow writer with the table's settings (compaction) and the events writer.
        let rel = "events/dt=2025-01-01/part-0000000001.parquet";
        store.stage(1, rel, schema, [Ok(batch)]).unwrap();
        check_events_file(&store.staged(1, rel), rows);
        let limits = crate::event::DecodeLimits { max_message_bytes: 1 << 20, min_time: 0, max_time: i64::MAX };
        let texts: Vec<String> = (0..rows)
            .map(|i| {
                let time = chrono::DateTime::from_timestamp(i as i64, 0).unwrap().to_rfc3339();
                format!(r#"{{"event_id":"e{i}","type":"purchase","member_id":"m{}","occurred_at":"{time}","store_id":"s{}","order_id":"o{i}","amount":{i},"attributes":{{}}}}"#, i % 7, i % 3)
            })
            .collect();
        let mut buffer = crate::sink::EventsBuffer::default();
        for (i, text) in texts.iter().enumerate() {
            let event = crate::event::decode(text.as_bytes(), &limits).unwrap();
            let (record, _) = buffer.record(&event, crate::sink::Origin { source: "topic", partition: 0, offset: i as i64 }, 0);
            buffer.push(0, record);
        }
        let (_, addresses) = buffer.take_days().remove(0);
        let rel = "events/dt=2025-01-01/part-0000000002.parquet";
        store.stage_events(1, rel, &buffer.records("CNY"), &addresses).unwrap();
        check_events_file(&store.staged(1, rel), rows);
    }

    /// Dictionaries, encodings, statistics and page index of an events file of `rows` rows
    /// whose `occurred_at` runs from 0 to `rows - 1` seconds.
    fn check_events_file(path: &Path, rows: usize) {
        use parquet::basic::Encoding;
        use parquet::file::page_index::column_index::ColumnIndexMetaData;
        use parquet::file::reader::{FileReader, SerializedFileReader};
        use parquet::file::serialized_reader::ReadOptionsBuilder;
        let options = ReadOptionsBuilder::new().with_page_index().build();
        let reader = SerializedFileReader::new_with_options(File::open(path).unwrap(), options).unwrap();
        let group = reader.metadata().row_group(0);
        let position = |name: &str| (0..group.num_columns()).find(|&c| group.column(c).column_path().string() == name).unwrap();
        let column = |name: &str| group.column(position(name));
        for name in ["event_id", "member_id", "occurred_at", "amount", "offset"] {
            assert!(column(name).dictionary_page_offset().is_none(), "{name} has a dictionary");
        }
        for (name, encoding) in [("event_id", Encoding::DELTA_BYTE_ARRAY), ("occurred_at", Encoding::DELTA_BINARY_PACKED), ("attributes", Encoding::PLAIN)] {
            assert!(column(name).encodings().any(|e| e == encoding), "{name} is not {encoding}");
        }
        for name in ["type", "store_id", "currency", "source"] {
            assert!(column(name).dictionary_page_offset().is_some(), "{name} has no dictionary");
        }
        for name in ["event_id", "member_id", "order_id", "amount", "type", "store_id"] {
            assert!(column(name).statistics().is_none(), "{name} has statistics");
        }
        let micros = |seconds: usize| (seconds as i64 * 1_000_000).to_le_bytes();
        let stats = column("occurred_at").statistics().expect("occurred_at has statistics");
        assert_eq!((stats.min_bytes_opt(), stats.max_bytes_opt()), (Some(&micros(0)[..]), Some(&micros(rows - 1)[..])));
        let index = &reader.metadata().column_index().expect("a page index")[0];
        let ColumnIndexMetaData::INT64(pages) = &index[position("occurred_at")] else { panic!("occurred_at has no column index") };
        assert_eq!((pages.min_value(0), pages.max_value(0)), (Some(&0), Some(&((rows as i64 - 1) * 1_000_000))));
        assert!(matches!(index[position("store_id")], ColumnIndexMetaData::NONE));
        let offsets = &reader.metadata().offset_index().expect("an offset index")[0];
        assert!(offsets.iter().all(|column| column.page_locations()[0].first_row_index == 0));
    }
}

//! Accepted events, buffered per business day until the next checkpoint writes them into
//! the events table (`events_file`).

use std::collections::HashMap;

use super::events_file::Value;
use crate::event::{Event, ABSENT, NO_NUMBER};
use crate::state::Day;

/// Where a message came from: a topic or a file, its partition (0 for files), its offset
/// (the line number for files).
#[derive(Debug, Clone, Copy)]
pub struct Origin<'a> {
    pub source: &'a str,
    pub partition: i32,
    pub offset: i64,
}

/// The current epoch's events: each decoded event's record in an arena that is reused
/// from epoch to epoch (no per-day column buffers growing on the hot path, no fresh memory
/// once the first epoch has run), and the accepted ones' addresses by `dt`. The checkpoint
/// turns each day's records into a file of the events table.
#[derive(Default)]
pub struct EventsBuffer {
    arena: Arena,
    /// Each day's record addresses, days in order of their first record.
    days: Vec<(Day, Vec<u64>)>,
    /// Where each day is in `days`; consecutive events mostly share a day, so the last
    /// one used is tried first.
    day_index: HashMap<Day, usize>,
    last_day: usize,
    /// Day lists of earlier epochs, emptied: a day's list is millions of addresses in a
    /// live stream, and a fresh one growing by doubling was new memory at every epoch.
    spare_days: Vec<Vec<u64>>,
    sources: Vec<String>,
}

impl EventsBuffer {
    /// Writes `e`'s record (its row of the events table) into the epoch's arena and
    /// returns its address and the event's content hash. The record's second part is the
    /// event's content ([`Event::write_content`]), so hashing it here gives the digest
    /// dedup needs without building the fields a second time. A record becomes a row only
    /// once [`EventsBuffer::push`]ed (a duplicate's or a conflict's stays in the arena
    /// unused until the epoch ends).
    pub fn record(&mut self, e: &Event<'_>, origin: Origin<'_>, now: i64) -> (u64, u64) {
        // Sources (topics, files) of this epoch; consecutive events mostly share one.
        let source = match self.sources.iter().rposition(|s| s == origin.source) {
            Some(i) => i,
            None => {
                self.sources.push(origin.source.to_string());
                self.sources.len() - 1
            }
        };
        let mut content = 0;
        let address = self.arena.push_with(|b| content = encode(b, e, origin, source, now));
        (address, content)
    }

    /// Adds the record at `address` to the rows of business day `day`.
    pub fn push(&mut self, day: Day, address: u64) {
        if self.days.get(self.last_day).is_none_or(|(d, _)| *d != day) {
            let days = &mut self.days;
            self.last_day = *self.day_index.entry(day).or_insert_with(|| {
                days.push((day, self.spare_days.pop().unwrap_or_default()));
                days.len() - 1
            });
        }
        self.days[self.last_day].1.push(address);
    }

    /// Takes the epoch's events: per day, oldest first, the addresses of its records. Write
    /// each day with [`EventsBuffer::records`], then [`EventsBuffer::clear`] the buffer with
    /// what this returned.
    pub fn take_days(&mut self) -> Vec<(Day, Vec<u64>)> {
        self.day_index.clear();
        let mut days = std::mem::take(&mut self.days);
        days.sort_unstable_by_key(|(day, _)| *day);
        days
    }

    /// The epoch's records, for [`super::events_file::write`]; an event without a
    /// `currency` has `default_currency`.
    pub fn records<'a>(&'a self, default_currency: &'a str) -> Records<'a> {
        Records { arena: &self.arena, sources: &self.sources, default_currency }
    }

    /// Forgets the records `taken` (keeping the arena's and the day lists' memory for the
    /// next epoch).
    pub fn clear(&mut self, taken: Vec<(Day, Vec<u64>)>) {
        self.spare_days.extend(taken.into_iter().chain(self.days.drain(..)).map(|(_, mut list)| {
            list.clear();
            list
        }));
        self.day_index.clear();
        self.arena.clear();
        self.sources.clear();
    }
}

/// Byte chunks that records are appended to; cleared, not freed, between epochs.
#[derive(Default)]
struct Arena {
    chunks: Vec<Vec<u8>>,
    /// The chunk being filled.
    current: usize,
}

const CHUNK_BYTES: usize = 8 << 20;
/// Room a chunk must have left to take the next record: more than records of messages of
/// the default size limit need. A larger record is still whole (its chunk grows).
const RECORD_ROOM: usize = 256 << 10;

impl Arena {
    /// Appends the record `write` appends to the buffer it is given (in place: not built
    /// elsewhere and copied); its address is (chunk << 32 | offset).
    fn push_with(&mut self, write: impl FnOnce(&mut Vec<u8>)) -> u64 {
        while self.chunks.get(self.current).is_some_and(|c| c.capacity() - c.len() < RECORD_ROOM) {
            self.current += 1;
        }
        if self.current == self.chunks.len() {
            self.chunks.push(Vec::with_capacity(CHUNK_BYTES));
        }
        let chunk = &mut self.chunks[self.current];
        let address = (self.current as u64) << 32 | chunk.len() as u64;
        write(chunk);
        address
    }

    fn get(&self, address: u64) -> &[u8] {
        &self.chunks[(address >> 32) as usize][(address & 0xffff_ffff) as usize..]
    }

    fn clear(&mut self) {
        self.chunks.iter_mut().for_each(Vec::clear);
        self.current = 0;
    }
}

/// Appends one event's record to `b`: the fields the content leaves out (kind, source,
/// partition, offset, ingest time, number of items), then the content; returns the
/// content's hash ([`Event::content_hash`]).
fn encode(b: &mut Vec<u8>, e: &Event<'_>, origin: Origin<'_>, source: usize, now: i64) -> u64 {
    b.push(e.kind as u8);
    b.extend_from_slice(&(source as u32).to_le_bytes());
    b.extend_from_slice(&origin.partition.to_le_bytes());
    b.extend_from_slice(&origin.offset.to_le_bytes());
    b.extend_from_slice(&now.to_le_bytes());
    b.extend_from_slice(&(e.items.len() as u32).to_le_bytes());
    let start = b.len();
    e.write_content(b);
    xxhash_rust::xxh3::xxh3_64(&b[start..])
}

/// Reads a record's fields in the order [`encode`] wrote them.
struct Reader<'a> {
    b: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, tail) = self.b.split_at(n);
        self.b = tail;
        head
    }
    fn u8(&mut self) -> u8 {
        self.take(1)[0]
    }
    fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.take(4).try_into().expect("4 bytes"))
    }
    fn i64(&mut self) -> i64 {
        i64::from_le_bytes(self.take(8).try_into().expect("8 bytes"))
    }
    /// A content field: its length, then its bytes.
    fn field(&mut self) -> &'a [u8] {
        let n = self.u32() as usize;
        self.take(n)
    }
    /// A content number (always 8 bytes).
    fn fixed(&mut self) -> i64 {
        i64::from_le_bytes(self.field().try_into().expect("8 bytes"))
    }
    /// An optional content number: [`NO_NUMBER`] when absent (amounts, points and prices
    /// are never negative).
    fn number(&mut self) -> Option<i64> {
        Some(self.fixed()).filter(|&v| v != NO_NUMBER)
    }
    /// A content text field.
    fn str(&mut self) -> &'a str {
        let bytes = self.field();
        debug_assert!(std::str::from_utf8(bytes).is_ok());
        // SAFETY: `Event::write_content` writes every text field as a length and the bytes
        // of a `&str` (or an absent optional one as `ABSENT`, which `opt_str` takes), and
        // this reader takes the fields back in the same order (a unit test round-trips
        // every field), so `bytes` is exactly one whole `&str`. Validating again cost 3% of
        // the pipeline.
        unsafe { std::str::from_utf8_unchecked(bytes) }
    }
    /// An optional content text field: [`ABSENT`] (not UTF-8, so never a value) when absent.
    fn opt_str(&mut self) -> Option<&'a str> {
        if self.b.get(..5) == Some(&[1, 0, 0, 0, ABSENT[0]]) {
            self.take(5);
            return None;
        }
        Some(self.str())
    }
}

/// A record's fields as the events table's leaf columns (in the order of
/// `schema::events()`), each with its repetition and definition levels.
pub struct RecordFields<'a> {
    reader: Reader<'a>,
    sources: &'a [String],
    default_currency: &'a str,
}

impl<'a> RecordFields<'a> {
    /// Hands every entry of the record to `leaves`; a column's entries come in order (all
    /// of them for `items`, one for the others).
    pub fn visit(mut self, leaves: &mut impl Leaves<'a>) {
        let r = &mut self.reader;
        let text = |s: Option<&'a str>| s.map_or((0, Value::Null), |s| (1, Value::Str(s)));
        let int = |v: Option<i64>| v.map_or((0, Value::Null), |v| (1, Value::Int(v)));
        let kind = crate::event::EventType::ALL[r.u8() as usize];
        let source = &self.sources[r.u32() as usize];
        let partition = r.u32() as i32;
        let (offset, ingested_at, items) = (r.i64(), r.i64(), r.u32());
        // The content, in the order of `Event::content_bytes`.
        leaves.leaf(0, 0, 0, Value::Str(r.str()));
        r.field(); // the type's name; the kind above is its index
        leaves.leaf(1, 0, 0, Value::Keyed(kind as usize, kind.as_str()));
        leaves.leaf(2, 0, 0, Value::Str(r.str()));
        leaves.leaf(3, 0, 0, Value::Int(r.fixed()));
        for column in [4, 5, 6] {
            let (def, value) = text(r.opt_str());
            leaves.leaf(column, 0, def, value);
        }
        let (def, value) = int(r.number());
        leaves.leaf(7, 0, def, value);
        leaves.leaf(8, 0, 0, Value::Str(r.opt_str().unwrap_or(self.default_currency)));
        let (def, value) = int(r.number());
        leaves.leaf(9, 0, def, value);
        if items == 0 {
            for column in ITEM_COLUMNS {
                leaves.leaf(column, 0, 0, Value::Null);
            }
        }
        // An item is defined at level 3 (items, list, item); its optional fields at 4.
        for n in 0..items {
            let rep = u32::from(n > 0);
            leaves.leaf(10, rep, 3, Value::Str(r.str()));
            for column in [11, 12] {
                let (def, value) = text(r.opt_str());
                leaves.leaf(column, rep, 3 + def, value);
            }
            leaves.leaf(13, rep, 3, Value::Int(r.fixed()));
            let (def, value) = int(r.number());
            leaves.leaf(14, rep, 3 + def, value);
        }
        let (def, value) = text(r.opt_str());
        leaves.leaf(15, 0, def, value);
        leaves.leaf(16, 0, 0, Value::Str(source));
        leaves.leaf(17, 0, 0, Value::Int(partition.into()));
        leaves.leaf(18, 0, 0, Value::Int(offset));
        leaves.leaf(19, 0, 0, Value::Int(ingested_at));
    }
}

/// Where [`RecordFields::visit`] puts a record's entries.
pub trait Leaves<'a> {
    /// One entry of leaf `column`: its repetition and definition levels and its value
    /// (`Null` when the definition level says it is absent). Implementations should inline
    /// it (`#[inline(always)]`): the visitor then pushes each value with its column and kind
    /// known (a closure called from two dozen places was not inlined, and each entry went
    /// through a call with the value in memory).
    fn leaf(&mut self, column: usize, rep: u32, def: u32, value: Value<'a>);
}

// The event type's column is looked up by the kind's number.
const _: () = assert!(crate::event::EventType::ALL.len() <= super::dictionary::KEYS);

/// The leaf columns of `items`: sku, category, brand, qty, unit_price.
const ITEM_COLUMNS: [usize; 5] = [10, 11, 12, 13, 14];

/// The epoch's records, as the events file writer reads them.
pub struct Records<'a> {
    arena: &'a Arena,
    sources: &'a [String],
    default_currency: &'a str,
}

impl<'a> Records<'a> {
    pub fn get(&self, address: u64) -> RecordFields<'a> {
        RecordFields { reader: Reader { b: self.arena.get(address) }, sources: self.sources, default_currency: self.default_currency }
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::{Array, AsArray, RecordBatch};
    use arrow::datatypes::{Decimal128Type, Int32Type, Int64Type, TimestampMicrosecondType};
    use parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    use super::*;
    use crate::config::Compression;
    use crate::event::{decode, DecodeLimits};
    use crate::sink::{events_file, schema};

    /// Every day's records as written to a file and read back by the parquet crate's Arrow
    /// reader (a decoder that shares no code with the writer).
    fn drain(buffer: &mut EventsBuffer) -> Vec<(Day, RecordBatch)> {
        let days = buffer.take_days();
        let built = days.iter().map(|(day, addresses)| (*day, write_and_read(buffer, addresses, Compression::Zstd))).collect();
        buffer.clear(days);
        built
    }

    fn write_and_read(buffer: &EventsBuffer, addresses: &[u64], compression: Compression) -> RecordBatch {
        let file = events_file::write(Vec::new(), &buffer.records("CNY"), addresses, compression).unwrap();
        let reader = ParquetRecordBatchReaderBuilder::try_new(bytes::Bytes::from(file)).unwrap();
        assert_eq!(reader.schema(), &schema::events(), "the file's Arrow schema");
        let batches: Vec<_> = reader.with_batch_size(1 << 20).build().unwrap().collect::<Result<_, _>>().unwrap();
        arrow::compute::concat_batches(&schema::events(), &batches).unwrap()
    }

    #[test]
    fn every_field_survives_the_arena_and_the_file() {
        let limits = DecodeLimits { max_message_bytes: 1 << 20, min_time: 0, max_time: i64::MAX };
        let texts = [
            r#"{"event_id":"e1","type":"purchase","member_id":"m1","occurred_at":"2025-03-01T10:00:00+08:00","store_id":"s1","channel":"pos","order_id":"o1","amount":"12.50","currency":"EUR","items":[{"sku":"A","category":"tea","qty":2,"unit_price":6.25},{"sku":"B","brand":"x","qty":1}]}"#,
            r#"{"event_id":"e2","type":"signup","member_id":"m2","occurred_at":"2025-03-01T11:00:00Z","attributes":{"city":"上海"}}"#,
            r#"{"event_id":"e3","type":"points_earned","member_id":"m1","occurred_at":"2025-03-02T11:00:00Z","points":7}"#,
        ];
        let events: Vec<_> = texts.iter().map(|t| decode(t.as_bytes(), &limits).unwrap()).collect();
        let mut buffer = EventsBuffer::default();
        for round in 0..2 {
            for (n, e) in events.iter().enumerate() {
                let origin = Origin { source: if n == 1 { "file.jsonl" } else { "topic" }, partition: n as i32, offset: 10 + n as i64 };
                let (record, content) = buffer.record(e, origin, 555 + round);
                assert_eq!(content, e.content_hash(), "the record's content is the event's");
                buffer.push(100 + (n as Day / 2), record);
            }
            let days = drain(&mut buffer);
            assert_eq!(days.iter().map(|(d, b)| (*d, b.num_rows())).collect::<Vec<_>>(), [(100, 2), (101, 1)]);
            let (_, first) = &days[0];
            let text = |name: &str, row: usize| {
                let column = first.column_by_name(name).unwrap().as_string::<i32>();
                column.is_valid(row).then(|| column.value(row).to_string())
            };
            assert_eq!(text("event_id", 0).as_deref(), Some("e1"));
            assert_eq!(text("member_id", 1).as_deref(), Some("m2"));
            assert_eq!(text("type", 1).as_deref(), Some("signup"));
            assert_eq!(text("currency", 0).as_deref(), Some("EUR"));
            assert_eq!(text("currency", 1).as_deref(), Some("CNY"));
            assert_eq!(text("store_id", 1), None);
            assert_eq!(text("channel", 0).as_deref(), Some("pos"));
            assert_eq!(text("order_id", 0).as_deref(), Some("o1"));
            assert_eq!(text("attributes", 1).as_deref(), Some(r#"{"city":"上海"}"#));
            assert_eq!(text("source", 1).as_deref(), Some("file.jsonl"));
            let amount = first.column_by_name("amount").unwrap().as_primitive::<Decimal128Type>();
            assert_eq!((amount.value(0), amount.is_null(1)), (1250, true));
            let occurred = first.column_by_name("occurred_at").unwrap().as_primitive::<TimestampMicrosecondType>();
            assert_eq!(occurred.value(1), events[1].occurred_at);
            let ingested = first.column_by_name("ingested_at").unwrap().as_primitive::<TimestampMicrosecondType>();
            assert_eq!(ingested.value(0), 555 + round);
            let partition = first.column_by_name("partition").unwrap().as_primitive::<Int32Type>();
            assert_eq!((partition.value(0), partition.value(1)), (0, 1));
            let items = first.column_by_name("items").unwrap().as_list::<i32>();
            assert_eq!((items.value_length(0), items.is_null(1)), (2, true));
            let item = items.value(0);
            let item = item.as_struct();
            assert_eq!(item.column(0).as_string::<i32>().value(1), "B");
            assert_eq!(item.column(1).as_string::<i32>().value(0), "tea");
            assert!(item.column(1).as_string::<i32>().is_null(1));
            assert_eq!(item.column(2).as_string::<i32>().value(1), "x");
            assert_eq!(item.column(3).as_primitive::<Int64Type>().value(0), 2);
            assert_eq!(item.column(4).as_primitive::<Decimal128Type>().value(0), 625);
            assert!(item.column(4).is_null(1));
            let points = days[1].1.column_by_name("points").unwrap().as_primitive::<Int64Type>();
            assert_eq!(points.value(0), 7);
        }
        // Many sources in one epoch (a backfill of many files).
        let names: Vec<String> = (0..300).map(|i| format!("file-{i}.jsonl")).collect();
        for (i, name) in names.iter().enumerate() {
            let (record, _) = buffer.record(&events[2], Origin { source: name, partition: 0, offset: i as i64 }, 0);
            buffer.push(100, record);
        }
        let (_, batch) = drain(&mut buffer).remove(0);
        let sources = batch.column_by_name("source").unwrap().as_string::<i32>();
        assert!(names.iter().enumerate().all(|(i, name)| sources.value(i) == name));
    }

    /// A day of more rows than a row group, of pages of every kind: values that change
    /// every row, dictionaries that outgrow their limit (later pages PLAIN), pages ended by
    /// their bytes (large attributes), nulls and items in varying numbers; read back row by
    /// row against the events pushed.
    #[test]
    fn large_days_read_back_exactly_in_both_codecs() {
        let limits = DecodeLimits { max_message_bytes: 1 << 20, min_time: 0, max_time: i64::MAX };
        let rows = events_file::ROW_GROUP_ROWS + 30_001;
        let text = |i: usize| {
            let store = if i % 7 == 0 { String::new() } else { format!(r#","store_id":"store-{:024}""#, i % 90_000) };
            let items: Vec<String> = (0..i % 4)
                .map(|k| format!(r#"{{"sku":"sku-{}","qty":{},"unit_price":"{}.{:02}"{}}}"#, (i + k) % 5000, k + 1, i % 300, k, if k == 1 { r#","brand":"b""# } else { "" }))
                .collect();
            let items = if items.is_empty() { String::new() } else { format!(r#","items":[{}]"#, items.join(",")) };
            let amount = if i % 5 == 0 { String::new() } else { format!(r#","amount":{}.{:02}"#, i % 1000, i % 100) };
            // Now and then an attributes object large enough to end its column's page early.
            let attributes = match i % 3001 {
                0 => format!(r#","attributes":{{"note":"{}"}}"#, "x".repeat(600_000 + i % 7)),
                n if n % 50 == 1 => r#","attributes":{"city":"Hangzhou"}"#.to_string(),
                _ => String::new(),
            };
            format!(
                r#"{{"event_id":"evt-{i:08}","type":"{}","member_id":"m{}","occurred_at":"2025-03-01T{:02}:{:02}:{:02}Z"{store},"order_id":"o{i}"{amount}{items}{attributes}}}"#,
                if i % 5 == 0 { "review" } else { "purchase" },
                (i * 7919) % 100_003,
                i % 24,
                i % 60,
                (i / 60) % 60,
            )
        };
        let texts: Vec<String> = (0..rows).map(text).collect();
        let events: Vec<_> = texts.iter().map(|t| decode(t.as_bytes(), &limits).unwrap()).collect();
        let mut buffer = EventsBuffer::default();
        for (i, e) in events.iter().enumerate() {
            let (record, _) = buffer.record(e, Origin { source: "topic", partition: (i % 3) as i32, offset: i as i64 * 3 }, 1_000 + (i / 1000) as i64);
            // A record left unpushed (a duplicate's) is not a row.
            if i % 1000 == 7 {
                buffer.record(e, Origin { source: "topic", partition: 9, offset: -1 }, 0);
            }
            buffer.push(100, record);
        }
        let days = buffer.take_days();
        // The attributes column's pages: two large values end one, long before its rows do.
        let file = events_file::write(Vec::new(), &buffer.records("CNY"), &days[0].1, Compression::Zstd).unwrap();
        let options = parquet::file::serialized_reader::ReadOptionsBuilder::new().with_page_index().build();
        let reader = parquet::file::serialized_reader::SerializedFileReader::new_with_options(bytes::Bytes::from(file), options).unwrap();
        let offsets = &parquet::file::reader::FileReader::metadata(&reader).offset_index().unwrap()[0];
        let pages = |column: usize| offsets[column].page_locations().len();
        assert!(pages(15) > 2 * pages(0), "attributes: {} pages, event_id: {}", pages(15), pages(0));
        // Chunks of both codecs (a page of a column whose every value is the default
        // currency is a few bytes, which zstd makes larger; the ids compress), which the
        // reads below decode.
        let metadata = parquet::file::reader::FileReader::metadata(&reader);
        let codec = |column: usize| metadata.row_group(0).column(column).compression();
        assert_eq!(codec(8), parquet::basic::Compression::UNCOMPRESSED);
        assert!(matches!(codec(0), parquet::basic::Compression::ZSTD(_)));
        for compression in [Compression::Zstd, Compression::Snappy] {
            let batch = write_and_read(&buffer, &days[0].1, compression);
            assert_eq!(batch.num_rows(), rows);
            let strings = |name: &str| batch.column_by_name(name).unwrap().as_string::<i32>().clone();
            let (event_id, member_id, store_id, order_id) = (strings("event_id"), strings("member_id"), strings("store_id"), strings("order_id"));
            let attributes = strings("attributes");
            let amount = batch.column_by_name("amount").unwrap().as_primitive::<Decimal128Type>().clone();
            let occurred = batch.column_by_name("occurred_at").unwrap().as_primitive::<TimestampMicrosecondType>().clone();
            let offset = batch.column_by_name("offset").unwrap().as_primitive::<Int64Type>().clone();
            let ingested = batch.column_by_name("ingested_at").unwrap().as_primitive::<TimestampMicrosecondType>().clone();
            let partition = batch.column_by_name("partition").unwrap().as_primitive::<Int32Type>().clone();
            let items = batch.column_by_name("items").unwrap().as_list::<i32>().clone();
            for (i, e) in events.iter().enumerate() {
                assert_eq!(event_id.value(i), e.event_id, "row {i}");
                assert_eq!(member_id.value(i), e.member_id, "row {i}");
                assert_eq!(store_id.is_valid(i).then(|| store_id.value(i)), e.store_id.as_deref(), "row {i}");
                assert_eq!(order_id.value(i), e.order_id.as_deref().unwrap(), "row {i}");
                assert_eq!(attributes.is_valid(i).then(|| attributes.value(i)), e.attributes, "row {i}");
                assert_eq!(amount.is_valid(i).then(|| amount.value(i) as i64), e.amount.map(|m| m.0), "row {i}");
                assert_eq!(occurred.value(i), e.occurred_at, "row {i}");
                assert_eq!((offset.value(i), partition.value(i)), (i as i64 * 3, (i % 3) as i32), "row {i}");
                assert_eq!(ingested.value(i), 1_000 + (i / 1000) as i64, "row {i}");
                assert_eq!(items.is_valid(i), !e.items.is_empty(), "row {i}");
                if items.is_valid(i) {
                    let list = items.value(i);
                    let list = list.as_struct();
                    assert_eq!(list.len(), e.items.len(), "row {i}");
                    for (k, item) in e.items.iter().enumerate() {
                        assert_eq!(list.column(0).as_string::<i32>().value(k), item.sku, "row {i} item {k}");
                        let brand = list.column(2).as_string::<i32>();
                        assert_eq!(brand.is_valid(k).then(|| brand.value(k)), item.brand.as_deref(), "row {i} item {k}");
                        assert!(list.column(1).is_null(k));
                        assert_eq!(list.column(3).as_primitive::<Int64Type>().value(k), item.qty);
                        let price = list.column(4).as_primitive::<Decimal128Type>();
                        assert_eq!(price.value(k) as i64, item.unit_price.unwrap().0, "row {i} item {k}");
                    }
                }
            }
        }
        buffer.clear(days);
    }
}

//! Accepted events, buffered per business day until the next checkpoint builds them into
//! Arrow batches.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow::array::{
    ArrayBuilder, ArrayRef, Decimal128Builder, Int32Builder, Int64Builder, ListArray, RecordBatch, StringBuilder,
    StructArray, TimestampMicrosecondBuilder,
};
use arrow::buffer::OffsetBuffer;
use arrow::datatypes::{DataType, Field};
use arrow::error::ArrowError;

use super::schema;
use crate::event::Event;
use crate::state::Day;

/// Where a message came from: a topic or a file, its partition (0 for files), its offset
/// (the line number for files).
#[derive(Debug, Clone, Copy)]
pub struct Origin<'a> {
    pub source: &'a str,
    pub partition: i32,
    pub offset: i64,
}

/// Accepted events of the current epoch: each one encoded as a compact record in an arena
/// that is reused from epoch to epoch (no per-day column buffers growing on the hot path,
/// no fresh memory once the first epoch has run), indexed by `dt`. The checkpoint turns
/// each day's records into Arrow batches of [`BATCH_ROWS`].
#[derive(Default)]
pub struct EventsBuffer {
    arena: Arena,
    days: BTreeMap<Day, Vec<u64>>,
    sources: Vec<String>,
    scratch: Vec<u8>,
}

impl EventsBuffer {
    pub fn push(&mut self, day: Day, e: &Event<'_>, origin: Origin<'_>, default_currency: &str, now: i64) {
        // Sources (topics, files) of this epoch; consecutive events mostly share one.
        let source = match self.sources.iter().rposition(|s| s == origin.source) {
            Some(i) => i,
            None => {
                self.sources.push(origin.source.to_string());
                self.sources.len() - 1
            }
        };
        encode(&mut self.scratch, e, origin, source, default_currency, now);
        let address = self.arena.push(&self.scratch);
        self.days.entry(day).or_default().push(address);
    }

    /// Takes the epoch's events: per day, oldest first, the addresses of its records. Build
    /// each day with [`EventsBuffer::batches`], then [`EventsBuffer::clear`] the buffer.
    pub fn take_days(&mut self) -> Vec<(Day, Vec<u64>)> {
        std::mem::take(&mut self.days).into_iter().collect()
    }

    /// The Arrow batches of some records, [`BATCH_ROWS`] at a time: each is encoded to
    /// Parquet while still in cache, and its buffers are recycled by the next one.
    pub fn batches<'a>(&'a self, addresses: &'a [u64]) -> impl Iterator<Item = Result<RecordBatch, ArrowError>> + 'a {
        addresses.chunks(BATCH_ROWS).map(|chunk| build_batch(&self.arena, &self.sources, chunk))
    }

    /// Forgets the records taken (keeping the arena's memory for the next epoch).
    pub fn clear(&mut self) {
        self.days.clear();
        self.arena.clear();
        self.sources.clear();
    }
}

/// Rows per Arrow batch built from the records (a few MB: fits the last-level cache).
pub const BATCH_ROWS: usize = 8192;

/// Byte chunks that records are appended to; cleared, not freed, between epochs.
#[derive(Default)]
struct Arena {
    chunks: Vec<Vec<u8>>,
    /// The chunk being filled.
    current: usize,
}

const CHUNK_BYTES: usize = 8 << 20;

impl Arena {
    /// Appends `record` (never split across chunks); its address is (chunk << 32 | offset).
    fn push(&mut self, record: &[u8]) -> u64 {
        loop {
            if self.current == self.chunks.len() {
                self.chunks.push(Vec::with_capacity(CHUNK_BYTES.max(record.len())));
            }
            let chunk = &mut self.chunks[self.current];
            if chunk.capacity() - chunk.len() >= record.len() {
                let address = (self.current as u64) << 32 | chunk.len() as u64;
                chunk.extend_from_slice(record);
                return address;
            }
            self.current += 1;
        }
    }

    fn get(&self, address: u64) -> &[u8] {
        &self.chunks[(address >> 32) as usize][(address & 0xffff_ffff) as usize..]
    }

    fn clear(&mut self) {
        self.chunks.iter_mut().for_each(Vec::clear);
        self.current = 0;
    }
}

const HAS_AMOUNT: u16 = 1;
const HAS_POINTS: u16 = 1 << 1;
const HAS_STORE: u16 = 1 << 2;
const HAS_CHANNEL: u16 = 1 << 3;
const HAS_ORDER: u16 = 1 << 4;
const HAS_ATTRIBUTES: u16 = 1 << 5;
const HAS_ITEMS: u16 = 1 << 6;
const HAS_CATEGORY: u16 = 1 << 7;
const HAS_BRAND: u16 = 1 << 8;
const HAS_UNIT_PRICE: u16 = 1 << 9;

/// One event as bytes into `b` (cleared first): the fixed-width fields, then length-prefixed
/// strings, then the items.
fn encode(b: &mut Vec<u8>, e: &Event<'_>, origin: Origin<'_>, source: usize, default_currency: &str, now: i64) {
    // A record: flags u16, kind u8, then source u32, partition i32, five i64s, strings, items.
    b.clear();
    let flag = |present: bool, bit: u16| if present { bit } else { 0 };
    let flags = flag(e.amount.is_some(), HAS_AMOUNT)
        | flag(e.points.is_some(), HAS_POINTS)
        | flag(e.store_id.is_some(), HAS_STORE)
        | flag(e.channel.is_some(), HAS_CHANNEL)
        | flag(e.order_id.is_some(), HAS_ORDER)
        | flag(e.attributes.is_some(), HAS_ATTRIBUTES)
        | flag(!e.items.is_empty(), HAS_ITEMS);
    b.extend_from_slice(&flags.to_le_bytes());
    b.push(e.kind as u8);
    b.extend_from_slice(&(source as u32).to_le_bytes());
    b.extend_from_slice(&origin.partition.to_le_bytes());
    for v in [
        e.occurred_at,
        origin.offset,
        now,
        e.amount.map_or(0, |m| m.0),
        e.points.unwrap_or(0),
    ] {
        b.extend_from_slice(&v.to_le_bytes());
    }
    let put = |b: &mut Vec<u8>, s: &str| {
        b.extend_from_slice(&(s.len() as u32).to_le_bytes());
        b.extend_from_slice(s.as_bytes());
    };
    put(b, &e.event_id);
    put(b, &e.member_id);
    put(b, e.currency.as_deref().unwrap_or(default_currency));
    for s in [
        e.store_id.as_deref(),
        e.channel.as_deref(),
        e.order_id.as_deref(),
        e.attributes,
    ]
    .into_iter()
    .flatten()
    {
        put(b, s);
    }
    b.extend_from_slice(&(e.items.len() as u32).to_le_bytes());
    for item in &e.items {
        let flags = flag(item.category.is_some(), HAS_CATEGORY)
            | flag(item.brand.is_some(), HAS_BRAND)
            | flag(item.unit_price.is_some(), HAS_UNIT_PRICE);
        b.extend_from_slice(&flags.to_le_bytes());
        b.extend_from_slice(&item.qty.to_le_bytes());
        b.extend_from_slice(&item.unit_price.map_or(0, |m| m.0).to_le_bytes());
        put(b, &item.sku);
        for s in [item.category.as_deref(), item.brand.as_deref()].into_iter().flatten() {
            put(b, s);
        }
    }
}

/// Reads a record's fields in the order [`Record::encode`] wrote them.
struct Reader<'a> {
    b: &'a [u8],
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> &'a [u8] {
        let (head, tail) = self.b.split_at(n);
        self.b = tail;
        head
    }
    fn u16(&mut self) -> u16 {
        u16::from_le_bytes(self.take(2).try_into().expect("2 bytes"))
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
    fn str(&mut self) -> &'a str {
        let n = self.u32() as usize;
        let bytes = self.take(n);
        debug_assert!(std::str::from_utf8(bytes).is_ok());
        // SAFETY: `encode` writes every string field as a length and the bytes of a `&str`,
        // and this reader takes the fields back in the same order (a unit test round-trips
        // every field), so `bytes` is exactly one whole `&str`. Validating again cost 3% of
        // the pipeline.
        unsafe { std::str::from_utf8_unchecked(bytes) }
    }
    fn opt_str(&mut self, flags: u16, bit: u16) -> Option<&'a str> {
        (flags & bit != 0).then(|| self.str())
    }
}

fn build_batch(arena: &Arena, sources: &[String], addresses: &[u64]) -> Result<RecordBatch, ArrowError> {
    let mut c = DayColumns::with_capacity(addresses.len());
    for &address in addresses {
        let mut r = Reader { b: arena.get(address) };
        let flags = r.u16();
        let kind = crate::event::EventType::ALL[r.u8() as usize];
        let source = &sources[r.u32() as usize];
        let partition = r.u32() as i32;
        let (occurred_at, offset, ingested_at, amount, points) = (r.i64(), r.i64(), r.i64(), r.i64(), r.i64());
        c.event_id.append_value(r.str());
        c.kind.append_value(kind.as_str());
        c.member_id.append_value(r.str());
        c.currency.append_value(r.str());
        c.occurred_at.append_value(occurred_at);
        c.store_id.append_option(r.opt_str(flags, HAS_STORE));
        c.channel.append_option(r.opt_str(flags, HAS_CHANNEL));
        c.order_id.append_option(r.opt_str(flags, HAS_ORDER));
        c.attributes.append_option(r.opt_str(flags, HAS_ATTRIBUTES));
        c.amount
            .append_option((flags & HAS_AMOUNT != 0).then_some(amount as i128));
        c.points.append_option((flags & HAS_POINTS != 0).then_some(points));
        for _ in 0..r.u32() {
            let item_flags = r.u16();
            let (qty, unit_price) = (r.i64(), r.i64());
            c.sku.append_value(r.str());
            c.category.append_option(r.opt_str(item_flags, HAS_CATEGORY));
            c.brand.append_option(r.opt_str(item_flags, HAS_BRAND));
            c.qty.append_value(qty);
            c.unit_price
                .append_option((item_flags & HAS_UNIT_PRICE != 0).then_some(unit_price as i128));
        }
        c.item_offsets.push(c.sku.len() as i32);
        c.item_valid.push(flags & HAS_ITEMS != 0);
        c.source.append_value(source);
        c.partition.append_value(partition);
        c.offset.append_value(offset);
        c.ingested_at.append_value(ingested_at);
    }
    c.finish()
}

struct DayColumns {
    event_id: StringBuilder,
    kind: StringBuilder,
    member_id: StringBuilder,
    occurred_at: TimestampMicrosecondBuilder,
    store_id: StringBuilder,
    channel: StringBuilder,
    order_id: StringBuilder,
    amount: Decimal128Builder,
    currency: StringBuilder,
    points: Int64Builder,
    item_offsets: Vec<i32>,
    item_valid: Vec<bool>,
    sku: StringBuilder,
    category: StringBuilder,
    brand: StringBuilder,
    qty: Int64Builder,
    unit_price: Decimal128Builder,
    attributes: StringBuilder,
    source: StringBuilder,
    partition: Int32Builder,
    offset: Int64Builder,
    ingested_at: TimestampMicrosecondBuilder,
}

impl DayColumns {
    fn with_capacity(rows: usize) -> Self {
        let strings = |bytes_per_row: usize| StringBuilder::with_capacity(rows, rows * bytes_per_row);
        let items = rows * 2;
        let mut item_offsets = Vec::with_capacity(rows + 1);
        item_offsets.push(0);
        Self {
            event_id: strings(16),
            kind: strings(8),
            member_id: strings(10),
            occurred_at: TimestampMicrosecondBuilder::with_capacity(rows),
            store_id: strings(4),
            channel: strings(4),
            order_id: strings(16),
            amount: Decimal128Builder::with_capacity(rows),
            currency: strings(3),
            points: Int64Builder::with_capacity(rows),
            item_offsets,
            item_valid: Vec::with_capacity(rows),
            sku: StringBuilder::with_capacity(items, items * 8),
            category: StringBuilder::with_capacity(items, items * 8),
            brand: StringBuilder::with_capacity(items, items * 8),
            qty: Int64Builder::with_capacity(items),
            unit_price: Decimal128Builder::with_capacity(items),
            attributes: StringBuilder::with_capacity(rows, 0),
            source: strings(12),
            partition: Int32Builder::with_capacity(rows),
            offset: Int64Builder::with_capacity(rows),
            ingested_at: TimestampMicrosecondBuilder::with_capacity(rows),
        }
    }

    fn finish(mut self) -> Result<RecordBatch, ArrowError> {
        let money = |b: &mut Decimal128Builder| -> Result<ArrayRef, ArrowError> {
            Ok(Arc::new(b.finish().with_precision_and_scale(18, 2)?))
        };
        let utc = |b: &mut TimestampMicrosecondBuilder| -> ArrayRef { Arc::new(b.finish().with_timezone("UTC")) };
        let item_struct = StructArray::try_new(
            schema::item_fields(),
            vec![
                Arc::new(self.sku.finish()),
                Arc::new(self.category.finish()),
                Arc::new(self.brand.finish()),
                Arc::new(self.qty.finish()),
                money(&mut self.unit_price)?,
            ],
            None,
        )?;
        let items = ListArray::try_new(
            Arc::new(Field::new("item", DataType::Struct(schema::item_fields()), true)),
            OffsetBuffer::new(self.item_offsets.into()),
            Arc::new(item_struct),
            Some(self.item_valid.into()),
        )?;
        RecordBatch::try_new(
            schema::events(),
            vec![
                Arc::new(self.event_id.finish()),
                Arc::new(self.kind.finish()),
                Arc::new(self.member_id.finish()),
                utc(&mut self.occurred_at),
                Arc::new(self.store_id.finish()),
                Arc::new(self.channel.finish()),
                Arc::new(self.order_id.finish()),
                money(&mut self.amount)?,
                Arc::new(self.currency.finish()),
                Arc::new(self.points.finish()),
                Arc::new(items),
                Arc::new(self.attributes.finish()),
                Arc::new(self.source.finish()),
                Arc::new(self.partition.finish()),
                Arc::new(self.offset.finish()),
                utc(&mut self.ingested_at),
            ],
        )
    }
}

#[cfg(test)]
mod tests {
    use arrow::array::{Array, AsArray};
    use arrow::datatypes::{Decimal128Type, Int64Type};

    use super::*;
    use crate::event::{decode, DecodeLimits};

    /// Every day's records as one batch.
    fn drain(buffer: &mut EventsBuffer) -> Vec<(Day, RecordBatch)> {
        let days = buffer.take_days();
        drain_days(buffer, days)
    }

    fn drain_days(buffer: &mut EventsBuffer, days: Vec<(Day, Vec<u64>)>) -> Vec<(Day, RecordBatch)> {
        let built = days
            .iter()
            .map(|(day, addresses)| {
                let batches: Vec<_> = buffer.batches(addresses).collect::<Result<_, _>>().unwrap();
                (*day, arrow::compute::concat_batches(&schema::events(), &batches).unwrap())
            })
            .collect();
        buffer.clear();
        built
    }

    #[test]
    fn every_field_survives_the_arena() {
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
                buffer.push(100 + (n as Day / 2), e, origin, "CNY", 555 + round);
            }
            let days = drain(&mut buffer);
            assert_eq!(days.iter().map(|(d, b)| (*d, b.num_rows())).collect::<Vec<_>>(), [(100, 2), (101, 1)]);
            let (_, first) = &days[0];
            let text = |name: &str, row: usize| {
                let column = first.column_by_name(name).unwrap().as_string::<i32>();
                column.is_valid(row).then(|| column.value(row).to_string())
            };
            assert_eq!(text("event_id", 0).as_deref(), Some("e1"));
            assert_eq!(text("type", 1).as_deref(), Some("signup"));
            assert_eq!(text("currency", 0).as_deref(), Some("EUR"));
            assert_eq!(text("currency", 1).as_deref(), Some("CNY"));
            assert_eq!(text("store_id", 1), None);
            assert_eq!(text("attributes", 1).as_deref(), Some(r#"{"city":"上海"}"#));
            assert_eq!(text("source", 1).as_deref(), Some("file.jsonl"));
            let amount = first.column_by_name("amount").unwrap().as_primitive::<Decimal128Type>();
            assert_eq!((amount.value(0), amount.is_null(1)), (1250, true));
            let ingested = first.column_by_name("ingested_at").unwrap().as_primitive::<arrow::datatypes::TimestampMicrosecondType>();
            assert_eq!(ingested.value(0), 555 + round);
            let items = first.column_by_name("items").unwrap().as_list::<i32>();
            assert_eq!((items.value_length(0), items.is_null(1)), (2, true));
            let item = items.value(0);
            let item = item.as_struct();
            assert_eq!(item.column(0).as_string::<i32>().value(1), "B");
            assert!(item.column(1).as_string::<i32>().is_null(1));
            assert_eq!(item.column(2).as_string::<i32>().value(1), "x");
            assert_eq!(item.column(3).as_primitive::<Int64Type>().value(0), 2);
            assert_eq!(item.column(4).as_primitive::<Decimal128Type>().value(0), 625);
            assert!(item.column(4).is_null(1));
            let points = days[1].1.column_by_name("points").unwrap().as_primitive::<Int64Type>();
            assert_eq!(points.value(0), 7);
        }
        // A day larger than one batch: the batches together hold every row, in order.
        for i in 0..BATCH_ROWS * 2 + 5 {
            buffer.push(100, &events[2], Origin { source: "topic", partition: 0, offset: i as i64 }, "CNY", 0);
        }
        let days = buffer.take_days();
        let sizes: Vec<usize> = buffer.batches(&days[0].1).map(|b| b.unwrap().num_rows()).collect();
        assert_eq!(sizes, [BATCH_ROWS, BATCH_ROWS, 5]);
        let (_, batch) = drain_days(&mut buffer, days).remove(0);
        let offsets = batch.column_by_name("offset").unwrap().as_primitive::<Int64Type>();
        assert!(offsets.values().iter().enumerate().all(|(i, &o)| o == i as i64));
        // Many sources in one epoch (a backfill of many files).
        let names: Vec<String> = (0..300).map(|i| format!("file-{i}.jsonl")).collect();
        for (i, name) in names.iter().enumerate() {
            buffer.push(100, &events[2], Origin { source: name, partition: 0, offset: i as i64 }, "CNY", 0);
        }
        let (_, batch) = drain(&mut buffer).remove(0);
        let sources = batch.column_by_name("source").unwrap().as_string::<i32>();
        assert!(names.iter().enumerate().all(|(i, name)| sources.value(i) == name));
    }
}

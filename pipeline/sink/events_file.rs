//! An events table file written from the buffer's records column by column: each record's
//! fields go straight into per-column pages (dictionary indices, levels, delta-encoded
//! values) without Arrow arrays in between, and the parquet crate frames the pages, the
//! footer and the Arrow schema. The same columns, encodings, statistics and page index as
//! the parquet crate's Arrow writer produces with the table's settings (`schema`; compaction
//! still uses that writer). Its Arrow builders, level computation and per-value dictionary
//! interning were 40% of the pipeline's instructions; this writer needs about 60% of what
//! building and writing took (callgrind, `scripts/bench-instructions.sh`).

use std::io::Write;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use parquet::arrow::{add_encoded_arrow_schema_to_metadata, ArrowSchemaConverter};
use parquet::basic::{Encoding, Type as Physical};
use parquet::column::page::{CompressedPage, Page, PageWriter};
use parquet::column::writer::ColumnCloseResult;
use parquet::errors::{ParquetError, Result};
use parquet::file::metadata::{ColumnChunkMetaData, ColumnIndexBuilder};
use parquet::file::page_index::offset_index::{OffsetIndexMetaData, PageLocation};
use parquet::file::properties::WriterProperties;
use parquet::file::statistics::Statistics;
use parquet::file::writer::{SerializedFileWriter, SerializedPageWriter, TrackedWrite};
use parquet::schema::types::{ColumnDescPtr, SchemaDescriptor};

use super::dictionary::Dictionary;
use super::encoding::{bit_width, delta_binary_packed, plain_strings, rle_hybrid, DeltaByteArray};
use super::events::{Leaves, Records};
use super::schema;
use super::tables::codec;
use crate::config::Compression;

/// Rows per row group, as the other tables' files have.
pub const ROW_GROUP_ROWS: usize = 256 * 1024;
/// A page ends at this many rows or bytes of values (the Arrow writer's defaults).
const PAGE_ROWS: usize = 20_000;
const PAGE_BYTES: usize = 1 << 20;
/// Past this many bytes of values a column's dictionary stops growing and its later pages
/// are PLAIN, as the Arrow writer does.
const DICTIONARY_BYTES: usize = 1 << 20;

/// Writes `records` (one business day's, in order) as a Parquet file of the events table
/// into `out`; returns `out`.
pub fn write<W: Write + Send>(out: W, records: &Records<'_>, addresses: &[u64], compression: Compression) -> Result<W> {
    let format = Format::of(compression)?;
    let mut file = SerializedFileWriter::new(out, format.descriptor.root_schema_ptr(), format.properties.clone())?;
    // A backfill checkpoint writes a thousand small files: buffers sized for this one.
    let rows = addresses.len().min(ROW_GROUP_ROWS);
    let descriptor = &format.descriptor;
    let mut columns: Vec<Column<'_>> = BUFFERS.with_borrow_mut(|pool| {
        pool.resize_with(descriptor.num_columns(), Buffers::default);
        pool.iter_mut().enumerate().map(|(i, b)| Column::new(i, descriptor.column(i), rows, std::mem::take(b))).collect()
    });
    COMPRESSORS.with_borrow_mut(|compressors| -> Result<()> {
        let compressor = match compressors.iter_mut().position(|c| c.compression() == compression) {
            Some(i) => &mut compressors[i],
            None => {
                compressors.push(Compressor::new(compression)?);
                compressors.last_mut().expect("just pushed")
            }
        };
        for group in addresses.chunks(ROW_GROUP_ROWS) {
            // Pages end between rows. No column can reach a page's rows or bytes before this
            // many rows or bytes have been added to all of them together: the columns are
            // only looked at then, instead of all twenty after every row.
            let mut slack = Slack::of(&columns);
            let mut leaves = ColumnsOf { columns: &mut columns, bytes: 0 };
            for &address in group {
                records.get(address).visit(&mut leaves);
                slack.rows -= 1;
                if slack.rows == 0 || leaves.bytes >= slack.bytes {
                    for column in leaves.columns.iter_mut() {
                        if column.page_rows >= PAGE_ROWS || column.page_bytes >= PAGE_BYTES {
                            column.flush_page(compressor)?;
                        }
                    }
                    slack = Slack::of(leaves.columns);
                    leaves.bytes = 0;
                }
            }
            let mut row_group = file.next_row_group()?;
            for column in &mut columns {
                let (chunk, close) = column.finish(compressor, group.len())?;
                row_group.append_column(&chunk, close)?;
            }
            row_group.close()?;
        }
        Ok(())
    })?;
    BUFFERS.with_borrow_mut(|pool| pool.iter_mut().zip(columns).for_each(|(b, c)| *b = c.into_buffers()));
    file.into_inner()
}

/// The file's leaf columns as the record visitor's destination.
struct ColumnsOf<'c, 'a> {
    columns: &'c mut [Column<'a>],
    /// Bytes of values added to all columns together since the pages were last looked at.
    bytes: usize,
}

impl<'a> Leaves<'a> for ColumnsOf<'_, 'a> {
    #[inline(always)]
    fn leaf(&mut self, column: usize, rep: u32, def: u32, value: Value<'a>) {
        self.bytes += self.columns[column].push(SHAPES[column], rep, def, value);
    }
}

/// Rows and bytes of values that can still be added to the columns before any of their
/// pages can be full.
struct Slack {
    rows: usize,
    bytes: usize,
}

impl Slack {
    fn of(columns: &[Column<'_>]) -> Self {
        let fullest = |f: fn(&Column<'_>) -> usize| columns.iter().map(f).max().unwrap_or(0);
        Self {
            rows: PAGE_ROWS.saturating_sub(fullest(|c| c.page_rows)).max(1),
            bytes: PAGE_BYTES.saturating_sub(fullest(|c| c.page_bytes)),
        }
    }
}

thread_local! {
    /// Compression contexts kept from file to file (zstd's is a few hundred KB to set up).
    static COMPRESSORS: std::cell::RefCell<Vec<Compressor>> = const { std::cell::RefCell::new(Vec::new()) };
    /// Each column's buffers, kept from file to file: a checkpoint's files allocating
    /// theirs afresh was new (page-zeroed) memory at every epoch.
    static BUFFERS: std::cell::RefCell<Vec<Buffers>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// `v` emptied, with room for `n` items.
fn reserved<T>(mut v: Vec<T>, n: usize) -> Vec<T> {
    v.clear();
    v.reserve(n);
    v
}

/// A column's buffers that outlive its file (emptied; their capacity is the point).
#[derive(Default)]
struct Buffers {
    rep: Vec<u32>,
    def: Vec<u32>,
    ints: Vec<i64>,
    indices: Vec<u32>,
    pages: Vec<u8>,
    scratch: Vec<u8>,
    delta: (Vec<i64>, Vec<i64>, Vec<u8>),
}

/// The file schema and writer properties (with the encoded Arrow schema), made once per
/// compression instead of for every file.
struct Format {
    descriptor: SchemaDescriptor,
    properties: Arc<WriterProperties>,
}

impl Format {
    fn of(compression: Compression) -> Result<&'static Format> {
        static ZSTD: OnceLock<Format> = OnceLock::new();
        static SNAPPY: OnceLock<Format> = OnceLock::new();
        let cell = match compression {
            Compression::Zstd => &ZSTD,
            Compression::Snappy => &SNAPPY,
        };
        if let Some(format) = cell.get() {
            return Ok(format);
        }
        let arrow_schema = schema::events();
        let descriptor = ArrowSchemaConverter::new().convert(&arrow_schema)?;
        let mut properties = WriterProperties::builder().set_compression(codec(compression)).build();
        add_encoded_arrow_schema_to_metadata(&arrow_schema, &mut properties);
        Ok(cell.get_or_init(|| Format { descriptor, properties: Arc::new(properties) }))
    }
}

/// A value of a leaf column: text, or an integer (INT64 or INT32 in the file).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    Null,
    Str(&'a str),
    /// A text that is one of at most [`KEYS`](super::dictionary::KEYS) the caller numbers
    /// (the event type by its kind): a dictionary finds it by its number instead of
    /// hashing it.
    Keyed(usize, &'a str),
    Int(i64),
}

enum Compressor {
    Zstd(zstd::bulk::Compressor<'static>),
    Snappy(snap::raw::Encoder),
}

impl Compressor {
    fn new(compression: Compression) -> Result<Self> {
        Ok(match compression {
            Compression::Zstd => Self::Zstd(zstd::bulk::Compressor::new(1).map_err(|e| ParquetError::External(Box::new(e)))?),
            Compression::Snappy => Self::Snappy(snap::raw::Encoder::new()),
        })
    }

    fn compression(&self) -> Compression {
        match self {
            Self::Zstd(_) => Compression::Zstd,
            Self::Snappy(_) => Compression::Snappy,
        }
    }

    fn compress(&mut self, data: &[u8]) -> Result<Vec<u8>> {
        match self {
            Self::Zstd(z) => z.compress(data).map_err(|e| ParquetError::External(Box::new(e))),
            Self::Snappy(s) => s.compress_vec(data).map_err(|e| ParquetError::External(Box::new(e))),
        }
    }
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Layout {
    Dictionary,
    Delta,
    Plain,
}

/// What adding an entry to a leaf column depends on: whether it keeps repetition and
/// definition levels, its layout, whether it keeps statistics.
#[derive(Clone, Copy, PartialEq, Debug)]
struct Shape {
    rep: bool,
    def: bool,
    layout: Layout,
    statistics: bool,
}

/// The events table's leaf columns' shapes, in schema order, as constants: the record
/// visitor names each column by a literal index, so each entry is added with its column's
/// checks folded away instead of loaded and tested (51 fewer instructions per message at
/// 315 bytes, callgrind). [`Column::new`] asserts that they are what the schema and the
/// table's settings say.
const SHAPES: [Shape; 20] = {
    const fn shape(rep: bool, def: bool, layout: Layout) -> Shape {
        Shape { rep, def, layout, statistics: false }
    }
    use Layout::{Delta, Dictionary, Plain};
    const ITEM: Shape = shape(true, true, Dictionary);
    [
        shape(false, false, Delta),      // event_id
        shape(false, false, Dictionary), // type
        shape(false, false, Delta),      // member_id
        Shape { statistics: true, ..shape(false, false, Delta) }, // occurred_at
        shape(false, true, Dictionary),  // store_id
        shape(false, true, Dictionary),  // channel
        shape(false, true, Delta),       // order_id
        shape(false, true, Delta),       // amount
        shape(false, false, Dictionary), // currency
        shape(false, true, Dictionary),  // points
        ITEM,                            // items: sku
        ITEM,                            // category
        ITEM,                            // brand
        ITEM,                            // qty
        ITEM,                            // unit_price
        shape(false, true, Plain),       // attributes
        shape(false, false, Dictionary), // source
        shape(false, false, Dictionary), // partition
        shape(false, false, Delta),      // offset
        shape(false, false, Delta),      // ingested_at
    ]
};

/// One leaf column of a row group: the page being filled and the pages written.
struct Column<'a> {
    descr: ColumnDescPtr,
    max_rep: u32,
    max_def: u32,
    /// INT32 in the file (values are kept as i64).
    int32: bool,
    /// `SHAPES`' entry for the column.
    shape: Shape,
    // The page being filled.
    rep: Vec<u32>,
    def: Vec<u32>,
    strs: Vec<&'a str>,
    ints: Vec<i64>,
    indices: Vec<u32>,
    page_rows: usize,
    page_bytes: usize,
    // The chunk.
    dictionary: Dictionary<'a>,
    dictionary_full: bool,
    pages: TrackedWrite<Vec<u8>>,
    locations: Vec<PageLocation>,
    encodings: Vec<Encoding>,
    rows: usize,
    num_values: usize,
    uncompressed: usize,
    /// Minimum and maximum of the page being filled, when the column has statistics.
    page_min_max: Option<(i64, i64)>,
    min_max: Option<(i64, i64)>,
    /// Per page, with `statistics`.
    column_index: Option<ColumnIndexBuilder>,
    /// Whether the chunk's pages are compressed: decided by its first page ([`Packing`]).
    packing: Packing,
    scratch: Vec<u8>,
    /// The page's values of a DELTA_BYTE_ARRAY column, encoded as they come.
    delta: DeltaByteArray<'a>,
}

impl<'a> Column<'a> {
    /// A column of a file of `rows` rows (at most a row group's).
    /// Leaf column `index` of the table (its shape `SHAPES[index]`).
    fn new(index: usize, descr: ColumnDescPtr, rows: usize, buffers: Buffers) -> Self {
        let page_rows = rows.min(PAGE_ROWS);
        let path = descr.path().string();
        let table = super::tables::EVENTS;
        let layout = if schema::delta_encoded_columns(table).iter().any(|(c, _)| *c == path) {
            Layout::Delta
        } else if schema::dictionary_free_columns(table).contains(&path.as_str()) {
            Layout::Plain
        } else {
            Layout::Dictionary
        };
        let statistics = schema::statistics_columns(table).is_some_and(|c| c.contains(&path.as_str()));
        // Min/max are kept for integers only (the events table's statistics are on a time).
        assert!(!statistics || descr.physical_type() == Physical::INT64, "statistics on {path}: INT64 columns only");
        let shape = Shape { rep: descr.max_rep_level() > 0, def: descr.max_def_level() > 0, layout, statistics };
        assert_eq!(SHAPES.get(index), Some(&shape), "the shape of leaf column {index} ({path})");
        Self {
            max_rep: descr.max_rep_level() as u32,
            max_def: descr.max_def_level() as u32,
            int32: descr.physical_type() == Physical::INT32,
            descr,
            shape,
            // Sized for a page (items columns may grow past it): growing them from empty for
            // every file was 3% of the writer's instructions.
            rep: reserved(buffers.rep, page_rows),
            def: reserved(buffers.def, page_rows),
            strs: Vec::with_capacity(page_rows),
            ints: reserved(buffers.ints, page_rows),
            indices: reserved(buffers.indices, page_rows),
            page_rows: 0,
            page_bytes: 0,
            dictionary: Dictionary::default(),
            dictionary_full: false,
            pages: TrackedWrite::new(reserved(buffers.pages, 0)),
            locations: Vec::new(),
            encodings: vec![Encoding::RLE],
            rows: 0,
            num_values: 0,
            uncompressed: 0,
            page_min_max: None,
            min_max: None,
            column_index: None,
            packing: Packing::Undecided,
            scratch: reserved(buffers.scratch, 0),
            delta: DeltaByteArray::reusing(buffers.delta),
        }
    }

    /// The buffers, for the next file's column.
    fn into_buffers(self) -> Buffers {
        Buffers {
            rep: self.rep,
            def: self.def,
            ints: self.ints,
            indices: self.indices,
            pages: self.pages.into_inner().unwrap_or_default(),
            scratch: self.scratch,
            delta: self.delta.into_buffers(),
        }
    }

    /// Adds one entry: its repetition and definition levels and its value (`Null` when the
    /// definition level says it is absent). A repetition level of 0 starts a row; the
    /// caller flushes full pages between rows. Returns the bytes the value adds to the page.
    /// `shape` is the column's (a constant where the caller names the column by one).
    #[inline(always)]
    fn push(&mut self, shape: Shape, rep: u32, def: u32, value: Value<'a>) -> usize {
        self.page_rows += usize::from(rep == 0);
        if shape.rep {
            self.rep.push(rep);
        }
        if shape.def {
            self.def.push(def);
        }
        match value {
            Value::Null => 0,
            Value::Str(s) | Value::Keyed(_, s) => {
                if shape.layout == Layout::Dictionary && !self.dictionary_full {
                    self.indices.push(match value {
                        Value::Keyed(key, _) => self.dictionary.keyed_index(key, s),
                        _ => self.dictionary.str_index(s),
                    });
                } else if shape.layout == Layout::Delta {
                    self.delta.push(s);
                } else {
                    self.strs.push(s);
                }
                self.page_bytes += s.len() + 4;
                s.len() + 4
            }
            Value::Int(v) => {
                if shape.statistics {
                    let (min, max) = self.page_min_max.get_or_insert((v, v));
                    (*min, *max) = ((*min).min(v), (*max).max(v));
                }
                if shape.layout == Layout::Dictionary && !self.dictionary_full {
                    self.indices.push(self.dictionary.int_index(v));
                } else {
                    self.ints.push(v);
                }
                self.page_bytes += 8;
                8
            }
        }
    }

    fn flush_page(&mut self, compressor: &mut Compressor) -> Result<()> {
        // Entries: levels, or for a required flat column, one value per row.
        let entries = if self.max_def > 0 { self.def.len() } else { self.page_rows };
        if self.page_rows == 0 {
            return Ok(());
        }
        let mut buf = std::mem::take(&mut self.scratch);
        buf.clear();
        for (levels, max) in [(&self.rep, self.max_rep), (&self.def, self.max_def)] {
            if max > 0 {
                let start = buf.len();
                buf.extend_from_slice(&[0; 4]);
                rle_hybrid(&mut buf, levels, bit_width(max as u64));
                let length = (buf.len() - start - 4) as u32;
                buf[start..start + 4].copy_from_slice(&length.to_le_bytes());
            }
        }
        let encoding = if self.shape.layout == Layout::Dictionary && !self.dictionary_full && self.dictionary.len() > 0 {
            let width = bit_width(self.dictionary.len().saturating_sub(1) as u64).max(1);
            buf.push(width);
            rle_hybrid(&mut buf, &self.indices, width);
            Encoding::RLE_DICTIONARY
        } else if self.shape.layout == Layout::Delta && self.descr.physical_type() == Physical::BYTE_ARRAY {
            self.delta.encode(&mut buf);
            Encoding::DELTA_BYTE_ARRAY
        } else if self.shape.layout == Layout::Delta {
            delta_binary_packed(&mut buf, &self.ints);
            Encoding::DELTA_BINARY_PACKED
        } else {
            plain_strings(&mut buf, self.strs.iter().copied());
            plain_ints(&mut buf, &self.ints, self.int32);
            Encoding::PLAIN
        };
        if !self.encodings.contains(&encoding) {
            self.encodings.push(encoding);
        }
        let page = Page::DataPage {
            buf: self.packing.pack(compressor, &buf)?,
            num_values: entries as u32,
            encoding,
            def_level_encoding: Encoding::RLE,
            rep_level_encoding: Encoding::RLE,
            statistics: None,
        };
        let spec = SerializedPageWriter::new(&mut self.pages).write_page(CompressedPage::new(page, buf.len()))?;
        self.locations.push(PageLocation {
            offset: spec.offset as i64,
            compressed_page_size: spec.bytes_written as i32,
            first_row_index: self.rows as i64,
        });
        self.uncompressed += spec.uncompressed_size;
        if self.shape.statistics {
            let index = self.column_index.get_or_insert_with(|| ColumnIndexBuilder::new(Physical::INT64));
            match self.page_min_max.take() {
                Some((min, max)) => {
                    index.append(false, min.to_le_bytes().to_vec(), max.to_le_bytes().to_vec(), 0);
                    let (chunk_min, chunk_max) = self.min_max.get_or_insert((min, max));
                    (*chunk_min, *chunk_max) = ((*chunk_min).min(min), (*chunk_max).max(max));
                }
                None => index.append(true, Vec::new(), Vec::new(), entries as i64),
            }
        }
        self.num_values += entries;
        self.rows += self.page_rows;
        self.page_rows = 0;
        self.page_bytes = 0;
        self.rep.clear();
        self.def.clear();
        self.strs.clear();
        self.ints.clear();
        self.indices.clear();
        self.scratch = buf;
        if self.dictionary.bytes > DICTIONARY_BYTES {
            self.dictionary_full = true;
        }
        Ok(())
    }

    /// The chunk's bytes (dictionary page first) and what the row group needs to splice it;
    /// the column is then empty, ready for the next row group.
    fn finish(&mut self, compressor: &mut Compressor, rows: usize) -> Result<(Bytes, ColumnCloseResult)> {
        self.flush_page(compressor)?;
        if self.rows != rows {
            return Err(ParquetError::General(format!("column {} has {} rows, not {rows}", self.descr.path(), self.rows)));
        }
        let mut chunk = TrackedWrite::new(Vec::new());
        let dictionary_offset = if self.dictionary.len() > 0 {
            let mut buf = Vec::new();
            plain_strings(&mut buf, self.dictionary.strs.iter().copied());
            plain_ints(&mut buf, &self.dictionary.ints, self.int32);
            let page = Page::DictionaryPage {
                buf: self.packing.pack(compressor, &buf)?,
                num_values: self.dictionary.len() as u32,
                encoding: Encoding::PLAIN,
                is_sorted: false,
            };
            let spec = SerializedPageWriter::new(&mut chunk).write_page(CompressedPage::new(page, buf.len()))?;
            self.uncompressed += spec.uncompressed_size;
            if !self.encodings.contains(&Encoding::PLAIN) {
                self.encodings.push(Encoding::PLAIN);
            }
            Some(0)
        } else {
            None
        };
        let data_offset = chunk.bytes_written() as i64;
        for location in &mut self.locations {
            location.offset += data_offset;
        }
        // The chunk in one allocation of its size; the pages' buffer is kept for the next.
        let mut pages = std::mem::replace(&mut self.pages, TrackedWrite::new(Vec::new())).into_inner()?;
        let bytes = chunk.bytes_written() + pages.len();
        let mut out = chunk.into_inner()?;
        out.reserve_exact(pages.len());
        out.extend_from_slice(&pages);
        pages.clear();
        self.pages = TrackedWrite::new(pages);
        let chunk = Bytes::from(out);
        let mut metadata = ColumnChunkMetaData::builder(self.descr.clone())
            .set_compression(match self.packing {
                Packing::Plain => parquet::basic::Compression::UNCOMPRESSED,
                _ => codec(compressor.compression()),
            })
            .set_encodings(self.encodings.clone())
            .set_total_compressed_size(bytes as i64)
            .set_total_uncompressed_size(self.uncompressed as i64)
            .set_num_values(self.num_values as i64)
            .set_data_page_offset(data_offset)
            .set_dictionary_page_offset(dictionary_offset);
        if let Some((min, max)) = self.min_max {
            metadata = metadata.set_statistics(Statistics::int64(Some(min), Some(max), None, Some(0), false));
        }
        let close = ColumnCloseResult {
            bytes_written: bytes as u64,
            rows_written: rows as u64,
            metadata: metadata.build()?,
            bloom_filter: None,
            column_index: self.column_index.take().map(ColumnIndexBuilder::build).transpose()?,
            offset_index: Some(OffsetIndexMetaData {
                page_locations: std::mem::take(&mut self.locations),
                unencoded_byte_array_data_bytes: None,
            }),
        };
        self.dictionary.clear();
        self.dictionary_full = false;
        self.encodings.truncate(1);
        (self.rows, self.num_values, self.uncompressed, self.min_max) = (0, 0, 0, None);
        self.packing = Packing::Undecided;
        Ok((chunk, close))
    }
}

/// Whether a column chunk's pages are compressed (the codec is the chunk's, not the page's).
/// Its first page decides: when compressing it saves less than 1%, the chunk is stored
/// uncompressed — the bit-packed deltas of `occurred_at` (zstd's output was as large as
/// its input) and the near-empty pages of columns most events leave out (larger
/// compressed, each page paying for a compression context's reset). With a twentieth as
/// the bar the table of the 315-byte benchmark was 3% larger.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Packing {
    Undecided,
    Compressed,
    Plain,
}

impl Packing {
    /// The bytes of a page whose contents are `page`, deciding for the chunk at its first.
    fn pack(&mut self, compressor: &mut Compressor, page: &[u8]) -> Result<Bytes> {
        if *self != Packing::Plain {
            let compressed = compressor.compress(page)?;
            if *self == Packing::Compressed || compressed.len() * 100 <= page.len() * 99 {
                *self = Packing::Compressed;
                return Ok(Bytes::from(compressed));
            }
            *self = Packing::Plain;
        }
        Ok(Bytes::copy_from_slice(page))
    }
}

fn plain_ints(out: &mut Vec<u8>, values: &[i64], int32: bool) {
    for &v in values {
        if int32 {
            out.extend_from_slice(&(v as i32).to_le_bytes());
        } else {
            out.extend_from_slice(&v.to_le_bytes());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A chunk's first page decides: bytes zstd cannot shrink stay as they are, for every
    /// page of the chunk; compressible ones are compressed and read back; the next chunk
    /// decides again.
    #[test]
    fn a_chunk_whose_first_page_does_not_compress_is_stored_plain() {
        let mut compressor = Compressor::new(Compression::Zstd).unwrap();
        let mut x = 7u64;
        let random: Vec<u8> = (0..20_000)
            .map(|_| {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                (x >> 56) as u8
            })
            .collect();
        let repetitive: Vec<u8> = (0..20_000u32).map(|i| (i % 7) as u8).collect();
        let mut packing = Packing::Undecided;
        assert_eq!(packing.pack(&mut compressor, &random).unwrap(), &random[..]);
        assert_eq!(packing, Packing::Plain);
        assert_eq!(packing.pack(&mut compressor, &repetitive).unwrap(), &repetitive[..]);
        let mut packing = Packing::Undecided;
        let packed = packing.pack(&mut compressor, &repetitive).unwrap();
        assert_eq!(packing, Packing::Compressed);
        assert!(packed.len() < repetitive.len() / 20);
        assert_eq!(zstd::bulk::decompress(&packed, repetitive.len()).unwrap(), repetitive);
        let packed = packing.pack(&mut compressor, &random).unwrap();
        assert_ne!(packed, &random[..]);
        assert_eq!(zstd::bulk::decompress(&packed, random.len()).unwrap(), random);
    }
}

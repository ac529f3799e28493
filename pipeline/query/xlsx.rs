//! Excel output for reports and audience exports, streamed (constant memory). A sheet holds
//! at most 1,048,576 rows: larger results continue on further sheets ("name (2)", ...).

use std::path::{Path, PathBuf};
#[cfg(test)]
use std::sync::Arc;

use arrow::array::{Array, AsArray, RecordBatch};
use arrow::datatypes::{DataType, Decimal128Type, Float32Type, Float64Type, Int16Type, Int32Type, Int64Type, Int8Type, SchemaRef, UInt32Type, UInt64Type};
use arrow::util::display::{ArrayFormatter, FormatOptions};
use rust_xlsxwriter::{Workbook, XlsxError};

/// Rows per sheet, the header included (Excel's limit).
pub const SHEET_ROWS: u32 = 1_048_576;

#[derive(Debug, thiserror::Error)]
#[error("xlsx {path}: {problem}")]
pub struct XlsxWriteError {
    pub path: PathBuf,
    pub problem: String,
}

pub struct XlsxWriter {
    workbook: Workbook,
    path: PathBuf,
    name: String,
    schema: SchemaRef,
    sheets: usize,
    row: u32,
    rows_per_sheet: u32,
}

impl XlsxWriter {
    pub fn create(path: &Path, name: &str, schema: SchemaRef) -> Result<Self, XlsxWriteError> {
        Self::with_sheet_rows(path, name, schema, SHEET_ROWS)
    }

    /// As `create`, with a smaller sheet (tests).
    pub fn with_sheet_rows(path: &Path, name: &str, schema: SchemaRef, rows_per_sheet: u32) -> Result<Self, XlsxWriteError> {
        let mut w = Self {
            workbook: Workbook::new(),
            path: path.to_path_buf(),
            name: name.chars().filter(|c| !"[]:*?/\\".contains(*c)).take(24).collect(),
            schema,
            sheets: 0,
            row: 0,
            rows_per_sheet,
        };
        w.new_sheet()?;
        Ok(w)
    }

    fn err(&self, e: impl std::fmt::Display) -> XlsxWriteError {
        XlsxWriteError { path: self.path.clone(), problem: e.to_string() }
    }

    fn new_sheet(&mut self) -> Result<(), XlsxWriteError> {
        self.sheets += 1;
        let title = if self.sheets == 1 { self.name.clone() } else { format!("{} ({})", self.name, self.sheets) };
        let sheet = self.workbook.add_worksheet_with_constant_memory().map_err(|e| XlsxWriteError { path: self.path.clone(), problem: e.to_string() })?;
        sheet.set_name(if title.is_empty() { "data".to_string() } else { title }).map_err(|e| XlsxWriteError { path: self.path.clone(), problem: e.to_string() })?;
        for (c, f) in self.schema.fields().iter().enumerate() {
            sheet.write_string(0, c as u16, f.name()).map_err(|e| XlsxWriteError { path: self.path.clone(), problem: e.to_string() })?;
        }
        self.row = 1;
        Ok(())
    }

    pub fn write(&mut self, batch: &RecordBatch) -> Result<(), XlsxWriteError> {
        let options = FormatOptions::default();
        let formatters: Vec<ArrayFormatter<'_>> =
            batch.columns().iter().map(|c| ArrayFormatter::try_new(c.as_ref(), &options)).collect::<Result<_, _>>().map_err(|e| self.err(e))?;
        for r in 0..batch.num_rows() {
            if self.row >= self.rows_per_sheet {
                self.new_sheet()?;
            }
            let row = self.row;
            let sheet = self.workbook.worksheet_from_index(self.sheets - 1).map_err(|e| XlsxWriteError { path: self.path.clone(), problem: e.to_string() })?;
            for (c, (array, fmt)) in batch.columns().iter().zip(&formatters).enumerate() {
                if array.is_null(r) {
                    continue;
                }
                let col = c as u16;
                let written: Result<_, XlsxError> = match number(array.as_ref(), r) {
                    Some(v) => sheet.write_number(row, col, v).map(|_| ()),
                    None => sheet.write_string(row, col, fmt.value(r).to_string()).map(|_| ()),
                };
                written.map_err(|e| XlsxWriteError { path: self.path.clone(), problem: e.to_string() })?;
            }
            self.row += 1;
        }
        Ok(())
    }

    /// Writes the file; returns the number of sheets.
    pub fn finish(mut self) -> Result<usize, XlsxWriteError> {
        let path = self.path.clone();
        self.workbook.save(&path).map_err(|e| self.err(e))?;
        Ok(self.sheets)
    }
}

/// Numeric cells as numbers (decimals scaled), everything else as text.
fn number(a: &dyn Array, r: usize) -> Option<f64> {
    Some(match a.data_type() {
        DataType::Int8 => a.as_primitive::<Int8Type>().value(r) as f64,
        DataType::Int16 => a.as_primitive::<Int16Type>().value(r) as f64,
        DataType::Int32 => a.as_primitive::<Int32Type>().value(r) as f64,
        DataType::Int64 => a.as_primitive::<Int64Type>().value(r) as f64,
        DataType::UInt32 => a.as_primitive::<UInt32Type>().value(r) as f64,
        DataType::UInt64 => a.as_primitive::<UInt64Type>().value(r) as f64,
        DataType::Float32 => a.as_primitive::<Float32Type>().value(r) as f64,
        DataType::Float64 => a.as_primitive::<Float64Type>().value(r),
        DataType::Decimal128(_, s) => a.as_primitive::<Decimal128Type>().value(r) as f64 / 10f64.powi(*s as i32),
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow::array::{Int64Array, StringArray};

    #[test]
    fn rows_past_a_sheet_continue_on_the_next() {
        let dir = tempfile::tempdir().unwrap();
        let schema = Arc::new(arrow::datatypes::Schema::new(vec![
            arrow::datatypes::Field::new("id", DataType::Utf8, false),
            arrow::datatypes::Field::new("n", DataType::Int64, true),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![Arc::new(StringArray::from_iter_values((0..25).map(|i| format!("m{i}")))), Arc::new(Int64Array::from_iter(0..25))],
        )
        .unwrap();
        let path = dir.path().join("x.xlsx");
        let mut w = XlsxWriter::with_sheet_rows(&path, "members", schema, 10).unwrap();
        w.write(&batch).unwrap();
        // 9 data rows per sheet (the header takes one): 25 rows need 3 sheets.
        assert_eq!(w.finish().unwrap(), 3);
        assert!(std::fs::metadata(&path).unwrap().len() > 0);
    }
}

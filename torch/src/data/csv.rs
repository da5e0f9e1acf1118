//! Numeric CSV tables, read through polars from plain or gzip files.
//!
//! Polars splits the file into cells, which are read as strings and parsed
//! here, so that an error can name the line and column of the bad cell. Polars
//! keeps blank lines as rows of empty cells and pads short lines with empty
//! cells, so an empty cell is checked against the raw line to tell a blank line
//! (skipped), a short line and an empty field apart.

use std::io::Cursor;
use std::path::Path;

use anyhow::{anyhow, bail, Context, Result};
use polars::prelude::{CsvReadOptions, DataFrame, SerReader};

use super::{file_name, read_maybe_gzip};

/// A table of numbers in row-major order.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    pub rows: usize,
    pub columns: usize,
    pub values: Vec<f32>,
}

impl Table {
    pub fn row(&self, index: usize) -> &[f32] {
        &self.values[index * self.columns..(index + 1) * self.columns]
    }
}

/// Reads a comma-separated table of finite numbers. With `has_header`, the
/// first line contains column names and is skipped. Blank lines are skipped.
pub fn read_csv(path: &Path, has_header: bool) -> Result<Table> {
    let bytes = read_maybe_gzip(path)?;
    let source = Source {
        name: file_name(path),
        bytes: &bytes,
        has_header,
    };
    let frame = read_frame(&bytes, has_header).map_err(|err| source.explain_polars_error(err))?;
    source.parse_frame(&frame)
}

/// Splits the bytes into string cells. Every column is read as a string
/// because schema inference is switched off.
fn read_frame(bytes: &[u8], has_header: bool) -> polars::prelude::PolarsResult<DataFrame> {
    CsvReadOptions::default()
        .with_has_header(has_header)
        .with_infer_schema_length(Some(0))
        .map_parse_options(|options| options.with_missing_is_null(false))
        .into_reader_with_file_handle(Cursor::new(bytes))
        .finish()
}

/// The file being read, for parsing cells and locating errors.
struct Source<'a> {
    name: String,
    bytes: &'a [u8],
    has_header: bool,
}

impl Source<'_> {
    fn parse_frame(&self, frame: &DataFrame) -> Result<Table> {
        let (rows, columns) = frame.shape();
        let mut values = vec![0.0f32; rows * columns];
        let mut blank = vec![false; rows];
        for (column, series) in frame.columns().iter().enumerate() {
            let cells = series
                .str()
                .context("polars returned a non-string column")?;
            for (row, cell) in cells.iter().enumerate() {
                let cell = cell.unwrap_or("");
                if blank[row] {
                    continue;
                }
                match cell.parse::<f32>() {
                    Ok(value) if value.is_finite() => values[row * columns + column] = value,
                    _ if cell.is_empty() && self.line_of_row(row).is_empty() => blank[row] = true,
                    _ => return Err(self.cell_error(row, column, columns, cell)),
                }
            }
        }
        let table = drop_rows(values, columns, &blank);
        if table.rows == 0 {
            bail!("`{}` contains no data rows", self.name);
        }
        Ok(table)
    }

    /// Returns the 1-based line number of data row `row` (0-based). Polars
    /// keeps one row per line, blank lines included.
    fn line_number(&self, row: usize) -> usize {
        row + 1 + usize::from(self.has_header)
    }

    /// Returns the text of the line that contains data row `row`, without its
    /// line ending. The text is empty when the line is blank or missing.
    fn line_of_row(&self, row: usize) -> &str {
        let line = self
            .bytes
            .split(|&b| b == b'\n')
            .nth(self.line_number(row) - 1);
        let line = std::str::from_utf8(line.unwrap_or_default()).unwrap_or("");
        line.trim_end_matches('\r')
    }

    fn cell_error(&self, row: usize, column: usize, expected: usize, cell: &str) -> anyhow::Error {
        let line = self.line_number(row);
        let found = count_fields(self.line_of_row(row));
        if found != expected {
            return anyhow!(
                "`{}` line {line} has {found} columns, expected {expected}",
                self.name
            );
        }
        let column = column + 1;
        if cell.is_empty() {
            anyhow!("`{}` line {line}, column {column} is empty", self.name)
        } else {
            anyhow!(
                "`{}` line {line}, column {column}: `{cell}` is not a finite number",
                self.name
            )
        }
    }

    /// Turns a polars error into one that names the first line with a wrong
    /// column count, which is what polars rejects without a position.
    fn explain_polars_error(&self, err: polars::prelude::PolarsError) -> anyhow::Error {
        let text = String::from_utf8_lossy(self.bytes);
        let mut lines = text
            .lines()
            .enumerate()
            .filter(|(_, line)| !line.trim().is_empty());
        let Some((_, first)) = lines.next() else {
            return anyhow!("`{}` is empty", self.name);
        };
        let expected = count_fields(first);
        for (index, line) in lines {
            let found = count_fields(line);
            if found != expected {
                let number = index + 1;
                return anyhow!(
                    "`{}` line {number} has {found} columns, expected {expected}",
                    self.name
                );
            }
        }
        anyhow!(err).context(format!("failed to parse `{}` as CSV", self.name))
    }
}

/// Counts the comma-separated fields of a line. Quotes are ignored, so a
/// quoted comma is miscounted, which matters little because the count only
/// words errors.
fn count_fields(line: &str) -> usize {
    line.split(',').count()
}

fn drop_rows(values: Vec<f32>, columns: usize, dropped: &[bool]) -> Table {
    if !dropped.contains(&true) {
        return Table {
            rows: dropped.len(),
            columns,
            values,
        };
    }
    let mut kept = Vec::with_capacity(values.len());
    for (row, &drop) in dropped.iter().enumerate() {
        if !drop {
            kept.extend_from_slice(&values[row * columns..(row + 1) * columns]);
        }
    }
    Table {
        rows: kept.len() / columns.max(1),
        columns,
        values: kept,
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::{gzip, write};
    use super::*;

    fn read_text(text: &str, has_header: bool) -> Result<Table> {
        let dir = tempfile::tempdir().unwrap();
        read_csv(&write(dir.path(), "t.csv", text.as_bytes()), has_header)
    }

    fn error_of(text: &str) -> String {
        format!("{:#}", read_text(text, false).unwrap_err())
    }

    #[test]
    fn numbers_read_row_major() {
        let table = read_text("1,2.5,-3\n4e-1,5,6\n", false).unwrap();
        assert_eq!((table.rows, table.columns), (2, 3));
        assert_eq!(table.values, vec![1.0, 2.5, -3.0, 0.4, 5.0, 6.0]);
        assert_eq!(table.row(1), &[0.4, 5.0, 6.0]);
    }

    #[test]
    fn header_skipped_when_requested() {
        let table = read_text("a,b\n1,2\n3,4\n", true).unwrap();
        assert_eq!((table.rows, table.columns), (2, 2));
        assert_eq!(table.values, vec![1.0, 2.0, 3.0, 4.0]);
    }

    #[test]
    fn header_without_option_rejected() {
        let message = format!("{:#}", read_text("a,b\n1,2\n", false).unwrap_err());
        assert!(
            message.contains("line 1, column 1: `a` is not a finite number"),
            "{message}"
        );
    }

    #[test]
    fn gzip_csv_read() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "t.csv.gz", &gzip(b"1,2\n3,4\n"));
        let table = read_csv(&path, false).unwrap();
        assert_eq!(table.values, vec![1.0, 2.0, 3.0, 4.0]);
    }

    #[test]
    fn blank_lines_and_crlf_skipped() {
        let table = read_text("1,2\r\n\r\n3,4\r\n\n\n", false).unwrap();
        assert_eq!((table.rows, table.columns), (2, 2));
        assert_eq!(table.values, vec![1.0, 2.0, 3.0, 4.0]);
    }

    #[test]
    fn non_numeric_cell_located() {
        let message = error_of("1,2,3\n4,5,6\n7,x8,9\n");
        assert!(
            message.contains("`t.csv` line 3, column 2: `x8` is not a finite number"),
            "{message}"
        );
    }

    #[test]
    fn non_numeric_cell_located_after_header() {
        let message = format!("{:#}", read_text("a,b\n1,2\n3,oops\n", true).unwrap_err());
        assert!(
            message.contains("`t.csv` line 3, column 2: `oops`"),
            "{message}"
        );
    }

    #[test]
    fn nan_cell_rejected() {
        let message = error_of("1,2\nnan,4\n");
        assert!(
            message.contains("line 2, column 1: `nan` is not a finite number"),
            "{message}"
        );
    }

    #[test]
    fn empty_cell_located() {
        let message = error_of("1,2,3\n4,,6\n");
        assert!(
            message.contains("`t.csv` line 2, column 2 is empty"),
            "{message}"
        );
    }

    #[test]
    fn short_line_located() {
        let message = error_of("1,2,3\n4,5,6\n7,8\n");
        assert!(
            message.contains("`t.csv` line 3 has 2 columns, expected 3"),
            "{message}"
        );
    }

    #[test]
    fn long_line_located() {
        let message = error_of("1,2,3\n4,5,6\n\n7,8,9,10\n");
        assert!(
            message.contains("`t.csv` line 4 has 4 columns, expected 3"),
            "{message}"
        );
    }

    #[test]
    fn empty_file_rejected() {
        assert!(error_of("").contains("`t.csv` is empty"));
        assert!(error_of("\n\n").contains("`t.csv`"));
    }
}

//! Reading the cells of an `.xlsx` workbook (or a CSV file) into rows of cleaned text, below
//! the header row of a [`FieldSet`].
//!
//! The worksheet is streamed cell by cell (calamine's `XlsxCellReader`) rather than loaded as a
//! `Range`: a `Range` allocates its whole bounding box, so one stray character typed in a far
//! corner of the sheet (row 1 048 576, column XFD) would make it allocate billions of cells.
//! Streaming also lets the reader stop as soon as a file has more rows than the limit.

use std::io::Cursor;

use calamine::{DataRef, Reader, SheetType, SheetVisible, Xlsx, XlsxError};

use super::RosterError;
use super::header::{Columns, Field, FieldSet};

/// How many non-blank rows from the top of a sheet are searched for the header row.
const HEADER_SEARCH_ROWS: usize = 10;

/// Rows read past the data-row limit before giving up: room for totals and signature rows,
/// which are not counted as data.
const LIMIT_SLACK: usize = 100;

/// One non-empty cell, as text.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RawCell {
    /// Cleaned text: no surrounding whitespace, no zero-width characters, never empty.
    pub(crate) text: String,
    /// The cell held a number (or a date), not text: an ID number stored this way has
    /// probably lost digits.
    pub(crate) numeric: bool,
}

/// One row holding at least one non-empty cell.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct RawRow {
    /// Zero-based row index in the sheet (the Excel row number minus one).
    pub(crate) index: u32,
    /// `(zero-based column, cell)`, sorted by column.
    pub(crate) cells: Vec<(u32, RawCell)>,
    /// The text of the row's first non-empty cell, whatever its column (a totals row says
    /// `合计` in the 序号 column, which the reader otherwise drops).
    pub(crate) lead: String,
}

impl RawRow {
    /// The cell in a column, if it is not empty.
    pub(crate) fn cell(&self, col: Option<u32>) -> Option<&RawCell> {
        let col = col?;
        self.cells
            .binary_search_by_key(&col, |(c, _)| *c)
            .ok()
            .map(|i| &self.cells[i].1)
    }
}

/// The roster sheet found in a workbook.
pub(crate) type RosterSheet = Sheet<Field>;

/// The sheet found in a workbook: its header row and the rows below it.
#[derive(Debug)]
pub(crate) struct Sheet<F: FieldSet> {
    /// The worksheet's name.
    pub(crate) name: String,
    /// Zero-based index of the header row.
    pub(crate) header_index: u32,
    /// Where each field is.
    pub(crate) columns: Columns<F>,
    /// Non-blank rows below the header row, in sheet order, holding only the used columns.
    pub(crate) rows: Vec<RawRow>,
}

/// Reads the first worksheet that has a header row (visible sheets first, then hidden ones).
///
/// `limit` is the data-row limit: reading stops with [`RosterError::TooManyRows`] once clearly
/// past it (the exact count, which leaves out totals rows, is checked by the caller).
pub(crate) fn read_roster_sheet(bytes: &[u8], limit: u32) -> Result<RosterSheet, RosterError> {
    read_sheet(bytes, limit)
}

/// Reads the first worksheet that has the header row of `F` (visible sheets first, then hidden
/// ones); see [`read_roster_sheet`].
pub(crate) fn read_sheet<F: FieldSet>(bytes: &[u8], limit: u32) -> Result<Sheet<F>, RosterError> {
    // The xlsx, zip and XML parsers see untrusted bytes: a panic inside them must become a
    // refused file, not a crashed worker.
    std::panic::catch_unwind(|| read_sheet_inner(bytes, limit)).unwrap_or_else(|_| {
        Err(RosterError::Unreadable(
            "无法读取该文件：文件已损坏或格式不受支持，请在 Excel 中另存为 .xlsx 后重新上传"
                .to_owned(),
        ))
    })
}

fn read_sheet_inner<F: FieldSet>(bytes: &[u8], limit: u32) -> Result<Sheet<F>, RosterError> {
    const ZIP_MAGIC: &[u8] = b"PK\x03\x04";
    const OLE_MAGIC: &[u8] = &[0xD0, 0xCF, 0x11, 0xE0];
    if bytes.starts_with(OLE_MAGIC) {
        return Err(RosterError::Unreadable(
            "这是旧版 .xls 文件或设置了密码的工作簿：请在 Excel 中取消密码并另存为 .xlsx 格式后重新上传"
                .to_owned(),
        ));
    }
    if !bytes.starts_with(ZIP_MAGIC) {
        return Err(RosterError::Unreadable(
            "文件不是 Excel 工作簿（.xlsx），请上传 .xlsx 格式的名单".to_owned(),
        ));
    }
    let mut workbook: Xlsx<_> =
        calamine::open_workbook_from_rs(Cursor::new(bytes)).map_err(unreadable)?;

    let mut sheets: Vec<(bool, String)> = workbook
        .sheets_metadata()
        .iter()
        .filter(|s| s.typ == SheetType::WorkSheet)
        .map(|s| (s.visible != SheetVisible::Visible, s.name.clone()))
        .collect();
    if sheets.is_empty() {
        return Err(RosterError::Unreadable(
            "工作簿中没有工作表，请确认上传的是参互名单".to_owned(),
        ));
    }
    // Stable: keeps the workbook's order among visible and among hidden sheets.
    sheets.sort_by_key(|(hidden, _)| *hidden);

    let mut best_missing: Option<Vec<String>> = None;
    for (_, name) in &sheets {
        match scan_sheet::<F>(&mut workbook, name, limit)? {
            Scan::Found(sheet) => return Ok(*sheet),
            Scan::NotFound { missing } => {
                let better = best_missing
                    .as_ref()
                    .is_none_or(|best| missing.len() < best.len());
                if better {
                    best_missing = Some(missing);
                }
            }
        }
    }
    Err(RosterError::MissingColumns(
        best_missing.unwrap_or_default(),
    ))
}

fn unreadable(e: XlsxError) -> RosterError {
    RosterError::Unreadable(format!(
        "无法读取该文件，请确认是有效的 Excel .xlsx 工作簿（{e}）"
    ))
}

enum Scan<F: FieldSet> {
    Found(Box<Sheet<F>>),
    NotFound { missing: Vec<String> },
}

/// Rows fed one by one, top to bottom: finds the header within the first non-blank rows, then
/// collects the rows below it. The same for a worksheet streamed cell by cell and a CSV file.
struct Collector<F: FieldSet> {
    max_rows: usize,
    limit: u32,
    header: Option<(u32, Columns<F>, Vec<u32>)>,
    top_rows: usize,
    best_missing: Vec<String>,
    rows: Vec<RawRow>,
}

impl<F: FieldSet> Collector<F> {
    fn new(limit: u32) -> Collector<F> {
        Collector {
            max_rows: usize::try_from(limit)
                .unwrap_or(usize::MAX)
                .saturating_add(LIMIT_SLACK),
            limit,
            header: None,
            top_rows: 0,
            best_missing: F::header_keys()
                .iter()
                .map(|f| f.canonical().to_owned())
                .collect(),
            rows: Vec::new(),
        }
    }

    /// Takes one finished row; `Ok(false)` when reading can stop (no header near the top).
    fn push(&mut self, row: RawRow) -> Result<bool, RosterError> {
        if row.cells.is_empty() {
            return Ok(true);
        }
        let mut row = row;
        if !row.cells.is_sorted_by_key(|(c, _)| *c) {
            row.cells.sort_by_key(|(c, _)| *c);
        }
        match &self.header {
            None => {
                let columns = Columns::<F>::from_cells(
                    row.cells.iter().map(|(c, cell)| (*c, cell.text.as_str())),
                );
                if columns.is_header_row() {
                    let used = columns.used_columns();
                    self.header = Some((row.index, columns, used));
                } else {
                    let missing = columns.missing_required();
                    if missing.len() < self.best_missing.len() {
                        self.best_missing = missing;
                    }
                    self.top_rows += 1;
                    if self.top_rows >= HEADER_SEARCH_ROWS {
                        return Ok(false);
                    }
                }
            }
            Some((header_index, _, used)) => {
                if row.index <= *header_index {
                    // Out-of-order XML: a cell of a row above the header. Ignore it.
                    return Ok(true);
                }
                row.lead = row
                    .cells
                    .first()
                    .map(|(_, c)| c.text.clone())
                    .unwrap_or_default();
                row.cells.retain(|(c, _)| used.binary_search(c).is_ok());
                if row.cells.is_empty() {
                    return Ok(true);
                }
                // Cells of one row split by out-of-order XML are merged back.
                if let Some(last) = self.rows.last_mut()
                    && last.index == row.index
                {
                    last.cells.append(&mut row.cells);
                    last.cells.sort_by_key(|(c, _)| *c);
                    return Ok(true);
                }
                self.rows.push(row);
                if self.rows.len() > self.max_rows {
                    return Err(RosterError::TooManyRows { limit: self.limit });
                }
            }
        }
        Ok(true)
    }

    fn finish(self, name: &str) -> Scan<F> {
        match self.header {
            Some((header_index, columns, _)) => Scan::Found(Box::new(Sheet {
                name: name.to_owned(),
                header_index,
                columns,
                rows: self.rows,
            })),
            None => Scan::NotFound {
                missing: self.best_missing,
            },
        }
    }
}

/// Streams one sheet through a [`Collector`].
fn scan_sheet<F: FieldSet>(
    workbook: &mut Xlsx<Cursor<&[u8]>>,
    name: &str,
    limit: u32,
) -> Result<Scan<F>, RosterError> {
    let mut reader = workbook.worksheet_cells_reader(name).map_err(unreadable)?;
    let mut collector = Collector::<F>::new(limit);
    let mut current: Option<RawRow> = None;
    loop {
        let next = reader.next_cell().map_err(unreadable)?;
        let Some(cell) = next else { break };
        let (row_index, col) = cell.get_position();
        let row_changed = current.as_ref().is_none_or(|r| r.index != row_index);
        if row_changed {
            if let Some(done) = current.take()
                && !collector.push(done)?
            {
                break;
            }
            current = Some(RawRow {
                index: row_index,
                cells: Vec::new(),
                lead: String::new(),
            });
        }
        if let Some(value) = cell_text(cell.get_value())
            && let Some(row) = current.as_mut()
        {
            row.cells.push((col, value));
        }
    }
    if let Some(done) = current.take() {
        collector.push(done)?;
    }
    drop(reader);
    Ok(collector.finish(name))
}

/// Reads a CSV file (UTF-8 with or without a byte-order mark, or GBK/GB18030, as Chinese
/// systems and Excel write them) the way a worksheet is read: the header row of `F` within the
/// first non-blank lines, then the rows below it. Row indexes are zero-based line numbers, so
/// `index + 1` is the line the clerk sees in a text editor (and the row number Excel shows).
pub(crate) fn read_csv<F: FieldSet>(bytes: &[u8], limit: u32) -> Result<Sheet<F>, RosterError> {
    let Some(text) = crate::formats::bank_file::decode_text(bytes) else {
        return Err(RosterError::Unreadable(
            "无法读取该文件：CSV 文件须为 UTF-8 或 GBK 编码 / the CSV file must be UTF-8 or GBK"
                .to_owned(),
        ));
    };
    // The csv crate miscounts lines after CRLF; with plain LF its line numbers are exact.
    let text = text.replace("\r\n", "\n");
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut collector = Collector::<F>::new(limit);
    for record in reader.records() {
        let record = record.map_err(|e| {
            RosterError::Unreadable(format!(
                "无法读取该 CSV 文件（第{}行）/ unreadable CSV",
                e.position().map_or(0, |p| p.line())
            ))
        })?;
        let line = record.position().map_or(1, |p| p.line());
        let cells = record
            .iter()
            .enumerate()
            .filter_map(|(col, field)| {
                let text = clean_text(field);
                (!text.is_empty()).then(|| {
                    (
                        u32::try_from(col).unwrap_or(u32::MAX),
                        RawCell {
                            text,
                            numeric: false,
                        },
                    )
                })
            })
            .collect();
        let row = RawRow {
            index: u32::try_from(line.saturating_sub(1)).unwrap_or(u32::MAX),
            cells,
            lead: String::new(),
        };
        if !collector.push(row)? {
            break;
        }
    }
    match collector.finish("csv") {
        Scan::Found(sheet) => Ok(*sheet),
        Scan::NotFound { missing } => Err(RosterError::MissingColumns(missing)),
    }
}

/// Columns copied into a problem workbook: far more than any roster has, few enough that a
/// stray cell in column XFD cannot blow it up.
const COPY_MAX_COLUMNS: u32 = 256;

/// A cell copied as the clerk typed it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum CopiedCell {
    Text(String),
    Number(f64),
    Bool(bool),
}

/// A copied cell at `(row, column)`, zero-based.
pub(crate) type PlacedCell = (u32, u32, CopiedCell);

/// Every non-empty cell of the roster sheet (as [`read_roster_sheet`] finds it) from the top
/// down to its last non-blank row, unchanged: `(sheet, header row index, (row, column, cell))`.
pub(crate) fn read_sheet_cells(
    bytes: &[u8],
    limit: u32,
) -> Result<(RosterSheet, Vec<PlacedCell>), RosterError> {
    let sheet = read_roster_sheet(bytes, limit)?;
    let last_row = sheet.rows.last().map_or(sheet.header_index, |r| r.index);
    std::panic::catch_unwind(|| {
        let mut workbook: Xlsx<_> =
            calamine::open_workbook_from_rs(Cursor::new(bytes)).map_err(unreadable)?;
        let mut reader = workbook
            .worksheet_cells_reader(&sheet.name)
            .map_err(unreadable)?;
        let mut cells = Vec::new();
        while let Some(cell) = reader.next_cell().map_err(unreadable)? {
            let (row, col) = cell.get_position();
            if row > last_row || col >= COPY_MAX_COLUMNS {
                continue;
            }
            let copied = match cell.get_value() {
                DataRef::Empty => continue,
                DataRef::Float(f) => CopiedCell::Number(*f),
                DataRef::Int(i) => CopiedCell::Number(*i as f64),
                DataRef::DateTime(d) => CopiedCell::Number(d.as_f64()),
                DataRef::Bool(b) => CopiedCell::Bool(*b),
                DataRef::String(s) | DataRef::DateTimeIso(s) | DataRef::DurationIso(s) => {
                    CopiedCell::Text(s.clone())
                }
                DataRef::SharedString(s) => CopiedCell::Text((*s).to_owned()),
                DataRef::Error(e) => CopiedCell::Text(e.to_string()),
            };
            cells.push((row, col, copied));
        }
        Ok(cells)
    })
    .unwrap_or_else(|_| {
        Err(RosterError::Unreadable(
            "无法读取该文件：文件已损坏或格式不受支持".to_owned(),
        ))
    })
    .map(|cells| (sheet, cells))
}

/// The cleaned text of a cell; `None` when it is empty or holds only spaces.
fn cell_text(value: &DataRef<'_>) -> Option<RawCell> {
    let (text, numeric) = match value {
        DataRef::Empty => return None,
        DataRef::String(s) => (clean_text(s), false),
        DataRef::SharedString(s) => (clean_text(s), false),
        DataRef::Float(f) => (number_text(*f), true),
        DataRef::Int(i) => (i.to_string(), true),
        DataRef::Bool(b) => ((if *b { "TRUE" } else { "FALSE" }).to_owned(), false),
        DataRef::DateTime(d) => (number_text(d.as_f64()), true),
        DataRef::DateTimeIso(s) | DataRef::DurationIso(s) => (clean_text(s), false),
        DataRef::Error(e) => (e.to_string(), false),
    };
    if text.is_empty() {
        None
    } else {
        Some(RawCell { text, numeric })
    }
}

/// A number as a clerk would read it: whole numbers without a decimal point or an exponent
/// (`13812345678`, not `1.3812345678e10` or `13812345678.0`).
pub(crate) fn number_text(f: f64) -> String {
    if f.is_finite() && f.fract() == 0.0 && f.abs() < 1e21 {
        format!("{f:.0}")
    } else {
        format!("{f}")
    }
}

/// Trims every kind of whitespace (including the non-breaking and the ideographic space) and
/// drops zero-width characters that pasting from web pages or WeChat leaves behind; inner
/// spaces are turned into plain spaces.
pub(crate) fn clean_text(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '\u{200B}'..='\u{200D}' | '\u{2060}' | '\u{FEFF}' => {}
            c if c.is_whitespace() => out.push(' '),
            c => out.push(c),
        }
    }
    let trimmed = out.trim();
    if trimmed.len() == out.len() {
        out
    } else {
        trimmed.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_numbers_print_without_decimal_point_or_exponent() {
        assert_eq!(number_text(13_812_345_678.0), "13812345678");
        assert_eq!(number_text(1.101_051_949_123_1e17), "110105194912310000");
        assert_eq!(number_text(1.5), "1.5");
    }

    #[test]
    fn cleaning_removes_odd_spaces_and_zero_width_characters() {
        assert_eq!(clean_text("\u{a0} 张三\u{3000}"), "张三");
        assert_eq!(clean_text("\u{feff}138\u{200b}1234"), "1381234");
        assert_eq!(clean_text("   "), "");
        assert_eq!(clean_text("王\u{a0}五"), "王 五");
    }
}

//! Writing `.xlsx` workbooks for union clerks: ledgers, summaries, reports, the roster template.
//!
//! Each [`Sheet`] becomes one worksheet: an optional merged title row, a bold header row frozen
//! in place, the rows, and an optional bold totals row. ID, phone and bank-card numbers are
//! written as text ([`Cell::Code`]) so Excel never turns them into `1.10105E+17`; money is a
//! real number with two decimals, so clerks can sum it. Text is always written as text, never as
//! a formula, so a name starting with `=` cannot run anything in Excel.

use chrono::{Datelike, NaiveDate};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::{Decimal, RoundingStrategy};
use rust_xlsxwriter::{
    DataValidation, ExcelDateTime, Format, FormatAlign, FormatBorder, IgnoreError, Workbook,
    Worksheet, XlsxError,
};

/// One cell's value.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    /// Text.
    Text(String),
    /// A number-like code (ID, phone, bank card, reference): kept as text so Excel never turns
    /// it into 1.5e17.
    Code(String),
    /// A whole number.
    Int(i64),
    /// Money: a number shown with 2 decimals, `#,##0.00`.
    Money(Decimal),
    /// A ratio shown as a percentage, `0.0%` (0.755 shows as 75.5%).
    Percent(Decimal),
    /// A measure with one decimal, `0.0` (average days).
    Tenths(Decimal),
    /// A calendar date, shown as `yyyy-mm-dd`.
    Date(NaiveDate),
    /// Nothing.
    Empty,
}

/// One worksheet to write.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Sheet {
    /// The tab's name. Characters Excel refuses (`[]:*?/\`) are replaced, it is cut to 31
    /// characters, and a repeated name gets a number.
    pub name: String,
    /// A merged title row above the header.
    pub title: Option<String>,
    /// The column headers.
    pub headers: Vec<String>,
    /// The rows, one cell per header.
    pub rows: Vec<Vec<Cell>>,
    /// A totals row appended in bold.
    pub totals: Option<Vec<Cell>>,
}

/// Why a workbook could not be written.
#[derive(Debug, thiserror::Error)]
pub enum WorkbookError {
    /// No sheet was given.
    #[error("a workbook needs at least one sheet")]
    NoSheets,
    /// A sheet has more rows than Excel allows (1 048 576 including title, header and totals).
    #[error("sheet `{sheet}` has more rows than Excel allows")]
    TooManyRows {
        /// The sheet's name.
        sheet: String,
    },
    /// The writer refused something (a text over 32 767 characters, too many columns …).
    #[error("xlsx writer: {0}")]
    Xlsx(#[from] XlsxError),
}

/// Excel's row limit.
const EXCEL_MAX_ROWS: usize = 1_048_576;
/// Excel's column limit.
const EXCEL_MAX_COLS: usize = 16_384;
/// Excel's limit on a sheet name, in characters.
const SHEET_NAME_MAX: usize = 31;
/// Column width bounds, in Excel's character units.
const MIN_WIDTH: f64 = 6.0;
const MAX_WIDTH: f64 = 60.0;
/// Rows looked at to size the columns (enough to be representative, cheap on big ledgers).
const WIDTH_SAMPLE_ROWS: usize = 2000;

/// The formats of one workbook, created once.
struct Formats {
    title: Format,
    header: Format,
    text: Format,
    code: Format,
    int: Format,
    money: Format,
    percent: Format,
    tenths: Format,
    date: Format,
    blank: Format,
}

impl Formats {
    fn new(bold: bool) -> Formats {
        let base = || {
            let f = Format::new()
                .set_border(FormatBorder::Thin)
                .set_align(FormatAlign::VerticalCenter);
            if bold { f.set_bold() } else { f }
        };
        Formats {
            title: Format::new()
                .set_bold()
                .set_font_size(14)
                .set_align(FormatAlign::Center)
                .set_align(FormatAlign::VerticalCenter),
            header: Format::new()
                .set_bold()
                .set_border(FormatBorder::Thin)
                .set_background_color(0x00D9_E1F2)
                .set_align(FormatAlign::Center)
                .set_align(FormatAlign::VerticalCenter)
                .set_text_wrap(),
            text: base(),
            code: base().set_num_format("@"),
            int: base().set_num_format("0"),
            money: base().set_num_format("#,##0.00"),
            percent: base().set_num_format("0.0%"),
            tenths: base().set_num_format("0.0"),
            date: base().set_num_format("yyyy-mm-dd"),
            blank: base(),
        }
    }
}

/// Writes the sheets into one `.xlsx` file, in order.
pub fn write_workbook(sheets: &[Sheet]) -> Result<Vec<u8>, WorkbookError> {
    if sheets.is_empty() {
        return Err(WorkbookError::NoSheets);
    }
    let plain = Formats::new(false);
    let bold = Formats::new(true);
    let mut workbook = Workbook::new();
    let mut used_names: Vec<String> = Vec::new();
    for (i, sheet) in sheets.iter().enumerate() {
        let name = unique_sheet_name(&sheet.name, i, &used_names);
        used_names.push(name.clone());
        let worksheet = workbook.add_worksheet();
        worksheet.set_name(name.as_str())?;
        write_sheet(worksheet, sheet, &name, &plain, &bold)?;
    }
    Ok(workbook.save_to_buffer()?)
}

fn write_sheet(
    ws: &mut Worksheet,
    sheet: &Sheet,
    name: &str,
    plain: &Formats,
    bold: &Formats,
) -> Result<(), WorkbookError> {
    let columns = sheet
        .rows
        .iter()
        .chain(sheet.totals.iter())
        .map(Vec::len)
        .chain([sheet.headers.len(), 1])
        .max()
        .unwrap_or(1);
    let extra_rows = usize::from(sheet.title.is_some()) + 1 + usize::from(sheet.totals.is_some());
    if sheet.rows.len().saturating_add(extra_rows) > EXCEL_MAX_ROWS {
        return Err(WorkbookError::TooManyRows {
            sheet: name.to_owned(),
        });
    }
    if columns > EXCEL_MAX_COLS {
        return Err(XlsxError::RowColumnLimitError.into());
    }
    // Both fit: checked against Excel's limits just above.
    let last_col = u16::try_from(columns - 1).map_err(|_| XlsxError::RowColumnLimitError)?;
    let row_num = |i: usize| u32::try_from(i).map_err(|_| XlsxError::RowColumnLimitError);

    let mut r = 0u32;
    if let Some(title) = &sheet.title {
        if last_col > 0 {
            ws.merge_range(0, 0, 0, last_col, title, &plain.title)?;
        } else {
            ws.write_string_with_format(0, 0, title, &plain.title)?;
        }
        ws.set_row_height(0, 28)?;
        r += 1;
    }
    let header_row = r;
    for (c, h) in (0u16..).zip(&sheet.headers) {
        ws.write_string_with_format(header_row, c, h, &plain.header)?;
    }
    ws.set_freeze_panes(header_row + 1, 0)?;
    r += 1;

    let first_data_row = r;
    for (i, row) in sheet.rows.iter().enumerate() {
        write_row(ws, first_data_row + row_num(i)?, row, plain)?;
    }
    r = first_data_row + row_num(sheet.rows.len())?;
    // Filter buttons on the header, over the data rows (not the totals).
    ws.autofilter(header_row, 0, r.max(first_data_row + 1) - 1, last_col)?;
    // The header repeats on every printed page.
    ws.set_repeat_rows(header_row, header_row)?;
    if let Some(totals) = &sheet.totals {
        write_row(ws, r, totals, bold)?;
        r += 1;
    }
    if r > first_data_row {
        // Codes are text on purpose: no green "number stored as text" triangles.
        ws.ignore_error_range(
            first_data_row,
            0,
            r - 1,
            last_col,
            IgnoreError::NumberStoredAsText,
        )?;
    }

    for (c, width) in (0u16..).zip(column_widths(sheet, columns)) {
        ws.set_column_width(c, width)?;
    }
    Ok(())
}

fn write_row(ws: &mut Worksheet, r: u32, row: &[Cell], f: &Formats) -> Result<(), WorkbookError> {
    for (c, cell) in (0u16..).zip(row) {
        match cell {
            Cell::Text(s) => ws.write_string_with_format(r, c, s, &f.text)?,
            Cell::Code(s) => ws.write_string_with_format(r, c, s, &f.code)?,
            Cell::Int(i) => {
                // Excel numbers are doubles: past 2^53 an integer would silently change.
                const EXACT: i64 = 1 << 53;
                if (-EXACT..=EXACT).contains(i) {
                    #[allow(clippy::cast_precision_loss)] // exact within ±2^53, checked above
                    let n = *i as f64;
                    ws.write_number_with_format(r, c, n, &f.int)?
                } else {
                    ws.write_string_with_format(r, c, i.to_string(), &f.code)?
                }
            }
            Cell::Money(d) => {
                let rounded = d.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero);
                ws.write_number_with_format(r, c, decimal_to_f64(rounded), &f.money)?
            }
            Cell::Percent(d) => {
                ws.write_number_with_format(r, c, decimal_to_f64(*d), &f.percent)?
            }
            Cell::Tenths(d) => {
                let rounded = d.round_dp_with_strategy(1, RoundingStrategy::MidpointAwayFromZero);
                ws.write_number_with_format(r, c, decimal_to_f64(rounded), &f.tenths)?
            }
            Cell::Date(d) => match excel_date(*d) {
                Some(date) => ws.write_datetime_with_format(r, c, date, &f.date)?,
                // Outside Excel's calendar (before 1900 or after 9999): write it as text.
                None => ws.write_string_with_format(r, c, d.to_string(), &f.text)?,
            },
            Cell::Empty => ws.write_blank(r, c, &f.blank)?,
        };
    }
    Ok(())
}

fn decimal_to_f64(d: Decimal) -> f64 {
    d.to_f64().unwrap_or(0.0)
}

fn excel_date(d: NaiveDate) -> Option<ExcelDateTime> {
    let year = u16::try_from(d.year()).ok()?;
    let month = u8::try_from(d.month()).ok()?;
    let day = u8::try_from(d.day()).ok()?;
    ExcelDateTime::from_ymd(year, month, day).ok()
}

/// The display width of a text in Excel's character units: Chinese (and other wide)
/// characters count two.
fn text_width(s: &str) -> f64 {
    let longest_line = s
        .lines()
        .map(|line| {
            line.chars()
                .map(|c| if is_wide(c) { 2u32 } else { 1 })
                .sum::<u32>()
        })
        .max()
        .unwrap_or(0);
    f64::from(longest_line)
}

fn is_wide(c: char) -> bool {
    matches!(c,
        '\u{1100}'..='\u{115F}'
        | '\u{2E80}'..='\u{A4CF}'
        | '\u{AC00}'..='\u{D7A3}'
        | '\u{F900}'..='\u{FAFF}'
        | '\u{FE30}'..='\u{FE4F}'
        | '\u{FF00}'..='\u{FF60}'
        | '\u{FFE0}'..='\u{FFE6}'
        | '\u{20000}'..='\u{3FFFD}')
}

fn cell_width(cell: &Cell) -> f64 {
    match cell {
        Cell::Text(s) | Cell::Code(s) => text_width(s),
        Cell::Int(i) => text_width(&i.to_string()),
        // Digits plus thousands separators and two decimals.
        Cell::Money(d) => {
            let digits = d.trunc().abs().to_string().len();
            #[allow(clippy::cast_precision_loss)] // a handful of digits
            let w = (digits + digits / 3 + 4) as f64;
            w
        }
        Cell::Percent(_) => 7.0,
        Cell::Tenths(d) => text_width(&d.trunc().to_string()) + 2.0,
        Cell::Date(_) => 11.0,
        Cell::Empty => 0.0,
    }
}

fn column_widths(sheet: &Sheet, columns: usize) -> Vec<f64> {
    let mut widths = vec![0.0f64; columns];
    for (w, h) in widths.iter_mut().zip(&sheet.headers) {
        *w = w.max(text_width(h));
    }
    let mut take = |row: &[Cell]| {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = w.max(cell_width(cell));
        }
    };
    for row in sheet.rows.iter().take(WIDTH_SAMPLE_ROWS) {
        take(row);
    }
    if let Some(t) = &sheet.totals {
        take(t);
    }
    widths
        .into_iter()
        .map(|w| (w + 2.0).clamp(MIN_WIDTH, MAX_WIDTH))
        .collect()
}

/// A sheet name Excel accepts: no `[]:*?/\`, no leading or trailing apostrophe, at most 31
/// characters, not empty, not `History`, and not used already in this workbook (compared
/// case-insensitively, as Excel does).
fn unique_sheet_name(wanted: &str, index: usize, used: &[String]) -> String {
    let cleaned: String = wanted
        .chars()
        .map(|c| match c {
            '[' | ']' | ':' | '*' | '?' | '/' | '\\' => '_',
            c if c.is_control() => ' ',
            c => c,
        })
        .collect();
    let cleaned = cleaned.trim().trim_matches('\'').trim().to_owned();
    let base = if cleaned.is_empty() || cleaned.eq_ignore_ascii_case("history") {
        format!("Sheet{}", index + 1)
    } else {
        cleaned
    };
    let taken = |name: &str| used.iter().any(|u| u.to_lowercase() == name.to_lowercase());
    let mut n = 1usize;
    loop {
        let suffix = if n == 1 {
            String::new()
        } else {
            format!("({n})")
        };
        let room = SHEET_NAME_MAX - suffix.chars().count();
        let mut candidate: String = base.chars().take(room).collect();
        candidate = candidate.trim_end_matches('\'').to_owned();
        candidate.push_str(&suffix);
        if !taken(&candidate) {
            return candidate;
        }
        n += 1;
    }
}

/// The standard roster columns and what to write in each, for the template's note row.
const TEMPLATE_COLUMNS: [(&str, &str, bool); TEMPLATE_WIDTH] = [
    ("序号", "可不填", false),
    ("姓名", "必填，与身份证一致", false),
    ("身份证号码", "必填，18位，本列已设为文本格式", true),
    ("手机号码", "选填，11位手机号", true),
    ("工作单位", "选填，所在的公司、分公司或厂", false),
    ("部门", "选填", false),
    ("工号", "选填，本列已设为文本格式", true),
    ("是否参加医保", "填“是”或“否”", false),
    ("在职/退休", "填“在职”或“退休”，不填视为在职", false),
    ("备注", "选填", false),
];

/// How many standard roster columns there are.
const TEMPLATE_WIDTH: usize = 10;
/// Where the drop-down lists go: 是否参加医保 and 在职/退休.
const INSURED_COLUMN: u16 = 7;
const STATUS_COLUMN: u16 = 8;

/// One person's row in a filled roster: the template's columns in order (序号, 姓名, 身份证号码,
/// 手机号码, 工作单位, 部门, 工号, 是否参加医保, 在职/退休, 备注), then one text per extra
/// column of the workbook.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RosterLine {
    pub standard: [String; TEMPLATE_WIDTH],
    pub extra: Vec<String>,
}

/// A blank roster template with the standard headers (and a note row explaining each column).
///
/// Layout: row 1 a merged title, row 2 the notes, row 3 the header (bold, frozen); rows from 4
/// on are for the people. The ID and phone columns are formatted as text for the whole column,
/// so numbers typed there keep every digit, and the yes/no and status columns offer drop-down
/// lists. The note row sits above the header, so a filled-in template reads back as a roster.
pub fn roster_template() -> Result<Vec<u8>, WorkbookError> {
    roster_workbook("职工医疗互助保障参互人员名单", None, &[], &[])
}

/// The roster template filled with `lines`, under `title`; `instruction`, when given, is a
/// merged row between the title and the column notes (what the clerk is to do with the file).
/// `extra_headers` are further columns after the standard ones (the other columns of the
/// rosters the lines come from), as text.
/// Still a roster: the header row stays within the rows the importer searches, so the file
/// uploads as it is, and the extra columns are kept again.
pub fn roster_workbook(
    title: &str,
    instruction: Option<&str>,
    extra_headers: &[String],
    lines: &[RosterLine],
) -> Result<Vec<u8>, WorkbookError> {
    const ROWS_WITH_LISTS: u32 = 50_003;
    let f = Formats::new(false);
    let note = Format::new()
        .set_font_size(9)
        .set_font_color(0x0059_5959)
        .set_text_wrap()
        .set_border(FormatBorder::Thin)
        .set_align(FormatAlign::VerticalCenter);
    let text_column = Format::new().set_num_format("@");
    let last_col = u16::try_from(TEMPLATE_COLUMNS.len() + extra_headers.len() - 1)
        .map_err(|_| XlsxError::RowColumnLimitError)?;

    let mut workbook = Workbook::new();
    let ws = workbook.add_worksheet();
    ws.set_name("参互名单")?;
    ws.merge_range(0, 0, 0, last_col, title, &f.title)?;
    ws.set_row_height(0, 28)?;
    let mut row = 1u32;
    if let Some(instruction) = instruction {
        let emphasis = Format::new()
            .set_bold()
            .set_font_color(0x00C0_0000)
            .set_text_wrap()
            .set_align(FormatAlign::VerticalCenter);
        ws.merge_range(row, 0, row, last_col, instruction, &emphasis)?;
        ws.set_row_height(row, 48)?;
        row += 1;
    }
    let (notes_row, header_row) = (row, row + 1);
    ws.set_row_height(notes_row, 30)?;
    for (c, (header, hint, is_code)) in (0u16..).zip(TEMPLATE_COLUMNS) {
        ws.write_string_with_format(notes_row, c, hint, &note)?;
        ws.write_string_with_format(header_row, c, header, &f.header)?;
        if is_code {
            ws.set_column_format(c, &text_column)?;
        }
        let width = match header {
            "序号" => 6.0,
            "身份证号码" => 22.0,
            "手机号码" => 15.0,
            "工作单位" => 24.0,
            "备注" => 20.0,
            _ => 14.0,
        };
        ws.set_column_width(c, width)?;
    }
    let first_extra = u16::try_from(TEMPLATE_COLUMNS.len()).unwrap_or(u16::MAX);
    for (c, header) in (first_extra..).zip(extra_headers) {
        ws.write_string_with_format(notes_row, c, "原名单中的列", &note)?;
        ws.write_string_with_format(header_row, c, header, &f.header)?;
        ws.set_column_width(c, 14.0)?;
    }
    let first_data = header_row + 1;
    if lines.len() > MAX_ROSTER_LINES {
        return Err(WorkbookError::TooManyRows {
            sheet: "参互名单".into(),
        });
    }
    for (r, line) in (first_data..).zip(lines) {
        for (c, value) in (0u16..).zip(&line.standard) {
            if value.is_empty() {
                continue;
            }
            let is_code = TEMPLATE_COLUMNS[usize::from(c)].2;
            let format = if is_code { &f.code } else { &f.text };
            ws.write_string_with_format(r, c, value, format)?;
        }
        for (c, value) in (first_extra..).zip(line.extra.iter().take(extra_headers.len())) {
            if !value.is_empty() {
                ws.write_string_with_format(r, c, value, &f.code)?;
            }
        }
    }
    ws.set_freeze_panes(first_data, 0)?;
    let yes_no = DataValidation::new().allow_list_strings(&["是", "否"])?;
    let status = DataValidation::new().allow_list_strings(&["在职", "退休"])?;
    ws.add_data_validation(
        first_data,
        INSURED_COLUMN,
        ROWS_WITH_LISTS,
        INSURED_COLUMN,
        &yes_no,
    )?;
    ws.add_data_validation(
        first_data,
        STATUS_COLUMN,
        ROWS_WITH_LISTS,
        STATUS_COLUMN,
        &status,
    )?;
    Ok(workbook.save_to_buffer()?)
}

/// Most people a filled roster holds (what the importer takes in one file).
const MAX_ROSTER_LINES: usize = 50_000;

#[cfg(test)]
mod tests {
    use std::io::Cursor;

    use calamine::{Data, Reader, Xlsx};
    use rust_decimal_macros::dec;

    use super::*;

    fn read_back(bytes: &[u8]) -> Xlsx<Cursor<&[u8]>> {
        calamine::open_workbook_from_rs(Cursor::new(bytes)).unwrap()
    }

    fn text(v: &str) -> Cell {
        Cell::Text(v.to_owned())
    }

    fn ledger() -> Sheet {
        Sheet {
            name: "参互单位台账".to_owned(),
            title: Some("2025年度参互单位台账".to_owned()),
            headers: [
                "序号",
                "姓名",
                "身份证号码",
                "银行卡号",
                "互助金",
                "参互率",
                "参互日期",
                "备注",
            ]
            .map(str::to_owned)
            .to_vec(),
            rows: vec![
                vec![
                    Cell::Int(1),
                    text("阿卜杜·热合曼"),
                    Cell::Code("11010519491231002X".to_owned()),
                    Cell::Code("6222021234567890128".to_owned()),
                    Cell::Money(dec!(1234.5)),
                    Cell::Percent(dec!(0.755)),
                    Cell::Date(NaiveDate::from_ymd_opt(2025, 1, 1).unwrap()),
                    Cell::Empty,
                ],
                vec![
                    Cell::Int(2),
                    text("=HYPERLINK(\"http://x\")"),
                    Cell::Code("150102198001011234".to_owned()),
                    Cell::Code("013812345678".to_owned()),
                    Cell::Money(dec!(0.005)),
                    Cell::Percent(dec!(1)),
                    Cell::Empty,
                    text("备注\n两行"),
                ],
            ],
            totals: Some(vec![
                text("合计"),
                Cell::Empty,
                Cell::Empty,
                Cell::Empty,
                Cell::Money(dec!(1234.51)),
            ]),
        }
    }

    #[test]
    fn a_written_workbook_reads_back_with_the_same_texts_codes_as_text_and_money_as_numbers() {
        let bytes = write_workbook(&[ledger()]).unwrap();
        let mut wb = read_back(&bytes);
        assert_eq!(wb.sheet_names(), vec!["参互单位台账".to_owned()]);
        let range = wb.worksheet_range("参互单位台账").unwrap();
        let at = |r: u32, c: u32| range.get_value((r, c)).cloned().unwrap_or(Data::Empty);

        assert_eq!(at(0, 0), Data::String("2025年度参互单位台账".to_owned()));
        for (c, h) in ledger().headers.iter().enumerate() {
            assert_eq!(at(1, c as u32), Data::String(h.clone()));
        }
        assert_eq!(at(2, 0), Data::Float(1.0));
        assert_eq!(at(2, 1), Data::String("阿卜杜·热合曼".to_owned()));
        assert_eq!(at(2, 2), Data::String("11010519491231002X".to_owned()));
        assert_eq!(at(2, 3), Data::String("6222021234567890128".to_owned()));
        assert_eq!(at(2, 4), Data::Float(1234.5));
        assert_eq!(at(2, 5), Data::Float(0.755));
        assert!(matches!(at(2, 6), Data::DateTime(_)), "{:?}", at(2, 6));
        assert_eq!(at(2, 7), Data::Empty);
        // A formula-looking text stays text; a leading zero survives.
        assert_eq!(
            at(3, 1),
            Data::String("=HYPERLINK(\"http://x\")".to_owned())
        );
        assert_eq!(at(3, 2), Data::String("150102198001011234".to_owned()));
        assert_eq!(at(3, 3), Data::String("013812345678".to_owned()));
        assert_eq!(at(3, 4), Data::Float(0.01), "rounded half away from zero");
        assert_eq!(at(3, 7), Data::String("备注\n两行".to_owned()));
        assert_eq!(at(4, 0), Data::String("合计".to_owned()));
        assert_eq!(at(4, 4), Data::Float(1234.51));
        assert!(wb.worksheet_formula("参互单位台账").unwrap().is_empty());
    }

    #[test]
    fn the_header_and_totals_are_bold_and_money_has_two_decimals() {
        let bytes = write_workbook(&[ledger()]).unwrap();
        let mut wb = read_back(&bytes);
        let styles = wb.worksheet_style("参互单位台账").unwrap();
        let bold = |r: u32, c: u32| {
            styles
                .get((r, c))
                .and_then(|s| s.font.as_ref())
                .is_some_and(|f| f.is_bold())
        };
        assert!(bold(0, 0), "title");
        assert!(bold(1, 0) && bold(1, 7), "header");
        assert!(!bold(2, 1), "data");
        assert!(bold(4, 0) && bold(4, 4), "totals");
        let number_format = |r: u32, c: u32| {
            styles
                .get((r, c))
                .and_then(|s| s.number_format.as_ref())
                .map(|n| n.format_code.clone())
        };
        assert_eq!(number_format(2, 4).as_deref(), Some("#,##0.00"));
        assert_eq!(number_format(2, 5).as_deref(), Some("0.0%"));
        assert_eq!(number_format(2, 2).as_deref(), Some("@"));
    }

    #[test]
    fn sheet_names_are_made_acceptable_to_excel() {
        let named = |name: &str| Sheet {
            name: name.to_owned(),
            headers: vec!["姓名".to_owned()],
            ..Sheet::default()
        };
        let bytes = write_workbook(&[
            named("2025/1月[汇总]:*?\\"),
            named("一二三四五六七八九十一二三四五六七八九十一二三四五六七八九十一二三"),
            named("汇总"),
            named("汇总"),
            named(""),
            named("'引号'"),
        ])
        .unwrap();
        let names = read_back(&bytes).sheet_names();
        assert_eq!(
            names,
            vec![
                "2025_1月_汇总_____".to_owned(),
                "一二三四五六七八九十一二三四五六七八九十一二三四五六七八九十一".to_owned(),
                "汇总".to_owned(),
                "汇总(2)".to_owned(),
                "Sheet5".to_owned(),
                "引号".to_owned(),
            ]
        );
        assert!(names.iter().all(|n| n.chars().count() <= 31));
    }

    #[test]
    fn tenths_are_numbers_shown_with_one_decimal() {
        let sheet = Sheet {
            name: "天数".to_owned(),
            headers: vec!["平均办结天数".to_owned()],
            rows: vec![vec![Cell::Tenths(dec!(7.66))], vec![Cell::Tenths(dec!(12))]],
            ..Sheet::default()
        };
        let bytes = write_workbook(&[sheet]).unwrap();
        let mut wb = read_back(&bytes);
        let range = wb.worksheet_range("天数").unwrap();
        assert_eq!(range.get_value((1, 0)), Some(&Data::Float(7.7)));
        assert_eq!(range.get_value((2, 0)), Some(&Data::Float(12.0)));
        let styles = wb.worksheet_style("天数").unwrap();
        let format = styles
            .get((1, 0))
            .and_then(|s| s.number_format.as_ref())
            .map(|n| n.format_code.clone());
        assert_eq!(format.as_deref(), Some("0.0"));
    }

    #[test]
    fn a_workbook_needs_a_sheet() {
        assert!(matches!(write_workbook(&[]), Err(WorkbookError::NoSheets)));
    }

    #[test]
    fn a_sheet_without_title_or_rows_still_has_its_header() {
        let sheet = Sheet {
            name: "空".to_owned(),
            headers: vec!["姓名".to_owned(), "身份证号码".to_owned()],
            ..Sheet::default()
        };
        let bytes = write_workbook(&[sheet]).unwrap();
        let range = read_back(&bytes).worksheet_range("空").unwrap();
        assert_eq!(
            range.get_value((0, 1)),
            Some(&Data::String("身份证号码".to_owned()))
        );
        assert_eq!(range.height(), 1);
    }

    #[test]
    fn huge_integers_are_kept_exactly_as_text() {
        let sheet = Sheet {
            name: "数".to_owned(),
            headers: vec!["数".to_owned()],
            rows: vec![vec![Cell::Int(9_007_199_254_740_993)], vec![Cell::Int(-42)]],
            ..Sheet::default()
        };
        let bytes = write_workbook(&[sheet]).unwrap();
        let range = read_back(&bytes).worksheet_range("数").unwrap();
        assert_eq!(
            range.get_value((1, 0)),
            Some(&Data::String("9007199254740993".to_owned()))
        );
        assert_eq!(range.get_value((2, 0)), Some(&Data::Float(-42.0)));
    }

    #[test]
    fn chinese_text_gets_a_wider_column_than_the_same_number_of_latin_letters() {
        assert_eq!(text_width("张三丰"), 6.0);
        assert_eq!(text_width("abc"), 3.0);
        assert_eq!(text_width("第一行\nab"), 6.0);
        let widths = column_widths(&ledger(), 8);
        assert!(widths[2] >= 20.0, "{widths:?}");
        assert!(widths.iter().all(|w| (MIN_WIDTH..=MAX_WIDTH).contains(w)));
    }

    #[test]
    fn the_template_has_the_standard_headers_below_a_note_row_and_text_formatted_id_column() {
        let bytes = roster_template().unwrap();
        let mut wb = read_back(&bytes);
        let range = wb.worksheet_range("参互名单").unwrap();
        let headers: Vec<String> = (0..10)
            .map(|c| {
                range
                    .get_value((2, c))
                    .map(ToString::to_string)
                    .unwrap_or_default()
            })
            .collect();
        assert_eq!(
            headers,
            [
                "序号",
                "姓名",
                "身份证号码",
                "手机号码",
                "工作单位",
                "部门",
                "工号",
                "是否参加医保",
                "在职/退休",
                "备注"
            ]
        );
        assert!(
            range
                .get_value((1, 2))
                .unwrap()
                .to_string()
                .contains("文本")
        );
    }
}

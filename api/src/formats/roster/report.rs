//! The problem report as the clerk's own workbook: the uploaded roster sheet copied cell by
//! cell, a 问题 column added after the last column with every problem of the row, the cells at
//! fault highlighted, and the problems of the batch as a whole on a second sheet. The clerk
//! fixes it in Excel and uploads it again: the reader ignores the 问题 column.

use std::collections::{BTreeMap, HashMap, HashSet};

use rust_xlsxwriter::{Format, FormatBorder, Workbook, XlsxError};

use super::read::{CopiedCell, PlacedCell, read_sheet_cells};
use super::{MAX_ROWS, RosterError};
use crate::formats::workbook::WorkbookError;

/// The header of the added column.
pub const PROBLEM_COLUMN: &str = "问题";

/// One problem of one row, as reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowProblem {
    /// The Excel row number, 1-based.
    pub row: u32,
    /// The column's header as in the file.
    pub column: String,
    pub message_zh: String,
}

/// Why the problem workbook could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ProblemWorkbookError {
    /// The stored upload cannot be read again (it was read once, so hardly ever).
    #[error(transparent)]
    Roster(#[from] RosterError),
    #[error(transparent)]
    Workbook(#[from] WorkbookError),
}

/// The roster `bytes` with its problems written in: see the module doc. `batch` holds the
/// messages of the batch's own problems (participation, head-count).
pub fn problem_workbook(
    bytes: &[u8],
    problems: &[RowProblem],
    batch: &[String],
) -> Result<Vec<u8>, ProblemWorkbookError> {
    let (sheet, cells) = read_sheet_cells(bytes, MAX_ROWS)?;
    let squeeze = |s: &str| s.split_whitespace().collect::<String>();
    let header_columns: HashMap<String, u32> = cells
        .iter()
        .filter(|(r, _, _)| *r == sheet.header_index)
        .filter_map(|(_, c, cell)| match cell {
            CopiedCell::Text(t) => Some((squeeze(t), *c)),
            _ => None,
        })
        .collect();
    let last_column = cells.iter().map(|(_, c, _)| *c).max().unwrap_or(0);
    let problem_column = last_column + 1;

    // Per row: the messages, and the columns to highlight.
    let mut by_row: BTreeMap<u32, (Vec<String>, Vec<u32>)> = BTreeMap::new();
    for p in problems {
        let entry = by_row.entry(p.row.saturating_sub(1)).or_default();
        entry.0.push(format!("{}：{}", p.column, p.message_zh));
        if let Some(c) = header_columns.get(&squeeze(&p.column)) {
            entry.1.push(*c);
        }
    }
    write(
        &sheet.name,
        sheet.header_index,
        &cells,
        problem_column,
        &by_row,
        batch,
    )
    .map_err(|e| ProblemWorkbookError::Workbook(e.into()))
}

fn write(
    name: &str,
    header_index: u32,
    cells: &[PlacedCell],
    problem_column: u32,
    by_row: &BTreeMap<u32, (Vec<String>, Vec<u32>)>,
    batch: &[String],
) -> Result<Vec<u8>, XlsxError> {
    let bad = Format::new()
        .set_background_color(0x00FF_C7CE)
        .set_font_color(0x009C_0006)
        .set_border(FormatBorder::Thin);
    let message = Format::new().set_font_color(0x009C_0006).set_text_wrap();
    let header = Format::new().set_bold().set_background_color(0x00FF_C7CE);
    let col = |c: u32| u16::try_from(c).unwrap_or(u16::MAX);

    let mut workbook = Workbook::new();
    let ws = workbook.add_worksheet();
    ws.set_name(name)?;
    for (r, c, cell) in cells {
        let highlighted = by_row.get(r).is_some_and(|(_, cols)| cols.contains(c));
        match (cell, highlighted) {
            (CopiedCell::Text(t), false) => ws.write_string(*r, col(*c), t)?,
            (CopiedCell::Text(t), true) => ws.write_string_with_format(*r, col(*c), t, &bad)?,
            (CopiedCell::Number(n), false) => ws.write_number(*r, col(*c), *n)?,
            (CopiedCell::Number(n), true) => ws.write_number_with_format(*r, col(*c), *n, &bad)?,
            (CopiedCell::Bool(b), false) => ws.write_boolean(*r, col(*c), *b)?,
            (CopiedCell::Bool(b), true) => ws.write_boolean_with_format(*r, col(*c), *b, &bad)?,
        };
    }
    // A missing cell at fault (an empty required cell) is highlighted too.
    let present: HashSet<(u32, u32)> = cells.iter().map(|(r, c, _)| (*r, *c)).collect();
    for (r, (_, cols)) in by_row {
        for c in cols {
            if !present.contains(&(*r, *c)) {
                ws.write_blank(*r, col(*c), &bad)?;
            }
        }
    }
    let pc = col(problem_column);
    ws.write_string_with_format(header_index, pc, PROBLEM_COLUMN, &header)?;
    ws.set_column_width(pc, 50)?;
    for (r, (messages, _)) in by_row {
        ws.write_string_with_format(*r, pc, messages.join("；"), &message)?;
    }
    if !batch.is_empty() {
        let ws = workbook.add_worksheet();
        ws.set_name("整体问题")?;
        ws.write_string_with_format(0, 0, "整体问题（修改名单或申报人数后重新上传）", &header)?;
        ws.set_column_width(0, 80)?;
        for (r, text) in (1u32..).zip(batch) {
            ws.write_string_with_format(r, 0, text, &message)?;
        }
    }
    workbook.save_to_buffer()
}

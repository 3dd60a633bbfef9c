//! Reading a union's roster (参互名单) from an `.xlsx` file, as unions keep them.
//!
//! Headers are in Chinese, in any order, under any of their usual names; a title
//! row or two may sit above the header row, which is searched within the first ten non-blank
//! rows. Columns the reader has no field for are kept as the clerk named them (see [`kept`] for
//! what is cut or masked). Every row is checked — ID number (GB 11643), name, phone,
//! in-service or retired, medical insurance, the scheme's age and sex rules, duplicates in the
//! file — and either every row is good and all are returned, or the whole file is refused with
//! a row-by-row report: nothing is half-imported.
//!
//! Cell values are normalised before checking: numbers (an ID or phone typed as a number) are
//! printed without decimal point or exponent, full-width digits, a lowercase `x`, `+86`
//! prefixes, non-breaking and zero-width spaces are accepted. Blank rows, pre-numbered rows
//! with neither name nor ID number, and totals or signature lines (`合计`, `制表人：` …) are
//! skipped.

mod check;
pub(crate) mod header;
mod kept;
pub(crate) mod read;
mod report;

pub use report::{PROBLEM_COLUMN, ProblemWorkbookError, RowProblem, problem_workbook};

#[cfg(test)]
mod tests;

use chrono::NaiveDate;
use serde::Serialize;

use crate::domain::{IdNumber, PersonName, PhoneNumber};
use crate::engine::SchemeDefinition;
use crate::engine::scheme::RosterColumn;

use check::{Problems, RowKind, Seen};
use header::FieldSet;

/// Most data rows one roster may hold.
pub const MAX_ROWS: u32 = 50_000;

/// Most problems listed in one report (all are still counted).
pub const MAX_PROBLEMS: usize = 1000;

/// How often, in rows, `progress` is called.
const PROGRESS_EVERY: u32 = 500;

/// The rules a roster is checked against.
#[derive(Debug, Clone, Copy)]
pub struct RosterRules<'a> {
    /// The scheme version being enrolled in (its `eligibility`).
    pub scheme: &'a SchemeDefinition,
    /// Date ages are counted on (coverage start).
    pub age_on: NaiveDate,
}

/// One checked person of the roster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RosterRow {
    /// The Excel row number, 1-based, as the clerk sees it.
    pub row: u32,
    /// 姓名, normalised.
    pub name: PersonName,
    /// 身份证号码, normalised (18 characters, uppercase `X`).
    pub id_number: IdNumber,
    /// 手机号码, when given (11 digits, no country code).
    pub phone: Option<PhoneNumber>,
    /// 工作单位, when given (at most 200 characters).
    pub employer: Option<String>,
    /// 部门, when given (at most 200 characters).
    pub department: Option<String>,
    /// 工号, when given (at most 200 characters).
    pub employee_number: Option<String>,
    /// 是否参加医保: `None` when left empty (unknown).
    pub insured: Option<bool>,
    /// 在职/退休: `true` for retired; an empty cell means in service.
    pub retired: bool,
    /// 备注, when given (at most 500 characters, personal numbers masked).
    pub note: Option<String>,
    /// Every other column with a header and a value on this row: `(header, text)` in file
    /// order (at most 500 characters each, personal numbers masked).
    pub extra: Vec<(String, String)>,
}

/// One problem in one cell of the roster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RosterProblem {
    /// The Excel row number, 1-based.
    pub row: u32,
    /// The column's header as in the file (or the canonical header when missing).
    pub column: String,
    /// Stable snake_case code, e.g. `id_number_checksum`, `age_out_of_range`.
    pub code: &'static str,
    /// What to fix, in Chinese, for the clerk.
    pub message_zh: String,
}

/// Why a roster was refused. The HTTP edge shows [`RosterError::message_zh`] and, for
/// [`RosterError::Invalid`], the problems (each [`RosterProblem`] serialises to JSON).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RosterError {
    /// Not an xlsx / unreadable / no sheet. The text is a Chinese message for the clerk.
    #[error("roster unreadable: {0}")]
    Unreadable(String),
    /// Header row not found or required column missing: which ones (standard headers).
    #[error("roster columns missing: {}", .0.join(", "))]
    MissingColumns(Vec<String>),
    /// Row-level problems: the whole file is refused.
    #[error("roster has problems on {rows} rows")]
    Invalid {
        /// The problems, in row order; at most [`MAX_PROBLEMS`].
        problems: Vec<RosterProblem>,
        /// How many rows have at least one problem (all of them, even past the cap).
        rows: u32,
    },
    /// More data rows than the limit.
    #[error("roster has more than {limit} rows")]
    TooManyRows {
        /// The limit, [`MAX_ROWS`].
        limit: u32,
    },
}

impl RosterError {
    /// Stable snake_case code for API clients and logs.
    pub fn code(&self) -> &'static str {
        match self {
            RosterError::Unreadable(_) => "roster_unreadable",
            RosterError::MissingColumns(_) => "roster_missing_columns",
            RosterError::Invalid { .. } => "roster_invalid",
            RosterError::TooManyRows { .. } => "roster_too_many_rows",
        }
    }

    /// The message to show the clerk, in Chinese.
    pub fn message_zh(&self) -> String {
        match self {
            RosterError::Unreadable(message) => message.clone(),
            RosterError::MissingColumns(columns) => format!(
                "未找到表头行或缺少必需的列：{}（表头须在前10行内，同一行中包含“姓名”和“身份证号码”）",
                columns.join("、")
            ),
            RosterError::Invalid { problems, rows } => {
                if problems.len() >= MAX_PROBLEMS {
                    format!(
                        "名单中有{rows}行存在问题，以下列出前{MAX_PROBLEMS}条，请修改后重新上传，本次未导入任何人员"
                    )
                } else {
                    format!("名单中有{rows}行存在问题，请修改后重新上传，本次未导入任何人员")
                }
            }
            RosterError::TooManyRows { limit } => {
                format!("一次最多上传{limit}人，请拆分成多个文件上传")
            }
        }
    }
}

/// Every person of a roster checked: the good rows, and every problem found on the others.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedRoster {
    /// The rows without a problem, in file order.
    pub rows: Vec<RosterRow>,
    /// Things to look at that do not refuse the row (a landline, a rare character in a name);
    /// at most [`MAX_PROBLEMS`].
    pub warnings: Vec<RosterProblem>,
    /// The problems, in row order; at most [`MAX_PROBLEMS`].
    pub problems: Vec<RosterProblem>,
    /// How many rows have at least one problem (all of them, even past the cap).
    pub rows_with_problems: u32,
    /// How many person rows the file holds, good or not (what the union means to enrol).
    pub people: u32,
    /// The file's own headers of the ID number and the in-service/retired columns (or the
    /// standard ones), for problems found later on these rows.
    pub id_number_column: String,
    pub status_column: String,
}

/// Parses and checks every row; all or nothing. `progress(done, total)` is called every few
/// hundred rows (and once at the end) while the rows are checked.
///
/// Returns the people in file order, or every problem found (up to [`MAX_PROBLEMS`]).
pub fn parse_roster(
    bytes: &[u8],
    rules: &RosterRules,
    progress: &mut dyn FnMut(u32, u32),
) -> Result<Vec<RosterRow>, RosterError> {
    parse_roster_limited(bytes, rules, progress, MAX_ROWS)
}

/// Reads and checks every row, keeping the good rows beside the problems of the others, so
/// that checks needing the database or the whole batch can run on the same file in the same
/// pass. Errors only when the file itself cannot be read as a roster.
pub fn check_roster(
    bytes: &[u8],
    rules: &RosterRules,
    progress: &mut dyn FnMut(u32, u32),
) -> Result<CheckedRoster, RosterError> {
    check_roster_limited(bytes, rules, progress, MAX_ROWS)
}

/// [`parse_roster`] with the row limit as a parameter (tests use a small one).
fn parse_roster_limited(
    bytes: &[u8],
    rules: &RosterRules,
    progress: &mut dyn FnMut(u32, u32),
    limit: u32,
) -> Result<Vec<RosterRow>, RosterError> {
    let checked = check_roster_limited(bytes, rules, progress, limit)?;
    if checked.rows_with_problems > 0 {
        return Err(RosterError::Invalid {
            problems: checked.problems,
            rows: checked.rows_with_problems,
        });
    }
    Ok(checked.rows)
}

fn check_roster_limited(
    bytes: &[u8],
    rules: &RosterRules,
    progress: &mut dyn FnMut(u32, u32),
    limit: u32,
) -> Result<CheckedRoster, RosterError> {
    let sheet = read::read_roster_sheet(bytes, limit)?;
    let missing: Vec<String> = [
        (header::Field::Phone, RosterColumn::Phone),
        (header::Field::Insured, RosterColumn::Insured),
        (header::Field::Status, RosterColumn::Status),
        (header::Field::Employer, RosterColumn::Employer),
    ]
    .into_iter()
    .filter(|(field, column)| {
        rules.scheme.enrolment.roster.requires(*column) && sheet.columns.column(*field).is_none()
    })
    .map(|(field, _)| field.canonical().to_owned())
    .collect();
    if !missing.is_empty() {
        return Err(RosterError::MissingColumns(missing));
    }
    let people: Vec<&read::RawRow> = sheet
        .rows
        .iter()
        .filter(|r| check::classify(r, &sheet.columns) == RowKind::Person)
        .collect();
    let total = u32::try_from(people.len()).unwrap_or(u32::MAX);
    if total > limit {
        return Err(RosterError::TooManyRows { limit });
    }

    let mut problems = Problems::new(MAX_PROBLEMS);
    let mut warnings = Problems::new(MAX_PROBLEMS);
    for header in &sheet.columns.not_kept {
        warnings.push(
            sheet.header_index.saturating_add(1),
            header,
            "column_not_kept",
            format!(
                "名单的其他列最多保留{}列，“{header}”列未保留",
                header::MAX_EXTRA_COLUMNS
            ),
        );
    }
    let mut seen = Seen::default();
    let mut rows = Vec::with_capacity(people.len());
    for (done, raw) in (1u32..).zip(people) {
        if let Some(row) = check::check_row(
            raw,
            &sheet.columns,
            rules,
            &mut seen,
            &mut problems,
            &mut warnings,
        ) {
            rows.push(row);
        }
        if done % PROGRESS_EVERY == 0 && done != total {
            progress(done, total);
        }
    }
    progress(total, total);

    Ok(CheckedRoster {
        rows,
        warnings: warnings.list,
        problems: problems.list,
        rows_with_problems: problems.rows,
        people: total,
        id_number_column: sheet.columns.header(header::Field::IdNumber).to_owned(),
        status_column: sheet.columns.header(header::Field::Status).to_owned(),
    })
}

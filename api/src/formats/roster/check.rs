//! Checking one row of a roster against the value rules and the scheme's eligibility rules.

use std::collections::HashMap;

use chrono::{Datelike, NaiveDate};

use crate::domain::{IdNumber, IdNumberError, PersonName, PhoneNumber, Sex};
use crate::engine::scheme::RosterColumn;

use super::header::{Columns, Field};
use super::read::{RawCell, RawRow};
use super::{RosterProblem, RosterRow, RosterRules, kept};

/// Words that open a totals, signature or remark line below the data (`合计`, `制表人：`,
/// `注：` …). Such a line, when it has no ID number, is not a person and is skipped.
const FOOTER_MARKERS: &[&str] = &[
    "合计",
    "总计",
    "小计",
    "共计",
    "总人数",
    "人数合计",
    "制表",
    "填表",
    "填报",
    "审核",
    "负责人",
    "单位负责人",
    "经办人",
    "联系人",
    "注:",
    "注：",
    "说明",
    "备注:",
    "备注：",
    "盖章",
    "单位盖章",
    "工会盖章",
];

/// How a row below the header is treated.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum RowKind {
    /// A person to check.
    Person,
    /// A totals or signature line, or a line with neither a name nor an ID number (a
    /// pre-numbered template row, a department sub-heading): skipped, not an error.
    Skipped,
}

/// Decides whether a row is a person.
pub(super) fn classify(row: &RawRow, columns: &Columns) -> RowKind {
    let name = row.cell(columns.column(Field::Name));
    let id = row.cell(columns.column(Field::IdNumber));
    if id.is_none() {
        if name.is_none() {
            return RowKind::Skipped;
        }
        let first: String = row.lead.chars().filter(|c| !c.is_whitespace()).collect();
        if FOOTER_MARKERS.iter().any(|m| first.starts_with(m)) {
            return RowKind::Skipped;
        }
    }
    RowKind::Person
}

/// Collects problems: keeps the first `cap`, counts them all and the rows they are on.
#[derive(Debug)]
pub(super) struct Problems {
    cap: usize,
    pub(super) list: Vec<RosterProblem>,
    pub(super) total: u32,
    pub(super) rows: u32,
    last_row: Option<u32>,
}

impl Problems {
    pub(super) fn new(cap: usize) -> Problems {
        Problems {
            cap,
            list: Vec::new(),
            total: 0,
            rows: 0,
            last_row: None,
        }
    }

    pub(super) fn push(&mut self, row: u32, column: &str, code: &'static str, message_zh: String) {
        self.total = self.total.saturating_add(1);
        if self.last_row != Some(row) {
            self.rows = self.rows.saturating_add(1);
            self.last_row = Some(row);
        }
        if self.list.len() < self.cap {
            self.list.push(RosterProblem {
                row,
                column: column.to_owned(),
                code,
                message_zh,
            });
        }
    }
}

/// State carried from row to row: the ID numbers already seen, by their first row.
#[derive(Debug, Default)]
pub(super) struct Seen {
    first_row: HashMap<String, u32>,
}

/// Checks one person row; returns the row when it has no problem.
pub(super) fn check_row(
    raw: &RawRow,
    columns: &Columns,
    rules: &RosterRules<'_>,
    seen: &mut Seen,
    problems: &mut Problems,
    warnings: &mut Problems,
) -> Option<RosterRow> {
    let row = raw.index.saturating_add(1);
    let before = problems.total;
    let text = |field: Field| raw.cell(columns.column(field));
    let mut warn = |field: Field, code: &'static str, message: String| {
        warnings.push(row, columns.header(field), code, message);
    };
    let required = &rules.scheme.enrolment.roster;
    let why = required
        .reason_zh
        .clone()
        .unwrap_or_else(|| "本项目要求填写此项".to_owned());
    // A required cell left empty.
    for (field, column, code) in [
        (Field::Phone, RosterColumn::Phone, "phone_missing"),
        (Field::Insured, RosterColumn::Insured, "insured_missing"),
        (Field::Status, RosterColumn::Status, "status_missing"),
        (Field::Employer, RosterColumn::Employer, "employer_missing"),
    ] {
        if required.requires(column) && text(field).is_none() {
            problems.push(
                row,
                columns.header(field),
                code,
                format!("请填写“{}”：{why}", columns.header(field)),
            );
        }
    }
    let mut report = |field: Field, code: &'static str, message: String| {
        problems.push(row, columns.header(field), code, message);
    };

    // 姓名
    let name = match PersonName::parse(text(Field::Name).map_or("", |c| c.text.as_str())) {
        Ok(name) => {
            if let Some(rare) = name.as_str().chars().find(|c| is_rare_character(*c)) {
                warn(
                    Field::Name,
                    "name_rare_character",
                    format!("姓名含生僻字“{rare}”，请核对与身份证一致（部分系统可能无法显示）"),
                );
            }
            Some(name)
        }
        Err(e) => {
            report(Field::Name, "name_invalid", e.message_zh().to_owned());
            None
        }
    };

    // 身份证号码
    let id_number = match text(Field::IdNumber) {
        None => {
            report(
                Field::IdNumber,
                "id_number_missing",
                "请填写身份证号码".to_owned(),
            );
            None
        }
        Some(cell) => match parse_id(cell) {
            Ok(id) => Some(id),
            Err(IdProblem::AsNumber) => {
                report(
                    Field::IdNumber,
                    "id_number_as_number",
                    "身份证号码被存成了数字，后几位已丢失：请将该列设置为“文本”格式后重新录入"
                        .to_owned(),
                );
                None
            }
            Err(IdProblem::Invalid(e)) => {
                report(Field::IdNumber, e.code(), e.message_zh().to_owned());
                None
            }
        },
    };

    // 手机号码 (optional unless the scheme tells members by SMS). A landline is kept out of the
    // record with a warning where the number is optional; where SMS needs it, it is a problem.
    let phone = match text(Field::Phone) {
        None => None,
        Some(cell) => match PhoneNumber::parse(cell.text.trim_start_matches('\'')) {
            Ok(phone) => Some(phone),
            Err(_) if looks_like_landline(&cell.text) => {
                if required.requires(RosterColumn::Phone) {
                    report(
                        Field::Phone,
                        "phone_not_mobile",
                        "这是固定电话：本项目以短信通知，请填写11位手机号码".to_owned(),
                    );
                } else {
                    warn(
                        Field::Phone,
                        "phone_landline",
                        "这是固定电话，无法接收短信通知；未记录，建议改填手机号码".to_owned(),
                    );
                }
                None
            }
            Err(e) => {
                report(Field::Phone, "phone_invalid", e.message_zh().to_owned());
                None
            }
        },
    };

    // 在职/退休 (empty: in service)
    let retired = match text(Field::Status) {
        None => Some(false),
        Some(cell) => {
            let retired = parse_status(&cell.text);
            if retired.is_none() {
                report(
                    Field::Status,
                    "status_invalid",
                    "“在职/退休”请填写“在职”或“退休”（不填视为在职）".to_owned(),
                );
            }
            retired
        }
    };

    // 是否参加医保 (empty: unknown)
    let insured = match text(Field::Insured) {
        None => None,
        Some(cell) => match parse_yes_no(&cell.text) {
            Some(insured) => Some(insured),
            None => {
                report(
                    Field::Insured,
                    "insured_invalid",
                    "“是否参加医保”请填写“是”或“否”".to_owned(),
                );
                None
            }
        },
    };
    let eligibility = &rules.scheme.eligibility;
    if eligibility.requires_basic_medical_insurance && insured == Some(false) {
        report(
            Field::Insured,
            "not_insured",
            "本项目要求参加职工基本医疗保险，该职工填写为未参加".to_owned(),
        );
    }

    if let Some(id) = &id_number {
        // Eligibility by age and sex, both read from the ID number.
        let age = id.age_on(rules.age_on);
        let on = date_zh(rules.age_on);
        match retired {
            Some(true) => match &eligibility.retirees {
                None => report(
                    Field::Status,
                    "retirees_not_accepted",
                    "本项目不接受退休人员参加".to_owned(),
                ),
                Some(rule) => {
                    if let Some(max) = rule.max_age
                        && age > max
                    {
                        report(
                            Field::IdNumber,
                            "age_out_of_range",
                            format!(
                                "按{on}计算年龄为{age}周岁，退休人员须在{max}周岁以下（含{max}周岁）"
                            ),
                        );
                    }
                }
            },
            Some(false) => {
                if !eligibility.in_service {
                    report(
                        Field::Status,
                        "in_service_not_accepted",
                        "本项目不接受在职职工参加".to_owned(),
                    );
                } else if let Some(rule) =
                    age_rule_zh(eligibility.min_age, eligibility.max_age, age)
                {
                    report(
                        Field::IdNumber,
                        "age_out_of_range",
                        format!("按{on}计算年龄为{age}周岁，{rule}"),
                    );
                }
            }
            // The status itself is already reported.
            None => {}
        }
        // 性别, when the file has it, must be the sex the ID number says.
        if let Some(cell) = text(Field::Sex) {
            match parse_sex(&cell.text) {
                Some(sex) if sex != id.sex() => report(
                    Field::Sex,
                    "sex_mismatch",
                    format!(
                        "性别填写为“{}”，与身份证号码（{}）不符",
                        sex.label_zh(),
                        id.sex().label_zh()
                    ),
                ),
                Some(_) => {}
                None => report(
                    Field::Sex,
                    "sex_invalid",
                    "“性别”请填写“男”或“女”".to_owned(),
                ),
            }
        }
        // A women-only scheme (馨康) also takes spouses of enrolled men; a spouse is a woman
        // too, so the sex check holds for both. What the file cannot tell is whether a woman is
        // an employee or a spouse: she is checked as an employee (same age rule).
        if eligibility.women_only && id.sex() == Sex::Male {
            report(
                Field::IdNumber,
                "women_only",
                "本项目仅限女性参加，该身份证号码为男性".to_owned(),
            );
        }
        // Duplicates inside the file, reported on the later row.
        match seen.first_row.get(id.as_str()) {
            Some(first) => report(
                Field::IdNumber,
                "duplicate_in_file",
                format!("与第{first}行的身份证号码重复"),
            ),
            None => {
                seen.first_row.insert(id.as_str().to_owned(), row);
            }
        }
    }

    if problems.total != before {
        return None;
    }
    // What the roster says beyond enrolment, kept (see `kept`): cut to size with a warning,
    // personal numbers masked in free text.
    let mut keep = |header: &str, value: &str, max: usize, free_text: bool| -> String {
        let (value, masked) = if free_text {
            kept::mask_personal_numbers(value)
        } else {
            (value.to_owned(), false)
        };
        let (value, cut) = kept::cut(&value, max);
        if cut {
            warnings.push(
                row,
                header,
                "text_cut",
                format!("内容超过{max}个字，只保留了前{max}个字"),
            );
        }
        if masked {
            warnings.push(
                row,
                header,
                "personal_number_masked",
                "此列含身份证、手机或银行卡号码，仅保留打码后的内容（号码请填在对应的列）"
                    .to_owned(),
            );
        }
        value
    };
    let mut field = |field: Field, max: usize, free_text: bool| {
        text(field).map(|c| keep(columns.header(field), &c.text, max, free_text))
    };
    let employer = field(Field::Employer, kept::SHORT_TEXT_MAX, false);
    let department = field(Field::Department, kept::SHORT_TEXT_MAX, false);
    let employee_number = field(Field::EmployeeNumber, kept::SHORT_TEXT_MAX, false);
    let note = field(Field::Note, kept::LONG_TEXT_MAX, true);
    let extra = columns
        .extras()
        .iter()
        .filter_map(|(col, header)| {
            let cell = raw.cell(Some(*col))?;
            Some((
                header.clone(),
                keep(header, &cell.text, kept::LONG_TEXT_MAX, true),
            ))
        })
        .collect();
    Some(RosterRow {
        row,
        name: name?,
        id_number: id_number?,
        phone,
        employer,
        department,
        employee_number,
        insured,
        retired: retired?,
        note,
        extra,
    })
}

/// `男`/`女` in the ways clerks write them.
fn parse_sex(text: &str) -> Option<Sex> {
    match text.trim() {
        "男" | "男性" | "M" | "m" => Some(Sex::Male),
        "女" | "女性" | "F" | "f" => Some(Sex::Female),
        _ => None,
    }
}

/// A fixed-line number (`0471-6281234`, `6281234`, `(0471)6281234`): digits only after
/// separators, 7–8 local digits, optionally after a 3–4 digit area code starting with 0.
fn looks_like_landline(text: &str) -> bool {
    let digits: String = text
        .chars()
        .filter(|c| !matches!(c, '-' | '－' | ' ' | '(' | ')' | '（' | '）'))
        .collect();
    if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
        return false;
    }
    match digits.len() {
        7 | 8 => !digits.starts_with('0') && !digits.starts_with('1'),
        10..=12 => digits.starts_with('0'),
        _ => false,
    }
}

/// A character outside the common CJK block (extension A and beyond, compatibility
/// ideographs): real in names, but many systems and fonts cannot show it.
fn is_rare_character(c: char) -> bool {
    matches!(c,
        '\u{3400}'..='\u{4DBF}'
        | '\u{F900}'..='\u{FAFF}'
        | '\u{20000}'..='\u{3134F}')
}

enum IdProblem {
    /// A number cell whose digits do not make a valid ID: Excel kept 15 significant digits.
    AsNumber,
    Invalid(IdNumberError),
}

/// Parses an ID number cell. A cell stored as a number is accepted only when its digits still
/// make a valid ID number and do not end in `000`: Excel keeps 15 significant digits, so an
/// 18-digit number typed into a general-format cell comes back with its last three digits
/// zeroed, and such a number passes the check character by chance about once in eleven.
fn parse_id(cell: &RawCell) -> Result<IdNumber, IdProblem> {
    let text = cell.text.trim_start_matches('\'');
    let parsed = IdNumber::parse(text);
    if cell.numeric {
        let digits = text.chars().filter(char::is_ascii_digit).count();
        let looks_truncated = digits >= 16 && text.ends_with("000");
        return match parsed {
            Ok(id) if !looks_truncated => Ok(id),
            Ok(_) => Err(IdProblem::AsNumber),
            Err(_) if digits >= 16 => Err(IdProblem::AsNumber),
            Err(e) => Err(IdProblem::Invalid(e)),
        };
    }
    parsed.map_err(IdProblem::Invalid)
}

/// The age rule for active members in words, when `age` breaks it (bounds inclusive, Civil
/// Code art. 1259: 以上/以下 include the number).
fn age_rule_zh(min: Option<u32>, max: Option<u32>, age: u32) -> Option<String> {
    let below = min.is_some_and(|m| age < m);
    let above = max.is_some_and(|m| age > m);
    if !below && !above {
        return None;
    }
    Some(match (min, max) {
        (Some(lo), Some(hi)) => format!("在职职工须在{lo}至{hi}周岁之间（含{lo}和{hi}周岁）"),
        (Some(lo), None) => format!("在职职工须年满{lo}周岁"),
        (None, Some(hi)) => format!("在职职工须在{hi}周岁以下（含{hi}周岁）"),
        (None, None) => return None,
    })
}

fn date_zh(date: NaiveDate) -> String {
    format!("{}年{}月{}日", date.year(), date.month(), date.day())
}

/// `Some(true)` for retired, `Some(false)` for in service, `None` when not understood.
fn parse_status(text: &str) -> Option<bool> {
    let t: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    const ACTIVE: &[&str] = &[
        "在职",
        "在岗",
        "在职职工",
        "在职人员",
        "在岗职工",
        "在岗人员",
        "在编",
        "职工",
    ];
    const RETIRED: &[&str] = &[
        "退休",
        "离退休",
        "退休人员",
        "退休职工",
        "已退休",
        "离休",
        "离休人员",
        "离退休人员",
        "退休返聘",
    ];
    if ACTIVE.contains(&t.as_str()) {
        Some(false)
    } else if RETIRED.contains(&t.as_str()) {
        Some(true)
    } else {
        None
    }
}

/// `是/否` in the ways clerks write it.
fn parse_yes_no(text: &str) -> Option<bool> {
    let t: String = text.chars().filter(|c| !c.is_whitespace()).collect();
    const YES: &[&str] = &[
        "是",
        "Y",
        "y",
        "YES",
        "Yes",
        "yes",
        "√",
        "✓",
        "✔",
        "TRUE",
        "已参加",
        "参加",
        "已参保",
        "参保",
        "有",
        "1",
    ];
    const NO: &[&str] = &[
        "否",
        "N",
        "n",
        "NO",
        "No",
        "no",
        "×",
        "✗",
        "✘",
        "X",
        "x",
        "FALSE",
        "未参加",
        "不参加",
        "未参保",
        "无",
        "没有",
        "0",
    ];
    if YES.contains(&t.as_str()) {
        Some(true)
    } else if NO.contains(&t.as_str()) {
        Some(false)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_words_clerks_use_are_understood() {
        assert_eq!(parse_status("在职"), Some(false));
        assert_eq!(parse_status(" 在岗 "), Some(false));
        assert_eq!(parse_status("离退休"), Some(true));
        assert_eq!(parse_status("退休人员"), Some(true));
        assert_eq!(parse_status("待岗"), None);
    }

    #[test]
    fn yes_and_no_are_understood_in_their_usual_spellings() {
        for yes in ["是", "Y", "√", "已参保", "TRUE"] {
            assert_eq!(parse_yes_no(yes), Some(true), "{yes}");
        }
        for no in ["否", "N", "×", "未参加", "FALSE"] {
            assert_eq!(parse_yes_no(no), Some(false), "{no}");
        }
        assert_eq!(parse_yes_no("不清楚"), None);
    }

    #[test]
    fn the_age_rule_includes_its_bounds() {
        assert_eq!(age_rule_zh(Some(16), Some(60), 60), None);
        assert_eq!(age_rule_zh(Some(16), Some(60), 16), None);
        assert!(age_rule_zh(Some(16), Some(60), 61).is_some());
        assert!(age_rule_zh(Some(16), Some(60), 15).is_some());
        assert!(age_rule_zh(None, Some(60), 61).is_some());
        assert_eq!(age_rule_zh(None, None, 99), None);
    }

    #[test]
    fn landlines_and_rare_characters_are_recognised() {
        for landline in ["0471-6281234", "6281234", "(0471)62812345", "047162812345"] {
            assert!(looks_like_landline(landline), "{landline}");
        }
        for other in ["13812345678", "12345", "abc", ""] {
            assert!(!looks_like_landline(other), "{other}");
        }
        assert!(is_rare_character('㐀'));
        assert!(is_rare_character('𠀀'));
        assert!(!is_rare_character('王'));
        assert_eq!(parse_sex(" 女 "), Some(Sex::Female));
        assert_eq!(parse_sex("未知"), None);
    }
}

//! Reading the medical-insurance bureau's inpatient settlement file (医保住院结算明细), `.xlsx`
//! or CSV (UTF-8 or GBK), as the bureau exports it under the data-sharing agreement.
//!
//! Headers are recognised under their usual names in any order, with the roster reader's
//! machinery ([`crate::formats::roster::header`]): a title row may sit above them, extra
//! columns are ignored. The file is refused as a whole only when it cannot be read or a
//! required column is missing; a row that cannot be read is reported with its row number and
//! the others are kept — every settlement is independent of the others.
//!
//! Nothing here knows members or schemes: the rows come out normalised (ID numbers trimmed with
//! an upper-case `X`, dates, amounts in fen), and matching is the service's.

use chrono::{Duration, NaiveDate};

use crate::domain::{IdNumber, Money};
use crate::formats::roster::RosterError;
use crate::formats::roster::header::{Columns, FieldSet};
use crate::formats::roster::read::{RawRow, Sheet, read_csv, read_sheet};

/// Most data rows one settlement file may hold.
pub const MAX_ROWS: u32 = 500_000;

/// How often, in rows, `progress` is called.
const PROGRESS_EVERY: u32 = 2_000;

/// Longest free-text value kept (hospital, diagnosis name, settlement ID …), in characters.
const MAX_TEXT_CHARS: usize = 100;

/// A column of the settlement file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Field {
    /// 证件号码
    IdNumber,
    /// 姓名
    Name,
    /// 结算ID
    SettlementId,
    /// 定点医疗机构名称
    Hospital,
    /// 入院日期
    AdmittedOn,
    /// 出院日期
    DischargedOn,
    /// 住院天数
    BilledDays,
    /// 医疗费用总额
    Total,
    /// 统筹基金支付
    Fund,
    /// 大病保险支付
    CriticalIllness,
    /// 起付标准
    Deductible,
    /// 政策范围内个人自付
    EligibleSelfPay,
    /// 个人自费
    SelfFunded,
    /// 结算日期
    SettledOn,
    /// 险种类型
    InsuranceType,
    /// 医疗类别
    MedicalCategory,
    /// 主要诊断编码
    DiagnosisCode,
    /// 主要诊断名称
    DiagnosisName,
    /// 离院方式
    DischargeWay,
}

const SETTLEMENT_FIELDS: [Field; 19] = [
    Field::IdNumber,
    Field::Name,
    Field::SettlementId,
    Field::Hospital,
    Field::AdmittedOn,
    Field::DischargedOn,
    Field::BilledDays,
    Field::Total,
    Field::Fund,
    Field::CriticalIllness,
    Field::Deductible,
    Field::EligibleSelfPay,
    Field::SelfFunded,
    Field::SettledOn,
    Field::InsuranceType,
    Field::MedicalCategory,
    Field::DiagnosisCode,
    Field::DiagnosisName,
    Field::DischargeWay,
];

/// Columns without which a row cannot be matched or judged.
const REQUIRED: [Field; 5] = [
    Field::IdNumber,
    Field::SettlementId,
    Field::AdmittedOn,
    Field::DischargedOn,
    Field::Total,
];

impl FieldSet for Field {
    fn all() -> &'static [Field] {
        &SETTLEMENT_FIELDS
    }

    fn header_keys() -> &'static [Field] {
        &[Field::IdNumber, Field::SettlementId]
    }

    fn canonical(self) -> &'static str {
        match self {
            Field::IdNumber => "证件号码",
            Field::Name => "姓名",
            Field::SettlementId => "结算ID",
            Field::Hospital => "定点医疗机构名称",
            Field::AdmittedOn => "入院日期",
            Field::DischargedOn => "出院日期",
            Field::BilledDays => "住院天数",
            Field::Total => "医疗费用总额",
            Field::Fund => "统筹基金支付",
            Field::CriticalIllness => "大病保险支付",
            Field::Deductible => "起付标准",
            Field::EligibleSelfPay => "政策范围内个人自付",
            Field::SelfFunded => "个人自费",
            Field::SettledOn => "结算日期",
            Field::InsuranceType => "险种类型",
            Field::MedicalCategory => "医疗类别",
            Field::DiagnosisCode => "主要诊断编码",
            Field::DiagnosisName => "主要诊断名称",
            Field::DischargeWay => "离院方式",
        }
    }

    fn aliases(self) -> &'static [&'static str] {
        match self {
            Field::IdNumber => &[
                "证件号码",
                "身份证号",
                "身份证号码",
                "公民身份号码",
                "人员证件号码",
                "身份证",
            ],
            Field::Name => &["姓名", "人员姓名", "参保人姓名", "患者姓名"],
            Field::SettlementId => &["结算ID", "结算id", "结算流水号", "结算编号", "结算号"],
            Field::Hospital => &[
                "定点医疗机构名称",
                "医疗机构名称",
                "定点医药机构名称",
                "就诊医院",
                "医院名称",
            ],
            Field::AdmittedOn => &["入院日期", "入院时间"],
            Field::DischargedOn => &["出院日期", "出院时间"],
            Field::BilledDays => &["住院天数", "实际住院天数"],
            Field::Total => &["医疗费用总额", "医疗费总额", "总费用", "费用总额"],
            Field::Fund => &["统筹基金支付", "基本统筹支付", "统筹支付", "基金支付"],
            Field::CriticalIllness => &["大病保险支付", "大额医疗支付", "大病支付"],
            Field::Deductible => &["起付标准", "起付线", "起付标准自付"],
            Field::EligibleSelfPay => &["政策范围内个人自付", "政策内个人自付", "个人自付"],
            Field::SelfFunded => &["个人自费", "全自费", "自费"],
            Field::SettledOn => &["结算日期", "结算时间"],
            Field::InsuranceType => &["险种类型", "险种"],
            Field::MedicalCategory => &["医疗类别", "医疗类型"],
            Field::DiagnosisCode => &[
                "主要诊断编码",
                "主诊断编码",
                "诊断编码",
                "主要诊断编码(ICD-10)",
                "ICD-10",
            ],
            Field::DiagnosisName => &["主要诊断名称", "主诊断名称", "诊断名称", "主要诊断"],
            Field::DischargeWay => &["离院方式", "出院方式", "离院方式名称"],
        }
    }
}

/// One settlement of the file, normalised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettlementRow {
    /// The file's row number, 1-based, as Excel (or a text editor) shows it.
    pub row: u32,
    /// 证件号码: 18 characters, upper-case `X`.
    pub id_number: IdNumber,
    /// 姓名, as written (only ever shown back in the import report).
    pub name: Option<String>,
    /// 结算ID.
    pub settlement_id: String,
    pub hospital: Option<String>,
    pub admitted_on: NaiveDate,
    pub discharged_on: NaiveDate,
    pub billed_days: Option<u32>,
    /// 医疗费用总额, in fen.
    pub total_fen: i64,
    /// 统筹基金支付, in fen.
    pub fund_fen: Option<i64>,
    /// 大病保险支付, in fen.
    pub critical_illness_fen: Option<i64>,
    /// 起付标准, in fen.
    pub deductible_fen: Option<i64>,
    /// 政策范围内个人自付, in fen.
    pub eligible_self_pay_fen: Option<i64>,
    /// 个人自费, in fen.
    pub self_funded_fen: Option<i64>,
    pub settled_on: Option<NaiveDate>,
    /// 险种类型, as written.
    pub insurance_type: Option<String>,
    /// 医疗类别, as written.
    pub medical_category: Option<String>,
    /// ICD-10 code, upper-case, no spaces.
    pub diagnosis_code: Option<String>,
    pub diagnosis_name: Option<String>,
    /// 离院方式, as written (`死亡` or the code `5`: died in hospital).
    pub discharge_way: Option<String>,
}

/// One problem in one cell of the file. Never echoes an ID number.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct RowProblem {
    /// The file's row number, 1-based.
    pub row: u32,
    /// The column's header as in the file.
    pub column: String,
    /// Stable snake_case code.
    pub code: &'static str,
    /// What is wrong, in Chinese.
    pub message_zh: String,
}

/// A settlement file read: the good rows and the problems of the others.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettlementFile {
    /// Rows without a problem, in file order.
    pub rows: Vec<SettlementRow>,
    /// Problems, in row order (every one: the report lists them all).
    pub problems: Vec<RowProblem>,
    /// How many data rows the file holds, good or not.
    pub data_rows: u32,
}

/// Reads a settlement file, `.xlsx` (by its magic bytes) or else CSV. `progress(done, total)`
/// is called every few thousand rows and once at the end.
pub fn read_settlements(
    bytes: &[u8],
    progress: &mut dyn FnMut(u32, u32),
) -> Result<SettlementFile, RosterError> {
    let sheet: Sheet<Field> = if bytes.starts_with(b"PK\x03\x04") {
        read_sheet(bytes, MAX_ROWS)?
    } else if bytes.starts_with(&[0xD0, 0xCF, 0x11, 0xE0]) {
        return Err(RosterError::Unreadable(
            "这是旧版 .xls 文件：请另存为 .xlsx 或 CSV 后上传 / save the .xls as .xlsx or CSV"
                .to_owned(),
        ));
    } else {
        read_csv(bytes, MAX_ROWS)?
    };
    let missing: Vec<String> = REQUIRED
        .iter()
        .filter(|f| sheet.columns.column(**f).is_none())
        .map(|f| f.canonical().to_owned())
        .collect();
    if !missing.is_empty() {
        return Err(RosterError::MissingColumns(missing));
    }
    let data: Vec<&RawRow> = sheet
        .rows
        .iter()
        .filter(|r| is_data_row(r, &sheet.columns))
        .collect();
    let total = u32::try_from(data.len()).unwrap_or(u32::MAX);
    if total > MAX_ROWS {
        return Err(RosterError::TooManyRows { limit: MAX_ROWS });
    }
    let mut rows = Vec::with_capacity(data.len());
    let mut problems = Vec::new();
    for (done, raw) in (1u32..).zip(data) {
        match parse_row(raw, &sheet.columns) {
            Ok(row) => rows.push(row),
            Err(mut found) => problems.append(&mut found),
        }
        if done % PROGRESS_EVERY == 0 && done != total {
            progress(done, total);
        }
    }
    progress(total, total);
    Ok(SettlementFile {
        rows,
        problems,
        data_rows: total,
    })
}

/// A row with neither an ID number nor a settlement ID (a totals or signature line, a blank
/// template row) is not a settlement.
fn is_data_row(row: &RawRow, columns: &Columns<Field>) -> bool {
    row.cell(columns.column(Field::IdNumber)).is_some()
        || row.cell(columns.column(Field::SettlementId)).is_some()
}

fn parse_row(raw: &RawRow, columns: &Columns<Field>) -> Result<SettlementRow, Vec<RowProblem>> {
    let row = raw.index + 1;
    let mut problems = Vec::new();
    let text = |f: Field| raw.cell(columns.column(f)).map(|c| c.text.as_str());
    let mut problem = |f: Field, code: &'static str, message: String| {
        problems.push(RowProblem {
            row,
            column: columns.header(f).to_owned(),
            code,
            message_zh: message,
        });
    };

    let id_number = match text(Field::IdNumber) {
        None => {
            problem(Field::IdNumber, "id_number_missing", "证件号码为空".into());
            None
        }
        Some(t) => match IdNumber::parse(t) {
            Ok(id) => Some(id),
            Err(e) => {
                problem(Field::IdNumber, e.code(), e.message_zh().to_owned());
                None
            }
        },
    };
    let settlement_id = match text(Field::SettlementId) {
        None => {
            problem(
                Field::SettlementId,
                "settlement_id_missing",
                "结算ID为空".into(),
            );
            None
        }
        Some(t) if t.chars().count() > 64 => {
            problem(
                Field::SettlementId,
                "settlement_id_too_long",
                "结算ID超过64个字符".into(),
            );
            None
        }
        Some(t) => Some(t.to_owned()),
    };
    let mut date = |f: Field, required: bool| match text(f) {
        None if required => {
            problem(f, "date_missing", "日期为空".into());
            None
        }
        None => None,
        Some(t) => match parse_date(t) {
            Some(d) => Some(d),
            None => {
                problem(
                    f,
                    "date_invalid",
                    format!("日期“{t}”无法识别，应为 2025-03-01 这样的格式"),
                );
                None
            }
        },
    };
    let admitted_on = date(Field::AdmittedOn, true);
    let discharged_on = date(Field::DischargedOn, true);
    let settled_on = date(Field::SettledOn, false);
    let mut amount = |f: Field, required: bool| match text(f) {
        None if required => {
            problem(f, "amount_missing", "金额为空".into());
            None
        }
        None => None,
        Some(t) => {
            let plain: String = t.chars().filter(|c| *c != ',' && *c != '，').collect();
            match Money::parse(&plain).and_then(|m| m.round_half_up().to_fen()) {
                Ok(fen) => Some(fen),
                Err(e) => {
                    problem(f, e.code(), format!("金额“{t}”：{}", e.message_zh()));
                    None
                }
            }
        }
    };
    let total_fen = amount(Field::Total, true);
    let fund_fen = amount(Field::Fund, false);
    let critical_illness_fen = amount(Field::CriticalIllness, false);
    let deductible_fen = amount(Field::Deductible, false);
    let eligible_self_pay_fen = amount(Field::EligibleSelfPay, false);
    let self_funded_fen = amount(Field::SelfFunded, false);
    let billed_days = match text(Field::BilledDays) {
        None => None,
        Some(t) => match t.trim_end_matches('天').parse::<u32>() {
            Ok(d) if d <= 3660 => Some(d),
            _ => {
                problem(
                    Field::BilledDays,
                    "days_invalid",
                    format!("住院天数“{t}”应为整数"),
                );
                None
            }
        },
    };
    if let (Some(a), Some(d)) = (admitted_on, discharged_on)
        && d < a
    {
        problem(
            Field::DischargedOn,
            "discharge_before_admission",
            "出院日期早于入院日期".into(),
        );
    }
    let short = |f: Field| text(f).map(|t| t.chars().take(MAX_TEXT_CHARS).collect::<String>());
    match (
        id_number,
        settlement_id,
        admitted_on,
        discharged_on,
        total_fen,
    ) {
        (
            Some(id_number),
            Some(settlement_id),
            Some(admitted_on),
            Some(discharged_on),
            Some(total_fen),
        ) if problems.is_empty() => Ok(SettlementRow {
            row,
            id_number,
            name: short(Field::Name),
            settlement_id,
            hospital: short(Field::Hospital),
            admitted_on,
            discharged_on,
            billed_days,
            total_fen,
            fund_fen,
            critical_illness_fen,
            deductible_fen,
            eligible_self_pay_fen,
            self_funded_fen,
            settled_on,
            insurance_type: short(Field::InsuranceType),
            medical_category: short(Field::MedicalCategory),
            diagnosis_code: short(Field::DiagnosisCode).map(|c| {
                c.chars()
                    .filter(|c| !c.is_whitespace())
                    .collect::<String>()
                    .to_uppercase()
            }),
            diagnosis_name: short(Field::DiagnosisName),
            discharge_way: short(Field::DischargeWay),
        }),
        _ => Err(problems),
    }
}

/// A date as the bureau's systems and Excel write it: `2025-03-01`, `2025/3/1`, `2025.03.01`,
/// `20250301`, `2025年3月1日`, any of these followed by a time, or an Excel serial day number.
pub fn parse_date(text: &str) -> Option<NaiveDate> {
    let text = text.trim();
    let day_part = text.split([' ', 'T']).next().unwrap_or(text);
    if day_part.len() == 8 && day_part.bytes().all(|b| b.is_ascii_digit()) {
        return NaiveDate::parse_from_str(day_part, "%Y%m%d").ok();
    }
    // An Excel serial (days since 1899-12-30), possibly with a fraction of a day.
    if let Ok(serial) = day_part.parse::<f64>()
        && (1.0..=2_958_465.0).contains(&serial)
    {
        let base = NaiveDate::from_ymd_opt(1899, 12, 30)?;
        // Whole days only: truncating the fraction is the intent.
        #[allow(clippy::cast_possible_truncation)]
        return base.checked_add_signed(Duration::days(serial.trunc() as i64));
    }
    let parts: Vec<&str> = day_part
        .split(['-', '/', '.', '年', '月', '日'])
        .filter(|p| !p.is_empty())
        .collect();
    match parts.as_slice() {
        [y, m, d] => NaiveDate::from_ymd_opt(y.parse().ok()?, m.parse().ok()?, d.parse().ok()?),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ID_A: &str = "11010519491231002X";

    fn csv(text: &str) -> SettlementFile {
        read_settlements(text.as_bytes(), &mut |_, _| {}).expect("reads")
    }

    #[test]
    fn dates_in_the_usual_spellings_are_read() {
        let d = NaiveDate::from_ymd_opt(2025, 3, 1).unwrap();
        for t in [
            "2025-03-01",
            "2025/3/1",
            "2025.03.01",
            "20250301",
            "2025年3月1日",
            "2025-03-01 08:30:00",
            "45717",
        ] {
            assert_eq!(parse_date(t), Some(d), "{t}");
        }
        assert_eq!(parse_date("2025-02-30"), None);
        assert_eq!(parse_date("三月一日"), None);
    }

    #[test]
    fn a_csv_with_synonym_headers_and_a_title_line_reads_every_row() {
        let file = csv(&format!(
            "呼和浩特市医保局住院结算明细\n\
             序号,身份证号,姓名,结算流水号,入院日期,出院日期,住院天数,医疗费用总额,起付线,政策范围内个人自付,险种类型,医疗类别,主要诊断编码\n\
             1,{},张三,JS001,2025-03-01,2025-03-11,10,\"12,000.50\",800,3000.25,职工基本医疗保险,住院,c50.9\n\
             合计,,,,,,,12000.50,,,,,\n",
            ID_A.to_lowercase()
        ));
        assert!(file.problems.is_empty(), "{:?}", file.problems);
        assert_eq!(file.data_rows, 1);
        let row = &file.rows[0];
        assert_eq!(row.row, 3);
        assert_eq!(row.id_number.as_str(), ID_A);
        assert_eq!(row.settlement_id, "JS001");
        assert_eq!(row.total_fen, 1_200_050);
        assert_eq!(row.deductible_fen, Some(80_000));
        assert_eq!(row.eligible_self_pay_fen, Some(300_025));
        assert_eq!(row.billed_days, Some(10));
        assert_eq!(row.diagnosis_code.as_deref(), Some("C50.9"));
    }

    #[test]
    fn a_gbk_csv_reads_like_its_utf8_twin() {
        let text = format!(
            "证件号码,结算ID,入院日期,出院日期,医疗费用总额\n{ID_A},JS1,2025-03-01,2025-03-02,100\n"
        );
        let (gbk, _, unmappable) = encoding_rs::GBK.encode(&text);
        assert!(!unmappable);
        let file = read_settlements(&gbk, &mut |_, _| {}).expect("GBK reads");
        assert_eq!(file.rows.len(), 1);
        assert_eq!(file.rows[0].total_fen, 10_000);
    }

    #[test]
    fn bad_rows_are_reported_with_their_row_numbers_and_never_echo_the_id_number() {
        let bad_id = "110105194912310021";
        let file = csv(&format!(
            "证件号码,结算ID,入院日期,出院日期,医疗费用总额\n\
             {bad_id},JS1,2025-03-01,2025-03-02,100\n\
             {ID_A},JS2,2025-03-05,2025-03-02,100\n\
             {ID_A},JS3,someday,2025-03-02,-5\n\
             {ID_A},JS4,2025-03-01,2025-03-02,100\n"
        ));
        assert_eq!(file.rows.len(), 1);
        assert_eq!(file.rows[0].row, 5);
        let rows: Vec<(u32, &str)> = file.problems.iter().map(|p| (p.row, p.code)).collect();
        assert_eq!(
            rows,
            vec![
                (2, "id_number_checksum"),
                (3, "discharge_before_admission"),
                (4, "date_invalid"),
                (4, "money_negative"),
            ]
        );
        assert!(
            file.problems.iter().all(|p| !p.message_zh.contains(bad_id)),
            "{:?}",
            file.problems
        );
    }

    #[test]
    fn a_file_without_a_required_column_is_refused_naming_it() {
        let err = read_settlements(
            format!("证件号码,结算ID,入院日期,医疗费用总额\n{ID_A},JS1,2025-03-01,1\n").as_bytes(),
            &mut |_, _| {},
        )
        .unwrap_err();
        assert_eq!(err, RosterError::MissingColumns(vec!["出院日期".into()]));
        let err = read_settlements(b"a,b\n1,2\n", &mut |_, _| {}).unwrap_err();
        assert!(matches!(err, RosterError::MissingColumns(_)), "{err:?}");
    }
}

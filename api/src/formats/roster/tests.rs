//! Rosters built with rust_xlsxwriter the way clerks make them, read back and checked.

use std::collections::BTreeSet;

use chrono::NaiveDate;
use rust_xlsxwriter::Workbook;

use super::*;
use crate::engine::seed_schemes;

// ---------------------------------------------------------------- helpers

/// A cell of a test sheet.
#[derive(Clone, Debug)]
enum V {
    /// Text (an empty string writes nothing).
    S(String),
    /// A number cell.
    N(f64),
}

fn s(text: &str) -> V {
    V::S(text.to_owned())
}

/// A valid ID number: region (6 digits), birth date `YYYYMMDD`, sequence (3 digits; the last
/// one odd for a man, even for a woman), and the GB 11643 check character computed here.
fn make_id(region: &str, birth: &str, sequence: &str) -> String {
    let body = format!("{region}{birth}{sequence}");
    let check = crate::domain::IdNumber::check_character(&body).expect("17 digits");
    format!("{body}{check}")
}

/// The n-th distinct valid ID of a woman born in 1985 (n < 365 000).
fn nth_id(n: u32) -> String {
    let day = NaiveDate::from_ymd_opt(1985, 1, 1).unwrap() + chrono::Days::new(u64::from(n % 365));
    let sequence = (n / 365) * 2 % 1000; // even: a woman
    make_id(
        "150102",
        &day.format("%Y%m%d").to_string(),
        &format!("{sequence:03}"),
    )
}

/// Writes sheets `(name, hidden, rows)`; row i of `rows` is Excel row i + 1.
fn xlsx_sheets(sheets: &[(&str, bool, &[Vec<V>])]) -> Vec<u8> {
    let mut wb = Workbook::new();
    for (name, hidden, rows) in sheets {
        let ws = wb.add_worksheet();
        ws.set_name(*name).unwrap();
        if *hidden {
            ws.set_hidden(true);
        }
        for (r, row) in rows.iter().enumerate() {
            for (c, v) in row.iter().enumerate() {
                let (r, c) = (r as u32, c as u16);
                match v {
                    V::S(t) if t.is_empty() => {}
                    V::S(t) => {
                        ws.write_string(r, c, t).unwrap();
                    }
                    V::N(n) => {
                        ws.write_number(r, c, *n).unwrap();
                    }
                }
            }
        }
    }
    wb.save_to_buffer().unwrap()
}

fn xlsx(rows: &[Vec<V>]) -> Vec<u8> {
    xlsx_sheets(&[("Sheet1", false, rows)])
}

const HEADERS: [&str; 8] = [
    "序号",
    "姓名",
    "身份证号码",
    "手机号码",
    "工作单位",
    "是否参加医保",
    "在职/退休",
    "备注",
];

fn header_row() -> Vec<V> {
    HEADERS.iter().map(|h| s(h)).collect()
}

/// A row in the standard column order.
fn person(no: u32, name: &str, id: &str, phone: &str, insured: &str, status: &str) -> Vec<V> {
    vec![
        V::N(f64::from(no)),
        s(name),
        s(id),
        s(phone),
        s("呼和浩特市第一机械厂"),
        s(insured),
        s(status),
        s(""),
    ]
}

fn scheme(code: &str) -> SchemeDefinition {
    seed_schemes()
        .unwrap()
        .into_iter()
        .find(|s| s.code == code)
        .unwrap()
}

fn on() -> NaiveDate {
    NaiveDate::from_ymd_opt(2025, 1, 1).unwrap()
}

fn parse_with(bytes: &[u8], scheme: &SchemeDefinition) -> Result<Vec<RosterRow>, RosterError> {
    let rules = RosterRules {
        scheme,
        age_on: on(),
    };
    parse_roster(bytes, &rules, &mut |_, _| {})
}

/// nm-inpatient-2022: active 16–60, retirees up to 70, basic medical insurance required.
fn parse(bytes: &[u8]) -> Result<Vec<RosterRow>, RosterError> {
    parse_with(bytes, &scheme("nm-inpatient-2022"))
}

fn problems_of(result: Result<Vec<RosterRow>, RosterError>) -> (Vec<RosterProblem>, u32) {
    match result {
        Err(RosterError::Invalid { problems, rows }) => (problems, rows),
        other => panic!("expected Invalid, got {other:?}"),
    }
}

/// `(row, column, code)` of each problem.
fn triples(problems: &[RosterProblem]) -> BTreeSet<(u32, String, &'static str)> {
    problems
        .iter()
        .map(|p| (p.row, p.column.clone(), p.code))
        .collect()
}

fn t(row: u32, column: &str, code: &'static str) -> (u32, String, &'static str) {
    (row, column.to_owned(), code)
}

// ---------------------------------------------------------------- clean rosters

#[test]
fn a_clean_roster_as_unions_keep_it_parses_completely_with_every_value_normalised() {
    let id_a = make_id("150102", "19800101", "123"); // a man, 45
    let id_b = make_id("150102", "19900615", "024"); // a woman, 34
    let id_x = (0..1000)
        .map(|n| make_id("150102", "19750301", &format!("{n:03}")))
        .find(|id| id.ends_with('X'))
        .unwrap();
    let id_c = make_id("150203", "19580701", "011"); // retired man, 66
    let id_d = make_id("150203", "19950202", "046");
    let id_d_full_width: String = id_d
        .chars()
        .map(|c| match c {
            '0'..='9' => char::from_u32(u32::from(c) - u32::from('0') + 0xFF10).unwrap(),
            other => other,
        })
        .collect();

    // Title rows, then a header with reordered columns, odd spellings and an extra column.
    let rows = vec![
        vec![s("内蒙古XX机械厂2025年职工医疗互助参保名单")],
        vec![
            s("填报单位（盖章）：XX机械厂工会"),
            s(""),
            s(""),
            s("填报日期：2024年11月"),
        ],
        vec![
            s("序号"),
            s("工作单位"),
            s("身份证号码\n（18位）*"),
            s(" 职工姓名 "),
            s("性别"),
            s("联系电话"),
            s("是否参保"),
            s("人员类别"),
            s("备注"),
        ],
        // Row 4: ID as text, phone as a number, everything plain.
        vec![
            V::N(1.0),
            s("一车间"),
            s(&id_a),
            s("张三"),
            s("男"),
            V::N(13_812_345_678.0),
            s("是"),
            s("在职"),
            s(""),
        ],
        // Row 5: ID with a lowercase x and spaces, phone with +86, name with non-breaking
        // spaces, status empty (in service), insured as √.
        vec![
            V::N(2.0),
            s("二车间"),
            s(&format!(" {} ", id_x.to_lowercase())),
            s("\u{a0}李四\u{a0}"),
            s("男"),
            s("+86 139 1234 5678"),
            s("√"),
            s(""),
            s("新入职"),
        ],
        // Row 6: full-width digits, phone with 86-, retired, insured empty (unknown).
        vec![
            V::N(3.0),
            s(""),
            s(&id_d_full_width),
            s("王五"),
            s("女"),
            s("86-13712345678"),
            s(""),
            s("在岗"),
            s(""),
        ],
        vec![
            V::N(4.0),
            s("退休办"),
            s(&id_c),
            s("赵六"),
            s("男"),
            s("１３６１２３４５６７８"),
            s("Y"),
            s("退休人员"),
            s(""),
        ],
        vec![
            V::N(5.0),
            s("一车间"),
            s(&id_b),
            s("阿卜杜 · 热合曼"),
            s("女"),
            s(""),
            s("是"),
            s("在职"),
            s(""),
        ],
        // Rows holding only spaces, a pre-numbered empty row, then the totals and signatures.
        vec![s("  "), s(" "), s("\u{a0}"), s("\u{3000}")],
        vec![V::N(6.0)],
        vec![s(""), s(""), s(""), s("")],
        vec![s("合计"), s(""), s(""), s("5人")],
        vec![
            s("制表人：王会计"),
            s(""),
            s(""),
            s(""),
            s(""),
            s("联系电话：0471-1234567"),
        ],
    ];
    let roster = parse(&xlsx(&rows)).unwrap();

    assert_eq!(roster.len(), 5);
    let r = &roster[0];
    assert_eq!(r.row, 4);
    assert_eq!(r.name.as_str(), "张三");
    assert_eq!(r.id_number.as_str(), id_a);
    assert_eq!(r.phone.as_ref().unwrap().as_str(), "13812345678");
    assert_eq!(r.employer.as_deref(), Some("一车间"));
    assert_eq!(r.insured, Some(true));
    assert!(!r.retired);
    assert_eq!(r.note, None);

    let r = &roster[1];
    assert_eq!(r.row, 5);
    assert_eq!(r.name.as_str(), "李四");
    assert_eq!(r.id_number.as_str(), id_x);
    assert_eq!(r.phone.as_ref().unwrap().as_str(), "13912345678");
    assert_eq!(r.insured, Some(true));
    assert!(!r.retired);
    assert_eq!(r.note.as_deref(), Some("新入职"));

    let r = &roster[2];
    assert_eq!(r.row, 6);
    assert_eq!(r.id_number.as_str(), id_d);
    assert_eq!(r.phone.as_ref().unwrap().as_str(), "13712345678");
    assert_eq!(r.employer, None);
    assert_eq!(r.insured, None);
    assert!(!r.retired);

    let r = &roster[3];
    assert_eq!(r.row, 7);
    assert!(r.retired);
    assert_eq!(r.phone.as_ref().unwrap().as_str(), "13612345678");

    let r = &roster[4];
    assert_eq!(r.row, 8);
    assert_eq!(r.name.as_str(), "阿卜杜·热合曼");
    assert_eq!(r.phone, None);
}

#[test]
fn a_numeric_id_number_that_kept_all_its_digits_is_accepted() {
    // Program-written files can carry an 18-digit number that a double holds exactly.
    let id = (0..1000)
        .map(|n| make_id("150102", "19800101", &format!("{n:03}")))
        .find(|id| {
            !id.ends_with('X') && !id.ends_with("000") && {
                let n: u64 = id.parse().unwrap();
                (n as f64) as u64 == n
            }
        })
        .unwrap();
    let number: u64 = id.parse().unwrap();
    let rows = vec![header_row(), {
        let mut row = person(1, "张三", "", "", "是", "在职");
        row[2] = V::N(number as f64);
        row
    }];
    let roster = parse(&xlsx(&rows)).unwrap();
    assert_eq!(roster[0].id_number.as_str(), id);
}

#[test]
fn the_boundary_ages_are_included_as_the_civil_code_counts_them() {
    // On 2025-01-01: born 1965-01-01 is 60 today (以下 includes 60); born 2009-01-01 is 16.
    let rows = vec![
        header_row(),
        person(
            1,
            "甲",
            &make_id("150102", "19650101", "013"),
            "",
            "是",
            "在职",
        ),
        person(
            2,
            "乙",
            &make_id("150102", "20090101", "013"),
            "",
            "是",
            "在职",
        ),
        person(
            3,
            "丙",
            &make_id("150102", "19540102", "013"),
            "",
            "是",
            "退休",
        ),
    ];
    assert_eq!(parse(&xlsx(&rows)).unwrap().len(), 3);
}

#[test]
fn the_roster_is_found_on_a_later_sheet_when_the_first_holds_instructions() {
    let notes: Vec<Vec<V>> = vec![vec![s("填表说明")], vec![s("1. 身份证号码请设为文本格式")]];
    let roster = vec![
        header_row(),
        person(
            1,
            "张三",
            &make_id("150102", "19800101", "123"),
            "",
            "是",
            "",
        ),
    ];
    let bytes = xlsx_sheets(&[("说明", false, &notes), ("名单", false, &roster)]);
    let rows = parse(&bytes).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].row, 2);
}

#[test]
fn progress_is_reported_up_to_the_total() {
    let mut rows = vec![header_row()];
    for n in 0..1200 {
        rows.push(person(n + 1, "张三", &nth_id(n), "", "是", ""));
    }
    let bytes = xlsx(&rows);
    let scheme = scheme("nm-inpatient-2022");
    let rules = RosterRules {
        scheme: &scheme,
        age_on: on(),
    };
    let mut calls = Vec::new();
    let parsed =
        parse_roster(&bytes, &rules, &mut |done, total| calls.push((done, total))).unwrap();
    assert_eq!(parsed.len(), 1200);
    assert_eq!(calls, vec![(500, 1200), (1000, 1200), (1200, 1200)]);
}

// ---------------------------------------------------------------- problems

#[test]
fn every_kind_of_problem_is_reported_with_its_row_and_column() {
    let ok = |seq: &str| make_id("150102", "19800101", seq);
    let mut bad_check = ok("123");
    bad_check.pop();
    bad_check.push(if ok("123").ends_with('1') { '2' } else { '1' });
    let rows = vec![
        vec![s("XX单位2025年职工医疗互助参保名单")],
        // Header on row 2, columns reordered, with an extra column.
        vec![
            s("序号"),
            s("身份证号"),
            s("姓名*"),
            s("手机"),
            s("民族"),
            s("在职或退休"),
            s("是否参加职工医保"),
        ],
        // 3: name missing
        vec![
            V::N(1.0),
            s(&ok("011")),
            s(""),
            s(""),
            s("汉"),
            s("在职"),
            s("是"),
        ],
        // 4: name with digits
        vec![
            V::N(2.0),
            s(&ok("021")),
            s("张3"),
            s(""),
            s("汉"),
            s("在职"),
            s("是"),
        ],
        // 5: ID missing
        vec![
            V::N(3.0),
            s(""),
            s("李四"),
            s(""),
            s("汉"),
            s("在职"),
            s("是"),
        ],
        // 6: wrong check character
        vec![
            V::N(4.0),
            s(&bad_check),
            s("王五"),
            s(""),
            s("汉"),
            s("在职"),
            s("是"),
        ],
        // 7: 17 characters
        vec![
            V::N(5.0),
            s(&ok("031")[..17]),
            s("赵六"),
            s(""),
            s("汉"),
            s("在职"),
            s("是"),
        ],
        // 8: not a date
        vec![
            V::N(6.0),
            s(&make_id("150102", "19801301", "041")),
            s("钱七"),
            s(""),
            s("汉"),
            s("在职"),
            s("是"),
        ],
        // 9: an 18-digit ID stored as a number by Excel (15 significant digits kept)
        vec![
            V::N(7.0),
            V::N(150_102_198_001_010_000.0),
            s("孙八"),
            s(""),
            s("汉"),
            s("在职"),
            s("是"),
        ],
        // 10: a landline (a warning, not a problem); 11: phone as a 10-digit number
        vec![
            V::N(8.0),
            s(&ok("051")),
            s("周九"),
            s("0471-1234567"),
            s("汉"),
            s("在职"),
            s("是"),
        ],
        vec![
            V::N(9.0),
            s(&ok("061")),
            s("吴十"),
            V::N(1_381_234_567.0),
            s("汉"),
            s("在职"),
            s("是"),
        ],
        // 12: status invalid
        vec![
            V::N(10.0),
            s(&ok("071")),
            s("郑一"),
            s(""),
            s("汉"),
            s("待岗"),
            s("是"),
        ],
        // 13: insured invalid; 14: not insured
        vec![
            V::N(11.0),
            s(&ok("081")),
            s("冯二"),
            s(""),
            s("汉"),
            s("在职"),
            s("不清楚"),
        ],
        vec![
            V::N(12.0),
            s(&ok("091")),
            s("陈三"),
            s(""),
            s("汉"),
            s("在职"),
            s("否"),
        ],
        // 15: active over 60; 16: active under 16; 17: retiree over 70
        vec![
            V::N(13.0),
            s(&make_id("150102", "19640101", "013")),
            s("褚四"),
            s(""),
            s("汉"),
            s("在职"),
            s("是"),
        ],
        vec![
            V::N(14.0),
            s(&make_id("150102", "20090102", "013")),
            s("卫五"),
            s(""),
            s("汉"),
            s("在职"),
            s("是"),
        ],
        vec![
            V::N(15.0),
            s(&make_id("150102", "19540101", "013")),
            s("蒋六"),
            s(""),
            s("汉"),
            s("退休"),
            s("是"),
        ],
        // 18: duplicate of row 3's ID? Row 3 has no name but a valid ID: duplicate of row 4.
        vec![
            V::N(16.0),
            s(&ok("021")),
            s("沈七"),
            s(""),
            s("汉"),
            s("在职"),
            s("是"),
        ],
        // 19: several problems on one row
        vec![
            V::N(17.0),
            s(""),
            s("韩8"),
            s("123"),
            s("汉"),
            s("退"),
            s("?"),
        ],
        // 20: fine
        vec![
            V::N(18.0),
            s(&ok("101")),
            s("杨九"),
            s("13812345678"),
            s("汉"),
            s("在职"),
            s("是"),
        ],
    ];
    let (problems, rows) = problems_of(parse(&xlsx(&rows)));
    let expected: BTreeSet<_> = [
        t(3, "姓名*", "name_invalid"),
        t(4, "姓名*", "name_invalid"),
        t(5, "身份证号", "id_number_missing"),
        t(6, "身份证号", "id_number_checksum"),
        t(7, "身份证号", "id_number_length"),
        t(8, "身份证号", "id_number_birth_date"),
        t(9, "身份证号", "id_number_as_number"),
        // Row 10's landline is a warning where the number is optional (see check_roster).
        t(11, "手机", "phone_invalid"),
        t(12, "在职或退休", "status_invalid"),
        t(13, "是否参加职工医保", "insured_invalid"),
        t(14, "是否参加职工医保", "not_insured"),
        t(15, "身份证号", "age_out_of_range"),
        t(16, "身份证号", "age_out_of_range"),
        t(17, "身份证号", "age_out_of_range"),
        t(18, "身份证号", "duplicate_in_file"),
        t(19, "身份证号", "id_number_missing"),
        t(19, "姓名*", "name_invalid"),
        t(19, "手机", "phone_invalid"),
        t(19, "在职或退休", "status_invalid"),
        t(19, "是否参加职工医保", "insured_invalid"),
    ]
    .into_iter()
    .collect();
    assert_eq!(triples(&problems), expected);
    assert_eq!(
        problems.len(),
        expected.len(),
        "one problem per cell and kind"
    );
    assert_eq!(rows, 16);

    // Problems come in row order, and the messages say what to do.
    assert!(problems.windows(2).all(|w| w[0].row <= w[1].row));
    let message = |row: u32, code: &str| {
        problems
            .iter()
            .find(|p| p.row == row && p.code == code)
            .unwrap()
            .message_zh
            .clone()
    };
    assert_eq!(message(6, "id_number_checksum"), "身份证号码校验位错误");
    assert!(message(9, "id_number_as_number").contains("文本"));
    assert!(
        message(15, "age_out_of_range").contains("61周岁"),
        "{}",
        message(15, "age_out_of_range")
    );
    assert!(message(16, "age_out_of_range").contains("15周岁"));
    assert!(message(17, "age_out_of_range").contains("71周岁"));
    assert!(message(17, "age_out_of_range").contains("70"));
    assert_eq!(message(18, "duplicate_in_file"), "与第4行的身份证号码重复");
}

#[test]
fn a_women_only_scheme_refuses_men_and_retirees() {
    let rows = vec![
        header_row(),
        person(
            1,
            "张三",
            &make_id("150102", "19800101", "013"),
            "",
            "是",
            "在职",
        ),
        person(
            2,
            "李四",
            &make_id("150102", "19800101", "024"),
            "",
            "是",
            "在职",
        ),
        person(
            3,
            "王五",
            &make_id("150102", "19600101", "024"),
            "",
            "是",
            "退休",
        ),
        person(
            4,
            "赵六",
            &make_id("150102", "19600101", "024"),
            "",
            "否",
            "在职",
        ),
    ];
    // Eligibility only: the scheme's required phone column is another test's.
    let mut xinkang = scheme("nm-xinkang-2025");
    xinkang.enrolment.roster = Default::default();
    let (problems, rows) = problems_of(parse_with(&xlsx(&rows), &xinkang));
    let expected: BTreeSet<_> = [
        t(2, "身份证号码", "women_only"),
        t(4, "在职/退休", "retirees_not_accepted"),
        // 65 and active; xinkang does not require basic medical insurance, so 否 is fine.
        t(5, "身份证号码", "age_out_of_range"),
        // Row 5 repeats row 4's ID.
        t(5, "身份证号码", "duplicate_in_file"),
    ]
    .into_iter()
    .collect();
    assert_eq!(triples(&problems), expected);
    assert_eq!(rows, 3);
}

#[test]
fn a_ten_thousand_row_roster_with_twenty_bad_rows_reports_exactly_those_rows() {
    const N: u32 = 10_000;
    let bad: BTreeSet<u32> = (0..20).map(|i| 137 + i * 491).collect(); // data indices
    let mut rows = vec![vec![s("2025年度职工医疗互助参保名单")], header_row()];
    for n in 0..N {
        let mut row = person(
            n + 1,
            "张三",
            &nth_id(n),
            &format!("139{:08}", n),
            "是",
            if n % 10 == 0 { "退休" } else { "在职" },
        );
        if bad.contains(&n) {
            let i = bad.iter().position(|b| *b == n).unwrap();
            match i % 10 {
                0 => row[1] = s(""),
                1 => row[2] = s(&nth_id(n)[..17]),
                2 => row[2] = s(&nth_id(n + 1)), // duplicates the next row's ID: reported there
                3 => row[3] = s("1391234"),
                4 => row[5] = s("否"),
                5 => row[6] = s("临时工"),
                6 => row[2] = s(&make_id("150102", "19500505", "024")),
                // As Excel stores it: 15 significant digits.
                7 => row[2] = V::N(format!("{}000", &nth_id(n)[..15]).parse().unwrap()),
                8 => row[5] = s("也许"),
                _ => row[1] = s("王@"),
            }
        }
        rows.push(row);
    }
    // Case 2 makes the *next* row the duplicate: the expected bad row is n + 1 there.
    let expected_rows: BTreeSet<u32> = bad
        .iter()
        .enumerate()
        .map(|(i, n)| if i % 10 == 2 { n + 1 } else { *n })
        .map(|n| n + 3) // title row, header row, 1-based
        .collect();
    let bytes = xlsx(&rows);

    // Speed is measured in `benches/`, not asserted here.
    let result = parse(&bytes);

    let (problems, rows_with_problems) = problems_of(result);
    let reported: BTreeSet<u32> = problems.iter().map(|p| p.row).collect();
    assert_eq!(reported, expected_rows);
    assert_eq!(rows_with_problems, 20);
}

#[test]
fn the_report_is_capped_but_every_bad_row_is_counted() {
    let mut rows = vec![header_row()];
    for n in 0..1200 {
        // Two problems per row: name and phone.
        rows.push(person(n + 1, "", &nth_id(n), "12", "是", ""));
    }
    let (problems, rows_with_problems) = problems_of(parse(&xlsx(&rows)));
    assert_eq!(problems.len(), MAX_PROBLEMS);
    assert_eq!(rows_with_problems, 1200);
    let err = RosterError::Invalid {
        problems,
        rows: rows_with_problems,
    };
    assert!(err.message_zh().contains("1200行"));
    assert!(err.message_zh().contains("前1000条"));
}

#[test]
fn problems_serialise_to_json_for_the_report() {
    let p = RosterProblem {
        row: 5,
        column: "身份证号码".to_owned(),
        code: "id_number_checksum",
        message_zh: "身份证号码校验位错误".to_owned(),
    };
    let json = serde_json::to_value(&p).unwrap();
    assert_eq!(
        json,
        serde_json::json!({"row": 5, "column": "身份证号码", "code": "id_number_checksum", "message_zh": "身份证号码校验位错误"})
    );
}

// ---------------------------------------------------------------- refused files

#[test]
fn a_file_that_is_not_an_xlsx_is_unreadable() {
    for bytes in [
        &b"name,id\n"[..],
        &b""[..],
        &[0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1][..],
        &b"PK\x03\x04garbage"[..],
    ] {
        let err = parse(bytes).unwrap_err();
        assert!(matches!(err, RosterError::Unreadable(_)), "{err:?}");
        assert_eq!(err.code(), "roster_unreadable");
    }
}

#[test]
fn a_roster_without_an_id_column_names_the_missing_column() {
    let rows = vec![
        vec![s("序号"), s("姓名"), s("手机号码")],
        vec![V::N(1.0), s("张三"), s("13812345678")],
    ];
    assert_eq!(
        parse(&xlsx(&rows)).unwrap_err(),
        RosterError::MissingColumns(vec!["身份证号码".to_owned()])
    );
}

#[test]
fn a_header_below_the_first_ten_rows_is_not_found() {
    let mut rows: Vec<Vec<V>> = (0..10).map(|i| vec![s(&format!("说明第{i}行"))]).collect();
    rows.push(header_row());
    rows.push(person(1, "张三", &nth_id(1), "", "是", ""));
    assert_eq!(
        parse(&xlsx(&rows)).unwrap_err(),
        RosterError::MissingColumns(vec!["姓名".to_owned(), "身份证号码".to_owned()])
    );
}

/// Parses with a small row limit, so the limit paths are tested without 50 000-row files.
fn parse_limited(bytes: &[u8], limit: u32) -> Result<Vec<RosterRow>, RosterError> {
    let scheme = scheme("nm-inpatient-2022");
    let rules = RosterRules {
        scheme: &scheme,
        age_on: on(),
    };
    parse_roster_limited(bytes, &rules, &mut |_, _| {}, limit)
}

fn numbered_rows(count: u32) -> Vec<Vec<V>> {
    let mut rows = vec![header_row()];
    for n in 0..count {
        rows.push(vec![V::N(f64::from(n + 1)), s("张三"), s(&nth_id(n))]);
    }
    rows
}

#[test]
fn the_row_limit_is_fifty_thousand() {
    assert_eq!(MAX_ROWS, 50_000);
}

#[test]
fn a_roster_far_over_the_limit_is_refused_while_it_is_read() {
    // More than the reader's slack of 100 rows past the limit: reading stops early.
    let bytes = xlsx(&numbered_rows(250));
    assert_eq!(
        parse_limited(&bytes, 100).unwrap_err(),
        RosterError::TooManyRows { limit: 100 }
    );
}

#[test]
fn a_roster_just_over_the_limit_is_refused_after_counting_and_one_at_the_limit_is_accepted() {
    let mut rows = numbered_rows(101);
    rows.push(vec![s("合计"), s("101人")]);
    assert_eq!(
        parse_limited(&xlsx(&rows), 100).unwrap_err(),
        RosterError::TooManyRows { limit: 100 }
    );
    let mut rows = numbered_rows(100);
    rows.push(vec![s("合计"), s("100人")]);
    assert_eq!(parse_limited(&xlsx(&rows), 100).unwrap().len(), 100);
}

#[test]
fn a_stray_cell_far_down_the_sheet_costs_nothing() {
    let rows = [header_row(), person(1, "张三", &nth_id(7), "", "是", "")];
    // Write the far cell directly: row 1 048 576, column XFD, a single space.
    let mut wb = Workbook::new();
    let ws = wb.add_worksheet();
    for (r, row) in rows.iter().enumerate() {
        for (c, v) in row.iter().enumerate() {
            match v {
                V::S(t) if !t.is_empty() => {
                    ws.write_string(r as u32, c as u16, t).unwrap();
                }
                V::N(n) => {
                    ws.write_number(r as u32, c as u16, *n).unwrap();
                }
                _ => {}
            }
        }
    }
    ws.write_string(1_048_575, 16_383, " ").unwrap();
    let bytes = wb.save_to_buffer().unwrap();
    let parsed = parse(&bytes).unwrap();
    assert_eq!(parsed.len(), 1);
}

#[test]
fn the_roster_template_parses_as_a_roster_with_zero_rows() {
    let bytes = crate::formats::workbook::roster_template().unwrap();
    assert_eq!(parse(&bytes).unwrap(), Vec::new());
}

#[test]
fn a_filled_in_template_reads_back() {
    use crate::formats::workbook::{Cell, Sheet, write_workbook};
    let id = nth_id(3);
    let sheet = Sheet {
        name: "名单".to_owned(),
        title: Some("2025年参互名单".to_owned()),
        headers: HEADERS.iter().map(|h| (*h).to_owned()).collect(),
        rows: vec![vec![
            Cell::Int(1),
            Cell::Text("李四".to_owned()),
            Cell::Code(id.clone()),
            Cell::Code("13812345678".to_owned()),
            Cell::Text("一车间".to_owned()),
            Cell::Text("是".to_owned()),
            Cell::Text("在职".to_owned()),
            Cell::Empty,
        ]],
        totals: None,
    };
    let rows = parse(&write_workbook(&[sheet]).unwrap()).unwrap();
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0].row, 3);
    assert_eq!(rows[0].id_number.as_str(), id);
}

#[test]
fn refusals_have_stable_codes_and_chinese_messages() {
    let missing = RosterError::MissingColumns(vec!["身份证号码".to_owned()]);
    assert_eq!(missing.code(), "roster_missing_columns");
    assert!(missing.message_zh().contains("身份证号码"));
    let too_many = RosterError::TooManyRows { limit: MAX_ROWS };
    assert_eq!(too_many.code(), "roster_too_many_rows");
    assert!(too_many.message_zh().contains("50000"));
}

// ---------------------------------------------------------------- what the roster says, kept

#[test]
fn workplace_department_employee_number_remarks_and_other_columns_are_kept() {
    let id_a = nth_id(1);
    let id_b = nth_id(2);
    let rows = vec![
        vec![s("2025年参互名单")],
        vec![
            s("序号"),
            s("姓名"),
            s("身份证号码"),
            s("工作单位"),
            s("所在部门"),
            s("员工编号"),
            s("是否参加医保"),
            s("备注"),
            s("民族"),
            s("紧急联系人电话"),
            s("问题"),
            s(""),
        ],
        vec![
            V::N(1.0),
            s("张三"),
            s(&id_a),
            s("包头分公司"),
            s("财务部"),
            V::N(20_190_012.0),
            s("是"),
            s("身份证 110105194912310021 已复印"),
            s("蒙古族"),
            s("138 1234 5678"),
            s("身份证号码：校验位错误"),
            s("无表头的值"),
        ],
        vec![V::N(2.0), s("李四"), s(&id_b)],
    ];
    let roster = parse(&xlsx(&rows)).unwrap();
    let r = &roster[0];
    assert_eq!(r.employer.as_deref(), Some("包头分公司"));
    assert_eq!(r.department.as_deref(), Some("财务部"));
    assert_eq!(r.employee_number.as_deref(), Some("20190012"));
    assert_eq!(r.note.as_deref(), Some("身份证 110***********0021 已复印"));
    // 序号, the 问题 column of a problem workbook and a column without a header are not kept.
    assert_eq!(
        r.extra,
        vec![
            ("民族".to_owned(), "蒙古族".to_owned()),
            ("紧急联系人电话".to_owned(), "138****5678".to_owned()),
        ]
    );
    let r = &roster[1];
    assert_eq!((r.employer.as_ref(), r.department.as_ref()), (None, None));
    assert!(r.extra.is_empty());
}

#[test]
fn masked_numbers_and_cut_texts_are_warnings() {
    let rows = vec![
        vec![
            s("姓名"),
            s("身份证号码"),
            s("是否参加医保"),
            s("工作单位"),
            s("家属"),
        ],
        vec![
            s("张三"),
            s(&nth_id(3)),
            s("是"),
            s(&"长".repeat(250)),
            s("配偶 13812345678"),
        ],
    ];
    let rules = RosterRules {
        scheme: &scheme("nm-inpatient-2022"),
        age_on: on(),
    };
    let checked = check_roster(&xlsx(&rows), &rules, &mut |_, _| {}).unwrap();
    assert_eq!(
        checked.rows[0].employer.as_ref().map(|e| e.chars().count()),
        Some(200)
    );
    let codes: Vec<(&str, &str)> = checked
        .warnings
        .iter()
        .map(|w| (w.column.as_str(), w.code))
        .collect();
    assert_eq!(
        codes,
        vec![("工作单位", "text_cut"), ("家属", "personal_number_masked")]
    );
}

//! What every file exchanged with the bank has in common, whichever way the money moves
//! (monthly deductions from members, payouts of claims to members): serial numbers (流水号) that
//! the bank echoes back, the CSV we hand over, and reading the bank's result file — UTF-8 or
//! GBK, one line per serial with 成功 or 失败 and the bank's reason, closed by `合计,<count>`,
//! and every problem reported with its line so a file is taken whole or not at all.

use std::borrow::Cow;

use crate::domain::Money;
use crate::formats::workbook::{Cell, Sheet, WorkbookError, write_workbook};

/// The serial number (流水号) of the `seq`-th line (1-based) of a batch: `prefix`, six
/// characters of the batch's public id and the sequence. The bank echoes it in its result
/// file, which is how results find their lines.
pub fn serial(prefix: &str, batch_pid: &str, seq: usize) -> String {
    let hex: Vec<char> = batch_pid.chars().filter(char::is_ascii_hexdigit).collect();
    let tag: String = hex[hex.len().saturating_sub(6)..]
        .iter()
        .map(char::to_ascii_uppercase)
        .collect();
    format!("{prefix}{tag}{seq:06}")
}

/// The same file as an `.xlsx` workbook, for banks that take Excel: one sheet, the header, the
/// rows as given (numbers the bank must not round kept as [`Cell::Code`]), and a bold totals
/// row `合计`, `<count> 笔` with the total under the column `amount_column`.
pub fn render_xlsx(
    sheet_name: &str,
    headers: &[&str],
    rows: Vec<Vec<Cell>>,
    amount_column: usize,
    total: Money,
) -> Result<Vec<u8>, WorkbookError> {
    let mut totals: Vec<Cell> = (0..headers.len()).map(|_| Cell::Empty).collect();
    if let Some(first) = totals.get_mut(0) {
        *first = Cell::Text("合计".into());
    }
    if let Some(second) = totals.get_mut(1) {
        *second = Cell::Text(format!("{} 笔", rows.len()));
    }
    if let Some(amount) = totals.get_mut(amount_column) {
        *amount = Cell::Money(total.as_decimal());
    }
    write_workbook(&[Sheet {
        name: sheet_name.to_owned(),
        title: None,
        headers: headers.iter().map(|h| (*h).to_owned()).collect(),
        rows,
        totals: Some(totals),
    }])
}

/// A file for the bank: UTF-8 with a byte-order mark (so Excel opens it), CRLF, the header,
/// the rows, and a control line `合计,<count>,<total>`.
pub fn render_csv(
    headers: &[&str],
    rows: impl IntoIterator<Item = Vec<String>>,
    count: usize,
    total: Money,
) -> Result<Vec<u8>, csv::Error> {
    let mut out = Vec::from("\u{feff}".as_bytes());
    {
        let mut w = csv::WriterBuilder::new()
            .flexible(true)
            .terminator(csv::Terminator::CRLF)
            .from_writer(&mut out);
        w.write_record(headers)?;
        for row in rows {
            w.write_record(row)?;
        }
        w.write_record(["合计".to_owned(), count.to_string(), total.to_string()])?;
        w.flush()?;
    }
    Ok(out)
}

/// A column of a result file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ResultColumn {
    /// 流水号, as we sent it.
    Serial,
    /// 户名: the account holder's name.
    Name,
    /// 金额: yuan with up to two decimals.
    Amount,
    /// 结果: 成功 or 失败.
    Result,
    /// 失败原因: required when the result is 失败.
    Reason,
}

/// What the bank says about one line.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    Succeeded,
    Failed { reason: String },
}

/// One result line of the bank's file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ResultLine {
    /// Line number in the file (1-based).
    pub line: u64,
    pub serial: String,
    /// The account holder's name, when the layout has the column.
    pub name: Option<String>,
    /// The amount, when the layout has the column.
    pub amount: Option<Money>,
    pub outcome: Outcome,
}

/// A problem with one line of a result file (or with the file, when `line` is `None`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct LineProblem {
    pub line: Option<u64>,
    pub serial: Option<String>,
    pub code: &'static str,
    pub message: String,
}

/// A [`LineProblem`].
pub fn problem(
    line: Option<u64>,
    serial: Option<&str>,
    code: &'static str,
    message: impl Into<String>,
) -> LineProblem {
    LineProblem {
        line,
        serial: serial.map(str::to_owned),
        code,
        message: message.into(),
    }
}

/// Longest failure reason kept, in characters.
const MAX_REASON_CHARS: usize = 200;

/// The text of a file from a bank's system or from Excel in China: UTF-8 (with or without a
/// byte-order mark) or GBK (GB18030), as both are common.
pub fn decode_text(bytes: &[u8]) -> Option<Cow<'_, str>> {
    let bytes = bytes.strip_prefix("\u{feff}".as_bytes()).unwrap_or(bytes);
    match std::str::from_utf8(bytes) {
        Ok(text) => Some(text.into()),
        Err(_) => encoding_rs::GB18030.decode_without_bom_handling_and_without_replacement(bytes),
    }
}

/// Reads the bank's result file: an optional header starting `流水号`, one line per serial with
/// the `columns` in order (`结果` is 成功 or 失败; a failure needs its reason), and a last line
/// `合计,<count>`. Every problem is reported with its line; nothing is partially accepted.
pub fn parse_result_file(
    bytes: &[u8],
    columns: &[ResultColumn],
) -> Result<Vec<ResultLine>, Vec<LineProblem>> {
    let Some(text) = decode_text(bytes) else {
        return Err(vec![problem(
            None,
            None,
            "file_encoding",
            "结果文件须为 UTF-8 或 GBK 编码的 CSV / the result file must be UTF-8 or GBK CSV",
        )]);
    };
    // The csv crate miscounts lines after CRLF; with plain LF its line numbers are exact.
    let text = text.replace("\r\n", "\n");
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(false)
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let position = |c: ResultColumn| columns.iter().position(|x| *x == c);
    let mut lines = Vec::new();
    let mut problems = Vec::new();
    let mut declared: Option<(u64, usize)> = None;
    // Detail lines, accepted or not: what the total line must count.
    let mut detail_lines = 0usize;
    let mut first = true;
    for record in reader.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map(|p| p.line());
                problems.push(problem(
                    line,
                    None,
                    "line_unreadable",
                    "该行无法读取 / unreadable line",
                ));
                continue;
            }
        };
        let line = record.position().map_or(0, |p| p.line());
        let field = |i: usize| record.get(i).unwrap_or("").trim();
        if record.iter().all(|f| f.trim().is_empty()) {
            continue;
        }
        if first && field(0) == "流水号" {
            first = false;
            continue;
        }
        first = false;
        if let Some((total_line, _)) = declared {
            problems.push(problem(
                Some(line),
                Some(field(0)).filter(|s| !s.is_empty()),
                "line_after_total",
                format!(
                    "合计行（第 {total_line} 行）之后不应再有内容 / nothing may follow the total line"
                ),
            ));
            continue;
        }
        if field(0) == "合计" {
            match field(1).parse::<usize>() {
                Ok(count) => declared = Some((line, count)),
                Err(_) => {
                    declared = Some((line, usize::MAX));
                    problems.push(problem(
                        Some(line),
                        None,
                        "total_invalid",
                        "合计行的笔数不是数字 / the total line's count is not a number",
                    ));
                }
            }
            continue;
        }
        detail_lines += 1;
        let column = |c: ResultColumn| position(c).map(field);
        match read_line(line, &column) {
            Ok(l) => lines.push(l),
            Err(p) => problems.push(p),
        }
    }
    match declared {
        None => problems.push(problem(
            None,
            None,
            "total_missing",
            "缺少合计行（合计,笔数）/ the total line (合计,<count>) is missing",
        )),
        Some((line, count)) if count != usize::MAX && count != detail_lines => {
            problems.push(problem(
                Some(line),
                None,
                "count_mismatch",
                format!(
                    "合计笔数 {count} 与明细行数 {detail_lines} 不符 / the total says {count} lines, the file has {detail_lines}"
                ),
            ))
        }
        _ => {}
    }
    if problems.is_empty() {
        Ok(lines)
    } else {
        Err(problems)
    }
}

/// One detail line; `column` gives a column's trimmed text (`None` when the layout lacks it).
fn read_line<'a>(
    line: u64,
    column: &dyn Fn(ResultColumn) -> Option<&'a str>,
) -> Result<ResultLine, LineProblem> {
    let serial = column(ResultColumn::Serial).unwrap_or("");
    if serial.is_empty() {
        return Err(problem(
            Some(line),
            None,
            "serial_missing",
            "缺少流水号 / the serial number is missing",
        ));
    }
    let at = |code, message: &str| problem(Some(line), Some(serial), code, message);
    let name = match column(ResultColumn::Name) {
        Some("") => return Err(at("name_missing", "缺少户名 / the account name is missing")),
        other => other.map(str::to_owned),
    };
    let amount = match column(ResultColumn::Amount) {
        None => None,
        Some(text) => Some(Money::parse(text).map_err(|_| {
            at(
                "amount_invalid",
                "金额应为元，最多两位小数 / the amount must be yuan with at most two decimals",
            )
        })?),
    };
    let outcome = match column(ResultColumn::Result).unwrap_or("") {
        "成功" => Outcome::Succeeded,
        "失败" => {
            let reason: String = column(ResultColumn::Reason)
                .unwrap_or("")
                .chars()
                .take(MAX_REASON_CHARS)
                .collect();
            if reason.is_empty() {
                return Err(at(
                    "reason_missing",
                    "失败须写明原因 / a failure needs its reason",
                ));
            }
            Outcome::Failed { reason }
        }
        other => {
            return Err(at(
                "result_invalid",
                &format!(
                    "结果应为“成功”或“失败”，而不是“{other}” / the result must be 成功 or 失败"
                ),
            ));
        }
    };
    Ok(ResultLine {
        line,
        serial: serial.to_owned(),
        name,
        amount,
        outcome,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use ResultColumn::{Amount, Name, Reason, Result as Res, Serial};

    const SHORT: &[ResultColumn] = &[Serial, Res, Reason];
    const FULL: &[ResultColumn] = &[Serial, Name, Amount, Res, Reason];

    fn codes(problems: &[LineProblem]) -> Vec<&'static str> {
        problems.iter().map(|p| p.code).collect()
    }

    #[test]
    fn a_result_file_with_header_bom_and_total_parses() {
        let file = "\u{feff}流水号,结果,失败原因\r\nA1,成功,\r\nA2,失败,余额不足\r\n\r\n合计,2\r\n";
        let lines = parse_result_file(file.as_bytes(), SHORT).unwrap();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0].outcome, Outcome::Succeeded);
        assert_eq!(
            lines[1].outcome,
            Outcome::Failed {
                reason: "余额不足".into()
            }
        );
        assert_eq!(lines[1].line, 3);
        assert_eq!((lines[1].name.clone(), lines[1].amount), (None, None));
    }

    #[test]
    fn a_wrong_count_a_missing_reason_and_a_bad_result_are_each_reported() {
        let file = "A1,成功\nA2,失败,\nA3,不知道\n合计,5\n";
        let problems = parse_result_file(file.as_bytes(), SHORT).unwrap_err();
        assert_eq!(
            codes(&problems),
            ["reason_missing", "result_invalid", "count_mismatch"]
        );
        assert_eq!(problems[0].line, Some(2));
    }

    #[test]
    fn a_file_without_a_total_or_with_lines_after_it_is_refused() {
        let problems = parse_result_file("A1,成功\n".as_bytes(), SHORT).unwrap_err();
        assert_eq!(codes(&problems), ["total_missing"]);
        let problems =
            parse_result_file("A1,成功\n合计,1\nA2,成功\n".as_bytes(), SHORT).unwrap_err();
        assert_eq!(codes(&problems), ["line_after_total"]);
    }

    #[test]
    fn a_gbk_file_reads_like_its_utf8_twin() {
        let text = "A1,张三,12.50,成功\n合计,1\n";
        let (gbk, _, unmappable) = encoding_rs::GBK.encode(text);
        assert!(!unmappable);
        let lines = parse_result_file(&gbk, FULL).expect("GBK parses");
        assert_eq!(lines, parse_result_file(text.as_bytes(), FULL).unwrap());
        assert_eq!(lines[0].name.as_deref(), Some("张三"));
        assert_eq!(lines[0].amount, Some(Money::from_fen(1250)));
    }

    #[test]
    fn a_file_in_neither_utf8_nor_gbk_is_refused_with_a_clear_message() {
        // A lone GBK lead byte at the end cannot be decoded.
        let problems = parse_result_file(&[b'A', b',', 0xB3], SHORT).unwrap_err();
        assert_eq!(codes(&problems), ["file_encoding"]);
    }

    #[test]
    fn names_and_amounts_are_required_where_the_layout_has_them() {
        let file = "A1,,1.00,成功\nA2,李四,1.005,成功\nA3,王五,-1,成功\n合计,3\n";
        let problems = parse_result_file(file.as_bytes(), FULL).unwrap_err();
        assert_eq!(
            codes(&problems),
            ["name_missing", "amount_invalid", "amount_invalid"]
        );
        assert_eq!(problems[1].serial.as_deref(), Some("A2"));
    }

    #[test]
    fn serials_carry_the_prefix_the_batch_and_the_sequence() {
        assert_eq!(
            serial("202111", "01939a3e-7b1c-7d2e-8f00-abcdef123456", 7),
            "202111123456000007"
        );
    }

    #[test]
    fn the_csv_has_a_bom_crlf_and_a_control_total() {
        let rows = vec![
            vec!["1".to_owned(), "S1".to_owned(), "1.00".to_owned()],
            vec!["2".to_owned(), "S2".to_owned(), "2.50".to_owned()],
        ];
        let bytes = render_csv(&["序号", "流水号", "金额"], rows, 2, Money::from_fen(350)).unwrap();
        let text = String::from_utf8(bytes).unwrap();
        assert_eq!(
            text,
            "\u{feff}序号,流水号,金额\r\n1,S1,1.00\r\n2,S2,2.50\r\n合计,2,3.50\r\n"
        );
    }
}

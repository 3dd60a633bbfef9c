//! The bank's payout file of a batch: one line per item, card numbers in full (opened for the
//! association only), as `.xlsx` or CSV with a control total; every download is audited.

use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr};
use serde_json::json;

use super::payout::{PayoutBatch, claim_pids, get, items_of};
use crate::auth::crypto::{PiiKind, PiiVault};
use crate::domain::{BankCardNumber, Money};
use crate::formats::bank_file;
use crate::formats::workbook::{Cell, Sheet, WorkbookError, write_workbook};
use crate::service::audit::{self, Actor};
use crate::service::scope::Scope;

/// Which rendering of the payout file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileFormat {
    /// `.xlsx`: the association's officers work in Excel.
    Xlsx,
    /// CSV, for banks that take CSV.
    Csv,
}

impl FileFormat {
    /// The file name's extension (also what the audit entry records).
    pub fn extension(self) -> &'static str {
        match self {
            Self::Xlsx => "xlsx",
            Self::Csv => "csv",
        }
    }
}

/// A payout file to hand out.
#[derive(Clone, Debug)]
pub struct PayoutFile {
    pub format: FileFormat,
    /// `payout-<created on>-<batch>.<extension>`.
    pub filename: String,
    pub bytes: Vec<u8>,
}

/// Why a payout file was not handed out.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    #[error("no such batch")]
    NotFound,
    /// The file could not be written (a fault of ours, not the caller's).
    #[error(transparent)]
    Render(anyhow::Error),
    #[error(transparent)]
    Db(#[from] DbErr),
}

/// The payout file of a batch inside `scope`, with the download's audit entry.
pub async fn download(
    db: &DatabaseConnection,
    vault: &PiiVault,
    scope: &Scope,
    batch_pid: &str,
    format: FileFormat,
    actor_pid: &str,
    request_id: Option<String>,
) -> Result<PayoutFile, FileError> {
    let batch = get(db, scope, batch_pid)
        .await?
        .ok_or(FileError::NotFound)?;
    let lines = file_lines(db, vault, &batch).await?;
    let bytes = match format {
        FileFormat::Xlsx => render_xlsx(&lines)
            .map_err(|e| FileError::Render(anyhow::Error::new(e).context("payout workbook")))?,
        FileFormat::Csv => render_csv(&lines)
            .map_err(|e| FileError::Render(anyhow::Error::new(e).context("payout CSV")))?,
    };
    let extension = format.extension();
    audit::record(
        db,
        &Actor::Account {
            pid: actor_pid.to_owned(),
        },
        "payout.file_downloaded",
        ("payout_batch", Some(&batch.pid)),
        json!({ "format": extension, "lines": lines.len() }),
        request_id,
    )
    .await?;
    Ok(PayoutFile {
        format,
        filename: format!(
            "payout-{}-{}.{extension}",
            batch.created_at.format("%Y%m%d"),
            batch.pid
        ),
        bytes,
    })
}

/// One line of the bank's payout file, card number in full.
#[derive(Clone, Debug)]
pub struct FileLine {
    pub seq: usize,
    pub serial: String,
    pub payee_name: String,
    pub bank_card: BankCardNumber,
    pub amount: Money,
    /// 摘要: what the payee's statement shows.
    pub memo: String,
}

/// The lines of a batch's payout file, card numbers decrypted (for the association only).
pub async fn file_lines<C: ConnectionTrait>(
    db: &C,
    vault: &PiiVault,
    batch: &PayoutBatch,
) -> Result<Vec<FileLine>, DbErr> {
    let items = items_of(db, batch.id).await?;
    let pids = claim_pids(db, &items).await?;
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            let corrupt = |what: &str| {
                DbErr::Custom(format!("payout item {}: {what} cannot be read", item.id))
            };
            let bank_card = vault
                .open(PiiKind::BankCard, &item.bank_card_cipher)
                .ok()
                .and_then(|plain| BankCardNumber::parse(&plain).ok())
                .ok_or_else(|| corrupt("bank card"))?;
            let claim_pid = pids.get(&item.claim_id).ok_or_else(|| corrupt("claim"))?;
            Ok(FileLine {
                seq: i + 1,
                memo: format!("职工医疗互助补助 {claim_pid}"),
                serial: item.serial,
                payee_name: item.payee_name,
                bank_card,
                amount: Money::from_fen(item.amount_fen),
            })
        })
        .collect()
}

const FILE_HEADERS: [&str; 6] = ["序号", "流水号", "户名", "银行卡号", "金额", "摘要"];

/// The payout file as CSV, for banks that take CSV: UTF-8 with a byte-order mark, columns
/// 序号,流水号,户名,银行卡号,金额,摘要, and a control line `合计,<count>,<total>`.
pub fn render_csv(lines: &[FileLine]) -> Result<Vec<u8>, csv::Error> {
    let rows = lines.iter().map(|l| {
        vec![
            l.seq.to_string(),
            l.serial.clone(),
            l.payee_name.clone(),
            l.bank_card.as_str().to_owned(),
            l.amount.to_string(),
            l.memo.clone(),
        ]
    });
    bank_file::render_csv(
        &FILE_HEADERS,
        rows,
        lines.len(),
        lines.iter().map(|l| l.amount).sum(),
    )
}

/// The payout file as `.xlsx` (the association's officers work in Excel): the same columns,
/// card numbers and serials as text, amounts as numbers with two decimals, a totals row.
pub fn render_xlsx(lines: &[FileLine]) -> Result<Vec<u8>, WorkbookError> {
    let total: Money = lines.iter().map(|l| l.amount).sum();
    let sheet = Sheet {
        name: "代发明细".into(),
        title: None,
        headers: FILE_HEADERS.iter().map(|h| (*h).to_owned()).collect(),
        rows: lines
            .iter()
            .map(|l| {
                vec![
                    Cell::Int(i64::try_from(l.seq).unwrap_or(i64::MAX)),
                    Cell::Code(l.serial.clone()),
                    Cell::Text(l.payee_name.clone()),
                    Cell::Code(l.bank_card.as_str().to_owned()),
                    Cell::Money(l.amount.as_decimal()),
                    Cell::Text(l.memo.clone()),
                ]
            })
            .collect(),
        totals: Some(vec![
            Cell::Text("合计".into()),
            Cell::Text(format!("{} 笔", lines.len())),
            Cell::Empty,
            Cell::Empty,
            Cell::Money(total.as_decimal()),
            Cell::Empty,
        ]),
    };
    write_workbook(&[sheet])
}

#[cfg(test)]
mod tests {
    use super::*;
    use calamine::{Reader, Xlsx};

    fn lines() -> Vec<FileLine> {
        ["6222021234567890128", "6217000000000000012"]
            .iter()
            .enumerate()
            .map(|(i, card)| FileLine {
                seq: i + 1,
                serial: format!("ZF20261124ABCDEF00000{}", i + 1),
                payee_name: ["赵建国", "钱秀英"][i].into(),
                bank_card: BankCardNumber::parse(card).unwrap(),
                amount: Money::from_fen([123_450, 80_000][i]),
                memo: format!("职工医疗互助补助 c{i}"),
            })
            .collect()
    }

    #[test]
    fn the_csv_file_has_every_line_and_a_control_total() {
        let text = String::from_utf8(render_csv(&lines()).unwrap()).unwrap();
        let rows: Vec<&str> = text.trim_start_matches('\u{feff}').lines().collect();
        assert_eq!(
            rows,
            [
                "序号,流水号,户名,银行卡号,金额,摘要",
                "1,ZF20261124ABCDEF000001,赵建国,6222021234567890128,1234.50,职工医疗互助补助 c0",
                "2,ZF20261124ABCDEF000002,钱秀英,6217000000000000012,800.00,职工医疗互助补助 c1",
                "合计,2,2034.50",
            ]
        );
    }

    #[test]
    fn the_workbook_keeps_cards_as_text_and_amounts_as_numbers() {
        let bytes = render_xlsx(&lines()).unwrap();
        let mut book: Xlsx<_> =
            calamine::open_workbook_from_rs(std::io::Cursor::new(bytes)).unwrap();
        let sheet = book.worksheet_range("代发明细").unwrap();
        let rows: Vec<_> = sheet.rows().collect();
        assert_eq!(rows.len(), 4);
        assert_eq!(rows[0][3].to_string(), "银行卡号");
        assert_eq!(
            rows[1][3],
            calamine::Data::String("6222021234567890128".into())
        );
        assert_eq!(rows[1][4], calamine::Data::Float(1234.5));
        assert_eq!(rows[3][4], calamine::Data::Float(2034.5));
    }
}

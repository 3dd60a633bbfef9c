//! Re-encrypting personal data under the current key (`huzhu admin rotate-pii`): every
//! encrypted column, in batches of rows in id order, each row written back only if it still
//! holds the value read (so a concurrent change by the running service is never overwritten;
//! that change was written under the current key anyway). Safe to run beside live replicas and
//! to run again: values already under the current key are skipped. Look-up hashes do not
//! change (they use `pii.lookup_key`, which this does not rotate).

use sea_orm::sea_query::{Alias, Expr, ExprTrait, Order, Query};
use sea_orm::{ConnectionTrait, DbErr};

use crate::auth::crypto::{PiiKind, PiiVault};

/// Every encrypted column: table, column and the kind of data it holds.
pub const ENCRYPTED_COLUMNS: &[(&str, &str, PiiKind)] = &[
    ("member", "id_number_cipher", PiiKind::IdNumber),
    ("member", "phone_cipher", PiiKind::Phone),
    ("member", "bank_card_cipher", PiiKind::BankCard),
    ("claim", "beneficiary_id_number_cipher", PiiKind::IdNumber),
    ("claim", "payee_bank_card_cipher", PiiKind::BankCard),
    (
        "payment_authorisation",
        "bank_card_cipher",
        PiiKind::BankCard,
    ),
    ("payout_item", "bank_card_cipher", PiiKind::BankCard),
];

/// Where a rotation stands, after each batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Progress {
    pub table: &'static str,
    pub column: &'static str,
    /// Values of this column looked at so far.
    pub seen: u64,
    /// Values re-encrypted so far (all columns).
    pub resealed: u64,
    /// Values in all columns to look at, counted at the start.
    pub total: u64,
}

/// What a rotation did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    /// Values looked at.
    pub seen: u64,
    /// Values re-encrypted under the current key.
    pub resealed: u64,
    /// Values changed by someone else between read and write (left as they were).
    pub skipped: u64,
}

/// Why a rotation stopped.
#[derive(Debug, thiserror::Error)]
pub enum RotationError {
    /// A value could not be decrypted with any key configured (its key is missing from
    /// `pii.previous_keys`, or the value is damaged).
    #[error("{table}.{column} of row {id} cannot be decrypted: {reason}")]
    Undecryptable {
        table: &'static str,
        column: &'static str,
        id: i64,
        reason: String,
    },
    #[error(transparent)]
    Db(#[from] DbErr),
}

/// Counts the non-empty values of every encrypted column.
pub async fn count_values<C: ConnectionTrait>(db: &C) -> Result<u64, DbErr> {
    let mut total = 0u64;
    for (table, column, _) in ENCRYPTED_COLUMNS {
        let query = Query::select()
            .expr_as(Expr::col(Alias::new(*column)).count(), Alias::new("n"))
            .from(Alias::new(*table))
            .and_where(Expr::col(Alias::new(*column)).is_not_null())
            .to_owned();
        let row = db.query_one(&query).await?;
        let n: i64 = match row {
            Some(row) => row.try_get("", "n")?,
            None => 0,
        };
        total += u64::try_from(n).unwrap_or(0);
    }
    Ok(total)
}

/// Re-encrypts every value not under the current key, `batch_size` rows at a time, calling
/// `progress` after each batch.
pub async fn rotate<C: ConnectionTrait>(
    db: &C,
    vault: &PiiVault,
    batch_size: u64,
    mut progress: impl FnMut(&Progress),
) -> Result<Report, RotationError> {
    let batch_size = std::cmp::max(batch_size, 1);
    let total = count_values(db).await?;
    let mut report = Report::default();
    for &(table, column, kind) in ENCRYPTED_COLUMNS {
        let mut after = 0i64;
        let mut seen = 0u64;
        loop {
            let select = Query::select()
                .column(Alias::new("id"))
                .expr_as(Expr::col(Alias::new(column)), Alias::new("value"))
                .from(Alias::new(table))
                .and_where(Expr::col(Alias::new(column)).is_not_null())
                .and_where(Expr::col(Alias::new("id")).gt(after))
                .order_by(Alias::new("id"), Order::Asc)
                .limit(batch_size)
                .to_owned();
            let rows = db.query_all(&select).await?;
            if rows.is_empty() {
                break;
            }
            for row in &rows {
                let id: i64 = row.try_get("", "id")?;
                let value: String = row.try_get("", "value")?;
                after = id;
                seen += 1;
                report.seen += 1;
                if !vault.needs_rotation(&value) {
                    continue;
                }
                let resealed =
                    vault
                        .reseal(kind, &value)
                        .map_err(|e| RotationError::Undecryptable {
                            table,
                            column,
                            id,
                            reason: e.to_string(),
                        })?;
                // Compare-and-set: only if the row still holds what was read.
                let update = Query::update()
                    .table(Alias::new(table))
                    .value(Alias::new(column), resealed)
                    .and_where(Expr::col(Alias::new("id")).eq(id))
                    .and_where(Expr::col(Alias::new(column)).eq(value))
                    .to_owned();
                let done = db.execute(&update).await;
                match done {
                    Ok(r) if r.rows_affected() == 1 => report.resealed += 1,
                    Ok(_) => report.skipped += 1,
                    Err(e) => return Err(e.into()),
                }
            }
            progress(&Progress {
                table,
                column,
                seen,
                resealed: report.resealed,
                total,
            });
        }
    }
    Ok(report)
}

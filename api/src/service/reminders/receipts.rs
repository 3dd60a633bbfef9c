//! Delivery receipts, never lost: each report is applied to its message — matched by the
//! provider's id (Tencent `sid`, Aliyun `biz_id`) or by ours (Aliyun `out_id`) — or, when that
//! message's send outcome is not known yet, kept in `sms_receipt` and applied when the outcome
//! lands (the dispatcher calls [`apply_kept`] after every write of `accepted`).
//!
//! Why a receipt can come first: a call that timed out after the provider took it leaves the
//! message `uncertain` with no provider id, and Tencent's receipts name the message only by its
//! `SerialNo` (our `SessionContext` is not in them); a receipt may also overtake the answer of
//! the very call that sent the message. The look-up that settles an `uncertain` message learns
//! the `SerialNo` (Tencent lists the record under our `SessionContext`), and so the kept receipt
//! finds its message then.
//!
//! Both sides write before they read — the callback keeps the receipt and then looks for its
//! message again; the dispatcher writes the outcome and then looks for kept receipts — so
//! whichever comes second sees the other's write: a receipt is applied at least once, and
//! applying it twice writes the same values.

use chrono::{DateTime, Duration, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, Condition, ConnectionTrait, DbErr, EntityTrait, QueryFilter, Set};

use entity::{outbox, sms_receipt};

use crate::integrations::sms::{DeliveryReport, Receipt};

/// The statuses a receipt settles: the message went out, or may have (`uncertain`: a receipt
/// proves it did).
const SETTLED_BY_RECEIPT: [&str; 4] = ["accepted", "delivered", "undelivered", "uncertain"];

/// Kept receipts no message claimed in this long are dropped (someone else's, or a message
/// deleted since): both providers keep reporting for a few days at most.
const KEPT_FOR: Duration = Duration::days(30);

/// What a callback did with its receipts.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Recorded {
    /// Applied to their message.
    pub applied: u64,
    /// Kept until their message's outcome lands.
    pub kept: u64,
}

/// One report, as applied to a message.
struct Report<'a> {
    provider: &'a str,
    provider_id: Option<&'a str>,
    outbox_id: Option<i64>,
    delivered: bool,
    code: Option<&'a str>,
    at: DateTime<Utc>,
    detail: &'a str,
}

/// The receipt's detail as the send log shows it: the number's last four digits, the
/// operator's code and description.
fn detail(phone: &str, code: Option<&str>, description: Option<&str>) -> String {
    let tail: String = {
        let digits: Vec<char> = phone.chars().collect();
        digits[digits.len().saturating_sub(4)..].iter().collect()
    };
    serde_json::json!({ "phone_tail": tail, "code": code, "description": description }).to_string()
}

/// Writes `report` on the message it names, if that message is in a state a receipt settles;
/// whether it was.
async fn apply<C: ConnectionTrait>(
    db: &C,
    report: &Report<'_>,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let mut which = Condition::any();
    if let Some(pid) = report.provider_id {
        which = which.add(
            Condition::all()
                .add(outbox::Column::ProviderId.eq(pid))
                .add(outbox::Column::Provider.eq(report.provider)),
        );
    }
    if let Some(id) = report.outbox_id {
        which = which.add(outbox::Column::Id.eq(id));
    }
    if report.provider_id.is_none() && report.outbox_id.is_none() {
        return Ok(false);
    }
    let status = if report.delivered {
        "delivered"
    } else {
        "undelivered"
    };
    let mut update = outbox::Entity::update_many()
        .col_expr(outbox::Column::Status, Expr::value(status))
        .col_expr(outbox::Column::ReceiptStatus, Expr::value(status))
        .col_expr(
            outbox::Column::ReceiptCode,
            Expr::value(report.code.map(str::to_owned)),
        )
        .col_expr(outbox::Column::ReceiptAt, Expr::value(report.at))
        .col_expr(outbox::Column::ReceiptDetail, Expr::value(report.detail))
        .col_expr(
            outbox::Column::LeaseUntil,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .col_expr(outbox::Column::UpdatedAt, Expr::value(now));
    if let Some(pid) = report.provider_id {
        update = update.col_expr(outbox::Column::ProviderId, Expr::value(pid));
    }
    let done = update
        .filter(which)
        .filter(outbox::Column::Status.is_in(SETTLED_BY_RECEIPT))
        .exec(db)
        .await?;
    Ok(done.rows_affected > 0)
}

/// Records a callback's receipts from `provider`: each applied to its message, or kept until
/// the message's outcome lands.
pub async fn record<C: ConnectionTrait>(
    db: &C,
    provider: &str,
    receipts: &[Receipt],
    now: DateTime<Utc>,
) -> Result<Recorded, DbErr> {
    let mut recorded = Recorded::default();
    let mut kept = Vec::new();
    for r in receipts {
        let outbox_id = r
            .message_id
            .as_deref()
            .and_then(super::messages::parse_message_id);
        let detail = detail(&r.phone, r.code.as_deref(), r.description.as_deref());
        let report = Report {
            provider,
            provider_id: r.provider_id.as_deref(),
            outbox_id,
            delivered: r.delivered,
            code: r.code.as_deref(),
            at: r.at.unwrap_or(now),
            detail: &detail,
        };
        if report.provider_id.is_none() && report.outbox_id.is_none() {
            tracing::warn!(provider, "a delivery receipt names no message: dropped");
            continue;
        }
        if apply(db, &report, now).await? {
            recorded.applied += 1;
            continue;
        }
        let row = sms_receipt::Entity::insert(sms_receipt::ActiveModel {
            provider: Set(provider.to_owned()),
            provider_id: Set(r.provider_id.clone()),
            outbox_id: Set(outbox_id),
            delivered: Set(r.delivered),
            code: Set(r.code.clone()),
            at: Set(report.at),
            detail: Set(detail.clone()),
            received_at: Set(now),
            ..Default::default()
        })
        .exec(db)
        .await?;
        kept.push(row.last_insert_id);
    }
    if !kept.is_empty() {
        // An outcome written between our look and our insert found nothing kept: look again.
        let rows = sms_receipt::Entity::find()
            .filter(sms_receipt::Column::Id.is_in(kept.iter().copied()))
            .all(db)
            .await?;
        let applied = apply_rows(db, rows, now).await?;
        recorded.applied += applied;
        recorded.kept = kept.len() as u64 - applied;
        sms_receipt::Entity::delete_many()
            .filter(sms_receipt::Column::ReceivedAt.lt(now - KEPT_FOR))
            .exec(db)
            .await?;
    }
    Ok(recorded)
}

/// Applies kept rows to their messages, deleting those applied; how many were.
async fn apply_rows<C: ConnectionTrait>(
    db: &C,
    rows: Vec<sms_receipt::Model>,
    now: DateTime<Utc>,
) -> Result<u64, DbErr> {
    let mut applied = Vec::new();
    for row in rows {
        let report = Report {
            provider: &row.provider,
            provider_id: row.provider_id.as_deref(),
            outbox_id: row.outbox_id,
            delivered: row.delivered,
            code: row.code.as_deref(),
            at: row.at,
            detail: &row.detail,
        };
        if apply(db, &report, now).await? {
            applied.push(row.id);
        }
    }
    if !applied.is_empty() {
        sms_receipt::Entity::delete_many()
            .filter(sms_receipt::Column::Id.is_in(applied.iter().copied()))
            .exec(db)
            .await?;
    }
    Ok(applied.len() as u64)
}

/// Applies the receipts kept for messages whose outcome has just been written: the messages
/// `outbox_ids`, known at `provider` by `provider_ids`. How many were applied. One query when
/// none was kept (the usual case).
pub async fn apply_kept<C: ConnectionTrait>(
    db: &C,
    provider: &str,
    outbox_ids: &[i64],
    provider_ids: &[String],
    now: DateTime<Utc>,
) -> Result<u64, DbErr> {
    if outbox_ids.is_empty() && provider_ids.is_empty() {
        return Ok(0);
    }
    let mut which = Condition::any();
    if !outbox_ids.is_empty() {
        which = which.add(sms_receipt::Column::OutboxId.is_in(outbox_ids.iter().copied()));
    }
    if !provider_ids.is_empty() {
        which = which.add(
            Condition::all()
                .add(sms_receipt::Column::Provider.eq(provider))
                .add(sms_receipt::Column::ProviderId.is_in(provider_ids.iter().cloned())),
        );
    }
    let rows = sms_receipt::Entity::find().filter(which).all(db).await?;
    if rows.is_empty() {
        return Ok(0);
    }
    apply_rows(db, rows, now).await
}

/// Writes what a look-up found of a message's delivery on the message `outbox_id` to `phone`
/// (just written `accepted`); whether it was.
pub async fn apply_report<C: ConnectionTrait>(
    db: &C,
    provider: &str,
    outbox_id: i64,
    phone: &str,
    report: &DeliveryReport,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let detail = detail(phone, report.code.as_deref(), report.description.as_deref());
    apply(
        db,
        &Report {
            provider,
            provider_id: None,
            outbox_id: Some(outbox_id),
            delivered: report.delivered,
            code: report.code.as_deref(),
            at: report.at.unwrap_or(now),
            detail: &detail,
        },
        now,
    )
    .await
}

//! The send log: every message with its status, attempts, provider id and delivery receipt;
//! resending a failed one (audited); taking the providers' delivery receipt callbacks.

use chrono::{DateTime, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, QueryTrait,
};
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

use entity::{member, outbox};

use super::dispatch::message_id;
use super::limits::sending_window_start;
use crate::integrations::sms::{ReceiptError, ReceiptSource, receipt_token_matches};
use crate::service::Requester;
use crate::service::page::{Page, page_from};
use crate::service::scope::{Scope, Scoped};
use crate::settings::SmsSettings;

/// One message of the send log.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct Message {
    /// Our id (also sent to the provider as `SessionContext` / `OutId`).
    #[schema(example = "hz1024")]
    pub id: String,
    #[schema(example = "payout_sent")]
    pub occasion: String,
    /// Public id of the member.
    pub member_id: String,
    pub member_name: String,
    /// pending, waiting_template (held until the template has the provider's id), sending,
    /// uncertain, accepted, delivered, undelivered, failed, cancelled.
    pub status: String,
    pub attempts: i32,
    /// Not before this moment (of an `uncertain` message: when the provider is asked next).
    pub due_at: DateTime<Utc>,
    /// When a `pending` message will actually go: its `due_at`, or the end of the quiet hours
    /// (08:00 Asia/Shanghai) it falls in; a message deferred by a per-number limit or a
    /// provider error is due when it may go. Absent for the other statuses.
    pub sends_at: Option<DateTime<Utc>>,
    /// When the provider accepted it.
    pub sent_at: Option<DateTime<Utc>>,
    /// `sms`, or `wechat` when a subscribe message carried it.
    pub channel: Option<String>,
    /// `tencent`, `aliyun`, `log`, or `wechat`.
    pub provider: Option<String>,
    /// The provider's id (Tencent SerialNo, Aliyun BizId, WeChat msgid).
    pub provider_id: Option<String>,
    pub last_error_code: Option<String>,
    pub last_error: Option<String>,
    /// delivered / undelivered, from the delivery receipt.
    pub receipt_status: Option<String>,
    pub receipt_code: Option<String>,
    pub receipt_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
}

/// Filters of the send log.
#[derive(Clone, Debug, Default)]
pub struct MessageFilter {
    pub status: Option<String>,
    pub occasion: Option<String>,
    pub member_pid: Option<String>,
}

fn within(scope: &Scope) -> Condition {
    let members = member::Entity::find_within(scope)
        .select_only()
        .column(member::Column::Id)
        .into_query();
    Condition::all().add(outbox::Column::MemberId.in_subquery(members))
}

async fn to_messages<C: ConnectionTrait>(
    db: &C,
    rows: Vec<outbox::Model>,
) -> Result<Vec<Message>, DbErr> {
    let now = Utc::now();
    let ids: Vec<i64> = rows.iter().map(|r| r.member_id).collect();
    let people: std::collections::HashMap<i64, (String, String)> = member::Entity::find()
        .filter(member::Column::Id.is_in(ids))
        .all(db)
        .await?
        .into_iter()
        .map(|m| (m.id, (m.pid, m.name)))
        .collect();
    Ok(rows
        .into_iter()
        .map(|r| {
            let (pid, name) = people.get(&r.member_id).cloned().unwrap_or_default();
            let sends_at = (r.status == "pending")
                .then(|| sending_window_start(std::cmp::Ord::max(r.due_at, now)));
            Message {
                sends_at,
                id: message_id(r.id),
                occasion: r.occasion,
                member_id: pid,
                member_name: name,
                status: r.status,
                attempts: r.attempts,
                due_at: r.due_at,
                sent_at: r.dispatched_at,
                channel: r.channel,
                provider: r.provider,
                provider_id: r.provider_id,
                last_error_code: r.last_error_code,
                last_error: r.last_error,
                receipt_status: r.receipt_status,
                receipt_code: r.receipt_code,
                receipt_at: r.receipt_at,
                created_at: r.created_at,
            }
        })
        .collect())
}

/// A page of the send log within `scope`, newest first.
pub async fn list<C: ConnectionTrait>(
    db: &C,
    scope: &Scope,
    filter: &MessageFilter,
    before_id: Option<i64>,
    limit: u64,
) -> Result<Page<Message>, DbErr> {
    let mut q = outbox::Entity::find().filter(within(scope));
    if let Some(s) = &filter.status {
        q = q.filter(outbox::Column::Status.eq(s.as_str()));
    }
    if let Some(o) = &filter.occasion {
        q = q.filter(outbox::Column::Occasion.eq(o.as_str()));
    }
    if let Some(pid) = &filter.member_pid {
        q = q.filter(
            outbox::Column::MemberId.in_subquery(
                member::Entity::find()
                    .select_only()
                    .column(member::Column::Id)
                    .filter(member::Column::Pid.eq(pid.as_str()))
                    .into_query(),
            ),
        );
    }
    if let Some(before) = before_id {
        q = q.filter(outbox::Column::Id.lt(before));
    }
    let rows = q
        .order_by_desc(outbox::Column::Id)
        .limit(limit + 1)
        .all(db)
        .await?;
    let ids: Vec<i64> = rows.iter().map(|r| r.id).collect();
    let messages = to_messages(db, rows).await?;
    let page = page_from(
        messages.into_iter().zip(ids).collect::<Vec<_>>(),
        limit,
        |(_, id)| *id,
    );
    Ok(page.map(|(m, _)| m))
}

/// Parses our message id.
pub fn parse_message_id(id: &str) -> Option<i64> {
    id.strip_prefix("hz")?.parse().ok()
}

/// One message within `scope`.
pub async fn get<C: ConnectionTrait>(
    db: &C,
    scope: &Scope,
    id: &str,
) -> Result<Option<Message>, DbErr> {
    let Some(n) = parse_message_id(id) else {
        return Ok(None);
    };
    let Some(row) = outbox::Entity::find()
        .filter(within(scope))
        .filter(outbox::Column::Id.eq(n))
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    Ok(to_messages(db, vec![row]).await?.pop())
}

/// Why a resend was refused.
#[derive(Debug, thiserror::Error)]
pub enum ResendError {
    #[error("not found")]
    NotFound,
    #[error("only failed or undelivered messages are sent again (this one is {0})")]
    NotFailed(String),
    #[error(transparent)]
    Db(#[from] DbErr),
}

/// Sends a failed or undelivered message again (audited): due now, errors cleared.
pub async fn resend(
    db: &DatabaseConnection,
    requester: &Requester,
    id: &str,
) -> Result<Message, ResendError> {
    let txn = crate::db::begin_write(db).await?;
    let message = make_due_again(&txn, &requester.scope, id, Utc::now()).await?;
    requester
        .audit(
            &txn,
            "message.resend",
            ("message", Some(&message.id)),
            json!({ "occasion": message.occasion }),
        )
        .await?;
    txn.commit().await?;
    Ok(message)
}

async fn make_due_again<C: ConnectionTrait>(
    db: &C,
    scope: &Scope,
    id: &str,
    now: DateTime<Utc>,
) -> Result<Message, ResendError> {
    let current = get(db, scope, id).await?.ok_or(ResendError::NotFound)?;
    let n = parse_message_id(id).ok_or(ResendError::NotFound)?;
    let r = outbox::Entity::update_many()
        .col_expr(outbox::Column::Status, Expr::value("pending"))
        .col_expr(outbox::Column::DueAt, Expr::value(now))
        .col_expr(outbox::Column::Attempts, Expr::value(0))
        .col_expr(
            outbox::Column::ProviderId,
            Expr::value(Option::<String>::None),
        )
        .col_expr(
            outbox::Column::LastErrorCode,
            Expr::value(Option::<String>::None),
        )
        .col_expr(
            outbox::Column::LastError,
            Expr::value(Option::<String>::None),
        )
        .col_expr(
            outbox::Column::ReceiptStatus,
            Expr::value(Option::<String>::None),
        )
        .col_expr(
            outbox::Column::ReceiptCode,
            Expr::value(Option::<String>::None),
        )
        .col_expr(
            outbox::Column::ReceiptAt,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .col_expr(
            outbox::Column::ReceiptDetail,
            Expr::value(Option::<String>::None),
        )
        .col_expr(
            outbox::Column::DispatchedAt,
            Expr::value(Option::<DateTime<Utc>>::None),
        )
        .col_expr(outbox::Column::UpdatedAt, Expr::value(now))
        .filter(outbox::Column::Id.eq(n))
        .filter(outbox::Column::Status.is_in(["failed", "undelivered"]))
        .exec(db)
        .await?;
    if r.rows_affected != 1 {
        return Err(ResendError::NotFailed(current.status));
    }
    get(db, scope, id).await?.ok_or(ResendError::NotFound)
}

/// Why a delivery receipt callback was not taken.
#[derive(Debug, thiserror::Error)]
pub enum ReceiptCallbackError {
    /// A wrong token, or a provider that posts no receipts to us: as if the URL did not exist.
    #[error("not found")]
    NotFound,
    /// The body is not the provider's receipts.
    #[error(transparent)]
    Unreadable(#[from] ReceiptError),
    #[error(transparent)]
    Db(#[from] DbErr),
}

/// Takes a delivery receipt callback: checks the token the URL carries, reads the reports in
/// `provider`'s dialect and stores each on its message (or keeps it until the message's send
/// outcome is known: see `super::receipts`). Returns the acknowledgement the
/// provider expects.
pub async fn take_receipts<C: ConnectionTrait>(
    db: &C,
    settings: &SmsSettings,
    provider: &str,
    token: &str,
    body: &[u8],
) -> Result<&'static str, ReceiptCallbackError> {
    if !receipt_token_matches(settings, token) {
        return Err(ReceiptCallbackError::NotFound);
    }
    let source = ReceiptSource::from_name(provider).ok_or(ReceiptCallbackError::NotFound)?;
    let receipts = source.read(body)?;
    let recorded = super::receipts::record(db, source.name(), &receipts, Utc::now()).await?;
    if recorded.kept > 0 {
        tracing::info!(
            provider = %provider,
            reports = receipts.len(),
            applied = recorded.applied,
            kept = recorded.kept,
            "delivery receipts kept until their message's send outcome is known"
        );
    }
    Ok(source.answer())
}

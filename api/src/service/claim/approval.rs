//! The association's approval: the money. The claim is judged by the benefit engine against
//! every claim already approved in the member's period, inside one transaction that first
//! locks that period (advancing the membership's ledger counter), so concurrent approvals are
//! judged one after another: no cap is passed, no first-stay allowance or bracket paid twice.

use chrono::{Datelike, NaiveDate, Utc, Weekday};
use rust_decimal::Decimal;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder,
};
use serde_json::json;

use entity::{claim, membership};

use super::filing::{current_scheme, parse_facts};
use super::review::reviewable;
use super::store::{reload, to_claim};
use super::transition::{self, Move, Transition};
use super::{Caller, Claim, ClaimError, ClaimStatus};
use crate::domain::Money;
use crate::domain::workdays::WorkdayCalendar;
use crate::engine::{Event, ItemCode, JudgedEvent, MemberPeriod, judge_event};

/// An amount the association sets instead of the engine's, with its written reason.
#[derive(Clone, Debug)]
pub struct Adjustment {
    pub amount: Money,
    pub reason: String,
}

/// Statuses of claims whose judgement counts in the period's history.
pub const JUDGED: [ClaimStatus; 5] = [
    ClaimStatus::Approved,
    ClaimStatus::Paying,
    ClaimStatus::Paid,
    ClaimStatus::PayoutFailed,
    ClaimStatus::Closed,
];

/// Default service levels when a scheme states none: 5 working days, 15 at most.
const PAY_WORKING_DAYS: u32 = 5;
const PAY_MAX_WORKING_DAYS: u32 = 15;

/// `n` working days after `start` by the official calendar; outside the years it covers,
/// Monday to Friday.
pub fn working_days_after(
    calendar: Option<&WorkdayCalendar>,
    start: NaiveDate,
    n: u32,
) -> NaiveDate {
    if let Some(cal) = calendar
        && let Ok(day) = cal.add_working_days(start, n)
    {
        return day;
    }
    let mut day = start;
    let mut left = n;
    while left > 0 {
        day = day.succ_opt().unwrap_or(day);
        if !matches!(day.weekday(), Weekday::Sat | Weekday::Sun) {
            left -= 1;
        }
    }
    day
}

/// Approves a claim at the association's review: judges it, stores the scheme version and the
/// item breakdown, and fixes the payment due days. An adjustment may lower the amount paid
/// (never raise it above what the rules give), with a written reason. A claim the engine
/// refuses is not approved (`claim_not_payable`): the reviewer rejects it with that reason.
#[allow(clippy::too_many_arguments)]
pub async fn approve(
    db: &DatabaseConnection,
    calendar: Option<&WorkdayCalendar>,
    caller: &Caller,
    pid: &str,
    version: i32,
    adjustment: Option<Adjustment>,
    today: NaiveDate,
    request_id: Option<String>,
) -> Result<Claim, ClaimError> {
    let c = reviewable(db, caller, pid, version).await?;
    if c.status != ClaimStatus::AssociationReview {
        return super::review::approve_stage(db, caller, &c, None, request_id).await;
    }
    if let Some(a) = &adjustment
        && a.reason.trim().is_empty()
    {
        return Err(ClaimError::Invalid {
            code: "reason_required",
            field: "adjustment_reason".into(),
            message: "调整金额须写明原因 / an adjusted amount needs a written reason".into(),
        });
    }
    let (scheme_version, def) = current_scheme(db, &c.scheme_code).await?;
    if !def.missing_parameters().is_empty() {
        return Err(ClaimError::SchemeIncomplete {
            missing: def.missing_parameters().to_vec(),
        });
    }
    let event = parse_facts(&c.event, &def)?;
    let now = Utc::now();

    let txn = crate::db::begin_write(db).await?;
    // The period lock: first statement of the transaction, a write.
    let locked = membership::Entity::update_many()
        .col_expr(
            membership::Column::LedgerSeq,
            Expr::col(membership::Column::LedgerSeq).add(1),
        )
        .filter(membership::Column::Id.eq(c.membership_id))
        .exec(&txn)
        .await?;
    if locked.rows_affected != 1 {
        txn.rollback().await?;
        return Err(ClaimError::NotFound);
    }
    let ms = membership::Entity::find_by_id(c.membership_id)
        .one(&txn)
        .await?
        .ok_or(ClaimError::NotFound)?;
    // Re-read under the lock: another reviewer may have acted meanwhile.
    let fresh = reload(&txn, c.id).await?;
    if fresh.version != version {
        txn.rollback().await?;
        return Err(ClaimError::VersionConflict {
            current: fresh.version,
        });
    }
    let history = period_history(&txn, c.membership_id).await?;
    let period = MemberPeriod {
        coverage_start: ms.coverage_start,
        coverage_end: ms.coverage_end,
        consecutive_periods: u32::try_from(std::cmp::Ord::max(ms.consecutive_periods, 1))
            .unwrap_or(1),
        continuous_renewal: ms.continuous_renewal,
    };
    let judgement = judge_event(&def, &period, &history, &event);
    if let Some(refused) = judgement.refused {
        txn.rollback().await?;
        let code = serde_json::to_value(refused)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        return Err(ClaimError::NotPayable { refused: code });
    }
    let payable = Money::from_decimal(judgement.payable()).round_half_up();
    let payable_fen = payable
        .to_fen()
        .map_err(|e| anyhow::anyhow!("payable amount {payable}: {e:?}"))?;
    let approved_fen = match &adjustment {
        Some(a) => {
            let fen = a.amount.to_fen().map_err(|_| ClaimError::Invalid {
                code: "invalid_amount",
                field: "amount".into(),
                message: "金额最多两位小数 / at most two decimals".into(),
            })?;
            if fen < 0 || fen > payable_fen {
                txn.rollback().await?;
                return Err(ClaimError::Invalid {
                    code: "adjustment_out_of_range",
                    field: "amount".into(),
                    message: format!(
                        "调整后的金额应在 0 到 {payable} 之间 / the adjusted amount must be between 0 and {payable}"
                    ),
                });
            }
            fen
        }
        None => payable_fen,
    };
    let status = if approved_fen > 0 {
        ClaimStatus::Approved
    } else {
        ClaimStatus::Closed
    };
    let pay_days = def.claims.payment_working_days.unwrap_or(PAY_WORKING_DAYS);
    let pay_max_days = def
        .claims
        .payment_max_working_days
        .unwrap_or(PAY_MAX_WORKING_DAYS);
    let judgement_json = serde_json::to_string(&judgement).map_err(|e| anyhow::anyhow!(e))?;
    let mut set = vec![
        (claim::Column::Stage, Expr::value(Option::<String>::None)),
        (claim::Column::SchemeVersion, Expr::value(scheme_version)),
        (claim::Column::Judgement, Expr::value(judgement_json)),
        (claim::Column::PayableFen, Expr::value(payable_fen)),
        (claim::Column::ApprovedFen, Expr::value(approved_fen)),
        (
            claim::Column::AdjustmentReason,
            Expr::value(adjustment.as_ref().map(|a| a.reason.clone())),
        ),
        (claim::Column::PeriodSeq, Expr::value(ms.ledger_seq)),
        (claim::Column::ApprovedAt, Expr::value(now)),
    ];
    if status == ClaimStatus::Approved {
        set.push((
            claim::Column::PayDueOn,
            Expr::value(working_days_after(calendar, today, pay_days)),
        ));
        set.push((
            claim::Column::PayDueMaxOn,
            Expr::value(working_days_after(calendar, today, pay_max_days)),
        ));
    } else {
        set.push((claim::Column::ClosedAt, Expr::value(now)));
    }
    let approved = Money::from_fen(approved_fen);
    transition::apply(
        &txn,
        caller,
        Transition {
            claim: &c,
            version,
            from: &[ClaimStatus::AssociationReview],
            to: Some(Move {
                to: status,
                action: "approved",
                note: Some(format!("核定补助 {approved} 元")),
            }),
            set,
            notice: None,
            audit: (
                "claim.approve",
                json!({
                    "scheme_version": scheme_version,
                    "payable": payable.to_string(),
                    "approved": approved.to_string(),
                    "adjustment_reason": adjustment.as_ref().map(|a| a.reason.clone()),
                    "period_seq": ms.ledger_seq,
                    "items": judgement.items,
                }),
            ),
        },
        now,
        request_id,
    )
    .await?;
    if judgement.item(ItemCode::DailyAllowance) > Decimal::ZERO && !ms.allowance_paid {
        membership::Entity::update_many()
            .col_expr(membership::Column::AllowancePaid, Expr::value(true))
            .filter(membership::Column::Id.eq(ms.id))
            .exec(&txn)
            .await?;
    }
    txn.commit().await?;
    reload(db, c.id).await
}

/// The judged claims of a period, in the order they were approved.
pub async fn period_history<C: ConnectionTrait>(
    db: &C,
    membership_id: i64,
) -> Result<Vec<JudgedEvent>, ClaimError> {
    let rows = claim::Entity::find()
        .filter(claim::Column::MembershipId.eq(membership_id))
        .filter(claim::Column::Status.is_in(JUDGED.iter().map(|s| s.as_str())))
        .filter(claim::Column::PeriodSeq.is_not_null())
        .order_by_asc(claim::Column::PeriodSeq)
        .all(db)
        .await?;
    rows.into_iter()
        .map(|row| {
            let c = to_claim(row)?;
            let event: Event = serde_json::from_value(c.event.clone())
                .map_err(|e| anyhow::anyhow!("stored facts of claim {}: {e}", c.pid))?;
            let judgement = c
                .judgement
                .clone()
                .ok_or_else(|| anyhow::anyhow!("approved claim {} has no judgement", c.pid))?;
            Ok(JudgedEvent { event, judgement })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> NaiveDate {
        s.parse().expect("date")
    }

    #[test]
    fn working_days_skip_holidays_and_count_make_up_days() {
        let cal = WorkdayCalendar::official().expect("calendar");
        // National Day 2025: 1–8 October off; Sunday 28 September and Saturday 11 October work.
        assert_eq!(
            working_days_after(Some(&cal), day("2025-09-26"), 1),
            day("2025-09-28")
        );
        assert_eq!(
            working_days_after(Some(&cal), day("2025-09-30"), 1),
            day("2025-10-09")
        );
        assert_eq!(
            working_days_after(Some(&cal), day("2025-10-10"), 1),
            day("2025-10-11")
        );
        assert_eq!(
            working_days_after(Some(&cal), day("2025-09-15"), 15),
            day("2025-10-11")
        );
    }

    #[test]
    fn outside_the_calendar_monday_to_friday_count() {
        // 2019 is not in the calendar data: weekends only are skipped.
        let cal = WorkdayCalendar::official().expect("calendar");
        assert_eq!(
            working_days_after(Some(&cal), day("2019-06-07"), 1),
            day("2019-06-10")
        );
        assert_eq!(
            working_days_after(None, day("2025-10-01"), 5),
            day("2025-10-08")
        );
        assert_eq!(
            working_days_after(None, day("2025-10-01"), 0),
            day("2025-10-01")
        );
    }
}

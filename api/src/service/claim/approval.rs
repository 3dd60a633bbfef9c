//! The association's approval: the money. The period is the unit of money: at each approval the
//! benefit engine judges all the period's approved claims with this one **in the order they
//! were filed** — exactly as the simulation judges a period's events — and the claim is granted
//! what that adds to what the period's other claims were already granted
//! ([`crate::engine::period`]). Earlier-approved claims whose judgement changes are re-stated
//! (kept as history, their grant unchanged); less than nothing is granted as 0 with an open
//! offset on the period. All inside one transaction that first locks the period (advancing the
//! membership's ledger counter), so concurrent approvals are judged one after another: no cap
//! is passed, no first-stay allowance or bracket paid twice, whatever order reviewers click in.

use std::collections::BTreeMap;

use chrono::{Datelike, NaiveDate, Utc, Weekday};
use rust_decimal::Decimal;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};
use serde_json::json;

use entity::{claim, membership};

use super::filing::{claim_scheme, get, parse_facts};
use super::period::{Cause, PeriodClaim, approved_claims, fen, keep, restate};
use super::review::{check_four_eyes, reviewable};
use super::store::reload;
use super::transition::{self, Move, Transition};
use super::{Caller, Claim, ClaimError, ClaimStatus, FiledBy};
use crate::domain::workdays::WorkdayCalendar;
use crate::domain::{Money, Role};
use crate::engine::period::judge_each_in_filing_order;
use crate::engine::{self, Event, ItemCode, Judgement, SchemeDefinition};

/// An amount the association sets instead of the engine's, with its written reason.
#[derive(Clone, Debug)]
pub struct Adjustment {
    pub amount: Money,
    pub reason: String,
}

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
    check_four_eyes(db, caller, &c).await?;
    if let Some(a) = &adjustment
        && a.reason.trim().is_empty()
    {
        return Err(ClaimError::Invalid {
            code: "reason_required",
            field: "adjustment_reason".into(),
            message: "调整金额须写明原因 / an adjusted amount needs a written reason".into(),
        });
    }
    // The version in force when the claim was first submitted judges it (see `claim_scheme`).
    let (scheme_version, def) = claim_scheme(db, &c.scheme_code, c.scheme_version).await?;
    if !def.missing_parameters().is_empty() {
        return Err(ClaimError::SchemeIncomplete {
            missing: def.missing_parameters().to_vec(),
        });
    }
    let event = parse_facts(&c.facts(), &def)?;
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
    let others = approved_claims(&txn, c.membership_id, c.id).await?;
    let period = super::period::member_period(&ms);
    // This claim's place among the period's approved claims: its first submission.
    let filed = (c.first_submitted_at.unwrap_or(now), c.id);
    let at = others.partition_point(|o| o.filed < filed);
    // Each claim of the period is judged under its own version, knowing those filed before it.
    let mut defs: BTreeMap<i32, SchemeDefinition> = BTreeMap::new();
    for o in &others {
        if o.scheme_version != scheme_version && !defs.contains_key(&o.scheme_version) {
            let (v, d) = claim_scheme(&txn, &c.scheme_code, Some(o.scheme_version)).await?;
            defs.insert(v, d);
        }
    }
    let def_of = |v: i32| defs.get(&v).unwrap_or(&def);
    let mut events: Vec<(&SchemeDefinition, &Event)> = others
        .iter()
        .map(|o| (def_of(o.scheme_version), &o.event))
        .collect();
    events.insert(at, (&def, &event));
    let mut judgements = judge_each_in_filing_order(&period, &events);
    let judgement = judgements.remove(at);
    if let Some(refused) = judgement.refused {
        txn.rollback().await?;
        let code = serde_json::to_value(refused)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        return Err(ClaimError::NotPayable { refused: code });
    }
    let own_fen = fen(&judgement)?;
    let mut period_total_fen = own_fen;
    for j in &judgements {
        period_total_fen += fen(j)?;
    }
    let granted_before_fen: i64 = others.iter().map(|o| o.granted_fen).sum();
    let grant = engine::period::grant(
        Money::from_fen(period_total_fen).as_decimal(),
        Money::from_fen(granted_before_fen).as_decimal(),
    );
    let payable = Money::from_decimal(grant.granted);
    let payable_fen = payable
        .to_fen()
        .map_err(|e| anyhow::anyhow!("granted amount {payable}: {e:?}"))?;
    let offset_fen = Money::from_decimal(grant.open_offset)
        .to_fen()
        .map_err(|e| anyhow::anyhow!("open offset: {e:?}"))?;
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
    let mut note = format!("核定补助 {approved} 元");
    if payable_fen < own_fen {
        note.push_str(&format!(
            "；本期按提交顺序核算本申领 {} 元，其中 {} 元已由本期先获批的申领核定",
            Money::from_fen(own_fen),
            Money::from_fen(own_fen - payable_fen)
        ));
    }
    if offset_fen > 0 {
        note.push_str(&format!(
            "；本期多核定 {} 元，从本期后续申领中冲抵",
            Money::from_fen(offset_fen)
        ));
    }
    let restated: Vec<(&PeriodClaim, &Judgement)> = others
        .iter()
        .zip(&judgements)
        .filter(|(o, j)| o.judgement != **j)
        .collect();
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
                note: Some(note),
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
                    "judged": Money::from_fen(own_fen).to_string(),
                    "period_total": Money::from_fen(period_total_fen).to_string(),
                    "open_offset": Money::from_fen(offset_fen).to_string(),
                    "restated": restated.iter().map(|(o, j)| json!({
                        "claim": o.pid,
                        "before": Money::from_fen(fen(&o.judgement).unwrap_or_default()).to_string(),
                        "after": Money::from_fen(fen(j).unwrap_or_default()).to_string(),
                    })).collect::<Vec<_>>(),
                }),
            ),
        },
        now,
        request_id,
    )
    .await?;
    keep(
        &txn,
        c.id,
        ms.id,
        Cause::Approved,
        None,
        scheme_version,
        &judgement,
        now,
    )
    .await?;
    for (other, new) in &restated {
        restate(
            &txn,
            caller,
            other,
            new,
            (c.id, &c.pid),
            ms.id,
            other.scheme_version,
            now,
        )
        .await?;
    }
    // An allowance paid in the period (wherever filing order now puts it) counts for the
    // next period's continuity; money paid is never un-paid, so the flag only ever turns on.
    let allowance = std::iter::once(&judgement)
        .chain(judgements.iter())
        .any(|j| j.item(ItemCode::DailyAllowance) > Decimal::ZERO);
    membership::Entity::update_many()
        .col_expr(
            membership::Column::AllowancePaid,
            Expr::value(ms.allowance_paid || allowance),
        )
        .col_expr(membership::Column::OffsetFen, Expr::value(offset_fen))
        .filter(membership::Column::Id.eq(ms.id))
        .exec(&txn)
        .await?;
    txn.commit().await?;
    reload(db, c.id).await
}

/// The most claims one bulk approval takes: a page of the association's queue as a phone or a
/// desk list shows it (`GET /claims?status=association_review&limit=100`).
pub const BULK_MAX: u64 = 100;

/// Approves offered claims (免申即享) waiting at the association's review, in one request: the
/// benefit officer ticks the offers of a queue page they have read, each at the version they
/// saw. Each claim is approved exactly as alone ([`approve`], no adjustment): judged under its
/// own period lock in its own transaction, so a claim that cannot be approved (a stale version,
/// not an offer, not at the association's review, refused by the rules, four eyes) is left as
/// it was and reported with the same error a single approval would give, and never stops or
/// half-writes the others. Claims are approved in filing order (first submission, then id),
/// whatever the order of the list, so a period's claims are granted as filed and nothing
/// approved in the batch is re-stated by a later one of it. The outcomes come back in the
/// order of the list.
pub async fn approve_offers(
    db: &DatabaseConnection,
    calendar: Option<&WorkdayCalendar>,
    caller: &Caller,
    listed: &[(String, i32)],
    today: NaiveDate,
    request_id: Option<String>,
) -> Result<Vec<(String, Result<Claim, ClaimError>)>, ClaimError> {
    if caller.role != Role::AssociationReviewer {
        return Err(ClaimError::Forbidden(
            "补助由互助会审核员批量审批 / offers are approved in bulk by the association's reviewers"
                .into(),
        ));
    }
    let mut outcomes: Vec<Option<Result<Claim, ClaimError>>> = Vec::with_capacity(listed.len());
    let mut due: Vec<(usize, Claim)> = Vec::new();
    for (i, (pid, version)) in listed.iter().enumerate() {
        match offer_at_association(db, caller, pid, *version).await {
            Ok(c) => {
                outcomes.push(None);
                due.push((i, c));
            }
            Err(e) => outcomes.push(Some(Err(e))),
        }
    }
    due.sort_by_key(|(_, c)| (c.first_submitted_at, c.id));
    for (i, c) in due {
        let done = approve(
            db,
            calendar,
            caller,
            &c.pid,
            c.version,
            None,
            today,
            request_id.clone(),
        )
        .await;
        outcomes[i] = Some(done);
    }
    Ok(listed
        .iter()
        .zip(outcomes)
        .map(|((pid, _), outcome)| {
            (
                pid.clone(),
                outcome.unwrap_or_else(|| Err(anyhow::anyhow!("claim {pid} not judged").into())),
            )
        })
        .collect())
}

/// An offered claim at the association's review, at `version`, that the caller may approve.
async fn offer_at_association(
    db: &DatabaseConnection,
    caller: &Caller,
    pid: &str,
    version: i32,
) -> Result<Claim, ClaimError> {
    let c = get(db, caller, pid).await?;
    if c.version != version {
        return Err(ClaimError::VersionConflict { current: c.version });
    }
    if c.filed_by != FiledBy::InsuranceFile {
        return Err(ClaimError::Invalid {
            code: "not_an_offer",
            field: "id".into(),
            message:
                "此申领由职工申请，请逐件审批 / an application, not an offer: approve it on its own"
                    .into(),
        });
    }
    if c.status != ClaimStatus::AssociationReview {
        return Err(ClaimError::WrongStatus { status: c.status });
    }
    Ok(c)
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

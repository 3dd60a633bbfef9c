//! Memberships: who is covered by which scheme, when. Members see their own; staff their
//! subtree's; the association extends coverage for free in one audited action.

use chrono::{NaiveDate, Utc};
use sea_orm::QueryTrait;
use sea_orm::sea_query::{Expr, Query};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect, Set,
};
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

use entity::{coverage_extension, member, membership, organisation};

use super::outbox::{self, MembershipSet, Occasion};
use super::page::{Page, page_from};
use super::roster_facts::RosterFacts;
use super::{Problem, Requester, new_pid};
use crate::domain::Money;
use crate::engine::bounds::{self, OutOfRange};
use crate::service::scope::{Scope, Scoped};

/// Whether a membership covers today, is still to come, or has ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CoverageState {
    Upcoming,
    Covered,
    Ended,
}

/// A membership with its member and organisation names.
#[derive(Clone, Debug)]
pub struct Membership {
    pub id: i64,
    pub pid: String,
    pub member_pid: String,
    pub member_name: String,
    pub organisation_pid: String,
    pub organisation_name: String,
    pub scheme_code: String,
    pub coverage_start: NaiveDate,
    pub coverage_end: NaiveDate,
    pub consecutive_periods: i32,
    pub continuous_renewal: bool,
    pub fee: Money,
    pub source: String,
    pub extended: bool,
    /// What the period's claims were granted beyond its total (see `engine::period`): absorbed
    /// by its next claims.
    pub open_offset: Money,
    /// What the union's roster said about the person (group enrolments only).
    pub roster: Option<RosterFacts>,
}

impl Membership {
    /// The coverage state on `today`.
    pub fn state_on(&self, today: NaiveDate) -> CoverageState {
        if today < self.coverage_start {
            CoverageState::Upcoming
        } else if today > self.coverage_end {
            CoverageState::Ended
        } else {
            CoverageState::Covered
        }
    }
}

async fn hydrate<C: ConnectionTrait>(
    db: &C,
    rows: Vec<membership::Model>,
) -> Result<Vec<Membership>, DbErr> {
    let member_ids: Vec<i64> = rows.iter().map(|m| m.member_id).collect();
    let org_ids: Vec<i64> = rows.iter().map(|m| m.organisation_id).collect();
    let members: std::collections::HashMap<i64, (String, String)> = member::Entity::find()
        .filter(member::Column::Id.is_in(member_ids))
        .all(db)
        .await?
        .into_iter()
        .map(|m| (m.id, (m.pid, m.name)))
        .collect();
    let orgs: std::collections::HashMap<i64, (String, String)> = organisation::Entity::find()
        .filter(organisation::Column::Id.is_in(org_ids))
        .all(db)
        .await?
        .into_iter()
        .map(|o| (o.id, (o.pid, o.name)))
        .collect();
    let entry_keys: Vec<(i64, i64)> = rows
        .iter()
        .filter_map(|m| m.enrolment_batch_id.map(|b| (b, m.member_id)))
        .collect();
    let mut facts = super::roster_facts::by_batch_and_member(db, &entry_keys).await?;
    rows.into_iter()
        .map(|m| {
            let (member_pid, member_name) = members
                .get(&m.member_id)
                .cloned()
                .ok_or_else(|| DbErr::Custom(format!("membership {}: member missing", m.pid)))?;
            let (organisation_pid, organisation_name) =
                orgs.get(&m.organisation_id).cloned().ok_or_else(|| {
                    DbErr::Custom(format!("membership {}: organisation missing", m.pid))
                })?;
            Ok(Membership {
                id: m.id,
                pid: m.pid,
                member_pid,
                member_name,
                organisation_pid,
                organisation_name,
                scheme_code: m.scheme_code,
                coverage_start: m.coverage_start,
                coverage_end: m.coverage_end,
                consecutive_periods: m.consecutive_periods,
                continuous_renewal: m.continuous_renewal,
                fee: Money::from_fen(m.fee_fen),
                source: m.source,
                extended: m.extension_id.is_some(),
                open_offset: Money::from_fen(m.offset_fen),
                roster: m
                    .enrolment_batch_id
                    .and_then(|b| facts.remove(&(b, m.member_id))),
            })
        })
        .collect()
}

/// Filters for listing memberships.
#[derive(Debug, Default, Clone)]
pub struct MembershipFilter {
    /// Only this organisation's subtree (public id; must itself be in scope to match).
    pub organisation_pid: Option<String>,
    pub scheme_code: Option<String>,
    /// Only periods that start in this year.
    pub year: Option<i32>,
}

async fn filtered<C: ConnectionTrait>(
    db: &C,
    scope: &Scope,
    filter: &MembershipFilter,
) -> Result<sea_orm::Select<membership::Entity>, DbErr> {
    let mut q = membership::Entity::find_within(scope);
    if let Some(org) = &filter.organisation_pid {
        // That organisation's subtree (scope still applies on top).
        let path = organisation::Entity::find()
            .filter(organisation::Column::Pid.eq(org.as_str()))
            .one(db)
            .await?
            .map(|o| o.path)
            .unwrap_or_else(|| "/none/".into());
        let subtree = Query::select()
            .column(organisation::Column::Id)
            .from(organisation::Entity)
            .and_where(organisation::Column::Path.starts_with(path.as_str()))
            .to_owned();
        q = q.filter(membership::Column::OrganisationId.in_subquery(subtree));
    }
    if let Some(code) = &filter.scheme_code {
        q = q.filter(membership::Column::SchemeCode.eq(code.as_str()));
    }
    if let Some(year) = filter.year
        && let (Some(first), Some(last)) = (
            NaiveDate::from_ymd_opt(year, 1, 1),
            NaiveDate::from_ymd_opt(year, 12, 31),
        )
    {
        q = q
            .filter(membership::Column::CoverageStart.gte(first))
            .filter(membership::Column::CoverageStart.lte(last));
    }
    Ok(q)
}

/// Memberships inside `scope`, in id order.
pub async fn list_within<C: ConnectionTrait>(
    db: &C,
    scope: &Scope,
    filter: &MembershipFilter,
    after_id: Option<i64>,
    limit: u64,
) -> Result<Page<Membership>, DbErr> {
    let mut q = filtered(db, scope, filter)
        .await?
        .order_by_asc(membership::Column::Id);
    if let Some(after) = after_id {
        q = q.filter(membership::Column::Id.gt(after));
    }
    let rows = q.limit(limit + 1).all(db).await?;
    let page = page_from(rows, limit, |m| m.id);
    Ok(Page {
        items: hydrate(db, page.items).await?,
        next_cursor: page.next_cursor,
    })
}

/// Every membership inside `scope` matching `filter` (exports), in member order.
pub async fn all_within<C: ConnectionTrait>(
    db: &C,
    scope: &Scope,
    filter: &MembershipFilter,
) -> Result<Vec<Membership>, DbErr> {
    let rows = filtered(db, scope, filter)
        .await?
        .order_by_asc(membership::Column::OrganisationId)
        .order_by_asc(membership::Column::Id)
        .all(db)
        .await?;
    hydrate(db, rows).await
}

/// A free extension as the association asks for it: either `membership_pids`, or
/// `scheme_code` (with an optional `organisation_pid`) for every membership of that scheme in
/// the requester's subtree.
#[derive(Clone, Debug)]
pub struct ExtensionRequest {
    pub membership_pids: Option<Vec<String>>,
    pub scheme_code: Option<String>,
    pub organisation_pid: Option<String>,
    /// The new last day of coverage.
    pub new_end: NaiveDate,
    /// Why, kept in the audit trail as given.
    pub reason: String,
}

/// Why an extension was refused.
#[derive(Debug, thiserror::Error)]
pub enum ExtensionError {
    /// Neither or both of the two ways to choose memberships.
    #[error("{}", .0.message)]
    Refused(Problem),
    /// The organisation named is not in the requester's subtree (or does not exist).
    #[error("not found")]
    NotFound,
    #[error(transparent)]
    Db(#[from] DbErr),
}

/// What a free extension covers.
#[derive(Debug, Clone)]
enum ExtensionSelection {
    /// These memberships (public ids), as far as they are in scope.
    Memberships(Vec<String>),
    /// Every membership of a scheme in the caller's subtree (optionally one organisation's).
    Scheme {
        scheme_code: String,
        organisation_pid: Option<String>,
    },
}

impl ExtensionRequest {
    fn selection(&self) -> Result<ExtensionSelection, Problem> {
        match (&self.membership_pids, &self.scheme_code) {
            (Some(pids), None) => Ok(ExtensionSelection::Memberships(pids.clone())),
            (None, Some(code)) => Ok(ExtensionSelection::Scheme {
                scheme_code: code.clone(),
                organisation_pid: self.organisation_pid.clone(),
            }),
            _ => Err(Problem::invalid_field(
                "membership_ids",
                "给出 membership_ids 或 scheme_code 之一 / give either membership_ids or scheme_code",
            )),
        }
    }
}

/// Extends coverage for free over the requested memberships of the requester's subtree, in
/// one audited action; each member is told (outbox).
pub async fn extend(
    db: &DatabaseConnection,
    requester: &Requester,
    request: &ExtensionRequest,
) -> Result<Extension, ExtensionError> {
    let selection = request.selection().map_err(ExtensionError::Refused)?;
    let txn = crate::db::begin_write(db).await?;
    // An organisation that is not there is a 404, not an extension of nobody.
    if let ExtensionSelection::Scheme {
        organisation_pid: Some(org),
        ..
    } = &selection
        && super::organisation::get_within(&txn, &requester.scope, org)
            .await?
            .is_none()
    {
        return Err(ExtensionError::NotFound);
    }
    let done = extend_selection(
        &txn,
        &requester.scope,
        &selection,
        request.new_end,
        request.reason.trim(),
        &requester.pid,
    )
    .await?
    .map_err(|out| {
        ExtensionError::Refused(Problem::invalid(
            out.code(),
            out.message(),
            json!({ "field": out.field(), "latest": latest_of(&out) }),
        ))
    })?;
    requester.audit(&txn, "coverage.extended",
        ("coverage_extension", Some(&done.pid)),
        json!({ "new_end": done.new_end, "count": done.membership_count, "reason": request.reason, "scheme_code": request.scheme_code, "organisation_id": request.organisation_pid })).await?;
    txn.commit().await?;
    Ok(done)
}

/// The result of a free extension.
#[derive(Clone, Debug)]
pub struct Extension {
    pub pid: String,
    pub new_end: NaiveDate,
    pub membership_count: u64,
}

fn latest_of(out: &OutOfRange) -> Option<NaiveDate> {
    match out {
        OutOfRange::ExtensionTooLong { latest } => Some(*latest),
        _ => None,
    }
}

/// Extends, in one action, the coverage end of the selected memberships that end before
/// `new_end` (set-based: one UPDATE and one INSERT … SELECT for the outbox, whatever the size).
/// Refused (nothing written) when `new_end` lies more than one coverage term after the
/// earliest end it would extend ([`bounds::check_extension`]).
async fn extend_selection<C: ConnectionTrait>(
    db: &C,
    scope: &Scope,
    selection: &ExtensionSelection,
    new_end: NaiveDate,
    reason: &str,
    created_by: &str,
) -> Result<Result<Extension, OutOfRange>, DbErr> {
    let now = Utc::now();
    let selected = selected_memberships(db, scope, selection)
        .await?
        .filter(membership::Column::CoverageEnd.lt(new_end))
        .filter(membership::Column::Status.eq("active"));
    let earliest: Option<NaiveDate> = selected
        .select_only()
        .column_as(membership::Column::CoverageEnd.min(), "earliest")
        .into_tuple()
        .one(db)
        .await?
        .flatten();
    if let Some(earliest) = earliest
        && let Err(out) = bounds::check_extension(earliest, new_end)
    {
        return Ok(Err(out));
    }
    let extension = coverage_extension::ActiveModel {
        pid: Set(new_pid()),
        new_end: Set(new_end),
        reason: Set(reason.to_owned()),
        membership_count: Set(0),
        created_by: Set(created_by.to_owned()),
        created_at: Set(now),
        ..Default::default()
    }
    .insert(db)
    .await?;

    let q = selected_memberships(db, scope, selection)
        .await?
        .filter(membership::Column::CoverageEnd.lt(new_end))
        .filter(membership::Column::Status.eq("active"));
    let ids = q.select_only().column(membership::Column::Id).into_query();
    let updated = membership::Entity::update_many()
        .col_expr(membership::Column::CoverageEnd, Expr::value(new_end))
        .col_expr(membership::Column::ExtensionId, Expr::value(extension.id))
        .filter(membership::Column::Id.in_subquery(ids))
        .exec(db)
        .await?
        .rows_affected;

    outbox::enqueue_for_memberships(
        db,
        Occasion::CoverageExtended,
        MembershipSet::Extension(extension.id),
        &format!("extension:{}:membership:", extension.pid),
        &json!({ "new_end": new_end, "reason": reason }),
        now,
    )
    .await?;

    let mut active: coverage_extension::ActiveModel = extension.into();
    active.membership_count = Set(i32::try_from(updated).unwrap_or(i32::MAX));
    let extension = active.update(db).await?;
    Ok(Ok(Extension {
        pid: extension.pid,
        new_end,
        membership_count: updated,
    }))
}

/// The memberships a selection names, in the caller's scope.
async fn selected_memberships<C: ConnectionTrait>(
    db: &C,
    scope: &Scope,
    selection: &ExtensionSelection,
) -> Result<sea_orm::Select<membership::Entity>, DbErr> {
    Ok(match selection {
        ExtensionSelection::Memberships(pids) => membership::Entity::find_within(scope)
            .filter(membership::Column::Pid.is_in(pids.clone())),
        ExtensionSelection::Scheme {
            scheme_code,
            organisation_pid,
        } => {
            filtered(
                db,
                scope,
                &MembershipFilter {
                    organisation_pid: organisation_pid.clone(),
                    scheme_code: Some(scheme_code.clone()),
                    year: None,
                },
            )
            .await?
        }
    })
}

/// The last covered day of a membership.
pub async fn coverage_end<C: ConnectionTrait>(
    db: &C,
    membership_id: i64,
) -> Result<Option<NaiveDate>, sea_orm::DbErr> {
    Ok(membership::Entity::find_by_id(membership_id)
        .one(db)
        .await?
        .map(|m| m.coverage_end))
}

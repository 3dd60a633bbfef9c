//! Enrolment targets (the seeds' task-allocation tables) and progress: for every organisation
//! of a subtree, the year's target, the people enrolled (and those on rosters awaiting
//! transfer or confirmation, and those refused and still out), the completion rate and the renewal
//! rate (续会率). Counts are aggregated once per unit union in SQL and rolled up the tree by
//! materialised path, so every level adds up.

use std::collections::{HashMap, HashSet};

use chrono::{Datelike, NaiveDate, Utc};
use rust_decimal::Decimal;
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};
use serde_json::json;

use entity::{enrolment_batch, enrolment_entry, enrolment_target, membership, organisation};

use super::Requester;
use super::enrolment::{BatchStatus, scheme_family};
use super::organisation::{self as organisations, Organisation, OrganisationKind};
use crate::engine::primitives::coverage_period;
use crate::engine::scheme::Coverage;
use crate::service::scope::{Scope, Scoped};

/// An enrolment target as an association officer sets it.
#[derive(Clone, Debug)]
pub struct Target {
    /// Public id of the organisation (inside the requester's subtree).
    pub organisation_pid: String,
    pub year: i32,
    /// A scheme, whose yearly versions count together; `None`: all schemes.
    pub scheme_code: Option<String>,
    pub people: i32,
}

/// Sets (or replaces) the target of an organisation of the requester's subtree (audited);
/// `false` when the organisation is not in the subtree.
pub async fn set(
    db: &DatabaseConnection,
    requester: &Requester,
    target: &Target,
) -> Result<bool, DbErr> {
    let txn = crate::db::begin_write(db).await?;
    let Some(org) =
        organisations::get_within(&txn, &requester.scope, &target.organisation_pid).await?
    else {
        return Ok(false);
    };
    set_target(
        &txn,
        &org,
        target.year,
        target.scheme_code.as_deref(),
        target.people,
        &requester.pid,
    )
    .await?;
    requester.audit(&txn, "target.set",
        ("organisation", Some(&org.pid)),
        json!({ "year": target.year, "scheme_code": target.scheme_code, "target_people": target.people })).await?;
    txn.commit().await?;
    Ok(true)
}

/// Sets (or replaces) an organisation's target for a year and scheme family (`None`: all).
pub async fn set_target<C: ConnectionTrait>(
    db: &C,
    org: &Organisation,
    year: i32,
    scheme: Option<&str>,
    target_people: i32,
    set_by: &str,
) -> Result<(), DbErr> {
    let row = enrolment_target::ActiveModel {
        organisation_id: Set(org.id),
        year: Set(year),
        scheme_code: Set(scheme.map(scheme_family).unwrap_or("").to_owned()),
        target_people: Set(target_people),
        set_by: Set(set_by.to_owned()),
        set_at: Set(Utc::now()),
        ..Default::default()
    };
    enrolment_target::Entity::insert(row)
        .on_conflict(
            OnConflict::columns([
                enrolment_target::Column::OrganisationId,
                enrolment_target::Column::Year,
                enrolment_target::Column::SchemeCode,
            ])
            .update_columns([
                enrolment_target::Column::TargetPeople,
                enrolment_target::Column::SetBy,
                enrolment_target::Column::SetAt,
            ])
            .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    Ok(())
}

/// One organisation's progress.
#[derive(Clone, Debug)]
pub struct Progress {
    pub organisation_pid: String,
    pub organisation_name: String,
    pub kind: OrganisationKind,
    pub parent_pid: Option<String>,
    pub depth: usize,
    /// The target set for this organisation, or the sum of its children's.
    pub target: Option<i64>,
    /// People enrolled in the year (periods starting in it).
    pub enrolled: i64,
    /// People enrolled the year before.
    pub previous: i64,
    /// Of those, people enrolled again this year.
    pub renewed: i64,
    /// People on rosters submitted for the year and not yet confirmed (awaiting the union's
    /// transfer or the association's confirmation): not enrolled yet, not forgotten either.
    pub awaiting: i64,
    /// People on rosters the association refused or the union withdrew, for the year, who are
    /// still out: neither enrolled nor on a roster awaiting confirmation.
    pub refused: i64,
}

impl Progress {
    /// enrolled / target.
    pub fn completion_rate(&self) -> Option<Decimal> {
        self.target.filter(|t| *t > 0).map(|t| {
            (Decimal::from(self.enrolled) / Decimal::from(t))
                .round_dp(4)
                .normalize()
        })
    }

    /// renewed / previous (续会率).
    pub fn renewal_rate(&self) -> Option<Decimal> {
        (self.previous > 0).then(|| {
            (Decimal::from(self.renewed) / Decimal::from(self.previous))
                .round_dp(4)
                .normalize()
        })
    }
}

fn year_bounds(year: i32) -> Result<(NaiveDate, NaiveDate), DbErr> {
    NaiveDate::from_ymd_opt(year, 1, 1)
        .zip(NaiveDate::from_ymd_opt(year, 12, 31))
        .ok_or_else(|| DbErr::Custom(format!("year {year} out of range")))
}

/// Distinct members per unit union whose period starts in `year` (optionally a scheme
/// family), and — with `renewed_into` — only those also enrolled in that later year.
async fn counts_by_unit<C: ConnectionTrait>(
    db: &C,
    year: i32,
    family: Option<&str>,
    renewed_into: Option<i32>,
) -> Result<HashMap<i64, i64>, DbErr> {
    let backend = db.get_database_backend();
    let (from, to) = year_bounds(year)?;
    let like = family
        .map(|f| format!("{f}-%"))
        .unwrap_or_else(|| "%".into());
    let mut values: Vec<sea_orm::Value> = vec![from.into(), to.into(), like.clone().into()];
    let mut sql = String::from(
        "SELECT m.organisation_id AS org, COUNT(DISTINCT m.member_id) AS n FROM membership m \
         WHERE m.coverage_start >= ? AND m.coverage_start <= ? AND m.scheme_code LIKE ?",
    );
    if let Some(next) = renewed_into {
        let (nfrom, nto) = year_bounds(next)?;
        sql.push_str(
            " AND EXISTS (SELECT 1 FROM membership n WHERE n.member_id = m.member_id \
             AND n.coverage_start >= ? AND n.coverage_start <= ? AND n.scheme_code LIKE ?)",
        );
        values.extend([nfrom.into(), nto.into(), like.into()]);
    }
    sql.push_str(" GROUP BY m.organisation_id");
    let rows = db
        .query_all_raw(super::raw_statement(backend, &sql, values))
        .await?;
    rows.into_iter()
        .map(|r| Ok((r.try_get::<i64>("", "org")?, r.try_get::<i64>("", "n")?)))
        .collect()
}

/// Batches in one of `statuses` (of a scheme family) whose coverage starts in `year`: the
/// period each would get were it confirmed on the day it was submitted (a calendar-year
/// scheme: its year).
async fn unconfirmed_batches<C: ConnectionTrait>(
    db: &C,
    statuses: &[BatchStatus],
    year: i32,
    family: Option<&str>,
) -> Result<Vec<enrolment_batch::Model>, DbErr> {
    let batches = enrolment_batch::Entity::find()
        .filter(enrolment_batch::Column::Status.is_in(statuses.iter().map(|s| s.as_str())))
        .all(db)
        .await?;
    let mut coverage: HashMap<(String, i32), Option<Coverage>> = HashMap::new();
    let mut found = Vec::new();
    for b in batches {
        if family.is_some_and(|f| scheme_family(&b.scheme_code) != f) {
            continue;
        }
        let key = (b.scheme_code.clone(), b.scheme_version);
        if !coverage.contains_key(&key) {
            let found = super::scheme::version(db, &b.scheme_code, b.scheme_version)
                .await?
                .map(|p| p.definition.coverage);
            coverage.insert(key.clone(), found);
        }
        let starts = coverage
            .get(&key)
            .and_then(Option::as_ref)
            .and_then(|c| coverage_period(c, b.created_at.date_naive()))
            .map(|(start, _)| start.year());
        if starts == Some(year) {
            found.push(b);
        }
    }
    Ok(found)
}

/// People on rosters not yet confirmed, per unit union, whose coverage starts in `year`.
async fn awaiting_by_unit<C: ConnectionTrait>(
    db: &C,
    year: i32,
    family: Option<&str>,
) -> Result<HashMap<i64, i64>, DbErr> {
    let mut counts: HashMap<i64, i64> = HashMap::new();
    for b in unconfirmed_batches(db, &BatchStatus::AWAITING, year, family).await? {
        *counts.entry(b.organisation_id).or_default() += i64::from(b.member_count);
    }
    Ok(counts)
}

/// The members on the entries of `batch_ids`: `(batch id, member id)`.
async fn entries_of<C: ConnectionTrait>(
    db: &C,
    batch_ids: &[i64],
) -> Result<Vec<(i64, i64)>, DbErr> {
    let mut found = Vec::new();
    for chunk in batch_ids.chunks(500) {
        let rows: Vec<(i64, i64)> = enrolment_entry::Entity::find()
            .select_only()
            .column(enrolment_entry::Column::BatchId)
            .column(enrolment_entry::Column::MemberId)
            .filter(enrolment_entry::Column::BatchId.is_in(chunk.to_vec()))
            .into_tuple()
            .all(db)
            .await?;
        found.extend(rows);
    }
    Ok(found)
}

/// People on rosters refused by the association or withdrawn by the union, per unit union,
/// whose coverage would start in `year`, and who are still out: neither enrolled for the year
/// (of the scheme family) nor on a roster awaiting transfer or confirmation. A person refused
/// twice counts once; one resubmitted leaves this count for `awaiting`.
async fn refused_by_unit<C: ConnectionTrait>(
    db: &C,
    year: i32,
    family: Option<&str>,
) -> Result<HashMap<i64, i64>, DbErr> {
    let closed = unconfirmed_batches(db, &BatchStatus::CLOSED, year, family).await?;
    if closed.is_empty() {
        return Ok(HashMap::new());
    }
    let org_of: HashMap<i64, i64> = closed.iter().map(|b| (b.id, b.organisation_id)).collect();
    let closed_ids: Vec<i64> = closed.iter().map(|b| b.id).collect();
    let refused: Vec<(i64, i64)> = entries_of(db, &closed_ids).await?;
    let awaiting_ids: Vec<i64> = unconfirmed_batches(db, &BatchStatus::AWAITING, year, family)
        .await?
        .iter()
        .map(|b| b.id)
        .collect();
    let mut still_in: HashSet<i64> = entries_of(db, &awaiting_ids)
        .await?
        .into_iter()
        .map(|(_, m)| m)
        .collect();
    let (from, to) = year_bounds(year)?;
    let mut members: Vec<i64> = refused.iter().map(|(_, m)| *m).collect();
    members.sort_unstable();
    members.dedup();
    for chunk in members.chunks(500) {
        let rows: Vec<(i64, String)> = membership::Entity::find()
            .select_only()
            .column(membership::Column::MemberId)
            .column(membership::Column::SchemeCode)
            .filter(membership::Column::MemberId.is_in(chunk.to_vec()))
            .filter(membership::Column::CoverageStart.gte(from))
            .filter(membership::Column::CoverageStart.lte(to))
            .into_tuple()
            .all(db)
            .await?;
        still_in.extend(
            rows.into_iter()
                .filter(|(_, code)| family.is_none_or(|f| scheme_family(code) == f))
                .map(|(m, _)| m),
        );
    }
    let out: HashSet<(i64, i64)> = refused
        .into_iter()
        .filter(|(_, m)| !still_in.contains(m))
        .filter_map(|(b, m)| org_of.get(&b).map(|org| (*org, m)))
        .collect();
    let mut counts: HashMap<i64, i64> = HashMap::new();
    for (org, _) in out {
        *counts.entry(org).or_default() += 1;
    }
    Ok(counts)
}

/// Progress of every organisation inside `scope` for `year` (and a scheme family).
pub async fn progress<C: ConnectionTrait>(
    db: &C,
    scope: &Scope,
    year: i32,
    scheme: Option<&str>,
) -> Result<Vec<Progress>, DbErr> {
    let family = scheme.map(scheme_family);
    let orgs = organisation::Entity::find_within(scope)
        .order_by_asc(organisation::Column::Path)
        .all(db)
        .await?;
    let enrolled = counts_by_unit(db, year, family, None).await?;
    let previous = counts_by_unit(db, year - 1, family, None).await?;
    let renewed = counts_by_unit(db, year - 1, family, Some(year)).await?;
    let awaiting = awaiting_by_unit(db, year, family).await?;
    let refused = refused_by_unit(db, year, family).await?;
    let targets: HashMap<i64, i64> = enrolment_target::Entity::find()
        .filter(enrolment_target::Column::Year.eq(year))
        .filter(enrolment_target::Column::SchemeCode.eq(family.unwrap_or("")))
        .filter(enrolment_target::Column::OrganisationId.is_in(orgs.iter().map(|o| o.id)))
        .all(db)
        .await?
        .into_iter()
        .map(|t| (t.organisation_id, i64::from(t.target_people)))
        .collect();
    let pid_of: HashMap<i64, String> = orgs.iter().map(|o| (o.id, o.pid.clone())).collect();
    let base_depth = orgs
        .iter()
        .map(|o| o.path.matches('/').count())
        .min()
        .unwrap_or(0);

    // Sums over each node's subtree: every count is added to the node and each ancestor
    // named in its materialised path (O(nodes × depth)).
    let roll_up = |map: &HashMap<i64, i64>| -> HashMap<i64, i64> {
        let mut totals: HashMap<i64, i64> = HashMap::new();
        for o in &orgs {
            if let Some(n) = map.get(&o.id) {
                for ancestor in o.path.split('/').filter_map(|p| p.parse::<i64>().ok()) {
                    *totals.entry(ancestor).or_default() += n;
                }
            }
        }
        totals
    };
    let (enrolled, previous, renewed) = (roll_up(&enrolled), roll_up(&previous), roll_up(&renewed));
    let awaiting = roll_up(&awaiting);
    let refused = roll_up(&refused);
    // Deepest first, so a parent without a target of its own can add up its children's.
    let mut derived_targets: HashMap<i64, Option<i64>> = HashMap::new();
    let mut children_of: HashMap<i64, Vec<i64>> = HashMap::new();
    for o in &orgs {
        if let Some(parent) = o.parent_id {
            children_of.entry(parent).or_default().push(o.id);
        }
    }
    let mut by_depth: Vec<&organisation::Model> = orgs.iter().collect();
    by_depth.sort_by_key(|o| std::cmp::Reverse(o.path.len()));
    for o in &by_depth {
        let own = targets.get(&o.id).copied();
        let children: Vec<Option<i64>> = children_of
            .get(&o.id)
            .map(|ids| {
                ids.iter()
                    .map(|c| derived_targets.get(c).copied().flatten())
                    .collect()
            })
            .unwrap_or_default();
        let from_children = if children.is_empty() || children.iter().all(Option::is_none) {
            None
        } else {
            Some(children.iter().flatten().sum())
        };
        derived_targets.insert(o.id, own.or(from_children));
    }
    orgs.iter()
        .map(|o| {
            let kind = OrganisationKind::parse(&o.kind)
                .ok_or_else(|| DbErr::Custom(format!("organisation kind {}", o.kind)))?;
            Ok(Progress {
                organisation_pid: o.pid.clone(),
                organisation_name: o.name.clone(),
                kind,
                parent_pid: o.parent_id.and_then(|p| pid_of.get(&p).cloned()),
                depth: o.path.matches('/').count().saturating_sub(base_depth),
                target: derived_targets.get(&o.id).copied().flatten(),
                enrolled: enrolled.get(&o.id).copied().unwrap_or(0),
                previous: previous.get(&o.id).copied().unwrap_or(0),
                renewed: renewed.get(&o.id).copied().unwrap_or(0),
                awaiting: awaiting.get(&o.id).copied().unwrap_or(0),
                refused: refused.get(&o.id).copied().unwrap_or(0),
            })
        })
        .collect()
}

//! Group enrolment (团体会员制): a unit union submits its roster for a scheme with its declared
//! head-count; the participation ratio and fees are checked and computed; the union records
//! its bank transfer; the association confirms receipt, which fixes every member's coverage
//! period (continuity and consecutive periods included) and tells each member — in the same
//! transaction, through the outbox.

use std::collections::HashMap;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use rust_decimal::Decimal;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbErr,
    EntityTrait, QueryFilter, QueryOrder, QuerySelect, RelationTrait, Set,
};
use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;

use entity::{enrolment_batch, enrolment_entry, member, membership, organisation};

use super::audit::{self, Actor};
use super::member::{MemberError, NewMember};
use super::organisation::{Organisation, OrganisationKind};
use super::outbox::{self, Occasion};
use super::page::{Page, page_from};
use super::roster_facts::RosterFacts;
use super::scheme::PublishedScheme;
use super::{Problem, ProblemKind, member as member_service, new_pid};
use crate::auth::crypto::{PiiKind, PiiVault};
use crate::domain::{IdNumber, Money, PersonName, PhoneNumber};
use crate::engine::primitives::{coverage_period, next_consecutive_periods, renewal_is_continuous};
use crate::engine::scheme::EnrolmentMode;
use crate::service::scope::{Scope, Scoped};

/// Where a batch stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, serde::Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum BatchStatus {
    /// Roster accepted; waiting for the union's bank transfer.
    Submitted,
    /// The union recorded its transfer; waiting for the association.
    PaymentRecorded,
    /// The association confirmed receipt; coverage is fixed.
    Confirmed,
    /// The association sent the batch back unconfirmed (no or wrong transfer, a roster it
    /// will not take), with a reason: nobody on it is enrolled, and they may be on a new roster.
    Refused,
    /// The union withdrew the batch before paying (to correct it), with a reason.
    Withdrawn,
}

impl BatchStatus {
    /// As stored.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Submitted => "submitted",
            Self::PaymentRecorded => "payment_recorded",
            Self::Confirmed => "confirmed",
            Self::Refused => "refused",
            Self::Withdrawn => "withdrawn",
        }
    }

    /// From the stored text.
    pub fn parse(s: &str) -> Option<Self> {
        [
            Self::Submitted,
            Self::PaymentRecorded,
            Self::Confirmed,
            Self::Refused,
            Self::Withdrawn,
        ]
        .into_iter()
        .find(|v| v.as_str() == s)
    }

    /// A batch that ended without enrolling anyone: its people may be on another roster.
    pub const CLOSED: [BatchStatus; 2] = [BatchStatus::Refused, BatchStatus::Withdrawn];

    /// Still open: awaiting the union's transfer or the association's confirmation.
    pub const AWAITING: [BatchStatus; 2] = [BatchStatus::Submitted, BatchStatus::PaymentRecorded];
}

/// One person on a submitted roster.
#[derive(Clone, Debug)]
pub struct RosterEntry {
    /// Row number in the clerk's file.
    pub row: u32,
    pub name: PersonName,
    pub id_number: IdNumber,
    pub phone: Option<PhoneNumber>,
    pub retired: bool,
    /// What else the roster said (workplace, department, … other columns), kept on the entry.
    pub facts: RosterFacts,
}

/// A problem with one roster row.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct EntryProblem {
    pub row: u32,
    pub column: String,
    pub code: &'static str,
    pub message_zh: String,
}

/// A problem of the roster as a whole (participation ratio, head-count), apart from the rows.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct BatchProblem {
    /// `participation_too_low`, `head_count_too_small`.
    pub code: &'static str,
    pub message_zh: String,
    /// The numbers behind it (`enrolled`, `head_count`, `required_people` …).
    #[schema(value_type = Object)]
    pub details: serde_json::Value,
}

/// A roster as checked so far: its good rows, and the problems already found on the others
/// (by the file's own checks), so that one report holds every problem.
#[derive(Clone, Debug, Default)]
pub struct CheckedRoster {
    /// The rows without a problem of their own.
    pub entries: Vec<RosterEntry>,
    /// Person rows in the file, good or not: what the union means to enrol.
    pub people: u32,
    /// Of them, rows the scheme cannot count towards participation (men on a women-only
    /// scheme).
    pub not_counted: u32,
    /// Problems found on the rows by the file's checks.
    pub problems: Vec<EntryProblem>,
    /// How many rows those problems are on.
    pub rows_with_problems: u32,
    /// The file's header of the ID number column, to name in a problem.
    pub id_number_column: String,
    /// The file's header of the in-service/retired column.
    pub status_column: String,
}

/// Most row problems one report lists (all rows are still counted).
pub const MAX_REPORTED_PROBLEMS: usize = 1000;

/// An enrolment batch.
#[derive(Clone, Debug)]
pub struct Batch {
    pub id: i64,
    pub pid: String,
    /// Internal id of the unit union.
    pub organisation_id: i64,
    pub organisation_pid: String,
    pub organisation_name: String,
    pub scheme_code: String,
    pub scheme_version: i32,
    pub status: BatchStatus,
    pub head_count: i32,
    pub member_count: i32,
    pub fee_total: Money,
    pub regional_share_total: Money,
    pub transfer_reference: Option<String>,
    pub coverage: Option<(NaiveDate, NaiveDate)>,
    pub confirmed_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub version: i32,
    /// Why it was refused or withdrawn, and when.
    pub closed: Option<(String, DateTime<Utc>)>,
}

/// Why an enrolment step was refused.
#[derive(Debug, thiserror::Error)]
pub enum EnrolmentError {
    #[error("members enrol through a unit union")]
    NotAUnitUnion,
    #[error("the scheme enrols members individually, not by roster")]
    NotAGroupScheme,
    #[error("the scheme is incomplete")]
    SchemeIncomplete,
    #[error("enrolment is closed")]
    WindowClosed {
        opens: Option<NaiveDate>,
        closes: NaiveDate,
    },
    #[error("the roster is empty")]
    EmptyRoster,
    /// Every problem of the roster at once: its rows' (from the file and the database) and
    /// the batch's.
    #[error("the roster has problems")]
    Refused {
        rows: Vec<EntryProblem>,
        rows_with_problems: u32,
        batch: Vec<BatchProblem>,
    },
    #[error("the batch is not in the state this step needs")]
    WrongState { status: BatchStatus },
    #[error("the batch changed since it was read")]
    Stale,
    #[error(transparent)]
    Db(#[from] DbErr),
}

impl EnrolmentError {
    /// What the clerk is told; a database failure stays an error of its own.
    pub fn into_problem(self) -> Result<Problem, DbErr> {
        Ok(match self {
            EnrolmentError::NotAUnitUnion => Problem::invalid_value(
                "not_a_unit_union",
                "organisation_id",
                "只有基层工会可以提交参互名单 / only a unit union submits a roster",
            ),
            EnrolmentError::NotAGroupScheme => Problem::invalid_value(
                "not_a_group_scheme",
                "scheme_code",
                "该方案由个人签署付款授权书参加 / members join this scheme individually",
            ),
            EnrolmentError::SchemeIncomplete => Problem::invalid_value(
                "scheme_incomplete",
                "scheme_code",
                "该方案参数不全，暂不能参互 / the scheme is incomplete",
            ),
            EnrolmentError::WindowClosed { opens, closes } => Problem {
                kind: ProblemKind::Invalid,
                code: "enrolment_closed",
                message: format!(
                    "不在参互时间内（{}至{}）/ enrolment is open {} – {}",
                    opens.map(|d| d.to_string()).unwrap_or_default(),
                    closes,
                    opens.map(|d| d.to_string()).unwrap_or_default(),
                    closes
                ),
                details: json!({ "opens": opens, "closes": closes }),
            },
            EnrolmentError::EmptyRoster => {
                Problem::invalid_field("file", "名单为空 / the roster is empty")
            }
            EnrolmentError::Refused {
                rows,
                rows_with_problems,
                batch,
            } => {
                // Rows first: a clerk fixes those in the file. With only batch problems, the
                // first one is the code (what clients matched on before), its numbers kept.
                let (code, message, mut details) = match batch.first() {
                    Some(first) if rows.is_empty() => (
                        first.code,
                        format!("{}，未导入任何人", first.message_zh),
                        first.details.clone(),
                    ),
                    _ => (
                        "roster_invalid",
                        format!(
                            "名单中有{rows_with_problems}行存在问题{}，请修改后重新上传，本次未导入任何人员 / the roster has problems; nothing was imported",
                            if batch.is_empty() {
                                ""
                            } else {
                                "，另有整体问题"
                            }
                        ),
                        json!({}),
                    ),
                };
                details["problems"] = json!(rows);
                details["rows_with_problems"] = json!(rows_with_problems);
                details["batch_problems"] = json!(batch);
                Problem {
                    kind: ProblemKind::Invalid,
                    code,
                    message,
                    details,
                }
            }
            EnrolmentError::WrongState { status } => Problem {
                kind: ProblemKind::Conflict,
                code: "wrong_state",
                message: format!("当前状态不允许此操作 / not possible while {status:?}"),
                details: json!({ "status": status }),
            },
            EnrolmentError::Stale => Problem::conflict(
                "stale_version",
                "数据已被他人修改，请刷新后重试 / changed since you read it; reload and retry",
                json!({}),
            ),
            EnrolmentError::Db(e) => return Err(e),
        })
    }
}

fn fen(m: Money) -> Result<i64, DbErr> {
    m.to_fen().map_err(|e| DbErr::Custom(format!("money: {e}")))
}

fn to_batch(m: enrolment_batch::Model, org: Option<organisation::Model>) -> Result<Batch, DbErr> {
    let org = org.ok_or_else(|| DbErr::Custom(format!("batch {} has no organisation", m.pid)))?;
    let status = BatchStatus::parse(&m.status)
        .ok_or_else(|| DbErr::Custom(format!("batch {}: unknown status {}", m.pid, m.status)))?;
    Ok(Batch {
        id: m.id,
        pid: m.pid,
        organisation_id: m.organisation_id,
        organisation_pid: org.pid,
        organisation_name: org.name,
        scheme_code: m.scheme_code,
        scheme_version: m.scheme_version,
        status,
        head_count: m.head_count,
        member_count: m.member_count,
        fee_total: Money::from_fen(m.fee_total_fen),
        regional_share_total: Money::from_fen(m.regional_share_fen),
        transfer_reference: m.transfer_reference,
        coverage: m.coverage_start.zip(m.coverage_end),
        confirmed_at: m.confirmed_at,
        created_at: m.created_at,
        version: m.lock_version,
        closed: m.closed_reason.zip(m.closed_at),
    })
}

/// The scheme "family" a code belongs to: the code without its year (`nm-inpatient-2025` →
/// `nm-inpatient`), so continuity carries across the yearly versions of one product.
pub fn scheme_family(code: &str) -> &str {
    match code.rsplit_once('-') {
        Some((family, year)) if year.len() == 4 && year.bytes().all(|b| b.is_ascii_digit()) => {
            family
        }
        _ => code,
    }
}

/// The participation rule of a scheme for a unit of `head_count` eligible people: the
/// minimum ratio and the minimum number of people.
pub fn required_participation(scheme: &PublishedScheme, head_count: u32) -> (Decimal, u32) {
    let e = &scheme.definition.enrolment;
    if let Some(below) = e.all_eligible_below
        && head_count < below
    {
        return (Decimal::ONE, head_count);
    }
    let ratio = match &e.large_unit {
        Some(large) if head_count >= large.min_employees => large.min_participation,
        _ => e.min_participation.unwrap_or(Decimal::ZERO),
    };
    // Round up: 75% of 10 people is 8 people (7.5 people cannot enrol).
    let people = (ratio * Decimal::from(head_count)).ceil();
    let people = u32::try_from(people.mantissa())
        .unwrap_or(head_count)
        .min(head_count);
    (ratio, people)
}

/// The fee a member pays and the regional union's share for them.
pub fn fee_for(scheme: &PublishedScheme, retired: bool) -> (Money, Money) {
    let fees = &scheme.definition.fees;
    let fee = if retired {
        fees.retired.unwrap_or(fees.in_service)
    } else {
        fees.in_service
    };
    (
        Money::from_decimal(fee),
        Money::from_decimal(fees.regional_union_share.unwrap_or(Decimal::ZERO)),
    )
}

/// The batch rules, on the people the file holds: participation ratio (for a women-only
/// scheme, the share of the unit's women) and the declared head-count.
pub fn batch_problems(
    scheme: &PublishedScheme,
    head_count: u32,
    people: u32,
    not_counted: u32,
) -> Vec<BatchProblem> {
    let mut found = Vec::new();
    if people > head_count {
        found.push(BatchProblem {
            code: "head_count_too_small",
            message_zh: format!("名单人数 {people} 超过申报的职工人数 {head_count}"),
            details: json!({ "field": "head_count", "enrolled": people, "head_count": head_count }),
        });
    }
    let enrolled = people.saturating_sub(not_counted);
    let (required_ratio, required_people) = required_participation(scheme, head_count);
    if enrolled < required_people {
        let whose = if scheme.definition.eligibility.women_only {
            "女职工参互率不足"
        } else {
            "参互率不足"
        };
        found.push(BatchProblem {
            code: "participation_too_low",
            message_zh: format!(
                "{whose}：{enrolled}/{head_count}，至少需 {required_people} 人（{}%）",
                (required_ratio * Decimal::from(100)).normalize()
            ),
            details: json!({
                "enrolled": enrolled,
                "head_count": head_count,
                "required_ratio": required_ratio.to_string(),
                "required_people": required_people,
            }),
        });
    }
    found
}

/// An entry's columns as [`submit`] writes them (`bulk`).
const ENTRY_COLUMNS: [(&str, super::bulk::Kind); 11] = {
    use super::bulk::Kind;
    [
        ("batch_id", Kind::Int),
        ("member_id", Kind::Int),
        ("row_number", Kind::Int),
        ("retired", Kind::Bool),
        ("fee_fen", Kind::Int),
        ("workplace", Kind::Text),
        ("department", Kind::Text),
        ("employee_number", Kind::Text),
        ("remarks", Kind::Text),
        ("insured", Kind::Bool),
        ("extra_columns", Kind::Text),
    ]
};

/// Submits a unit union's roster for `scheme`: checks window, rows against the database,
/// the batch rules, computes fees, adds new people as members, and writes the batch. Every
/// problem — the ones `roster` already carries from the file, the database's, the batch's — is
/// reported together in one [`EnrolmentError::Refused`].
/// Run it inside a transaction: on any refusal nothing is written.
#[allow(clippy::too_many_arguments)]
pub async fn submit<C: ConnectionTrait>(
    db: &C,
    vault: &PiiVault,
    unit: &Organisation,
    scheme: &PublishedScheme,
    head_count: u32,
    roster: CheckedRoster,
    created_by: &str,
    today: NaiveDate,
) -> Result<Batch, EnrolmentError> {
    let def = &scheme.definition;
    if unit.kind != OrganisationKind::UnitUnion {
        return Err(EnrolmentError::NotAUnitUnion);
    }
    if def.enrolment.mode == EnrolmentMode::Individual {
        return Err(EnrolmentError::NotAGroupScheme);
    }
    if !def.is_complete() {
        return Err(EnrolmentError::SchemeIncomplete);
    }
    if def.enrolment.opens.is_some_and(|o| today < o) || today > def.enrolment.closes {
        return Err(EnrolmentError::WindowClosed {
            opens: def.enrolment.opens,
            closes: def.enrolment.closes,
        });
    }
    let people = roster
        .people
        .max(u32::try_from(roster.entries.len()).unwrap_or(u32::MAX));
    if people == 0 {
        return Err(EnrolmentError::EmptyRoster);
    }
    let entries = roster.entries.as_slice();
    let enrolled = u32::try_from(entries.len()).unwrap_or(u32::MAX);
    let batch = batch_problems(scheme, head_count, people, roster.not_counted);

    // Who is already known, and who is already in a batch of this scheme elsewhere.
    let lookups: Vec<String> = entries
        .iter()
        .map(|e| vault.lookup_hash(PiiKind::IdNumber, e.id_number.as_str()))
        .collect();
    let mut known: HashMap<String, member::Model> = HashMap::new();
    let backend = db.get_database_backend();
    for chunk in lookups.chunks(super::bulk::ROWS_PER_STATEMENT * 5) {
        for m in member::Entity::find()
            .filter(super::bulk::is_in(
                backend,
                "member.id_number_lookup",
                super::bulk::Kind::Text,
                chunk,
            ))
            .all(db)
            .await?
        {
            known.insert(m.id_number_lookup.clone(), m);
        }
    }
    let known_ids: Vec<i64> = known.values().map(|m| m.id).collect();
    let mut elsewhere: HashMap<i64, String> = HashMap::new();
    for chunk in known_ids.chunks(super::bulk::ROWS_PER_STATEMENT * 5) {
        let rows: Vec<(i64, String)> = enrolment_entry::Entity::find()
            .select_only()
            .column(enrolment_entry::Column::MemberId)
            .column(organisation::Column::Name)
            .inner_join(enrolment_batch::Entity)
            .join(
                sea_orm::JoinType::InnerJoin,
                enrolment_batch::Relation::Organisation.def(),
            )
            .filter(super::bulk::is_in(
                backend,
                "enrolment_entry.member_id",
                super::bulk::Kind::Int,
                chunk,
            ))
            .filter(enrolment_batch::Column::SchemeCode.eq(def.code.as_str()))
            .filter(
                enrolment_batch::Column::Status
                    .is_not_in(BatchStatus::CLOSED.map(BatchStatus::as_str)),
            )
            .into_tuple()
            .all(db)
            .await?;
        elsewhere.extend(rows);
    }
    let mut problems: Vec<EntryProblem> = entries
        .iter()
        .zip(&lookups)
        .filter_map(|(e, lookup)| {
            let m = known.get(lookup)?;
            let unit_name = elsewhere.get(&m.id)?;
            Some(EntryProblem {
                row: e.row,
                column: roster.id_number_column.clone(),
                code: "already_enrolled",
                message_zh: format!(
                    "此人已在「{unit_name}」本期{}的参互名单中",
                    def.display.display_name_zh
                ),
            })
        })
        .collect();

    // Retirees of schemes that admit them only after continuous enrolment (nm 2025: since
    // 2019, or ten years): the file cannot show that, the memberships can.
    if let Some(rule) = def
        .eligibility
        .retirees
        .as_ref()
        .filter(|r| r.continuous_since_year.is_some() || r.or_continuous_years.is_some())
    {
        let family = scheme_family(&def.code).to_owned();
        let grace = i64::from(def.coverage.grace_days);
        let retired_ids: Vec<i64> = entries
            .iter()
            .zip(&lookups)
            .filter(|(e, _)| e.retired)
            .filter_map(|(_, l)| known.get(l).map(|m| m.id))
            .collect();
        let mut history: HashMap<i64, Vec<(NaiveDate, NaiveDate)>> = HashMap::new();
        for chunk in retired_ids.chunks(500) {
            for m in membership::Entity::find()
                .filter(membership::Column::MemberId.is_in(chunk.to_vec()))
                .order_by_asc(membership::Column::CoverageStart)
                .all(db)
                .await?
            {
                if scheme_family(&m.scheme_code) == family {
                    history
                        .entry(m.member_id)
                        .or_default()
                        .push((m.coverage_start, m.coverage_end));
                }
            }
        }
        for (e, lookup) in entries.iter().zip(&lookups).filter(|(e, _)| e.retired) {
            let periods = known
                .get(lookup)
                .and_then(|m| history.get(&m.id))
                .map(Vec::as_slice)
                .unwrap_or(&[]);
            if !continuously_enrolled(
                periods,
                today,
                grace,
                rule.continuous_since_year,
                rule.or_continuous_years,
            ) {
                problems.push(EntryProblem {
                    row: e.row,
                    column: roster.status_column.clone(),
                    code: "retiree_not_continuous",
                    message_zh: format!("退休人员须连续参互：{}", rule.condition_zh),
                });
            }
        }
    }
    if !problems.is_empty() || !roster.problems.is_empty() || !batch.is_empty() {
        // The database's problems are on rows the file found good: the counts add up.
        let mut db_rows: Vec<u32> = problems.iter().map(|p| p.row).collect();
        db_rows.sort_unstable();
        db_rows.dedup();
        let rows_with_problems = roster
            .rows_with_problems
            .saturating_add(u32::try_from(db_rows.len()).unwrap_or(u32::MAX));
        let mut rows = roster.problems;
        rows.append(&mut problems);
        rows.sort_by_key(|p| p.row);
        rows.truncate(MAX_REPORTED_PROBLEMS);
        return Err(EnrolmentError::Refused {
            rows,
            rows_with_problems,
            batch,
        });
    }

    let now = Utc::now();
    let mut fee_total = Money::ZERO;
    let mut share_total = Money::ZERO;
    let batch = enrolment_batch::ActiveModel {
        pid: Set(new_pid()),
        organisation_id: Set(unit.id),
        scheme_code: Set(def.code.clone()),
        scheme_version: Set(scheme.version),
        status: Set(BatchStatus::Submitted.as_str().into()),
        head_count: Set(i32::try_from(head_count).unwrap_or(i32::MAX)),
        member_count: Set(i32::try_from(enrolled).unwrap_or(i32::MAX)),
        fee_total_fen: Set(0),
        regional_share_fen: Set(0),
        transfer_reference: Set(None),
        transfer_recorded_at: Set(None),
        confirmed_at: Set(None),
        confirmed_by: Set(None),
        coverage_start: Set(None),
        coverage_end: Set(None),
        created_by: Set(created_by.to_owned()),
        created_at: Set(now),
        lock_version: Set(1),
        ..Default::default()
    }
    .insert(db)
    .await?;

    // People the roster names for the first time become members of this unit, in bulk.
    let news: Vec<NewMember> = entries
        .iter()
        .zip(&lookups)
        .filter(|(_, lookup)| !known.contains_key(*lookup))
        .map(|(e, _)| NewMember {
            name: e.name.clone(),
            id_number: e.id_number.clone(),
            phone: e.phone.clone(),
            bank_card: None,
            retired: e.retired,
        })
        .collect();
    let created = member_service::create_many(db, vault, unit, &news)
        .await
        .map_err(|err| match err {
            MemberError::Db(db) => EnrolmentError::Db(db),
            other => EnrolmentError::Db(DbErr::Custom(other.to_string())),
        })?;

    /// An entry as stored (`ENTRY_COLUMNS`).
    #[derive(serde::Serialize)]
    struct Row<'a> {
        batch_id: i64,
        member_id: i64,
        row_number: u32,
        retired: bool,
        fee_fen: i64,
        workplace: Option<&'a str>,
        department: Option<&'a str>,
        employee_number: Option<&'a str>,
        remarks: Option<&'a str>,
        insured: Option<bool>,
        extra_columns: Option<String>,
    }
    let mut rows = Vec::with_capacity(entries.len());
    for (e, lookup) in entries.iter().zip(&lookups) {
        let member_id = match known.get(lookup) {
            Some(m) => {
                if m.organisation_id != unit.id || m.retired != e.retired {
                    // Changed employer, or retired since: the roster is the union's word.
                    member::ActiveModel {
                        id: Set(m.id),
                        organisation_id: Set(unit.id),
                        retired: Set(e.retired),
                        updated_at: Set(now),
                        ..Default::default()
                    }
                    .update(db)
                    .await?;
                }
                m.id
            }
            None => *created
                .get(lookup)
                .ok_or_else(|| DbErr::Custom("a new member was not found after insert".into()))?,
        };
        let (fee, share) = fee_for(scheme, e.retired);
        fee_total = fee_total + fee;
        share_total = share_total + share;
        rows.push(Row {
            batch_id: batch.id,
            member_id,
            row_number: e.row,
            retired: e.retired,
            fee_fen: fen(fee)?,
            workplace: e.facts.workplace.as_deref(),
            department: e.facts.department.as_deref(),
            employee_number: e.facts.employee_number.as_deref(),
            remarks: e.facts.remarks.as_deref(),
            insured: e.facts.insured,
            extra_columns: e.facts.extra_columns.to_stored(),
        });
    }
    super::bulk::insert(db, "enrolment_entry", &ENTRY_COLUMNS, &rows, "").await?;
    let mut active: enrolment_batch::ActiveModel = batch.into();
    active.fee_total_fen = Set(fen(fee_total)?);
    active.regional_share_fen = Set(fen(share_total)?);
    let batch = active.update(db).await?;
    let org = organisation::Entity::find_by_id(unit.id).one(db).await?;
    Ok(to_batch(batch, org)?)
}

/// Whether `periods` (sorted by start) form one unbroken chain — each renewed within `grace`
/// days of the previous end — reaching up to `today` (within grace) and starting in
/// `since_year` or earlier, or spanning at least `or_years` years.
pub fn continuously_enrolled(
    periods: &[(NaiveDate, NaiveDate)],
    today: NaiveDate,
    grace: i64,
    since_year: Option<i32>,
    or_years: Option<u32>,
) -> bool {
    let Some(&(_, last_end)) = periods.last() else {
        return false;
    };
    if (today - last_end).num_days() > grace {
        return false;
    }
    // Walk back from the newest period while the chain is unbroken.
    let mut chain_start = periods[periods.len() - 1].0;
    for pair in periods.windows(2).rev() {
        let (prev, next) = (pair[0], pair[1]);
        if (next.0 - prev.1).num_days() > grace + 1 {
            break;
        }
        chain_start = prev.0;
    }
    let by_year = since_year.is_some_and(|y| chain_start.year() <= y);
    let by_span =
        or_years.is_some_and(|n| (last_end - chain_start).num_days() + 1 >= i64::from(n) * 365);
    by_year || by_span
}

/// A batch by public id inside `scope`.
pub async fn get_within<C: ConnectionTrait>(
    db: &C,
    scope: &Scope,
    pid: &str,
) -> Result<Option<Batch>, DbErr> {
    match enrolment_batch::Entity::find_within(scope)
        .filter(enrolment_batch::Column::Pid.eq(pid))
        .find_also_related(organisation::Entity)
        .one(db)
        .await?
    {
        Some((b, o)) => Ok(Some(to_batch(b, o)?)),
        None => Ok(None),
    }
}

/// Batches inside `scope`, newest first.
pub async fn list_within<C: ConnectionTrait>(
    db: &C,
    scope: &Scope,
    status: Option<BatchStatus>,
    scheme_code: Option<&str>,
    after_id: Option<i64>,
    limit: u64,
) -> Result<Page<Batch>, DbErr> {
    let mut q =
        enrolment_batch::Entity::find_within(scope).order_by_desc(enrolment_batch::Column::Id);
    if let Some(s) = status {
        q = q.filter(enrolment_batch::Column::Status.eq(s.as_str()));
    }
    if let Some(code) = scheme_code {
        q = q.filter(enrolment_batch::Column::SchemeCode.eq(code));
    }
    if let Some(after) = after_id {
        q = q.filter(enrolment_batch::Column::Id.lt(after));
    }
    let rows = q
        .find_also_related(organisation::Entity)
        .limit(limit + 1)
        .all(db)
        .await?;
    let page = page_from(rows, limit, |(b, _)| b.id);
    Ok(Page {
        items: page
            .items
            .into_iter()
            .map(|(b, o)| to_batch(b, o))
            .collect::<Result<_, _>>()?,
        next_cursor: page.next_cursor,
    })
}

/// Moves a batch from `from` to the next state if nobody changed it since `version` was read
/// (the conditional update is the lock: a stale or concurrent step changes nothing).
async fn advance<C: ConnectionTrait>(
    db: &C,
    batch: &Batch,
    version: i32,
    from: BatchStatus,
    changes: Vec<(enrolment_batch::Column, sea_orm::sea_query::SimpleExpr)>,
) -> Result<(), EnrolmentError> {
    if batch.status != from {
        return Err(EnrolmentError::WrongState {
            status: batch.status,
        });
    }
    let mut update = enrolment_batch::Entity::update_many()
        .col_expr(
            enrolment_batch::Column::LockVersion,
            Expr::value(version + 1),
        )
        .filter(enrolment_batch::Column::Id.eq(batch.id))
        .filter(enrolment_batch::Column::Status.eq(from.as_str()))
        .filter(enrolment_batch::Column::LockVersion.eq(version));
    for (col, value) in changes {
        update = update.col_expr(col, value);
    }
    if update.exec(db).await?.rows_affected != 1 {
        return Err(EnrolmentError::Stale);
    }
    Ok(())
}

/// The union records its bank transfer.
pub async fn record_transfer<C: ConnectionTrait>(
    db: &C,
    batch: &Batch,
    version: i32,
    reference: &str,
) -> Result<(), EnrolmentError> {
    advance(
        db,
        batch,
        version,
        BatchStatus::Submitted,
        vec![
            (
                enrolment_batch::Column::Status,
                Expr::value(BatchStatus::PaymentRecorded.as_str()),
            ),
            (
                enrolment_batch::Column::TransferReference,
                Expr::value(reference),
            ),
            (
                enrolment_batch::Column::TransferRecordedAt,
                Expr::value(Utc::now()),
            ),
        ],
    )
    .await
}

/// The association confirms receipt on `today`: coverage is fixed for every member of the
/// batch (continuity from their previous period of the same scheme family), memberships are
/// written and each member is told through the outbox.
pub async fn confirm<C: ConnectionTrait>(
    db: &C,
    batch: &Batch,
    version: i32,
    scheme: &PublishedScheme,
    confirmed_by: &str,
    today: NaiveDate,
) -> Result<(NaiveDate, NaiveDate), EnrolmentError> {
    let def = &scheme.definition;
    let (start, end) = coverage_period(&def.coverage, today)
        .ok_or_else(|| DbErr::Custom("coverage period out of range".into()))?;
    advance(
        db,
        batch,
        version,
        BatchStatus::PaymentRecorded,
        vec![
            (
                enrolment_batch::Column::Status,
                Expr::value(BatchStatus::Confirmed.as_str()),
            ),
            (
                enrolment_batch::Column::ConfirmedAt,
                Expr::value(Utc::now()),
            ),
            (
                enrolment_batch::Column::ConfirmedBy,
                Expr::value(confirmed_by),
            ),
            (enrolment_batch::Column::CoverageStart, Expr::value(start)),
            (enrolment_batch::Column::CoverageEnd, Expr::value(end)),
        ],
    )
    .await?;

    let entries = enrolment_entry::Entity::find()
        .filter(enrolment_entry::Column::BatchId.eq(batch.id))
        .all(db)
        .await?;
    let member_ids: Vec<i64> = entries.iter().map(|e| e.member_id).collect();
    // Each member's latest earlier period of the same scheme family.
    let family = scheme_family(&def.code).to_owned();
    let mut previous: HashMap<i64, membership::Model> = HashMap::new();
    for chunk in member_ids.chunks(500) {
        for m in membership::Entity::find()
            .filter(membership::Column::MemberId.is_in(chunk.to_vec()))
            .filter(membership::Column::CoverageStart.lt(start))
            .order_by_asc(membership::Column::CoverageEnd)
            .all(db)
            .await?
        {
            if scheme_family(&m.scheme_code) == family {
                previous.insert(m.member_id, m);
            }
        }
    }
    let now = Utc::now();
    let grace = def.coverage.grace_days;
    let organisation_id = batch.organisation_id;
    let mut rows = Vec::with_capacity(entries.len());
    for entry in &entries {
        let (continuous, consecutive) = match previous.get(&entry.member_id) {
            Some(prev) => {
                let continuous = renewal_is_continuous(prev.coverage_end, today, grace);
                let next = next_consecutive_periods(
                    u32::try_from(prev.consecutive_periods).unwrap_or(1),
                    continuous,
                    prev.allowance_paid,
                );
                (continuous, next)
            }
            None => (false, 1),
        };
        rows.push(membership::ActiveModel {
            pid: Set(new_pid()),
            member_id: Set(entry.member_id),
            organisation_id: Set(organisation_id),
            scheme_code: Set(def.code.clone()),
            coverage_start: Set(start),
            coverage_end: Set(end),
            status: Set("active".into()),
            consecutive_periods: Set(i32::try_from(consecutive).unwrap_or(1)),
            continuous_renewal: Set(continuous),
            created_at: Set(now),
            enrolment_batch_id: Set(Some(batch.id)),
            fee_fen: Set(entry.fee_fen),
            allowance_paid: Set(false),
            extension_id: Set(None),
            source: Set("group".into()),
            ..Default::default()
        });
    }
    for chunk in rows.chunks(500) {
        membership::Entity::insert_many(chunk.to_vec())
            .exec_without_returning(db)
            .await?;
    }
    outbox::enqueue_for_memberships(
        db,
        Occasion::EnrolmentConfirmed,
        outbox::MembershipSet::Batch(batch.id),
        "membership:",
        &json!({
            "scheme": def.display.display_name_zh,
            "coverage_start": start,
            "coverage_end": end,
        }),
        now,
    )
    .await?;
    Ok((start, end))
}

/// Why a step on a batch (transfer, confirmation) did not happen.
#[derive(Debug, thiserror::Error)]
pub enum StepError {
    #[error("no such batch in the caller's subtree")]
    NotFound,
    #[error(transparent)]
    Refused(#[from] EnrolmentError),
}

impl From<DbErr> for StepError {
    fn from(e: DbErr) -> Self {
        StepError::Refused(EnrolmentError::Db(e))
    }
}

/// `actor_pid` records the union's bank transfer of batch `pid` (inside `scope`) read at
/// `version`, with its audit entry, in one transaction; the batch as it now stands.
pub async fn record_transfer_within(
    db: &DatabaseConnection,
    scope: &Scope,
    pid: &str,
    version: i32,
    reference: &str,
    actor_pid: &str,
    request_id: Option<String>,
) -> Result<Batch, StepError> {
    let (txn, batch) = begin_step(db, scope, pid).await?;
    record_transfer(&txn, &batch, version, reference.trim()).await?;
    let details = json!({ "reference": reference, "from": "submitted", "to": "payment_recorded" });
    let step = ("enrolment.transfer_recorded", details);
    finish_step(txn, scope, &batch, step, actor_pid, request_id).await
}

/// `actor_pid` confirms receipt of batch `pid`'s fees (inside `scope`) read at `version`, on
/// `today` (see [`confirm`]), with its audit entry, in one transaction; the batch as it now
/// stands.
pub async fn confirm_within(
    db: &DatabaseConnection,
    scope: &Scope,
    pid: &str,
    version: i32,
    actor_pid: &str,
    today: NaiveDate,
    request_id: Option<String>,
) -> Result<Batch, StepError> {
    let (txn, batch) = begin_step(db, scope, pid).await?;
    let published = super::scheme::version(&txn, &batch.scheme_code, batch.scheme_version)
        .await?
        .ok_or_else(|| DbErr::Custom(format!("scheme version of batch {} missing", batch.pid)))?;
    let (start, end) = confirm(&txn, &batch, version, &published, actor_pid, today).await?;
    let details = json!({ "from": "payment_recorded", "to": "confirmed", "coverage_start": start, "coverage_end": end, "members": batch.member_count });
    let step = ("enrolment.confirmed", details);
    finish_step(txn, scope, &batch, step, actor_pid, request_id).await
}

/// How a batch ends unconfirmed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Closing {
    /// The association sends it back (awaiting transfer or confirmation).
    Refuse,
    /// The union takes it back before recording a transfer.
    Withdraw,
}

impl Closing {
    fn to(self) -> BatchStatus {
        match self {
            Closing::Refuse => BatchStatus::Refused,
            Closing::Withdraw => BatchStatus::Withdrawn,
        }
    }

    /// The states it may leave: once the union has recorded its transfer, only the
    /// association (which holds the money) can end the batch.
    fn from(self) -> &'static [BatchStatus] {
        match self {
            Closing::Refuse => &BatchStatus::AWAITING,
            Closing::Withdraw => &[BatchStatus::Submitted],
        }
    }
}

/// `actor_pid` refuses or withdraws batch `pid` (inside `scope`) read at `version`, giving
/// `reason`, with its audit entry, in one transaction; the batch as it now stands. Nobody on it
/// is enrolled; they no longer count as "already enrolled", so a corrected roster can name them.
#[allow(clippy::too_many_arguments)]
pub async fn close_within(
    db: &DatabaseConnection,
    scope: &Scope,
    pid: &str,
    version: i32,
    closing: Closing,
    reason: &str,
    actor_pid: &str,
    request_id: Option<String>,
) -> Result<Batch, StepError> {
    let (txn, batch) = begin_step(db, scope, pid).await?;
    let from = batch.status;
    if !closing.from().contains(&from) {
        return Err(EnrolmentError::WrongState { status: from }.into());
    }
    let to = closing.to();
    advance(
        &txn,
        &batch,
        version,
        from,
        vec![
            (enrolment_batch::Column::Status, Expr::value(to.as_str())),
            (
                enrolment_batch::Column::ClosedReason,
                Expr::value(reason.trim()),
            ),
            (enrolment_batch::Column::ClosedAt, Expr::value(Utc::now())),
            (enrolment_batch::Column::ClosedBy, Expr::value(actor_pid)),
        ],
    )
    .await?;
    let action = match closing {
        Closing::Refuse => "enrolment.refused",
        Closing::Withdraw => "enrolment.withdrawn",
    };
    let details = json!({ "from": from.as_str(), "to": to.as_str(), "reason": reason.trim(), "members": batch.member_count });
    finish_step(txn, scope, &batch, (action, details), actor_pid, request_id).await
}

/// Opens the write transaction of a step and reads the batch inside it.
async fn begin_step(
    db: &DatabaseConnection,
    scope: &Scope,
    pid: &str,
) -> Result<(DatabaseTransaction, Batch), StepError> {
    let txn = crate::db::begin_write(db).await?;
    let batch = get_within(&txn, scope, pid)
        .await?
        .ok_or(StepError::NotFound)?;
    Ok((txn, batch))
}

/// Records a step's audit entry (`action`, `details`), reads the batch as it now stands and
/// commits.
async fn finish_step(
    txn: DatabaseTransaction,
    scope: &Scope,
    batch: &Batch,
    (action, details): (&str, serde_json::Value),
    actor_pid: &str,
    request_id: Option<String>,
) -> Result<Batch, StepError> {
    audit::record(
        &txn,
        &Actor::Account {
            pid: actor_pid.to_owned(),
        },
        action,
        ("enrolment_batch", Some(&batch.pid)),
        details,
        request_id,
    )
    .await?;
    let updated = get_within(&txn, scope, &batch.pid)
        .await?
        .ok_or(StepError::NotFound)?;
    txn.commit().await?;
    Ok(updated)
}

/// A roster compared with the unit's previous confirmed one for the same scheme family.
#[derive(Clone, Debug, Default)]
pub struct Comparison {
    pub previous_pid: Option<String>,
    /// (member public id, name), by name.
    pub carried_over: Vec<(String, String)>,
    pub left: Vec<(String, String)>,
    pub new: Vec<(String, String)>,
}

/// What changed since the unit's last confirmed roster of the same scheme family: who was
/// carried over, who left, who is new (what a union checks at renewal).
pub async fn compare_with_previous<C: ConnectionTrait>(
    db: &C,
    batch: &Batch,
) -> Result<Comparison, DbErr> {
    let family = scheme_family(&batch.scheme_code).to_owned();
    let previous = enrolment_batch::Entity::find()
        .filter(enrolment_batch::Column::OrganisationId.eq(batch.organisation_id))
        .filter(enrolment_batch::Column::Status.eq(BatchStatus::Confirmed.as_str()))
        .filter(enrolment_batch::Column::Id.lt(batch.id))
        .order_by_desc(enrolment_batch::Column::Id)
        .all(db)
        .await?
        .into_iter()
        .find(|b| scheme_family(&b.scheme_code) == family);
    let members_of = |batch_id: i64| async move {
        enrolment_entry::Entity::find()
            .filter(enrolment_entry::Column::BatchId.eq(batch_id))
            .find_also_related(member::Entity)
            .all(db)
            .await
            .map(|rows| {
                rows.into_iter()
                    .filter_map(|(_, m)| m.map(|m| (m.id, (m.pid, m.name))))
                    .collect::<HashMap<i64, (String, String)>>()
            })
    };
    let now = members_of(batch.id).await?;
    let Some(previous) = previous else {
        let mut new: Vec<(String, String)> = now.into_values().collect();
        new.sort_by(|a, b| a.1.cmp(&b.1));
        return Ok(Comparison {
            new,
            ..Default::default()
        });
    };
    let before = members_of(previous.id).await?;
    let pick = |from: &HashMap<i64, (String, String)>, keep: &dyn Fn(&i64) -> bool| {
        let mut v: Vec<(String, String)> = from
            .iter()
            .filter(|(id, _)| keep(id))
            .map(|(_, p)| p.clone())
            .collect();
        v.sort_by(|a, b| a.1.cmp(&b.1));
        v
    };
    Ok(Comparison {
        previous_pid: Some(previous.pid),
        carried_over: pick(&now, &|id| before.contains_key(id)),
        left: pick(&before, &|id| !now.contains_key(id)),
        new: pick(&now, &|id| !before.contains_key(id)),
    })
}

/// Batch `pid` (inside `scope`) compared with the unit's previous confirmed roster (see
/// [`compare_with_previous`]); `None` outside the subtree.
pub async fn comparison_within<C: ConnectionTrait>(
    db: &C,
    scope: &Scope,
    pid: &str,
) -> Result<Option<Comparison>, DbErr> {
    match get_within(db, scope, pid).await? {
        Some(batch) => Ok(Some(compare_with_previous(db, &batch).await?)),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    #[test]
    fn a_retiree_enrolled_every_year_since_2019_is_continuous() {
        let periods: Vec<(NaiveDate, NaiveDate)> = (2019..=2024)
            .map(|y| (d(&format!("{y}-01-01")), d(&format!("{y}-12-31"))))
            .collect();
        assert!(continuously_enrolled(
            &periods,
            d("2025-01-10"),
            15,
            Some(2019),
            Some(10)
        ));
    }

    #[test]
    fn a_gap_breaks_the_chain_and_a_late_start_does_not_qualify() {
        let mut periods: Vec<(NaiveDate, NaiveDate)> = (2019..=2024)
            .map(|y| (d(&format!("{y}-01-01")), d(&format!("{y}-12-31"))))
            .collect();
        periods.remove(2); // no 2021
        assert!(!continuously_enrolled(
            &periods,
            d("2025-01-10"),
            15,
            Some(2019),
            Some(10)
        ));
        assert!(!continuously_enrolled(
            &[],
            d("2025-01-10"),
            15,
            Some(2019),
            Some(10)
        ));
    }

    #[test]
    fn ten_unbroken_years_qualify_without_the_start_year() {
        let periods: Vec<(NaiveDate, NaiveDate)> = (2014..=2023)
            .map(|y| (d(&format!("{y}-06-01")), d(&format!("{}-05-31", y + 1))))
            .collect();
        assert!(continuously_enrolled(
            &periods,
            d("2024-06-01"),
            15,
            None,
            Some(10)
        ));
        assert!(!continuously_enrolled(
            &periods[1..],
            d("2024-06-01"),
            15,
            None,
            Some(10)
        ));
    }

    #[test]
    fn the_family_of_a_scheme_is_its_code_without_the_year() {
        assert_eq!(scheme_family("nm-inpatient-2025"), "nm-inpatient");
        assert_eq!(scheme_family("nm-xinkang-2022"), "nm-xinkang");
        assert_eq!(scheme_family("custom"), "custom");
        assert_eq!(scheme_family("a-20x5"), "a-20x5");
    }
}

//! Claim figures (申领给付统计): per scheme, unit union and year — claims filed, refused (by
//! reason code), paid, people helped, amount paid and the average days from first submission
//! to payment — for the caller's subtree, with totals per scheme and year. The association
//! reports these yearly; every level sees them live for its own subtree.
//!
//! # Which year a claim counts in
//! Years are calendar years in Asia/Shanghai, the schemes' calendar, while timestamps are
//! stored in UTC: a claim paid at 2025-12-31T17:00Z was paid on 1 January 2026 in Shanghai and
//! counts in 2026.
//! - **filed** and **refused** count by the year of *first submission* (`first_submitted_at`):
//!   a claim is filed once however often it is returned and resubmitted, and a draft never
//!   submitted is not filed. *Refused* are those of the year's filed claims that now stand
//!   rejected, by reason code (a rejection without one counts under [`NO_REASON`]); so a row's
//!   refusals never exceed its filings.
//! - **paid**, **people helped**, **amount paid** and **average days** count by the year of
//!   *payment* (`paid_at`) of the claims whose status is `paid`. The amount is the sum of their
//!   `approved_fen`.
//!
//! A claim filed in December and paid in January is thus filed in one year and paid in the next.
//!
//! 免申即享 offers (claims filed by `insurance_file`) are also counted on their own:
//! - **made**, **confirmed** (by the member or a clerk on behalf: the offer entered review,
//!   `submitted_at` set), **lapsed** (status `lapsed`, left unconfirmed past the claim deadline)
//!   and the **amount offered** (their `payable_fen` when offered) by the year the offer was
//!   made (its first submission);
//! - **paid** offers and their **amount** by the year of payment, as for every claim;
//! - the **median days from discharge to payment** of the claims paid in the year, for offered
//!   and for applied-for claims apart: the event's date (discharge of a stay, the diagnosis date
//!   of a diagnosis — a settlement's discharge date for an offered one) to the Shanghai date of
//!   payment. Outpatient months and work injuries have no discharge and are left out.
//!
//! The same figures are given as data ([`figures`]) and as the yearly workbook ([`workbook`]).
//!
//! # How it is computed
//! Every count and sum is a `GROUP BY` over the claims (one statement per figure, however many
//! claims there are), in SQL both SQLite and PostgreSQL run alike:
//! - The Shanghai year is found without date functions: the years asked for become a small
//!   derived table of `(yr, starts, ends)` — the UTC instants at which each year begins in
//!   Shanghai, computed in Rust and bound as parameters — joined on `starts <= t < ends`. Plain
//!   comparisons of timestamps agree on both backends (PostgreSQL `timestamptz`; SQLite's RFC
//!   3339 UTC text as sqlx writes it, which sorts as time). Without a year filter the years run
//!   from the earliest to the latest timestamp found, within [`YEARS`].
//! - Days need date arithmetic, where the backends share nothing (SQLite `julianday`, text
//!   timestamps; PostgreSQL `date - date`, `EXTRACT(EPOCH …)`). So the calendar days — the
//!   Shanghai date of payment minus that of first submission, 0 for the same day — are added up
//!   in Rust from a narrow *streamed* query (the group key and two timestamps of each paid
//!   claim), holding one running sum per row, never the claims. The average is rounded half away
//!   from zero to one decimal.
//! - Medians are read from the same stream: each row keeps a count of claims per number of
//!   days (a few hundred distinct values at most, whatever the number of claims), which adds
//!   up into the totals — a median does not, its counts do.
//! - Offers are counted by conditional sums (`SUM(CASE WHEN … THEN 1 ELSE 0 END)`) in the
//!   statements of the filed and of the paid claims, not by statements of their own.
//! - People helped are distinct members per row; a total counts distinct members over the
//!   whole subtree in its own statement, since one person may be helped through two units.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::ops::RangeInclusive;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use futures_util::TryStreamExt;
use rust_decimal::{Decimal, RoundingStrategy};
use sea_orm::{ConnectionTrait, DbBackend, DbErr, Statement, StreamTrait, Value};
use tracing::instrument;

use super::{ClaimStatus, FiledBy};
use crate::domain::Money;
use crate::engine::Event;
use crate::formats::workbook::{Cell, Sheet, WorkbookError, write_workbook};
use crate::service::authorisation::{local_date, start_of_local_day};
use crate::service::raw_statement;
use crate::service::scope::Scope;

/// The years figures can cover.
pub const YEARS: RangeInclusive<i32> = 2000..=2100;

/// The reason a refusal without a reason code is counted under.
pub const NO_REASON: &str = "unspecified";

/// Which figures to compute.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FigureFilter {
    /// One Shanghai calendar year (within [`YEARS`]); `None`: every year.
    pub year: Option<i32>,
    /// One scheme code (e.g. `nm-inpatient-2025`); `None`: every scheme.
    pub scheme_code: Option<String>,
}

/// The figures of one row or total.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tally {
    /// Claims first submitted in the year.
    pub filed: i64,
    /// Of those, the ones rejected.
    pub refused: i64,
    /// `refused` by reason code.
    pub refusals: BTreeMap<String, i64>,
    /// Claims paid in the year.
    pub paid: i64,
    /// Distinct members those claims paid.
    pub people_helped: i64,
    /// What those claims paid.
    pub amount_paid: Money,
    /// Calendar days from first submission to payment, added over the paid claims.
    pub days_to_pay: i64,
    /// How many paid claims `days_to_pay` adds up (those with a first submission).
    pub timed: i64,
    /// Open offsets of the periods starting in the year: granted beyond what their approved
    /// claims are due in filing order, still to be absorbed by their next claims.
    pub open_offset: Money,
    /// 免申即享 offers.
    pub offers: OfferTally,
    /// Paid offers: claims by calendar days from discharge to payment.
    pub days_offered: DayCounts,
    /// Paid applied-for claims: claims by calendar days from discharge to payment.
    pub days_applied: DayCounts,
}

/// The offers of one row or total (see the module doc for the year each counts in).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OfferTally {
    /// Offers made in the year.
    pub made: i64,
    /// Of those, confirmed (entered review).
    pub confirmed: i64,
    /// Of those, lapsed unconfirmed.
    pub lapsed: i64,
    /// What those offers offered.
    pub amount_offered: Money,
    /// Offers paid in the year.
    pub paid: i64,
    /// What they paid.
    pub amount_paid: Money,
}

impl OfferTally {
    fn add(&mut self, other: &OfferTally) {
        self.made += other.made;
        self.confirmed += other.confirmed;
        self.lapsed += other.lapsed;
        self.amount_offered = self.amount_offered + other.amount_offered;
        self.paid += other.paid;
        self.amount_paid = self.amount_paid + other.amount_paid;
    }
}

/// How many claims took each number of days: enough for an exact median, and it adds up.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct DayCounts(BTreeMap<i64, i64>);

impl DayCounts {
    /// Counts one claim of `days`.
    pub fn record(&mut self, days: i64) {
        *self.0.entry(days).or_default() += 1;
    }

    fn add(&mut self, other: &DayCounts) {
        for (days, n) in &other.0 {
            *self.0.entry(*days).or_default() += n;
        }
    }

    /// The median, one decimal (the mean of the two middle values of an even count, so
    /// `.0` or `.5`); `None` when nothing was counted.
    pub fn median(&self) -> Option<Decimal> {
        let total: i64 = self.0.values().sum();
        if total == 0 {
            return None;
        }
        // The values at 0-based positions `lower` and `upper` of the sorted list.
        let (lower, upper) = ((total - 1) / 2, total / 2);
        let (mut low, mut high, mut seen) = (None, None, 0);
        for (days, n) in &self.0 {
            if low.is_none() && lower < seen + n {
                low = Some(*days);
            }
            if upper < seen + n {
                high = Some(*days);
                break;
            }
            seen += n;
        }
        let mut median = (Decimal::from(low?) + Decimal::from(high?)) / Decimal::TWO;
        median.rescale(1);
        Some(median)
    }
}

/// The date a claim's days to payment count from: the discharge of a stay, the diagnosis date
/// of a diagnosis; `None` for events without one.
fn discharged_on(facts: &str) -> Option<NaiveDate> {
    match serde_json::from_str::<Event>(facts).ok()? {
        Event::Inpatient(stay) => Some(stay.discharged_on),
        Event::Diagnosis(d) => Some(d.diagnosed_on),
        Event::OutpatientSpecial(_) | Event::WorkInjury(_) => None,
    }
}

impl Tally {
    /// Average calendar days from first submission to payment, one decimal; `None` when
    /// nothing was paid.
    pub fn average_days(&self) -> Option<Decimal> {
        (self.timed > 0).then(|| {
            let mut average = (Decimal::from(self.days_to_pay) / Decimal::from(self.timed))
                .round_dp_with_strategy(1, RoundingStrategy::MidpointAwayFromZero);
            average.rescale(1);
            average
        })
    }

    /// Adds another row's figures, except people (distinct people do not add up).
    fn add_counts(&mut self, other: &Tally) {
        self.filed += other.filed;
        self.refused += other.refused;
        for (reason, n) in &other.refusals {
            *self.refusals.entry(reason.clone()).or_default() += n;
        }
        self.paid += other.paid;
        self.amount_paid = self.amount_paid + other.amount_paid;
        self.days_to_pay += other.days_to_pay;
        self.timed += other.timed;
        self.open_offset = self.open_offset + other.open_offset;
        self.offers.add(&other.offers);
        self.days_offered.add(&other.days_offered);
        self.days_applied.add(&other.days_applied);
    }
}

/// The figures of one unit union for one scheme and year.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UnitFigures {
    pub scheme_code: String,
    pub year: i32,
    pub unit_pid: String,
    pub unit_name: String,
    pub tally: Tally,
}

/// The figures of the whole subtree for one scheme and year.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SchemeYearTotals {
    pub scheme_code: String,
    pub year: i32,
    pub tally: Tally,
}

/// Figures of a subtree: rows by scheme, year and unit (in tree order), totals by scheme and
/// year.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClaimFigures {
    pub units: Vec<UnitFigures>,
    pub totals: Vec<SchemeYearTotals>,
}

/// The timestamp that decides the year a figure counts in.
#[derive(Clone, Copy, Debug)]
enum YearOf {
    FirstSubmission,
    Payment,
}

impl YearOf {
    fn column(self) -> &'static str {
        match self {
            YearOf::FirstSubmission => "c.first_submitted_at",
            YearOf::Payment => "c.paid_at",
        }
    }
}

/// The instant a year begins in Shanghai.
fn year_start(year: i32) -> Result<DateTime<Utc>, DbErr> {
    NaiveDate::from_ymd_opt(year, 1, 1)
        .map(start_of_local_day)
        .ok_or_else(|| DbErr::Custom(format!("year {year} out of range")))
}

/// The claims of a scope (and scheme), each joined to its unit `o` and to the Shanghai year
/// `y.yr` in which its `year_of` timestamp falls.
struct Claims<'a> {
    backend: DbBackend,
    years: &'a [i32],
    subtree: String,
    scheme_code: Option<&'a str>,
}

impl Claims<'_> {
    /// `SELECT {select} FROM … [AND c.status = {status}] [GROUP BY {group_by}]`. `select` and
    /// `group_by` hold no placeholder.
    fn statement(
        &self,
        select: &str,
        year_of: YearOf,
        status: Option<ClaimStatus>,
        group_by: Option<&str>,
    ) -> Result<Statement, DbErr> {
        let mut values: Vec<Value> = Vec::with_capacity(self.years.len() * 3 + 2);
        let mut year_rows = Vec::with_capacity(self.years.len());
        for &year in self.years {
            values.extend([
                year.into(),
                year_start(year)?.into(),
                year_start(year + 1)?.into(),
            ]);
            year_rows.push(if year_rows.is_empty() {
                "SELECT ? AS yr, ? AS starts, ? AS ends"
            } else {
                "SELECT ?, ?, ?"
            });
        }
        let at = year_of.column();
        let mut sql = format!(
            "SELECT {select} FROM claim c \
             JOIN organisation o ON o.id = c.organisation_id \
             JOIN ({}) y ON {at} >= y.starts AND {at} < y.ends \
             WHERE o.path LIKE ?",
            year_rows.join(" UNION ALL ")
        );
        values.push(self.subtree.clone().into());
        if let Some(code) = self.scheme_code {
            sql.push_str(" AND c.scheme_code = ?");
            values.push(code.into());
        }
        if let Some(status) = status {
            // A fixed snake_case name of our own, not input.
            sql.push_str(&format!(" AND c.status = '{}'", status.as_str()));
        }
        if let Some(group_by) = group_by {
            sql.push_str(" GROUP BY ");
            sql.push_str(group_by);
        }
        Ok(raw_statement(self.backend, &sql, values))
    }
}

/// A unit's identity and place in the tree, as the grouped rows name it.
struct Unit {
    pid: String,
    name: String,
    path: String,
}

type RowKey = (String, i64, i32);

fn row_key(row: &sea_orm::QueryResult) -> Result<RowKey, DbErr> {
    Ok((
        row.try_get("", "scheme_code")?,
        row.try_get("", "unit_id")?,
        row.try_get("", "yr")?,
    ))
}

fn remember_unit(units: &mut HashMap<i64, Unit>, row: &sea_orm::QueryResult) -> Result<(), DbErr> {
    let id: i64 = row.try_get("", "unit_id")?;
    if let Entry::Vacant(slot) = units.entry(id) {
        slot.insert(Unit {
            pid: row.try_get("", "unit_pid")?,
            name: row.try_get("", "unit_name")?,
            path: row.try_get("", "unit_path")?,
        });
    }
    Ok(())
}

const UNIT_COLUMNS: &str = "c.scheme_code AS scheme_code, o.id AS unit_id, o.pid AS unit_pid, \
                            o.name AS unit_name, o.path AS unit_path, y.yr AS yr";
const UNIT_GROUP: &str = "c.scheme_code, o.id, o.pid, o.name, o.path, y.yr";

/// The offers among the claims first submitted in a year (`lapsed`: the status the offer
/// lifecycle gives an offer left unconfirmed).
const OFFERS_MADE: &str = "\
    CAST(SUM(CASE WHEN c.filed_by_kind = 'insurance_file' THEN 1 ELSE 0 END) AS BIGINT) AS offers_made, \
    CAST(SUM(CASE WHEN c.filed_by_kind = 'insurance_file' AND c.submitted_at IS NOT NULL \
        THEN 1 ELSE 0 END) AS BIGINT) AS offers_confirmed, \
    CAST(SUM(CASE WHEN c.filed_by_kind = 'insurance_file' AND c.status = 'lapsed' \
        THEN 1 ELSE 0 END) AS BIGINT) AS offers_lapsed, \
    CAST(COALESCE(SUM(CASE WHEN c.filed_by_kind = 'insurance_file' THEN c.payable_fen END), 0) \
        AS BIGINT) AS offered_fen";

/// The offers among the claims paid in a year.
const OFFERS_PAID: &str = "\
    CAST(SUM(CASE WHEN c.filed_by_kind = 'insurance_file' THEN 1 ELSE 0 END) AS BIGINT) AS offers_paid, \
    CAST(COALESCE(SUM(CASE WHEN c.filed_by_kind = 'insurance_file' THEN c.approved_fen END), 0) \
        AS BIGINT) AS offers_paid_fen";

/// The Shanghai years between the earliest and the latest first submission or payment in
/// the scope (within [`YEARS`]).
async fn years_present<C: ConnectionTrait>(
    db: &C,
    subtree: &str,
    scheme_code: Option<&str>,
) -> Result<Vec<i32>, DbErr> {
    let mut sql = String::from(
        "SELECT MIN(c.first_submitted_at) AS first_filed, MAX(c.first_submitted_at) AS last_filed, \
         MIN(c.paid_at) AS first_paid, MAX(c.paid_at) AS last_paid \
         FROM claim c JOIN organisation o ON o.id = c.organisation_id WHERE o.path LIKE ?",
    );
    let mut values: Vec<Value> = vec![subtree.into()];
    if let Some(code) = scheme_code {
        sql.push_str(" AND c.scheme_code = ?");
        values.push(code.into());
    }
    let Some(row) = db
        .query_one_raw(raw_statement(db.get_database_backend(), &sql, values))
        .await?
    else {
        return Ok(Vec::new());
    };
    let mut years: Vec<i32> = Vec::with_capacity(4);
    for column in ["first_filed", "last_filed", "first_paid", "last_paid"] {
        if let Some(at) = row.try_get::<Option<DateTime<Utc>>>("", column)? {
            years.push(local_date(at).year());
        }
    }
    let (Some(first), Some(last)) = (years.iter().min(), years.iter().max()) else {
        return Ok(Vec::new());
    };
    Ok(((*first).max(*YEARS.start())..=(*last).min(*YEARS.end())).collect())
}

/// [`figures`], as `render` writes them, through the replica's kept answers (see
/// [`super::tallies::kept`]): recomputed
/// after [`super::tallies::FIGURES_FRESH_FOR`], never older than a change this replica made.
pub async fn figures_kept<R>(
    tallies: &super::tallies::Tallies,
    db: &sea_orm::DatabaseConnection,
    scope: &Scope,
    filter: &FigureFilter,
    render: R,
) -> Result<bytes::Bytes, DbErr>
where
    R: Fn(&ClaimFigures) -> Result<bytes::Bytes, DbErr> + Copy + Send + Sync + 'static,
{
    let key = format!("{}|{scope:?}|{filter:?}", super::tallies::epoch());
    let (db, scope, filter) = (db.clone(), scope.clone(), filter.clone());
    super::tallies::kept(&tallies.figures, key, move || {
        let (db, scope, filter) = (db.clone(), scope.clone(), filter.clone());
        async move { render(&figures_in_background(&db, &scope, &filter).await?) }
    })
    .await
}

/// [`figures`] as a recomputation behind requests computes them: in one consistent read, and
/// on PostgreSQL without parallel workers. Left to itself, PostgreSQL gives the two `GROUP BY`s
/// over every claim two workers each, so for their 130 ms three processes take every core of
/// a two-core server while 64 reviewers wait (the figures' p99, issue 20); one process takes
/// twice as long and leaves the requests a core.
async fn figures_in_background(
    db: &sea_orm::DatabaseConnection,
    scope: &Scope,
    filter: &FigureFilter,
) -> Result<ClaimFigures, DbErr> {
    let read = super::view::begin_read(db).await?;
    if ConnectionTrait::get_database_backend(db) == DbBackend::Postgres {
        read.execute_unprepared("SET LOCAL max_parallel_workers_per_gather = 0")
            .await?;
    }
    let figures = figures(&read, scope, filter).await?;
    read.commit().await?;
    Ok(figures)
}

/// The claim figures of `scope` (nothing for a member).
#[instrument(skip(db))]
pub async fn figures<C: ConnectionTrait + StreamTrait>(
    db: &C,
    scope: &Scope,
    filter: &FigureFilter,
) -> Result<ClaimFigures, DbErr> {
    let Some(subtree) = scope.subtree_pattern() else {
        return Ok(ClaimFigures::default());
    };
    let scheme_code = filter.scheme_code.as_deref();
    let years = match filter.year {
        Some(year) if YEARS.contains(&year) => vec![year],
        Some(_) => Vec::new(),
        None => years_present(db, &subtree, scheme_code).await?,
    };
    if years.is_empty() {
        return Ok(ClaimFigures::default());
    }
    let claims = Claims {
        backend: ConnectionTrait::get_database_backend(db),
        years: &years,
        subtree,
        scheme_code,
    };
    let mut rows: BTreeMap<RowKey, Tally> = BTreeMap::new();
    let mut units: HashMap<i64, Unit> = HashMap::new();

    let filed = claims.statement(
        &format!("{UNIT_COLUMNS}, COUNT(*) AS filed, {OFFERS_MADE}"),
        YearOf::FirstSubmission,
        None,
        Some(UNIT_GROUP),
    )?;
    for row in db.query_all_raw(filed).await? {
        remember_unit(&mut units, &row)?;
        let tally = rows.entry(row_key(&row)?).or_default();
        tally.filed = row.try_get("", "filed")?;
        tally.offers.made = row.try_get("", "offers_made")?;
        tally.offers.confirmed = row.try_get("", "offers_confirmed")?;
        tally.offers.lapsed = row.try_get("", "offers_lapsed")?;
        tally.offers.amount_offered = Money::from_fen(row.try_get("", "offered_fen")?);
    }

    let refused = claims.statement(
        "c.scheme_code AS scheme_code, o.id AS unit_id, y.yr AS yr, \
         c.reject_reason AS reason, COUNT(*) AS refused",
        YearOf::FirstSubmission,
        Some(ClaimStatus::Rejected),
        Some("c.scheme_code, o.id, y.yr, c.reject_reason"),
    )?;
    for row in db.query_all_raw(refused).await? {
        let reason: Option<String> = row.try_get("", "reason")?;
        let n: i64 = row.try_get("", "refused")?;
        let tally = rows.entry(row_key(&row)?).or_default();
        tally.refused += n;
        *tally
            .refusals
            .entry(reason.unwrap_or_else(|| NO_REASON.to_owned()))
            .or_default() += n;
    }

    let paid = claims.statement(
        &format!(
            "{UNIT_COLUMNS}, COUNT(*) AS paid, COUNT(DISTINCT c.member_id) AS people, \
             CAST(COALESCE(SUM(c.approved_fen), 0) AS BIGINT) AS paid_fen, {OFFERS_PAID}"
        ),
        YearOf::Payment,
        Some(ClaimStatus::Paid),
        Some(UNIT_GROUP),
    )?;
    for row in db.query_all_raw(paid).await? {
        remember_unit(&mut units, &row)?;
        let tally = rows.entry(row_key(&row)?).or_default();
        tally.paid = row.try_get("", "paid")?;
        tally.people_helped = row.try_get("", "people")?;
        tally.amount_paid = Money::from_fen(row.try_get("", "paid_fen")?);
        tally.offers.paid = row.try_get("", "offers_paid")?;
        tally.offers.amount_paid = Money::from_fen(row.try_get("", "offers_paid_fen")?);
    }

    let days = claims.statement(
        "c.scheme_code AS scheme_code, o.id AS unit_id, y.yr AS yr, \
         c.first_submitted_at AS submitted_at, c.paid_at AS paid_at, \
         c.filed_by_kind AS filed_by, c.facts AS facts",
        YearOf::Payment,
        Some(ClaimStatus::Paid),
        None,
    )?;
    {
        let mut stream = std::pin::pin!(db.stream_raw(days).await?);
        while let Some(row) = stream.try_next().await? {
            let submitted: Option<DateTime<Utc>> = row.try_get("", "submitted_at")?;
            let paid: DateTime<Utc> = row.try_get("", "paid_at")?;
            let tally = rows.entry(row_key(&row)?).or_default();
            if let Some(submitted) = submitted {
                tally.days_to_pay += (local_date(paid) - local_date(submitted)).num_days();
                tally.timed += 1;
            }
            let facts: String = row.try_get("", "facts")?;
            if let Some(discharged) = discharged_on(&facts) {
                let days = (local_date(paid) - discharged).num_days();
                let filed_by: String = row.try_get("", "filed_by")?;
                if filed_by == FiledBy::InsuranceFile.as_str() {
                    tally.days_offered.record(days);
                } else {
                    tally.days_applied.record(days);
                }
            }
        }
    }

    // Open offsets are rare (an earlier-filed claim approved after a later one took an
    // allowance or a bracket): read the few periods that carry one and count each in the year
    // its coverage starts.
    let mut sql = String::from(
        "SELECT m.scheme_code AS scheme_code, o.id AS unit_id, o.pid AS unit_pid, \
         o.name AS unit_name, o.path AS unit_path, m.coverage_start AS coverage_start, \
         m.offset_fen AS offset_fen FROM membership m \
         JOIN organisation o ON o.id = m.organisation_id \
         WHERE m.offset_fen > 0 AND o.path LIKE ?",
    );
    let mut values: Vec<Value> = vec![claims.subtree.clone().into()];
    if let Some(code) = scheme_code {
        sql.push_str(" AND m.scheme_code = ?");
        values.push(code.into());
    }
    for row in db
        .query_all_raw(raw_statement(claims.backend, &sql, values))
        .await?
    {
        let start: NaiveDate = row.try_get("", "coverage_start")?;
        if !years.contains(&start.year()) {
            continue;
        }
        remember_unit(&mut units, &row)?;
        let key = (
            row.try_get("", "scheme_code")?,
            row.try_get("", "unit_id")?,
            start.year(),
        );
        let tally = rows.entry(key).or_default();
        tally.open_offset = tally.open_offset + Money::from_fen(row.try_get("", "offset_fen")?);
    }

    let people = claims.statement(
        "c.scheme_code AS scheme_code, y.yr AS yr, COUNT(DISTINCT c.member_id) AS people",
        YearOf::Payment,
        Some(ClaimStatus::Paid),
        Some("c.scheme_code, y.yr"),
    )?;
    let mut totals: BTreeMap<(String, i32), Tally> = BTreeMap::new();
    for row in db.query_all_raw(people).await? {
        let key = (row.try_get("", "scheme_code")?, row.try_get("", "yr")?);
        totals.entry(key).or_default().people_helped = row.try_get("", "people")?;
    }
    for ((scheme_code, _, year), tally) in &rows {
        totals
            .entry((scheme_code.clone(), *year))
            .or_default()
            .add_counts(tally);
    }

    let mut unit_rows = rows
        .into_iter()
        .map(|((scheme_code, unit_id, year), tally)| {
            let unit = units
                .get(&unit_id)
                .ok_or_else(|| DbErr::Custom(format!("unit {unit_id} of a figure row")))?;
            let row = UnitFigures {
                scheme_code,
                year,
                unit_pid: unit.pid.clone(),
                unit_name: unit.name.clone(),
                tally,
            };
            Ok((unit.path.clone(), row))
        })
        .collect::<Result<Vec<_>, DbErr>>()?;
    unit_rows.sort_by(|(a_path, a), (b_path, b)| {
        (&a.scheme_code, a.year, a_path).cmp(&(&b.scheme_code, b.year, b_path))
    });
    Ok(ClaimFigures {
        units: unit_rows.into_iter().map(|(_, row)| row).collect(),
        totals: totals
            .into_iter()
            .map(|((scheme_code, year), tally)| SchemeYearTotals {
                scheme_code,
                year,
                tally,
            })
            .collect(),
    })
}

/// Why the figures could not be given as a workbook.
#[derive(Debug, thiserror::Error)]
pub enum FiguresError {
    #[error(transparent)]
    Db(#[from] DbErr),
    #[error(transparent)]
    Workbook(#[from] WorkbookError),
}

/// The claim figures of `scope` as the workbook the association reports yearly: a sheet of
/// figures by scheme, year and unit union with each scheme and year's total (合计) for the
/// subtree, and a sheet of refusals by reason code.
pub async fn workbook<C: ConnectionTrait + StreamTrait>(
    db: &C,
    scope: &Scope,
    filter: &FigureFilter,
) -> Result<Vec<u8>, FiguresError> {
    let figures = figures(db, scope, filter).await?;
    Ok(write_workbook(&sheets(&figures, filter.year))?)
}

const TOTAL: &str = "合计";

fn figure_cells(scheme_code: &str, unit: &str, year: i32, t: &Tally) -> Vec<Cell> {
    vec![
        Cell::Code(scheme_code.to_owned()),
        Cell::Text(unit.to_owned()),
        Cell::Int(i64::from(year)),
        Cell::Int(t.filed),
        Cell::Int(t.paid),
        Cell::Int(t.refused),
        Cell::Int(t.people_helped),
        Cell::Money(t.amount_paid.as_decimal()),
        t.average_days().map(Cell::Tenths).unwrap_or(Cell::Empty),
        Cell::Money(t.open_offset.as_decimal()),
        Cell::Int(t.offers.made),
        Cell::Int(t.offers.confirmed),
        Cell::Int(t.offers.lapsed),
        Cell::Money(t.offers.amount_offered.as_decimal()),
        Cell::Int(t.offers.paid),
        Cell::Money(t.offers.amount_paid.as_decimal()),
        t.days_offered
            .median()
            .map(Cell::Tenths)
            .unwrap_or(Cell::Empty),
        t.days_applied
            .median()
            .map(Cell::Tenths)
            .unwrap_or(Cell::Empty),
    ]
}

fn refusal_cells(scheme_code: &str, unit: &str, year: i32, t: &Tally) -> Vec<Vec<Cell>> {
    t.refusals
        .iter()
        .map(|(reason, n)| {
            vec![
                Cell::Code(scheme_code.to_owned()),
                Cell::Text(unit.to_owned()),
                Cell::Int(i64::from(year)),
                Cell::Code(reason.clone()),
                Cell::Int(*n),
            ]
        })
        .collect()
}

/// The two sheets: figures, and refusals by reason; each scheme and year's units followed by
/// its total (合计) for the subtree.
fn sheets(f: &ClaimFigures, year: Option<i32>) -> [Sheet; 2] {
    let mut by_group: BTreeMap<(&str, i32), Vec<&UnitFigures>> = BTreeMap::new();
    for u in &f.units {
        by_group
            .entry((u.scheme_code.as_str(), u.year))
            .or_default()
            .push(u);
    }
    let (mut figure_rows, mut refusal_rows) = (Vec::new(), Vec::new());
    for total in &f.totals {
        for u in by_group
            .get(&(total.scheme_code.as_str(), total.year))
            .into_iter()
            .flatten()
        {
            figure_rows.push(figure_cells(&u.scheme_code, &u.unit_name, u.year, &u.tally));
            refusal_rows.extend(refusal_cells(
                &u.scheme_code,
                &u.unit_name,
                u.year,
                &u.tally,
            ));
        }
        figure_rows.push(figure_cells(
            &total.scheme_code,
            TOTAL,
            total.year,
            &total.tally,
        ));
        refusal_rows.extend(refusal_cells(
            &total.scheme_code,
            TOTAL,
            total.year,
            &total.tally,
        ));
    }
    let period = year
        .map(|y| format!("（{y}年度）"))
        .unwrap_or_else(|| "（各年度）".to_owned());
    let headers = |names: &[&str]| names.iter().map(|h| (*h).to_owned()).collect();
    [
        Sheet {
            name: "申领给付统计".into(),
            title: Some(format!("职工医疗互助申领给付统计{period}")),
            headers: headers(&[
                "方案",
                "单位",
                "年度",
                "申领件数",
                "给付件数",
                "拒付件数",
                "受助人数",
                "给付金额",
                "平均办结天数",
                "待冲抵多付金额",
                "免申即享发放件数",
                "免申即享确认件数",
                "免申即享失效件数",
                "免申即享发放金额",
                "免申即享给付件数",
                "免申即享给付金额",
                "出院至给付天数中位数（免申即享）",
                "出院至给付天数中位数（申请）",
            ]),
            rows: figure_rows,
            totals: None,
        },
        Sheet {
            name: "拒付原因".into(),
            title: Some(format!("拒付原因统计{period}")),
            headers: headers(&["方案", "单位", "年度", "拒付原因", "件数"]),
            rows: refusal_rows,
            totals: None,
        },
    ]
}

#[cfg(test)]
mod tests {
    use rust_decimal_macros::dec;

    use super::*;

    #[test]
    fn a_shanghai_year_begins_at_four_in_the_afternoon_utc_on_new_years_eve() {
        assert_eq!(
            year_start(2026).unwrap().to_rfc3339(),
            "2025-12-31T16:00:00+00:00"
        );
    }

    #[test]
    fn the_average_has_one_decimal_rounded_half_away_from_zero() {
        let average = |days_to_pay, timed| {
            Tally {
                days_to_pay,
                timed,
                ..Tally::default()
            }
            .average_days()
        };
        assert_eq!(average(23, 3), Some(dec!(7.7)));
        assert_eq!(average(1, 4), Some(dec!(0.3)), "0.25 rounds up");
        assert_eq!(
            average(24, 2).map(|d| d.to_string()).as_deref(),
            Some("12.0")
        );
        assert_eq!(average(0, 0), None);
    }

    #[test]
    fn totals_add_counts_and_refusals_but_not_people() {
        let row = Tally {
            filed: 3,
            refused: 1,
            refusals: BTreeMap::from([("late".to_owned(), 1)]),
            paid: 2,
            people_helped: 2,
            amount_paid: Money::from_fen(150),
            days_to_pay: 7,
            timed: 2,
            open_offset: Money::from_fen(25),
            offers: OfferTally {
                made: 2,
                confirmed: 1,
                lapsed: 1,
                amount_offered: Money::from_fen(400),
                paid: 1,
                amount_paid: Money::from_fen(100),
            },
            days_offered: DayCounts(BTreeMap::from([(3, 1)])),
            days_applied: DayCounts(BTreeMap::from([(10, 1), (20, 1)])),
        };
        let mut total = Tally::default();
        total.add_counts(&row);
        total.add_counts(&row);
        assert_eq!(total.filed, 6);
        assert_eq!(total.refusals.get("late"), Some(&2));
        assert_eq!(total.amount_paid, Money::from_fen(300));
        assert_eq!(total.open_offset, Money::from_fen(50));
        assert_eq!(total.people_helped, 0);
        assert_eq!(total.average_days(), Some(dec!(3.5)));
        assert_eq!(total.offers.made, 4);
        assert_eq!(total.offers.amount_paid, Money::from_fen(200));
        assert_eq!(total.days_offered.median(), Some(dec!(3.0)));
        assert_eq!(total.days_applied.median(), Some(dec!(15.0)));
    }

    #[test]
    fn the_median_is_the_middle_count_or_the_mean_of_the_two_middle_ones() {
        let counts = |days: &[i64]| {
            let mut c = DayCounts::default();
            for d in days {
                c.record(*d);
            }
            c.median().map(|m| m.to_string())
        };
        assert_eq!(counts(&[]), None);
        assert_eq!(counts(&[7]).as_deref(), Some("7.0"));
        assert_eq!(counts(&[9, 1, 4]).as_deref(), Some("4.0"));
        assert_eq!(counts(&[1, 2, 4, 40]).as_deref(), Some("3.0"));
        assert_eq!(counts(&[1, 2, 3, 40]).as_deref(), Some("2.5"));
        assert_eq!(counts(&[5, 5, 5, 6]).as_deref(), Some("5.0"));
        assert_eq!(counts(&[5, 6, 6, 6]).as_deref(), Some("6.0"));
    }
}

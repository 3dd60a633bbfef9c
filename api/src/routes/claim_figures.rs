//! Claim figures (申领给付统计) of the caller's subtree: live as JSON, and as the `.xlsx` the
//! association reports yearly. Which year a claim counts in is explained in
//! [`crate::service::claim::figures`].

use actix_web::{HttpResponse, get, web};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

use super::OrganisationRef;
use super::exports::workbook_error;
use super::xlsx;
use crate::auth::Principal;
use crate::domain::Money;
use crate::error::{ApiError, ErrorBody};
use crate::service::claim::figures::{self, ClaimFigures, FigureFilter, FiguresError, Tally};
use crate::state::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(claim_figures).service(claim_figures_xlsx);
}

/// `?year=&scheme_code=` of the claim figures.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FiguresQuery {
    /// A calendar year in Beijing time (2000–2100); absent: every year with claims.
    pub year: Option<i32>,
    /// One scheme code, e.g. `nm-inpatient-2025`; absent: every scheme.
    pub scheme_code: Option<String>,
}

impl FiguresQuery {
    fn filter(&self) -> Result<FigureFilter, ApiError> {
        if self.year.is_some_and(|y| !figures::YEARS.contains(&y)) {
            return Err(ApiError::invalid_field(
                "year",
                "年份无效（2000–2100） / invalid year (2000–2100)",
            ));
        }
        Ok(FigureFilter {
            year: self.year,
            scheme_code: self
                .scheme_code
                .as_deref()
                .map(str::trim)
                .filter(|c| !c.is_empty())
                .map(str::to_owned),
        })
    }
}

/// Refused claims under one reason code.
#[derive(Debug, Serialize, ToSchema)]
pub struct RefusalCount {
    /// The reason code given on rejection (`unspecified` when none was).
    pub reason: String,
    pub claims: i64,
}

/// The figures of one row or total.
#[derive(Debug, Serialize, ToSchema)]
pub struct Figures {
    /// Claims first submitted in the year (drafts never submitted are not filed).
    pub filed: i64,
    /// Of the claims filed in the year, those rejected.
    pub refused: i64,
    /// `refused` by reason code.
    pub refusals: Vec<RefusalCount>,
    /// Claims paid in the year.
    pub paid: i64,
    /// Distinct members those claims paid.
    pub people_helped: i64,
    /// What those claims paid (their approved amounts).
    pub amount_paid: Money,
    /// Average calendar days from first submission to payment, one decimal; null when nothing
    /// was paid.
    #[schema(value_type = Option<String>, example = "7.7")]
    pub average_days: Option<Decimal>,
    /// Open offsets of the periods starting in the year: what their approved claims were
    /// granted beyond their filing-order total (an earlier-filed claim approved after a later
    /// one took an allowance or bracket), absorbed by the periods' next claims.
    pub open_offset: Money,
    /// 免申即享 offers (claims filed from the settlement file).
    pub offers: OfferFigures,
    /// Median calendar days from discharge (a diagnosis: its date) to payment of the offers
    /// paid in the year, one decimal; null when none was.
    #[schema(value_type = Option<String>, example = "12.5")]
    pub median_days_offered: Option<Decimal>,
    /// The same for the claims applied for (filed by the member or a clerk).
    #[schema(value_type = Option<String>, example = "41.0")]
    pub median_days_applied: Option<Decimal>,
}

/// 免申即享 offers of one row or total.
#[derive(Debug, Serialize, ToSchema)]
pub struct OfferFigures {
    /// Offers made in the year.
    pub made: i64,
    /// Of those, confirmed by the member (or a clerk on behalf).
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

impl From<&Tally> for Figures {
    fn from(t: &Tally) -> Self {
        Self {
            filed: t.filed,
            refused: t.refused,
            refusals: t
                .refusals
                .iter()
                .map(|(reason, n)| RefusalCount {
                    reason: reason.clone(),
                    claims: *n,
                })
                .collect(),
            paid: t.paid,
            people_helped: t.people_helped,
            amount_paid: t.amount_paid,
            average_days: t.average_days(),
            open_offset: t.open_offset,
            offers: OfferFigures {
                made: t.offers.made,
                confirmed: t.offers.confirmed,
                lapsed: t.offers.lapsed,
                amount_offered: t.offers.amount_offered,
                paid: t.offers.paid,
                amount_paid: t.offers.amount_paid,
            },
            median_days_offered: t.days_offered.median(),
            median_days_applied: t.days_applied.median(),
        }
    }
}

/// One unit union's figures for a scheme and year.
#[derive(Debug, Serialize, ToSchema)]
pub struct UnitFiguresLine {
    pub scheme_code: String,
    /// Calendar year in Beijing time.
    pub year: i32,
    pub unit: OrganisationRef,
    #[serde(flatten)]
    pub figures: Figures,
}

/// The whole subtree's figures for a scheme and year.
#[derive(Debug, Serialize, ToSchema)]
pub struct FiguresTotal {
    pub scheme_code: String,
    /// Calendar year in Beijing time.
    pub year: i32,
    /// People helped count each person once across units.
    #[serde(flatten)]
    pub figures: Figures,
}

/// Claim figures of the caller's subtree.
#[derive(Debug, Serialize, ToSchema)]
pub struct ClaimFiguresResponse {
    /// By scheme, year and unit union (units in tree order).
    pub rows: Vec<UnitFiguresLine>,
    /// By scheme and year, over the whole subtree.
    pub totals: Vec<FiguresTotal>,
}

impl From<&ClaimFigures> for ClaimFiguresResponse {
    fn from(f: &ClaimFigures) -> Self {
        Self {
            rows: f
                .units
                .iter()
                .map(|u| UnitFiguresLine {
                    scheme_code: u.scheme_code.clone(),
                    year: u.year,
                    unit: OrganisationRef {
                        id: u.unit_pid.clone(),
                        name: u.unit_name.clone(),
                    },
                    figures: Figures::from(&u.tally),
                })
                .collect(),
            totals: f
                .totals
                .iter()
                .map(|t| FiguresTotal {
                    scheme_code: t.scheme_code.clone(),
                    year: t.year,
                    figures: Figures::from(&t.tally),
                })
                .collect(),
        }
    }
}

impl From<FiguresError> for ApiError {
    fn from(e: FiguresError) -> Self {
        match e {
            FiguresError::Db(e) => e.into(),
            FiguresError::Workbook(e) => workbook_error(e),
        }
    }
}

/// Claims filed, refused (by reason), paid, people helped, amount paid and average days to
/// payment, by scheme, unit union and year, with totals by scheme and year, for the caller's
/// subtree (staff). Filed and refused count by the year of first submission; the rest by the
/// year of payment (Beijing time).
#[utoipa::path(
    operation_id = "getClaimFigures",
    tag = "claim-figures",
    security(("bearer" = [])),
    params(FiguresQuery),
    responses(
        (status = 200, body = ClaimFiguresResponse),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)
    )
)]
#[get("/claim-figures")]
pub async fn claim_figures(
    state: web::Data<AppState>,
    principal: Principal,
    query: web::Query<FiguresQuery>,
) -> Result<HttpResponse, ApiError> {
    principal.require_staff()?;
    let filter = query.filter()?;
    // Kept as the JSON answered: the association's figures are 200 KB, which were rebuilt and
    // serialised for every request (BENCHMARKS.md, issue 20).
    let body = figures::figures_kept(
        &state.tallies,
        &state.db,
        &principal.scope,
        &filter,
        |figures| {
            serde_json::to_vec(&ClaimFiguresResponse::from(figures))
                .map(web::Bytes::from)
                .map_err(|e| sea_orm::DbErr::Custom(format!("figures as JSON: {e}")))
        },
    )
    .await?;
    Ok(HttpResponse::Ok()
        .content_type(actix_web::http::header::ContentType::json())
        .body(body))
}

/// The claim figures of the caller's subtree as a workbook (staff): a sheet of figures by
/// scheme, year and unit union with each scheme and year's total (合计), and a sheet of
/// refusals by reason code.
#[utoipa::path(
    operation_id = "exportClaimFigures",
    tag = "exports",
    security(("bearer" = [])),
    params(FiguresQuery),
    responses(
        (status = 200, description = "the .xlsx file", content_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)
    )
)]
#[get("/exports/claim-figures.xlsx")]
pub async fn claim_figures_xlsx(
    state: web::Data<AppState>,
    principal: Principal,
    query: web::Query<FiguresQuery>,
) -> Result<HttpResponse, ApiError> {
    principal.require_staff()?;
    let filter = query.filter()?;
    let bytes = figures::workbook(&state.db, &principal.scope, &filter).await?;
    let name = match query.year {
        Some(y) => format!("申领给付统计-{y}年度.xlsx"),
        None => "申领给付统计.xlsx".to_owned(),
    };
    Ok(xlsx(bytes, &name))
}

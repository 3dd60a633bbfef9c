//! Spreadsheets for clerks who live in Excel: the ledger (参互单位台账), the yearly summary,
//! the progress against targets, and the blank roster template.

use std::collections::BTreeMap;

use actix_web::{HttpResponse, get, web};
use rust_decimal::Decimal;
use serde::Deserialize;
use utoipa::IntoParams;
use utoipa_actix_web::service_config::ServiceConfig;

use super::xlsx;
use crate::auth::Principal;
use crate::error::{ApiError, ErrorBody};
use crate::formats::workbook::{Cell, Sheet, WorkbookError, write_workbook};
use crate::service::membership::{self, MembershipFilter};
use crate::service::{member, organisation, targets};
use crate::state::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(ledger)
        .service(summary)
        .service(progress)
        .service(template);
}

/// A workbook that could not be written: a 500, the cause logged.
pub(super) fn workbook_error(e: WorkbookError) -> ApiError {
    ApiError::Internal(anyhow::Error::new(e).context("writing the workbook"))
}

/// `?year=&scheme=` of the exports.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// Periods starting in this year.
    pub year: Option<i32>,
    pub scheme: Option<String>,
}

/// The ledger (参互单位台账) of an organisation's subtree: every membership, one row each
/// (staff; personal numbers masked unless the role needs them).
#[utoipa::path(
    operation_id = "exportLedger",
    tag = "exports",
    security(("bearer" = [])),
    params(("id" = String, Path), ExportQuery),
    responses(
        (status = 200, description = "the .xlsx file", content_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody)
    )
)]
#[get("/organisations/{id}/ledger.xlsx")]
pub async fn ledger(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<String>,
    query: web::Query<ExportQuery>,
) -> Result<HttpResponse, ApiError> {
    principal.require_staff()?;
    let org = organisation::get_within(&state.db, &principal.scope, &id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let rows = membership::all_within(
        &state.db,
        &principal.scope,
        &MembershipFilter {
            organisation_pid: Some(org.pid.clone()),
            scheme_code: query.scheme.clone(),
            year: query.year,
        },
    )
    .await?;
    let full = principal.role.sees_full_personal_data();
    let pids: Vec<String> = rows.iter().map(|m| m.member_pid.clone()).collect();
    let people = member::get_many(&state.db, &state.pii, &pids).await?;
    let mut sheet_rows = Vec::with_capacity(rows.len());
    let mut fees = Decimal::ZERO;
    for (i, m) in rows.iter().enumerate() {
        // Identity numbers come from the member record (decrypted only here, for the export).
        let person = people.get(&m.member_pid).ok_or(ApiError::NotFound)?;
        let id_number = if full {
            person.id_number.as_str().to_owned()
        } else {
            person.id_number.masked()
        };
        let phone = person
            .phone
            .as_ref()
            .map(|p| {
                if full {
                    p.as_str().to_owned()
                } else {
                    p.masked()
                }
            })
            .unwrap_or_default();
        fees += m.fee.as_decimal();
        sheet_rows.push(vec![
            Cell::Int(i as i64 + 1),
            Cell::Text(m.organisation_name.clone()),
            Cell::Text(m.member_name.clone()),
            Cell::Code(id_number),
            Cell::Text(person.sex().label_zh().to_owned()),
            Cell::Date(person.id_number.birth_date()),
            Cell::Code(phone),
            Cell::Text(if person.retired { "退休" } else { "在职" }.into()),
            Cell::Code(m.scheme_code.clone()),
            Cell::Date(m.coverage_start),
            Cell::Date(m.coverage_end),
            Cell::Int(i64::from(m.consecutive_periods)),
            Cell::Text(if m.continuous_renewal { "是" } else { "否" }.into()),
            Cell::Money(m.fee.as_decimal()),
            Cell::Text(
                if m.source == "individual" {
                    "个人授权扣款"
                } else {
                    "单位团体"
                }
                .into(),
            ),
            Cell::Text(if m.extended { "是" } else { "" }.into()),
        ]);
    }
    let sheet = Sheet {
        name: "参互单位台账".into(),
        title: Some(format!(
            "{} 参互单位台账{}",
            org.name,
            query
                .year
                .map(|y| format!("（{y}年度）"))
                .unwrap_or_default()
        )),
        headers: [
            "序号",
            "单位",
            "姓名",
            "身份证号码",
            "性别",
            "出生日期",
            "手机号码",
            "在职/退休",
            "方案",
            "保障期起",
            "保障期止",
            "连续参互期数",
            "连续续互",
            "会费(元)",
            "参互方式",
            "免费延期",
        ]
        .map(String::from)
        .to_vec(),
        totals: Some(vec![
            Cell::Text("合计".into()),
            Cell::Text(format!("{} 人", rows.len())),
            Cell::Empty,
            Cell::Empty,
            Cell::Empty,
            Cell::Empty,
            Cell::Empty,
            Cell::Empty,
            Cell::Empty,
            Cell::Empty,
            Cell::Empty,
            Cell::Empty,
            Cell::Empty,
            Cell::Money(fees),
            Cell::Empty,
            Cell::Empty,
        ]),
        rows: sheet_rows,
    };
    let bytes = write_workbook(&[sheet]).map_err(workbook_error)?;
    Ok(xlsx(bytes, &format!("{}-参互单位台账.xlsx", org.name)))
}

/// The yearly summary of an organisation's subtree: per unit union and scheme, people
/// enrolled (in service, retired) and fees (staff).
#[utoipa::path(
    operation_id = "exportYearlySummary",
    tag = "exports",
    security(("bearer" = [])),
    params(("id" = String, Path), ExportQuery),
    responses(
        (status = 200, description = "the .xlsx file", content_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 404, body = ErrorBody), (status = 422, body = ErrorBody)
    )
)]
#[get("/organisations/{id}/summary.xlsx")]
pub async fn summary(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<String>,
    query: web::Query<ExportQuery>,
) -> Result<HttpResponse, ApiError> {
    principal.require_staff()?;
    let year = query
        .year
        .ok_or_else(|| ApiError::invalid_field("year", "请给出年度 / give the year"))?;
    let org = organisation::get_within(&state.db, &principal.scope, &id)
        .await?
        .ok_or(ApiError::NotFound)?;
    let rows = membership::all_within(
        &state.db,
        &principal.scope,
        &MembershipFilter {
            organisation_pid: Some(org.pid.clone()),
            scheme_code: query.scheme.clone(),
            year: Some(year),
        },
    )
    .await?;
    // (unit, scheme) → (people, retired, fees); retirees are told apart by their fee share.
    let mut groups: BTreeMap<(String, String), (i64, Decimal)> = BTreeMap::new();
    for m in &rows {
        let entry = groups
            .entry((m.organisation_name.clone(), m.scheme_code.clone()))
            .or_insert((0, Decimal::ZERO));
        entry.0 += 1;
        entry.1 += m.fee.as_decimal();
    }
    let (mut people, mut fees) = (0i64, Decimal::ZERO);
    let sheet_rows: Vec<Vec<Cell>> = groups
        .into_iter()
        .enumerate()
        .map(|(i, ((unit, scheme), (n, fee)))| {
            people += n;
            fees += fee;
            vec![
                Cell::Int(i as i64 + 1),
                Cell::Text(unit),
                Cell::Code(scheme),
                Cell::Int(n),
                Cell::Money(fee),
            ]
        })
        .collect();
    let sheet = Sheet {
        name: format!("{year}年度汇总"),
        title: Some(format!("{} {year}年度职工医疗互助参互汇总表", org.name)),
        headers: ["序号", "单位", "方案", "参互人数", "会费合计(元)"]
            .map(String::from)
            .to_vec(),
        totals: Some(vec![
            Cell::Text("合计".into()),
            Cell::Empty,
            Cell::Empty,
            Cell::Int(people),
            Cell::Money(fees),
        ]),
        rows: sheet_rows,
    };
    let bytes = write_workbook(&[sheet]).map_err(workbook_error)?;
    Ok(xlsx(bytes, &format!("{}-{year}年度汇总.xlsx", org.name)))
}

/// `?year=&scheme=` of the progress export.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ProgressExportQuery {
    pub year: i32,
    pub scheme: Option<String>,
}

/// Targets, enrolled, completion and renewal rates of the caller's subtree, as a sheet.
#[utoipa::path(
    operation_id = "exportTargetProgress",
    tag = "exports",
    security(("bearer" = [])),
    params(ProgressExportQuery),
    responses(
        (status = 200, description = "the .xlsx file", content_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
        (status = 401, body = ErrorBody), (status = 403, body = ErrorBody), (status = 422, body = ErrorBody)
    )
)]
#[get("/targets/progress.xlsx")]
pub async fn progress(
    state: web::Data<AppState>,
    principal: Principal,
    query: web::Query<ProgressExportQuery>,
) -> Result<HttpResponse, ApiError> {
    principal.require_staff()?;
    if !(2000..=2100).contains(&query.year) {
        return Err(ApiError::invalid_field("year", "年份无效 / invalid year"));
    }
    let lines = targets::progress(
        &state.db,
        &principal.scope,
        query.year,
        query.scheme.as_deref(),
    )
    .await?;
    let rows = lines
        .iter()
        .map(|p| {
            vec![
                Cell::Text(format!("{}{}", "　".repeat(p.depth), p.organisation_name)),
                p.target.map(Cell::Int).unwrap_or(Cell::Empty),
                p.target
                    .map(|t| {
                        Cell::Text(
                            (Decimal::from(t) / Decimal::from(10_000))
                                .round_dp(4)
                                .normalize()
                                .to_string(),
                        )
                    })
                    .unwrap_or(Cell::Empty),
                Cell::Int(p.enrolled),
                p.completion_rate()
                    .map(Cell::Percent)
                    .unwrap_or(Cell::Empty),
                Cell::Int(p.previous),
                Cell::Int(p.renewed),
                p.renewal_rate().map(Cell::Percent).unwrap_or(Cell::Empty),
            ]
        })
        .collect();
    let sheet = Sheet {
        name: format!("{}年度任务完成情况", query.year),
        title: Some(format!(
            "{}年度职工医疗互助参互任务完成情况（截至{}）",
            query.year,
            state.settings.today()
        )),
        headers: [
            "单位",
            "任务数(人)",
            "任务数(万人)",
            "已参互(人)",
            "完成率",
            "上年参互(人)",
            "续互(人)",
            "续会率",
        ]
        .map(String::from)
        .to_vec(),
        rows,
        totals: None,
    };
    let bytes = write_workbook(&[sheet]).map_err(workbook_error)?;
    Ok(xlsx(bytes, &format!("{}年度任务完成情况.xlsx", query.year)))
}

/// A blank roster template with the standard headers (anyone).
#[utoipa::path(
    operation_id = "getRosterTemplate",
    tag = "exports",
    responses((status = 200, description = "the .xlsx file", content_type = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"))
)]
#[get("/roster-template.xlsx")]
pub async fn template() -> Result<HttpResponse, ApiError> {
    let bytes = crate::formats::workbook::roster_template().map_err(workbook_error)?;
    Ok(xlsx(bytes, "参互名单模板.xlsx"))
}

//! The spreadsheets clerks download: the ledger (参互单位台账) and the yearly summary of an
//! organisation's subtree, the progress against targets, and the blank roster template. Each is
//! read inside the caller's scope and written by [`crate::formats::workbook`].

use std::collections::BTreeMap;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use sea_orm::{ConnectionTrait, DatabaseConnection, DbErr};
use serde_json::json;

use super::audit::{self, Actor};
use super::membership::{self, Membership, MembershipFilter};
use super::organisation::Organisation;
use super::roster_facts::RosterFacts;
use super::scope::Scope;
use super::{member, organisation, targets};
use crate::auth::crypto::PiiVault;
use crate::formats::workbook::{self, Cell, RosterLine, Sheet, WorkbookError};

/// A workbook to download.
#[derive(Clone, Debug)]
pub struct Export {
    pub bytes: Vec<u8>,
    /// What the file is called (Chinese, with its `.xlsx`).
    pub filename: String,
}

/// Why an export was not written.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The organisation is not in the caller's subtree.
    #[error("not found")]
    NotFound,
    #[error(transparent)]
    Workbook(#[from] WorkbookError),
    #[error(transparent)]
    Db(#[from] DbErr),
}

/// The organisation (inside `scope`) and the memberships of its subtree, of periods starting in
/// `year` and of `scheme_code` when given.
async fn memberships_of<C: ConnectionTrait>(
    db: &C,
    scope: &Scope,
    organisation_pid: &str,
    year: Option<i32>,
    scheme_code: Option<String>,
) -> Result<(Organisation, Vec<Membership>), ExportError> {
    let org = organisation::get_within(db, scope, organisation_pid)
        .await?
        .ok_or(ExportError::NotFound)?;
    let rows = membership::all_within(
        db,
        scope,
        &MembershipFilter {
            organisation_pid: Some(org.pid.clone()),
            scheme_code,
            year,
        },
    )
    .await?;
    Ok((org, rows))
}

/// One sheet, written as a workbook called `filename`.
fn export(sheet: Sheet, filename: String) -> Result<Export, ExportError> {
    Ok(Export {
        bytes: workbook::write_workbook(&[sheet])?,
        filename,
    })
}

/// The ledger of organisation `organisation_pid`'s subtree (periods starting in `year`, of
/// `scheme_code`, when given): every membership, one row each, with its unit union and what
/// the union's roster said (工作单位, 部门, 工号, 备注, then every other column of the rosters,
/// one column per header in order of first appearance);
/// personal numbers in full only when `full_personal_data` (the roles that need them).
pub async fn ledger<C: ConnectionTrait>(
    db: &C,
    vault: &PiiVault,
    scope: &Scope,
    organisation_pid: &str,
    year: Option<i32>,
    scheme_code: Option<String>,
    full_personal_data: bool,
) -> Result<Export, ExportError> {
    let (org, rows) = memberships_of(db, scope, organisation_pid, year, scheme_code).await?;
    let full = full_personal_data;
    let pids: Vec<String> = rows.iter().map(|m| m.member_pid.clone()).collect();
    let people = member::get_many(db, vault, &pids).await?;
    let mut sheet_rows = Vec::with_capacity(rows.len());
    let mut fees = Decimal::ZERO;
    let extra_headers = extra_headers_of(rows.iter().filter_map(|m| m.roster.as_ref()));
    let no_facts = RosterFacts::default();
    for (i, m) in rows.iter().enumerate() {
        let facts = m.roster.as_ref().unwrap_or(&no_facts);
        let text = |v: &Option<String>| v.clone().map(Cell::Text).unwrap_or(Cell::Empty);
        // Identity numbers come from the member record (decrypted only here, for the export).
        let person = people.get(&m.member_pid).ok_or(ExportError::NotFound)?;
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
        let mut line = vec![
            Cell::Int(i as i64 + 1),
            Cell::Text(m.organisation_name.clone()),
            Cell::Text(m.member_name.clone()),
            Cell::Code(id_number),
            Cell::Text(person.sex().label_zh().to_owned()),
            Cell::Date(person.id_number.birth_date()),
            Cell::Code(phone),
            text(&facts.workplace),
            text(&facts.department),
            facts
                .employee_number
                .clone()
                .map(Cell::Code)
                .unwrap_or(Cell::Empty),
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
            text(&facts.remarks),
        ];
        line.extend(extra_headers.iter().map(|h| {
            facts
                .extra_columns
                .get(h)
                .map(|v| Cell::Code(v.to_owned()))
                .unwrap_or(Cell::Empty)
        }));
        sheet_rows.push(line);
    }
    let sheet = Sheet {
        name: "参互单位台账".into(),
        title: Some(format!(
            "{} 参互单位台账{}",
            org.name,
            year.map(|y| format!("（{y}年度）")).unwrap_or_default()
        )),
        headers: [
            "序号",
            "基层工会",
            "姓名",
            "身份证号码",
            "性别",
            "出生日期",
            "手机号码",
            "工作单位",
            "部门",
            "工号",
            "在职/退休",
            "方案",
            "保障期起",
            "保障期止",
            "连续参互期数",
            "连续续互",
            "会费(元)",
            "参互方式",
            "免费延期",
            "备注",
        ]
        .map(String::from)
        .into_iter()
        .chain(extra_headers.iter().cloned())
        .collect(),
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
            Cell::Empty,
            Cell::Empty,
            Cell::Empty,
            Cell::Money(fees),
        ]),
        rows: sheet_rows,
    };
    export(sheet, format!("{}-参互单位台账.xlsx", org.name))
}

/// The headers of the rosters' other columns, in order of first appearance.
fn extra_headers_of<'a>(facts: impl Iterator<Item = &'a RosterFacts>) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    let mut headers = Vec::new();
    for f in facts {
        for (h, _) in &f.extra_columns.0 {
            if seen.insert(h.as_str()) {
                headers.push(h.clone());
            }
        }
    }
    headers
}

/// The summary of organisation `organisation_pid`'s subtree for `year`: per unit union and
/// scheme, people enrolled and fees.
pub async fn yearly_summary<C: ConnectionTrait>(
    db: &C,
    scope: &Scope,
    organisation_pid: &str,
    year: i32,
    scheme_code: Option<String>,
) -> Result<Export, ExportError> {
    let (org, rows) = memberships_of(db, scope, organisation_pid, Some(year), scheme_code).await?;
    // (unit, scheme) → (people, fees).
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
    export(sheet, format!("{}-{year}年度汇总.xlsx", org.name))
}

/// Targets, enrolled, completion and renewal rates of the caller's subtree for `year`, as of
/// `today`.
pub async fn target_progress<C: ConnectionTrait>(
    db: &C,
    scope: &Scope,
    year: i32,
    scheme_code: Option<&str>,
    today: NaiveDate,
) -> Result<Export, ExportError> {
    let lines = targets::progress(db, scope, year, scheme_code).await?;
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
                Cell::Int(p.awaiting),
                Cell::Int(p.refused),
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
        name: format!("{year}年度任务完成情况"),
        title: Some(format!(
            "{year}年度职工医疗互助参互任务完成情况（截至{today}）"
        )),
        headers: [
            "单位",
            "任务数(人)",
            "任务数(万人)",
            "已参互(人)",
            "已提交待确认(人)",
            "退回未重报(人)",
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
    export(sheet, format!("{year}年度任务完成情况.xlsx"))
}

/// A blank roster with the standard headers.
pub fn roster_template() -> Result<Export, ExportError> {
    Ok(Export {
        bytes: workbook::roster_template()?,
        filename: "参互名单模板.xlsx".into(),
    })
}

/// How long after a period's end its people still belong on next year's roster: the schemes'
/// grace window (15 days, `coverage.grace_days` of every scheme), inside which renewing keeps
/// them continuous.
const RENEWABLE_DAYS: i64 = 15;

/// What the clerk is told at the top of the renewal roster.
const RENEWAL_INSTRUCTION: &str = "续互名单：以下为本单位本年度参互人员。请整行删除不再参互（离职、调出、去世等）的人员，\
     在末尾追加新参互人员，核对手机号码、是否参加医保和在职/退休后，作为下一年度的参互名单上传。\
     本表含完整身份证号码，请妥善保管，用后删除。";

/// Next year's roster of unit union `organisation_pid` (inside `scope`), in the roster
/// template's columns (what the roster said — workplace, department, employee number, remarks,
/// insured — filled in, and its other columns after them): the people of its group enrolments (of `scheme_code` when given) whose
/// period is running, upcoming or ended within the grace window on `today` — one row each, the
/// newest period — with full ID and phone numbers, so the clerk deletes leavers, appends
/// joiners and uploads it back as an ordinary roster. Every download is audited.
#[allow(clippy::too_many_arguments)]
pub async fn renewal_roster(
    db: &DatabaseConnection,
    vault: &PiiVault,
    scope: &Scope,
    organisation_pid: &str,
    scheme_code: Option<String>,
    today: NaiveDate,
    actor_pid: &str,
    request_id: Option<String>,
) -> Result<Export, ExportError> {
    let (org, rows) =
        memberships_of(db, scope, organisation_pid, None, scheme_code.clone()).await?;
    let renewable_from = today - chrono::Duration::days(RENEWABLE_DAYS);
    // Newest period per person, of the union itself (not its sub-units), from group rosters.
    let mut newest: BTreeMap<String, &Membership> = BTreeMap::new();
    for m in rows.iter().filter(|m| {
        m.organisation_pid == org.pid
            && m.source != "individual"
            && m.coverage_end >= renewable_from
    }) {
        let slot = newest.entry(m.member_pid.clone()).or_insert(m);
        if m.coverage_start > slot.coverage_start {
            *slot = m;
        }
    }
    let mut chosen: Vec<&Membership> = newest.into_values().collect();
    chosen.sort_by_key(|m| m.id);
    let pids: Vec<String> = chosen.iter().map(|m| m.member_pid.clone()).collect();
    let people = member::get_many(db, vault, &pids).await?;
    let extra_headers = extra_headers_of(chosen.iter().filter_map(|m| m.roster.as_ref()));
    let no_facts = RosterFacts::default();
    let mut lines: Vec<RosterLine> = Vec::with_capacity(chosen.len());
    for (i, m) in chosen.iter().enumerate() {
        let person = people.get(&m.member_pid).ok_or(ExportError::NotFound)?;
        let facts = m.roster.as_ref().unwrap_or(&no_facts);
        let text = |v: &Option<String>| v.clone().unwrap_or_default();
        lines.push(RosterLine {
            standard: [
                (i + 1).to_string(),
                person.name.as_str().to_owned(),
                person.id_number.as_str().to_owned(),
                person
                    .phone
                    .as_ref()
                    .map(|p| p.as_str().to_owned())
                    .unwrap_or_default(),
                text(&facts.workplace),
                text(&facts.department),
                text(&facts.employee_number),
                // As their roster said; left empty there, 是: they were on a roster the scheme
                // accepted. The clerk corrects any change.
                if facts.insured == Some(false) {
                    "否"
                } else {
                    "是"
                }
                .into(),
                if person.retired { "退休" } else { "在职" }.into(),
                text(&facts.remarks),
            ],
            extra: extra_headers
                .iter()
                .map(|h| facts.extra_columns.get(h).unwrap_or_default().to_owned())
                .collect(),
        });
    }
    let bytes = workbook::roster_workbook(
        &format!("{} 职工医疗互助保障参互人员名单（续互）", org.name),
        Some(RENEWAL_INSTRUCTION),
        &extra_headers,
        &lines,
    )?;
    audit::record(
        db,
        &Actor::Account {
            pid: actor_pid.to_owned(),
        },
        "roster.renewal_downloaded",
        ("organisation", Some(&org.pid)),
        json!({ "people": lines.len(), "scheme_code": scheme_code, "on": today.to_string() }),
        request_id,
    )
    .await?;
    Ok(Export {
        bytes,
        filename: format!("{}-续互名单.xlsx", org.name),
    })
}

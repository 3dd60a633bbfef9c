//! The demo on first start of the embedded default: an association, one office, two service
//! points, four unit unions, forty members over the seed schemes, staff for every role — and
//! the console says how to sign in as each.

use chrono::{NaiveDate, Utc};
use sea_orm::{ActiveModelTrait, ConnectionTrait, DbErr, Set};
use serde_json::json;

use entity::membership;

use crate::domain::Role;
use crate::domain::{IdNumber, PersonName, PhoneNumber};
use crate::service::audit::{self, Actor};
use crate::service::member::{self, NewMember};
use crate::service::organisation::{self, Organisation, OrganisationKind};
use crate::service::{new_pid, staff};
use crate::state::AppState;

const SURNAMES: &[&str] = &["王", "李", "张", "刘", "陈", "杨", "赵", "黄", "周", "吴"];
const GIVEN: &[&str] = &[
    "建国", "秀英", "志强", "桂兰", "海燕", "晓东", "丽娜", "文博", "玉梅", "宏伟", "淑珍", "雅琴",
    "俊杰", "红霞", "国庆", "美玲", "永刚", "春花", "立新", "慧敏",
];

/// A unit union of the demo and the schemes its members join.
struct DemoUnit {
    name: &'static str,
    login: &'static str,
    service_point: usize,
    schemes: &'static [(&'static str, &'static str, &'static str, bool)],
}

/// (scheme, coverage start, coverage end, women only)
const UNITS: &[DemoUnit] = &[
    DemoUnit {
        name: "内蒙古电力（集团）有限责任公司工会",
        login: "union-power",
        service_point: 0,
        schemes: &[
            ("nm-inpatient-2025", "2025-01-01", "2025-12-31", false),
            ("nm-xinkang-2025", "2025-01-01", "2025-12-31", true),
        ],
    },
    DemoUnit {
        name: "呼和浩特市第一医院工会",
        login: "union-hospital",
        service_point: 0,
        schemes: &[
            ("nm-inpatient-2022", "2022-05-11", "2023-05-10", false),
            ("nm-xinkang-2022", "2022-05-11", "2023-05-10", true),
        ],
    },
    DemoUnit {
        name: "赛罕区教育局工会",
        login: "union-education",
        service_point: 1,
        schemes: &[("wj-2022", "2022-01-01", "2022-12-31", false)],
    },
    DemoUnit {
        name: "呼和浩特乳业集团工会",
        login: "union-dairy",
        service_point: 1,
        schemes: &[("yc-2022", "2022-01-01", "2022-12-31", false)],
    },
];

/// A valid ID number for the demo.
fn demo_id_number(region: &str, birth: NaiveDate, seq: u32) -> Option<IdNumber> {
    IdNumber::complete(&format!("{region}{}{seq:03}", birth.format("%Y%m%d"))).ok()
}

fn date(s: &str) -> Result<NaiveDate, DbErr> {
    NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|e| DbErr::Custom(e.to_string()))
}

/// (member id, name, unit) of a demo member shown on the console.
type DemoMember = (String, String, String);

/// One sign-in line of the console table.
struct Account {
    login: String,
    role: Role,
    organisation: String,
}

/// Seeds the demo when the database has no organisation yet; prints how to sign in.
pub async fn seed_if_empty(state: &AppState, base_url: &str) -> Result<(), DbErr> {
    if !organisation::is_empty(&state.db).await? {
        print_sign_in(base_url, None);
        return Ok(());
    }
    let txn = crate::db::begin_write(&state.db).await?;
    let (accounts, members) = seed(&txn, state).await?;
    audit::record(
        &txn,
        &Actor::System,
        "demo.seeded",
        ("organisation", None),
        json!({ "staff": accounts.len(), "members": members.len() }),
        None,
    )
    .await?;
    txn.commit().await?;
    print_sign_in(base_url, Some((&accounts, &members)));
    Ok(())
}

fn tree_err(e: organisation::TreeError) -> DbErr {
    DbErr::Custom(e.to_string())
}

async fn seed<C: ConnectionTrait>(
    db: &C,
    state: &AppState,
) -> Result<(Vec<Account>, Vec<DemoMember>), DbErr> {
    let association = organisation::create(
        db,
        None,
        OrganisationKind::Association,
        "内蒙古自治区职工互助保障协会（演示）",
        None,
    )
    .await
    .map_err(tree_err)?;
    let office = organisation::create(
        db,
        Some(&association),
        OrganisationKind::Office,
        "呼和浩特办事处",
        None,
    )
    .await
    .map_err(tree_err)?;
    let mut points: Vec<Organisation> = Vec::new();
    for name in ["新城区代办点", "赛罕区代办点"] {
        points.push(
            organisation::create(
                db,
                Some(&office),
                OrganisationKind::ServicePoint,
                name,
                None,
            )
            .await
            .map_err(tree_err)?,
        );
    }

    let mut accounts = Vec::new();
    let mut add_staff = async |org: &Organisation, role: Role, name: &str, login: &str| {
        staff::create(db, org, role, name, login)
            .await
            .map_err(|e| DbErr::Custom(e.to_string()))?;
        accounts.push(Account {
            login: login.to_owned(),
            role,
            organisation: org.name.clone(),
        });
        Ok::<(), DbErr>(())
    };
    add_staff(&association, Role::Admin, "系统管理员", "admin").await?;
    add_staff(
        &association,
        Role::AssociationReviewer,
        "协会审核员",
        "association",
    )
    .await?;
    add_staff(
        &office,
        Role::ServicePointReviewer,
        "办事处审核员",
        "office",
    )
    .await?;
    add_staff(
        &points[0],
        Role::ServicePointReviewer,
        "新城区代办员",
        "sp-xincheng",
    )
    .await?;
    add_staff(
        &points[1],
        Role::ServicePointReviewer,
        "赛罕区代办员",
        "sp-saihan",
    )
    .await?;

    let mut members = Vec::new();
    let mut seq = 0u32;
    for unit in UNITS {
        let org = organisation::create(
            db,
            Some(&points[unit.service_point]),
            OrganisationKind::UnitUnion,
            unit.name,
            Some(12),
        )
        .await
        .map_err(tree_err)?;
        add_staff(
            &org,
            Role::UnionReviewer,
            &format!("{}工会干事", unit.name.chars().take(4).collect::<String>()),
            unit.login,
        )
        .await?;
        for i in 0..10u32 {
            seq += 1;
            let retired = i == 9 && unit.service_point == 0;
            let year = if retired {
                1958
            } else {
                1970 + (seq * 7 % 30) as i32
            };
            let birth = NaiveDate::from_ymd_opt(year, 1 + seq % 12, 1 + (seq * 3) % 28)
                .ok_or_else(|| DbErr::Custom("demo birth date".into()))?;
            let id_number = demo_id_number("150102", birth, 100 + seq)
                .ok_or_else(|| DbErr::Custom("demo ID number".into()))?;
            let name = PersonName::parse(&format!(
                "{}{}",
                SURNAMES[(seq as usize) % SURNAMES.len()],
                GIVEN[(seq as usize * 7) % GIVEN.len()]
            ))
            .map_err(|e| DbErr::Custom(e.to_string()))?;
            let phone = PhoneNumber::parse(&format!("139047{:05}", 10000 + seq))
                .map_err(|e| DbErr::Custom(e.to_string()))?;
            let created = member::create(
                db,
                &state.pii,
                &org,
                &NewMember {
                    name: name.clone(),
                    id_number: id_number.clone(),
                    phone: Some(phone),
                    bank_card: None,
                    retired,
                },
            )
            .await
            .map_err(|e| DbErr::Custom(e.to_string()))?;
            let female = id_number.sex() == crate::domain::Sex::Female;
            for (scheme, start, end, women_only) in unit.schemes {
                if *women_only && (!female || retired) {
                    continue;
                }
                membership::ActiveModel {
                    pid: Set(new_pid()),
                    member_id: Set(created.id),
                    organisation_id: Set(org.id),
                    scheme_code: Set((*scheme).into()),
                    coverage_start: Set(date(start)?),
                    coverage_end: Set(date(end)?),
                    status: Set("active".into()),
                    consecutive_periods: Set(1 + (seq % 3) as i32),
                    continuous_renewal: Set(seq.is_multiple_of(2)),
                    created_at: Set(Utc::now()),
                    ..Default::default()
                }
                .insert(db)
                .await?;
            }
            if i < 2 {
                members.push((
                    created.pid.clone(),
                    name.as_str().to_owned(),
                    unit.name.to_owned(),
                ));
            }
        }
    }
    Ok((accounts, members))
}

fn print_sign_in(base: &str, seeded: Option<(&[Account], &[DemoMember])>) {
    let mut out = String::new();
    match seeded {
        Some((accounts, members)) => {
            out.push_str("\n=== Huzhu demo: seeded an association, 1 office, 2 service points, 4 unit unions, 40 members ===\n");
            out.push_str("Sign in without WeChat (demo mode only):\n");
            out.push_str(&format!(
                "  curl -s -X POST {base}/api/v1/auth/dev-login -H 'content-type: application/json' -d '{{\"account\":\"<login>\"}}'\n\n"
            ));
            out.push_str(&format!(
                "  {:<18} {:<24} {}\n",
                "login", "role", "organisation"
            ));
            for a in accounts {
                out.push_str(&format!(
                    "  {:<18} {:<24} {}\n",
                    a.login,
                    a.role.as_str(),
                    a.organisation
                ));
            }
            out.push_str("\n  members (account = member id):\n");
            for (pid, name, unit) in members {
                out.push_str(&format!("  {pid}  {name}  {unit}\n"));
            }
        }
        None => {
            out.push_str("\n=== Huzhu demo (data already present) ===\n");
            out.push_str(&format!(
                "Sign in: curl -s -X POST {base}/api/v1/auth/dev-login -H 'content-type: application/json' -d '{{\"account\":\"admin\"}}'\n"
            ));
            out.push_str("Staff logins: admin, association, office, sp-xincheng, sp-saihan, union-power, union-hospital, union-education, union-dairy\n");
        }
    }
    out.push_str(&format!(
        "API docs: {base}/api/docs/   OpenAPI: {base}/api/v1/openapi.json\n"
    ));
    println!("{out}");
}

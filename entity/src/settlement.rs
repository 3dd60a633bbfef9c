//! `settlement`: a settlement of the medical-insurance bureau's file that matched a member's
//! coverage period (rows that did not match are never stored).

use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "settlement")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    #[sea_orm(unique)]
    pub pid: String,
    pub organisation_id: i64,
    pub import_job_id: i64,
    pub row: i32,
    pub settlement_id: String,
    pub member_id: i64,
    pub membership_id: i64,
    pub hospital: Option<String>,
    pub admitted_on: Date,
    pub discharged_on: Date,
    pub billed_days: Option<i32>,
    pub total_fen: i64,
    pub fund_fen: Option<i64>,
    pub critical_illness_fen: Option<i64>,
    pub deductible_fen: Option<i64>,
    pub eligible_self_pay_fen: Option<i64>,
    pub self_funded_fen: Option<i64>,
    pub settled_on: Option<Date>,
    pub insurance_type: Option<String>,
    pub medical_category: Option<String>,
    pub diagnosis_code: Option<String>,
    pub diagnosis_name: Option<String>,
    /// 离院方式, as written (死亡 / 5: the member died in hospital).
    pub discharge_way: Option<String>,
    /// `inpatient` or `diagnosis`: the event this row is offered as.
    pub event_kind: String,
    pub claim_id: Option<i64>,
    pub outcome: String,
    pub reason: Option<String>,
    pub created_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}

//! Migrations of Huzhu. The same migrations build the same schema on SQLite and PostgreSQL:
//! only portable column types, money as integer fen (`BIGINT`), dates as `DATE`, instants as
//! `TIMESTAMP WITH TIME ZONE`. Migrations define their own identifiers and never import `entity`.

pub use sea_orm_migration::prelude::*;

mod m20261123_000001_create_foundation;
mod m20261123_000002_create_scheme_version;
mod m20261123_000003_create_enrolment;
mod m20261124_000004_chain_audit_event;
mod m20261124_000005_create_claim;
mod m20261125_000006_index_payout_item_batch;
mod m20261125_000007_create_reminders;
mod m20261126_000008_index_membership_scheme_end;
mod m20261203_000009_wechat_subscribe;
mod m20261205_000010_period_money;
mod m20261205_000011_outbox_lease_token;
mod m20261205_000012_idempotency_fingerprint;
mod m20261205_100001_sms_receipt;
mod m20261205_100002_renewal_names_scheme;
mod m20261205_200001_token_generation;
mod m20261205_500001_wujin_year;
mod m20261206_300001_roster_facts;
mod m20261206_500001_create_settlement;
mod m20261207_200001_offer_lapse;
mod m20261207_400001_settlement_event_kind;
mod m20261208_100001_settlement_fillfactor;
mod m20261209_100001_claim_flagged_index;
mod m20261210_100001_claim_queue_indexes;
mod m20261211_100001_claim_listed_names;

/// Every migration of the product, in order.
pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261123_000001_create_foundation::Migration),
            Box::new(m20261123_000002_create_scheme_version::Migration),
            Box::new(m20261123_000003_create_enrolment::Migration),
            Box::new(m20261124_000004_chain_audit_event::Migration),
            Box::new(m20261124_000005_create_claim::Migration),
            Box::new(m20261125_000006_index_payout_item_batch::Migration),
            Box::new(m20261125_000007_create_reminders::Migration),
            Box::new(m20261126_000008_index_membership_scheme_end::Migration),
            Box::new(m20261203_000009_wechat_subscribe::Migration),
            Box::new(m20261205_000010_period_money::Migration),
            Box::new(m20261205_000011_outbox_lease_token::Migration),
            Box::new(m20261205_000012_idempotency_fingerprint::Migration),
            Box::new(m20261205_100001_sms_receipt::Migration),
            Box::new(m20261205_100002_renewal_names_scheme::Migration),
            Box::new(m20261205_200001_token_generation::Migration),
            Box::new(m20261205_500001_wujin_year::Migration),
            Box::new(m20261206_300001_roster_facts::Migration),
            Box::new(m20261206_500001_create_settlement::Migration),
            Box::new(m20261207_200001_offer_lapse::Migration),
            Box::new(m20261207_400001_settlement_event_kind::Migration),
            Box::new(m20261208_100001_settlement_fillfactor::Migration),
            Box::new(m20261209_100001_claim_flagged_index::Migration),
            Box::new(m20261210_100001_claim_queue_indexes::Migration),
            Box::new(m20261211_100001_claim_listed_names::Migration),
        ]
    }
}

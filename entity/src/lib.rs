//! SeaORM entities of Huzhu, one module per table, shaped as `sea-orm-cli generate entity`
//! writes them. Domain logic lives in `huzhu::service`, never here.

pub mod audit_chain_head;
pub mod audit_event;
pub mod authorisation_text;
pub mod claim;
pub mod claim_event;
pub mod claim_judgement;
pub mod claim_material;
pub mod coverage_extension;
pub mod deduction_batch;
pub mod deduction_item;
pub mod deduction_refund;
pub mod deduction_window;
pub mod enrolment_batch;
pub mod enrolment_entry;
pub mod enrolment_target;
pub mod import_job;
pub mod invitation;
pub mod member;
pub mod membership;
pub mod organisation;
pub mod outbox;
pub mod payment_authorisation;
pub mod payout_batch;
pub mod payout_item;
pub mod scheme_version;
pub mod settlement;
pub mod sms_receipt;
pub mod sms_template;
pub mod staff;

pub mod prelude {
    //! The entities by their table names.
    pub use super::audit_event::Entity as AuditEvent;
    pub use super::invitation::Entity as Invitation;
    pub use super::member::Entity as Member;
    pub use super::membership::Entity as Membership;
    pub use super::organisation::Entity as Organisation;
    pub use super::scheme_version::Entity as SchemeVersion;
    pub use super::staff::Entity as Staff;
}

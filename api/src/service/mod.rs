//! Database access, grouped by resource. Functions take `&impl ConnectionTrait` so they compose
//! inside transactions; entity models never leave this module tree.

pub mod audit;
pub mod authorisation;
pub mod deduction;
pub mod enrolment;
pub mod import;
pub mod invitation;
pub mod member;
pub mod membership;
pub mod organisation;
pub mod outbox;
pub mod page;
pub mod scheme;
pub mod simulation;
pub mod staff;
pub mod targets;

/// Whether a database error is a unique-constraint violation (on either backend).
pub fn is_unique_violation(err: &sea_orm::DbErr) -> bool {
    matches!(
        err.sql_err(),
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
    )
}

/// A fresh public id.
pub fn new_pid() -> String {
    uuid::Uuid::now_v7().to_string()
}

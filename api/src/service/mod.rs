//! The use cases: every transaction, audit entry, outbox row and read model, grouped by
//! resource. Functions take `&impl ConnectionTrait` (or open their own write transaction with
//! [`crate::db::begin_write`]) so they compose; entity models never leave this module tree.
//!
//! May use: `domain/`, `engine/`, `formats/`, `integrations/`, `entity`, `settings`, `state`.
//! Never: `routes/`, `startup`, `error` (the HTTP error) or actix — a service says *why* it
//! refused (its own error enum, or a [`Problem`]) and the HTTP layer decides the status.
//! [`scope`] keeps every query inside what the caller may see; [`page`] is the cursor
//! pagination every list shares; long work runs here too (`import` jobs, `reminders`).

pub mod account;
pub mod audit;
pub mod authorisation;
pub mod bulk;
pub mod claim;
pub mod deduction;
pub mod enrolment;
pub mod export;
pub mod health;
pub mod import;
pub mod invitation;
pub mod member;
pub mod membership;
pub mod organisation;
pub mod outbox;
pub mod page;
pub mod participation;
pub mod photo_work;
pub mod pii_rotation;
pub mod reminders;
pub mod rfc3339;
pub mod roster_facts;
pub mod rows;
pub mod scheme;
pub mod scope;
pub mod session;
pub mod settlement;
pub mod simulation;
pub mod staff;
pub mod targets;

/// Who asks for a change: the signed-in account the audit trail names, the part of the tree it
/// may touch, and the request that carried it (kept with the audit entry).
#[derive(Clone, Debug)]
pub struct Requester {
    /// Public id of the member or staff account.
    pub pid: String,
    pub scope: scope::Scope,
    pub request_id: Option<String>,
}

impl Requester {
    /// Records the requester's act in the audit trail, inside the transaction that does it.
    pub async fn audit<C: sea_orm::ConnectionTrait + sea_orm::TransactionTrait>(
        &self,
        txn: &C,
        action: &str,
        subject: (&str, Option<&str>),
        details: serde_json::Value,
    ) -> Result<(), sea_orm::DbErr> {
        let actor = audit::Actor::Account {
            pid: self.pid.clone(),
        };
        audit::record(
            txn,
            &actor,
            action,
            subject,
            details,
            self.request_id.clone(),
        )
        .await
    }
}

/// Why a service would not do what it was asked, in the words the caller reads: a stable code,
/// a message (Chinese first, where a worker reads it) and structured details. Services say *why*;
/// the HTTP layer alone decides how that is answered (`Invalid` is 422, `Conflict` 409), so the
/// same problem can also be kept in a job report without any HTTP type below `routes/`.
#[derive(Clone, Debug, PartialEq)]
pub struct Problem {
    pub kind: ProblemKind,
    pub code: &'static str,
    pub message: String,
    pub details: serde_json::Value,
}

/// Whether a problem is about the value asked for or about the state it meets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProblemKind {
    /// The request was read but a value is not acceptable.
    Invalid,
    /// The request clashes with the current state (duplicate, stale version, wrong status).
    Conflict,
}

impl Problem {
    /// A refused value, with its own code and details.
    pub fn invalid(
        code: &'static str,
        message: impl Into<String>,
        details: serde_json::Value,
    ) -> Self {
        Problem {
            kind: ProblemKind::Invalid,
            code,
            message: message.into(),
            details,
        }
    }

    /// `invalid_request` on one field.
    pub fn invalid_field(field: &str, message: impl Into<String>) -> Self {
        Self::invalid_value("invalid_request", field, message)
    }

    /// A refused value of one field, with a domain code.
    pub fn invalid_value(code: &'static str, field: &str, message: impl Into<String>) -> Self {
        Self::invalid(code, message, serde_json::json!({ "field": field }))
    }

    /// A clash with the current state.
    pub fn conflict(
        code: &'static str,
        message: impl Into<String>,
        details: serde_json::Value,
    ) -> Self {
        Problem {
            kind: ProblemKind::Conflict,
            code,
            message: message.into(),
            details,
        }
    }

    /// `{"code","message","details"}`, as an error body holds it (for job reports).
    pub fn body_value(&self) -> serde_json::Value {
        serde_json::json!({ "code": self.code, "message": self.message, "details": self.details })
    }
}

/// Whether a database error is a unique-constraint violation (on either backend).
pub fn is_unique_violation(err: &sea_orm::DbErr) -> bool {
    matches!(
        err.sql_err(),
        Some(sea_orm::SqlErr::UniqueConstraintViolation(_))
    )
}

/// A hand-written statement (set-based SQL the query builder cannot express) with `?`
/// placeholders, numbered `$1, $2, …` for PostgreSQL. The SQL must hold no other `?`.
pub fn raw_statement(
    backend: sea_orm::DbBackend,
    sql: &str,
    values: Vec<sea_orm::Value>,
) -> sea_orm::Statement {
    let sql = if backend == sea_orm::DbBackend::Postgres {
        let mut n = 0;
        let mut out = String::with_capacity(sql.len() + 8);
        for c in sql.chars() {
            if c == '?' {
                n += 1;
                out.push_str(&format!("${n}"));
            } else {
                out.push(c);
            }
        }
        out
    } else {
        sql.to_owned()
    };
    sea_orm::Statement::from_sql_and_values(backend, sql, values)
}

/// A fresh public id.
pub fn new_pid() -> String {
    uuid::Uuid::now_v7().to_string()
}

//! Database access, grouped by resource. Functions take `&impl ConnectionTrait` so they compose
//! inside transactions; entity models never leave this module tree.

pub mod audit;
pub mod authorisation;
pub mod claim;
pub mod deduction;
pub mod enrolment;
pub mod import;
pub mod invitation;
pub mod member;
pub mod membership;
pub mod organisation;
pub mod outbox;
pub mod page;
pub mod reminders;
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

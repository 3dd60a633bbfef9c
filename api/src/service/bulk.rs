//! Thousands of rows through one JSON parameter: inserts, updates and `IN` lists written as
//! `json_to_recordset` (PostgreSQL) or `json_each` (SQLite) — the same statement shape on both.
//!
//! Why not the query builder's multi-row `VALUES` and `IN (?, ?, …)`: a statement with a
//! thousand parameters costs PostgreSQL more to parse and plan than to run (measured on the
//! settlement import: 150 ms per 1,000 timeline rows, 40–50 ms per 1,000-value `IN` list, most
//! of it planning), and its cached generic plan is made once from statistics that may not know
//! the rows the same job just wrote. One JSON parameter is one value to bind and one short
//! statement to plan; the rows are read by the server. Values are never written into the SQL.

use chrono::{DateTime, NaiveDate, SecondsFormat, Utc};
use sea_orm::{ConnectionTrait, DbBackend, DbErr, QueryResult, Value};
use serde_json::Value as Json;

use super::raw_statement;

/// Rows per statement: a few megabytes of JSON at most.
pub const ROWS_PER_STATEMENT: usize = 2_000;

/// The SQL type a JSON field is read as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Int,
    Text,
    Bool,
    Date,
    Timestamp,
}

impl Kind {
    fn postgres(self) -> &'static str {
        match self {
            Kind::Int => "bigint",
            Kind::Text => "text",
            Kind::Bool => "boolean",
            Kind::Date => "date",
            Kind::Timestamp => "timestamptz",
        }
    }
}

/// A timestamp as JSON, in the text form sqlx stores in SQLite (RFC 3339, `+00:00`), which
/// PostgreSQL reads as well.
pub fn timestamp(at: DateTime<Utc>) -> Json {
    Json::String(at.to_rfc3339_opts(SecondsFormat::AutoSi, false))
}

/// A date as JSON (`YYYY-MM-DD`).
pub fn date(day: NaiveDate) -> Json {
    Json::String(day.format("%F").to_string())
}

/// `SELECT c1, c2 … FROM` the JSON array of objects bound to the one `?`.
fn rows_source(backend: DbBackend, columns: &[(&str, Kind)]) -> String {
    let names = quoted(columns);
    match backend {
        DbBackend::Postgres => {
            let defs = columns
                .iter()
                .map(|(n, k)| format!("\"{n}\" {}", k.postgres()))
                .collect::<Vec<_>>()
                .join(", ");
            format!("SELECT {names} FROM json_to_recordset(CAST(? AS json)) AS j({defs})")
        }
        _ => {
            let fields = columns
                .iter()
                .map(|(n, _)| format!("json_extract(value, '$.{n}') AS \"{n}\""))
                .collect::<Vec<_>>()
                .join(", ");
            format!("SELECT {fields} FROM json_each(?)")
        }
    }
}

/// `column IN (…)` over a JSON array of values bound to its one `?` (see [`list`]).
pub fn in_list(backend: DbBackend, column: &str, kind: Kind) -> String {
    let values = match backend {
        DbBackend::Postgres => format!(
            "SELECT CAST(value AS {}) FROM json_array_elements_text(CAST(? AS json))",
            kind.postgres()
        ),
        _ => "SELECT value FROM json_each(?)".to_owned(),
    };
    format!("{column} IN ({values})")
}

/// `column IN (values)` as a query-builder condition with one JSON parameter, for
/// `Select::filter` (`column` qualified: `member.id`).
pub fn is_in<T: serde::Serialize>(
    backend: DbBackend,
    column: &str,
    kind: Kind,
    values: &[T],
) -> sea_orm::sea_query::SimpleExpr {
    let mut sql = in_list(backend, column, kind);
    if backend == DbBackend::Postgres {
        // The query builder numbers PostgreSQL's placeholders relative to the expression.
        sql = sql.replace('?', "$1");
    }
    sea_orm::sea_query::Expr::cust_with_values(sql, [list(values)])
}

/// The bound value of an [`in_list`].
pub fn list<T: serde::Serialize>(values: &[T]) -> Value {
    Value::from(serde_json::to_string(values).unwrap_or_else(|_| "[]".to_owned()))
}

/// Inserts `rows` (JSON objects holding `columns`) into `table`, [`ROWS_PER_STATEMENT`] per
/// statement; `tail` ends each statement (`ON CONFLICT … DO NOTHING`, or empty). Returns the
/// rows written.
pub async fn insert<C: ConnectionTrait>(
    db: &C,
    table: &str,
    columns: &[(&str, Kind)],
    rows: Vec<Json>,
    tail: &str,
) -> Result<u64, DbErr> {
    let mut written = 0;
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        written += db
            .execute_raw(insert_statement(db, table, columns, chunk, tail))
            .await?
            .rows_affected();
    }
    Ok(written)
}

/// As [`insert`], returning `returning` (e.g. `id, pid`) of every row written.
pub async fn insert_returning<C: ConnectionTrait>(
    db: &C,
    table: &str,
    columns: &[(&str, Kind)],
    rows: Vec<Json>,
    returning: &str,
) -> Result<Vec<QueryResult>, DbErr> {
    let mut out = Vec::with_capacity(rows.len());
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        out.extend(
            db.query_all_raw(insert_statement(
                db,
                table,
                columns,
                chunk,
                &format!("RETURNING {returning}"),
            ))
            .await?,
        );
    }
    Ok(out)
}

fn insert_statement<C: ConnectionTrait>(
    db: &C,
    table: &str,
    columns: &[(&str, Kind)],
    rows: &[Json],
    tail: &str,
) -> sea_orm::Statement {
    let backend = db.get_database_backend();
    let names = quoted(columns);
    // `WHERE true`: SQLite parses an upsert after `INSERT … SELECT` only behind a WHERE.
    let sql = format!(
        "INSERT INTO {table} ({names}) SELECT {names} FROM ({}) AS r WHERE true {tail}",
        rows_source(backend, columns)
    );
    raw_statement(backend, &sql, vec![list(rows)])
}

/// Sets `columns` of the rows of `table` whose `key` matches a row of `rows` (JSON objects
/// holding `key` and `columns`) and that meet `guard` (SQL on `table`'s columns, qualified
/// with the table's name; `true` for all). Returns the rows changed.
pub async fn update<C: ConnectionTrait>(
    db: &C,
    table: &str,
    key: (&str, Kind),
    columns: &[(&str, Kind)],
    rows: Vec<Json>,
    guard: &str,
) -> Result<u64, DbErr> {
    let backend = db.get_database_backend();
    let mut all = vec![key];
    all.extend_from_slice(columns);
    let set = columns
        .iter()
        .map(|(n, _)| format!("\"{n}\" = j.\"{n}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "UPDATE {table} SET {set} FROM ({}) AS j WHERE {table}.\"{k}\" = j.\"{k}\" AND {guard}",
        rows_source(backend, &all),
        k = key.0
    );
    let mut changed = 0;
    for chunk in rows.chunks(ROWS_PER_STATEMENT) {
        changed += db
            .execute_raw(raw_statement(backend, &sql, vec![list(chunk)]))
            .await?
            .rows_affected();
    }
    Ok(changed)
}

/// The column names, each quoted (`row` is a keyword).
fn quoted(columns: &[(&str, Kind)]) -> String {
    columns
        .iter()
        .map(|(n, _)| format!("\"{n}\""))
        .collect::<Vec<_>>()
        .join(", ")
}

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
    Json::String(timestamp_text(at))
}

/// [`timestamp`]'s text, for a typed row.
pub fn timestamp_text(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::AutoSi, false)
}

/// A date as JSON (`YYYY-MM-DD`).
pub fn date(day: NaiveDate) -> Json {
    Json::String(date_text(day))
}

/// [`date`]'s text, for a typed row.
pub fn date_text(day: NaiveDate) -> String {
    day.format("%F").to_string()
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

/// The JSON text of one statement's rows (an array of objects), bound to its one parameter.
pub fn batch<T: serde::Serialize>(rows: &[T]) -> Result<String, DbErr> {
    serde_json::to_string(rows).map_err(|e| DbErr::Custom(format!("rows as JSON: {e}")))
}

/// `rows` in batches of [`ROWS_PER_STATEMENT`], each made into its JSON text only when asked
/// for: [`insert`] and [`insert_returning`] ask for the next while the statement before runs.
pub fn batches<T: serde::Serialize>(
    rows: &[T],
) -> impl Iterator<Item = Result<String, DbErr>> + '_ {
    rows.chunks(ROWS_PER_STATEMENT).map(batch)
}

/// Runs `statement` on every batch `batches` yields, one after the other, and makes the next
/// batch — whatever `batches` does to make it: sealing, serialising — while the database works
/// on the current one: the statement is sent first, then the next batch is made on this task,
/// then the answer is awaited. Sealing 2,000 of a roster's new members takes the server about
/// a third of the time PostgreSQL takes to store them (BENCHMARKS.md, tenth session); made
/// while the statement before runs, it adds nothing to the import's time.
async fn each_batch<I, F, Fut, R>(mut batches: I, mut statement: F) -> Result<Vec<R>, DbErr>
where
    I: Iterator<Item = Result<String, DbErr>>,
    F: FnMut(String) -> Fut,
    Fut: std::future::Future<Output = Result<R, DbErr>>,
{
    let mut done = Vec::new();
    let mut next = batches.next();
    while let Some(batch) = next {
        // `join` polls in order: the statement's first poll writes it to the connection and
        // returns to wait for the answer, then the next batch is made.
        let (answer, following) =
            futures_util::future::join(statement(batch?), async { batches.next() }).await;
        done.push(answer?);
        next = following;
    }
    Ok(done)
}

/// Inserts `rows` (JSON objects holding `columns`) into `table`, [`ROWS_PER_STATEMENT`] per
/// statement; `tail` ends each statement (`ON CONFLICT … DO NOTHING`, or empty). Returns the
/// rows written.
pub async fn insert<C: ConnectionTrait, T: serde::Serialize>(
    db: &C,
    table: &str,
    columns: &[(&str, Kind)],
    rows: &[T],
    tail: &str,
) -> Result<u64, DbErr> {
    insert_batches(db, table, columns, batches(rows), tail).await
}

/// As [`insert`], the rows coming as the JSON texts of whole statements (see [`each_batch`]).
async fn insert_batches<C: ConnectionTrait>(
    db: &C,
    table: &str,
    columns: &[(&str, Kind)],
    batches: impl Iterator<Item = Result<String, DbErr>>,
    tail: &str,
) -> Result<u64, DbErr> {
    let sql = insert_sql(db.get_database_backend(), table, columns, tail);
    let written = each_batch(batches, |rows| async {
        Ok(db
            .execute_raw(raw_statement(
                db.get_database_backend(),
                &sql,
                vec![rows.into()],
            ))
            .await?
            .rows_affected())
    })
    .await?;
    Ok(written.into_iter().sum())
}

/// As [`insert`], the rows coming as the JSON texts of whole statements ([`batches`] makes them
/// from rows; the next is asked for while the statement before runs), returning `returning`
/// (e.g. `id, pid`) of every row written.
pub async fn insert_returning<C: ConnectionTrait>(
    db: &C,
    table: &str,
    columns: &[(&str, Kind)],
    batches: impl Iterator<Item = Result<String, DbErr>>,
    returning: &str,
) -> Result<Vec<QueryResult>, DbErr> {
    let backend = db.get_database_backend();
    let sql = insert_sql(backend, table, columns, &format!("RETURNING {returning}"));
    let answers = each_batch(batches, |rows| {
        db.query_all_raw(raw_statement(backend, &sql, vec![rows.into()]))
    })
    .await?;
    Ok(answers.into_iter().flatten().collect())
}

fn insert_sql(backend: DbBackend, table: &str, columns: &[(&str, Kind)], tail: &str) -> String {
    let names = quoted(columns);
    // `WHERE true`: SQLite parses an upsert after `INSERT … SELECT` only behind a WHERE.
    format!(
        "INSERT INTO {table} ({names}) SELECT {names} FROM ({}) AS r WHERE true {tail}",
        rows_source(backend, columns)
    )
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;

    /// Each batch is made after the statement before it was started, the answers come back in
    /// the batches' order, and the first error — a batch that cannot be made, or a statement
    /// that fails — ends the run with no further statement.
    #[tokio::test]
    async fn each_batch_makes_the_next_batch_while_the_statement_runs() {
        let log = RefCell::new(Vec::<String>::new());
        let made = (0..3).map(|i| {
            log.borrow_mut().push(format!("made {i}"));
            Ok(i.to_string())
        });
        let answers = each_batch(made, |rows| {
            log.borrow_mut().push(format!("sent {rows}"));
            let log = &log;
            async move {
                tokio::task::yield_now().await;
                log.borrow_mut().push(format!("answered {rows}"));
                Ok(rows.len() + 10 * rows.parse::<usize>().unwrap())
            }
        })
        .await
        .unwrap();
        assert_eq!(answers, vec![1, 11, 21]);
        assert_eq!(
            log.into_inner(),
            [
                "made 0",
                "sent 0",
                "made 1",
                "answered 0",
                "sent 1",
                "made 2",
                "answered 1",
                "sent 2",
                "answered 2"
            ]
        );

        let sent = RefCell::new(0);
        let unmade = [
            Ok("a".to_owned()),
            Err(DbErr::Custom("seal".into())),
            Ok("c".to_owned()),
        ];
        let err = each_batch(unmade.into_iter(), |_| {
            *sent.borrow_mut() += 1;
            async { Ok(()) }
        })
        .await
        .unwrap_err();
        assert!(err.to_string().contains("seal"), "{err}");
        assert_eq!(
            *sent.borrow(),
            1,
            "no statement after a batch that could not be made"
        );

        let sent = RefCell::new(0);
        let batches = ["a", "b", "c"].map(|s| Ok(s.to_owned()));
        let err = each_batch(batches.into_iter(), |rows| {
            *sent.borrow_mut() += 1;
            async move {
                if rows == "b" {
                    Err(DbErr::Custom("unique".into()))
                } else {
                    Ok(())
                }
            }
        })
        .await
        .unwrap_err();
        assert!(err.to_string().contains("unique"), "{err}");
        assert_eq!(*sent.borrow(), 2, "no statement after one that failed");
    }

    /// Typed rows and JSON values make the same rows (keys in another order: the statement
    /// reads them by name).
    #[test]
    fn a_typed_row_is_the_same_json_as_a_value() {
        #[derive(serde::Serialize)]
        struct Row<'a> {
            name: &'a str,
            born: String,
            phone: Option<&'a str>,
        }
        let day = NaiveDate::from_ymd_opt(1990, 3, 7).unwrap();
        let typed = batch(&[Row {
            name: "王\"芳\"",
            born: date_text(day),
            phone: None,
        }])
        .unwrap();
        let value =
            batch(&[serde_json::json!({ "name": "王\"芳\"", "born": date(day), "phone": null })])
                .unwrap();
        let parsed = |s: &str| serde_json::from_str::<Json>(s).unwrap();
        assert_eq!(parsed(&typed), parsed(&value));
    }
}

//! Rows decoded by position, for the statements served most often (the claim lists).
//!
//! sea-orm's derived `FromQueryResult` finds each column by name and, for every NULL column,
//! formats an error string (`TryGetError::Null(format!("{name:?}"))`) that `Option<T>` then
//! throws away. On a page of 20 claims of 45 columns, mostly NULL, that was a fifth of the
//! server's CPU for the request (BENCHMARKS.md, issue 20). Here a column is read by its
//! position straight from the driver's row, after the column names of the statement were
//! checked once against the ones asked for; a list borrows its strings from the row
//! ([`Cells`]) and writes its answer before the rows are dropped.

use sea_orm::sqlx::{self, Column, Decode, Postgres, Row, Sqlite, Type};
use sea_orm::{DbErr, QueryResult};

/// Whether a row's column types are checked against what is read from them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Checked {
    /// Each column's type is checked (on PostgreSQL against the column's declared type, so a
    /// NULL in this row checks it too).
    Yes,
    /// Read as the row before it was checked. On PostgreSQL every row of a result has its
    /// columns' declared types, so once one row of a result is checked the others need not
    /// be (sqlx's check was a tenth of reading a claim page, issue 20). SQLite types each value
    /// on its own: there every value is checked anyway.
    Already,
}

/// What decodes from both backends' rows borrowing from the row (`&'r str`), or owned.
pub trait CellIn<'r>:
    Decode<'r, Postgres> + Type<Postgres> + Decode<'r, Sqlite> + Type<Sqlite>
{
}

impl<'r, T> CellIn<'r> for T where
    T: Decode<'r, Postgres> + Type<Postgres> + Decode<'r, Sqlite> + Type<Sqlite>
{
}

/// A row's columns read by position, one after the other from the first.
pub struct Cells<'r> {
    row: &'r QueryResult,
    at: usize,
    checked: Checked,
}

impl<'r> Cells<'r> {
    pub fn of(row: &'r QueryResult, checked: Checked) -> Self {
        Self {
            row,
            at: 0,
            checked,
        }
    }

    /// The next column, borrowed from the row where `T` borrows (a `&'r str` points into
    /// the driver's buffer: nothing is copied).
    #[allow(clippy::should_implement_trait)] // one type per call, unlike `Iterator::next`
    pub fn next<T: CellIn<'r>>(&mut self) -> Result<T, DbErr> {
        self.at += 1;
        decoded(self.row, self.at - 1, self.checked)
    }
}

/// Column `i` of a PostgreSQL or SQLite row.
fn decoded<'r, T: CellIn<'r>>(
    row: &'r QueryResult,
    i: usize,
    checked: Checked,
) -> Result<T, DbErr> {
    let decoded = if let Some(r) = row.try_as_pg_row() {
        if checked == Checked::Yes {
            let Some(column) = r.columns().get(i) else {
                return Err(DbErr::Type(format!("column {i}: no such column")));
            };
            let declared = column.type_info();
            if !<T as Type<Postgres>>::compatible(declared) {
                return Err(DbErr::Type(format!(
                    "column {i}: {declared} cannot be read as {}",
                    std::any::type_name::<T>()
                )));
            }
        }
        r.try_get_unchecked::<T, _>(i)
    } else if let Some(r) = row.try_as_sqlite_row() {
        r.try_get::<T, _>(i)
    } else {
        return Err(DbErr::Type(format!(
            "column {i}: only PostgreSQL and SQLite rows are read in place"
        )));
    };
    decoded.map_err(|e: sqlx::Error| DbErr::Type(format!("column {i}: {e}")))
}

/// Whether `row`'s columns are `names`, in order. A caller checks one row of a result; the
/// others have the same columns.
pub fn has_columns<'n>(row: &QueryResult, names: impl IntoIterator<Item = &'n str>) -> bool {
    // The driver's own column list where there is one: `QueryResult::column_names` copies
    // every name.
    if let Some(r) = row.try_as_pg_row() {
        same(r.columns().iter().map(|c| c.name()), names)
    } else if let Some(r) = row.try_as_sqlite_row() {
        same(r.columns().iter().map(|c| c.name()), names)
    } else {
        same(row.column_names(), names)
    }
}

/// Whether two lists of names are the same, in order.
fn same<'n>(
    columns: impl IntoIterator<Item = impl AsRef<str>>,
    names: impl IntoIterator<Item = &'n str>,
) -> bool {
    let mut names = names.into_iter();
    columns
        .into_iter()
        .all(|c| names.next() == Some(c.as_ref()))
        && names.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_the_columns_only_when_they_are_all_of_them_in_order() {
        let columns = ["id", "pid", "status"];
        assert!(same(columns, ["id", "pid", "status"]));
        assert!(!same(columns, ["id", "pid"]), "one short");
        assert!(!same(columns, ["id", "pid", "status", "kind"]), "one more");
        assert!(!same(columns, ["id", "status", "pid"]), "out of order");
        assert!(!same(columns, ["id", "pid", "stage"]), "another name");
    }
}

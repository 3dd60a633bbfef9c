//! Rows decoded by position, for the statements served most often (the claim lists).
//!
//! sea-orm's derived `FromQueryResult` finds each column by name and, for every NULL column,
//! formats an error string (`TryGetError::Null(format!("{name:?}"))`) that `Option<T>` then
//! throws away. On a page of 20 claims of 45 columns, mostly NULL, that was a fifth of the
//! server's CPU for the request (BENCHMARKS.md, issue 20). Here a column is read by its
//! position straight from the driver's row, after the column names of the statement were
//! checked once against the entity's.

use sea_orm::sqlx::{self, Column, Decode, Postgres, Row, Sqlite, Type};
use sea_orm::{DbErr, EntityTrait, IdenStatic, Iterable, QueryResult, TryGetable};

/// What decodes from both backends' rows.
pub trait Cell:
    for<'r> Decode<'r, Postgres>
    + Type<Postgres>
    + for<'r> Decode<'r, Sqlite>
    + Type<Sqlite>
    + TryGetable
{
}

impl<T> Cell for T where
    T: for<'r> Decode<'r, Postgres>
        + Type<Postgres>
        + for<'r> Decode<'r, Sqlite>
        + Type<Sqlite>
        + TryGetable
{
}

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

/// Column `i` of `row`.
pub fn read<T: Cell>(row: &QueryResult, i: usize, checked: Checked) -> Result<T, DbErr> {
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
        return row.try_get_by_index(i);
    };
    decoded.map_err(|e: sqlx::Error| DbErr::Type(format!("column {i}: {e}")))
}

/// Whether `row` starts with the columns of `E`, in the order `E::Column::iter()` gives
/// (what `E::find()` selects). A caller checks one row of a result; the others have the
/// same columns.
pub fn starts_with_columns_of<E: EntityTrait>(row: &QueryResult) -> bool {
    // The driver's own column list where there is one: `QueryResult::column_names` copies
    // every name.
    if let Some(r) = row.try_as_pg_row() {
        lists::<E>(r.columns().iter().map(|c| c.name()))
    } else if let Some(r) = row.try_as_sqlite_row() {
        lists::<E>(r.columns().iter().map(|c| c.name()))
    } else {
        lists::<E>(row.column_names())
    }
}

/// Whether `names` begin with `E`'s columns, in order.
fn lists<E: EntityTrait>(names: impl IntoIterator<Item = impl AsRef<str>>) -> bool {
    let mut names = names.into_iter();
    E::Column::iter().all(|c| names.next().is_some_and(|name| name.as_ref() == c.as_str()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claim_columns_are_listed_in_field_order() {
        let names: Vec<&str> = entity::claim::Column::iter()
            .map(|c| IdenStatic::as_str(&c))
            .collect();
        assert_eq!(names[0], "id");
        assert_eq!(names[names.len() - 1], "lapses_on");
    }

    #[test]
    fn names_list_the_columns_only_when_they_begin_with_all_of_them_in_order() {
        let columns: Vec<&str> = entity::claim::Column::iter()
            .map(|c| IdenStatic::as_str(&c))
            .collect();
        let mut more = columns.clone();
        more.push("listed_member_pid");
        assert!(lists::<entity::claim::Entity>(&columns));
        assert!(lists::<entity::claim::Entity>(&more), "names after them");
        assert!(
            !lists::<entity::claim::Entity>(&columns[..columns.len() - 1]),
            "one short"
        );
        let mut swapped = columns.clone();
        swapped.swap(1, 2);
        assert!(!lists::<entity::claim::Entity>(&swapped), "out of order");
    }
}

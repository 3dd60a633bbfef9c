//! Rows decoded by position, for the statements served most often (the claim lists).
//!
//! sea-orm's derived `FromQueryResult` finds each column by name and, for every NULL column,
//! formats an error string (`TryGetError::Null(format!("{name:?}"))`) that `Option<T>` then
//! throws away. On a page of 20 claims of 45 columns, mostly NULL, that was a fifth of the
//! server's CPU for the request (BENCHMARKS.md, issue 20). Here a column is read by its
//! position straight from the driver's row, after the column names of the statement were
//! checked once against the entity's.

use sea_orm::sqlx::{self, Decode, Postgres, Row, Sqlite, Type};
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

/// Column `i` of `row`.
pub fn at<T: Cell>(row: &QueryResult, i: usize) -> Result<T, DbErr> {
    let decoded = if let Some(r) = row.try_as_pg_row() {
        r.try_get::<T, _>(i)
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
    let names = row.column_names();
    let mut expected = E::Column::iter();
    let ok = expected
        .by_ref()
        .zip(names.iter())
        .all(|(c, name)| c.as_str() == name.as_str());
    ok && E::Column::iter().count() <= names.len()
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
}

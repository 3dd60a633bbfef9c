//! The one mechanism that keeps every list and fetch inside the caller's part of the tree.
//!
//! Each scoped entity says which column ties a row to an organisation and which rows are a
//! member's own; [`Scoped::within`] adds that restriction to any query. Handlers never test
//! scope themselves: a row outside the scope is simply not found (404, never 403), so ids
//! cannot be probed.

use sea_orm::sea_query::{Expr, Query};
use sea_orm::{ColumnTrait, Condition, ConnectionTrait, EntityTrait, QueryFilter, Select};

use entity::{claim, enrolment_batch, import_job, member, membership, organisation, staff};

/// What a caller may see.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Staff: the organisation with this materialised path and everything under it.
    Subtree { path: String },
    /// A member: their own rows only.
    Member { member_pid: String },
}

impl Scope {
    /// A materialised path is `/`, digits and `/` only, starting and ending with `/`.
    pub fn is_valid_path(path: &str) -> bool {
        path.len() >= 3
            && path.starts_with('/')
            && path.ends_with('/')
            && path.bytes().all(|b| b == b'/' || b.is_ascii_digit())
            && !path.contains("//")
    }

    /// Whether an organisation path lies in this scope.
    pub fn contains_path(&self, organisation_path: &str) -> bool {
        match self {
            Scope::Subtree { path } => organisation_path.starts_with(path.as_str()),
            Scope::Member { .. } => false,
        }
    }

    /// The `LIKE` pattern of the organisation paths in a staff scope (`/1/2/%`), for
    /// hand-written set-based SQL; `None` for a member, who sees no organisation's figures.
    pub fn subtree_pattern(&self) -> Option<String> {
        match self {
            // Paths hold only digits and '/', so the prefix has no LIKE wildcards.
            Scope::Subtree { path } => Some(format!("{path}%")),
            Scope::Member { .. } => None,
        }
    }

    /// The ids of the members in this scope, as a subquery (for rows that belong to a member
    /// through a `member_id` column).
    pub fn member_ids(&self) -> sea_orm::sea_query::SelectStatement {
        Query::select()
            .column(member::Column::Id)
            .from(member::Entity)
            .cond_where(self.condition::<member::Entity>())
            .to_owned()
    }

    /// The condition "the organisation column is in the subtree / the row is the member's".
    pub fn condition<E: Scoped>(&self) -> Condition {
        match self {
            // Paths hold only digits and '/', so the prefix has no LIKE wildcards.
            Scope::Subtree { path } => {
                in_subtree::<E>(organisation::Column::Path.starts_with(path.as_str()))
            }
            Scope::Member { member_pid } => match E::member_condition(member_pid) {
                Some(own) => own,
                // Members never see rows of this kind.
                None => Condition::all().add(Expr::cust("1 = 0")),
            },
        }
    }
}

impl Scope {
    /// [`Scope::condition`] with a staff scope's subtree written into the statement as a
    /// literal (`path LIKE '/1/2/%'`) instead of a parameter — for the claim lists and queues,
    /// the hottest statements a reviewer sends (issue 20).
    ///
    /// With the pattern as a parameter PostgreSQL cannot know how much of the tree it covers:
    /// its generic plan guesses a few organisations, so it is never cheaper than a custom plan,
    /// and every execution is planned again (planning cost five times the execution). With
    /// the pattern in the text, each subtree is its own prepared statement whose generic plan
    /// knows its breadth (walk the claims in id order for the association, the subtree's
    /// organisations for a union), chosen after the first executions and then reused per
    /// connection. Safe to write into the text: a valid path is digits and `/` only (checked
    /// here; any other value falls back to the parameter).
    pub fn condition_inlined<E: Scoped>(&self) -> Condition {
        match self {
            Scope::Subtree { path } if Scope::is_valid_path(path) => in_subtree::<E>(Expr::cust(
                format!("\"organisation\".\"path\" LIKE '{path}%'"),
            )),
            _ => self.condition::<E>(),
        }
    }
}

/// "The organisation column names an organisation whose path matches `path_matches`."
fn in_subtree<E: Scoped>(path_matches: sea_orm::sea_query::SimpleExpr) -> Condition {
    let subtree = Query::select()
        .column(organisation::Column::Id)
        .from(organisation::Entity)
        .and_where(path_matches)
        .to_owned();
    Condition::all().add(E::organisation_column().in_subquery(subtree))
}

/// An entity whose rows belong to an organisation (and maybe to a member).
pub trait Scoped: EntityTrait {
    /// The column naming the organisation a row belongs to.
    fn organisation_column() -> Self::Column;
    /// The rows that are a member's own, or `None` when members see none of them.
    fn member_condition(member_pid: &str) -> Option<Condition>;
    /// The public-id column.
    fn pid_column() -> Self::Column;

    /// `find()` restricted to `scope`.
    fn find_within(scope: &Scope) -> Select<Self> {
        Self::find().filter(scope.condition::<Self>())
    }

    /// One row by public id, inside `scope`, or `None` — whether it does not exist or is
    /// outside the scope.
    #[allow(async_fn_in_trait)]
    async fn find_pid_within<C: ConnectionTrait>(
        db: &C,
        scope: &Scope,
        pid: &str,
    ) -> Result<Option<Self::Model>, sea_orm::DbErr> {
        Self::find_within(scope)
            .filter(Self::pid_column().eq(pid))
            .one(db)
            .await
    }
}

fn member_id_of(member_pid: &str) -> sea_orm::sea_query::SelectStatement {
    Query::select()
        .column(member::Column::Id)
        .from(member::Entity)
        .and_where(member::Column::Pid.eq(member_pid))
        .to_owned()
}

impl Scoped for organisation::Entity {
    fn organisation_column() -> Self::Column {
        organisation::Column::Id
    }
    fn member_condition(_: &str) -> Option<Condition> {
        None
    }
    fn pid_column() -> Self::Column {
        organisation::Column::Pid
    }
}

impl Scoped for staff::Entity {
    fn organisation_column() -> Self::Column {
        staff::Column::OrganisationId
    }
    fn member_condition(_: &str) -> Option<Condition> {
        None
    }
    fn pid_column() -> Self::Column {
        staff::Column::Pid
    }
}

impl Scoped for member::Entity {
    fn organisation_column() -> Self::Column {
        member::Column::OrganisationId
    }
    fn member_condition(member_pid: &str) -> Option<Condition> {
        Some(Condition::all().add(member::Column::Pid.eq(member_pid)))
    }
    fn pid_column() -> Self::Column {
        member::Column::Pid
    }
}

impl Scoped for membership::Entity {
    fn organisation_column() -> Self::Column {
        membership::Column::OrganisationId
    }
    fn member_condition(member_pid: &str) -> Option<Condition> {
        Some(
            Condition::all()
                .add(membership::Column::MemberId.in_subquery(member_id_of(member_pid))),
        )
    }
    fn pid_column() -> Self::Column {
        membership::Column::Pid
    }
}

impl Scoped for enrolment_batch::Entity {
    fn organisation_column() -> Self::Column {
        enrolment_batch::Column::OrganisationId
    }
    fn member_condition(_: &str) -> Option<Condition> {
        None
    }
    fn pid_column() -> Self::Column {
        enrolment_batch::Column::Pid
    }
}

impl Scoped for import_job::Entity {
    fn organisation_column() -> Self::Column {
        import_job::Column::OrganisationId
    }
    fn member_condition(_: &str) -> Option<Condition> {
        None
    }
    fn pid_column() -> Self::Column {
        import_job::Column::Pid
    }
}

impl Scoped for claim::Entity {
    fn organisation_column() -> Self::Column {
        claim::Column::OrganisationId
    }
    /// A member sees the claims made for them, whoever filed them.
    fn member_condition(member_pid: &str) -> Option<Condition> {
        Some(Condition::all().add(claim::Column::MemberId.in_subquery(member_id_of(member_pid))))
    }
    fn pid_column() -> Self::Column {
        claim::Column::Pid
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_path_is_digits_between_slashes() {
        assert!(Scope::is_valid_path("/1/"));
        assert!(Scope::is_valid_path("/1/22/333/"));
        assert!(!Scope::is_valid_path("/"));
        assert!(!Scope::is_valid_path("/1"));
        assert!(!Scope::is_valid_path("/1/%/"));
        assert!(!Scope::is_valid_path("/1//2/"));
    }

    #[test]
    fn an_inlined_subtree_is_the_same_condition_with_the_path_in_the_text() {
        use sea_orm::{DbBackend, QueryTrait};
        let scope = Scope::Subtree {
            path: "/1/22/".into(),
        };
        for backend in [DbBackend::Postgres, DbBackend::Sqlite] {
            let inlined = claim::Entity::find()
                .filter(scope.condition_inlined::<claim::Entity>())
                .build(backend);
            assert!(
                inlined
                    .sql
                    .contains(r#""organisation"."path" LIKE '/1/22/%'"#),
                "{}",
                inlined.sql
            );
            assert!(
                inlined.values.as_ref().is_none_or(|v| v.0.is_empty()),
                "no parameter left: {:?}",
                inlined.values
            );
        }
        // Anything but digits and '/' is never written into a statement.
        let odd = Scope::Subtree {
            path: "/1/' OR '1'='1/".into(),
        };
        let built = claim::Entity::find()
            .filter(odd.condition_inlined::<claim::Entity>())
            .build(sea_orm::DbBackend::Postgres);
        assert!(!built.sql.contains("OR '1'"), "{}", built.sql);
    }

    #[test]
    fn a_subtree_contains_its_descendants_but_not_its_siblings() {
        let scope = Scope::Subtree {
            path: "/1/2/".into(),
        };
        assert!(scope.contains_path("/1/2/"));
        assert!(scope.contains_path("/1/2/7/"));
        assert!(!scope.contains_path("/1/3/"));
        assert!(!scope.contains_path("/1/22/"));
        assert!(!scope.contains_path("/1/"));
    }

    #[test]
    fn a_staff_scope_gives_its_path_as_a_like_prefix_and_a_member_none() {
        let scope = Scope::Subtree {
            path: "/1/2/".into(),
        };
        assert_eq!(scope.subtree_pattern().as_deref(), Some("/1/2/%"));
        let member = Scope::Member {
            member_pid: "m".into(),
        };
        assert_eq!(member.subtree_pattern(), None);
    }
}

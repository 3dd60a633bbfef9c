//! The organisation tree: association → office → service point → unit union. Levels may be
//! skipped; each node keeps a materialised path of ids so a subtree is one prefix match.

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Set,
};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use entity::organisation;

use super::page::{Page, page_from};
use super::{Requester, new_pid};
use crate::service::scope::{Scope, Scoped};

/// A reference to an organisation inside another resource.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrganisationRef {
    /// Public id.
    pub id: String,
    pub name: String,
}

/// The levels of the tree.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum OrganisationKind {
    /// 互助保障协会: runs the scheme; the root.
    Association,
    /// 办事处: regional branch.
    Office,
    /// 代办点 / 县级中心: county desk, second review.
    ServicePoint,
    /// 基层工会: the employer's union; enrols members.
    UnitUnion,
}

impl OrganisationKind {
    /// Stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Association => "association",
            Self::Office => "office",
            Self::ServicePoint => "service_point",
            Self::UnitUnion => "unit_union",
        }
    }

    /// Parses a stored name.
    pub fn parse(value: &str) -> Option<Self> {
        [
            Self::Association,
            Self::Office,
            Self::ServicePoint,
            Self::UnitUnion,
        ]
        .into_iter()
        .find(|k| k.as_str() == value)
    }

    fn rank(self) -> u8 {
        match self {
            Self::Association => 0,
            Self::Office => 1,
            Self::ServicePoint => 2,
            Self::UnitUnion => 3,
        }
    }

    /// Whether a node of this kind may hang under `parent` (levels may be skipped, never
    /// reversed; unit unions are leaves).
    pub fn may_have_parent(self, parent: OrganisationKind) -> bool {
        self != Self::Association && parent.rank() < self.rank()
    }
}

/// An organisation as the rest of the service sees it.
#[derive(Clone, Debug)]
pub struct Organisation {
    pub id: i64,
    pub pid: String,
    pub parent_pid: Option<String>,
    pub kind: OrganisationKind,
    pub name: String,
    pub path: String,
    pub head_count: Option<i32>,
}

/// Why a tree change was refused.
#[derive(Debug, thiserror::Error)]
pub enum TreeError {
    #[error("an association already exists")]
    AssociationExists,
    #[error("a {child:?} cannot be placed under a {parent:?}")]
    WrongParent {
        child: OrganisationKind,
        parent: OrganisationKind,
    },
    #[error("the parent organisation does not exist")]
    ParentNotFound,
    #[error(transparent)]
    Db(#[from] DbErr),
}

fn to_domain(
    model: organisation::Model,
    parent_pid: Option<String>,
) -> Result<Organisation, DbErr> {
    let kind = OrganisationKind::parse(&model.kind)
        .ok_or_else(|| DbErr::Custom(format!("unknown organisation kind {}", model.kind)))?;
    Ok(Organisation {
        id: model.id,
        pid: model.pid,
        parent_pid,
        kind,
        name: model.name,
        path: model.path,
        head_count: model.head_count,
    })
}

async fn parent_pids<C: ConnectionTrait>(
    db: &C,
    models: &[organisation::Model],
) -> Result<std::collections::HashMap<i64, String>, DbErr> {
    let ids: Vec<i64> = models.iter().filter_map(|m| m.parent_id).collect();
    if ids.is_empty() {
        return Ok(Default::default());
    }
    Ok(organisation::Entity::find()
        .filter(organisation::Column::Id.is_in(ids))
        .all(db)
        .await?
        .into_iter()
        .map(|m| (m.id, m.pid))
        .collect())
}

async fn with_parents<C: ConnectionTrait>(
    db: &C,
    models: Vec<organisation::Model>,
) -> Result<Vec<Organisation>, DbErr> {
    let parents = parent_pids(db, &models).await?;
    models
        .into_iter()
        .map(|m| {
            let parent = m.parent_id.and_then(|id| parents.get(&id).cloned());
            to_domain(m, parent)
        })
        .collect()
}

/// Creates a node. `parent` is `None` only for the association (there is one per deployment).
pub async fn create<C: ConnectionTrait>(
    db: &C,
    parent: Option<&Organisation>,
    kind: OrganisationKind,
    name: &str,
    head_count: Option<i32>,
) -> Result<Organisation, TreeError> {
    match parent {
        None if kind != OrganisationKind::Association => return Err(TreeError::ParentNotFound),
        None => {
            let existing = organisation::Entity::find()
                .filter(organisation::Column::ParentId.is_null())
                .count(db)
                .await?;
            if existing > 0 {
                return Err(TreeError::AssociationExists);
            }
        }
        Some(p) if !kind.may_have_parent(p.kind) => {
            return Err(TreeError::WrongParent {
                child: kind,
                parent: p.kind,
            });
        }
        Some(_) => {}
    }
    let inserted = organisation::ActiveModel {
        pid: Set(new_pid()),
        parent_id: Set(parent.map(|p| p.id)),
        kind: Set(kind.as_str().into()),
        name: Set(name.to_owned()),
        // The path needs our own id: written right after the insert, in the same transaction
        // as the caller's (callers creating nodes run inside one).
        path: Set(String::from("/")),
        head_count: Set(head_count),
        created_at: Set(Utc::now()),
        ..Default::default()
    }
    .insert(db)
    .await?;
    let path = format!(
        "{}{}/",
        parent.map(|p| p.path.as_str()).unwrap_or("/"),
        inserted.id
    );
    let mut active: organisation::ActiveModel = inserted.into();
    active.path = Set(path);
    let model = active.update(db).await?;
    to_domain(model, parent.map(|p| p.pid.clone())).map_err(TreeError::from)
}

/// A node to add under one of the requester's subtree.
#[derive(Clone, Debug)]
pub struct NewOrganisation {
    /// Public id of the parent.
    pub parent_pid: String,
    pub kind: OrganisationKind,
    pub name: String,
    pub head_count: Option<i32>,
}

/// Adds an office, service point or unit union under a node of the requester's subtree
/// (audited). A parent outside the subtree is [`TreeError::ParentNotFound`].
pub async fn add(
    db: &DatabaseConnection,
    requester: &Requester,
    new: &NewOrganisation,
) -> Result<Organisation, TreeError> {
    let txn = crate::db::begin_write(db).await?;
    let parent = get_within(&txn, &requester.scope, &new.parent_pid)
        .await?
        .ok_or(TreeError::ParentNotFound)?;
    let created = create(
        &txn,
        Some(&parent),
        new.kind,
        new.name.trim(),
        new.head_count,
    )
    .await?;
    requester
        .audit(
            &txn,
            "organisation.created",
            ("organisation", Some(&created.pid)),
            json!({ "kind": created.kind, "name": created.name, "parent": parent.pid }),
        )
        .await?;
    txn.commit().await?;
    Ok(created)
}

/// Renames a node of the requester's subtree or changes its declared head-count (audited,
/// with the values as given); `None` when the node is not in the subtree.
pub async fn change(
    db: &DatabaseConnection,
    requester: &Requester,
    pid: &str,
    name: Option<&str>,
    head_count: Option<i32>,
) -> Result<Option<Organisation>, DbErr> {
    let txn = crate::db::begin_write(db).await?;
    let Some(org) = get_within(&txn, &requester.scope, pid).await? else {
        return Ok(None);
    };
    let updated = update(&txn, &org, name.map(str::trim), head_count.map(Some)).await?;
    requester
        .audit(
            &txn,
            "organisation.updated",
            ("organisation", Some(&org.pid)),
            json!({ "name": name, "head_count": head_count }),
        )
        .await?;
    txn.commit().await?;
    Ok(Some(updated))
}

/// One organisation by public id inside `scope`.
pub async fn get_within<C: ConnectionTrait>(
    db: &C,
    scope: &Scope,
    pid: &str,
) -> Result<Option<Organisation>, DbErr> {
    match organisation::Entity::find_pid_within(db, scope, pid).await? {
        Some(m) => Ok(with_parents(db, vec![m]).await?.pop()),
        None => Ok(None),
    }
}

/// One organisation by internal id (no scope: for the service's own use).
pub async fn get_by_id<C: ConnectionTrait>(db: &C, id: i64) -> Result<Option<Organisation>, DbErr> {
    match organisation::Entity::find_by_id(id).one(db).await? {
        Some(m) => Ok(with_parents(db, vec![m]).await?.pop()),
        None => Ok(None),
    }
}

/// Filters for listing organisations.
#[derive(Debug, Default)]
pub struct OrganisationFilter {
    pub kind: Option<OrganisationKind>,
    /// Only direct children of this organisation (public id).
    pub parent_pid: Option<String>,
}

/// Lists organisations inside `scope`, in id order.
pub async fn list_within<C: ConnectionTrait>(
    db: &C,
    scope: &Scope,
    filter: &OrganisationFilter,
    after_id: Option<i64>,
    limit: u64,
) -> Result<Page<Organisation>, DbErr> {
    let mut query = organisation::Entity::find_within(scope).order_by_asc(organisation::Column::Id);
    if let Some(kind) = filter.kind {
        query = query.filter(organisation::Column::Kind.eq(kind.as_str()));
    }
    if let Some(parent) = &filter.parent_pid {
        let parent_id = organisation::Entity::find()
            .filter(organisation::Column::Pid.eq(parent.as_str()))
            .one(db)
            .await?
            .map(|p| p.id)
            .unwrap_or(-1);
        query = query.filter(organisation::Column::ParentId.eq(parent_id));
    }
    if let Some(after) = after_id {
        query = query.filter(organisation::Column::Id.gt(after));
    }
    let rows = query.limit(limit + 1).all(db).await?;
    let page = page_from(rows, limit, |m| m.id);
    let next_cursor = page.next_cursor;
    Ok(Page {
        items: with_parents(db, page.items).await?,
        next_cursor,
    })
}

/// Renames a node or changes its declared head-count.
pub async fn update<C: ConnectionTrait>(
    db: &C,
    org: &Organisation,
    name: Option<&str>,
    head_count: Option<Option<i32>>,
) -> Result<Organisation, DbErr> {
    let mut active = organisation::ActiveModel {
        id: Set(org.id),
        ..Default::default()
    };
    if let Some(name) = name {
        active.name = Set(name.to_owned());
    }
    if let Some(head_count) = head_count {
        active.head_count = Set(head_count);
    }
    let model = active.update(db).await?;
    to_domain(model, org.parent_pid.clone())
}

/// Whether the tree has any node yet.
pub async fn is_empty<C: ConnectionTrait>(db: &C) -> Result<bool, DbErr> {
    Ok(organisation::Entity::find().count(db).await? == 0)
}

/// The association (root), if created.
pub async fn association<C: ConnectionTrait>(db: &C) -> Result<Option<Organisation>, DbErr> {
    match organisation::Entity::find()
        .filter(organisation::Column::ParentId.is_null())
        .one(db)
        .await?
    {
        Some(m) => Ok(Some(to_domain(m, None)?)),
        None => Ok(None),
    }
}

/// One organisation by public id, unscoped (CLI and sign-in).
pub async fn get_by_pid<C: ConnectionTrait>(
    db: &C,
    pid: &str,
) -> Result<Option<Organisation>, DbErr> {
    match organisation::Entity::find()
        .filter(organisation::Column::Pid.eq(pid))
        .one(db)
        .await?
    {
        Some(m) => Ok(with_parents(db, vec![m]).await?.pop()),
        None => Ok(None),
    }
}

#[cfg(test)]
mod tests {
    use super::OrganisationKind::*;

    #[test]
    fn levels_may_be_skipped_but_never_reversed() {
        assert!(UnitUnion.may_have_parent(Association));
        assert!(UnitUnion.may_have_parent(ServicePoint));
        assert!(ServicePoint.may_have_parent(Association));
        assert!(!Office.may_have_parent(ServicePoint));
        assert!(!UnitUnion.may_have_parent(UnitUnion));
        assert!(!Association.may_have_parent(Association));
    }
}

//! Staff accounts: reviewers and administrators, each attached to one organisation whose
//! subtree is their scope.

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Set,
};

use entity::{organisation, staff};

use super::organisation::OrganisationKind;
use super::page::{Page, page_from};
use super::{is_unique_violation, new_pid};
use crate::domain::Role;
use crate::service::scope::{Scope, Scoped};

/// A staff account with its organisation.
#[derive(Clone, Debug)]
pub struct StaffAccount {
    pub id: i64,
    pub pid: String,
    pub role: Role,
    pub name: String,
    pub login: String,
    pub active: bool,
    pub wechat_bound: bool,
    pub organisation_pid: String,
    pub organisation_name: String,
    pub organisation_path: String,
}

/// Why a staff change was refused.
#[derive(Debug, thiserror::Error)]
pub enum StaffError {
    #[error("the role {role:?} does not belong in a {kind:?}")]
    RoleDoesNotFit { role: Role, kind: OrganisationKind },
    #[error("the login is already taken")]
    LoginTaken,
    #[error(transparent)]
    Db(#[from] DbErr),
}

/// Which organisation kinds each staff role sits in.
pub fn role_fits(role: Role, kind: OrganisationKind) -> bool {
    use OrganisationKind::*;
    match role {
        Role::Member => false,
        Role::UnionReviewer => kind == UnitUnion,
        Role::ServicePointReviewer => matches!(kind, ServicePoint | Office),
        Role::AssociationReviewer | Role::Admin => kind == Association,
    }
}

fn to_domain(m: staff::Model, org: Option<organisation::Model>) -> Result<StaffAccount, DbErr> {
    let org = org.ok_or_else(|| DbErr::Custom(format!("staff {} has no organisation", m.pid)))?;
    let role = Role::parse(&m.role)
        .filter(|r| r.is_staff())
        .ok_or_else(|| DbErr::Custom(format!("unknown staff role {}", m.role)))?;
    Ok(StaffAccount {
        id: m.id,
        pid: m.pid,
        role,
        name: m.name,
        login: m.login,
        active: m.active,
        wechat_bound: m.wechat_openid.is_some(),
        organisation_pid: org.pid,
        organisation_name: org.name,
        organisation_path: org.path,
    })
}

/// Creates a staff account in `organisation`.
pub async fn create<C: ConnectionTrait>(
    db: &C,
    organisation: &super::organisation::Organisation,
    role: Role,
    name: &str,
    login: &str,
) -> Result<StaffAccount, StaffError> {
    if !role_fits(role, organisation.kind) {
        return Err(StaffError::RoleDoesNotFit {
            role,
            kind: organisation.kind,
        });
    }
    let inserted = staff::ActiveModel {
        pid: Set(new_pid()),
        organisation_id: Set(organisation.id),
        role: Set(role.as_str().into()),
        name: Set(name.to_owned()),
        login: Set(login.to_owned()),
        wechat_openid: Set(None),
        active: Set(true),
        created_at: Set(Utc::now()),
        ..Default::default()
    }
    .insert(db)
    .await
    .map_err(|e| {
        if is_unique_violation(&e) {
            StaffError::LoginTaken
        } else {
            StaffError::Db(e)
        }
    })?;
    Ok(StaffAccount {
        id: inserted.id,
        pid: inserted.pid,
        role,
        name: inserted.name,
        login: inserted.login,
        active: true,
        wechat_bound: false,
        organisation_pid: organisation.pid.clone(),
        organisation_name: organisation.name.clone(),
        organisation_path: organisation.path.clone(),
    })
}

async fn one_where<C: ConnectionTrait>(
    db: &C,
    query: sea_orm::Select<staff::Entity>,
) -> Result<Option<StaffAccount>, DbErr> {
    match query
        .find_also_related(organisation::Entity)
        .one(db)
        .await?
    {
        Some((s, o)) => Ok(Some(to_domain(s, o)?)),
        None => Ok(None),
    }
}

/// The active account bound to a WeChat openid.
pub async fn find_by_openid<C: ConnectionTrait>(
    db: &C,
    openid: &str,
) -> Result<Option<StaffAccount>, DbErr> {
    one_where(
        db,
        staff::Entity::find().filter(staff::Column::WechatOpenid.eq(openid)),
    )
    .await
}

/// An account by login name.
pub async fn find_by_login<C: ConnectionTrait>(
    db: &C,
    login: &str,
) -> Result<Option<StaffAccount>, DbErr> {
    one_where(
        db,
        staff::Entity::find().filter(staff::Column::Login.eq(login)),
    )
    .await
}

/// An account by internal id.
pub async fn find_by_id<C: ConnectionTrait>(
    db: &C,
    id: i64,
) -> Result<Option<StaffAccount>, DbErr> {
    one_where(db, staff::Entity::find_by_id(id)).await
}

/// An account by public id inside `scope`.
pub async fn get_within<C: ConnectionTrait>(
    db: &C,
    scope: &Scope,
    pid: &str,
) -> Result<Option<StaffAccount>, DbErr> {
    one_where(
        db,
        staff::Entity::find_within(scope).filter(staff::Column::Pid.eq(pid)),
    )
    .await
}

/// Staff inside `scope`, in id order.
pub async fn list_within<C: ConnectionTrait>(
    db: &C,
    scope: &Scope,
    after_id: Option<i64>,
    limit: u64,
) -> Result<Page<StaffAccount>, DbErr> {
    let mut query = staff::Entity::find_within(scope).order_by_asc(staff::Column::Id);
    if let Some(after) = after_id {
        query = query.filter(staff::Column::Id.gt(after));
    }
    let rows = query
        .find_also_related(organisation::Entity)
        .limit(limit + 1)
        .all(db)
        .await?;
    let page = page_from(rows, limit, |(s, _)| s.id);
    Ok(Page {
        items: page
            .items
            .into_iter()
            .map(|(s, o)| to_domain(s, o))
            .collect::<Result<_, _>>()?,
        next_cursor: page.next_cursor,
    })
}

/// Binds a WeChat openid to the account (first sign-in with an invitation). Returns false when
/// the openid is already bound to another account.
pub async fn bind_openid<C: ConnectionTrait>(
    db: &C,
    staff_id: i64,
    openid: &str,
) -> Result<bool, DbErr> {
    let result = staff::ActiveModel {
        id: Set(staff_id),
        wechat_openid: Set(Some(openid.to_owned())),
        ..Default::default()
    }
    .update(db)
    .await;
    match result {
        Ok(_) => Ok(true),
        Err(e) if is_unique_violation(&e) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Activates or deactivates an account; deactivation also unbinds WeChat, so a new invitation
/// is needed to come back.
pub async fn set_active<C: ConnectionTrait>(
    db: &C,
    staff_id: i64,
    active: bool,
) -> Result<(), DbErr> {
    let mut model = staff::ActiveModel {
        id: Set(staff_id),
        active: Set(active),
        ..Default::default()
    };
    if !active {
        model.wechat_openid = Set(None);
    }
    model.update(db).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_staff_role_sits_at_its_level() {
        assert!(role_fits(Role::UnionReviewer, OrganisationKind::UnitUnion));
        assert!(!role_fits(
            Role::UnionReviewer,
            OrganisationKind::ServicePoint
        ));
        assert!(role_fits(
            Role::ServicePointReviewer,
            OrganisationKind::Office
        ));
        assert!(role_fits(Role::Admin, OrganisationKind::Association));
        assert!(!role_fits(Role::Admin, OrganisationKind::Office));
        assert!(!role_fits(Role::Member, OrganisationKind::UnitUnion));
    }
}

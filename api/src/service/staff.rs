//! Staff accounts: reviewers and administrators, each attached to one organisation whose
//! subtree is their scope. Administrators create them, switch them on and off and invite them
//! to bind WeChat, change their role or move them to another organisation; each of those is
//! one audited transaction here.

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect, Set,
};
use serde_json::json;

use entity::{organisation, staff};

use super::invitation::{self, IssuedInvitation};
use super::organisation::OrganisationKind;
use super::page::{Page, page_from};
use super::{Requester, is_unique_violation, new_pid};
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
    /// The account, or the organisation named for a new one, is not in the caller's subtree.
    #[error("not found")]
    NotFound,
    /// An administrator may not lock themselves out.
    #[error("an administrator cannot deactivate their own account")]
    CannotDeactivateSelf,
    /// An administrator may not change their own role or organisation (nor lock themselves
    /// out that way).
    #[error("an administrator cannot change their own role or organisation")]
    CannotChangeSelf,
    /// A deactivated account is invited to nothing.
    #[error("the account is disabled")]
    AccountDisabled,
    /// The account already signs in with WeChat: no invitation is needed.
    #[error("WeChat is already bound to the account")]
    AlreadyBound,
    #[error(transparent)]
    Db(#[from] DbErr),
}

/// A staff account to create.
#[derive(Clone, Debug)]
pub struct NewAccount {
    /// Public id of its organisation (inside the requester's subtree).
    pub organisation_pid: String,
    pub role: Role,
    pub name: String,
    pub login: String,
}

/// Creates a staff account in an organisation of the requester's subtree (audited).
pub async fn add(
    db: &DatabaseConnection,
    requester: &Requester,
    account: &NewAccount,
) -> Result<StaffAccount, StaffError> {
    let txn = crate::db::begin_write(db).await?;
    let org = super::organisation::get_within(&txn, &requester.scope, &account.organisation_pid)
        .await?
        .ok_or(StaffError::NotFound)?;
    let created = create(
        &txn,
        &org,
        account.role,
        account.name.trim(),
        &account.login,
    )
    .await?;
    requester
        .audit(
            &txn,
            "staff.created",
            ("staff", Some(&created.pid)),
            json!({ "role": created.role, "organisation": org.pid, "login": created.login }),
        )
        .await?;
    txn.commit().await?;
    Ok(created)
}

/// An account after a change, with the token generation the change moved it to (publish it
/// with `Sessions::revoked`, so older tokens are refused on every replica at once).
#[derive(Clone, Debug)]
pub struct Changed {
    pub account: StaffAccount,
    /// `Some` when the change revoked the account's tokens.
    pub revoked_generation: Option<i64>,
}

/// What an administrator changes on a staff account; `None` leaves a field as it is.
#[derive(Clone, Debug, Default)]
pub struct AccountChange {
    pub active: Option<bool>,
    pub role: Option<Role>,
    /// Public id of the organisation to move the account to (inside the requester's subtree).
    pub organisation_pid: Option<String>,
}

/// Changes an account of the requester's subtree (audited, one transaction): switches it on or
/// off, gives it another role, moves it to another organisation. The role must fit the
/// (new) organisation's level. Deactivating it, or changing its role or organisation, bumps
/// its token generation: every token issued before — which carries the old role and scope —
/// is refused, and the next sign-in carries the new ones. An administrator cannot deactivate
/// their own account or change their own role or organisation.
pub async fn change(
    db: &DatabaseConnection,
    requester: &Requester,
    pid: &str,
    change: &AccountChange,
) -> Result<Changed, StaffError> {
    let txn = crate::db::begin_write(db).await?;
    let account = get_within(&txn, &requester.scope, pid)
        .await?
        .ok_or(StaffError::NotFound)?;
    let organisation = match &change.organisation_pid {
        Some(org_pid) => Some(
            super::organisation::get_within(&txn, &requester.scope, org_pid)
                .await?
                .ok_or(StaffError::NotFound)?,
        ),
        None => None,
    };
    let role = change.role.unwrap_or(account.role);
    let moved = organisation
        .as_ref()
        .filter(|org| org.pid != account.organisation_pid);
    let role_changed = role != account.role;
    let own = account.pid == requester.pid;
    if own && change.active == Some(false) {
        return Err(StaffError::CannotDeactivateSelf);
    }
    if own && (role_changed || moved.is_some()) {
        return Err(StaffError::CannotChangeSelf);
    }
    if role_changed || moved.is_some() {
        let kind = match moved {
            Some(org) => org.kind,
            None => {
                super::organisation::get_within(&txn, &requester.scope, &account.organisation_pid)
                    .await?
                    .map(|org| org.kind)
                    .ok_or_else(|| {
                        DbErr::Custom(format!("staff {} has no organisation", account.pid))
                    })?
            }
        };
        if !role_fits(role, kind) {
            return Err(StaffError::RoleDoesNotFit { role, kind });
        }
        let mut model = staff::ActiveModel {
            id: Set(account.id),
            role: Set(role.as_str().to_owned()),
            ..Default::default()
        };
        if let Some(org) = moved {
            model.organisation_id = Set(org.id);
        }
        model.update(&txn).await?;
        requester
            .audit(
                &txn,
                "staff.changed",
                ("staff", Some(&account.pid)),
                json!({
                    "role": { "from": account.role, "to": role },
                    "organisation": {
                        "from": account.organisation_pid,
                        "to": moved.map_or(account.organisation_pid.as_str(), |org| org.pid.as_str()),
                    },
                }),
            )
            .await?;
    }
    let deactivated = change.active == Some(false) && account.active;
    if let Some(active) = change.active {
        set_active(&txn, account.id, active).await?;
        requester
            .audit(
                &txn,
                if active {
                    "staff.activated"
                } else {
                    "staff.deactivated"
                },
                ("staff", Some(&account.pid)),
                json!({}),
            )
            .await?;
    }
    let revoked_generation = if deactivated || role_changed || moved.is_some() {
        super::session::bump(&txn, super::session::AccountKind::Staff, &account.pid).await?
    } else {
        None
    };
    let updated = find_by_id(&txn, account.id)
        .await?
        .ok_or(StaffError::NotFound)?;
    txn.commit().await?;
    Ok(Changed {
        account: updated,
        revoked_generation,
    })
}

/// Issues an invitation code, valid `ttl_hours`, for an active account of the requester's
/// subtree that has not bound WeChat yet (audited). Earlier unused codes stay valid.
pub async fn invite(
    db: &DatabaseConnection,
    requester: &Requester,
    pid: &str,
    ttl_hours: i64,
) -> Result<IssuedInvitation, StaffError> {
    let txn = crate::db::begin_write(db).await?;
    let account = get_within(&txn, &requester.scope, pid)
        .await?
        .ok_or(StaffError::NotFound)?;
    if !account.active {
        return Err(StaffError::AccountDisabled);
    }
    if account.wechat_bound {
        return Err(StaffError::AlreadyBound);
    }
    let issued = invitation::issue(&txn, account.id, ttl_hours).await?;
    requester
        .audit(
            &txn,
            "staff.invited",
            ("staff", Some(&account.pid)),
            json!({ "expires_at": issued.expires_at }),
        )
        .await?;
    txn.commit().await?;
    Ok(issued)
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
/// is needed to come back. Whoever deactivates an account, or changes its role or organisation,
/// also bumps its token generation ([`super::session::bump`]) in the same transaction.
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

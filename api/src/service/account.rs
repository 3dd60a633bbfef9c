//! The signed-in account: signing in with WeChat (a `wx.login` code, and on first sign-in an
//! invitation code for staff or name and ID number for members, which binds the WeChat
//! account), the demo sign-in, who is signed in, and recording a member's phone number from
//! WeChat. The WeChat calls are made here; the HTTP layer only issues the token and answers.

use sea_orm::{DatabaseConnection, DatabaseTransaction, DbErr};
use serde_json::json;

use super::member::{self, Member};
use super::staff::{self, StaffAccount};
use super::{Problem, Requester, audit, invitation};
use crate::auth::crypto::PiiVault;
use crate::domain::{IdNumber, PersonName, PhoneNumber, Role};
use crate::integrations::wechat::{WeChatClient, WeChatError};
use crate::service::scope::Scope;

/// A member or staff account, as sign-in and "who am I" find it.
#[derive(Clone, Debug)]
pub enum Account {
    Staff(StaffAccount),
    Member(Member),
}

/// Why an account could not be signed in, found or changed.
#[derive(Debug, thiserror::Error)]
pub enum AccountError {
    /// No such account, or not the caller's.
    #[error("not found")]
    NotFound,
    /// The staff account is deactivated.
    #[error("the account is disabled")]
    Disabled,
    /// The WeChat account is bound to nobody and nothing was given to bind it with.
    #[error("this WeChat account is not bound")]
    NotBound,
    /// WeChat refused the code or could not be asked.
    #[error(transparent)]
    WeChat(#[from] WeChatError),
    /// What was given cannot be used: an invitation code, a name or ID number, a phone number;
    /// or the account or the WeChat account is bound already.
    #[error("{}", .0.message)]
    Refused(Problem),
    #[error(transparent)]
    Db(#[from] DbErr),
}

/// A sign-in with a `wx.login` code and, the first time, what binds the WeChat account.
#[derive(Clone, Debug)]
pub struct WeChatSignIn {
    pub code: String,
    /// Staff: the invitation code an administrator gave them.
    pub invitation_code: Option<String>,
    /// Members: name as on the roster and ID number.
    pub name: Option<String>,
    pub id_number: Option<String>,
}

/// Signs in with WeChat: the account bound to the WeChat user, or the one the invitation code
/// or the name and ID number bind it to now (audited).
pub async fn sign_in_with_wechat(
    db: &DatabaseConnection,
    vault: &PiiVault,
    wechat: &WeChatClient,
    sign_in: &WeChatSignIn,
    request_id: Option<String>,
) -> Result<Account, AccountError> {
    let openid = wechat.code_to_session(&sign_in.code).await?.openid;
    if let Some(s) = staff::find_by_openid(db, &openid).await? {
        return active(s);
    }
    if let Some(m) = member::find_by_openid(db, vault, &openid).await? {
        return Ok(Account::Member(m));
    }
    if let Some(code) = &sign_in.invitation_code {
        return bind_staff(db, code, &openid, request_id).await;
    }
    if let (Some(name), Some(id_number)) = (&sign_in.name, &sign_in.id_number) {
        // Read only now: a WeChat account bound already signs in whatever else was sent.
        let name = PersonName::parse(name).map_err(|e| {
            refused(Problem::invalid_value(
                "name_invalid",
                "name",
                e.to_string(),
            ))
        })?;
        let id_number = IdNumber::parse(id_number).map_err(|e| {
            refused(Problem::invalid_value(
                e.code(),
                "id_number",
                e.message_zh(),
            ))
        })?;
        return bind_member(db, vault, &name, &id_number, &openid, request_id).await;
    }
    Err(AccountError::NotBound)
}

/// Binds the WeChat user to the staff account an invitation code was issued for.
async fn bind_staff(
    db: &DatabaseConnection,
    code: &str,
    openid: &str,
    request_id: Option<String>,
) -> Result<Account, AccountError> {
    let invalid = || {
        refused(Problem::invalid_value(
            "invitation_invalid",
            "invitation_code",
            "邀请码无效、已使用或已过期 / the invitation code is unknown, used or expired",
        ))
    };
    let txn = crate::db::begin_write(db).await?;
    let staff_id = invitation::redeem(&txn, code).await?.ok_or_else(invalid)?;
    let account = staff::find_by_id(&txn, staff_id)
        .await?
        .ok_or_else(invalid)?;
    if !account.active {
        return Err(AccountError::Disabled);
    }
    if account.wechat_bound || !staff::bind_openid(&txn, staff_id, openid).await? {
        return Err(already_bound(
            "该账号或该微信已绑定 / this account or this WeChat is already bound",
        ));
    }
    record_binding(txn, "staff", &account.pid, request_id).await?;
    Ok(Account::Staff(account))
}

/// Binds the WeChat user to the member on the roster with this name and ID number.
async fn bind_member(
    db: &DatabaseConnection,
    vault: &PiiVault,
    name: &PersonName,
    id_number: &IdNumber,
    openid: &str,
    request_id: Option<String>,
) -> Result<Account, AccountError> {
    let txn = crate::db::begin_write(db).await?;
    let found = member::find_by_identity(&txn, vault, name, id_number)
        .await?
        .ok_or_else(|| {
            refused(Problem::invalid_value(
                "not_on_roster",
                "id_number",
                "未在参互名单中找到此姓名和身份证号，请联系所在单位工会 / no member with this name and ID number",
            ))
        })?;
    if found.wechat_bound || !member::bind_openid(&txn, found.id, openid).await? {
        return Err(already_bound(
            "该会员或该微信已绑定 / this member or this WeChat is already bound",
        ));
    }
    record_binding(txn, "member", &found.pid, request_id).await?;
    Ok(Account::Member(found))
}

/// Records that the account `kind` (`staff`, `member`) `pid` bound its WeChat, in the audit
/// trail as its own act, and commits the binding.
async fn record_binding(
    txn: DatabaseTransaction,
    kind: &str,
    pid: &str,
    request_id: Option<String>,
) -> Result<(), DbErr> {
    audit::record(
        &txn,
        &audit::Actor::Account {
            pid: pid.to_owned(),
        },
        &format!("{kind}.wechat_bound"),
        (kind, Some(pid)),
        json!({}),
        request_id,
    )
    .await?;
    txn.commit().await
}

/// The demo sign-in: a staff login or a member's public id; `None` when neither exists.
pub async fn demo_account(
    db: &DatabaseConnection,
    vault: &PiiVault,
    login_or_pid: &str,
) -> Result<Option<Account>, AccountError> {
    if let Some(s) = staff::find_by_login(db, login_or_pid).await? {
        return active(s).map(Some);
    }
    Ok(member::get_by_pid(db, vault, login_or_pid)
        .await?
        .map(Account::Member))
}

/// The signed-in account, as its token names it (`None` once the account is gone).
pub async fn current(
    db: &DatabaseConnection,
    vault: &PiiVault,
    scope: &Scope,
    pid: &str,
    role: Role,
) -> Result<Option<Account>, DbErr> {
    if role == Role::Member {
        return Ok(member::get_within(db, vault, scope, pid)
            .await?
            .map(Account::Member));
    }
    Ok(staff::get_within(db, scope, pid).await?.map(Account::Staff))
}

/// Records the signed-in member's phone number from WeChat's phone-number API, given the
/// code of the `getPhoneNumber` button (audited). Only mainland mobile numbers are taken.
pub async fn bind_phone(
    db: &DatabaseConnection,
    vault: &PiiVault,
    wechat: &WeChatClient,
    requester: &Requester,
    code: &str,
) -> Result<PhoneNumber, AccountError> {
    let m = member::get_within(db, vault, &requester.scope, &requester.pid)
        .await?
        .ok_or(AccountError::NotFound)?;
    let wx = wechat.phone_number(code).await?;
    if wx.country_code != "86" {
        return Err(refused(Problem::invalid_value(
            "phone_invalid",
            "code",
            "仅支持中国大陆手机号 / only mainland mobile numbers are supported",
        )));
    }
    let phone = PhoneNumber::parse(&wx.pure_phone_number).map_err(|e| {
        refused(Problem::invalid_value(
            "phone_invalid",
            "code",
            e.to_string(),
        ))
    })?;
    let txn = crate::db::begin_write(db).await?;
    member::set_phone(&txn, vault, m.id, &phone).await?;
    audit::record(
        &txn,
        &audit::Actor::Account { pid: m.pid.clone() },
        "member.phone_bound",
        ("member", Some(&m.pid)),
        json!({}),
        requester.request_id.clone(),
    )
    .await?;
    txn.commit().await?;
    Ok(phone)
}

/// A staff account that may sign in.
fn active(account: StaffAccount) -> Result<Account, AccountError> {
    if account.active {
        Ok(Account::Staff(account))
    } else {
        Err(AccountError::Disabled)
    }
}

fn refused(problem: Problem) -> AccountError {
    AccountError::Refused(problem)
}

fn already_bound(message: &str) -> AccountError {
    refused(Problem::conflict("already_bound", message, json!({})))
}

//! Signing in: WeChat (`wx.login` code → openid → our token), binding a staff account with an
//! invitation code or a member by name and ID number on first sign-in, and the demo sign-in.

use actix_web::{post, web};
use serde::{Deserialize, Serialize};
use tracing_actix_web::RequestId;
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;
use validator::Validate;

use super::{OrganisationRef, validated};
use crate::domain::Role;
use crate::error::{ApiError, ErrorBody};
use crate::integrations::wechat::WeChatError;
use crate::service::account::{self, Account, AccountError};
use crate::service::member::Member;
use crate::service::session::{self, AccountKind};
use crate::service::staff::StaffAccount;
use crate::settings::Mode;
use crate::state::AppState;

pub fn configure(cfg: &mut ServiceConfig, mode: Mode) {
    cfg.service(wechat_sign_in);
    if mode == Mode::Demo {
        cfg.service(dev_login);
    }
}

/// `POST /auth/wechat`.
#[derive(Debug, Deserialize, ToSchema, Validate)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"code": "0a3Xk2000mJXwT1pSk200N8Fq61Xk20u", "name": "李文博", "id_number": "150102197702041011"}))]
pub struct WeChatSignIn {
    /// The code from `wx.login()` (single use, valid 5 minutes).
    #[validate(length(min = 1, max = 128, message = "code 不能为空"))]
    pub code: String,
    /// Staff, first sign-in: the invitation code an administrator gave them.
    #[validate(length(min = 1, max = 32))]
    pub invitation_code: Option<String>,
    /// Member, first sign-in: name as on the roster …
    #[validate(length(min = 1, max = 50))]
    pub name: Option<String>,
    /// … and ID number.
    #[validate(length(min = 1, max = 40))]
    pub id_number: Option<String>,
}

/// Our token and who it is for.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({"token": "eyJ0eXAiOiJKV1QiLCJhbGciOiJIUzI1NiJ9.eyJpc3MiOiJodXpodSIsImF1ZCI6Imh1emh1LW1pbmlhcHAiLCJzdWIiOiIwMWEyMGEzZi1jODNhLTc0OTAtODQyNy0wM2RiZWI1YjA0YzMiLCJpYXQiOjE3NTc5MDIwMDAsImV4cCI6MTc1NzkwMjkwMCwicm9sZSI6Im1lbWJlciJ9.c2lnbmF0dXJl", "token_type": "Bearer", "expires_in": 900, "account": {"id": "01a20a3f-c83a-7490-8427-03dbeb5b04c3", "role": "member", "name": "李**", "organisation": {"id": "01a20a3f-c837-71ba-ac19-f43e6b4f0bb6", "name": "内蒙古电力（集团）有限责任公司工会"}}}))]
pub struct TokenResponse {
    /// Send as `Authorization: Bearer <token>`.
    pub token: String,
    #[schema(example = "Bearer")]
    pub token_type: &'static str,
    /// Seconds until the token expires; sign in again with a fresh `wx.login` code.
    pub expires_in: i64,
    pub account: AccountSummary,
}

/// The signed-in account.
#[derive(Debug, Serialize, ToSchema)]
pub struct AccountSummary {
    /// Public id of the member or staff account.
    pub id: String,
    pub role: Role,
    /// Name, masked for members (`张**`).
    pub name: String,
    pub organisation: Option<OrganisationRef>,
}

fn issue_for_staff(
    state: &AppState,
    s: &StaffAccount,
    generation: i64,
) -> Result<TokenResponse, ApiError> {
    let token = state
        .jwt
        .issue(
            &s.pid,
            s.role,
            Some((&s.organisation_pid, &s.organisation_path)),
            generation,
        )
        .map_err(|e| ApiError::Internal(e.into()))?;
    Ok(TokenResponse {
        token,
        token_type: "Bearer",
        expires_in: state.jwt.ttl_seconds(),
        account: AccountSummary {
            id: s.pid.clone(),
            role: s.role,
            name: s.name.clone(),
            organisation: Some(OrganisationRef {
                id: s.organisation_pid.clone(),
                name: s.organisation_name.clone(),
            }),
        },
    })
}

fn issue_for_member(
    state: &AppState,
    m: &Member,
    generation: i64,
) -> Result<TokenResponse, ApiError> {
    let token = state
        .jwt
        .issue(&m.pid, Role::Member, None, generation)
        .map_err(|e| ApiError::Internal(e.into()))?;
    Ok(TokenResponse {
        token,
        token_type: "Bearer",
        expires_in: state.jwt.ttl_seconds(),
        account: AccountSummary {
            id: m.pid.clone(),
            role: Role::Member,
            name: m.name.masked(),
            organisation: Some(OrganisationRef {
                id: m.organisation_pid.clone(),
                name: m.organisation_name.clone(),
            }),
        },
    })
}

/// Our token for a signed-in account, under the account's current token generation.
pub(super) async fn issue(
    state: &AppState,
    account: &Account,
) -> Result<web::Json<TokenResponse>, ApiError> {
    let (kind, pid) = match account {
        Account::Staff(s) => (AccountKind::Staff, &s.pid),
        Account::Member(m) => (AccountKind::Member, &m.pid),
    };
    // Absent: the account was disabled between signing in and here.
    let generation = session::generation_of(&state.db, kind, pid)
        .await?
        .ok_or_else(|| account_error(AccountError::Disabled))?;
    match account {
        Account::Staff(s) => issue_for_staff(state, s, generation),
        Account::Member(m) => issue_for_member(state, m, generation),
    }
    .map(web::Json)
}

/// Maps why an account could not be signed in, found or changed.
pub fn account_error(e: AccountError) -> ApiError {
    match e {
        AccountError::NotFound => ApiError::NotFound,
        AccountError::Disabled => {
            ApiError::Forbidden("该账号已停用，请联系管理员 / this account is disabled".into())
        }
        AccountError::NotBound => ApiError::Unauthenticated {
            code: "account_not_bound",
            message: "该微信尚未绑定账号：工作人员请输入邀请码，会员请输入姓名和身份证号 / bind this WeChat first".into(),
        },
        AccountError::WeChat(e) => wechat_error(e),
        AccountError::Refused(problem) => problem.into(),
        AccountError::Db(e) => e.into(),
    }
}

/// Maps WeChat's answers to clear errors for the phone.
fn wechat_error(e: WeChatError) -> ApiError {
    let code = e.code();
    match e {
        WeChatError::InvalidCode => ApiError::Unauthenticated {
            code,
            message: "微信登录凭证无效或已使用，请重新登录 / the wx.login code is invalid or used"
                .into(),
        },
        WeChatError::RateLimited => ApiError::TooManyRequests {
            code,
            message: "微信接口调用过于频繁，请稍后再试 / WeChat rate limit, try again shortly"
                .into(),
        },
        WeChatError::RiskyUser => ApiError::Forbidden(
            "微信判定该账号存在风险，暂不能登录 / WeChat flagged this user as risky".into(),
        ),
        WeChatError::Busy => ApiError::Unavailable {
            code,
            message: "微信系统繁忙，请稍后再试 / WeChat is busy, try again".into(),
        },
        WeChatError::Transport(_) => ApiError::Unavailable {
            code,
            message: "暂时无法连接微信 / WeChat is unreachable".into(),
        },
        other => {
            tracing::warn!(error = %other, "wechat call failed");
            ApiError::Upstream {
                code,
                message: "微信接口返回错误 / WeChat answered with an error".into(),
            }
        }
    }
}

/// Signs in with a `wx.login` code. An unknown WeChat account answers 401
/// `account_not_bound`; call again with a fresh code plus `invitation_code` (staff) or
/// `name` + `id_number` (members) to bind it.
#[utoipa::path(
    operation_id = "signInWithWeChat",
    tag = "auth",
    request_body = WeChatSignIn,
    responses(
        (status = 200, body = TokenResponse),
        (status = 401, description = "`wechat_invalid_code` (get a fresh code) or `account_not_bound` (bind with an invitation code or name + ID number)", body = ErrorBody),
        (status = 403, description = "`forbidden`: risky user (WeChat 40226) or a disabled account", body = ErrorBody),
        (status = 409, description = "`already_bound`: the account is bound to another WeChat", body = ErrorBody),
        (status = 422, description = "`invalid_request`, `invitation_invalid`, `not_on_roster`, ID number errors", body = ErrorBody),
        (status = 429, description = "`wechat_rate_limited` (WeChat 45011)", body = ErrorBody),
        (status = 502, description = "`wechat_error`: WeChat answered with another error (e.g. a wrong appid)", body = ErrorBody),
        (status = 503, description = "`wechat_busy` (WeChat -1) or `wechat_unavailable`", body = ErrorBody),
    )
)]
#[post("/auth/wechat")]
pub async fn wechat_sign_in(
    state: web::Data<AppState>,
    body: web::Json<WeChatSignIn>,
    request_id: RequestId,
) -> Result<web::Json<TokenResponse>, ApiError> {
    let body = validated(body.into_inner())?;
    let sign_in = account::WeChatSignIn {
        code: body.code,
        invitation_code: body.invitation_code,
        name: body.name,
        id_number: body.id_number,
    };
    let signed_in = account::sign_in_with_wechat(
        &state.db,
        &state.pii,
        &state.wechat,
        &sign_in,
        Some(request_id.to_string()),
    )
    .await
    .map_err(account_error)?;
    issue(&state, &signed_in).await
}

/// `POST /auth/dev-login` (demo only).
#[derive(Debug, Deserialize, ToSchema, Validate)]
#[serde(deny_unknown_fields)]
pub struct DevLogin {
    /// A staff login (e.g. `admin`, `union-power`) or a member's public id, as printed on the
    /// console at start.
    #[validate(length(min = 1, max = 64))]
    #[schema(example = "admin")]
    pub account: String,
}

/// Demo sign-in without WeChat. Exists only in demo mode; a production server answers 404.
#[utoipa::path(
    operation_id = "devLogin",
    tag = "auth",
    request_body = DevLogin,
    responses(
        (status = 200, body = TokenResponse),
        (status = 404, description = "no such demo account (or not a demo server)", body = ErrorBody),
        (status = 422, body = ErrorBody),
    )
)]
#[post("/auth/dev-login")]
pub async fn dev_login(
    state: web::Data<AppState>,
    body: web::Json<DevLogin>,
) -> Result<web::Json<TokenResponse>, ApiError> {
    // Defence in depth: the route is not even mounted outside demo mode.
    if state.mode != Mode::Demo {
        return Err(ApiError::NotFound);
    }
    let body = validated(body.into_inner())?;
    match account::demo_account(&state.db, &state.pii, &body.account)
        .await
        .map_err(account_error)?
    {
        Some(found) => issue(&state, &found).await,
        None => Err(ApiError::NotFound),
    }
}

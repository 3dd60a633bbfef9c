//! Staff accounts and their invitation codes (administrators).

use actix_web::{HttpResponse, get, patch, post, web};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tracing_actix_web::RequestId;
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;
use validator::Validate;

use super::{OrganisationRef, requester, validated};
use crate::auth::Principal;
use crate::domain::Role;
use crate::error::{ApiError, ErrorBody};
use crate::service::page::{Page, PageQuery};
use crate::service::session::AccountKind;
use crate::service::staff::{self, AccountChange, NewAccount, StaffAccount, StaffError};
use crate::state::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list)
        .service(get_one)
        .service(create)
        .service(update)
        .service(invite);
}

/// A staff account.
#[derive(Debug, Serialize, ToSchema)]
pub struct StaffResponse {
    /// Public id.
    pub id: String,
    pub role: Role,
    pub name: String,
    pub login: String,
    pub active: bool,
    /// Whether a WeChat account is bound (first sign-in done).
    pub wechat_bound: bool,
    pub organisation: OrganisationRef,
}

impl From<StaffAccount> for StaffResponse {
    fn from(s: StaffAccount) -> Self {
        Self {
            id: s.pid,
            role: s.role,
            name: s.name,
            login: s.login,
            active: s.active,
            wechat_bound: s.wechat_bound,
            organisation: OrganisationRef {
                id: s.organisation_pid,
                name: s.organisation_name,
            },
        }
    }
}

/// Staff in the caller's subtree (admin).
#[utoipa::path(
    operation_id = "listStaff",
    tag = "staff",
    security(("bearer" = [])),
    params(PageQuery),
    responses(
        (status = 200, body = Page<StaffResponse>),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody),
    )
)]
#[get("/staff")]
pub async fn list(
    state: web::Data<AppState>,
    principal: Principal,
    page: web::Query<PageQuery>,
) -> Result<web::Json<Page<StaffResponse>>, ApiError> {
    principal.require(&[Role::Admin])?;
    let found =
        staff::list_within(&state.db, &principal.scope, page.after_id()?, page.limit()?).await?;
    Ok(web::Json(found.map(StaffResponse::from)))
}

/// One staff account (admin; 404 outside the subtree).
#[utoipa::path(
    operation_id = "getStaff",
    tag = "staff",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "public id")),
    responses(
        (status = 200, body = StaffResponse),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
    )
)]
#[get("/staff/{id}")]
pub async fn get_one(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<String>,
) -> Result<web::Json<StaffResponse>, ApiError> {
    principal.require(&[Role::Admin])?;
    staff::get_within(&state.db, &principal.scope, &id)
        .await?
        .map(|s| web::Json(s.into()))
        .ok_or(ApiError::NotFound)
}

/// `POST /staff`.
#[derive(Debug, Deserialize, ToSchema, Validate)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"organisation_id": "01a20a19-47d5-757c-aff5-71d85f489965", "role": "union_reviewer", "name": "王秀英", "login": "union-power-2"}))]
pub struct NewStaff {
    /// Public id of the organisation the account belongs to.
    pub organisation_id: String,
    /// A staff role; it must fit the organisation's level.
    pub role: Role,
    #[validate(length(min = 1, max = 100))]
    pub name: String,
    /// Unique login name (letters, digits, `-`, `_`, `.`).
    #[validate(length(min = 3, max = 64), custom(function = "login_chars"))]
    pub login: String,
}

fn login_chars(login: &str) -> Result<(), validator::ValidationError> {
    if login
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
    {
        Ok(())
    } else {
        Err(validator::ValidationError::new("login_chars")
            .with_message("登录名只能包含字母、数字、-、_、. / letters, digits, - _ . only".into()))
    }
}

fn staff_error(e: StaffError) -> ApiError {
    match e {
        StaffError::RoleDoesNotFit { role, kind } => ApiError::invalid_value(
            "role_does_not_fit",
            "role",
            format!("role {} does not belong in a {kind:?}", role.as_str()),
        ),
        StaffError::LoginTaken => ApiError::Conflict {
            code: "login_taken",
            message: "登录名已被使用 / the login is already taken".into(),
            details: json!({ "field": "login" }),
        },
        StaffError::NotFound => ApiError::NotFound,
        StaffError::CannotDeactivateSelf => ApiError::conflict(
            "cannot_deactivate_self",
            "不能停用自己的账号 / you cannot deactivate your own account",
        ),
        StaffError::CannotChangeSelf => ApiError::conflict(
            "cannot_change_self",
            "不能修改自己的角色或单位 / you cannot change your own role or organisation",
        ),
        StaffError::AccountDisabled => {
            ApiError::conflict("account_disabled", "该账号已停用 / the account is disabled")
        }
        StaffError::AlreadyBound => ApiError::conflict(
            "already_bound",
            "该账号已绑定微信 / WeChat is already bound",
        ),
        StaffError::Db(e) => e.into(),
    }
}

/// Creates a staff account (admin). Give the person an invitation code to bind WeChat.
#[utoipa::path(
    operation_id = "createStaff",
    tag = "staff",
    security(("bearer" = [])),
    request_body = NewStaff,
    responses(
        (status = 201, body = StaffResponse),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "`login_taken`", body = ErrorBody),
        (status = 422, description = "`invalid_request` or `role_does_not_fit`", body = ErrorBody),
    )
)]
#[post("/staff")]
pub async fn create(
    state: web::Data<AppState>,
    principal: Principal,
    body: web::Json<NewStaff>,
    request_id: RequestId,
) -> Result<HttpResponse, ApiError> {
    principal.require(&[Role::Admin])?;
    let body = validated(body.into_inner())?;
    let account = NewAccount {
        organisation_pid: body.organisation_id,
        role: body.role,
        name: body.name,
        login: body.login,
    };
    let created = staff::add(&state.db, &requester(&principal, &request_id), &account)
        .await
        .map_err(staff_error)?;
    Ok(HttpResponse::Created().json(StaffResponse::from(created)))
}

/// `PATCH /staff/{id}`: any of the fields; at least one.
#[derive(Debug, Deserialize, ToSchema, Validate)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"role": "service_point_reviewer", "organisation_id": "01a20a19-47d5-757c-aff5-71d85f489965"}))]
pub struct StaffChange {
    /// Deactivating also unbinds WeChat (a new invitation is needed to return) and revokes
    /// every token of the account at once (`401 token_revoked`).
    pub active: Option<bool>,
    /// A new staff role; it must fit the level of the account's (new) organisation. Revokes
    /// every earlier token: the next sign-in carries the new role.
    pub role: Option<Role>,
    /// Public id of the organisation to move the account to. Revokes every earlier token: the
    /// next sign-in carries the new scope.
    pub organisation_id: Option<String>,
}

/// Changes a staff account (admin): activates or deactivates it, changes its role, moves it to
/// another organisation. Audited; everything but activation revokes the account's tokens.
#[utoipa::path(
    operation_id = "updateStaff",
    tag = "staff",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "public id")),
    request_body = StaffChange,
    responses(
        (status = 200, body = StaffResponse),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, description = "the account or the organisation is not in the caller's subtree", body = ErrorBody),
        (status = 422, description = "`invalid_request` (nothing to change) or `role_does_not_fit`", body = ErrorBody),
        (status = 409, description = "`cannot_deactivate_self` or `cannot_change_self`: an administrator cannot deactivate their own account or change their own role or organisation", body = ErrorBody),
    )
)]
#[patch("/staff/{id}")]
pub async fn update(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<String>,
    body: web::Json<StaffChange>,
    request_id: RequestId,
) -> Result<web::Json<StaffResponse>, ApiError> {
    principal.require(&[Role::Admin])?;
    let body = validated(body.into_inner())?;
    if body.active.is_none() && body.role.is_none() && body.organisation_id.is_none() {
        return Err(ApiError::invalid_field(
            "active",
            "至少修改一项 / give active, role or organisation_id",
        ));
    }
    let changed = staff::change(
        &state.db,
        &requester(&principal, &request_id),
        &id,
        &AccountChange {
            active: body.active,
            role: body.role,
            organisation_pid: body.organisation_id,
        },
    )
    .await
    .map_err(staff_error)?;
    if let Some(generation) = changed.revoked_generation {
        state
            .sessions
            .revoked(AccountKind::Staff, &changed.account.pid, generation)
            .await;
    }
    Ok(web::Json(changed.account.into()))
}

/// A new invitation code, shown once.
#[derive(Debug, Serialize, ToSchema)]
pub struct InvitationResponse {
    #[schema(example = "K7QM-3XRT-9PAW")]
    pub code: String,
    pub expires_at: DateTime<Utc>,
}

/// Issues an invitation code with which the person binds their WeChat on first sign-in
/// (admin). Earlier unused codes stay valid until they expire.
#[utoipa::path(
    operation_id = "inviteStaff",
    tag = "staff",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "public id of the staff account")),
    responses(
        (status = 201, body = InvitationResponse),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "`already_bound` or `account_disabled`", body = ErrorBody),
    )
)]
#[post("/staff/{id}/invitations")]
pub async fn invite(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<String>,
    request_id: RequestId,
) -> Result<HttpResponse, ApiError> {
    principal.require(&[Role::Admin])?;
    let issued = staff::invite(
        &state.db,
        &requester(&principal, &request_id),
        &id,
        state.settings.auth.invitation_ttl_hours,
    )
    .await
    .map_err(staff_error)?;
    Ok(HttpResponse::Created().json(InvitationResponse {
        code: issued.code,
        expires_at: issued.expires_at,
    }))
}

//! The authenticated caller, extracted from `Authorization: Bearer <token>`.

use actix_web::{FromRequest, HttpRequest, dev::Payload, web};
use futures_util::future::LocalBoxFuture;

use super::TokenError;
use crate::domain::Role;
use crate::error::ApiError;
use crate::service::scope::Scope;
use crate::service::session::AccountKind;
use crate::state::AppState;

/// A caller with a valid token.
#[derive(Clone, Debug)]
pub struct Principal {
    /// Public id of the member or staff account.
    pub subject: String,
    pub role: Role,
    /// Public id of the staff member's organisation.
    pub organisation: Option<String>,
    /// What this caller may see.
    pub scope: Scope,
}

impl Principal {
    /// `403` unless the caller holds one of `roles`.
    pub fn require(&self, roles: &[Role]) -> Result<(), ApiError> {
        if roles.contains(&self.role) {
            Ok(())
        } else {
            Err(ApiError::Forbidden(format!(
                "此操作需要以下角色之一 / requires one of: {}",
                roles
                    .iter()
                    .map(|r| r.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            )))
        }
    }

    /// `403` unless the caller is staff.
    pub fn require_staff(&self) -> Result<(), ApiError> {
        if self.role.is_staff() {
            Ok(())
        } else {
            Err(ApiError::Forbidden("仅限工作人员 / staff only".into()))
        }
    }
}

fn unauthenticated(code: &'static str, message: &str) -> ApiError {
    ApiError::Unauthenticated {
        code,
        message: message.to_owned(),
    }
}

/// Reads the bearer token (signature, issuer, audience, expiry) and then asks whether the
/// account still accepts tokens of its generation (see `service::session`): a disabled
/// account, a changed role or organisation, or "sign out everywhere" answer 401
/// `token_revoked`.
async fn principal_from(req: HttpRequest) -> Result<Option<Principal>, ApiError> {
    let Some((principal, generation, state)) = verified(&req)? else {
        return Ok(None);
    };
    let kind = if principal.role.is_staff() {
        AccountKind::Staff
    } else {
        AccountKind::Member
    };
    let accepted = state
        .sessions
        .accepts(&state.db, kind, &principal.subject, generation)
        .await?;
    if !accepted {
        return Err(unauthenticated(
            "token_revoked",
            "登录已失效，请重新登录 / this sign-in was revoked; sign in again",
        ));
    }
    Ok(Some(principal))
}

/// The principal a well-formed, correctly signed token names, with its generation.
fn verified(req: &HttpRequest) -> Result<Option<(Principal, i64, web::Data<AppState>)>, ApiError> {
    let Some(header) = req.headers().get(actix_web::http::header::AUTHORIZATION) else {
        return Ok(None);
    };
    let token = header
        .to_str()
        .ok()
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim)
        .filter(|t| !t.is_empty())
        .ok_or_else(|| {
            unauthenticated(
                "invalid_token",
                "Authorization 头格式应为 Bearer <token> / expected a bearer token",
            )
        })?;
    let state = req
        .app_data::<web::Data<AppState>>()
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("application state missing")))?;
    let claims = state.jwt.verify(token).map_err(|e| match e {
        TokenError::Expired => {
            unauthenticated("token_expired", "登录已过期，请重新登录 / token expired")
        }
        TokenError::Invalid => unauthenticated("invalid_token", "登录凭证无效 / invalid token"),
    })?;
    let scope = match (claims.role, claims.scope.as_deref()) {
        (Role::Member, _) => Scope::Member {
            member_pid: claims.sub.clone(),
        },
        (_, Some(path)) if Scope::is_valid_path(path) => Scope::Subtree {
            path: path.to_owned(),
        },
        _ => {
            return Err(unauthenticated(
                "invalid_token",
                "登录凭证无效 / invalid token",
            ));
        }
    };
    Ok(Some((
        Principal {
            subject: claims.sub,
            role: claims.role,
            organisation: claims.org,
            scope,
        },
        claims.generation,
        state.clone(),
    )))
}

impl FromRequest for Principal {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move {
            principal_from(req)
                .await?
                .ok_or_else(|| unauthenticated("unauthenticated", "请先登录 / sign in first"))
        })
    }
}

/// An optional caller: absent when there is no `Authorization` header, but a *bad* token is
/// still an error, never silently anonymous.
#[derive(Clone, Debug)]
pub struct MaybePrincipal(pub Option<Principal>);

impl FromRequest for MaybePrincipal {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, Self::Error>>;

    fn from_request(req: &HttpRequest, _: &mut Payload) -> Self::Future {
        let req = req.clone();
        Box::pin(async move { principal_from(req).await.map(MaybePrincipal) })
    }
}

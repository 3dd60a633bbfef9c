//! The organisation tree, as far as the caller may see it; administrators change it.

use actix_web::{HttpResponse, get, patch, post, web};
use serde::{Deserialize, Serialize};
use tracing_actix_web::RequestId;
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;
use validator::Validate;

use super::{requester, validated};
use crate::auth::Principal;
use crate::domain::Role;
use crate::error::{ApiError, ErrorBody};
use crate::service::organisation::{
    self, Organisation, OrganisationFilter, OrganisationKind, TreeError,
};
use crate::service::page::{Page, PageQuery};
use crate::state::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list)
        .service(get_one)
        .service(create)
        .service(update);
}

/// An organisation.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrganisationResponse {
    /// Public id.
    pub id: String,
    pub parent_id: Option<String>,
    pub kind: OrganisationKind,
    pub name: String,
    /// Declared head-count (unit unions), for the participation ratio.
    pub head_count: Option<i32>,
}

impl From<Organisation> for OrganisationResponse {
    fn from(o: Organisation) -> Self {
        Self {
            id: o.pid,
            parent_id: o.parent_pid,
            kind: o.kind,
            name: o.name,
            head_count: o.head_count,
        }
    }
}

/// Filters of `GET /organisations`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct OrganisationQuery {
    pub kind: Option<OrganisationKind>,
    /// Only direct children of this organisation.
    pub parent: Option<String>,
}

/// Organisations in the caller's subtree (staff).
#[utoipa::path(
    operation_id = "listOrganisations",
    tag = "organisations",
    security(("bearer" = [])),
    params(OrganisationQuery, PageQuery),
    responses(
        (status = 200, body = Page<OrganisationResponse>),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 422, body = ErrorBody),
    )
)]
#[get("/organisations")]
pub async fn list(
    state: web::Data<AppState>,
    principal: Principal,
    filter: web::Query<OrganisationQuery>,
    page: web::Query<PageQuery>,
) -> Result<web::Json<Page<OrganisationResponse>>, ApiError> {
    principal.require_staff()?;
    let filter = filter.into_inner();
    let found = organisation::list_within(
        &state.db,
        &principal.scope,
        &OrganisationFilter {
            kind: filter.kind,
            parent_pid: filter.parent,
        },
        page.after_id()?,
        page.limit()?,
    )
    .await?;
    Ok(web::Json(found.map(OrganisationResponse::from)))
}

/// One organisation (404 outside the caller's subtree).
#[utoipa::path(
    operation_id = "getOrganisation",
    tag = "organisations",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "public id")),
    responses(
        (status = 200, body = OrganisationResponse),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
    )
)]
#[get("/organisations/{id}")]
pub async fn get_one(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<String>,
) -> Result<web::Json<OrganisationResponse>, ApiError> {
    principal.require_staff()?;
    organisation::get_within(&state.db, &principal.scope, &id)
        .await?
        .map(|o| web::Json(o.into()))
        .ok_or(ApiError::NotFound)
}

/// `POST /organisations`.
#[derive(Debug, Deserialize, ToSchema, Validate)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"parent_id": "01a20a19-47d1-7d0c-9b2e-6f1d3c2a9e11", "kind": "unit_union", "name": "呼和浩特市热电厂工会", "head_count": 320}))]
pub struct NewOrganisation {
    /// Public id of the parent (inside the caller's subtree).
    pub parent_id: String,
    pub kind: OrganisationKind,
    #[validate(length(min = 1, max = 200, message = "名称长度应为 1–200 个字符"))]
    pub name: String,
    #[validate(range(min = 0, max = 10000000))]
    pub head_count: Option<i32>,
}

/// Maps tree rule violations to 409/422.
fn tree_error(e: TreeError) -> ApiError {
    match e {
        TreeError::AssociationExists => ApiError::conflict(
            "association_exists",
            "协会已存在 / the association already exists",
        ),
        TreeError::WrongParent { child, parent } => ApiError::invalid_value(
            "wrong_parent",
            "parent_id",
            format!("{child:?} cannot be placed under {parent:?}"),
        ),
        TreeError::ParentNotFound => ApiError::NotFound,
        TreeError::Db(e) => e.into(),
    }
}

/// Adds an office, service point or unit union (admin).
#[utoipa::path(
    operation_id = "createOrganisation",
    tag = "organisations",
    security(("bearer" = [])),
    request_body = NewOrganisation,
    responses(
        (status = 201, body = OrganisationResponse),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, description = "the parent is not in the caller's subtree", body = ErrorBody),
        (status = 422, description = "`invalid_request` or `wrong_parent`", body = ErrorBody),
    )
)]
#[post("/organisations")]
pub async fn create(
    state: web::Data<AppState>,
    principal: Principal,
    body: web::Json<NewOrganisation>,
    request_id: RequestId,
) -> Result<HttpResponse, ApiError> {
    principal.require(&[Role::Admin])?;
    let body = validated(body.into_inner())?;
    let new = organisation::NewOrganisation {
        parent_pid: body.parent_id,
        kind: body.kind,
        name: body.name,
        head_count: body.head_count,
    };
    let created = organisation::add(&state.db, &requester(&principal, &request_id), &new)
        .await
        .map_err(tree_error)?;
    Ok(HttpResponse::Created().json(OrganisationResponse::from(created)))
}

/// `PATCH /organisations/{id}`.
#[derive(Debug, Deserialize, ToSchema, Validate)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"name": "呼和浩特市热电有限公司工会", "head_count": 340}))]
pub struct OrganisationChange {
    #[validate(length(min = 1, max = 200))]
    pub name: Option<String>,
    #[validate(range(min = 0, max = 10000000))]
    pub head_count: Option<i32>,
}

/// Renames an organisation or changes its declared head-count (admin).
#[utoipa::path(
    operation_id = "updateOrganisation",
    tag = "organisations",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "public id")),
    request_body = OrganisationChange,
    responses(
        (status = 200, body = OrganisationResponse),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 422, body = ErrorBody),
    )
)]
#[patch("/organisations/{id}")]
pub async fn update(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<String>,
    body: web::Json<OrganisationChange>,
    request_id: RequestId,
) -> Result<web::Json<OrganisationResponse>, ApiError> {
    principal.require(&[Role::Admin])?;
    let body = validated(body.into_inner())?;
    organisation::change(
        &state.db,
        &requester(&principal, &request_id),
        &id,
        body.name.as_deref(),
        body.head_count,
    )
    .await?
    .map(|updated| web::Json(updated.into()))
    .ok_or(ApiError::NotFound)
}

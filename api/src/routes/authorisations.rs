//! Payment authorisations (Wujin): the text a member reads, signing it on the phone (ID card
//! photos, a hand-drawn signature, explicit consent), the member's own list, and revocation.
//! No route edits a signed authorisation.

use actix_multipart::Multipart;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tracing_actix_web::RequestId;
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

use super::upload::{self, Caps, Form, FormError};
use crate::auth::Principal;
use crate::domain::Role;
use crate::error::{ApiError, ErrorBody};
use crate::service::authorisation::{
    self, AuthorisationStatus, AuthorisationText, Evidence, PaymentAuthorisation, RevokeError,
    SignError, Signing, SigningImage,
};
use crate::service::page::{Page, PageQuery};
use crate::state::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(current_text)
        .service(sign)
        .service(list_mine)
        .service(signed_text)
        .service(revoke)
        .service(list_for_staff)
        .service(evidence)
        .service(revoke_on_behalf);
}

/// The authorisation text a member reads before signing.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuthorisationTextResponse {
    #[schema(example = "wj-2022")]
    pub scheme_code: String,
    /// Send it back as `text_version` when signing.
    pub version: i32,
    /// SHA-256 (lowercase hex) of `body`'s UTF-8 bytes; send it back as `text_sha256`.
    #[schema(example = "3f0a…")]
    pub sha256: String,
    /// The text (Markdown).
    pub body: String,
    pub published_at: DateTime<Utc>,
}

/// The current payment authorisation text of a scheme (no sign-in needed).
#[utoipa::path(
    operation_id = "getAuthorisationText",
    tag = "authorisations",
    params(("scheme_code" = String, Path, example = "wj-2022")),
    responses(
        (status = 200, body = AuthorisationTextResponse),
        (status = 404, description = "the scheme has no authorisation text", body = ErrorBody),
    )
)]
#[get("/authorisation-texts/{scheme_code}")]
pub async fn current_text(
    state: web::Data<AppState>,
    scheme_code: web::Path<String>,
) -> Result<web::Json<AuthorisationTextResponse>, ApiError> {
    let text = authorisation::current_text(&state.db, &scheme_code)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(web::Json(AuthorisationTextResponse::from(text)))
}

impl From<AuthorisationText> for AuthorisationTextResponse {
    fn from(text: AuthorisationText) -> Self {
        Self {
            scheme_code: text.scheme_code,
            version: text.version,
            sha256: text.sha256,
            body: text.body,
            published_at: text.published_at,
        }
    }
}

/// `POST /me/authorisations` (`multipart/form-data`): what the phone sends when the member signs.
#[allow(dead_code)]
#[derive(ToSchema)]
pub struct SignAuthorisationForm {
    #[schema(example = "wj-2022")]
    pub scheme_code: String,
    /// The `version` of the text the member read.
    pub text_version: i32,
    /// The `sha256` of the text the member read; if it is no longer the current one the answer
    /// is 409 `text_changed` and the phone shows the new text.
    pub text_sha256: String,
    /// Must be `true`: the member ticked their consent to the authorisation and the collection
    /// agreement.
    #[schema(example = "true")]
    pub consent: String,
    /// The debit card to deduct from (16–19 digits, Luhn-checked).
    #[schema(example = "6222021234567890128")]
    pub bank_card: String,
    /// Photo of the ID card's front (JPEG or PNG, at most 8 MB and 8000×8000).
    #[schema(value_type = String, format = Binary)]
    pub id_card_front: Vec<u8>,
    /// Photo of the ID card's back (JPEG or PNG, at most 8 MB and 8000×8000).
    #[schema(value_type = String, format = Binary)]
    pub id_card_back: Vec<u8>,
    /// The hand-drawn signature (PNG only, not blank).
    #[schema(value_type = String, format = Binary)]
    pub signature: Vec<u8>,
}

/// Active until revoked; a revoked one is still used for deductions until `effective_until`.
#[derive(Clone, Copy, Debug, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AuthorisationStatusView {
    Active,
    Revoked,
}

/// A signed payment authorisation, as its member sees it.
#[derive(Debug, Serialize, ToSchema)]
pub struct AuthorisationResponse {
    /// Public id.
    pub id: String,
    #[schema(example = "wj-2022")]
    pub scheme_code: String,
    pub text_version: i32,
    pub text_sha256: String,
    #[schema(example = "6222***********0128")]
    pub bank_card: String,
    pub signature_sha256: String,
    pub signed_at: DateTime<Utc>,
    pub status: AuthorisationStatusView,
    pub revoked_at: Option<DateTime<Utc>>,
    /// The last day deductions may use it (end of the month it was revoked in).
    pub effective_until: Option<NaiveDate>,
}

impl From<&PaymentAuthorisation> for AuthorisationResponse {
    fn from(a: &PaymentAuthorisation) -> Self {
        Self {
            id: a.pid.clone(),
            scheme_code: a.scheme_code.clone(),
            text_version: a.text_version,
            text_sha256: a.text_sha256.clone(),
            bank_card: a.bank_card.masked(),
            signature_sha256: a.signature_sha256.clone(),
            signed_at: a.signed_at,
            status: match a.status() {
                AuthorisationStatus::Active => AuthorisationStatusView::Active,
                AuthorisationStatus::Revoked => AuthorisationStatusView::Revoked,
            },
            revoked_at: a.revoked_at,
            effective_until: a.effective_until,
        }
    }
}

/// Largest text part accepted.
const TEXT_LIMIT: usize = 1024;

/// The fields of the signing form and their caps.
const SIGN_FORM: [(&str, usize); 8] = [
    ("scheme_code", TEXT_LIMIT),
    ("text_version", TEXT_LIMIT),
    ("text_sha256", TEXT_LIMIT),
    ("consent", TEXT_LIMIT),
    ("bank_card", TEXT_LIMIT),
    (
        SigningImage::IdCardFront.field(),
        SigningImage::IdCardFront.max_bytes(),
    ),
    (
        SigningImage::IdCardBack.field(),
        SigningImage::IdCardBack.max_bytes(),
    ),
    (
        SigningImage::Signature.field(),
        SigningImage::Signature.max_bytes(),
    ),
];

fn form_error(e: FormError) -> ApiError {
    match e {
        FormError::Unreadable { cause, .. } => ApiError::BadRequest {
            message: format!(
                "请求须为 multipart/form-data，且内容完整 / expected a complete multipart/form-data body: {cause}"
            ),
            details: json!({}),
        },
        FormError::TooLarge { field, .. } => match SigningImage::of_field(&field) {
            Some(image) => image.too_large().into(),
            None => ApiError::invalid_field(field.clone(), format!("字段 {field} 过长 / too long")),
        },
        FormError::Duplicate(field) => ApiError::invalid_value(
            "duplicate_field",
            field.clone(),
            format!("字段 {field} 重复 / the field {field} appears twice"),
        ),
        FormError::Unknown(field) => ApiError::invalid_value(
            "unknown_field",
            field.clone(),
            format!("不认识的字段 {field} / unknown field {field}"),
        ),
    }
}

/// A field the form must have (422 `field_missing`).
fn required(form: &mut Form, field: &str) -> Result<Vec<u8>, ApiError> {
    form.take(field).map(|part| part.bytes).ok_or_else(|| {
        ApiError::invalid_value(
            "field_missing",
            field,
            format!("缺少字段 {field} / the field {field} is required"),
        )
    })
}

/// A text field the form must have, trimmed.
fn required_text(form: &mut Form, field: &str) -> Result<String, ApiError> {
    let bytes = required(form, field)?;
    String::from_utf8(bytes)
        .map(|text| text.trim().to_owned())
        .map_err(|_| ApiError::invalid_field(field, format!("字段 {field} 须为 UTF-8 文本")))
}

/// The client's network address: the peer, or — only behind a proxy the settings trust — the
/// first `X-Forwarded-For` entry.
fn client_address(req: &HttpRequest, trust_forwarded_for: bool) -> String {
    if trust_forwarded_for
        && let Some(first) = req
            .headers()
            .get("x-forwarded-for")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.split(',').next())
            .map(str::trim)
            .and_then(|v| v.parse::<std::net::IpAddr>().ok())
    {
        return first.to_string();
    }
    req.peer_addr()
        .map(|a| a.ip().to_string())
        .unwrap_or_default()
}

fn user_agent(req: &HttpRequest) -> String {
    req.headers()
        .get(actix_web::http::header::USER_AGENT)
        .map(|v| {
            String::from_utf8_lossy(v.as_bytes())
                .chars()
                .take(512)
                .collect()
        })
        .unwrap_or_default()
}

/// The member signs a payment authorisation. Files are checked by their bytes (type, size,
/// dimensions; the signature must not be blank), stored under keys the server chooses, and the
/// record is written with the audit entry in one transaction; if that fails the stored files
/// are deleted, so a failed signature leaves nothing behind.
#[utoipa::path(
    operation_id = "signAuthorisation",
    tag = "authorisations",
    security(("bearer" = [])),
    request_body(content = SignAuthorisationForm, content_type = "multipart/form-data"),
    responses(
        (status = 201, body = AuthorisationResponse),
        (status = 400, description = "not a readable multipart body", body = ErrorBody),
        (status = 401, body = ErrorBody),
        (status = 403, description = "members only", body = ErrorBody),
        (status = 404, description = "the scheme has no authorisation text", body = ErrorBody),
        (status = 409, description = "`text_changed` (details carry the current version and sha256), `authorisation_active`", body = ErrorBody),
        (status = 422, description = "`consent_required`, `field_missing`, `unknown_field`, `duplicate_field`, `bank_card_*`, `file_type_not_allowed`, `file_too_large`, `file_empty`, `image_unreadable`, `image_too_large`, `signature_blank`, `scheme_not_offered` (the member's unit union does not take part in the scheme), `enrolment_not_open` (`details.opens`) or `enrolment_closed` (`details.closes`, `details.coverage_start`, `details.coverage_end`): today (the service's calendar) is outside the scheme version's enrolment window and any late window", body = ErrorBody),
        (status = 503, description = "`photo_queue_full`: every photo worker is busy and the queue is full (`Retry-After`); or `service_unavailable`", body = ErrorBody),
    )
)]
#[post("/me/authorisations")]
pub async fn sign(
    state: web::Data<AppState>,
    principal: Principal,
    req: HttpRequest,
    payload: Multipart,
    request_id: RequestId,
) -> Result<HttpResponse, ApiError> {
    principal.require(&[Role::Member])?;
    // A place in the photo queue before the body is read (three images are decoded).
    let ticket = state
        .photo_work
        .admit()
        .map_err(|_| ApiError::Unavailable {
            code: "photo_queue_full",
            message:
                "上传人数较多，请稍后重试 / too many photos are being processed, try again shortly"
                    .into(),
        })?;
    let mut form = upload::read(payload, Caps::Named(&SIGN_FORM))
        .await
        .map_err(form_error)?;
    let signing = Signing {
        scheme_code: required_text(&mut form, "scheme_code")?,
        text_version: required_text(&mut form, "text_version")?,
        text_sha256: required_text(&mut form, "text_sha256")?,
        consent: required_text(&mut form, "consent")?,
        bank_card: required_text(&mut form, "bank_card")?,
        id_card_front: required(&mut form, SigningImage::IdCardFront.field())?,
        id_card_back: required(&mut form, SigningImage::IdCardBack.field())?,
        signature: required(&mut form, SigningImage::Signature.field())?,
        ip_address: client_address(&req, state.settings.http.trust_forwarded_for),
        user_agent: user_agent(&req),
    };
    let signed = authorisation::sign(
        &state.db,
        &state.storage,
        &state.pii,
        &principal.scope,
        &principal.subject,
        signing,
        &ticket,
        state.settings.today(),
        Some(request_id.to_string()),
    )
    .await
    .map_err(|e| match e {
        SignError::NotFound => ApiError::NotFound,
        SignError::Refused(problem) => problem.into(),
        SignError::Db(e) => e.into(),
        SignError::Internal(e) => ApiError::Internal(e),
    })?;
    Ok(HttpResponse::Created().json(AuthorisationResponse::from(&signed)))
}

/// The member's own payment authorisations, newest first (bank card masked).
#[utoipa::path(
    operation_id = "listMyAuthorisations",
    tag = "authorisations",
    security(("bearer" = [])),
    responses(
        (status = 200, body = Vec<AuthorisationResponse>),
        (status = 401, body = ErrorBody),
        (status = 403, description = "members only", body = ErrorBody),
    )
)]
#[get("/me/authorisations")]
pub async fn list_mine(
    state: web::Data<AppState>,
    principal: Principal,
) -> Result<web::Json<Vec<AuthorisationResponse>>, ApiError> {
    principal.require(&[Role::Member])?;
    let found = authorisation::list_for_member(&state.db, &state.pii, &principal.subject).await?;
    Ok(web::Json(found.iter().map(Into::into).collect()))
}

/// The exact text the member signed with one of their own authorisations: the version and
/// SHA-256 kept with the record, and the body they read (not the newest version).
#[utoipa::path(
    operation_id = "getMySignedAuthorisationText",
    tag = "authorisations",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "public id of the authorisation")),
    responses(
        (status = 200, body = AuthorisationTextResponse),
        (status = 401, body = ErrorBody),
        (status = 403, description = "members only", body = ErrorBody),
        (status = 404, description = "not one of the member's own", body = ErrorBody),
    )
)]
#[get("/me/authorisations/{id}/text")]
pub async fn signed_text(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<String>,
) -> Result<web::Json<AuthorisationTextResponse>, ApiError> {
    principal.require(&[Role::Member])?;
    let text = authorisation::signed_text(&state.db, &principal.subject, &id)
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(web::Json(AuthorisationTextResponse::from(text)))
}

/// Revokes one of the member's own authorisations. It takes effect on the first day of the next
/// month (Beijing time): this month's deduction may still use it.
#[utoipa::path(
    operation_id = "revokeAuthorisation",
    tag = "authorisations",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "public id")),
    responses(
        (status = 200, body = AuthorisationResponse),
        (status = 401, body = ErrorBody),
        (status = 403, description = "members only", body = ErrorBody),
        (status = 404, description = "not one of the member's own", body = ErrorBody),
        (status = 409, description = "`already_revoked`", body = ErrorBody),
    )
)]
#[post("/me/authorisations/{id}/revoke")]
pub async fn revoke(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<String>,
    request_id: RequestId,
) -> Result<web::Json<AuthorisationResponse>, ApiError> {
    principal.require(&[Role::Member])?;
    let revoked = authorisation::revoke_own(
        &state.db,
        &state.pii,
        &principal.subject,
        &id,
        Utc::now(),
        state.settings.today(),
        Some(request_id.to_string()),
    )
    .await
    .map_err(revoke_error)?;
    Ok(web::Json(AuthorisationResponse::from(&revoked)))
}

fn revoke_error(e: RevokeError) -> ApiError {
    match e {
        RevokeError::NotFound => ApiError::NotFound,
        RevokeError::AlreadyRevoked => ApiError::conflict(
            "already_revoked",
            "该授权已撤销 / this authorisation is already revoked",
        ),
        RevokeError::ReasonMissing => ApiError::invalid_value(
            "reason_required",
            "reason",
            "请写明撤销原因 / a written reason is required",
        ),
        RevokeError::Db(e) => e.into(),
    }
}

/// Who sees signed authorisations and their evidence: the association only.
const EVIDENCE_ROLES: &[Role] = &[Role::AssociationReviewer, Role::Admin];

/// `GET /authorisations?scheme_code=&name=&cursor=&limit=`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StaffAuthorisationQuery {
    pub scheme_code: Option<String>,
    /// Part of the member's name.
    pub name: Option<String>,
    /// Opaque cursor from the previous page's `next_cursor`.
    pub cursor: Option<String>,
    /// Page size, 1–100 (default 20).
    pub limit: Option<u64>,
}

/// A signed authorisation with who signed it, where from, and links to its evidence.
#[derive(Debug, Serialize, ToSchema)]
pub struct StaffAuthorisationResponse {
    #[serde(flatten)]
    pub authorisation: AuthorisationResponse,
    pub member_id: String,
    pub member_name: String,
    pub union_name: String,
    /// The network address it was signed from.
    pub ip_address: String,
    /// The device (user agent) it was signed on.
    pub user_agent: String,
    /// Paths of the signature image and the ID card photos (association only, `no-store`).
    pub evidence: Vec<String>,
}

/// Signed authorisations of members inside the caller's part of the tree, for disputes and
/// audits (newest first, a page at a time), searchable by scheme and the member's name.
#[utoipa::path(
    operation_id = "listAuthorisationsForStaff",
    tag = "authorisations",
    security(("bearer" = [])),
    params(StaffAuthorisationQuery),
    responses(
        (status = 200, body = Page<StaffAuthorisationResponse>),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 422, description = "`invalid_request` (cursor, limit)", body = ErrorBody),
    )
)]
#[get("/authorisations")]
pub async fn list_for_staff(
    state: web::Data<AppState>,
    principal: Principal,
    query: web::Query<StaffAuthorisationQuery>,
) -> Result<web::Json<Page<StaffAuthorisationResponse>>, ApiError> {
    principal.require(EVIDENCE_ROLES)?;
    let page = PageQuery {
        cursor: query.cursor.clone(),
        limit: query.limit,
    };
    let found = authorisation::list_for_staff(
        &state.db,
        &state.pii,
        &principal.scope,
        query.scheme_code.as_deref(),
        query.name.as_deref(),
        page.after_id()?,
        page.limit()?,
    )
    .await?;
    Ok(web::Json(found.map(|s| {
        StaffAuthorisationResponse {
            authorisation: AuthorisationResponse::from(&s.authorisation),
            member_id: s.member_pid.clone(),
            member_name: s.member_name.clone(),
            union_name: s.union_name.clone(),
            ip_address: s.ip_address.clone(),
            user_agent: s.user_agent.clone(),
            evidence: ["signature", "id-card-front", "id-card-back"]
                .iter()
                .map(|k| {
                    format!(
                        "/api/v1/authorisations/{}/evidence/{k}",
                        s.authorisation.pid
                    )
                })
                .collect(),
        }
    })))
}

/// One evidence image of a signed authorisation (`signature`, `id-card-front`,
/// `id-card-back`), byte for byte as stored; `Cache-Control: no-store`; every view audited.
#[utoipa::path(
    operation_id = "getAuthorisationEvidence",
    tag = "authorisations",
    security(("bearer" = [])),
    params(
        ("id" = String, Path, description = "public id"),
        ("kind" = String, Path, description = "`signature`, `id-card-front` or `id-card-back`"),
    ),
    responses(
        (status = 200, content_type = "image/*", body = Vec<u8>),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
    )
)]
#[get("/authorisations/{id}/evidence/{kind}")]
pub async fn evidence(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<(String, String)>,
    request_id: RequestId,
) -> Result<HttpResponse, ApiError> {
    principal.require(EVIDENCE_ROLES)?;
    let (id, kind) = path.into_inner();
    let which = Evidence::parse(&kind).ok_or(ApiError::NotFound)?;
    let (bytes, mime) = authorisation::evidence(
        &state.db,
        &state.storage,
        &principal.scope,
        &id,
        which,
        &principal.subject,
        Some(request_id.to_string()),
    )
    .await
    .map_err(ApiError::Internal)?
    .ok_or(ApiError::NotFound)?;
    Ok(HttpResponse::Ok()
        .content_type(mime)
        .insert_header(("cache-control", "no-store"))
        .body(bytes))
}

/// `POST /authorisations/{id}/revoke`.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RevokeOnBehalf {
    /// Why (e.g. the worker's phone call), kept in the audit trail.
    pub reason: String,
}

/// The association revokes a worker's authorisation on their behalf, with a written reason
/// (audited as on behalf; the worker is told): effective from the first day of next month.
#[utoipa::path(
    operation_id = "revokeAuthorisationOnBehalf",
    tag = "authorisations",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "public id")),
    request_body = RevokeOnBehalf,
    responses(
        (status = 200, body = AuthorisationResponse),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "`already_revoked`", body = ErrorBody),
        (status = 422, description = "`reason_required`", body = ErrorBody),
    )
)]
#[post("/authorisations/{id}/revoke")]
pub async fn revoke_on_behalf(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<String>,
    body: web::Json<RevokeOnBehalf>,
    request_id: RequestId,
) -> Result<web::Json<AuthorisationResponse>, ApiError> {
    principal.require(EVIDENCE_ROLES)?;
    let revoked = authorisation::revoke_on_behalf(
        &state.db,
        &state.pii,
        &principal.scope,
        &id,
        &body.reason,
        &principal.subject,
        Utc::now(),
        state.settings.today(),
        Some(request_id.to_string()),
    )
    .await
    .map_err(revoke_error)?;
    Ok(web::Json(AuthorisationResponse::from(&revoked)))
}

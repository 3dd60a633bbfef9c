//! A claim's photographed materials (申领材料): uploading and removing them, and the signed
//! links through which the mini-program shows them.

use actix_multipart::Multipart;
use actix_web::{HttpResponse, delete, get, post, web};
use serde::Deserialize;
use serde_json::json;
use tracing_actix_web::RequestId;
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;

use super::claims::{caller, viewer};
use super::upload::{read_form, required};
use crate::auth::Principal;
use crate::error::{ApiError, ErrorBody};
use crate::formats::photos::PhotoLimits;
use crate::service::claim::materials::{self, UploadError, Variant};
use crate::service::claim::view::{self, MaterialResponse, PhotoLink};
use crate::state::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(upload_material)
        .service(remove_material)
        .service(photo);
}

impl From<UploadError> for ApiError {
    fn from(e: UploadError) -> Self {
        match e {
            UploadError::Photo(p) => ApiError::Invalid {
                code: p.code(),
                message: p.message_zh(),
                details: json!({ "field": "file" }),
            },
            UploadError::Claim(c) => c.into(),
            UploadError::Busy(_) => photo_queue_full(),
            UploadError::Storage(s) => ApiError::Unavailable {
                code: "storage_unavailable",
                message: format!(
                    "照片存储暂不可用，请稍后重试 / storage unavailable: {}",
                    s.kind()
                ),
            },
        }
    }
}

/// `503 photo_queue_full` (with `Retry-After`): every photo worker is busy and the queue full.
fn photo_queue_full() -> ApiError {
    ApiError::Unavailable {
        code: "photo_queue_full",
        message:
            "上传人数较多，请稍后重试 / too many photos are being processed, try again shortly"
                .into(),
    }
}

/// `?category=` of an upload.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UploadQuery {
    /// The material's category, e.g. `invoice`, `settlement_slip`, `id_card_front`.
    pub category: String,
}

/// The multipart form `wx.uploadFile` sends: one file, in the field `file`.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct PhotoUpload {
    /// A JPEG, PNG or WebP photo, at most 15 MiB and 8000 × 8000 px.
    #[schema(value_type = String, format = Binary)]
    pub file: Vec<u8>,
}

/// Uploads one photo (as `wx.uploadFile` sends it). Only JPEG, PNG and WebP are accepted, by
/// their bytes (HEIC, PDF, SVG or a renamed file are refused); dimensions are checked before
/// decoding; orientation is applied and every EXIF field (GPS!) removed from what is stored; a
/// thumbnail is made. A bill already seen in another claim flags the claim for reviewers.
/// Nothing is stored when the photo is refused.
#[utoipa::path(
    operation_id = "uploadClaimMaterial",
    tag = "claims",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "public id"), UploadQuery),
    request_body(content = PhotoUpload, content_type = "multipart/form-data"),
    responses(
        (status = 201, body = MaterialResponse),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "`invalid_transition`: the claim no longer accepts materials", body = ErrorBody),
        (status = 413, body = ErrorBody),
        (status = 422, description = "`unknown_category`, `file_empty`, `file_too_large`, `unsupported_type` and the other photo codes (details.field = file)", body = ErrorBody),
        (status = 503, description = "`storage_unavailable`, or `photo_queue_full`: every photo worker is busy and the queue is full (`Retry-After`)", body = ErrorBody),
    )
)]
#[post("/claims/{id}/materials")]
pub async fn upload_material(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<String>,
    query: web::Query<UploadQuery>,
    payload: Multipart,
    request_id: RequestId,
) -> Result<HttpResponse, ApiError> {
    let category = materials::parse_category(&query.category).ok_or_else(|| {
        ApiError::invalid_value(
            "unknown_category",
            "category",
            format!(
                "未知材料类别 / unknown material category `{}`",
                query.category
            ),
        )
    })?;
    // A place in the photo queue before the body is read: past the bound, nothing is read.
    let ticket = state.photo_work.admit().map_err(|_| photo_queue_full())?;
    let limits = PhotoLimits::default();
    let mut parts = read_form(payload, limits.max_bytes).await?;
    required(&parts, "file")?;
    let file = parts.remove("file").map(|p| p.bytes).unwrap_or_default();
    let stored = view::upload(
        &state.db,
        &state.storage,
        &viewer(&state, &principal),
        &id,
        category,
        file,
        limits,
        &ticket,
        Some(request_id.to_string()),
    )
    .await?;
    Ok(HttpResponse::Created().json(stored))
}

/// Removes a photo from a draft, a returned claim or an unconfirmed offer.
#[utoipa::path(
    operation_id = "removeClaimMaterial",
    tag = "claims",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "claim public id"), ("material_id" = String, Path, description = "material public id")),
    responses(
        (status = 204),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "`invalid_transition`", body = ErrorBody),
    )
)]
#[delete("/claims/{id}/materials/{material_id}")]
pub async fn remove_material(
    state: web::Data<AppState>,
    principal: Principal,
    path: web::Path<(String, String)>,
    request_id: RequestId,
) -> Result<HttpResponse, ApiError> {
    let (claim_id, material_id) = path.into_inner();
    materials::remove(
        &state.db,
        &state.storage,
        &caller(&principal),
        &claim_id,
        &material_id,
        Some(request_id.to_string()),
    )
    .await?;
    Ok(HttpResponse::NoContent().finish())
}

/// A signed photo link's query.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PhotoQuery {
    /// `full` or `thumbnail`.
    pub variant: String,
    pub expires: i64,
    pub signature: String,
}

/// A material's image through a signed link from a claim's detail (no bearer token: the
/// mini-program's `<image>` cannot send one). Links expire after 10 minutes.
#[utoipa::path(
    operation_id = "getClaimPhoto",
    tag = "claims",
    params(("material_id" = String, Path, description = "material public id"), PhotoQuery),
    responses(
        (status = 200, content_type = "image/jpeg", body = Vec<u8>),
        (status = 403, description = "`link_invalid`: expired or not signed by us", body = ErrorBody),
        (status = 404, body = ErrorBody),
    )
)]
#[get("/claim-photos/{material_id}")]
pub async fn photo(
    state: web::Data<AppState>,
    material_id: web::Path<String>,
    query: web::Query<PhotoQuery>,
) -> Result<HttpResponse, ApiError> {
    let variant = match query.variant.as_str() {
        "full" => Variant::Full,
        "thumbnail" => Variant::Thumbnail,
        _ => {
            return Err(ApiError::invalid_field(
                "variant",
                "full 或 thumbnail / full or thumbnail",
            ));
        }
    };
    let link = PhotoLink {
        material_pid: &material_id,
        variant,
        expires: query.expires,
        signature: &query.signature,
    };
    let (bytes, content_type) =
        view::photo(&state.db, &state.storage, &state.pii.hasher, link).await?;
    Ok(HttpResponse::Ok()
        .content_type(content_type)
        .insert_header(("cache-control", "no-store"))
        .body(bytes))
}

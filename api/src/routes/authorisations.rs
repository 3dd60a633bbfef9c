//! Payment authorisations (Wujin): the text a member reads, signing it on the phone (ID card
//! photos, a hand-drawn signature, explicit consent), the member's own list, and revocation.
//! No route edits a signed authorisation.

use actix_multipart::{Field, Multipart};
use actix_web::web::Bytes;
use actix_web::{HttpRequest, HttpResponse, get, post, web};
use chrono::{DateTime, NaiveDate, Utc};
use futures_util::TryStreamExt;
use serde::Serialize;
use serde_json::json;
use tracing_actix_web::RequestId;
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::auth::Principal;
use crate::domain::BankCardNumber;
use crate::domain::Role;
use crate::error::{ApiError, ErrorBody};
use crate::formats::images::{self, ImageKind};
use crate::service::audit::{self, Actor};
use crate::service::authorisation::{
    self, AuthorisationStatus, NewAuthorisation, PaymentAuthorisation, RevokeError, SignError,
    StoredObjects,
};
use crate::service::{member, new_pid};
use crate::state::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(current_text)
        .service(sign)
        .service(list_mine)
        .service(revoke);
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
    Ok(web::Json(AuthorisationTextResponse {
        scheme_code: text.scheme_code,
        version: text.version,
        sha256: text.sha256,
        body: text.body,
        published_at: text.published_at,
    }))
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
const PHOTO: &[ImageKind] = &[ImageKind::Jpeg, ImageKind::Png];
const SIGNATURE: &[ImageKind] = &[ImageKind::Png];

/// A checked upload, held in memory until it is stored.
struct Upload {
    bytes: Bytes,
    kind: ImageKind,
    checked: images::CheckedImage,
}

#[derive(Default)]
struct SignForm {
    scheme_code: Option<String>,
    text_version: Option<String>,
    text_sha256: Option<String>,
    consent: Option<String>,
    bank_card: Option<String>,
    id_card_front: Option<Upload>,
    id_card_back: Option<Upload>,
    signature: Option<Upload>,
}

fn unreadable(e: actix_multipart::MultipartError) -> ApiError {
    ApiError::BadRequest {
        message: format!(
            "请求须为 multipart/form-data，且内容完整 / expected a complete multipart/form-data body: {e}"
        ),
        details: json!({}),
    }
}

/// Reads one part, refusing it as soon as it passes `limit` bytes (`None`).
async fn read_capped(field: &mut Field, limit: usize) -> Result<Option<Bytes>, ApiError> {
    let mut buf = Vec::new();
    while let Some(chunk) = field.try_next().await.map_err(unreadable)? {
        if buf.len() + chunk.len() > limit {
            return Ok(None);
        }
        buf.extend_from_slice(&chunk);
    }
    Ok(Some(Bytes::from(buf)))
}

fn image_error(field: &str, problem: &images::ImageProblem) -> ApiError {
    let mut details = json!({ "field": field });
    if let images::ImageProblem::TooLarge { limit } = problem {
        details["limit_bytes"] = json!(limit);
    }
    ApiError::Invalid {
        code: problem.code(),
        message: problem.message(),
        details,
    }
}

/// Streams the form, checking each file's type and dimensions as soon as it has arrived.
async fn read_form(mut payload: Multipart) -> Result<SignForm, ApiError> {
    let mut form = SignForm::default();
    while let Some(mut field) = payload.try_next().await.map_err(unreadable)? {
        let name = field.name().unwrap_or_default().to_owned();
        let duplicate = || {
            ApiError::invalid_value(
                "duplicate_field",
                name.clone(),
                format!("字段 {name} 重复 / the field {name} appears twice"),
            )
        };
        let text_slot = match name.as_str() {
            "scheme_code" => Some(&mut form.scheme_code),
            "text_version" => Some(&mut form.text_version),
            "text_sha256" => Some(&mut form.text_sha256),
            "consent" => Some(&mut form.consent),
            "bank_card" => Some(&mut form.bank_card),
            _ => None,
        };
        if let Some(slot) = text_slot {
            if slot.is_some() {
                return Err(duplicate());
            }
            let bytes = read_capped(&mut field, TEXT_LIMIT).await?.ok_or_else(|| {
                ApiError::invalid_field(name.clone(), format!("字段 {name} 过长 / too long"))
            })?;
            let text = String::from_utf8(bytes.to_vec()).map_err(|_| {
                ApiError::invalid_field(name.clone(), format!("字段 {name} 须为 UTF-8 文本"))
            })?;
            *slot = Some(text.trim().to_owned());
            continue;
        }
        let (slot, allowed) = match name.as_str() {
            "id_card_front" => (&mut form.id_card_front, PHOTO),
            "id_card_back" => (&mut form.id_card_back, PHOTO),
            "signature" => (&mut form.signature, SIGNATURE),
            _ => {
                return Err(ApiError::invalid_value(
                    "unknown_field",
                    name.clone(),
                    format!("不认识的字段 {name} / unknown field {name}"),
                ));
            }
        };
        if slot.is_some() {
            return Err(duplicate());
        }
        let bytes = read_capped(&mut field, images::MAX_BYTES)
            .await?
            .ok_or_else(|| {
                image_error(
                    &name,
                    &images::ImageProblem::TooLarge {
                        limit: images::MAX_BYTES,
                    },
                )
            })?;
        let checked = images::check(&bytes, allowed).map_err(|p| image_error(&name, &p))?;
        *slot = Some(Upload {
            bytes,
            kind: checked.kind,
            checked,
        });
    }
    Ok(form)
}

/// An ID card photo as it is stored: re-encoded with its orientation applied and every EXIF
/// field (phones write GPS) removed, nothing appended kept. Decoding is CPU work: off the
/// async threads.
async fn cleaned(field: &'static str, upload: Upload) -> Result<Upload, ApiError> {
    let bytes = upload.bytes.clone();
    let limits = crate::formats::photos::PhotoLimits {
        max_bytes: images::MAX_BYTES,
        ..Default::default()
    };
    let processed = web::block(move || crate::formats::photos::process(&bytes, &limits))
        .await
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("photo processing: {e}")))?
        .map_err(|e| ApiError::invalid_value(e.code(), field, e.message_zh()))?;
    let kind = match processed.kind {
        crate::formats::photos::PhotoKind::Png => ImageKind::Png,
        _ => ImageKind::Jpeg,
    };
    Ok(Upload {
        bytes: Bytes::from(processed.stored),
        kind,
        checked: upload.checked,
    })
}

fn required<T>(value: Option<T>, field: &str) -> Result<T, ApiError> {
    value.ok_or_else(|| {
        ApiError::invalid_value(
            "field_missing",
            field,
            format!("缺少字段 {field} / the field {field} is required"),
        )
    })
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

async fn delete_objects(state: &AppState, keys: &[String]) {
    for key in keys {
        if let Err(e) = state.storage.delete(key).await {
            tracing::error!(error = %e, key, "could not delete an object of a failed signature");
        }
    }
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
        (status = 422, description = "`consent_required`, `field_missing`, `unknown_field`, `duplicate_field`, `bank_card_*`, `file_type_not_allowed`, `file_too_large`, `file_empty`, `image_unreadable`, `image_too_large`, `signature_blank`", body = ErrorBody),
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
    let form = read_form(payload).await?;
    let scheme_code = required(form.scheme_code, "scheme_code")?;
    let text_version = required(form.text_version, "text_version")?;
    let text_sha256 = required(form.text_sha256, "text_sha256")?;
    let consent = required(form.consent, "consent")?;
    let bank_card = required(form.bank_card, "bank_card")?;
    let front = cleaned(
        "id_card_front",
        required(form.id_card_front, "id_card_front")?,
    )
    .await?;
    let back = cleaned("id_card_back", required(form.id_card_back, "id_card_back")?).await?;
    let signature = required(form.signature, "signature")?;

    let text = authorisation::current_text(&state.db, &scheme_code)
        .await?
        .ok_or(ApiError::NotFound)?;
    if text_version.parse::<i32>().ok() != Some(text.version)
        || !text_sha256.eq_ignore_ascii_case(&text.sha256)
    {
        return Err(ApiError::Conflict {
            code: "text_changed",
            message: "授权书已更新，请阅读新版本后重新签署 / the authorisation text has changed: read the new version and sign again".into(),
            details: json!({ "current_version": text.version, "current_sha256": text.sha256 }),
        });
    }
    if consent != "true" {
        return Err(ApiError::invalid_value(
            "consent_required",
            "consent",
            "请阅读并勾选同意付款授权书和代收协议 / you must consent to the authorisation and the collection agreement",
        ));
    }
    let bank_card = BankCardNumber::parse(&bank_card)
        .map_err(|e| ApiError::invalid_value(e.code(), "bank_card", e.to_string()))?;
    // Decoding is CPU work: off the async threads.
    let (signature_bytes, checked) = (signature.bytes.clone(), signature.checked);
    web::block(move || images::ensure_not_blank(&signature_bytes, &checked))
        .await
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("signature check: {e}")))?
        .map_err(|p| image_error("signature", &p))?;

    let m = member::get_within(&state.db, &state.pii, &principal.scope, &principal.subject)
        .await?
        .ok_or(ApiError::NotFound)?;
    let already = || {
        ApiError::conflict(
            "authorisation_active",
            "您已签署该方案的付款授权，如需更换银行卡请先撤销 / an authorisation for this scheme is active; revoke it first to change the card",
        )
    };
    if authorisation::active_for(&state.db, m.id, &scheme_code)
        .await?
        .is_some()
    {
        return Err(already());
    }

    let pid = new_pid();
    let objects = StoredObjects {
        id_card_front: format!(
            "authorisations/{pid}/id-card-front.{}",
            front.kind.extension()
        ),
        id_card_back: format!(
            "authorisations/{pid}/id-card-back.{}",
            back.kind.extension()
        ),
        signature: format!("authorisations/{pid}/signature.png"),
    };
    let signature_sha256 = authorisation::sha256_hex(&signature.bytes);
    let mut stored: Vec<String> = Vec::new();
    for (key, upload) in [
        (&objects.id_card_front, &front),
        (&objects.id_card_back, &back),
        (&objects.signature, &signature),
    ] {
        let written = state
            .storage
            .write_with(key, upload.bytes.clone())
            .content_type(upload.kind.mime())
            .await;
        if let Err(e) = written {
            delete_objects(&state, &stored).await;
            return Err(ApiError::Internal(
                anyhow::Error::new(e).context("storing an authorisation file"),
            ));
        }
        stored.push(key.clone());
    }

    let record = async {
        let txn = crate::db::begin_write(&state.db).await?;
        let signed = authorisation::sign(
            &txn,
            &state.pii,
            NewAuthorisation {
                pid: pid.clone(),
                member_id: m.id,
                text: &text,
                bank_card,
                objects: objects.clone(),
                signature_sha256,
                signed_at: Utc::now(),
                ip_address: client_address(&req, state.settings.http.trust_forwarded_for),
                user_agent: user_agent(&req),
            },
        )
        .await
        .map_err(|e| match e {
            SignError::AlreadyActive => already(),
            SignError::NoMember => ApiError::NotFound,
            SignError::Db(e) => e.into(),
        })?;
        audit::record(
            &txn,
            &Actor::Account { pid: m.pid.clone() },
            "authorisation.signed",
            ("payment_authorisation", Some(&signed.pid)),
            json!({
                "scheme_code": signed.scheme_code,
                "text_version": signed.text_version,
                "text_sha256": signed.text_sha256,
                "signature_sha256": signed.signature_sha256,
            }),
            Some(request_id.to_string()),
        )
        .await?;
        txn.commit().await?;
        Ok::<_, ApiError>(signed)
    }
    .await;
    match record {
        Ok(signed) => Ok(HttpResponse::Created().json(AuthorisationResponse::from(&signed))),
        Err(e) => {
            delete_objects(&state, &stored).await;
            Err(e)
        }
    }
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
    let txn = crate::db::begin_write(&state.db).await?;
    let revoked = authorisation::revoke(&txn, &state.pii, &principal.subject, &id, Utc::now())
        .await
        .map_err(|e| match e {
            RevokeError::NotFound => ApiError::NotFound,
            RevokeError::AlreadyRevoked => ApiError::conflict(
                "already_revoked",
                "该授权已撤销 / this authorisation is already revoked",
            ),
            RevokeError::Db(e) => e.into(),
        })?;
    audit::record(
        &txn,
        &Actor::Account {
            pid: principal.subject.clone(),
        },
        "authorisation.revoked",
        ("payment_authorisation", Some(&revoked.pid)),
        json!({ "effective_until": revoked.effective_until }),
        Some(request_id.to_string()),
    )
    .await?;
    txn.commit().await?;
    Ok(web::Json(AuthorisationResponse::from(&revoked)))
}

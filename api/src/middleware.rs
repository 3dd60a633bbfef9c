//! What wraps every request whatever route answers it: the one error shape for the framework's
//! own refusals, the security headers, the gate in front of `/metrics` and the API docs, and a
//! cap on request headers answered in our shape.

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::ErrorHandlerResponse;
use actix_web::{HttpResponse, ResponseError, web};
use secrecy::ExposeSecret;
use serde_json::json;

use crate::error::ApiError;
use crate::settings::{Mode, Settings};
use crate::state::AppState;

/// Seconds a client is told to wait after a `503` (`Retry-After`).
pub const RETRY_AFTER_SECONDS: u32 = 5;

/// Largest total size of a request's headers answered by us (`431` in our shape), well below
/// the framework's own limit (a 128 KiB head, or more than 96 headers), whose bare `431`
/// [`crate::wire`] rewrites in our shape.
pub const MAX_HEADER_BYTES: usize = 16 * 1024;

/// Most headers a request may carry before we answer `431`.
pub const MAX_HEADERS: usize = 64;

/// For `ErrorHandlers::default_handler`: an error answer that is not already our JSON — the
/// framework's 404 for an unknown route, 405 for a wrong method, 413 from a capped body, 400
/// for an unreadable one — is rewritten as `{"error":{"code","message","details"}}` with the
/// same status. Our own errors (already JSON) pass untouched.
pub fn json_errors<B>(res: ServiceResponse<B>) -> actix_web::Result<ErrorHandlerResponse<B>> {
    let is_json = res
        .response()
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if is_json {
        return Ok(ErrorHandlerResponse::Response(res.map_into_left_body()));
    }
    let status = res.status();
    let limit = res
        .request()
        .app_data::<web::Data<AppState>>()
        .map(|s| s.settings.http.json_limit_bytes);
    let (req, old) = res.into_parts();
    let mut new = HttpResponse::build(status).json(error_body(status, limit));
    // Keep what the framework or a handler said besides the body (`Allow` on a 405, …).
    for (name, value) in old.headers() {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            new.headers_mut().insert(name.clone(), value.clone());
        }
    }
    if status == StatusCode::SERVICE_UNAVAILABLE {
        new.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS));
    }
    Ok(ErrorHandlerResponse::Response(
        ServiceResponse::new(req, new).map_into_right_body(),
    ))
}

/// Our error body for a status the framework answered by itself (`limit`: the body cap, for
/// a `413`).
pub fn error_body(status: StatusCode, limit: Option<usize>) -> serde_json::Value {
    let (code, message, details) = describe(status, limit);
    json!({ "error": { "code": code, "message": message, "details": details } })
}

/// Code, message and details of an error status the framework answered by itself.
fn describe(status: StatusCode, limit: Option<usize>) -> (&'static str, String, serde_json::Value) {
    let plain = |code, message: &str| (code, message.to_owned(), json!({}));
    match status {
        StatusCode::BAD_REQUEST => plain(
            "bad_request",
            "请求无法解析 / the request could not be read",
        ),
        StatusCode::UNAUTHORIZED => plain("unauthenticated", "请先登录 / sign in first"),
        StatusCode::FORBIDDEN => plain("forbidden", "无权访问 / forbidden"),
        StatusCode::NOT_FOUND => plain("not_found", "未找到 / not found"),
        StatusCode::METHOD_NOT_ALLOWED => plain(
            "method_not_allowed",
            "此路径不支持该方法 / this method is not allowed here",
        ),
        StatusCode::PAYLOAD_TOO_LARGE => (
            "payload_too_large",
            match limit {
                Some(limit) => format!("请求内容过大 / the body exceeds {limit} bytes"),
                None => "请求内容过大 / the body is too large".to_owned(),
            },
            limit.map_or(json!({}), |l| json!({ "limit_bytes": l })),
        ),
        StatusCode::REQUEST_TIMEOUT => plain(
            "request_timeout",
            "请求未在时限内送达 / the request did not arrive in time",
        ),
        StatusCode::URI_TOO_LONG => plain("uri_too_long", "地址过长 / the URI is too long"),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => plain(
            "unsupported_media_type",
            "不支持的内容类型 / unsupported content type",
        ),
        StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE => (
            "headers_too_large",
            "请求头过大 / the request headers are too large".to_owned(),
            json!({ "limit_bytes": MAX_HEADER_BYTES, "limit_headers": MAX_HEADERS }),
        ),
        StatusCode::SERVICE_UNAVAILABLE => plain(
            "service_unavailable",
            "服务暂时不可用，请稍后再试 / temporarily unavailable, try again shortly",
        ),
        s if s.is_server_error() => plain(
            "internal_error",
            "服务器内部错误，请稍后再试 / internal error",
        ),
        _ => plain("bad_request", "请求无效 / the request is invalid"),
    }
}

/// Refuses a request whose headers are larger than [`MAX_HEADER_BYTES`] or more than
/// [`MAX_HEADERS`], before any handler, with `431` in our shape. `None`: let it through.
pub fn oversized_headers(req: &ServiceRequest) -> Option<HttpResponse> {
    let headers = req.headers();
    let bytes: usize = headers
        .iter()
        .map(|(name, value)| name.as_str().len() + value.len() + 4)
        .sum();
    (bytes > MAX_HEADER_BYTES || headers.len() > MAX_HEADERS).then(|| {
        let status = StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE;
        HttpResponse::build(status).json(error_body(status, None))
    })
}

/// Whether `path` is an operator's page: the metrics, the API docs or the OpenAPI document.
pub fn is_ops_path(path: &str) -> bool {
    path == "/metrics"
        || path == "/api/docs"
        || path.starts_with("/api/docs/")
        || path == "/api/v1/openapi.json"
}

/// Whether an operator's page may be served to this request: with `ops.token` configured only
/// to `Authorization: Bearer <token>` (else `401`); without it, where `ops.public` says
/// (default: open on the demo, closed — `404` — in production).
pub fn ops_refusal(req: &ServiceRequest, settings: &Settings, mode: Mode) -> Option<ApiError> {
    if let Some(token) = &settings.ops.token {
        let given = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .unwrap_or("");
        let expected = token.expose_secret().as_bytes();
        let equal: bool = subtle::ConstantTimeEq::ct_eq(given.as_bytes(), expected).into();
        return (!equal).then(|| ApiError::Unauthenticated {
            code: "unauthenticated",
            message: "需要运维令牌 / this page needs the operator token (ops.token)".into(),
        });
    }
    let public = settings.ops.public.unwrap_or(mode == Mode::Demo);
    (!public).then_some(ApiError::NotFound)
}

/// Answers `err` in our shape for a request refused before routing.
pub fn refuse(err: &ApiError) -> HttpResponse {
    err.error_response()
}

/// The security headers every answer carries, whatever its request (lowercase names): also
/// written by [`crate::wire`] on the framework's own refusals.
pub const SECURITY_HEADERS: [(&str, &str); 3] = [
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    ("content-security-policy", "frame-ancestors 'none'"),
];

/// Adds the security headers every answer carries: `X-Content-Type-Options: nosniff`,
/// `Referrer-Policy: no-referrer`, `Content-Security-Policy: frame-ancestors 'none'`;
/// `Strict-Transport-Security` when the request came over TLS ([`came_over_tls`]); and `Cache-Control: no-store` on every `/api/v1` answer that did not choose
/// one — they carry personal data, full numbers for the roles that see them, and downloads.
pub fn add_security_headers<B: MessageBody>(res: &mut ServiceResponse<B>, tls: bool) {
    let api = res.request().path().starts_with("/api/v1/");
    let headers = res.headers_mut();
    for (name, value) in SECURITY_HEADERS {
        let name = header::HeaderName::from_static(name);
        // A `Content-Security-Policy` a route chose is kept.
        if name != header::CONTENT_SECURITY_POLICY || !headers.contains_key(&name) {
            headers.insert(name, HeaderValue::from_static(value));
        }
    }
    if tls {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static("max-age=31536000; includeSubDomains"),
        );
    }
    if api && !headers.contains_key(header::CACHE_CONTROL) {
        headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
}

/// Whether the request reached us over TLS: always with `http.hsts`, else when the proxy in
/// front says so (`X-Forwarded-Proto: https`). Believing the header costs nothing: a browser
/// ignores `Strict-Transport-Security` received over plain HTTP (RFC 6797 §8.1).
pub fn came_over_tls(req: &ServiceRequest, settings: &Settings) -> bool {
    settings.http.hsts
        || req
            .headers()
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("https"))
}

/// Marks a response that reports an unreachable database (set by `ApiError`), so the
/// [`Breaker`] opens.
#[derive(Clone, Copy, Debug)]
pub struct DatabaseOutage;

/// How often an open [`Breaker`] asks the database whether it is back.
pub const PROBE_INTERVAL: std::time::Duration = std::time::Duration::from_millis(500);

/// A circuit breaker in front of the database: once a request found it unreachable, every
/// `/api/v1` request answers `503 service_unavailable` at once — instead of each waiting for
/// the pool's acquire timeout — while one background probe pings the database every
/// [`PROBE_INTERVAL`] and closes the breaker when it answers.
#[derive(Clone, Debug, Default)]
pub struct Breaker {
    open: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Breaker {
    /// Whether requests are being refused.
    pub fn is_open(&self) -> bool {
        self.open.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Opens the breaker (if closed) and starts the probe that closes it again.
    pub fn trip(&self, db: sea_orm::DatabaseConnection) {
        use std::sync::atomic::Ordering;
        if self
            .open
            .compare_exchange(false, true, Ordering::AcqRel, Ordering::Acquire)
            .is_err()
        {
            return;
        }
        tracing::warn!("the database is unreachable: answering 503 until it is back");
        let open = self.open.clone();
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(PROBE_INTERVAL).await;
                let back = tokio::time::timeout(std::time::Duration::from_secs(2), db.ping())
                    .await
                    .is_ok_and(|r| r.is_ok());
                if back {
                    open.store(false, Ordering::Release);
                    tracing::info!("the database answers again");
                    return;
                }
            }
        });
    }
}

/// The answer while the [`Breaker`] is open.
pub fn outage_response() -> HttpResponse {
    let (code, message, details) = describe(StatusCode::SERVICE_UNAVAILABLE, None);
    HttpResponse::build(StatusCode::SERVICE_UNAVAILABLE)
        .insert_header((header::RETRY_AFTER, RETRY_AFTER_SECONDS))
        .json(json!({ "error": { "code": code, "message": message, "details": details } }))
}

//! One error type for the HTTP layer, one JSON shape: `{"error":{"code","message","details"}}`.
//! Each variant's doc comment names its status. Internal causes are logged with their chain
//! and answered opaquely.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use serde::Serialize;
use serde_json::{Value, json};
use utoipa::ToSchema;

/// The body of every error response.
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorBody {
    pub error: ErrorDetail,
}

/// What went wrong, for a program (`code`) and for a person (`message`).
#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorDetail {
    /// Stable snake_case code, e.g. `not_found`, `invalid_request`, `wechat_invalid_code`.
    #[schema(example = "invalid_request")]
    pub code: String,
    /// Human-readable explanation (Chinese where a worker reads it).
    pub message: String,
    /// Structured context: the offending field, missing items, limits …
    #[schema(value_type = Object)]
    pub details: Value,
}

/// Every way a request can fail.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the request could not be read (malformed JSON, wrong content type).
    #[error("{message}")]
    BadRequest { message: String, details: Value },
    /// 400 `pii_in_url`: a personal number (ID, phone, bank card) given as a query parameter,
    /// where access logs and proxies would keep it; look-ups take it in a POST body.
    #[error("personal data in the URL")]
    PersonalDataInUrl { parameter: String },
    /// 422: the request was read but a value is invalid (`details.field` names it).
    #[error("{message}")]
    Invalid {
        code: &'static str,
        message: String,
        details: Value,
    },
    /// 401: no token, a bad token or an expired one.
    #[error("authentication required")]
    Unauthenticated { code: &'static str, message: String },
    /// 403: signed in, but the role may not do this at all (never used to hide existence).
    #[error("{0}")]
    Forbidden(String),
    /// 403 with its own code: the role may act, but not this person on this item (four eyes:
    /// `same_reviewer`).
    #[error("{message}")]
    Refused { code: &'static str, message: String },
    /// 404: nothing there — or nothing the caller may see.
    #[error("not found")]
    NotFound,
    /// 409: conflicts with the current state (duplicate, stale version, used code).
    #[error("{message}")]
    Conflict {
        code: &'static str,
        message: String,
        details: Value,
    },
    /// 413: the body is larger than allowed.
    #[error("payload too large")]
    PayloadTooLarge { limit: usize },
    /// 429: an outside service asked us to slow down.
    #[error("{message}")]
    TooManyRequests { code: &'static str, message: String },
    /// 502: an outside service (WeChat) answered with an error.
    #[error("{message}")]
    Upstream { code: &'static str, message: String },
    /// 503: a dependency is unreachable.
    #[error("{message}")]
    Unavailable { code: &'static str, message: String },
    /// 500: a bug or an unexpected failure; the cause is logged, never sent.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    /// 422 `invalid_request` on one field.
    pub fn invalid_field(field: impl Into<String>, message: impl Into<String>) -> Self {
        let field = field.into();
        ApiError::Invalid {
            code: "invalid_request",
            message: message.into(),
            details: json!({ "field": field }),
        }
    }

    /// 422 with a domain code and the field it concerns.
    pub fn invalid_value(
        code: &'static str,
        field: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        let field = field.into();
        ApiError::Invalid {
            code,
            message: message.into(),
            details: json!({ "field": field }),
        }
    }

    /// 409 with a code and message.
    pub fn conflict(code: &'static str, message: impl Into<String>) -> Self {
        ApiError::Conflict {
            code,
            message: message.into(),
            details: json!({}),
        }
    }

    /// The stable code of this error.
    pub fn code(&self) -> &str {
        match self {
            ApiError::BadRequest { .. } => "bad_request",
            ApiError::PersonalDataInUrl { .. } => "pii_in_url",
            ApiError::Invalid { code, .. } => code,
            ApiError::Unauthenticated { code, .. } => code,
            ApiError::Forbidden(_) => "forbidden",
            ApiError::Refused { code, .. } => code,
            ApiError::NotFound => "not_found",
            ApiError::Conflict { code, .. } => code,
            ApiError::PayloadTooLarge { .. } => "payload_too_large",
            ApiError::TooManyRequests { code, .. } => code,
            ApiError::Upstream { code, .. } => code,
            ApiError::Unavailable { code, .. } => code,
            ApiError::Internal(_) => "internal_error",
        }
    }

    /// The `{"code","message","details"}` of this error, for storing in a job report.
    /// The error as it would be answered (`code`, `message`, `details`), for a summary that
    /// reports several outcomes in one answer.
    pub fn detail(&self) -> ErrorDetail {
        self.body().error
    }

    pub fn body_value(&self) -> Value {
        serde_json::to_value(self.body().error).unwrap_or(Value::Null)
    }

    fn body(&self) -> ErrorBody {
        let (message, details) = match self {
            ApiError::BadRequest { message, details } => (message.clone(), details.clone()),
            ApiError::PersonalDataInUrl { parameter } => (
                format!(
                    "身份证号、手机号和银行卡号不能放在网址中，请用 POST /api/v1/members/search 查询 / \
                     `{parameter}` may not be a query parameter: personal numbers go in a request \
                     body (POST /api/v1/members/search)"
                ),
                json!({ "parameter": parameter, "use": "POST /api/v1/members/search" }),
            ),
            ApiError::Invalid {
                message, details, ..
            } => (message.clone(), details.clone()),
            ApiError::Unauthenticated { message, .. } => (message.clone(), json!({})),
            ApiError::Forbidden(message) => (message.clone(), json!({})),
            ApiError::Refused { message, .. } => (message.clone(), json!({})),
            ApiError::NotFound => ("未找到 / not found".into(), json!({})),
            ApiError::Conflict {
                message, details, ..
            } => (message.clone(), details.clone()),
            ApiError::PayloadTooLarge { limit } => (
                format!("请求内容过大 / the body exceeds {limit} bytes"),
                json!({ "limit_bytes": limit }),
            ),
            ApiError::TooManyRequests { message, .. }
            | ApiError::Upstream { message, .. }
            | ApiError::Unavailable { message, .. } => (message.clone(), json!({})),
            ApiError::Internal(_) => (
                "服务器内部错误，请稍后再试 / internal error".into(),
                json!({}),
            ),
        };
        ErrorBody {
            error: ErrorDetail {
                code: self.code().to_owned(),
                message,
                details,
            },
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            ApiError::BadRequest { .. } | ApiError::PersonalDataInUrl { .. } => {
                StatusCode::BAD_REQUEST
            }
            ApiError::Invalid { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            ApiError::Unauthenticated { .. } => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) | ApiError::Refused { .. } => StatusCode::FORBIDDEN,
            ApiError::NotFound => StatusCode::NOT_FOUND,
            ApiError::Conflict { .. } => StatusCode::CONFLICT,
            ApiError::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            ApiError::Upstream { .. } => StatusCode::BAD_GATEWAY,
            ApiError::Unavailable { .. } => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) if self.is_outage() => StatusCode::SERVICE_UNAVAILABLE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if self.is_outage() {
            if let ApiError::Internal(cause) = self {
                tracing::warn!(error.cause_chain = ?cause, "the database is unreachable");
            }
            let outage = ApiError::Unavailable {
                code: "service_unavailable",
                message:
                    "服务暂时不可用，请稍后再试 / the database is unavailable, try again shortly"
                        .into(),
            };
            let mut response = outage.error_response();
            response
                .extensions_mut()
                .insert(crate::middleware::DatabaseOutage);
            return response;
        }
        if let ApiError::Internal(cause) = self {
            tracing::error!(error.cause_chain = ?cause, "request failed");
        }
        let mut response = HttpResponse::build(self.status_code());
        if self.status_code() == StatusCode::SERVICE_UNAVAILABLE {
            response.insert_header((
                actix_web::http::header::RETRY_AFTER,
                crate::middleware::RETRY_AFTER_SECONDS,
            ));
        }
        response.json(self.body())
    }
}

impl From<crate::service::Problem> for ApiError {
    fn from(r: crate::service::Problem) -> Self {
        use crate::service::ProblemKind;
        match r.kind {
            ProblemKind::Invalid => ApiError::Invalid {
                code: r.code,
                message: r.message,
                details: r.details,
            },
            ProblemKind::Conflict => ApiError::Conflict {
                code: r.code,
                message: r.message,
                details: r.details,
            },
        }
    }
}

impl From<sea_orm::DbErr> for ApiError {
    fn from(e: sea_orm::DbErr) -> Self {
        ApiError::Internal(anyhow::Error::new(e).context("database"))
    }
}

/// Whether a database error says the database cannot be reached — a pool that found no
/// connection in time, a refused or dropped connection, a server shutting down — rather than a
/// bug: answered `503 service_unavailable` with `Retry-After`, so a client can tell an outage
/// from a defect.
pub fn database_unreachable(e: &sea_orm::DbErr) -> bool {
    use sea_orm::sqlx::Error as Sqlx;
    use sea_orm::{DbErr, RuntimeErr};
    match e {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => true,
        DbErr::Query(RuntimeErr::SqlxError(e)) | DbErr::Exec(RuntimeErr::SqlxError(e)) => {
            match e.as_ref() {
                Sqlx::Io(_) | Sqlx::PoolTimedOut | Sqlx::PoolClosed | Sqlx::WorkerCrashed => true,
                // Class 08: connection exception; 57P01–57P03: the server is shutting down or
                // starting.
                Sqlx::Database(db) => db
                    .code()
                    .is_some_and(|c| c.starts_with("08") || c.starts_with("57P0")),
                _ => false,
            }
        }
        _ => false,
    }
}

impl ApiError {
    /// Whether this is an internal error caused by an unreachable database.
    fn is_outage(&self) -> bool {
        match self {
            ApiError::Internal(cause) => cause.chain().any(|c| {
                c.downcast_ref::<sea_orm::DbErr>()
                    .is_some_and(database_unreachable)
            }),
            _ => false,
        }
    }
}

impl<E: std::error::Error + Send + Sync + 'static> From<sea_orm::TransactionError<E>> for ApiError
where
    ApiError: From<E>,
{
    fn from(e: sea_orm::TransactionError<E>) -> Self {
        match e {
            sea_orm::TransactionError::Connection(db) => db.into(),
            sea_orm::TransactionError::Transaction(inner) => inner.into(),
        }
    }
}

/// Turns actix-web's own extractor failures into our shape.
pub mod extractors {
    use actix_web::error::{JsonPayloadError, PathError, QueryPayloadError};
    use actix_web::{Error, HttpRequest};
    use serde_json::json;

    use super::ApiError;

    /// For `JsonConfig::error_handler`.
    pub fn json_error(err: JsonPayloadError, _req: &HttpRequest) -> Error {
        let api = match &err {
            JsonPayloadError::OverflowKnownLength { limit, .. }
            | JsonPayloadError::Overflow { limit } => ApiError::PayloadTooLarge { limit: *limit },
            JsonPayloadError::ContentType => ApiError::BadRequest {
                message: "请求必须是 JSON (Content-Type: application/json)".into(),
                details: json!({}),
            },
            JsonPayloadError::Deserialize(de) if de.is_data() => ApiError::Invalid {
                code: "invalid_request",
                message: de.to_string(),
                details: json!({ "line": de.line(), "column": de.column() }),
            },
            other => ApiError::BadRequest {
                message: format!("请求无法解析 / unreadable JSON: {other}"),
                details: json!({}),
            },
        };
        api.into()
    }

    /// For `QueryConfig::error_handler`.
    pub fn query_error(err: QueryPayloadError, _req: &HttpRequest) -> Error {
        ApiError::Invalid {
            code: "invalid_request",
            message: format!("查询参数无效 / invalid query: {err}"),
            details: json!({}),
        }
        .into()
    }

    /// For `PathConfig::error_handler`: an id that cannot exist is simply not found.
    pub fn path_error(_err: PathError, _req: &HttpRequest) -> Error {
        ApiError::NotFound.into()
    }
}

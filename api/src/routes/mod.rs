//! The HTTP API. One module per resource, each with its own `configure`, mounted under
//! `/api/v1`; request types live beside their routes.
//!
//! The top of the layout and the only room that knows HTTP: a handler parses the request (the
//! one capped multipart reader is [`upload`]), checks the role, calls one service function and
//! maps its error to [`crate::error::ApiError`]. No transaction, audit entry, entity or call to
//! the outside world starts here; nothing below imports this module.

pub mod auth;
pub mod authorisations;
pub mod claim_figures;
pub mod claim_materials;
pub mod claim_review;
pub mod claims;
pub mod deductions;
pub mod enrolments;
pub mod exports;
pub mod health;
pub mod me;
pub mod members;
pub mod memberships;
pub mod messages;
pub mod organisations;
pub mod payouts;
pub mod schemes;
pub mod settlements;
pub mod simulations;
pub mod staff;
pub mod targets;
pub mod upload;

use actix_web::HttpResponse;
use serde_json::json;
use utoipa_actix_web::service_config::ServiceConfig;
use validator::Validate;

use crate::error::ApiError;
use crate::formats::bank_file::LineProblem;
// Defined among the services because the claim read model shows it too.
pub use crate::service::organisation::OrganisationRef;
use crate::settings::Mode;

/// Mounts every `/api/v1` resource. `dev-login` exists only in demo mode.
///
/// The claims first: a request is matched against the routes in this order, each route with a
/// parameter by a regular expression, and the claim list and its queues are the most frequent
/// requests by far (routing was 3.9 % of a list request, BENCHMARKS.md). No other module's path
/// can match a claims route: theirs start with another segment.
pub fn configure(cfg: &mut ServiceConfig, mode: Mode) {
    claims::configure(cfg);
    auth::configure(cfg, mode);
    me::configure(cfg);
    organisations::configure(cfg);
    staff::configure(cfg);
    targets::configure(cfg);
    members::configure(cfg);
    enrolments::configure(cfg);
    exports::configure(cfg);
    memberships::configure(cfg);
    schemes::configure(cfg);
    simulations::configure(cfg);
    authorisations::configure(cfg);
    deductions::configure(cfg);
    claim_figures::configure(cfg);
    claim_materials::configure(cfg);
    claim_review::configure(cfg);
    payouts::configure(cfg);
    messages::configure(cfg);
    settlements::configure(cfg);
}

/// Query parameters that would carry a personal number (any spelling of their names).
const PERSONAL_PARAMETERS: &[&str] = &[
    "id_number",
    "idnumber",
    "id_card",
    "phone",
    "mobile",
    "bank_card",
    "card_number",
    "card",
];

/// The first query parameter of `query` named for a personal number, if any: such a request
/// is refused (`pii_in_url`) before any handler runs, on every route, so the number goes no
/// further than the access log's redaction.
pub fn personal_parameter(query: &str) -> Option<String> {
    query
        .split('&')
        .filter_map(|pair| pair.split('=').next())
        .map(|name| name.trim().to_ascii_lowercase().replace('-', "_"))
        .find(|name| PERSONAL_PARAMETERS.contains(&name.as_str()))
}

/// Runs `validator` rules and turns the first failure into a 422 naming the field.
pub fn validated<T: Validate>(value: T) -> Result<T, ApiError> {
    match value.validate() {
        Ok(()) => Ok(value),
        Err(errors) => {
            let mut fields: Vec<(String, String)> = errors
                .field_errors()
                .into_iter()
                .map(|(field, errs)| {
                    let message = errs
                        .first()
                        .and_then(|e| e.message.as_ref().map(|m| m.to_string()))
                        .unwrap_or_else(|| format!("{field} is invalid"));
                    (field.to_string(), message)
                })
                .collect();
            fields.sort();
            let (field, message) = fields
                .into_iter()
                .next()
                .unwrap_or_else(|| ("body".into(), "invalid request".into()));
            Err(ApiError::invalid_field(field, message))
        }
    }
}

/// The media type of `.xlsx` files.
pub const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

/// A file to download. The name goes in RFC 5987 form so a Chinese name survives every
/// browser and WeChat's viewer (with an ASCII stand-in for old clients); never cached, as these
/// files hold names and personal numbers.
pub fn attachment(bytes: Vec<u8>, content_type: &str, filename: &str) -> HttpResponse {
    let encoded: String = filename
        .bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect();
    let extension = filename.rsplit_once('.').map_or("bin", |(_, ext)| ext);
    HttpResponse::Ok()
        .content_type(content_type)
        .insert_header((
            "content-disposition",
            format!("attachment; filename=\"export.{extension}\"; filename*=UTF-8''{encoded}"),
        ))
        .insert_header(("cache-control", "no-store"))
        .body(bytes)
}

/// An `.xlsx` file to download (see [`attachment`]).
pub fn xlsx(bytes: Vec<u8>, filename: &str) -> HttpResponse {
    attachment(bytes, XLSX, filename)
}

/// 422 `result_file_invalid` for a bank's result file that does not match its batch:
/// `details.problems` lists every line's problem; nothing was imported.
pub fn result_file_invalid(problems: Vec<LineProblem>) -> ApiError {
    ApiError::Invalid {
        code: "result_file_invalid",
        message: format!(
            "结果文件有 {} 处问题，未导入任何结果 / the result file has {} problems; nothing was imported",
            problems.len(),
            problems.len()
        ),
        details: json!({ "problems": problems }),
    }
}

/// The caller of a request that changes something, as services take it.
pub fn requester(
    principal: &crate::auth::Principal,
    request_id: &tracing_actix_web::RequestId,
) -> crate::service::Requester {
    crate::service::Requester {
        pid: principal.subject.clone(),
        scope: principal.scope.clone(),
        request_id: Some(request_id.to_string()),
    }
}

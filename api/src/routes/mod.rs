//! The HTTP API. One module per resource, each with its own `configure`, mounted under
//! `/api/v1`; request and response types live beside their routes.

pub mod auth;
pub mod authorisations;
pub mod deductions;
pub mod enrolments;
pub mod exports;
pub mod health;
pub mod me;
pub mod members;
pub mod memberships;
pub mod organisations;
pub mod schemes;
pub mod simulations;
pub mod staff;
pub mod targets;
pub mod upload;

use serde::Serialize;
use serde_json::json;
use utoipa::ToSchema;
use utoipa_actix_web::service_config::ServiceConfig;
use validator::Validate;

use crate::bank_file::LineProblem;
use crate::error::ApiError;
use crate::settings::Mode;

/// Mounts every `/api/v1` resource. `dev-login` exists only in demo mode.
pub fn configure(cfg: &mut ServiceConfig, mode: Mode) {
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

/// A reference to an organisation inside another resource.
#[derive(Debug, Serialize, ToSchema)]
pub struct OrganisationRef {
    /// Public id.
    pub id: String,
    pub name: String,
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

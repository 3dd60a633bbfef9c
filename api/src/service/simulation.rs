//! The simulation (补助测算) behind both `POST /api/v1/simulations` and `huzhu simulate`: the
//! same bytes in give the same bytes out, whichever door they came through.

use sea_orm::{ConnectionTrait, DbErr};
use serde_json::Value;

use super::scheme;
use crate::engine::{self, SimulationError};

/// What a simulation answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimulationOutcome {
    /// `false` when the request was refused (HTTP 422, CLI exit code 2).
    pub accepted: bool,
    /// The JSON answer (compact, one line, ending in a newline).
    pub body: String,
}

fn render<T: serde::Serialize>(accepted: bool, value: &T) -> SimulationOutcome {
    let mut body = serde_json::to_string(value).unwrap_or_else(|e| {
        format!(r#"{{"error":{{"code":"internal_error","message":"{e}","details":{{}}}}}}"#)
    });
    body.push('\n');
    SimulationOutcome { accepted, body }
}

/// Simulates a raw request against the newest published version of its scheme.
pub async fn simulate_bytes<C: ConnectionTrait>(
    db: &C,
    input: &[u8],
) -> Result<SimulationOutcome, DbErr> {
    let request: Value = match serde_json::from_slice(input) {
        Ok(v) => v,
        Err(e) => {
            let error =
                SimulationError::invalid_request("", format!("the request is not valid JSON: {e}"));
            return Ok(render(false, &error));
        }
    };
    let published = match request.get("scheme").and_then(Value::as_str) {
        Some(code) => scheme::latest(db, code).await?,
        None => None,
    };
    let result = engine::simulate(&request, |code| {
        published
            .as_ref()
            .filter(|p| p.definition.code == code)
            .map(|p| (&p.definition, p.version))
    });
    Ok(match result {
        Ok(response) => render(true, &response),
        Err(error) => render(false, &error),
    })
}

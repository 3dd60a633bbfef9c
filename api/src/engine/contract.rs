//! The simulation contract (`simulate.md`): request parsing in the contract's validation order,
//! the response, and the error body. The same JSON serves `POST /api/v1/simulations` and
//! `huzhu simulate FILE`.

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize, Serializer};
use serde_json::{Map, Value, json};
use utoipa::ToSchema;

use super::model::{Cause, Component, Event, EventKind, MemberPeriod, Refusal};
use super::period::judge_in_filing_order;
use super::scheme::SchemeDefinition;
use crate::domain::money::contract_amount;

/// Disease codes the contract knows (the 13 women's diseases of nm-xinkang and wj's
/// `critical_illness`). A scheme's own `diagnosis.covered` codes are known for that scheme too
/// (so an administrator can complete hy-2021 with its men's and women's cancers).
pub const KNOWN_DISEASES: &[&str] = &[
    "breast_cancer",
    "cervical_cancer_or_hysterectomy",
    "fallopian_tube_cancer",
    "endometrial_cancer",
    "choriocarcinoma",
    "vulvar_cancer",
    "vaginal_cancer",
    "uterine_sarcoma",
    "ovarian_cancer_or_oophorectomy",
    "borderline_ovarian_tumour",
    "invasive_mole",
    "genital_melanoma",
    "ductal_papilloma_mastectomy",
    "critical_illness",
];

/// A simulation request, as documented in OpenAPI. ([`super::simulate`] parses the raw JSON
/// itself, to report the exact field of an error.)
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"scheme": "nm-inpatient-2025", "member": {"coverage_start": "2025-01-01", "coverage_end": "2025-12-31", "consecutive_periods": 2, "continuous_renewal": true}, "events": [{"kind": "inpatient", "admitted_on": "2025-03-01", "discharged_on": "2025-03-11", "billed_days": 10, "eligible_self_pay": "12000.00", "deductible": "800.00"}]}))]
pub struct SimulationRequest {
    /// Scheme code, e.g. `nm-inpatient-2022`.
    pub scheme: String,
    /// The coverage period being simulated.
    pub member: MemberPeriod,
    /// Events in the order the claims are filed within the period.
    pub events: Vec<Event>,
}

/// The result of one event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct EventResult {
    /// Position of the event in the request.
    pub index: usize,
    /// Sum of the items (`"0.00"` when refused).
    #[schema(value_type = String, example = "6900.00")]
    #[serde(serialize_with = "contract_amount::serialize")]
    pub payable: Decimal,
    /// The refusal, or `null`.
    pub refused: Option<Refusal>,
    /// Payout components (empty when refused).
    pub items: Vec<Component>,
}

/// A simulation response (HTTP 200 / CLI exit 0).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
#[schema(example = json!({"scheme": "nm-inpatient-2025", "scheme_version": 1, "results": [{"index": 0, "payable": "6800.00", "refused": null, "items": [{"code": "banded", "amount": "6600.00"}, {"code": "daily_allowance", "amount": "200.00"}]}], "period_total": "6800.00"}))]
pub struct SimulationResponse {
    /// Scheme code.
    pub scheme: String,
    /// Published version number used.
    pub scheme_version: i32,
    /// One result per event, same order.
    pub results: Vec<EventResult>,
    /// Sum of all `payable`.
    #[schema(value_type = String, example = "6900.00")]
    #[serde(serialize_with = "contract_amount::serialize")]
    pub period_total: Decimal,
}

/// Error codes of a refused request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// No published scheme has this code.
    UnknownScheme,
    /// The scheme's published version lacks parameters (`details.missing`).
    SchemeIncomplete,
    /// The request is malformed (`details.field`).
    InvalidRequest,
}

impl ErrorCode {
    /// The contract's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::UnknownScheme => "unknown_scheme",
            Self::SchemeIncomplete => "scheme_incomplete",
            Self::InvalidRequest => "invalid_request",
        }
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refused request (HTTP 422 / CLI exit 2). Serialises as the contract's body
/// `{"error": {"code", "message", "details"}}`.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct SimulationError {
    /// `unknown_scheme`, `scheme_incomplete` or `invalid_request`.
    pub code: ErrorCode,
    /// English message.
    pub message: String,
    /// `{"missing": [...]}`, `{"field": "events[1].eligible_self_pay"}`, `{"scheme": "..."}`.
    pub details: Value,
}

impl SimulationError {
    /// No published scheme has `code`.
    pub fn unknown_scheme(code: &str) -> Self {
        Self {
            code: ErrorCode::UnknownScheme,
            message: format!("no published scheme has the code `{code}`"),
            details: json!({ "scheme": code }),
        }
    }

    /// The scheme's published version lacks `missing`.
    pub fn scheme_incomplete(code: &str, missing: &[String]) -> Self {
        Self {
            code: ErrorCode::SchemeIncomplete,
            message: format!(
                "scheme `{code}` is incomplete: its published version lacks parameters, so nothing can be computed until a complete version is published"
            ),
            details: json!({ "missing": missing }),
        }
    }

    /// The request is malformed at `field`.
    pub fn invalid_request(field: impl Into<String>, message: impl Into<String>) -> Self {
        let field = field.into();
        let message = message.into();
        Self {
            code: ErrorCode::InvalidRequest,
            message: if field.is_empty() {
                message
            } else {
                format!("{field}: {message}")
            },
            details: json!({ "field": field }),
        }
    }

    /// The contract's body, as a JSON value.
    pub fn body(&self) -> Value {
        json!({ "error": { "code": self.code, "message": self.message, "details": self.details } })
    }
}

impl Serialize for SimulationError {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Payload<'a> {
            code: ErrorCode,
            message: &'a str,
            details: &'a Value,
        }
        #[derive(Serialize)]
        struct Body<'a> {
            error: Payload<'a>,
        }
        Body {
            error: Payload {
                code: self.code,
                message: &self.message,
                details: &self.details,
            },
        }
        .serialize(s)
    }
}

/// The error body, for OpenAPI.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SimulationErrorBody {
    /// The error.
    pub error: SimulationErrorPayload,
}

/// The error inside the body, for OpenAPI.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct SimulationErrorPayload {
    /// Error code.
    pub code: ErrorCode,
    /// English message.
    pub message: String,
    /// `{"missing": [...]}` or `{"field": "..."}`.
    #[schema(value_type = Object)]
    pub details: Value,
}

const ROOT_FIELDS: &[&str] = &["scheme", "member", "events"];
const MEMBER_FIELDS: &[&str] = &[
    "coverage_start",
    "coverage_end",
    "consecutive_periods",
    "continuous_renewal",
];
const MEMBER_REQUIRED: &[&str] = &["coverage_start", "coverage_end"];

fn kind_fields(kind: EventKind) -> (&'static [&'static str], &'static [&'static str]) {
    match kind {
        EventKind::Inpatient => (
            &[
                "kind",
                "admitted_on",
                "discharged_on",
                "billed_days",
                "cause",
                "eligible_self_pay",
                "personal_burden",
                "out_of_pocket",
                "deductible",
                "settled_by_insurance",
                "unsettled_cost",
                "own_liability_cost",
            ],
            &["admitted_on", "discharged_on"],
        ),
        EventKind::OutpatientSpecial => (
            &["kind", "month", "eligible_self_pay"],
            &["month", "eligible_self_pay"],
        ),
        EventKind::Diagnosis => (
            &[
                "kind",
                "diagnosed_on",
                "disease",
                "in_situ",
                "pre_existing",
                "recognised_institution",
            ],
            &["diagnosed_on", "disease"],
        ),
        EventKind::WorkInjury => (
            &["kind", "appraised_on", "grade"],
            &["appraised_on", "grade"],
        ),
    }
}

fn join(prefix: &str, field: &str) -> String {
    if prefix.is_empty() {
        field.to_owned()
    } else {
        format!("{prefix}.{field}")
    }
}

/// Checks an object's keys: unknown ones and missing required ones are `invalid_request`.
fn check_keys(
    obj: &Map<String, Value>,
    prefix: &str,
    allowed: &[&str],
    required: &[&str],
) -> Result<(), SimulationError> {
    if let Some(unknown) = obj.keys().find(|k| !allowed.contains(&k.as_str())) {
        return Err(SimulationError::invalid_request(
            join(prefix, unknown),
            "unknown field",
        ));
    }
    if let Some(missing) = required.iter().find(|k| !obj.contains_key(**k)) {
        return Err(SimulationError::invalid_request(
            join(prefix, missing),
            "missing field",
        ));
    }
    Ok(())
}

/// Deserialises `value` into `T`, reporting the failing field as `prefix.field`.
fn typed<T: serde::de::DeserializeOwned>(
    value: &Value,
    prefix: &str,
) -> Result<T, SimulationError> {
    serde_path_to_error::deserialize::<_, T>(value).map_err(|e| {
        let mut field = prefix.to_owned();
        for seg in e.path().iter() {
            match seg {
                serde_path_to_error::Segment::Seq { index } => {
                    field.push_str(&format!("[{index}]"))
                }
                serde_path_to_error::Segment::Map { key } => field = join(&field, key),
                serde_path_to_error::Segment::Enum { .. }
                | serde_path_to_error::Segment::Unknown => {}
            }
        }
        SimulationError::invalid_request(field, e.inner().to_string())
    })
}

/// The amount field a scheme needs from an event that lacks it, if any. Only events of kinds the
/// scheme judges need anything; `deductible` (missing is 0) and `billed_days` (missing is the
/// stay's own day count) are never required.
pub fn missing_scheme_field(scheme: &SchemeDefinition, event: &Event) -> Option<&'static str> {
    if !scheme.accepts(event.kind()) {
        return None;
    }
    match event {
        Event::Inpatient(stay) => {
            let rules = scheme.inpatient.as_ref()?;
            let (name, value) = if rules.counted_amount.is_some() && !stay.settled_by_insurance {
                if stay.cause == Cause::TrafficAccident {
                    ("own_liability_cost", stay.own_liability_cost)
                } else {
                    ("unsettled_cost", stay.unsettled_cost)
                }
            } else {
                let name = rules.amount_field.field_name();
                let value = match rules.amount_field {
                    super::scheme::AmountField::EligibleSelfPay => stay.eligible_self_pay,
                    super::scheme::AmountField::PersonalBurden => stay.personal_burden,
                    super::scheme::AmountField::OutOfPocket => stay.out_of_pocket,
                };
                (name, value)
            };
            value.is_none().then_some(name)
        }
        Event::OutpatientSpecial(_) | Event::Diagnosis(_) | Event::WorkInjury(_) => None,
    }
}

fn parse_event(
    value: &Value,
    index: usize,
    scheme: &SchemeDefinition,
) -> Result<Event, SimulationError> {
    parse_event_at(value, format!("events[{index}]"), scheme)
}

/// Parses and validates one event (a claim's facts) as the contract does, with `field` as the
/// path prefix of every error (e.g. `event` → `event.admitted_on`).
pub fn parse_event_at(
    value: &Value,
    prefix: String,
    scheme: &SchemeDefinition,
) -> Result<Event, SimulationError> {
    let Some(obj) = value.as_object() else {
        return Err(SimulationError::invalid_request(
            prefix,
            "an event must be an object",
        ));
    };
    let kind = match obj.get("kind") {
        None => {
            return Err(SimulationError::invalid_request(
                join(&prefix, "kind"),
                "missing field",
            ));
        }
        Some(Value::String(k)) => EventKind::parse(k).ok_or_else(|| {
            SimulationError::invalid_request(
                join(&prefix, "kind"),
                format!("unknown event kind `{k}`"),
            )
        })?,
        Some(_) => {
            return Err(SimulationError::invalid_request(
                join(&prefix, "kind"),
                "the kind must be a string",
            ));
        }
    };
    let (allowed, required) = kind_fields(kind);
    check_keys(obj, &prefix, allowed, required)?;
    let mut fields = obj.clone();
    fields.remove("kind");
    let fields = Value::Object(fields);
    let event = match kind {
        EventKind::Inpatient => Event::Inpatient(typed(&fields, &prefix)?),
        EventKind::OutpatientSpecial => Event::OutpatientSpecial(typed(&fields, &prefix)?),
        EventKind::Diagnosis => Event::Diagnosis(typed(&fields, &prefix)?),
        EventKind::WorkInjury => Event::WorkInjury(typed(&fields, &prefix)?),
    };
    match &event {
        Event::Inpatient(stay) if stay.discharged_on < stay.admitted_on => {
            return Err(SimulationError::invalid_request(
                join(&prefix, "discharged_on"),
                "discharge is before admission",
            ));
        }
        Event::Diagnosis(d) => {
            let scheme_knows = scheme
                .diagnosis
                .as_ref()
                .is_some_and(|r| r.covered.contains(&d.disease));
            if !scheme_knows && !KNOWN_DISEASES.contains(&d.disease.as_str()) {
                return Err(SimulationError::invalid_request(
                    join(&prefix, "disease"),
                    format!("unknown disease code `{}`", d.disease),
                ));
            }
        }
        _ => {}
    }
    if let Some(field) = missing_scheme_field(scheme, &event) {
        return Err(SimulationError::invalid_request(
            join(&prefix, field),
            format!("missing amount: scheme `{}` needs `{field}`", scheme.code),
        ));
    }
    Ok(event)
}

/// Parses and validates the rest of a request once its scheme is known. Validation stops at the
/// first problem, in document order: unknown top-level fields, `member`, then each event.
pub fn parse_request(
    request: &Value,
    scheme: &SchemeDefinition,
) -> Result<SimulationRequest, SimulationError> {
    let Some(root) = request.as_object() else {
        return Err(SimulationError::invalid_request(
            "",
            "the request must be a JSON object",
        ));
    };
    check_keys(root, "", ROOT_FIELDS, ROOT_FIELDS)?;
    let scheme_code = match root.get("scheme") {
        Some(Value::String(s)) => s.clone(),
        _ => {
            return Err(SimulationError::invalid_request(
                "scheme",
                "the scheme must be a string",
            ));
        }
    };
    let member_value = root.get("member").unwrap_or(&Value::Null);
    let Some(member_obj) = member_value.as_object() else {
        return Err(SimulationError::invalid_request(
            "member",
            "the member must be an object",
        ));
    };
    check_keys(member_obj, "member", MEMBER_FIELDS, MEMBER_REQUIRED)?;
    let member: MemberPeriod = typed(member_value, "member")?;
    if member.coverage_end < member.coverage_start {
        return Err(SimulationError::invalid_request(
            "member.coverage_end",
            "coverage ends before it starts",
        ));
    }
    if member.consecutive_periods == 0 {
        return Err(SimulationError::invalid_request(
            "member.consecutive_periods",
            "consecutive periods start at 1",
        ));
    }
    let Some(raw_events) = root.get("events").and_then(Value::as_array) else {
        return Err(SimulationError::invalid_request(
            "events",
            "the events must be an array",
        ));
    };
    let events = raw_events
        .iter()
        .enumerate()
        .map(|(i, v)| parse_event(v, i, scheme))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(SimulationRequest {
        scheme: scheme_code,
        member,
        events,
    })
}

/// Judges a parsed request's events in order, each knowing the ones before it.
pub fn run(
    scheme: &SchemeDefinition,
    version: i32,
    request: SimulationRequest,
) -> SimulationResponse {
    let judgements = judge_in_filing_order(scheme, &request.member, &request.events);
    let mut period_total = Decimal::ZERO;
    let results = judgements
        .into_iter()
        .enumerate()
        .map(|(index, judgement)| {
            let payable = judgement.payable();
            period_total += payable;
            EventResult {
                index,
                payable,
                refused: judgement.refused,
                items: judgement.items,
            }
        })
        .collect();
    SimulationResponse {
        scheme: scheme.code.clone(),
        scheme_version: version,
        results,
        period_total,
    }
}

/// Parses and validates a raw request in the contract's order (`unknown_scheme` →
/// `scheme_incomplete` → `invalid_request`), then judges every event.
/// `lookup(code)` returns the published scheme definition and its version number, or `None`.
pub fn simulate<'a>(
    request: &Value,
    lookup: impl Fn(&str) -> Option<(&'a SchemeDefinition, i32)>,
) -> Result<SimulationResponse, SimulationError> {
    let code = match request.as_object().map(|o| o.get("scheme")) {
        None => {
            return Err(SimulationError::invalid_request(
                "",
                "the request must be a JSON object",
            ));
        }
        Some(None) => return Err(SimulationError::invalid_request("scheme", "missing field")),
        Some(Some(Value::String(code))) => code.as_str(),
        Some(Some(_)) => {
            return Err(SimulationError::invalid_request(
                "scheme",
                "the scheme must be a string",
            ));
        }
    };
    let Some((scheme, version)) = lookup(code) else {
        return Err(SimulationError::unknown_scheme(code));
    };
    if !scheme.is_complete() {
        return Err(SimulationError::scheme_incomplete(
            &scheme.code,
            scheme.missing_parameters(),
        ));
    }
    let parsed = parse_request(request, scheme)?;
    Ok(run(scheme, version, parsed))
}

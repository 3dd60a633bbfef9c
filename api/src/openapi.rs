//! The OpenAPI document, generated from the handlers (each carries `#[utoipa::path]`). The
//! committed copy `miniapp-contract/openapi.json` is checked against it by a test.

use serde_json::json;
use utoipa::openapi::path::{Operation, ParameterIn};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, HeaderBuilder, Ref, RefOr, Response, Type};
use utoipa::{Modify, OpenApi};

use crate::error::ErrorBody;
use crate::settings::Mode;

/// Document-level information; paths and schemas are collected from the routes.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Huzhu API",
        description = "Backend of the WeChat mini-program for trade unions' workers' medical mutual-aid schemes (职工医疗互助保障). Every error answers `{\"error\":{\"code\",\"message\",\"details\"}}` — the framework's own refusals too: 404 `not_found` for an unknown route, 405 `method_not_allowed` for a wrong method, 413 `payload_too_large` for a body over the cap, 431 `headers_too_large` for request headers over 16 KiB or 64 headers, 400 `bad_request` for an unreadable request, 408 `request_timeout` for a request head not received within 5 s (the connection is closed after those two and after a 431). 503 `service_unavailable` (with `Retry-After`) when the database is unreachable. Money is a string with two decimals.",
        license(name = "Apache-2.0")
    ),
    modifiers(&BearerAuth),
    components(schemas(ErrorBody)),
    tags(
        (name = "health", description = "liveness and readiness"),
        (name = "auth", description = "signing in"),
        (name = "me", description = "the signed-in account"),
        (name = "organisations", description = "the organisation tree"),
        (name = "staff", description = "staff accounts and invitations"),
        (name = "members", description = "members"),
        (name = "memberships", description = "coverage periods and free extension"),
        (name = "enrolments", description = "group enrolment: rosters, transfers, confirmation"),
        (name = "targets", description = "enrolment targets, completion and renewal rates"),
        (name = "exports", description = "spreadsheets: ledger, yearly summary, progress, claim figures, roster template"),
        (name = "schemes", description = "the schemes and their published versions"),
        (name = "simulations", description = "benefit simulation (补助测算)"),
        (name = "authorisations", description = "payment authorisations (付款授权书): the text, signing, revoking"),
        (name = "deductions", description = "monthly bank deductions (银行代扣): batches, files, results"),
        (name = "claims", description = "claims (申领): filing with photos, review queues, return, approval, rejection"),
        (name = "claim-figures", description = "claim figures (申领给付统计): filed, refused, paid, people helped, amounts, days to pay"),
        (name = "payouts", description = "claim payouts (拨付): batches, the bank's file, results"),
        (name = "reminders", description = "reminders (短信提醒): the send log, resending, templates"),
        (name = "settlements", description = "benefits without application (免申即享): the medical-insurance bureau's settlement file, matched to members"),
    )
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some("Our token from `POST /api/v1/auth/wechat`"))
                    .build(),
            ),
        );
    }
}

/// The complete document as served in demo mode (which documents `dev-login` too); this is
/// the committed one.
pub fn document() -> utoipa::openapi::OpenApi {
    document_for(Mode::Demo)
}

/// The document as a server in `mode` serves it.
pub fn document_for(mode: Mode) -> utoipa::openapi::OpenApi {
    let (_, mut api) = crate::startup::mount(
        utoipa_actix_web::AppExt::into_utoipa_app(actix_web::App::new()),
        mode,
    )
    .split_for_parts();
    // The paths only exist once the routes are mounted, so this runs here rather than as one
    // of `ApiDoc`'s modifiers.
    CommonResponses.modify(&mut api);
    TaggedVariants.modify(&mut api);
    api
}

/// An internally tagged enum (`#[serde(tag = "kind")]`, e.g. `Event`) whose variants are
/// structs with `deny_unknown_fields` comes out as `oneOf: [allOf: [$ref Stay, {kind}]]` with
/// `additionalProperties: false` on `Stay` — a schema nothing can satisfy, since `kind` is not
/// among `Stay`'s own properties. serde removes the tag before the struct sees the object, so
/// the server accepts `{"kind":"inpatient",…}`; the variant structs' schemas drop
/// `additionalProperties: false` so the document says the same.
struct TaggedVariants;

impl Modify for TaggedVariants {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::schema::Schema;
        let Some(components) = openapi.components.as_mut() else {
            return;
        };
        let mut variants = Vec::new();
        for schema in components.schemas.values() {
            let RefOr::T(Schema::OneOf(one_of)) = schema else {
                continue;
            };
            for item in &one_of.items {
                if let RefOr::T(Schema::AllOf(all_of)) = item
                    && let Some(RefOr::Ref(variant)) = all_of.items.first()
                    && let Some(name) = variant.ref_location.rsplit('/').next()
                {
                    variants.push(name.to_owned());
                }
            }
        }
        for name in variants {
            if let Some(RefOr::T(Schema::Object(object))) = components.schemas.get_mut(&name) {
                object.additional_properties = None;
            }
        }
    }
}

/// The answers every operation can give whatever its handler does — a refused token, an
/// unreadable body, a bad query or path, an internal error — documented on each operation
/// with their codes, an example body for every error, and the `x-request-id` header on every
/// response. What a handler documents itself is kept; only missing pieces are filled in.
struct CommonResponses;

impl CommonResponses {
    /// The description of a status when the handler gave none: its codes first.
    fn default_description(status: &str) -> &'static str {
        match status {
            "200" => "OK",
            "201" => "Created",
            "202" => "Accepted: the work goes on in the background",
            "204" => "Done; no body",
            "400" => {
                "`bad_request`: the body could not be read (malformed JSON or form, wrong content type)"
            }
            "401" => {
                "`token_expired`: sign in again with a fresh `wx.login` code; also `unauthenticated` (no token), `invalid_token` and `token_revoked` (the account was disabled or signed out everywhere: sign in again)"
            }
            "403" => "`forbidden`: the caller's role may not do this",
            "404" => "`not_found`: nothing there, or nothing the caller may see",
            "409" => "`conflict`: the request conflicts with the current state",
            "413" => "`payload_too_large`: the body is larger than allowed (details.limit_bytes)",
            "422" => "`invalid_request`: a value is invalid (details.field names it)",
            "429" => "too many requests; try again shortly",
            "500" => {
                "`internal_error`: an unexpected failure, logged under the response's `x-request-id`"
            }
            "502" => "an outside service (WeChat) answered with an error",
            "503" => {
                "`service_unavailable`: the database (or another dependency) is unreachable; try again after `Retry-After` seconds"
            }
            _ => "",
        }
    }

    fn error_response(status: &str) -> Response {
        let mut response = Response::new(Self::default_description(status));
        response.content.insert(
            "application/json".into(),
            RefOr::T(
                ContentBuilder::new()
                    .schema(Some(Ref::from_schema_name("ErrorBody")))
                    .build(),
            ),
        );
        response
    }

    fn operation(operation: &mut Operation) {
        let secured = operation.security.as_ref().is_some_and(|s| !s.is_empty());
        let has_body = operation.request_body.is_some();
        let parameters = operation.parameters.iter().flatten();
        let (mut has_query, mut has_path) = (false, false);
        for parameter in parameters {
            if let RefOr::T(parameter) = parameter {
                has_query |= parameter.parameter_in == ParameterIn::Query;
                has_path |= parameter.parameter_in == ParameterIn::Path;
            }
        }
        let mut wanted = vec!["500"];
        // Any operation but liveness may meet a database outage.
        if operation.operation_id.as_deref() != Some("healthz") {
            wanted.push("503");
        }
        if secured {
            wanted.push("401");
        }
        if has_body {
            wanted.extend(["400", "413", "422"]);
        }
        if has_query {
            wanted.push("422");
        }
        if has_path {
            wanted.push("404");
        }
        let responses = &mut operation.responses.responses;
        for status in wanted {
            if !responses.contains_key(status) {
                responses.insert(status.to_owned(), RefOr::T(Self::error_response(status)));
            }
        }
        for (status, response) in responses.iter_mut() {
            let RefOr::T(response) = response else {
                continue;
            };
            if response.description.is_empty() {
                Self::default_description(status).clone_into(&mut response.description);
            }
            response.headers.insert(
                "x-request-id".into(),
                RefOr::Ref(Ref::new("#/components/headers/RequestId")),
            );
            if !status.starts_with(['4', '5']) {
                continue;
            }
            // An example error body with the first code the description names.
            let first_code = |description: &str| {
                description
                    .split('`')
                    .nth(1)
                    .filter(|code| code.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
                    .map(str::to_owned)
            };
            let code = first_code(&response.description)
                .or_else(|| first_code(Self::default_description(status)))
                .unwrap_or_else(|| "error".to_owned());
            let message = response
                .description
                .split_once(':')
                .map_or(response.description.as_str(), |(_, rest)| rest)
                .trim()
                .to_owned();
            for content in response.content.values_mut() {
                if let RefOr::T(content) = content
                    && content.example.is_none()
                {
                    content.example = Some(json!({
                        "error": { "code": code, "message": message, "details": {} }
                    }));
                }
            }
        }
    }
}

impl Modify for CommonResponses {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        openapi
            .components
            .get_or_insert_with(Default::default)
            .headers
            .insert(
                "RequestId".into(),
                RefOr::T(
                    HeaderBuilder::new()
                        .schema(Some(utoipa::openapi::Object::with_type(Type::String)))
                        .description(Some("The id of this request, on every log line of it"))
                        .build(),
                ),
            );
        for item in openapi.paths.paths.values_mut() {
            for operation in [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
                &mut item.patch,
            ]
            .into_iter()
            .flatten()
            {
                Self::operation(operation);
            }
        }
    }
}

/// The committed document: pretty JSON with a final newline.
pub fn document_json() -> String {
    document_json_for(Mode::Demo)
}

/// The document of `mode` as pretty JSON with a final newline.
pub fn document_json_for(mode: Mode) -> String {
    let mut text = document_for(mode)
        .to_pretty_json()
        .unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"));
    text.push('\n');
    text
}

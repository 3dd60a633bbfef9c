//! The OpenAPI document, generated from the handlers (each carries `#[utoipa::path]`). The
//! committed copy `miniapp-contract/openapi.json` is checked against it by a test.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::error::ErrorBody;
use crate::settings::Mode;

/// Document-level information; paths and schemas are collected from the routes.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Huzhu API",
        description = "Backend of the WeChat mini-program for trade unions' workers' medical mutual-aid schemes (职工医疗互助保障). Every error answers `{\"error\":{\"code\",\"message\",\"details\"}}`. Money is a string with two decimals.",
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
        (name = "claim-figures", description = "claim figures (申领给付统计): filed, refused, paid, people helped, amounts, days to pay"),
        (name = "payouts", description = "claim payouts (拨付): batches, the bank's file, results"),
        (name = "reminders", description = "reminders (短信提醒): the send log, resending, templates"),
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
    let (_, api) = crate::startup::mount(
        utoipa_actix_web::AppExt::into_utoipa_app(actix_web::App::new()),
        mode,
    )
    .split_for_parts();
    api
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

//! Reminders for the association: the send log with statuses and receipts, resending a failed
//! message, and the SMS templates per occasion.

use actix_web::web::Bytes;
use actix_web::{HttpResponse, get, post, put, web};
use serde::Deserialize;
use serde_json::json;
use tracing_actix_web::RequestId;
use utoipa::{IntoParams, ToSchema};
use utoipa_actix_web::service_config::ServiceConfig;
use validator::Validate;

use super::{requester, validated};
use crate::auth::Principal;
use crate::domain::Role;
use crate::error::{ApiError, ErrorBody};
use crate::service::page::{Page, PageQuery};
use crate::service::reminders::messages::{
    self, Message, MessageFilter, ReceiptCallbackError, ResendError,
};
use crate::service::reminders::templates::{self, Template, TemplateError, WeChatTemplate};
use crate::state::AppState;

pub fn configure(cfg: &mut ServiceConfig) {
    cfg.service(list)
        .service(get_one)
        .service(resend)
        .service(list_templates)
        .service(update_template)
        .service(preview)
        .service(receipts);
}

/// Who reads the send log: the association's officers and administrators.
const LOG_ROLES: &[Role] = &[Role::AssociationReviewer, Role::Admin];

/// `GET /messages` filters.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MessageQuery {
    /// pending, waiting_template, sending, uncertain, accepted, delivered, undelivered, failed.
    pub status: Option<String>,
    /// e.g. `renewal_due_30`.
    pub occasion: Option<String>,
    /// Public id of a member.
    pub member: Option<String>,
    pub cursor: Option<String>,
    pub limit: Option<u64>,
}

/// The send log, newest first, within the caller's subtree.
#[utoipa::path(
    operation_id = "listMessages",
    tag = "reminders",
    security(("bearer" = [])),
    params(MessageQuery),
    responses(
        (status = 200, body = Page<Message>),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 422, description = "`invalid_request` (cursor, limit)", body = ErrorBody),
    )
)]
#[get("/messages")]
pub async fn list(
    state: web::Data<AppState>,
    principal: Principal,
    query: web::Query<MessageQuery>,
) -> Result<web::Json<Page<Message>>, ApiError> {
    principal.require(LOG_ROLES)?;
    let q = query.into_inner();
    let page = PageQuery {
        cursor: q.cursor.clone(),
        limit: q.limit,
    };
    let filter = MessageFilter {
        status: q.status,
        occasion: q.occasion,
        member_pid: q.member,
    };
    Ok(web::Json(
        messages::list(
            &state.db,
            &principal.scope,
            &filter,
            page.after_id()?,
            page.limit()?,
        )
        .await?,
    ))
}

/// One message.
#[utoipa::path(
    operation_id = "getMessage",
    tag = "reminders",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "message id, e.g. hz1024")),
    responses(
        (status = 200, body = Message),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
    )
)]
#[get("/messages/{id}")]
pub async fn get_one(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<String>,
) -> Result<web::Json<Message>, ApiError> {
    principal.require(LOG_ROLES)?;
    messages::get(&state.db, &principal.scope, &id)
        .await?
        .map(web::Json)
        .ok_or(ApiError::NotFound)
}

/// Sends a failed or undelivered message again (audited).
#[utoipa::path(
    operation_id = "resendMessage",
    tag = "reminders",
    security(("bearer" = [])),
    params(("id" = String, Path, description = "message id")),
    responses(
        (status = 200, body = Message),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 409, description = "`not_failed`: only failed or undelivered messages are sent again", body = ErrorBody),
    )
)]
#[post("/messages/{id}/resend")]
pub async fn resend(
    state: web::Data<AppState>,
    principal: Principal,
    id: web::Path<String>,
    request_id: RequestId,
) -> Result<web::Json<Message>, ApiError> {
    principal.require(LOG_ROLES)?;
    messages::resend(&state.db, &requester(&principal, &request_id), &id)
        .await
        .map(web::Json)
        .map_err(|e| match e {
            ResendError::NotFound => ApiError::NotFound,
            ResendError::NotFailed(status) => ApiError::Conflict {
                code: "not_failed",
                message: format!(
                    "只能重发失败或未送达的短信（当前：{status}）/ only failed or undelivered messages are sent again"
                ),
                details: json!({ "status": status }),
            },
            ResendError::Db(e) => e.into(),
        })
}

/// The SMS templates, one per occasion.
#[utoipa::path(
    operation_id = "listSmsTemplates",
    tag = "reminders",
    security(("bearer" = [])),
    responses(
        (status = 200, body = Vec<Template>),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
    )
)]
#[get("/sms-templates")]
pub async fn list_templates(
    state: web::Data<AppState>,
    principal: Principal,
) -> Result<web::Json<Vec<Template>>, ApiError> {
    principal.require(LOG_ROLES)?;
    Ok(web::Json(templates::all(&state.db).await?))
}

/// `PUT /sms-templates/{occasion}`.
#[derive(Debug, Deserialize, ToSchema, Validate)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"tencent_template_id": "1234567", "aliyun_template_code": "SMS_123456789", "body_zh": "您的互助补助{amount}元已到账，请查收。", "params": ["amount"]}))]
pub struct TemplateUpdate {
    #[validate(length(max = 64))]
    pub tencent_template_id: Option<String>,
    #[validate(length(max = 64))]
    pub aliyun_template_code: Option<String>,
    /// The approved wording with `{name}` placeholders.
    #[validate(length(min = 1, max = 300))]
    pub body_zh: String,
    /// The placeholders in template order; each must appear in the wording.
    pub params: Vec<String>,
    /// The occasion's WeChat subscribe message (tried before SMS when
    /// `reminders.wechat_subscribe` is on); absent or null: SMS only.
    #[serde(default)]
    pub wechat: Option<WeChatTemplate>,
}

/// Sets an occasion's template (administrators), after registering it with the provider.
#[utoipa::path(
    operation_id = "updateSmsTemplate",
    tag = "reminders",
    security(("bearer" = [])),
    params(("occasion" = String, Path, description = "e.g. payout_sent")),
    request_body = TemplateUpdate,
    responses(
        (status = 200, body = Template),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
        (status = 404, body = ErrorBody),
        (status = 422, description = "`invalid_request`, `param_not_in_body`, `wechat_keyword_invalid`", body = ErrorBody),
    )
)]
#[put("/sms-templates/{occasion}")]
pub async fn update_template(
    state: web::Data<AppState>,
    principal: Principal,
    occasion: web::Path<String>,
    body: web::Json<TemplateUpdate>,
    request_id: RequestId,
) -> Result<HttpResponse, ApiError> {
    principal.require(&[Role::Admin])?;
    let body = validated(body.into_inner())?;
    let template = Template {
        wechat: body.wechat,
        occasion: occasion.into_inner(),
        tencent_template_id: body.tencent_template_id.filter(|s| !s.trim().is_empty()),
        aliyun_template_code: body.aliyun_template_code.filter(|s| !s.trim().is_empty()),
        body_zh: body.body_zh,
        params: body.params,
    };
    templates::change(&state.db, &requester(&principal, &request_id), &template)
        .await
        .map_err(|e| match e {
            TemplateError::NotFound => ApiError::NotFound,
            TemplateError::Refused(problem) => problem.into(),
            TemplateError::Db(e) => e.into(),
        })?;
    Ok(HttpResponse::Ok().json(template))
}

/// Delivery receipts the SMS provider posts (configure this URL, with `sms.receipt_secret` as
/// the last segment, in the provider's console). Each report is stored on its message; the
/// answer is the one the provider expects. A wrong secret is not found.
#[utoipa::path(
    tag = "reminders",
    params(
        ("provider" = String, Path, description = "`tencent` or `aliyun`"),
        ("secret" = String, Path, description = "`sms.receipt_secret`"),
    ),
    request_body(content = String, content_type = "application/json", description = "the provider's JSON array of reports"),
    responses(
        (status = 200, description = "the provider's acknowledgement (`{\"result\":0,\"errmsg\":\"OK\"}` or `{\"code\":0,\"msg\":\"接收成功\"}`)"),
        (status = 400, description = "unreadable reports", body = ErrorBody),
        (status = 404, body = ErrorBody),
    )
)]
#[post("/sms/receipts/{provider}/{secret}")]
pub async fn receipts(
    state: web::Data<AppState>,
    path: web::Path<(String, String)>,
    body: Bytes,
) -> Result<HttpResponse, ApiError> {
    let (provider, secret) = path.into_inner();
    let answer = messages::take_receipts(&state.db, &state.settings.sms, &provider, &secret, &body)
        .await
        .map_err(|e| match e {
            ReceiptCallbackError::NotFound => ApiError::NotFound,
            ReceiptCallbackError::Unreadable(e) => ApiError::BadRequest {
                message: format!("回执无法读取 / unreadable receipts: {e}"),
                details: json!({}),
            },
            ReceiptCallbackError::Db(e) => e.into(),
        })?;
    Ok(HttpResponse::Ok()
        .content_type("application/json")
        .body(answer))
}

/// `GET /reminders/preview`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PreviewQuery {
    /// The day (Asia/Shanghai); default tomorrow.
    pub day: Option<chrono::NaiveDate>,
}

/// Renewal reminders a scan on `day` would queue, by occasion and scheme.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct PreviewLine {
    #[schema(example = "renewal_due_30")]
    pub occasion: String,
    #[schema(example = "nm-inpatient-2025")]
    pub scheme_code: String,
    pub messages: u64,
}

/// What the renewal scan would queue on a day (tomorrow by default): the association checks
/// the coming day's reminders before they go.
#[utoipa::path(
    tag = "reminders",
    security(("bearer" = [])),
    params(PreviewQuery),
    responses(
        (status = 200, body = Vec<PreviewLine>),
        (status = 401, body = ErrorBody),
        (status = 403, body = ErrorBody),
    )
)]
#[get("/reminders/preview")]
pub async fn preview(
    state: web::Data<AppState>,
    principal: Principal,
    query: web::Query<PreviewQuery>,
) -> Result<web::Json<Vec<PreviewLine>>, ApiError> {
    principal.require(LOG_ROLES)?;
    let day = query.day.unwrap_or_else(|| {
        let today = state.settings.today();
        today.succ_opt().unwrap_or(today)
    });
    let rows = crate::service::reminders::schedule::preview(&state.db, day).await?;
    Ok(web::Json(
        rows.into_iter()
            .map(|r| PreviewLine {
                occasion: r.occasion.as_str().to_owned(),
                scheme_code: r.scheme_code,
                messages: r.messages,
            })
            .collect(),
    ))
}

//! SMS templates per occasion: the provider's template ids, the approved wording (for previews
//! and the send log) and the parameters, filled from each message's payload; and, optionally,
//! the occasion's WeChat subscribe message, tried before SMS for members who use the
//! mini-program.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, QueryOrder,
    Set,
};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use utoipa::ToSchema;

use entity::{outbox, sms_template};

use crate::service::{Problem, Requester};

/// One occasion's template.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Template {
    /// The occasion, e.g. `payout_sent`.
    pub occasion: String,
    /// Tencent `TemplateId` (approved in the association's console).
    pub tencent_template_id: Option<String>,
    /// Aliyun `TemplateCode`.
    pub aliyun_template_code: Option<String>,
    /// The approved wording with `{name}` placeholders.
    #[schema(example = "您的互助金{amount}元已拨付至预留银行卡，请注意查收。")]
    pub body_zh: String,
    /// The placeholders in template order; each is read from the message's payload.
    pub params: Vec<String>,
    /// The WeChat subscribe message for this occasion, if the association uses that channel.
    pub wechat: Option<WeChatTemplate>,
}

/// An occasion's WeChat subscribe message (订阅消息).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"template_id": "bDmywsp2oEHjwAadTGKkUHpC0RgBVPvfAK7Cu3Y0Zzc", "page": "pages/claims/detail?id={claim}", "data": {"amount1": "{amount}元", "thing2": "已拨付至预留银行卡"}}))]
pub struct WeChatTemplate {
    /// The template id chosen in the mini-program's console.
    pub template_id: String,
    /// The page the notice opens, with `{name}` placeholders from the payload (dropped, so the
    /// notice opens the home page, when the payload lacks one).
    pub page: Option<String>,
    /// Each keyword of the template (`thing1`, `amount2`, `date3` …) and its value, with
    /// `{name}` placeholders from the payload. Values are cut to what the keyword's kind
    /// holds (`thing` 20 characters, `name` 10, `phrase` 5 …).
    pub data: BTreeMap<String, String>,
}

/// The wording shipped for each occasion; the association registers the same wording with its
/// provider and enters the template ids it is given.
pub fn defaults() -> Vec<Template> {
    let t = |occasion: &str, body: &str, params: &[&str]| Template {
        occasion: occasion.to_owned(),
        tencent_template_id: None,
        aliyun_template_code: None,
        body_zh: body.to_owned(),
        params: params.iter().map(|p| (*p).to_owned()).collect(),
        wechat: None,
    };
    vec![
        t(
            "enrolment_confirmed",
            "您已参加职工医疗互助保障，保障期{coverage_start}至{coverage_end}。",
            &["coverage_start", "coverage_end"],
        ),
        t(
            "coverage_extended",
            "您的职工医疗互助保障期已免费延长至{new_end}。",
            &["new_end"],
        ),
        // `scheme_name`: the scheme's name for a member in several schemes, else
        // 职工医疗互助保障 (filled by the dispatcher).
        t(
            "renewal_due_30",
            "您参加的{scheme_name}将于{coverage_end}到期，请及时通过单位工会续互。",
            &["scheme_name", "coverage_end"],
        ),
        t(
            "renewal_due_7",
            "您参加的{scheme_name}将于{coverage_end}到期，请及时通过单位工会续互。",
            &["scheme_name", "coverage_end"],
        ),
        t(
            "renewal_grace",
            "您参加的{scheme_name}已于{coverage_end}到期，宽限期内续互可保持连续参互。",
            &["scheme_name", "coverage_end"],
        ),
        t(
            "deduction_failed",
            "您{month}的职工医疗互助金代扣未成功，请确认银行卡余额或联系单位工会。",
            &["month"],
        ),
        t(
            "authorisation_revoked",
            "您的职工医疗互助付款授权已按您的要求由服务中心撤销，自{effective_from}起不再扣款。",
            &["effective_from"],
        ),
        t(
            "claim_returned",
            "您的职工医疗互助金申领需补充材料，请打开小程序查看。",
            &[],
        ),
        t(
            "payee_changed",
            "您的职工医疗互助金申领收款卡已由工会改为尾号{card_last4}的银行卡，如有疑问请联系单位工会。",
            &["card_last4"],
        ),
        t(
            "payout_sent",
            "您的职工医疗互助金{amount}元已拨付至预留银行卡，请注意查收。",
            &["amount"],
        ),
        t(
            "benefit_offered",
            "您{discharged_on}出院的住院可获互助金{amount}元，无需申请，请在小程序确认收款卡。",
            &["amount", "discharged_on"],
        ),
        t(
            "offer_lapsing",
            "您的住院互助金{amount}元尚未确认收款卡，{deadline}后将失效，请尽快在小程序确认。",
            &["amount", "deadline"],
        ),
    ]
}

fn to_template(m: sms_template::Model) -> Result<Template, DbErr> {
    let wechat = match m.wechat_template_id {
        Some(template_id) => Some(WeChatTemplate {
            template_id,
            page: m.wechat_page,
            data: serde_json::from_str(m.wechat_data.as_deref().unwrap_or("{}")).map_err(|_| {
                DbErr::Custom(format!("template {} has bad WeChat data", m.occasion))
            })?,
        }),
        None => None,
    };
    Ok(Template {
        wechat,
        params: serde_json::from_str(&m.params)
            .map_err(|_| DbErr::Custom(format!("template {} has bad params", m.occasion)))?,
        occasion: m.occasion,
        tencent_template_id: m.tencent_template_id,
        aliyun_template_code: m.aliyun_template_code,
        body_zh: m.body_zh,
    })
}

/// Inserts the shipped templates that are not there yet (never overwrites an edited one).
pub async fn ensure_defaults<C: ConnectionTrait>(db: &C) -> Result<(), DbErr> {
    let rows: Vec<sms_template::ActiveModel> = defaults()
        .into_iter()
        .map(|t| sms_template::ActiveModel {
            occasion: Set(t.occasion),
            tencent_template_id: Set(None),
            aliyun_template_code: Set(None),
            body_zh: Set(t.body_zh),
            params: Set(serde_json::to_string(&t.params).unwrap_or_else(|_| "[]".into())),
            updated_by: Set("system".into()),
            updated_at: Set(Utc::now()),
            wechat_template_id: Set(None),
            wechat_page: Set(None),
            wechat_data: Set(None),
        })
        .collect();
    sms_template::Entity::insert_many(rows)
        .on_conflict(
            OnConflict::column(sms_template::Column::Occasion)
                .do_nothing()
                .to_owned(),
        )
        .exec_without_returning(db)
        .await?;
    Ok(())
}

/// Every template.
pub async fn all<C: ConnectionTrait>(db: &C) -> Result<Vec<Template>, DbErr> {
    sms_template::Entity::find()
        .order_by_asc(sms_template::Column::Occasion)
        .all(db)
        .await?
        .into_iter()
        .map(to_template)
        .collect()
}

/// Why a template change was refused.
#[derive(Debug, thiserror::Error)]
pub enum TemplateError {
    /// No such occasion.
    #[error("not found")]
    NotFound,
    /// The wording, its parameters or the subscribe message cannot be used.
    #[error("{}", .0.message)]
    Refused(Problem),
    #[error(transparent)]
    Db(#[from] DbErr),
}

/// Sets an occasion's template (audited), once its parameters and subscribe message are
/// checked.
pub async fn change(
    db: &DatabaseConnection,
    requester: &Requester,
    template: &Template,
) -> Result<(), TemplateError> {
    check(template).map_err(TemplateError::Refused)?;
    let txn = crate::db::begin_write(db).await?;
    if !update(&txn, template, &requester.pid, Utc::now()).await? {
        return Err(TemplateError::NotFound);
    }
    requester.audit(&txn, "sms_template.update",
        ("sms_template", Some(&template.occasion)),
        json!({ "tencent": template.tencent_template_id, "aliyun": template.aliyun_template_code, "body": template.body_zh, "wechat": template.wechat.as_ref().map(|w| &w.template_id) })).await?;
    txn.commit().await?;
    Ok(())
}

/// Why a template cannot be used: a parameter missing from the wording, or a subscribe
/// message WeChat would refuse.
fn check(template: &Template) -> Result<(), Problem> {
    if let Some(p) = template
        .params
        .iter()
        .find(|p| !template.body_zh.contains(&format!("{{{p}}}")))
    {
        return Err(Problem::invalid_value(
            "param_not_in_body",
            "params",
            format!("参数 {p} 未出现在模板内容中 / {{{p}}} is not in the wording"),
        ));
    }
    template.wechat.as_ref().map_or(Ok(()), check_wechat)
}

/// Why a subscribe message's description cannot be used.
fn check_wechat(w: &WeChatTemplate) -> Result<(), Problem> {
    let id = w.template_id.trim();
    if id.is_empty() || id.len() > 64 {
        return Err(Problem::invalid_field(
            "wechat.template_id",
            "订阅消息模板编号须为1至64个字符 / the template id must be 1 to 64 characters",
        ));
    }
    if w.page.as_deref().is_some_and(|p| p.len() > 256) {
        return Err(Problem::invalid_field(
            "wechat.page",
            "页面路径最多256个字符 / the page is at most 256 characters",
        ));
    }
    if w.data.is_empty() || w.data.len() > 10 {
        return Err(Problem::invalid_field(
            "wechat.data",
            "订阅消息须有1至10个关键词 / a subscribe message has 1 to 10 keywords",
        ));
    }
    for (key, value) in &w.data {
        if key.len() > 32 || !is_wechat_keyword(key) {
            return Err(Problem::invalid_value(
                "wechat_keyword_invalid",
                "wechat.data",
                format!(
                    "关键词 {key} 不是微信的格式（如 thing1、amount2）/ {key} is not a WeChat keyword such as thing1 or amount2"
                ),
            ));
        }
        if value.is_empty() || value.chars().count() > 100 {
            return Err(Problem::invalid_field(
                "wechat.data",
                format!(
                    "关键词 {key} 的内容须为1至100个字符 / the value of {key} must be 1 to 100 characters"
                ),
            ));
        }
    }
    Ok(())
}

/// Replaces an occasion's template. `false` when there is no such occasion.
pub async fn update<C: ConnectionTrait>(
    db: &C,
    template: &Template,
    by: &str,
    now: DateTime<Utc>,
) -> Result<bool, DbErr> {
    let result = sms_template::Entity::update_many()
        .set(sms_template::ActiveModel {
            tencent_template_id: Set(template.tencent_template_id.clone()),
            aliyun_template_code: Set(template.aliyun_template_code.clone()),
            body_zh: Set(template.body_zh.clone()),
            params: Set(serde_json::to_string(&template.params).unwrap_or_else(|_| "[]".into())),
            updated_by: Set(by.to_owned()),
            updated_at: Set(now),
            wechat_template_id: Set(template.wechat.as_ref().map(|w| w.template_id.clone())),
            wechat_page: Set(template.wechat.as_ref().and_then(|w| w.page.clone())),
            wechat_data: Set(template
                .wechat
                .as_ref()
                .map(|w| serde_json::to_string(&w.data).unwrap_or_else(|_| "{}".into()))),
            ..Default::default()
        })
        .filter(sms_template::Column::Occasion.eq(template.occasion.as_str()))
        .exec(db)
        .await?;
    if result.rows_affected != 1 {
        return Ok(false);
    }
    // Messages held for want of a provider template id go again (held again by the dispatcher
    // if the id for the provider in use is still missing).
    outbox::Entity::update_many()
        .col_expr(outbox::Column::Status, Expr::value("pending"))
        .col_expr(outbox::Column::UpdatedAt, Expr::value(now))
        .filter(outbox::Column::Occasion.eq(template.occasion.as_str()))
        .filter(outbox::Column::Status.eq(super::dispatch::WAITING_TEMPLATE))
        .exec(db)
        .await?;
    Ok(true)
}

/// A payload value as SMS text: dates as `2025年12月31日` (or `12月31日` where variables are
/// limited to 6 characters), numbers and strings as they are.
pub fn param_text(value: &Value, short: bool) -> Option<String> {
    let text = match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    if let Ok(date) = NaiveDate::parse_from_str(&text, "%Y-%m-%d") {
        return Some(if short {
            format!("{}月{}日", date.month(), date.day())
        } else {
            format!("{}年{}月{}日", date.year(), date.month(), date.day())
        });
    }
    Some(text)
}

/// The template's parameters filled from `payload`, or the first missing name.
pub fn fill(
    template: &Template,
    payload: &Value,
    short: bool,
) -> Result<Vec<(String, String)>, String> {
    template
        .params
        .iter()
        .map(|name| {
            payload
                .get(name)
                .and_then(|v| param_text(v, short))
                .map(|v| (name.clone(), v))
                .ok_or_else(|| name.clone())
        })
        .collect()
}

/// `pattern` with each `{name}` replaced by `value(name)`, or the first name without a value.
/// A `{` that does not open a placeholder is kept as it is.
pub fn substitute(
    pattern: &str,
    mut value: impl FnMut(&str) -> Option<String>,
) -> Result<String, String> {
    let mut out = String::with_capacity(pattern.len());
    let mut rest = pattern;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after.find('}').map(|close| &after[..close]) {
            Some(name) if is_placeholder_name(name) => {
                out.push_str(&value(name).ok_or_else(|| name.to_owned())?);
                rest = &after[name.len() + 1..];
            }
            _ => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    Ok(out)
}

/// A payload field's name as placeholders use it: `claim`, `coverage_end`.
pub fn is_placeholder_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
}

/// A subscribe-message keyword as WeChat names them: its kind and a number (`thing1`,
/// `character_string12`).
pub fn is_wechat_keyword(key: &str) -> bool {
    let kind = key.trim_end_matches(|c: char| c.is_ascii_digit());
    kind.len() < key.len()
        && !kind.is_empty()
        && kind.chars().all(|c| c.is_ascii_lowercase() || c == '_')
}

/// Most characters a keyword of this kind holds (WeChat refuses longer values with 47003).
fn keyword_limit(key: &str) -> Option<usize> {
    Some(match key.trim_end_matches(|c: char| c.is_ascii_digit()) {
        "thing" => 20,
        "name" => 10,
        "phrase" | "symbol" => 5,
        "number" | "letter" | "character_string" => 32,
        "phone_number" => 17,
        "car_number" => 8,
        _ => return None,
    })
}

/// What a subscribe message carries: the page it opens and each keyword's value.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WeChatContent {
    pub page: Option<String>,
    pub data: BTreeMap<String, String>,
}

/// The subscribe message filled from `payload` (values cut to their keyword's limit), or the
/// first placeholder the payload lacks.
pub fn fill_wechat(template: &WeChatTemplate, payload: &Value) -> Result<WeChatContent, String> {
    let lookup = |name: &str| payload.get(name).and_then(|v| param_text(v, false));
    let mut data = BTreeMap::new();
    for (key, pattern) in &template.data {
        let mut value = substitute(pattern, lookup)?;
        if let Some(limit) = keyword_limit(key)
            && value.chars().count() > limit
        {
            value = value.chars().take(limit - 1).chain(['…']).collect();
        }
        data.insert(key.clone(), value);
    }
    let page = template
        .page
        .as_deref()
        .and_then(|p| substitute(p, lookup).ok());
    Ok(WeChatContent { page, data })
}

/// The message text as the member reads it (without the signature).
pub fn render(template: &Template, params: &[(String, String)]) -> String {
    let mut text = template.body_zh.clone();
    for (name, value) in params {
        text = text.replace(&format!("{{{name}}}"), value);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_default_fits_one_message_with_a_signature() {
        for t in defaults() {
            let params: Vec<(String, String)> = t
                .params
                .iter()
                .map(|p| (p.clone(), "2025年12月31日".to_owned()))
                .collect();
            let text = format!("【内蒙古职工互助】{}", render(&t, &params));
            assert!(
                text.chars().count() <= 70,
                "{}: {} chars",
                t.occasion,
                text.chars().count()
            );
        }
    }

    #[test]
    fn dates_are_written_the_chinese_way_and_short_when_asked() {
        assert_eq!(
            param_text(&json!("2025-12-31"), false).as_deref(),
            Some("2025年12月31日")
        );
        assert_eq!(
            param_text(&json!("2025-12-31"), true).as_deref(),
            Some("12月31日")
        );
        assert_eq!(
            param_text(&json!("1234.50"), true).as_deref(),
            Some("1234.50")
        );
        assert_eq!(param_text(&json!(null), true), None);
    }

    #[test]
    fn a_subscribe_message_is_filled_from_the_payload_and_cut_to_its_keywords() {
        let t = WeChatTemplate {
            template_id: "tpl".into(),
            page: Some("pages/claims/detail?id={claim}".into()),
            data: [
                ("amount1".to_owned(), "{amount}元".to_owned()),
                (
                    "thing2".to_owned(),
                    "互助金已拨付至您在工会登记的银行卡请注意查收".to_owned(),
                ),
                ("date3".to_owned(), "{paid_on}".to_owned()),
            ]
            .into_iter()
            .collect(),
        };
        let filled = fill_wechat(
            &t,
            &json!({"claim": "CL-1", "amount": "6900.00", "paid_on": "2025-06-02"}),
        )
        .expect("filled");
        assert_eq!(filled.page.as_deref(), Some("pages/claims/detail?id=CL-1"));
        assert_eq!(filled.data["amount1"], "6900.00元");
        assert_eq!(filled.data["date3"], "2025年6月2日");
        assert_eq!(filled.data["thing2"].chars().count(), 20);
        assert!(filled.data["thing2"].ends_with('…'));
        // A page placeholder the payload lacks drops the page; a keyword's is an error.
        let filled =
            fill_wechat(&t, &json!({"amount": "1", "paid_on": "2025-06-02"})).expect("filled");
        assert_eq!(filled.page, None);
        assert_eq!(
            fill_wechat(&t, &json!({"claim": "CL-1"})),
            Err("amount".into())
        );
    }

    #[test]
    fn placeholders_and_keywords_are_recognised() {
        assert_eq!(
            substitute("{a}+{b_2} {not one} {", |n| Some(n.to_uppercase())),
            Ok("A+B_2 {not one} {".to_owned())
        );
        assert!(is_wechat_keyword("thing1"));
        assert!(is_wechat_keyword("character_string12"));
        assert!(!is_wechat_keyword("thing"));
        assert!(!is_wechat_keyword("1"));
        assert!(!is_wechat_keyword("Thing1"));
    }

    #[test]
    fn a_missing_parameter_is_named() {
        let t = defaults()
            .into_iter()
            .find(|t| t.occasion == "payout_sent")
            .expect("payout");
        assert_eq!(
            fill(&t, &json!({"claim": "x"}), false),
            Err("amount".into())
        );
        let filled = fill(&t, &json!({"amount": "6900.00"}), false).expect("filled");
        assert_eq!(
            render(&t, &filled),
            "您的职工医疗互助金6900.00元已拨付至预留银行卡，请注意查收。"
        );
    }
}

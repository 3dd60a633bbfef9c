//! SMS templates per occasion: the provider's template ids, the approved wording (for previews
//! and the send log) and the parameters, filled from each message's payload.

use chrono::{DateTime, Datelike, NaiveDate, Utc};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder, Set};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use entity::sms_template;

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
        t(
            "renewal_due_30",
            "您的职工医疗互助保障将于{coverage_end}到期，请及时通过单位工会续互。",
            &["coverage_end"],
        ),
        t(
            "renewal_due_7",
            "您的职工医疗互助保障将于{coverage_end}到期，请及时通过单位工会续互。",
            &["coverage_end"],
        ),
        t(
            "renewal_grace",
            "您的职工医疗互助保障已于{coverage_end}到期，宽限期内续互可保持连续参互。",
            &["coverage_end"],
        ),
        t(
            "deduction_failed",
            "您{month}的职工医疗互助金代扣未成功，请确认银行卡余额或联系单位工会。",
            &["month"],
        ),
        t(
            "claim_returned",
            "您的职工医疗互助金申领需补充材料，请打开小程序查看。",
            &[],
        ),
        t(
            "payout_sent",
            "您的职工医疗互助金{amount}元已拨付至预留银行卡，请注意查收。",
            &["amount"],
        ),
    ]
}

fn to_template(m: sms_template::Model) -> Result<Template, DbErr> {
    Ok(Template {
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
            ..Default::default()
        })
        .filter(sms_template::Column::Occasion.eq(template.occasion.as_str()))
        .exec(db)
        .await?;
    Ok(result.rows_affected == 1)
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

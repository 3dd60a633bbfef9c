//! Aliyun SMS (Dysmsapi 2017-05-25) over the RPC protocol, signed with HMAC-SHA1: `SendSms`,
//! `QuerySendDetails` and the delivery receipt callback.
//!
//! One `SendSms` call per message, with `OutId` = our message id. Aliyun takes one `OutId` per
//! call, and `SendBatchSms` takes none per number, so a call for several numbers could not be
//! traced back message by message; one per call can: `QuerySendDetails` by number and date
//! lists every message Aliyun accepted (from acceptance on, before any delivery report) with
//! its `OutId`. Hence `max_batch` is 1 (a bigger batch is sent one call after another).
//!
//! `QuerySendDetails` does not return the `BizId`, so a message found by its `OutId` is
//! [`Lookup::Sent`] with the `BizId` passed in, if any. Receipts carry `out_id` and are matched
//! on it.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use super::signing::{aliyun_percent_encode, aliyun_rpc_signature};
use super::{
    CodeBook, CodeGroup, DeliveryReport, Lookup, Outcome, ProviderError, Receipt, ReceiptDialect,
    ReceiptError, SmsBatch, SmsProvider, Verdict, checked_phone, fit_params, past_grace,
    transport_outcome,
};
use crate::domain::PhoneNumber;
use crate::settings::SmsSettings;

const PROVIDER: &str = "aliyun";
const API_VERSION: &str = "2017-05-25";
/// The region of the SMS service unless configured (Dysmsapi is served from cn-hangzhou).
pub const DEFAULT_REGION: &str = "cn-hangzhou";
/// Records per `QuerySendDetails` page (Aliyun's maximum).
const PAGE_SIZE: usize = 50;
/// Pages read before giving up on finding a message among one day's records of a number.
const MAX_PAGES: usize = 20;
/// Aliyun keeps send records this long.
const QUERY_HORIZON: chrono::TimeDelta = chrono::TimeDelta::days(30);
/// Around midnight the record may carry the neighbouring date: both are searched.
const DATE_MARGIN: chrono::TimeDelta = chrono::TimeDelta::minutes(2);

/// The answer our receipt callback must give Aliyun.
pub const RECEIPT_ANSWER: &str = r#"{"code":0,"msg":"接收成功"}"#;

/// The Aliyun SMS client.
#[derive(Debug)]
pub struct AliyunSms {
    http: reqwest::Client,
    endpoint: reqwest::Url,
    access_key_id: String,
    access_key_secret: SecretString,
    region: String,
    short_params: bool,
    lookup_grace: Duration,
}

/// One RPC answer: `Code` is `OK` or an error code, whatever the HTTP status.
#[derive(Deserialize)]
struct Answer {
    #[serde(rename = "Code", default)]
    code: String,
    #[serde(rename = "Message", default)]
    message: String,
    #[serde(rename = "RequestId", default)]
    request_id: String,
    #[serde(rename = "BizId", default)]
    biz_id: String,
    #[serde(rename = "TotalCount", default)]
    total_count: Option<serde_json::Value>,
    #[serde(rename = "SmsSendDetailDTOs", default)]
    details: Option<Details>,
}

#[derive(Deserialize, Default)]
struct Details {
    #[serde(rename = "SmsSendDetailDTO", default)]
    items: Vec<Detail>,
}

#[derive(Deserialize)]
struct Detail {
    #[serde(rename = "OutId", default)]
    out_id: Option<String>,
    /// 1 waiting for the operator's report, 2 failed, 3 delivered.
    #[serde(rename = "SendStatus", default)]
    send_status: Option<serde_json::Value>,
    #[serde(rename = "ErrCode", default)]
    err_code: Option<String>,
    /// `YYYY-MM-DD HH:MM:SS`, Asia/Shanghai.
    #[serde(rename = "ReceiveDate", default)]
    receive_date: Option<String>,
}

impl Detail {
    /// The delivery report the record holds (none while Aliyun waits for the operator's).
    fn report(&self) -> Option<DeliveryReport> {
        let delivered = match self.send_status.as_ref().and_then(count)? {
            3 => true,
            2 => false,
            _ => return None,
        };
        let code = self.err_code.clone().filter(|c| !c.is_empty());
        Some(DeliveryReport {
            delivered,
            code: code.clone().filter(|_| !delivered),
            description: code,
            at: self.receive_date.as_deref().and_then(super::shanghai_time),
        })
    }
}

impl AliyunSms {
    /// A client for the account in `settings` (`secret_id` = AccessKey ID, `secret_key` =
    /// AccessKey secret, `sign_name` required).
    pub fn new(settings: &SmsSettings) -> Result<Self, ProviderError> {
        let credentials = super::required_credentials(PROVIDER, settings, &[])?;
        Ok(Self {
            http: super::http_client(settings)?,
            endpoint: super::base_url("aliyun_base_url", &settings.aliyun_base_url)?,
            access_key_id: credentials.secret_id,
            access_key_secret: credentials.secret_key,
            region: settings
                .region
                .clone()
                .filter(|r| !r.trim().is_empty())
                .unwrap_or_else(|| DEFAULT_REGION.to_owned()),
            short_params: settings.short_params,
            lookup_grace: Duration::from_secs(settings.lookup_grace_seconds),
        })
    }

    /// The form body of a signed call: the common parameters, `params`, and `Signature`.
    fn signed_form(&self, action: &str, params: &[(&str, &str)]) -> String {
        let nonce = uuid::Uuid::new_v4().to_string();
        let timestamp = Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
        let mut all: Vec<(&str, &str)> = vec![
            ("AccessKeyId", &self.access_key_id),
            ("Action", action),
            ("Format", "JSON"),
            ("RegionId", &self.region),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureNonce", &nonce),
            ("SignatureVersion", "1.0"),
            ("Timestamp", &timestamp),
            ("Version", API_VERSION),
        ];
        all.extend_from_slice(params);
        let signature = aliyun_rpc_signature("POST", &all, self.access_key_secret.expose_secret());
        all.push(("Signature", &signature));
        all.iter()
            .map(|(k, v)| format!("{}={}", aliyun_percent_encode(k), aliyun_percent_encode(v)))
            .collect::<Vec<_>>()
            .join("&")
    }

    /// Posts one signed call; its answer (success or a coded error), or the outcome when
    /// there is no readable answer.
    async fn call(&self, action: &str, params: &[(&str, &str)]) -> Result<Answer, Outcome> {
        let response = self
            .http
            .post(self.endpoint.clone())
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(self.signed_form(action, params))
            .send()
            .await
            .map_err(|err| transport_outcome(PROVIDER, &err))?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|err| transport_outcome(PROVIDER, &err))?;
        if status.is_server_error() || !(status.is_success() || status.is_client_error()) {
            // A 5xx (`InternalError`, `ServiceUnavailable`) does not say whether it went out.
            tracing::warn!(provider = PROVIDER, %status, action, "unexpected HTTP status");
            return Err(Outcome::Unknown {
                reason: format!("{PROVIDER} answered HTTP {status}"),
            });
        }
        match serde_json::from_slice::<Answer>(&bytes) {
            Ok(answer) if !answer.code.is_empty() => Ok(answer),
            Ok(_) | Err(_) => {
                tracing::warn!(provider = PROVIDER, %status, action, "answer could not be read");
                Err(Outcome::Unknown {
                    reason: format!("{PROVIDER} answered something unreadable"),
                })
            }
        }
    }

    /// One number's records on `date` (all pages), or why they are unknown.
    async fn records(
        &self,
        phone: &PhoneNumber,
        date: NaiveDate,
        biz_id: Option<&str>,
    ) -> Result<Vec<Detail>, String> {
        let send_date = date.format("%Y%m%d").to_string();
        let page_size = PAGE_SIZE.to_string();
        let mut out_ids = Vec::new();
        for page in 1..=MAX_PAGES {
            let page = page.to_string();
            let mut params = vec![
                ("PhoneNumber", phone.as_str()),
                ("SendDate", send_date.as_str()),
                ("PageSize", page_size.as_str()),
                ("CurrentPage", page.as_str()),
            ];
            if let Some(biz_id) = biz_id {
                params.push(("BizId", biz_id));
            }
            let answer = match self.call("QuerySendDetails", &params).await {
                Ok(answer) if answer.code == "OK" => answer,
                Ok(answer) => return Err(format!("{}: {}", answer.code, answer.message)),
                Err(Outcome::Unknown { reason }) => return Err(reason),
                Err(Outcome::Rejected { code, message, .. }) => {
                    return Err(format!("{code}: {message}"));
                }
                Err(Outcome::Accepted { .. }) => return Err(String::new()),
            };
            let items = answer.details.unwrap_or_default().items;
            let got = items.len();
            out_ids.extend(items);
            let total = answer.total_count.as_ref().and_then(count).unwrap_or(0);
            if got < PAGE_SIZE || out_ids.len() >= total {
                return Ok(out_ids);
            }
        }
        Err(format!(
            "more than {} records on one day",
            PAGE_SIZE * MAX_PAGES
        ))
    }
}

/// `TotalCount` arrives as a number or a string.
fn count(value: &serde_json::Value) -> Option<usize> {
    match value {
        serde_json::Value::Number(n) => n.as_u64().and_then(|n| usize::try_from(n).ok()),
        serde_json::Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

#[async_trait]
impl SmsProvider for AliyunSms {
    fn name(&self) -> &'static str {
        PROVIDER
    }

    fn max_batch(&self) -> usize {
        1
    }

    async fn send(&self, batch: &SmsBatch) -> Vec<(String, Outcome)> {
        let params: serde_json::Map<String, serde_json::Value> =
            fit_params(&batch.params, self.short_params)
                .into_iter()
                .map(|(name, value)| (name, serde_json::Value::String(value)))
                .collect();
        let template_param = serde_json::Value::Object(params).to_string();
        let mut outcomes = Vec::with_capacity(batch.messages.len());
        for sms in &batch.messages {
            let outcome = match checked_phone(sms) {
                Err(rejected) => rejected,
                Ok(phone) => {
                    let mut call = vec![
                        ("PhoneNumbers", phone.as_str()),
                        ("SignName", batch.sign_name.as_str()),
                        ("TemplateCode", batch.template.as_str()),
                        ("OutId", sms.message_id.as_str()),
                    ];
                    if !batch.params.is_empty() {
                        call.push(("TemplateParam", template_param.as_str()));
                    }
                    match self.call("SendSms", &call).await {
                        Err(outcome) => outcome,
                        Ok(answer) if answer.code == "OK" => Outcome::Accepted {
                            provider_id: answer.biz_id,
                        },
                        Ok(answer) => {
                            tracing::info!(
                                provider = PROVIDER,
                                message_id = %sms.message_id,
                                phone = %phone.masked(),
                                code = %answer.code,
                                request_id = %answer.request_id,
                                "message refused"
                            );
                            CODES.outcome(&answer.code, &answer.message)
                        }
                    }
                }
            };
            outcomes.push((sms.message_id.clone(), outcome));
        }
        outcomes
    }

    async fn lookup(
        &self,
        phone: &str,
        attempted_at: DateTime<Utc>,
        message_id: &str,
        provider_id: Option<&str>,
    ) -> Lookup {
        let Ok(number) = PhoneNumber::parse(phone) else {
            return Lookup::NotSent;
        };
        if Utc::now().signed_duration_since(attempted_at) > QUERY_HORIZON {
            return Lookup::Unknown {
                reason: format!("{PROVIDER} keeps send records for 30 days only"),
            };
        }
        let provider_id = provider_id.filter(|id| !id.is_empty());
        let shanghai =
            |at: DateTime<Utc>| at.with_timezone(&chrono_tz::Asia::Shanghai).date_naive();
        let mut dates = vec![shanghai(attempted_at - DATE_MARGIN)];
        let later = shanghai(attempted_at + DATE_MARGIN);
        if !dates.contains(&later) {
            dates.push(later);
        }
        for date in dates {
            match self.records(&number, date, provider_id).await {
                Err(reason) => {
                    return Lookup::Unknown {
                        reason: format!("{PROVIDER} could not be asked: {reason}"),
                    };
                }
                Ok(records) => {
                    if let Some(record) = records
                        .iter()
                        .find(|d| d.out_id.as_deref() == Some(message_id))
                    {
                        return Lookup::Sent {
                            provider_id: provider_id.map(str::to_owned),
                            report: record.report(),
                        };
                    }
                }
            }
        }
        if !past_grace(attempted_at, self.lookup_grace) {
            return Lookup::Unknown {
                reason: format!("{PROVIDER} has no record yet: too early to tell"),
            };
        }
        Lookup::NotSent
    }
}

/// How Aliyun's error codes are taken.
///
/// - Ambiguous (the message may have gone out): `isp.SYSTEM_ERROR`, `InternalError`,
///   `ServiceUnavailable`, `UnknownError`.
/// - Transient: `isv.BUSINESS_LIMIT_CONTROL`, `isv.DAY_LIMIT_CONTROL`,
///   `isv.MONTH_LIMIT_CONTROL`, `Throttling*`, `SignatureNonceUsed`; and, needing a person,
///   `isv.OUT_OF_SERVICE` and `isv.AMOUNT_NOT_ENOUGH` (the account is out of money: the
///   message can go once it is topped up) and `InvalidTimeStamp.Expired` (our clock); any code
///   we do not know.
/// - Permanent: number, blacklist, template, signature and parameter errors; credential and
///   account errors (`SignatureDoesNotMatch`, `InvalidAccessKeyId*`, `Forbidden*`,
///   `isp.RAM_PERMISSION_DENY`, `isv.PRODUCT_UN_SUBSCRIPT`, `isv.ACCOUNT_*`,
///   `isv.DENY_IP_RANGE`), logged loudly.
pub(crate) const CODES: CodeBook = CodeBook {
    provider: PROVIDER,
    groups: &[
        CodeGroup {
            verdict: Verdict::Ambiguous,
            codes: &[
                "isp.SYSTEM_ERROR",
                "InternalError",
                "ServiceUnavailable",
                "UnknownError",
            ],
            ..CodeGroup::EMPTY
        },
        CodeGroup {
            verdict: Verdict::Transient,
            codes: &[
                "isv.BUSINESS_LIMIT_CONTROL",
                "isv.DAY_LIMIT_CONTROL",
                "isv.MONTH_LIMIT_CONTROL",
                "SignatureNonceUsed",
            ],
            families: &["Throttling"],
            ..CodeGroup::EMPTY
        },
        CodeGroup {
            verdict: Verdict::Transient,
            config: true,
            codes: &[
                "isv.OUT_OF_SERVICE",
                "isv.AMOUNT_NOT_ENOUGH",
                "InvalidTimeStamp.Expired",
            ],
            ..CodeGroup::EMPTY
        },
        CodeGroup {
            verdict: Verdict::Permanent,
            codes: &[
                "isv.MOBILE_NUMBER_ILLEGAL",
                "isv.BLACK_KEY_CONTROL_LIMIT",
                "isv.TEMPLATE_MISSING_PARAMETERS",
                "isv.INVALID_PARAMETERS",
                "isv.MOBILE_COUNT_OVER_LIMIT",
                "isv.INVALID_JSON_PARAM",
                "isv.PARAM_NOT_SUPPORT_URL",
                "isv.TEMPLATE_PARAMS_ILLEGAL",
                "isv.SMS_CONTENT_ILLEGAL",
                "isv.DOMESTIC_NUMBER_NOT_SUPPORTED",
                "isv.SMS_SIGNATURE_SCENE_ILLEGAL",
                "isv.EXTEND_CODE_ERROR",
                "isv.SMS_TEST_NUMBER_LIMIT",
                "isv.SMS_TEST_SIGN_TEMPLATE_LIMIT",
                "isv.SMS_TEST_TEMPLATE_PARAMS_ILLEGAL",
            ],
            families: &["MissingParameter", "InvalidParameter"],
            ..CodeGroup::EMPTY
        },
        CodeGroup {
            verdict: Verdict::Permanent,
            config: true,
            codes: &[
                "isv.SMS_TEMPLATE_ILLEGAL",
                "isv.SMS_SIGNATURE_ILLEGAL",
                "isv.SMS_SIGN_ILLEGAL",
                // The account limits variables: `sms.short_params` may be needed.
                "isv.PARAM_LENGTH_LIMIT",
                "SignatureDoesNotMatch",
                "IncompleteSignature",
                "isp.RAM_PERMISSION_DENY",
                "isv.PRODUCT_UN_SUBSCRIPT",
                "isv.PRODUCT_UNSUBSCRIBE",
                "isv.DENY_IP_RANGE",
                "isv.ACCOUNT_NOT_EXISTS",
            ],
            families: &[
                "InvalidAccessKeyId",
                "Forbidden",
                "InvalidAction",
                "InvalidVersion",
            ],
            prefixes: &["isv.ACCOUNT_"],
        },
    ],
};

/// Aliyun's delivery receipts: a JSON array of `{phone_number, send_time, report_time,
/// success, err_code, err_msg, sms_size, biz_id, out_id}`, answered with [`RECEIPT_ANSWER`]
/// (Aliyun retries after 1, 5 and 10 minutes otherwise).
pub struct AliyunReceipts;

impl ReceiptDialect for AliyunReceipts {
    type Report = Report;
    const ANSWER: &'static str = RECEIPT_ANSWER;

    fn receipt(report: Report) -> Result<Receipt, ReceiptError> {
        let delivered = match report.success {
            Flag::Bool(flag) => flag,
            Flag::Text(text) => match text.trim() {
                "true" => true,
                "false" => false,
                _ => return Err(ReceiptError::UnexpectedValue { field: "success" }),
            },
        };
        Ok(Receipt {
            provider_id: report.biz_id,
            message_id: report.out_id,
            phone: report.phone_number,
            delivered,
            code: report.err_code,
            description: report.err_msg,
            at: report
                .report_time
                .or(report.send_time)
                .as_deref()
                .and_then(super::shanghai_time),
        })
    }
}

/// Reads an Aliyun delivery receipt callback body (see [`AliyunReceipts`]).
pub fn parse_receipts(body: &[u8]) -> Result<Vec<Receipt>, ReceiptError> {
    super::read_receipts::<AliyunReceipts>(body)
}

/// One report of an Aliyun receipt callback.
#[derive(Deserialize)]
pub struct Report {
    phone_number: String,
    #[serde(default)]
    send_time: Option<String>,
    #[serde(default)]
    report_time: Option<String>,
    success: Flag,
    #[serde(default)]
    err_code: Option<String>,
    #[serde(default)]
    err_msg: Option<String>,
    #[serde(default)]
    biz_id: Option<String>,
    #[serde(default)]
    out_id: Option<String>,
}

/// `success` is a JSON boolean in Aliyun's samples; a string is taken too.
#[derive(Deserialize)]
#[serde(untagged)]
enum Flag {
    Bool(bool),
    Text(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_are_classified() {
        assert_eq!(
            CODES.classify("isv.MOBILE_NUMBER_ILLEGAL"),
            (Verdict::Permanent, false)
        );
        assert_eq!(
            CODES.classify("isv.BLACK_KEY_CONTROL_LIMIT"),
            (Verdict::Permanent, false)
        );
        assert_eq!(
            CODES.classify("isv.SMS_SIGNATURE_ILLEGAL"),
            (Verdict::Permanent, true)
        );
        assert_eq!(
            CODES.classify("SignatureDoesNotMatch"),
            (Verdict::Permanent, true)
        );
        assert_eq!(
            CODES.classify("InvalidAccessKeyId.NotFound"),
            (Verdict::Permanent, true)
        );
        assert_eq!(
            CODES.classify("isv.BUSINESS_LIMIT_CONTROL"),
            (Verdict::Transient, false)
        );
        assert_eq!(
            CODES.classify("Throttling.User"),
            (Verdict::Transient, false)
        );
        assert_eq!(
            CODES.classify("isv.OUT_OF_SERVICE"),
            (Verdict::Transient, true)
        );
        assert_eq!(
            CODES.classify("isp.SYSTEM_ERROR"),
            (Verdict::Ambiguous, false)
        );
        assert_eq!(
            CODES.classify("isv.SOMETHING_NEW"),
            (Verdict::Transient, false)
        );
    }

    #[test]
    fn total_count_is_read_as_a_number_or_a_string() {
        assert_eq!(count(&serde_json::json!(3)), Some(3));
        assert_eq!(count(&serde_json::json!("12")), Some(12));
        assert_eq!(count(&serde_json::json!(null)), None);
    }
}

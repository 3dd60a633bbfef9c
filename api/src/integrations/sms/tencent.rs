//! Tencent Cloud SMS, API 3.0 version 2021-01-11: `SendSms`, `PullSmsSendStatusByPhoneNumber`
//! and the delivery receipt callback.
//!
//! One `SendSms` call carries up to 200 numbers with one template and one `SessionContext`
//! (under 512 bytes), which Tencent hands back with the number's status. We put in it the ids
//! of the call's messages joined by commas, in the order of the numbers, and never put one
//! number twice in a call: so the status record of (number, context) names exactly one of our
//! messages, and a look-up by number proves whether that message went out. A message whose id
//! holds a comma goes alone in its call, the context then being its id.
//!
//! Two limits of the look-up, both answered with [`Lookup::Unknown`] rather than a guess:
//! Tencent lists a message only once the operator's delivery report has arrived (so "not
//! listed" is believed only after `sms.lookup_grace_seconds`), and it echoes `SessionContext`
//! in status records only once Tencent's SMS helper has enabled that for the application.
//! A handset switched off for longer than the grace period is the remaining blind spot.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde::de::DeserializeOwned;

use super::signing::{Tc3Request, tc3_sign};
use super::{
    CodeBook, CodeGroup, DeliveryReport, Lookup, Outcome, ProviderError, Receipt, ReceiptDialect,
    ReceiptError, Sms, SmsBatch, SmsProvider, Verdict, checked_phone, fit_params, masked,
    past_grace, transport_outcome,
};
use crate::domain::PhoneNumber;
use crate::settings::SmsSettings;

const PROVIDER: &str = "tencent";
const API_VERSION: &str = "2021-01-11";
const SERVICE: &str = "sms";
const CONTENT_TYPE: &str = "application/json; charset=utf-8";
/// Most numbers one `SendSms` call may carry.
pub const MAX_NUMBERS_PER_CALL: usize = 200;
/// `SessionContext` must be shorter than 512 bytes.
pub const MAX_SESSION_CONTEXT_BYTES: usize = 511;
/// Most records one status pull returns (Tencent's maximum; `Offset` is fixed at 0).
const PULL_LIMIT: usize = 100;
/// Tencent keeps status records this long.
const PULL_HORIZON: chrono::TimeDelta = chrono::TimeDelta::days(7);
/// How far before the attempt the status pull starts (clock differences).
const PULL_MARGIN: chrono::TimeDelta = chrono::TimeDelta::minutes(5);
/// The region SMS is served from unless configured.
pub const DEFAULT_REGION: &str = "ap-guangzhou";

/// The answer our receipt callback must give Tencent.
pub const RECEIPT_ANSWER: &str = r#"{"result":0,"errmsg":"OK"}"#;

/// The Tencent Cloud SMS client.
#[derive(Debug)]
pub struct TencentSms {
    http: reqwest::Client,
    /// `POST` target: the base URL.
    endpoint: reqwest::Url,
    /// The `Host` that is signed and sent (`host[:port]`).
    host: String,
    secret_id: String,
    secret_key: SecretString,
    sdk_app_id: String,
    region: String,
    short_params: bool,
    lookup_grace: Duration,
}

impl TencentSms {
    /// A client for the account in `settings` (`secret_id`, `secret_key`, `sdk_app_id`,
    /// `sign_name` required).
    pub fn new(settings: &SmsSettings) -> Result<Self, ProviderError> {
        let sdk_app_id = settings
            .sdk_app_id
            .as_deref()
            .map(str::trim)
            .filter(|id| !id.is_empty());
        let missing: &[&str] = if sdk_app_id.is_none() {
            &["sms.sdk_app_id"]
        } else {
            &[]
        };
        let credentials = super::required_credentials(PROVIDER, settings, missing)?;
        let endpoint = super::base_url("tencent_base_url", &settings.tencent_base_url)?;
        let host = authority(&endpoint);
        Ok(Self {
            http: super::http_client(settings)?,
            endpoint,
            host,
            secret_id: credentials.secret_id,
            secret_key: credentials.secret_key,
            sdk_app_id: sdk_app_id.unwrap_or_default().to_owned(),
            region: settings
                .region
                .clone()
                .filter(|r| !r.trim().is_empty())
                .unwrap_or_else(|| DEFAULT_REGION.to_owned()),
            short_params: settings.short_params,
            lookup_grace: Duration::from_secs(settings.lookup_grace_seconds),
        })
    }

    /// Signs and posts one API call; the answer's `Response`, or the outcome that applies to
    /// every message of the call.
    async fn call<T: DeserializeOwned + Default>(
        &self,
        action: &str,
        payload: &serde_json::Value,
    ) -> Result<T, Outcome> {
        let body = serde_json::to_vec(payload).map_err(|_| Outcome::Rejected {
            code: "huzhu.request_not_built".to_owned(),
            message: "the request body could not be written".to_owned(),
            permanent: false,
        })?;
        let secret_key = self.secret_key.expose_secret();
        let signed = tc3_sign(&Tc3Request {
            secret_id: &self.secret_id,
            secret_key,
            service: SERVICE,
            host: &self.host,
            action,
            version: API_VERSION,
            region: Some(&self.region),
            timestamp: Utc::now().timestamp(),
            content_type: CONTENT_TYPE,
            payload: &body,
        });
        let mut request = self.http.post(self.endpoint.clone());
        for (name, value) in &signed.headers {
            request = request.header(*name, value);
        }
        let response = request
            .body(body)
            .send()
            .await
            .map_err(|err| transport_outcome(PROVIDER, &err))?;
        let status = response.status();
        let bytes = response
            .bytes()
            .await
            .map_err(|err| transport_outcome(PROVIDER, &err))?;
        if status != reqwest::StatusCode::OK {
            // Tencent answers every API error with HTTP 200; anything else comes from in
            // between (gateway, proxy) and says nothing about the message.
            tracing::warn!(provider = PROVIDER, %status, action, "unexpected HTTP status");
            return Err(Outcome::Unknown {
                reason: format!("{PROVIDER} answered HTTP {status}"),
            });
        }
        let envelope: Envelope<T> = serde_json::from_slice(&bytes).map_err(|err| {
            tracing::warn!(
                provider = PROVIDER,
                action,
                category = ?err.classify(),
                line = err.line(),
                column = err.column(),
                "answer could not be parsed"
            );
            Outcome::Unknown {
                reason: format!("{PROVIDER} answered something unreadable"),
            }
        })?;
        if let Some(error) = envelope.response.error {
            tracing::warn!(
                provider = PROVIDER,
                action,
                code = %error.code,
                request_id = envelope.response.request_id.as_deref().unwrap_or(""),
                "the whole request was refused"
            );
            return Err(CODES.outcome(&error.code, &error.message));
        }
        Ok(envelope.response.body)
    }

    /// One `SendSms` call for `messages` (distinct numbers, context fits).
    async fn send_call(
        &self,
        batch: &SmsBatch,
        values: &[String],
        messages: &[(&Sms, PhoneNumber)],
    ) -> Vec<Outcome> {
        let context = messages
            .iter()
            .map(|(sms, _)| sms.message_id.as_str())
            .collect::<Vec<_>>()
            .join(",");
        let mut payload = serde_json::json!({
            "PhoneNumberSet": messages.iter().map(|(_, phone)| phone.e164()).collect::<Vec<_>>(),
            "SmsSdkAppId": self.sdk_app_id,
            "SignName": batch.sign_name,
            "TemplateId": batch.template,
            "SessionContext": context,
        });
        if !values.is_empty() {
            payload["TemplateParamSet"] = serde_json::json!(values);
        }
        let answer: SendAnswer = match self.call("SendSms", &payload).await {
            Ok(answer) => answer,
            Err(outcome) => return vec![outcome; messages.len()],
        };
        messages
            .iter()
            .map(|(sms, phone)| {
                let status = answer
                    .send_status_set
                    .iter()
                    .find(|s| PhoneNumber::parse(&s.phone_number).is_ok_and(|p| p == *phone));
                match status {
                    None => {
                        tracing::warn!(
                            provider = PROVIDER,
                            message_id = %sms.message_id,
                            phone = %phone.masked(),
                            "no status for this number in the answer"
                        );
                        Outcome::Unknown {
                            reason: format!("{PROVIDER} gave no status for this number"),
                        }
                    }
                    Some(status) if status.code == "Ok" && !status.serial_no.is_empty() => {
                        Outcome::Accepted {
                            provider_id: status.serial_no.clone(),
                        }
                    }
                    Some(status) => {
                        tracing::info!(
                            provider = PROVIDER,
                            message_id = %sms.message_id,
                            phone = %phone.masked(),
                            code = %status.code,
                            "message refused"
                        );
                        CODES.outcome(&status.code, &status.message)
                    }
                }
            })
            .collect()
    }
}

#[async_trait]
impl SmsProvider for TencentSms {
    fn name(&self) -> &'static str {
        PROVIDER
    }

    fn max_batch(&self) -> usize {
        MAX_NUMBERS_PER_CALL
    }

    async fn send(&self, batch: &SmsBatch) -> Vec<(String, Outcome)> {
        let values: Vec<String> = fit_params(&batch.params, self.short_params)
            .into_iter()
            .map(|(_, value)| value)
            .collect();
        let mut outcomes: Vec<Option<Outcome>> = vec![None; batch.messages.len()];
        let mut sendable: Vec<(usize, &Sms, PhoneNumber)> = Vec::new();
        for (index, sms) in batch.messages.iter().enumerate() {
            match checked_phone(sms) {
                Err(rejected) => outcomes[index] = Some(rejected),
                Ok(_) if sms.message_id.len() > MAX_SESSION_CONTEXT_BYTES => {
                    outcomes[index] = Some(Outcome::Rejected {
                        code: "huzhu.message_id_too_long".to_owned(),
                        message: "the message id does not fit Tencent's SessionContext".to_owned(),
                        permanent: true,
                    });
                }
                Ok(phone) => sendable.push((index, sms, phone)),
            }
        }
        for call in plan_calls(&sendable) {
            let messages: Vec<(&Sms, PhoneNumber)> = call
                .iter()
                .map(|&i| (sendable[i].1, sendable[i].2.clone()))
                .collect();
            let results = self.send_call(batch, &values, &messages).await;
            for (&i, outcome) in call.iter().zip(results) {
                outcomes[sendable[i].0] = Some(outcome);
            }
        }
        batch
            .messages
            .iter()
            .zip(outcomes)
            .map(|(sms, outcome)| {
                (
                    sms.message_id.clone(),
                    outcome.unwrap_or_else(|| Outcome::Unknown {
                        reason: "not sent: internal error".to_owned(),
                    }),
                )
            })
            .collect()
    }

    async fn lookup(
        &self,
        phone: &str,
        attempted_at: DateTime<Utc>,
        message_id: &str,
        provider_id: Option<&str>,
    ) -> Lookup {
        let Ok(number) = PhoneNumber::parse(phone) else {
            // Never sent: the number was refused before any call.
            return Lookup::NotSent;
        };
        let now = Utc::now();
        if now.signed_duration_since(attempted_at) > PULL_HORIZON {
            return Lookup::Unknown {
                reason: format!("{PROVIDER} keeps status records for 7 days only"),
            };
        }
        let payload = serde_json::json!({
            "BeginTime": (attempted_at - PULL_MARGIN).timestamp(),
            "EndTime": now.timestamp().max(attempted_at.timestamp()),
            "Offset": 0,
            "Limit": PULL_LIMIT,
            "PhoneNumber": number.e164(),
            "SmsSdkAppId": self.sdk_app_id,
        });
        let answer: PullAnswer = match self.call("PullSmsSendStatusByPhoneNumber", &payload).await {
            Ok(answer) => answer,
            Err(outcome) => {
                return Lookup::Unknown {
                    reason: match outcome {
                        Outcome::Rejected { code, message, .. } => format!("{code}: {message}"),
                        Outcome::Unknown { reason } => reason,
                        Outcome::Accepted { .. } => String::new(),
                    },
                };
            }
        };
        let records = &answer.pull_sms_send_status_set;
        let ours = records.iter().find(|record| {
            let context = record.session_context.as_deref().unwrap_or("");
            let by_context = context == message_id || context.split(',').any(|id| id == message_id);
            let by_serial = provider_id.is_some_and(|id| !id.is_empty() && record.serial_no == id);
            by_context || by_serial
        });
        if let Some(record) = ours {
            return Lookup::Sent {
                provider_id: Some(record.serial_no.clone()).filter(|id| !id.is_empty()),
                report: record.report(),
            };
        }
        if records
            .iter()
            .any(|r| r.session_context.as_deref().is_none_or(str::is_empty))
        {
            tracing::warn!(
                provider = PROVIDER,
                phone = %masked(phone),
                "status records carry no SessionContext: ask Tencent's SMS helper to enable it"
            );
            return Lookup::Unknown {
                reason: format!(
                    "{PROVIDER} does not echo SessionContext for this application, so its \
                     records cannot be told apart"
                ),
            };
        }
        if records.len() >= PULL_LIMIT {
            return Lookup::Unknown {
                reason: format!("{PROVIDER} returned a full page without our message"),
            };
        }
        if !past_grace(attempted_at, self.lookup_grace) {
            return Lookup::Unknown {
                reason: format!(
                    "{PROVIDER} lists a message once its delivery report arrives: too early to \
                     tell"
                ),
            };
        }
        Lookup::NotSent
    }
}

/// Groups the sendable messages (by their index in `sendable`) into calls: at most 200
/// numbers, each number once, the joined ids under 512 bytes; an id holding a comma alone.
fn plan_calls(sendable: &[(usize, &Sms, PhoneNumber)]) -> Vec<Vec<usize>> {
    let mut calls: Vec<(Vec<usize>, usize)> = Vec::new(); // (members, context bytes)
    for (i, (_, sms, phone)) in sendable.iter().enumerate() {
        let id = &sms.message_id;
        let alone = id.contains(',');
        let fits = |call: &(Vec<usize>, usize)| {
            let (members, bytes) = call;
            !alone
                && !members
                    .iter()
                    .any(|&m| sendable[m].2 == *phone || sendable[m].1.message_id.contains(','))
                && members.len() < MAX_NUMBERS_PER_CALL
                && bytes + 1 + id.len() <= MAX_SESSION_CONTEXT_BYTES
        };
        match calls.iter_mut().find(|call| fits(call)) {
            Some((members, bytes)) => {
                members.push(i);
                *bytes += 1 + id.len();
            }
            None => calls.push((vec![i], id.len())),
        }
    }
    calls.into_iter().map(|(members, _)| members).collect()
}

/// The host and, when not the scheme's default, the port: what `Host` carries and is signed.
fn authority(url: &reqwest::Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    }
}

/// How Tencent's error codes are taken.
///
/// - Ambiguous (the message may have gone out): `InternalError`, `InternalError.Timeout`,
///   `InternalError.SendAndRecvFail`, `InternalError.UnknownError`.
/// - Transient: `LimitExceeded.*`, `RequestLimitExceeded*`, the other `InternalError.*`,
///   `FailedOperation.InsufficientBalanceInSmsPackage` and
///   `UnauthorizedOperation.SerivceSuspendDueToArrears` (the message is fine; it can go once
///   the account is topped up), `AuthFailure.SignatureExpire` (our clock),
///   `FailedOperation.MarketingSendTimeConstraint`, and any code we do not know.
/// - Permanent: number, blacklist, content, signature, template and parameter errors,
///   `AuthFailure.*`, `UnauthorizedOperation.*`, `InvalidParameter*`, `MissingParameter*`,
///   `UnsupportedOperation*`, `FailedOperation.*` otherwise.
pub(crate) const CODES: CodeBook = CodeBook {
    provider: PROVIDER,
    groups: &[
        CodeGroup {
            verdict: Verdict::Ambiguous,
            codes: &[
                "InternalError",
                "InternalError.Timeout",
                "InternalError.SendAndRecvFail",
                "InternalError.UnknownError",
            ],
            ..CodeGroup::EMPTY
        },
        CodeGroup {
            verdict: Verdict::Transient,
            config: true,
            codes: &[
                "FailedOperation.InsufficientBalanceInSmsPackage",
                "UnauthorizedOperation.SerivceSuspendDueToArrears",
                "AuthFailure.SignatureExpire",
                "InternalError.RequestTimeException",
            ],
            ..CodeGroup::EMPTY
        },
        CodeGroup {
            verdict: Verdict::Permanent,
            config: true,
            codes: &[
                "FailedOperation.SignatureIncorrectOrUnapproved",
                "FailedOperation.TemplateIncorrectOrUnapproved",
                "FailedOperation.MissingTemplateToModify",
                "FailedOperation.MissingTemplateList",
                "FailedOperation.MissingSignatureList",
                "InvalidParameterValue.SdkAppIdNotExist",
                // The account limits variables: `sms.short_params` should be on.
                "InvalidParameterValue.TemplateParameterLengthLimit",
                "InvalidAction",
                "NoSuchVersion",
                "UnsupportedRegion",
            ],
            families: &["AuthFailure", "UnauthorizedOperation"],
            ..CodeGroup::EMPTY
        },
        CodeGroup {
            verdict: Verdict::Transient,
            codes: &["FailedOperation.MarketingSendTimeConstraint"],
            families: &[
                "LimitExceeded",
                "RequestLimitExceeded",
                "InternalError",
                "ResourceUnavailable",
            ],
            ..CodeGroup::EMPTY
        },
        CodeGroup {
            verdict: Verdict::Permanent,
            families: &[
                "FailedOperation",
                "InvalidParameter",
                "InvalidParameterValue",
                "MissingParameter",
                "UnsupportedOperation",
                "RequestSizeLimitExceeded",
                "UnknownParameter",
            ],
            ..CodeGroup::EMPTY
        },
    ],
};

/// Tencent's delivery receipts: a JSON array of `{user_receive_time, nationcode, mobile,
/// report_status, errmsg, description, sid}`, answered with [`RECEIPT_ANSWER`].
pub struct TencentReceipts;

impl ReceiptDialect for TencentReceipts {
    type Report = Report;
    const ANSWER: &'static str = RECEIPT_ANSWER;

    fn receipt(report: Report) -> Result<Receipt, ReceiptError> {
        let delivered = match report.report_status.as_str() {
            "SUCCESS" => true,
            "FAIL" => false,
            _ => {
                return Err(ReceiptError::UnexpectedValue {
                    field: "report_status",
                });
            }
        };
        let phone = match report.nationcode.as_deref() {
            None | Some("" | "86") => report.mobile,
            Some(code) => format!("+{code}{}", report.mobile),
        };
        Ok(Receipt {
            provider_id: report.sid,
            message_id: None,
            phone,
            delivered,
            code: report.errmsg,
            description: report.description,
            at: report
                .user_receive_time
                .as_deref()
                .and_then(super::shanghai_time),
        })
    }
}

/// Reads a Tencent delivery receipt callback body (see [`TencentReceipts`]).
pub fn parse_receipts(body: &[u8]) -> Result<Vec<Receipt>, ReceiptError> {
    super::read_receipts::<TencentReceipts>(body)
}

/// One report of a Tencent receipt callback.
#[derive(Deserialize)]
pub struct Report {
    #[serde(default)]
    user_receive_time: Option<String>,
    #[serde(default)]
    nationcode: Option<String>,
    mobile: String,
    report_status: String,
    #[serde(default)]
    errmsg: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    sid: Option<String>,
}

/// `{"Response": {...}}`: an `Error`, or the action's fields, and always a `RequestId`.
#[derive(Deserialize)]
struct Envelope<T> {
    #[serde(rename = "Response")]
    response: ResponseBody<T>,
}

#[derive(Deserialize)]
struct ResponseBody<T> {
    #[serde(rename = "Error", default)]
    error: Option<ApiError>,
    #[serde(rename = "RequestId", default)]
    request_id: Option<String>,
    #[serde(flatten)]
    body: T,
}

#[derive(Deserialize)]
struct ApiError {
    #[serde(rename = "Code")]
    code: String,
    #[serde(rename = "Message", default)]
    message: String,
}

#[derive(Deserialize, Default)]
struct SendAnswer {
    #[serde(rename = "SendStatusSet", default)]
    send_status_set: Vec<SendStatus>,
}

#[derive(Deserialize)]
struct SendStatus {
    #[serde(rename = "SerialNo", default)]
    serial_no: String,
    #[serde(rename = "PhoneNumber", default)]
    phone_number: String,
    #[serde(rename = "Code", default)]
    code: String,
    #[serde(rename = "Message", default)]
    message: String,
}

#[derive(Deserialize, Default)]
struct PullAnswer {
    #[serde(rename = "PullSmsSendStatusSet", default)]
    pull_sms_send_status_set: Vec<PullStatus>,
}

#[derive(Deserialize)]
struct PullStatus {
    #[serde(rename = "SerialNo", default)]
    serial_no: String,
    #[serde(rename = "SessionContext", default)]
    session_context: Option<String>,
    /// `SUCCESS` or `FAIL`: the operator's delivery report (Tencent lists a message only once
    /// it has one).
    #[serde(rename = "ReportStatus", default)]
    report_status: Option<String>,
    /// The operator's status code, e.g. `DELIVRD`, `MK:0001`.
    #[serde(rename = "Description", default)]
    description: Option<String>,
    /// Unix seconds.
    #[serde(rename = "UserReceiveTime", default)]
    user_receive_time: Option<i64>,
}

impl PullStatus {
    /// The delivery report the record holds.
    fn report(&self) -> Option<DeliveryReport> {
        let delivered = match self.report_status.as_deref()? {
            "SUCCESS" => true,
            "FAIL" => false,
            _ => return None,
        };
        let description = self.description.clone().filter(|d| !d.is_empty());
        Some(DeliveryReport {
            delivered,
            code: description.clone().filter(|_| !delivered),
            description,
            at: self
                .user_receive_time
                .filter(|t| *t > 0)
                .and_then(|t| DateTime::from_timestamp(t, 0)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sms(id: &str, phone: &str) -> Sms {
        Sms {
            message_id: id.to_owned(),
            phone: phone.to_owned(),
        }
    }

    fn planned(messages: &[Sms]) -> Vec<Vec<String>> {
        let sendable: Vec<(usize, &Sms, PhoneNumber)> = messages
            .iter()
            .enumerate()
            .map(|(i, s)| (i, s, PhoneNumber::parse(&s.phone).unwrap()))
            .collect();
        plan_calls(&sendable)
            .into_iter()
            .map(|call| {
                call.into_iter()
                    .map(|i| messages[i].message_id.clone())
                    .collect()
            })
            .collect()
    }

    #[test]
    fn one_call_never_carries_a_number_twice() {
        let calls = planned(&[
            sms("1", "13800000001"),
            sms("2", "13800000002"),
            sms("3", "13800000001"),
        ]);
        assert_eq!(calls, vec![vec!["1", "2"], vec!["3"]]);
    }

    #[test]
    fn calls_hold_200_numbers_and_a_context_under_512_bytes() {
        let many: Vec<Sms> = (0..450)
            .map(|i| sms(&i.to_string(), &format!("139{i:08}")))
            .collect();
        let calls = planned(&many);
        assert!(calls.iter().all(|c| c.len() <= MAX_NUMBERS_PER_CALL));
        assert!(
            calls
                .iter()
                .all(|c| c.join(",").len() <= MAX_SESSION_CONTEXT_BYTES)
        );
        assert_eq!(calls.iter().map(Vec::len).sum::<usize>(), 450);
        let uuids: Vec<Sms> = (0..20)
            .map(|i| sms(&uuid::Uuid::new_v4().to_string(), &format!("137{i:08}")))
            .collect();
        let calls = planned(&uuids);
        assert_eq!(
            calls.len(),
            2,
            "13 uuids of 36 bytes fit in 511 bytes, 20 do not"
        );
        assert_eq!(calls[0].len(), 13);
    }

    #[test]
    fn an_id_with_a_comma_goes_alone() {
        let calls = planned(&[
            sms("a,b", "13800000001"),
            sms("c", "13800000002"),
            sms("d", "13800000003"),
        ]);
        assert_eq!(calls, vec![vec!["a,b"], vec!["c", "d"]]);
    }

    #[test]
    fn codes_are_classified() {
        assert_eq!(
            CODES.classify("InvalidParameterValue.IncorrectPhoneNumber"),
            (Verdict::Permanent, false)
        );
        assert_eq!(
            CODES.classify("FailedOperation.PhoneNumberInBlacklist"),
            (Verdict::Permanent, false)
        );
        assert_eq!(
            CODES.classify("AuthFailure.SignatureFailure"),
            (Verdict::Permanent, true)
        );
        assert_eq!(
            CODES.classify("LimitExceeded.PhoneNumberDailyLimit"),
            (Verdict::Transient, false)
        );
        assert_eq!(
            CODES.classify("RequestLimitExceeded"),
            (Verdict::Transient, false)
        );
        assert_eq!(
            CODES.classify("FailedOperation.InsufficientBalanceInSmsPackage"),
            (Verdict::Transient, true)
        );
        assert_eq!(
            CODES.classify("InternalError.OtherError"),
            (Verdict::Transient, false)
        );
        assert_eq!(
            CODES.classify("InternalError.Timeout"),
            (Verdict::Ambiguous, false)
        );
        assert_eq!(CODES.classify("InternalError"), (Verdict::Ambiguous, false));
        assert_eq!(CODES.classify("SomethingNew"), (Verdict::Transient, false));
    }

    #[test]
    fn the_port_is_part_of_the_signed_host_only_when_not_default() {
        let url = reqwest::Url::parse("https://sms.tencentcloudapi.com").unwrap();
        assert_eq!(authority(&url), "sms.tencentcloudapi.com");
        let url = reqwest::Url::parse("http://127.0.0.1:41234/").unwrap();
        assert_eq!(authority(&url), "127.0.0.1:41234");
    }
}

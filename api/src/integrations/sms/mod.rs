//! Sending SMS: one interface over Tencent Cloud SMS, Aliyun SMS and the log (embedded
//! default), and reading their delivery receipts (one skeleton, [`read_receipts`], with a
//! [`ReceiptDialect`] per provider). Both providers' error codes are read by one
//! `CodeBook` each, tried the same way. No database here: the dispatcher
//! (`crate::service::reminders`) decides what to send and records what happened.
//!
//! Neither provider de-duplicates, so every send carries our own message id
//! (`SessionContext` at Tencent, `OutId` at Aliyun) and an ambiguous failure (a timeout, a
//! broken connection, a 5xx) is reported as [`Outcome::Unknown`]: the dispatcher then asks the
//! provider with [`SmsProvider::lookup`] before it ever sends that message again.
//!
//! What each client can prove:
//! - Tencent ([`tencent`]): a call carries up to 200 numbers and one `SessionContext`, which
//!   holds the ids of the call's messages joined by commas (each number once per call). A
//!   look-up pulls the number's status records and finds the one whose context lists our id.
//!   Tencent lists a message only once the operator's delivery report has come back.
//! - Aliyun ([`aliyun`]): one `SendSms` call per message with `OutId` = our id (Aliyun takes
//!   one `OutId` per call); a look-up (`QuerySendDetails`) finds the record by number, date
//!   and `OutId`, report or not.
//! - Both: "not found" only becomes [`Lookup::NotSent`] once `sms.lookup_grace_seconds` have
//!   passed since the attempt; before that it is [`Lookup::Unknown`].

pub mod aliyun;
pub mod log;
pub mod signing;
pub mod tencent;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDateTime, Utc};
use secrecy::ExposeSecret;
use subtle::ConstantTimeEq;

use crate::domain::PhoneNumber;
use crate::settings::{Mode, Settings, SmsProvider as ProviderKind, SmsSettings};

/// One message of a batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sms {
    /// Our id of the message (sent as `SessionContext` / `OutId`, echoed in receipts).
    pub message_id: String,
    /// Mainland mobile number, 11 digits (the provider's prefix, `+86`, is added by the client).
    pub phone: String,
}

/// Messages that share a template and its parameters: one provider call (Tencent), or one
/// call per message (Aliyun, whose `max_batch` is 1).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SmsBatch {
    /// Tencent `TemplateId` / Aliyun `TemplateCode`.
    pub template: String,
    /// The template's parameters in template order, by name (Tencent uses the values in
    /// order, Aliyun the names).
    pub params: Vec<(String, String)>,
    /// The approved signature (签名), e.g. 内蒙古职工互助.
    pub sign_name: String,
    /// At most [`SmsProvider::max_batch`].
    pub messages: Vec<Sms>,
}

/// What became of one message of a call.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// The provider took it (Tencent `Code: "Ok"`, Aliyun `Code: "OK"`): never send it again.
    Accepted {
        /// Tencent `SerialNo` / Aliyun `BizId`, used to match receipts.
        provider_id: String,
    },
    /// The provider answered that it did not take it.
    Rejected {
        /// The provider's code, e.g. `LimitExceeded.PhoneNumberDailyLimit`,
        /// `isv.MOBILE_NUMBER_ILLEGAL`; or ours for failures before the provider was
        /// reached: `huzhu.invalid_phone`, `huzhu.connect_failed`.
        code: String,
        message: String,
        /// True when sending again cannot help (bad number, blacklist, template or signature
        /// mismatch, missing parameter, wrong credentials); false for limits, throttling,
        /// an empty balance and the provider's own passing errors.
        permanent: bool,
    },
    /// No clear answer (timeout, broken connection, server error): it may have been sent.
    Unknown { reason: String },
}

/// What the provider knows of a message whose outcome was [`Outcome::Unknown`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lookup {
    /// It was sent.
    Sent {
        /// Tencent `SerialNo`; Aliyun's `QuerySendDetails` does not return the `BizId`, so
        /// there it is the one passed in, if any.
        provider_id: Option<String>,
        /// The operator's delivery report, when the provider's record already holds one.
        report: Option<DeliveryReport>,
    },
    /// The provider has no record of it and the grace period has passed (it is safe to send
    /// again).
    NotSent,
    /// The provider could not be asked, or cannot tell yet (try later).
    Unknown { reason: String },
}

/// What a provider's record says of a message's delivery (a look-up's copy of the receipt).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliveryReport {
    /// The handset received it.
    pub delivered: bool,
    /// The operator's code when it was not delivered.
    pub code: Option<String>,
    pub description: Option<String>,
    /// When the handset received it (or the report was made).
    pub at: Option<DateTime<Utc>>,
}

/// A delivery receipt, as the provider posts it to our callback.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Receipt {
    /// Tencent `sid` / Aliyun `biz_id`.
    pub provider_id: Option<String>,
    /// Our message id when the provider echoes it (Aliyun `out_id`).
    pub message_id: Option<String>,
    /// The number, 11 digits.
    pub phone: String,
    /// The handset received it.
    pub delivered: bool,
    /// The operator's code when it was not delivered.
    pub code: Option<String>,
    pub description: Option<String>,
    /// When the handset received it (or the report was made).
    pub at: Option<DateTime<Utc>>,
}

/// A provider of SMS.
#[async_trait]
pub trait SmsProvider: Send + Sync {
    /// `tencent`, `aliyun` or `log`.
    fn name(&self) -> &'static str;

    /// Most messages one [`SmsProvider::send`] should carry (Tencent 200, Aliyun 1, log 1000).
    /// A bigger batch still works, split into several calls.
    fn max_batch(&self) -> usize;

    /// Sends a batch; one outcome per message, in the batch's order, keyed by message id.
    async fn send(&self, batch: &SmsBatch) -> Vec<(String, Outcome)>;

    /// Asks the provider whether the message `message_id` to `phone`, attempted at
    /// `attempted_at` (when the call that timed out was started), was sent. `provider_id` is
    /// the id the provider gave, if one is known.
    async fn lookup(
        &self,
        phone: &str,
        attempted_at: DateTime<Utc>,
        message_id: &str,
        provider_id: Option<&str>,
    ) -> Lookup;
}

/// Why the configured provider cannot be built.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// Settings the provider cannot work without.
    #[error("sms.provider = {provider} needs {missing} configured")]
    Missing {
        provider: &'static str,
        /// The keys, e.g. `sms.secret_id, sms.sdk_app_id`.
        missing: String,
    },
    /// A setting that cannot be used.
    #[error("sms.{key}: {reason}")]
    Invalid { key: &'static str, reason: String },
    /// The HTTP client could not be built.
    #[error("building the HTTP client for SMS")]
    Http(#[source] reqwest::Error),
}

/// Builds the provider `settings.sms` configures. Tencent and Aliyun need their credentials
/// and a signature; the log provider needs nothing (in production it is allowed, with a
/// warning, for associations that send no SMS).
pub fn provider(settings: &Settings) -> Result<Arc<dyn SmsProvider>, ProviderError> {
    let sms = &settings.sms;
    Ok(match sms.provider {
        ProviderKind::Log => {
            if settings.effective_mode() == Mode::Production {
                tracing::warn!(
                    "sms.provider is `log` in production: reminders are written to the log, \
                     not sent"
                );
            }
            Arc::new(log::LogSms::new(sms.short_params))
        }
        ProviderKind::Tencent => Arc::new(tencent::TencentSms::new(sms)?),
        ProviderKind::Aliyun => Arc::new(aliyun::AliyunSms::new(sms)?),
    })
}

/// Whether `presented` is the configured receipt callback token (in constant time). Without
/// a configured token every receipt is refused.
pub fn receipt_token_matches(settings: &SmsSettings, presented: &str) -> bool {
    settings.receipt_secret.as_ref().is_some_and(|secret| {
        let expected = secret.expose_secret().as_bytes();
        !expected.is_empty() && bool::from(expected.ct_eq(presented.as_bytes()))
    })
}

/// Most characters a template variable may have on accounts that limit them (newer Tencent
/// accounts).
pub const SHORT_PARAM_CHARS: usize = 6;

/// The parameters as they will be sent: with `short`, each value is cut to
/// [`SHORT_PARAM_CHARS`] characters (characters, not bytes: `12月31日` is 6).
///
/// Cutting is blunt, so templates for such accounts must put in each variable only what
/// still reads when cut: dates as `12月31日` (not `2025年12月31日`), amounts in yuan without
/// decimals, a short case number rather than a name.
pub fn fit_params(params: &[(String, String)], short: bool) -> Vec<(String, String)> {
    params
        .iter()
        .map(|(name, value)| {
            let value = if short {
                value.chars().take(SHORT_PARAM_CHARS).collect()
            } else {
                value.clone()
            };
            (name.clone(), value)
        })
        .collect()
}

/// Characters in one single SMS, signature included.
pub const SINGLE_SMS_CHARS: usize = 70;
/// Characters in each part of a longer, concatenated SMS.
pub const MULTIPART_SMS_CHARS: usize = 67;

/// How long a message is, as the operators count it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SmsLength {
    /// Characters, the signature `【…】` included.
    pub chars: usize,
    /// Messages billed: 1 up to 70 characters, else one per 67.
    pub parts: usize,
}

impl SmsLength {
    /// More than one message: worth a warning (cost, and some handsets show parts apart).
    pub fn is_multipart(&self) -> bool {
        self.parts > 1
    }
}

/// The length of `text` sent under the signature `sign_name` (counted with its 【】).
pub fn sms_length(sign_name: &str, text: &str) -> SmsLength {
    let chars = sign_name.chars().count() + 2 + text.chars().count();
    let parts = if chars <= SINGLE_SMS_CHARS {
        1
    } else {
        chars.div_ceil(MULTIPART_SMS_CHARS)
    };
    SmsLength { chars, parts }
}

/// The template wording `body` with each `{name}` replaced by its parameter's value (for
/// previews, the log and the length check; the providers fill in their own copy).
pub fn render(body: &str, params: &[(String, String)]) -> String {
    params.iter().fold(body.to_owned(), |text, (name, value)| {
        text.replace(&format!("{{{name}}}"), value)
    })
}

/// Logs a warning when the rendered message runs to several parts; returns its length.
pub fn warn_if_long(sign_name: &str, text: &str) -> SmsLength {
    let length = sms_length(sign_name, text);
    if length.is_multipart() {
        tracing::warn!(
            chars = length.chars,
            parts = length.parts,
            "SMS longer than {SINGLE_SMS_CHARS} characters: sent and billed as several messages"
        );
    }
    length
}

/// Why a receipt callback body could not be read. Never quotes the body (it holds numbers).
#[derive(Debug, thiserror::Error)]
pub enum ReceiptError {
    /// Not the JSON the provider sends.
    #[error("malformed receipt body ({category} error at line {line} column {column})")]
    Malformed {
        category: String,
        line: usize,
        column: usize,
    },
    /// A field holds a value the provider does not send.
    #[error("unexpected value in receipt field `{field}`")]
    UnexpectedValue { field: &'static str },
}

impl From<serde_json::Error> for ReceiptError {
    fn from(err: serde_json::Error) -> Self {
        Self::Malformed {
            category: format!("{:?}", err.classify()),
            line: err.line(),
            column: err.column(),
        }
    }
}

/// A provider's way of writing delivery receipts. Reading them is one skeleton
/// ([`read_receipts`]): the body is a JSON array of reports (a single object is taken too),
/// each report becomes a [`Receipt`] tidied by the same rules, and the callback answers with
/// the provider's acknowledgement. A dialect says only what differs between providers: the
/// report's fields, how it says "delivered", which number and time it gives, and the
/// acknowledgement.
pub trait ReceiptDialect {
    /// One report as the provider posts it.
    type Report: serde::de::DeserializeOwned;
    /// What our callback answers; without it the provider posts the same receipts again.
    const ANSWER: &'static str;
    /// The report as a receipt, its texts as the provider wrote them (empty ones included);
    /// or the field holding a value the provider does not send.
    fn receipt(report: Self::Report) -> Result<Receipt, ReceiptError>;
}

/// Reads a delivery receipt callback body in the dialect `D`.
pub fn read_receipts<D: ReceiptDialect>(body: &[u8]) -> Result<Vec<Receipt>, ReceiptError> {
    let reports: OneOrMany<D::Report> = serde_json::from_slice(body)?;
    reports
        .into_vec()
        .into_iter()
        .map(|report| D::receipt(report).map(tidy))
        .collect()
}

/// A receipt without the empty texts providers send for "none".
fn tidy(receipt: Receipt) -> Receipt {
    let present = |text: Option<String>| text.filter(|t| !t.is_empty());
    Receipt {
        provider_id: present(receipt.provider_id),
        message_id: present(receipt.message_id),
        // Operators send a code for delivered messages too (`DELIVRD`): it says nothing a
        // reader needs, so only a failure keeps its code.
        code: present(receipt.code).filter(|_| !receipt.delivered),
        description: present(receipt.description),
        ..receipt
    }
}

/// A provider that posts delivery receipts to our callback, as its URL names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReceiptSource {
    Tencent,
    Aliyun,
}

impl ReceiptSource {
    /// `tencent` or `aliyun`; anything else posts no receipts to us.
    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "tencent" => Some(Self::Tencent),
            "aliyun" => Some(Self::Aliyun),
            _ => None,
        }
    }

    /// The provider's name, as the send log records it.
    pub fn name(self) -> &'static str {
        match self {
            Self::Tencent => "tencent",
            Self::Aliyun => "aliyun",
        }
    }

    /// The receipts of a callback body.
    pub fn read(self, body: &[u8]) -> Result<Vec<Receipt>, ReceiptError> {
        match self {
            Self::Tencent => read_receipts::<tencent::TencentReceipts>(body),
            Self::Aliyun => read_receipts::<aliyun::AliyunReceipts>(body),
        }
    }

    /// The acknowledgement the provider expects.
    pub fn answer(self) -> &'static str {
        match self {
            Self::Tencent => <tencent::TencentReceipts as ReceiptDialect>::ANSWER,
            Self::Aliyun => <aliyun::AliyunReceipts as ReceiptDialect>::ANSWER,
        }
    }
}

/// A receipt body: the providers post a JSON array; a single object is taken too.
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum OneOrMany<T> {
    Many(Vec<T>),
    One(T),
}

impl<T> OneOrMany<T> {
    fn into_vec(self) -> Vec<T> {
        match self {
            Self::Many(items) => items,
            Self::One(item) => vec![item],
        }
    }
}

/// `YYYY-MM-DD HH:MM:SS` in Asia/Shanghai (how both providers write times) as UTC.
pub(crate) fn shanghai_time(text: &str) -> Option<DateTime<Utc>> {
    let naive = NaiveDateTime::parse_from_str(text.trim(), "%Y-%m-%d %H:%M:%S").ok()?;
    naive
        .and_local_timezone(chrono_tz::Asia::Shanghai)
        .earliest()
        .map(|at| at.with_timezone(&Utc))
}

/// The number as the providers want it, or the rejection of a message whose number is not a
/// mainland mobile number (never sent: the provider would refuse it anyway).
pub(crate) fn checked_phone(sms: &Sms) -> Result<PhoneNumber, Outcome> {
    PhoneNumber::parse(&sms.phone).map_err(|_| Outcome::Rejected {
        code: "huzhu.invalid_phone".to_owned(),
        message: "not a mainland China mobile number".to_owned(),
        permanent: true,
    })
}

/// The masked form of a number for logs (`139****1234`), whatever its shape.
pub(crate) fn masked(phone: &str) -> String {
    PhoneNumber::parse(phone).map_or_else(|_| "***".to_owned(), |p| p.masked())
}

/// How a provider's error code is to be taken.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Not sent; sending again cannot help.
    Permanent,
    /// Not sent; sending again later may work.
    Transient,
    /// The provider itself does not know whether it went out: [`Outcome::Unknown`].
    Ambiguous,
}

/// How one provider's error codes are taken: groups tried in order, the first that holds the
/// code deciding (so an exception goes before the family it belongs to). A code in no group is
/// taken as transient and logged: a retry costs a call, while giving up on a code we do not
/// know yet would lose the reminder.
pub(crate) struct CodeBook {
    pub(crate) provider: &'static str,
    pub(crate) groups: &'static [CodeGroup],
}

/// Codes that are taken alike.
pub(crate) struct CodeGroup {
    pub(crate) verdict: Verdict,
    /// The code needs a person (credentials, account, approved signature or template,
    /// balance): logged at error level, since no message can go out until it is fixed.
    pub(crate) config: bool,
    /// Whole codes.
    pub(crate) codes: &'static [&'static str],
    /// Families: a code's part before its first `.` (`LimitExceeded` holds
    /// `LimitExceeded.PhoneNumberDailyLimit`).
    pub(crate) families: &'static [&'static str],
    /// Beginnings of codes (`isv.ACCOUNT_`).
    pub(crate) prefixes: &'static [&'static str],
}

impl CodeGroup {
    /// A group holding nothing yet, to be filled with `..CodeGroup::EMPTY`.
    pub(crate) const EMPTY: CodeGroup = CodeGroup {
        verdict: Verdict::Transient,
        config: false,
        codes: &[],
        families: &[],
        prefixes: &[],
    };

    fn holds(&self, code: &str, family: &str) -> bool {
        self.codes.contains(&code)
            || self.families.contains(&family)
            || self.prefixes.iter().any(|prefix| code.starts_with(prefix))
    }
}

impl CodeBook {
    /// The verdict on `code`, and whether it needs a person.
    pub(crate) fn classify(&self, code: &str) -> (Verdict, bool) {
        let family = code.split('.').next().unwrap_or(code);
        match self.groups.iter().find(|group| group.holds(code, family)) {
            Some(group) => (group.verdict, group.config),
            None => {
                tracing::warn!(
                    provider = self.provider,
                    code,
                    "unknown error code, taken as transient"
                );
                (Verdict::Transient, false)
            }
        }
    }

    /// The provider's refusal with `code` as an outcome.
    pub(crate) fn outcome(&self, code: &str, message: &str) -> Outcome {
        let (verdict, config) = self.classify(code);
        if config {
            tracing::error!(
                provider = self.provider,
                code,
                message,
                "SMS provider refused our configuration or account"
            );
        }
        match verdict {
            Verdict::Permanent | Verdict::Transient => Outcome::Rejected {
                code: code.to_owned(),
                message: message.to_owned(),
                permanent: verdict == Verdict::Permanent,
            },
            Verdict::Ambiguous => Outcome::Unknown {
                reason: format!("{} answered {code}: {message}", self.provider),
            },
        }
    }
}

/// What a failed HTTP exchange means for the message: a failure to connect never sent
/// anything; anything later (a timeout, a dropped connection) may have.
pub(crate) fn transport_outcome(provider: &'static str, err: &reqwest::Error) -> Outcome {
    tracing::warn!(
        provider,
        timeout = err.is_timeout(),
        connect = err.is_connect(),
        "SMS provider could not be reached or did not answer"
    );
    if err.is_connect() {
        Outcome::Rejected {
            code: "huzhu.connect_failed".to_owned(),
            message: format!("could not connect to {provider}"),
            permanent: false,
        }
    } else if err.is_builder() {
        Outcome::Rejected {
            code: "huzhu.request_not_built".to_owned(),
            message: format!("the request to {provider} could not be built"),
            permanent: false,
        }
    } else if err.is_timeout() {
        Outcome::Unknown {
            reason: format!("{provider} did not answer in time"),
        }
    } else {
        Outcome::Unknown {
            reason: format!("the exchange with {provider} broke off"),
        }
    }
}

/// The HTTP client of the SMS clients: short timeouts, no redirects (a redirected POST
/// would be re-sent as something else).
pub(crate) fn http_client(settings: &SmsSettings) -> Result<reqwest::Client, ProviderError> {
    if settings.timeout_ms == 0 || settings.connect_timeout_ms == 0 {
        return Err(ProviderError::Invalid {
            key: "timeout_ms",
            reason: "timeouts must be above zero".to_owned(),
        });
    }
    crate::integrations::tls::install_crypto_provider();
    reqwest::Client::builder()
        .connect_timeout(Duration::from_millis(settings.connect_timeout_ms))
        .timeout(Duration::from_millis(settings.timeout_ms))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("huzhu/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(ProviderError::Http)
}

/// Credentials both remote providers need, checked together so one error names every
/// missing key.
pub(crate) struct Credentials {
    pub(crate) secret_id: String,
    pub(crate) secret_key: secrecy::SecretString,
}

pub(crate) fn required_credentials(
    provider: &'static str,
    settings: &SmsSettings,
    extra_missing: &[&'static str],
) -> Result<Credentials, ProviderError> {
    let mut missing: Vec<&str> = Vec::new();
    let id = settings
        .secret_id
        .as_deref()
        .filter(|id| !id.trim().is_empty());
    let key = settings
        .secret_key
        .as_ref()
        .filter(|key| !key.expose_secret().is_empty());
    if id.is_none() {
        missing.push("sms.secret_id");
    }
    if key.is_none() {
        missing.push("sms.secret_key");
    }
    if settings.sign_name.trim().is_empty() {
        missing.push("sms.sign_name");
    }
    missing.extend_from_slice(extra_missing);
    match (id, key) {
        (Some(id), Some(key)) if missing.is_empty() => Ok(Credentials {
            secret_id: id.trim().to_owned(),
            secret_key: key.clone(),
        }),
        _ => Err(ProviderError::Missing {
            provider,
            missing: missing.join(", "),
        }),
    }
}

/// A base URL without its trailing slash, checked to be http(s).
pub(crate) fn base_url(key: &'static str, value: &str) -> Result<reqwest::Url, ProviderError> {
    let url = reqwest::Url::parse(value.trim()).map_err(|err| ProviderError::Invalid {
        key,
        reason: err.to_string(),
    })?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(ProviderError::Invalid {
            key,
            reason: "must be an http(s) URL with a host".to_owned(),
        });
    }
    Ok(url)
}

/// Whether a "not found" from the provider can be believed yet.
pub(crate) fn past_grace(attempted_at: DateTime<Utc>, grace: Duration) -> bool {
    let elapsed = Utc::now().signed_duration_since(attempted_at);
    elapsed.to_std().is_ok_and(|elapsed| elapsed >= grace)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn short_params_are_cut_to_six_characters_not_bytes() {
        let fitted = fit_params(
            &params(&[
                ("date", "2025年12月31日"),
                ("amount", "1200"),
                ("name", "张三丰丰丰丰丰"),
            ]),
            true,
        );
        assert_eq!(
            fitted,
            // Six characters of a long date no longer read: hence `12月31日` in templates.
            params(&[
                ("date", "2025年1"),
                ("amount", "1200"),
                ("name", "张三丰丰丰丰")
            ])
        );
        assert_eq!(
            fit_params(&params(&[("date", "12月31日")]), true)[0].1,
            "12月31日"
        );
    }

    #[test]
    fn without_short_params_values_are_kept() {
        let original = params(&[("date", "2025年12月31日")]);
        assert_eq!(fit_params(&original, false), original);
    }

    #[test]
    fn length_counts_the_signature_and_splits_at_67() {
        let sign = "职工互助"; // 4 + 【】 = 6
        assert_eq!(
            sms_length(sign, &"字".repeat(64)),
            SmsLength {
                chars: 70,
                parts: 1
            }
        );
        assert_eq!(
            sms_length(sign, &"字".repeat(65)),
            SmsLength {
                chars: 71,
                parts: 2
            }
        );
        assert_eq!(
            sms_length(sign, &"字".repeat(128)),
            SmsLength {
                chars: 134,
                parts: 2
            }
        );
        assert_eq!(
            sms_length(sign, &"字".repeat(129)),
            SmsLength {
                chars: 135,
                parts: 3
            }
        );
        assert!(!sms_length(sign, "您的报销已到账").is_multipart());
    }

    #[test]
    fn render_fills_named_placeholders() {
        assert_eq!(
            render(
                "您的{claim}号报销{amount}元已于{date}到账",
                &params(&[("claim", "A12"), ("amount", "300"), ("date", "12月31日")])
            ),
            "您的A12号报销300元已于12月31日到账"
        );
    }

    #[test]
    fn receipt_token_needs_a_configured_secret_and_an_exact_match() {
        let mut settings = SmsSettings::default();
        assert!(!receipt_token_matches(&settings, ""));
        assert!(!receipt_token_matches(&settings, "anything"));
        settings.receipt_secret = Some(secrecy::SecretString::from("s3cret-token".to_owned()));
        assert!(receipt_token_matches(&settings, "s3cret-token"));
        assert!(!receipt_token_matches(&settings, "s3cret-toke"));
        assert!(!receipt_token_matches(&settings, ""));
    }

    #[test]
    fn shanghai_times_become_utc() {
        assert_eq!(
            shanghai_time("2017-01-01 08:00:00").map(|t| t.to_rfc3339()),
            Some("2017-01-01T00:00:00+00:00".to_owned())
        );
        assert_eq!(shanghai_time("yesterday"), None);
    }

    #[test]
    fn remote_providers_name_every_missing_setting() {
        let mut settings = Settings::default();
        settings.sms.provider = ProviderKind::Tencent;
        let err = provider(&settings).err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some(
                "sms.provider = tencent needs sms.secret_id, sms.secret_key, sms.sdk_app_id configured"
            )
        );
        settings.sms.provider = ProviderKind::Aliyun;
        settings.sms.secret_id = Some("id".to_owned());
        let err = provider(&settings).err().map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some("sms.provider = aliyun needs sms.secret_key configured")
        );
    }

    #[test]
    fn clients_never_show_the_secret_key() {
        let settings = SmsSettings {
            secret_id: Some("AKIDexample".to_owned()),
            secret_key: Some(secrecy::SecretString::from("top-secret-key".to_owned())),
            sdk_app_id: Some("1400006666".to_owned()),
            ..SmsSettings::default()
        };
        let tencent = format!("{:?}", tencent::TencentSms::new(&settings).ok());
        let aliyun = format!("{:?}", aliyun::AliyunSms::new(&settings).ok());
        for text in [tencent, aliyun] {
            assert!(text.contains("AKIDexample"), "{text}");
            assert!(!text.contains("top-secret-key"), "{text}");
        }
    }

    #[test]
    fn the_log_provider_is_the_default() {
        let provider = provider(&Settings::default()).map(|p| p.name());
        assert_eq!(provider.ok(), Some("log"));
    }
}

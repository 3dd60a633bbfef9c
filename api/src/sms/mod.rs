//! Sending SMS: one interface over Tencent Cloud SMS, Aliyun SMS and the log (embedded
//! default), and reading their delivery receipts. No database here: the dispatcher
//! (`crate::service::reminders`) decides what to send and records what happened.
//!
//! Neither provider de-duplicates, so every send carries our own message id
//! (`SessionContext` at Tencent, `OutId` at Aliyun) and an ambiguous failure (a timeout, a
//! broken connection, a 5xx) is reported as [`Outcome::Unknown`]: the dispatcher then asks the
//! provider with [`SmsProvider::lookup`] before it ever sends that message again.

pub mod signing;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDate, Utc};

/// One message of a batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Sms {
    /// Our id of the message (sent as `SessionContext` / `OutId`, echoed in receipts).
    pub message_id: String,
    /// Mainland mobile number, 11 digits (the provider's prefix, `+86`, is added by the client).
    pub phone: String,
}

/// Messages that share a template and its parameters: one provider call.
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
        /// `isv.MOBILE_NUMBER_ILLEGAL`.
        code: String,
        message: String,
        /// True when sending again cannot help (bad number, blacklist, template or signature
        /// mismatch, missing parameter); false for limits, throttling and internal errors.
        permanent: bool,
    },
    /// No clear answer (timeout, broken connection, server error): it may have been sent.
    Unknown { reason: String },
}

/// What the provider knows of a message whose outcome was [`Outcome::Unknown`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lookup {
    /// It was sent.
    Sent { provider_id: String },
    /// The provider has no record of it (it is safe to send again).
    NotSent,
    /// The provider could not be asked (try later).
    Unknown { reason: String },
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

    /// Most numbers one call may carry.
    fn max_batch(&self) -> usize;

    /// Sends a batch; one outcome per message, in the batch's order, keyed by message id.
    async fn send(&self, batch: &SmsBatch) -> Vec<(String, Outcome)>;

    /// Asks the provider whether the message `message_id` to `phone`, attempted on `sent_on`
    /// (Asia/Shanghai), was sent.
    async fn lookup(
        &self,
        phone: &str,
        sent_on: NaiveDate,
        message_id: &str,
        provider_id: Option<&str>,
    ) -> Lookup;
}

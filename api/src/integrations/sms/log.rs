//! The embedded default: every message goes to the log (number masked) instead of a phone.
//!
//! It answers like a provider that never fails, so the dispatcher's logic holds unchanged:
//! each message is accepted with the id `log-<message id>`, and a look-up of a message it
//! accepted answers [`Lookup::Sent`]. It remembers what it accepted in memory only: after a
//! restart a look-up answers [`Lookup::NotSent`] and the dispatcher logs the message again,
//! which is harmless here.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::{Lookup, Outcome, SmsBatch, SmsProvider, checked_phone, fit_params};

/// Writes messages to the log.
#[derive(Debug, Default)]
pub struct LogSms {
    short_params: bool,
    /// Message id → provider id of every message accepted by this process.
    accepted: Mutex<HashMap<String, String>>,
}

impl LogSms {
    /// A log provider; with `short_params`, parameters are cut as a short-parameter account
    /// would need them, so the log shows what would be sent.
    pub fn new(short_params: bool) -> Self {
        Self {
            short_params,
            accepted: Mutex::new(HashMap::new()),
        }
    }
}

#[async_trait]
impl SmsProvider for LogSms {
    fn name(&self) -> &'static str {
        "log"
    }

    fn max_batch(&self) -> usize {
        1000
    }

    async fn send(&self, batch: &SmsBatch) -> Vec<(String, Outcome)> {
        let params = fit_params(&batch.params, self.short_params);
        let mut accepted = self.accepted.lock().unwrap_or_else(PoisonError::into_inner);
        batch
            .messages
            .iter()
            .map(|sms| {
                let outcome = match checked_phone(sms) {
                    Err(rejected) => rejected,
                    Ok(phone) => {
                        let provider_id = format!("log-{}", sms.message_id);
                        tracing::info!(
                            message_id = %sms.message_id,
                            phone = %phone.masked(),
                            template = %batch.template,
                            sign_name = %batch.sign_name,
                            params = ?params,
                            "SMS (log provider: not sent to a phone)"
                        );
                        accepted.insert(sms.message_id.clone(), provider_id.clone());
                        Outcome::Accepted { provider_id }
                    }
                };
                (sms.message_id.clone(), outcome)
            })
            .collect()
    }

    async fn lookup(
        &self,
        _phone: &str,
        _attempted_at: DateTime<Utc>,
        message_id: &str,
        _provider_id: Option<&str>,
    ) -> Lookup {
        let accepted = self.accepted.lock().unwrap_or_else(PoisonError::into_inner);
        match accepted.get(message_id) {
            Some(provider_id) => Lookup::Sent {
                provider_id: Some(provider_id.clone()),
                report: None,
            },
            None => Lookup::NotSent,
        }
    }
}

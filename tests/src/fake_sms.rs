//! Local stand-ins for Tencent Cloud SMS (API 3.0, 2021-01-11) and Aliyun SMS (Dysmsapi
//! 2017-05-25), answering like the real services: each request's signature is recomputed
//! with the test secret (TC3-HMAC-SHA256 / RPC HMAC-SHA1, through the same signing functions
//! the clients use) and a wrong one is refused as the service does (`AuthFailure.SignatureFailure`
//! with HTTP 200 / `SignatureDoesNotMatch` with HTTP 400); accepted messages are recorded and the
//! status queries (`PullSmsSendStatusByPhoneNumber`, `QuerySendDetails`) answer from that record.
//!
//! Both fakes dereference to [`FakeGateway`], which holds the knobs and the record:
//!
//! ```ignore
//! let tencent = FakeTencent::start().await;
//! let mut settings = Settings::default();
//! settings.sms = tencent.settings();            // provider, base URL, credentials, 400 ms
//! tencent.time_out_after_accepting(Pattern::Next(1));
//! // ... send ...
//! assert_eq!(tencent.delivered("42"), 1);
//! ```
//!
//! Simplifications: every accepted message is listed by the status queries at once, as if
//! its delivery report had arrived (`ReportStatus: SUCCESS` / `SendStatus: 3`, or the failure
//! [`FakeGateway::fail_delivery`] sets); Tencent
//! echoes `SessionContext` in them unless [`FakeGateway::hide_session_context`] is called
//! (the real default, until Tencent's SMS helper enables it).

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::TcpListener;
use std::ops::Deref;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use actix_web::dev::ServerHandle;
use actix_web::http::StatusCode;
use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use chrono::{DateTime, NaiveDateTime, Utc};
use huzhu::integrations::sms::signing::{Tc3Request, aliyun_rpc_signature, tc3_sign};
use huzhu::settings::{SmsProvider, SmsSettings};
use secrecy::SecretString;
use serde_json::{Value, json};

/// What "not answering" means: longer than any test waits.
const STALL: Duration = Duration::from_secs(3600);
/// The client timeout in [`FakeGateway::settings`]: short, so time-out tests are quick.
pub const CLIENT_TIMEOUT_MS: u64 = 400;
/// The signature (签名) the fakes have "approved".
pub const SIGN_NAME: &str = "互助测试";
/// Tencent refuses a request whose timestamp is further than this from its clock.
const TENCENT_CLOCK_SKEW: i64 = 300;
/// Aliyun refuses a request whose timestamp is further than this from its clock.
const ALIYUN_CLOCK_SKEW: i64 = 900;

/// Which send requests a knob applies to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Pattern {
    /// Every send request from now on.
    Every,
    /// The next `n` send requests, then the knob is spent.
    Next(usize),
    /// Every send request that carries this number (11 digits).
    Phone(String),
    /// About this many in a hundred send requests, drawn at random for each.
    Percent(u8),
}

/// A message the fake accepted ("it reached the gateway").
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SentSms {
    /// Our message id this record belongs to: the `OutId`, or at Tencent the id at the
    /// number's position in the comma-separated `SessionContext` (the whole context when the
    /// counts differ).
    pub message_id: String,
    /// `SessionContext` / `OutId` exactly as received.
    pub context: String,
    /// 11 digits.
    pub phone: String,
    /// `TemplateId` / `TemplateCode`.
    pub template: String,
    pub sign_name: String,
    /// Tencent: `("1", v1), ("2", v2)…` in `TemplateParamSet` order; Aliyun: the
    /// `TemplateParam` object's entries.
    pub params: Vec<(String, String)>,
    /// `SerialNo` / `BizId`.
    pub provider_id: String,
    pub at: DateTime<Utc>,
}

#[derive(Default)]
struct State {
    requests: usize,
    send_requests: usize,
    lookups: usize,
    refused_signatures: usize,
    sent: Vec<SentSms>,
    fail_every: usize,
    failing_counter: usize,
    failures: VecDeque<String>,
    stall_before: Vec<Pattern>,
    stall_after: Vec<Pattern>,
    rejected_numbers: HashMap<String, String>,
    per_number_limit: Option<usize>,
    max_param_chars: Option<usize>,
    hide_session_context: bool,
    nonces: HashSet<String>,
    /// Numbers whose messages the operator reports undelivered, with the report's code.
    undelivered: HashMap<String, String>,
}

impl State {
    /// Whether any of `patterns` applies to a send request carrying `phones` (spending a
    /// `Next` pattern that does).
    fn take_match(patterns: &mut Vec<Pattern>, phones: &[String]) -> bool {
        let Some(index) = patterns.iter().position(|pattern| match pattern {
            Pattern::Every => true,
            Pattern::Next(n) => *n > 0,
            Pattern::Phone(phone) => phones.contains(phone),
            Pattern::Percent(p) => rand::random_range(0..100u8) < *p,
        }) else {
            return false;
        };
        if let Pattern::Next(n) = &mut patterns[index] {
            *n -= 1;
            if *n == 0 {
                patterns.remove(index);
            }
        }
        true
    }

    /// The error code the next send request must fail with, if a knob says so.
    fn forced_failure(&mut self, periodic_code: &str) -> Option<String> {
        if let Some(code) = self.failures.pop_front() {
            return Some(code);
        }
        if self.fail_every > 0 {
            self.failing_counter += 1;
            if self.failing_counter.is_multiple_of(self.fail_every) {
                return Some(periodic_code.to_owned());
            }
        }
        None
    }

    fn accepted_count(&self, phone: &str) -> usize {
        self.sent.iter().filter(|s| s.phone == phone).count()
    }

    fn too_long(&self, params: &[(String, String)]) -> bool {
        self.max_param_chars
            .is_some_and(|max| params.iter().any(|(_, v)| v.chars().count() > max))
    }
}

/// The knobs and the record shared by both fakes.
pub struct FakeGateway {
    /// Root URL, e.g. `http://127.0.0.1:41234`.
    pub base_url: String,
    /// Tencent `SecretId` / Aliyun `AccessKey ID` the fake accepts.
    pub secret_id: String,
    /// The secret the fake verifies signatures with.
    pub secret_key: String,
    /// Tencent `SmsSdkAppId` (unused by Aliyun).
    pub sdk_app_id: String,
    /// The only signature the fake accepts ([`SIGN_NAME`]).
    pub sign_name: String,
    provider: SmsProvider,
    state: Arc<Mutex<State>>,
    server: ServerHandle,
}

impl FakeGateway {
    /// `SmsSettings` pointing at this fake, with its credentials, [`CLIENT_TIMEOUT_MS`]
    /// timeouts and no look-up grace period (so "not found" is believed at once).
    pub fn settings(&self) -> SmsSettings {
        let mut settings = SmsSettings {
            provider: self.provider,
            secret_id: Some(self.secret_id.clone()),
            secret_key: Some(SecretString::from(self.secret_key.clone())),
            sdk_app_id: Some(self.sdk_app_id.clone()),
            sign_name: self.sign_name.clone(),
            connect_timeout_ms: CLIENT_TIMEOUT_MS,
            timeout_ms: CLIENT_TIMEOUT_MS,
            lookup_grace_seconds: 0,
            ..SmsSettings::default()
        };
        match self.provider {
            SmsProvider::Aliyun => settings.aliyun_base_url.clone_from(&self.base_url),
            _ => settings.tencent_base_url.clone_from(&self.base_url),
        }
        settings
    }

    /// Every n-th send request (the n-th, 2n-th…) fails as a whole without recording
    /// anything: Tencent `RequestLimitExceeded`, Aliyun `Throttling.User` (HTTP 400).
    /// `fail_every(2)` fails half of them; 0 turns it off.
    pub fn fail_every(&self, n: usize) {
        let mut state = self.state();
        state.fail_every = n;
        state.failing_counter = 0;
    }

    /// The next send request fails as a whole with `code` (e.g. `InternalError`,
    /// `FailedOperation.InsufficientBalanceInSmsPackage`, `isv.OUT_OF_SERVICE`,
    /// `isp.SYSTEM_ERROR`), recording nothing. Several calls queue up in order.
    pub fn fail_next(&self, code: &str) {
        self.state().failures.push_back(code.to_owned());
    }

    /// The gateway recovers: no more forced failures nor time-outs (refused numbers, limits
    /// and delivery failures stay).
    pub fn recover(&self) {
        let mut state = self.state();
        state.fail_every = 0;
        state.failures.clear();
        state.stall_before.clear();
        state.stall_after.clear();
    }

    /// Matching send requests are processed (accepted messages recorded), then the answer
    /// never comes: the client times out although the messages went out.
    pub fn time_out_after_accepting(&self, pattern: Pattern) {
        self.state().stall_after.push(pattern);
    }

    /// Matching send requests are never processed nor answered: the client times out and
    /// nothing went out.
    pub fn time_out_before_accepting(&self, pattern: Pattern) {
        self.state().stall_before.push(pattern);
    }

    /// Messages to `phone` are refused with `code`: at Tencent in the number's
    /// `SendStatusSet` entry (e.g. `InvalidParameterValue.IncorrectPhoneNumber`,
    /// `FailedOperation.PhoneNumberInBlacklist`, `LimitExceeded.PhoneNumberDailyLimit`), at
    /// Aliyun as the call's answer (e.g. `isv.MOBILE_NUMBER_ILLEGAL`,
    /// `isv.BUSINESS_LIMIT_CONTROL`).
    pub fn reject_number(&self, phone: &str, code: &str) {
        self.state()
            .rejected_numbers
            .insert(phone.to_owned(), code.to_owned());
    }

    /// Frequency control: once `max` messages to a number were accepted, further ones are
    /// refused (Tencent `LimitExceeded.PhoneNumberDailyLimit`, Aliyun
    /// `isv.BUSINESS_LIMIT_CONTROL`).
    pub fn limit_per_number(&self, max: usize) {
        self.state().per_number_limit = Some(max);
    }

    /// Template variables longer than `chars` characters are refused (Tencent
    /// `InvalidParameterValue.TemplateParameterLengthLimit`, Aliyun `isv.PARAM_LENGTH_LIMIT`).
    pub fn limit_param_chars(&self, chars: usize) {
        self.state().max_param_chars = Some(chars);
    }

    /// Tencent status records come with an empty `SessionContext` (Tencent's default).
    pub fn hide_session_context(&self) {
        self.state().hide_session_context = true;
    }

    /// Messages to `phone` are accepted but the operator reports them undelivered with `code`
    /// (e.g. `MK:0001`): status records say `FAIL` / `SendStatus: 2`, and so do the receipts
    /// [`FakeGateway::receipt`] writes.
    pub fn fail_delivery(&self, phone: &str, code: &str) {
        self.state()
            .undelivered
            .insert(phone.to_owned(), code.to_owned());
    }

    /// The delivery receipt callback body the provider would post for our message
    /// `message_id` (the last time it was accepted), in its dialect: Tencent names the message
    /// by `sid` only, Aliyun by `biz_id` and `out_id`.
    ///
    /// # Panics
    /// If the fake never accepted that message (test-support code).
    pub fn receipt(&self, message_id: &str) -> Value {
        let state = self.state();
        let sent = state
            .sent
            .iter()
            .rev()
            .find(|s| s.message_id == message_id)
            .unwrap_or_else(|| panic!("fake SMS: {message_id} was never accepted"));
        let failure = state.undelivered.get(&sent.phone);
        let at = sent
            .at
            .with_timezone(&chrono_tz::Asia::Shanghai)
            .format("%Y-%m-%d %H:%M:%S")
            .to_string();
        match self.provider {
            SmsProvider::Aliyun => json!([{
                "phone_number": sent.phone, "send_time": at, "report_time": at,
                "success": failure.is_none(),
                "err_code": failure.map_or("DELIVERED", String::as_str),
                "err_msg": if failure.is_some() { "用户接收失败" } else { "用户接收成功" },
                "sms_size": "1", "biz_id": sent.provider_id, "out_id": sent.context,
            }]),
            _ => json!([{
                "user_receive_time": at, "nationcode": "86", "mobile": sent.phone,
                "report_status": if failure.is_some() { "FAIL" } else { "SUCCESS" },
                "errmsg": failure.map_or("DELIVRD", String::as_str),
                "description": if failure.is_some() { "用户接收失败" } else { "用户短信送达成功" },
                "sid": sent.provider_id,
            }]),
        }
    }

    /// How many times our message `message_id` was accepted by the fake.
    pub fn delivered(&self, message_id: &str) -> usize {
        self.state()
            .sent
            .iter()
            .filter(|s| s.message_id == message_id)
            .count()
    }

    /// Forgets every message accepted so far (counts and status queries start afresh): a
    /// long test that sends to the same few numbers again and again keeps each number's
    /// records within one page of a status query (Tencent lists at most 100).
    pub fn forget_sent(&self) {
        self.state().sent.clear();
    }

    /// Every accepted message, in order.
    pub fn sent(&self) -> Vec<SentSms> {
        self.state().sent.clone()
    }

    /// Requests of any kind that reached the fake (refused ones included).
    pub fn requests(&self) -> usize {
        self.state().requests
    }

    /// Send requests (`SendSms`) whose signature was good, failed or not.
    pub fn send_requests(&self) -> usize {
        self.state().send_requests
    }

    /// Status queries whose signature was good.
    pub fn lookups(&self) -> usize {
        self.state().lookups
    }

    /// Requests refused for a bad signature or unknown credentials.
    pub fn refused_signatures(&self) -> usize {
        self.state().refused_signatures
    }

    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }

    fn start(provider: SmsProvider, sdk_app_id: String, secret_id: String) -> Self {
        let secret_key = uuid::Uuid::new_v4().simple().to_string();
        let state = Arc::new(Mutex::new(State::default()));
        let config = Arc::new(Config {
            secret_id: secret_id.clone(),
            secret_key: secret_key.clone(),
            sdk_app_id: sdk_app_id.clone(),
            sign_name: SIGN_NAME.to_owned(),
        });
        let listener = TcpListener::bind("127.0.0.1:0").expect("fake SMS: cannot bind 127.0.0.1:0");
        let port = listener
            .local_addr()
            .expect("fake SMS: listener has no local address")
            .port();
        let data = web::Data::from(state.clone());
        let config_data = web::Data::from(config);
        let server = HttpServer::new(move || {
            let app = App::new()
                .app_data(data.clone())
                .app_data(config_data.clone())
                .app_data(web::FormConfig::default().limit(1 << 20))
                .app_data(web::PayloadConfig::default().limit(1 << 20));
            match provider {
                SmsProvider::Aliyun => app.route("/", web::post().to(aliyun)),
                _ => app.route("/", web::post().to(tencent)),
            }
        })
        .workers(1)
        .disable_signals()
        .listen(listener)
        .expect("fake SMS: cannot listen")
        .run();
        let handle = server.handle();
        tokio::spawn(server);
        Self {
            base_url: format!("http://127.0.0.1:{port}"),
            secret_id,
            secret_key,
            sdk_app_id,
            sign_name: SIGN_NAME.to_owned(),
            provider,
            state,
            server: handle,
        }
    }
}

impl Drop for FakeGateway {
    fn drop(&mut self) {
        let server = self.server.clone();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move { server.stop(false).await });
        }
    }
}

/// A running fake Tencent Cloud SMS on 127.0.0.1; stops when dropped.
pub struct FakeTencent(FakeGateway);

impl FakeTencent {
    /// Starts the fake on a free port with fresh credentials.
    ///
    /// # Panics
    /// If no local port can be bound (test-support code: there is nothing else to do).
    pub async fn start() -> Self {
        let app_id = format!("14{:08}", rand::random::<u32>() % 100_000_000);
        let secret_id = format!("AKID{}", uuid::Uuid::new_v4().simple());
        Self(FakeGateway::start(SmsProvider::Tencent, app_id, secret_id))
    }
}

impl Deref for FakeTencent {
    type Target = FakeGateway;
    fn deref(&self) -> &FakeGateway {
        &self.0
    }
}

/// A running fake Aliyun SMS on 127.0.0.1; stops when dropped.
pub struct FakeAliyun(FakeGateway);

impl FakeAliyun {
    /// Starts the fake on a free port with fresh credentials.
    ///
    /// # Panics
    /// If no local port can be bound (test-support code: there is nothing else to do).
    pub async fn start() -> Self {
        let access_key_id = format!("LTAI{}", &uuid::Uuid::new_v4().simple().to_string()[..20]);
        Self(FakeGateway::start(
            SmsProvider::Aliyun,
            String::new(),
            access_key_id,
        ))
    }
}

impl Deref for FakeAliyun {
    type Target = FakeGateway;
    fn deref(&self) -> &FakeGateway {
        &self.0
    }
}

struct Config {
    secret_id: String,
    secret_key: String,
    sdk_app_id: String,
    sign_name: String,
}

/// A refusal of the gateway: its code and message.
type Refusal = (&'static str, &'static str);

fn refusal(code: &'static str, message: &'static str) -> Refusal {
    (code, message)
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

fn request_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

static SERIAL: AtomicU64 = AtomicU64::new(1);

fn next_serial() -> u64 {
    SERIAL.fetch_add(1, Ordering::Relaxed)
}

/// The 11 digits of `+86…` (or of a bare number).
fn national(phone: &str) -> String {
    phone.strip_prefix("+86").unwrap_or(phone).to_owned()
}

// ---------------------------------------------------------------------------------------------
// Tencent
// ---------------------------------------------------------------------------------------------

fn tencent_error(code: &str, message: &str) -> HttpResponse {
    HttpResponse::Ok().json(json!({
        "Response": {
            "Error": { "Code": code, "Message": message },
            "RequestId": request_id(),
        }
    }))
}

fn tencent_message(code: &str) -> &'static str {
    match code {
        "RequestLimitExceeded" => {
            "Your current request times equals to `20` in a second, which exceeds the frequency limit `20` for a second. Please reduce the frequency of calls."
        }
        "InternalError" => {
            "An internal error has occurred. Retry your request, but if the problem persists, contact us."
        }
        "FailedOperation.InsufficientBalanceInSmsPackage" => "insufficient balance in SMS package",
        "InvalidParameterValue.IncorrectPhoneNumber" => "incorrect number format",
        "FailedOperation.PhoneNumberInBlacklist" => "the number is in blacklist",
        "LimitExceeded.PhoneNumberDailyLimit" => {
            "the number of SMS messages sent from a single mobile number every day exceeds the upper limit"
        }
        _ => "fake error",
    }
}

/// Checks the TC3 signature as Tencent does; the refusal (code, message) otherwise.
fn tencent_check(request: &HttpRequest, body: &[u8], config: &Config) -> Result<String, Refusal> {
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned()
    };
    let authorization = header("authorization");
    let action = header("x-tc-action");
    let version = header("x-tc-version");
    let region = header("x-tc-region");
    let Some(credential) = authorization
        .strip_prefix("TC3-HMAC-SHA256 Credential=")
        .and_then(|rest| rest.split(',').next())
    else {
        return Err(refusal(
            "AuthFailure.InvalidAuthorization",
            "Authorization header is malformed",
        ));
    };
    if credential.split('/').next() != Some(config.secret_id.as_str()) {
        return Err(refusal(
            "AuthFailure.SecretIdNotFound",
            "The SecretId is not found, please ensure that your SecretId is correct.",
        ));
    }
    let Ok(timestamp) = header("x-tc-timestamp").parse::<i64>() else {
        return Err(refusal("MissingParameter", "X-TC-Timestamp is missing"));
    };
    if (Utc::now().timestamp() - timestamp).abs() > TENCENT_CLOCK_SKEW {
        return Err(refusal(
            "AuthFailure.SignatureExpire",
            "Signature expired. Timestamp and server time cannot differ by more than five minutes.",
        ));
    }
    let expected = tc3_sign(&Tc3Request {
        secret_id: &config.secret_id,
        secret_key: &config.secret_key,
        service: "sms",
        host: &header("host"),
        action: &action,
        version: &version,
        region: (!region.is_empty()).then_some(region.as_str()),
        timestamp,
        content_type: &header("content-type"),
        payload: body,
    });
    if expected.authorization != authorization {
        return Err(refusal(
            "AuthFailure.SignatureFailure",
            "The provided credentials could not be validated. Please check your signature is correct.",
        ));
    }
    if version != "2021-01-11" {
        return Err(refusal(
            "NoSuchVersion",
            "The requested version does not exist.",
        ));
    }
    if region.is_empty() {
        return Err(refusal("MissingParameter", "X-TC-Region is missing"));
    }
    Ok(action)
}

async fn tencent(
    request: HttpRequest,
    body: web::Bytes,
    state: web::Data<Mutex<State>>,
    config: web::Data<Config>,
) -> HttpResponse {
    lock(&state).requests += 1;
    let action = match tencent_check(&request, &body, &config) {
        Ok(action) => action,
        Err((code, message)) => {
            lock(&state).refused_signatures += 1;
            return tencent_error(code, message);
        }
    };
    let Ok(body) = serde_json::from_slice::<Value>(&body) else {
        return tencent_error(
            "FailedOperation.JsonParseFail",
            "the request body is not JSON",
        );
    };
    if body["SmsSdkAppId"].as_str() != Some(config.sdk_app_id.as_str()) {
        return tencent_error(
            "UnauthorizedOperation.SmsSdkAppIdVerifyFail",
            "SmsSdkAppId verification failed",
        );
    }
    match action.as_str() {
        "SendSms" => tencent_send(&state, &config, &body).await,
        "PullSmsSendStatusByPhoneNumber" => tencent_pull(&state, &body),
        _ => tencent_error("InvalidAction", "The requested action does not exist."),
    }
}

/// What a send request does once checked.
enum Plan {
    Answer(HttpResponse),
    StallBefore,
    Accept { answer: HttpResponse, stall: bool },
}

async fn tencent_send(state: &Mutex<State>, config: &Config, body: &Value) -> HttpResponse {
    let plan = tencent_plan(&mut lock(state), config, body);
    match plan {
        Plan::Answer(answer) => answer,
        Plan::StallBefore => {
            tokio::time::sleep(STALL).await;
            HttpResponse::GatewayTimeout().finish()
        }
        Plan::Accept { answer, stall } => {
            if stall {
                tokio::time::sleep(STALL).await;
            }
            answer
        }
    }
}

fn tencent_plan(state: &mut State, config: &Config, body: &Value) -> Plan {
    state.send_requests += 1;
    let phones: Vec<String> = body["PhoneNumberSet"]
        .as_array()
        .map(|set| {
            set.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default();
    if phones.is_empty() {
        return Plan::Answer(tencent_error(
            "MissingParameter.EmptyPhoneNumberSet",
            "PhoneNumberSet is empty",
        ));
    }
    if phones.len() > 200 {
        return Plan::Answer(tencent_error(
            "LimitExceeded.PhoneNumberCountLimit",
            "more than 200 numbers in one request",
        ));
    }
    let context = body["SessionContext"].as_str().unwrap_or("").to_owned();
    if context.len() >= 512 {
        return Plan::Answer(tencent_error(
            "InvalidParameter",
            "SessionContext is too long",
        ));
    }
    if body["SignName"].as_str() != Some(config.sign_name.as_str()) {
        return Plan::Answer(tencent_error(
            "FailedOperation.SignatureIncorrectOrUnapproved",
            "signature format is incorrect or signature is not approved",
        ));
    }
    let Some(template) = body["TemplateId"].as_str().filter(|t| !t.is_empty()) else {
        return Plan::Answer(tencent_error("MissingParameter", "TemplateId is missing"));
    };
    let params: Vec<(String, String)> = body["TemplateParamSet"]
        .as_array()
        .map(|set| {
            set.iter()
                .enumerate()
                .map(|(i, v)| ((i + 1).to_string(), v.as_str().unwrap_or("").to_owned()))
                .collect()
        })
        .unwrap_or_default();
    if state.too_long(&params) {
        return Plan::Answer(tencent_error(
            "InvalidParameterValue.TemplateParameterLengthLimit",
            "the length of a single template variable exceeds the limit",
        ));
    }
    if let Some(code) = state.forced_failure("RequestLimitExceeded") {
        return Plan::Answer(tencent_error(&code, tencent_message(&code)));
    }
    let numbers: Vec<String> = phones.iter().map(|p| national(p)).collect();
    if State::take_match(&mut state.stall_before, &numbers) {
        return Plan::StallBefore;
    }
    let ids: Vec<&str> = context.split(',').collect();
    let mut statuses = Vec::new();
    for (index, (e164, phone)) in phones.iter().zip(&numbers).enumerate() {
        let refusal = state.rejected_numbers.get(phone).cloned().or_else(|| {
            state
                .per_number_limit
                .filter(|max| state.accepted_count(phone) >= *max)
                .map(|_| "LimitExceeded.PhoneNumberDailyLimit".to_owned())
        });
        if let Some(code) = refusal {
            statuses.push(json!({
                "SerialNo": "", "PhoneNumber": e164, "Fee": 0, "SessionContext": context,
                "Code": code, "Message": tencent_message(&code), "IsoCode": "CN",
            }));
            continue;
        }
        let serial = format!("2645:{:028}", next_serial());
        let message_id = if ids.len() == phones.len() {
            ids[index].to_owned()
        } else {
            context.clone()
        };
        state.sent.push(SentSms {
            message_id,
            context: context.clone(),
            phone: phone.clone(),
            template: template.to_owned(),
            sign_name: config.sign_name.clone(),
            params: params.clone(),
            provider_id: serial.clone(),
            at: Utc::now(),
        });
        statuses.push(json!({
            "SerialNo": serial, "PhoneNumber": e164, "Fee": 1, "SessionContext": context,
            "Code": "Ok", "Message": "send success", "IsoCode": "CN",
        }));
    }
    let stall = State::take_match(&mut state.stall_after, &numbers);
    Plan::Accept {
        answer: HttpResponse::Ok().json(json!({
            "Response": { "SendStatusSet": statuses, "RequestId": request_id() }
        })),
        stall,
    }
}

fn tencent_pull(state: &Mutex<State>, body: &Value) -> HttpResponse {
    let mut state = lock(state);
    state.lookups += 1;
    let (Some(begin), Some(end), Some(phone)) = (
        body["BeginTime"].as_i64(),
        body["EndTime"].as_i64(),
        body["PhoneNumber"].as_str(),
    ) else {
        return tencent_error(
            "MissingParameter",
            "BeginTime, EndTime and PhoneNumber are required",
        );
    };
    if begin > end {
        return tencent_error(
            "InvalidParameterValue.InvalidStartTime",
            "BeginTime is later than EndTime",
        );
    }
    if body["Offset"].as_u64() != Some(0) {
        return tencent_error("InvalidParameterValue.OffsetVerifyFail", "Offset must be 0");
    }
    let limit = match body["Limit"].as_u64() {
        Some(limit @ 1..=100) => usize::try_from(limit).unwrap_or(100),
        _ => {
            return tencent_error(
                "InvalidParameterValue.LimitVerifyFail",
                "Limit must be 1 to 100",
            );
        }
    };
    let phone = national(phone);
    let hide = state.hide_session_context;
    let records: Vec<Value> = state
        .sent
        .iter()
        .filter(|s| s.phone == phone && (begin..=end).contains(&s.at.timestamp()))
        .rev()
        .take(limit)
        .map(|s| {
            let failure = state.undelivered.get(&s.phone);
            json!({
                "UserReceiveTime": s.at.timestamp(),
                "CountryCode": "86",
                "SubscriberNumber": s.phone,
                "PhoneNumber": format!("+86{}", s.phone),
                "SerialNo": s.provider_id,
                "ReportStatus": if failure.is_some() { "FAIL" } else { "SUCCESS" },
                "Description": failure.map_or("DELIVRD", String::as_str),
                "SessionContext": if hide { "" } else { s.context.as_str() },
            })
        })
        .collect();
    HttpResponse::Ok().json(json!({
        "Response": { "PullSmsSendStatusSet": records, "RequestId": request_id() }
    }))
}

// ---------------------------------------------------------------------------------------------
// Aliyun
// ---------------------------------------------------------------------------------------------

/// The HTTP status Aliyun answers a code with: gateway errors 4xx/5xx, business errors 200.
fn aliyun_status(code: &str) -> StatusCode {
    match code {
        "InvalidAccessKeyId.NotFound" | "InvalidAction.NotFound" => StatusCode::NOT_FOUND,
        "InternalError" | "UnknownError" => StatusCode::INTERNAL_SERVER_ERROR,
        "ServiceUnavailable" => StatusCode::SERVICE_UNAVAILABLE,
        "Forbidden.RAM" => StatusCode::FORBIDDEN,
        code if code.starts_with("isv.") || code.starts_with("isp.") => StatusCode::OK,
        _ => StatusCode::BAD_REQUEST,
    }
}

fn aliyun_error(code: &str, message: &str) -> HttpResponse {
    HttpResponse::build(aliyun_status(code)).json(json!({
        "RequestId": request_id(),
        "HostId": "dysmsapi.aliyuncs.com",
        "Code": code,
        "Message": message,
        "Recommend": format!("https://api.aliyun.com/troubleshoot?q={code}"),
    }))
}

fn aliyun_message(code: &str) -> &'static str {
    match code {
        "Throttling.User" => "Request was denied due to user flow control.",
        "isv.MOBILE_NUMBER_ILLEGAL" => "非法手机号",
        "isv.BUSINESS_LIMIT_CONTROL" => "触发号码天级流控Permits:10",
        "isv.BLACK_KEY_CONTROL_LIMIT" => "黑名单管控",
        "isv.OUT_OF_SERVICE" => "业务停机",
        "isp.SYSTEM_ERROR" => "isp.SYSTEM_ERROR",
        "InternalError" => "The request processing has failed due to some unknown error.",
        _ => "fake error",
    }
}

/// Checks the RPC signature and common parameters as Aliyun does.
fn aliyun_check(
    state: &mut State,
    params: &HashMap<String, String>,
    config: &Config,
) -> Result<String, Refusal> {
    let get = |name: &str| params.get(name).map(String::as_str).unwrap_or("");
    if get("AccessKeyId") != config.secret_id {
        return Err(refusal(
            "InvalidAccessKeyId.NotFound",
            "Specified access key is not found.",
        ));
    }
    let signed: Vec<(&str, &str)> = params
        .iter()
        .filter(|(k, _)| k.as_str() != "Signature")
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    if aliyun_rpc_signature("POST", &signed, &config.secret_key) != get("Signature") {
        return Err(refusal(
            "SignatureDoesNotMatch",
            "Specified signature does not match our calculation.",
        ));
    }
    if get("SignatureMethod") != "HMAC-SHA1" || get("SignatureVersion") != "1.0" {
        return Err(refusal(
            "InvalidParameter",
            "SignatureMethod or SignatureVersion is not supported",
        ));
    }
    let fresh = NaiveDateTime::parse_from_str(get("Timestamp"), "%Y-%m-%dT%H:%M:%SZ")
        .is_ok_and(|t| (Utc::now().naive_utc() - t).num_seconds().abs() <= ALIYUN_CLOCK_SKEW);
    if !fresh {
        return Err(refusal(
            "InvalidTimeStamp.Expired",
            "Specified time stamp or date value is expired.",
        ));
    }
    let nonce = get("SignatureNonce");
    if nonce.is_empty() || !state.nonces.insert(nonce.to_owned()) {
        return Err(refusal(
            "SignatureNonceUsed",
            "Specified signature nonce was used already.",
        ));
    }
    if get("Version") != "2017-05-25" {
        return Err(refusal(
            "InvalidVersion",
            "Specified parameter Version is not valid.",
        ));
    }
    Ok(get("Action").to_owned())
}

async fn aliyun(
    form: web::Form<Vec<(String, String)>>,
    state: web::Data<Mutex<State>>,
    config: web::Data<Config>,
) -> HttpResponse {
    let params: HashMap<String, String> = form.into_inner().into_iter().collect();
    let plan = {
        let mut state = lock(&state);
        state.requests += 1;
        match aliyun_check(&mut state, &params, &config) {
            Err((code, message)) => {
                state.refused_signatures += 1;
                Plan::Answer(aliyun_error(code, message))
            }
            Ok(action) => match action.as_str() {
                "SendSms" => aliyun_plan(&mut state, &config, &params),
                "QuerySendDetails" => Plan::Answer(aliyun_query(&mut state, &params)),
                _ => Plan::Answer(aliyun_error(
                    "InvalidAction.NotFound",
                    "Specified api is not found, please check your url and method.",
                )),
            },
        }
    };
    match plan {
        Plan::Answer(answer) => answer,
        Plan::StallBefore => {
            tokio::time::sleep(STALL).await;
            HttpResponse::GatewayTimeout().finish()
        }
        Plan::Accept { answer, stall } => {
            if stall {
                tokio::time::sleep(STALL).await;
            }
            answer
        }
    }
}

fn aliyun_plan(state: &mut State, config: &Config, params: &HashMap<String, String>) -> Plan {
    state.send_requests += 1;
    let get = |name: &str| params.get(name).map(String::as_str).unwrap_or("");
    let numbers: Vec<String> = get("PhoneNumbers")
        .split(',')
        .filter(|p| !p.is_empty())
        .map(str::to_owned)
        .collect();
    if numbers.is_empty() {
        return Plan::Answer(aliyun_error(
            "MissingPhoneNumbers",
            "PhoneNumbers is mandatory for this action.",
        ));
    }
    if get("SignName") != config.sign_name {
        return Plan::Answer(aliyun_error(
            "isv.SMS_SIGNATURE_ILLEGAL",
            "该账号下找不到对应签名",
        ));
    }
    let template = get("TemplateCode");
    if template.is_empty() {
        return Plan::Answer(aliyun_error(
            "MissingTemplateCode",
            "TemplateCode is mandatory for this action.",
        ));
    }
    let template_params: Vec<(String, String)> = match get("TemplateParam") {
        "" => Vec::new(),
        text => match serde_json::from_str::<serde_json::Map<String, Value>>(text) {
            Ok(object) => object
                .into_iter()
                .map(|(k, v)| (k, v.as_str().map_or_else(|| v.to_string(), str::to_owned)))
                .collect(),
            Err(_) => {
                return Plan::Answer(aliyun_error("isv.INVALID_JSON_PARAM", "JSON参数不合法"));
            }
        },
    };
    if state.too_long(&template_params) {
        return Plan::Answer(aliyun_error("isv.PARAM_LENGTH_LIMIT", "参数超出长度限制"));
    }
    if let Some(code) = state.forced_failure("Throttling.User") {
        return Plan::Answer(aliyun_error(&code, aliyun_message(&code)));
    }
    if State::take_match(&mut state.stall_before, &numbers) {
        return Plan::StallBefore;
    }
    for phone in &numbers {
        let refusal = state.rejected_numbers.get(phone).cloned().or_else(|| {
            state
                .per_number_limit
                .filter(|max| state.accepted_count(phone) >= *max)
                .map(|_| "isv.BUSINESS_LIMIT_CONTROL".to_owned())
        });
        if let Some(code) = refusal {
            return Plan::Answer(aliyun_error(&code, aliyun_message(&code)));
        }
    }
    let biz_id = format!("{:016}^{}", next_serial(), rand::random::<u32>() % 10);
    let out_id = get("OutId").to_owned();
    for phone in &numbers {
        state.sent.push(SentSms {
            message_id: out_id.clone(),
            context: out_id.clone(),
            phone: phone.clone(),
            template: template.to_owned(),
            sign_name: config.sign_name.clone(),
            params: template_params.clone(),
            provider_id: biz_id.clone(),
            at: Utc::now(),
        });
    }
    let stall = State::take_match(&mut state.stall_after, &numbers);
    Plan::Accept {
        answer: HttpResponse::Ok().json(json!({
            "Message": "OK", "RequestId": request_id(), "Code": "OK", "BizId": biz_id,
        })),
        stall,
    }
}

fn aliyun_query(state: &mut State, params: &HashMap<String, String>) -> HttpResponse {
    state.lookups += 1;
    let get = |name: &str| params.get(name).map(String::as_str).unwrap_or("");
    let phone = get("PhoneNumber");
    let send_date = get("SendDate");
    let (Ok(page_size), Ok(page)) = (
        get("PageSize").parse::<usize>(),
        get("CurrentPage").parse::<usize>(),
    ) else {
        return aliyun_error("isv.INVALID_PARAMETERS", "参数异常");
    };
    if phone.is_empty() || send_date.len() != 8 || !(1..=50).contains(&page_size) || page == 0 {
        return aliyun_error("isv.INVALID_PARAMETERS", "参数异常");
    }
    let biz_id = get("BizId");
    let shanghai = |at: DateTime<Utc>| at.with_timezone(&chrono_tz::Asia::Shanghai);
    let matching: Vec<&SentSms> = state
        .sent
        .iter()
        .filter(|s| {
            s.phone == phone
                && shanghai(s.at).format("%Y%m%d").to_string() == send_date
                && (biz_id.is_empty() || s.provider_id == biz_id)
        })
        .collect();
    let items: Vec<Value> = matching
        .iter()
        .skip((page - 1) * page_size)
        .take(page_size)
        .map(|s| {
            let at = shanghai(s.at).format("%Y-%m-%d %H:%M:%S").to_string();
            let failure = state.undelivered.get(&s.phone);
            json!({
                "PhoneNum": s.phone,
                "SendStatus": if failure.is_some() { 2 } else { 3 },
                "ErrCode": failure.map_or("DELIVERED", String::as_str),
                "TemplateCode": s.template,
                "Content": format!("【{}】{:?}", s.sign_name, s.params),
                "SendDate": at,
                "ReceiveDate": at,
                "OutId": s.context,
            })
        })
        .collect();
    HttpResponse::Ok().json(json!({
        "TotalCount": matching.len(),
        "Message": "OK",
        "RequestId": request_id(),
        "Code": "OK",
        "SmsSendDetailDTOs": { "SmsSendDetailDTO": items },
    }))
}

//! Client for the WeChat mini-program server API: login (`jscode2session`), the stable access
//! token (cached, one refresher at a time), the member's phone number and subscribe messages
//! (the reminders' optional second channel).
//!
//! Nothing secret ever leaves this module in a log line or a `Debug` output: the app secret is a
//! [`SecretString`], the `session_key` WeChat sends with a login is read and dropped, access
//! tokens are kept as secrets in the cache, and `reqwest` errors are stripped of their URL (which
//! carries the secret, the login code or the access token in its query string). Only WeChat's
//! `errcode` is logged.

use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use redis::aio::ConnectionManager;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use serde::de::DeserializeOwned;

/// How long before WeChat's own expiry a cached access token is refreshed.
const REFRESH_MARGIN: Duration = Duration::from_secs(5 * 60);
/// How long one replica may hold the Redis refresh lock.
const LOCK_TTL: Duration = Duration::from_secs(10);
/// How often a replica waiting for another one's refresh re-reads the Redis cache.
const LOCK_POLL_INTERVAL: Duration = Duration::from_millis(50);

/// WeChat errcode: the login or phone code is invalid, used or older than 5 minutes.
const ERR_INVALID_CODE: i64 = 40029;
/// WeChat errcode: the login code was already used (some answers say so instead of 40029).
const ERR_CODE_USED: i64 = 40163;
/// WeChat errcode: the per-minute quota is used up.
const ERR_RATE_LIMITED: i64 = 45011;
/// WeChat errcode: the user is blocked as risky.
const ERR_RISKY_USER: i64 = 40226;
/// WeChat errcode: the system is busy.
const ERR_BUSY: i64 = -1;
/// WeChat errcode: the access token is invalid (or no longer the latest).
const ERR_INVALID_TOKEN: i64 = 40001;
/// WeChat errcode: the access token has expired.
const ERR_EXPIRED_TOKEN: i64 = 42001;
/// WeChat errcode: the user has no subscription left for this template (never subscribed,
/// or the one-time subscription was used): the message goes by SMS instead.
pub const ERR_NO_SUBSCRIPTION: i64 = 43101;

/// Releases the Redis refresh lock only if it still holds our value: a lock that expired and
/// was taken by another replica must not be deleted by us.
const RELEASE_LOCK_SCRIPT: &str = r#"
if redis.call("GET", KEYS[1]) == ARGV[1] then
    return redis.call("DEL", KEYS[1])
else
    return 0
end
"#;

/// Where and how to reach WeChat, and the mini-program's credentials.
#[derive(Debug, Clone)]
pub struct WeChatSettings {
    /// API root without a trailing slash, e.g. `https://api.weixin.qq.com`.
    pub base_url: String,
    /// The mini-program's AppID.
    pub appid: String,
    /// The mini-program's AppSecret.
    pub secret: SecretString,
    /// Timeout of one HTTP request to WeChat, connection included.
    pub timeout: Duration,
}

/// Where the access token is cached.
pub enum TokenCache {
    /// In this process only: fine for a single replica and for tests.
    Memory(MemoryTokenCache),
    /// In Redis, shared by every replica using the same `key_prefix`.
    Redis {
        /// Connection to Redis.
        conn: ConnectionManager,
        /// Prefix of the keys, e.g. `huzhu:`; keys are `{prefix}wechat:access_token(:lock)`.
        key_prefix: String,
    },
}

impl TokenCache {
    /// An empty in-process cache.
    pub fn memory() -> Self {
        Self::Memory(MemoryTokenCache::default())
    }
}

impl std::fmt::Debug for TokenCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Memory(_) => f.write_str("TokenCache::Memory"),
            Self::Redis { key_prefix, .. } => f
                .debug_struct("TokenCache::Redis")
                .field("key_prefix", key_prefix)
                .finish_non_exhaustive(),
        }
    }
}

/// In-process storage of the access token.
#[derive(Default)]
pub struct MemoryTokenCache {
    slot: RwLock<Option<CachedToken>>,
}

/// An access token and the moment we stop using it.
struct CachedToken {
    token: SecretString,
    refresh_at: Instant,
}

impl MemoryTokenCache {
    /// The cached token if it is not due for a refresh yet.
    fn get(&self) -> Option<String> {
        // A poisoned lock only means another thread panicked while writing: the slot is still
        // a whole `Option`, so reading it is sound.
        let slot = self
            .slot
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        slot.as_ref()
            .filter(|cached| Instant::now() < cached.refresh_at)
            .map(|cached| cached.token.expose_secret().to_owned())
    }

    fn put(&self, token: &str, usable_for: Duration) {
        let mut slot = self
            .slot
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        *slot = Some(CachedToken {
            token: SecretString::from(token.to_owned()),
            refresh_at: Instant::now() + usable_for,
        });
    }
}

/// Who logged in: the result of `jscode2session`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeChatSession {
    /// The user's id within this mini-program.
    pub openid: String,
    /// The user's id across the open-platform account, when the mini-program is bound to one.
    pub unionid: Option<String>,
}

/// The phone number the user agreed to share.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WeChatPhone {
    /// With the country code for numbers outside mainland China (e.g. `+1 2025550123`).
    pub phone_number: String,
    /// Without the country code.
    pub pure_phone_number: String,
    /// The country code, e.g. `86`.
    pub country_code: String,
}

/// What can go wrong talking to WeChat.
#[derive(Debug, thiserror::Error)]
pub enum WeChatError {
    /// 40029 (or 40163): the code is invalid, already used or older than 5 minutes.
    #[error("WeChat refused the code (invalid, used or expired)")]
    InvalidCode,
    /// 45011: the per-minute quota is used up.
    #[error("WeChat rate limit reached")]
    RateLimited,
    /// 40226: WeChat blocked the user as risky.
    #[error("WeChat blocked this user as risky")]
    RiskyUser,
    /// -1: WeChat is busy.
    #[error("WeChat is busy")]
    Busy,
    /// Any other errcode.
    #[error("WeChat answered errcode {errcode}: {errmsg}")]
    Api {
        /// WeChat's errcode.
        errcode: i64,
        /// WeChat's errmsg.
        errmsg: String,
    },
    /// The phone number's watermark names another mini-program.
    #[error("WeChat phone number watermark is for another appid")]
    WrongAppId,
    /// WeChat could not be reached in time (connection failure, timeout).
    #[error("could not reach WeChat")]
    Transport(#[source] reqwest::Error),
    /// WeChat answered something we cannot read (HTTP status other than 200, malformed body).
    #[error("unexpected answer from WeChat: {0}")]
    UnexpectedResponse(String),
    /// The Redis token cache failed.
    #[error("WeChat access token cache failed")]
    Cache(#[source] redis::RedisError),
}

impl WeChatError {
    /// A stable snake_case code for API error bodies and metrics.
    pub fn code(&self) -> &'static str {
        match self {
            Self::InvalidCode => "wechat_invalid_code",
            Self::RateLimited => "wechat_rate_limited",
            Self::RiskyUser => "wechat_risky_user",
            Self::Busy => "wechat_busy",
            Self::Api { .. } | Self::WrongAppId => "wechat_error",
            Self::Transport(_) | Self::UnexpectedResponse(_) | Self::Cache(_) => {
                "wechat_unavailable"
            }
        }
    }

    /// Whether the same call may succeed if tried again later (with the same code).
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::RateLimited
            | Self::Busy
            | Self::Transport(_)
            | Self::UnexpectedResponse(_)
            | Self::Cache(_) => true,
            Self::InvalidCode | Self::RiskyUser | Self::Api { .. } | Self::WrongAppId => false,
        }
    }

    /// WeChat's errcode, when WeChat answered with one.
    pub fn errcode(&self) -> Option<i64> {
        match self {
            Self::InvalidCode => Some(ERR_INVALID_CODE),
            Self::RateLimited => Some(ERR_RATE_LIMITED),
            Self::RiskyUser => Some(ERR_RISKY_USER),
            Self::Busy => Some(ERR_BUSY),
            Self::Api { errcode, .. } => Some(*errcode),
            _ => None,
        }
    }

    fn is_token_rejected(&self) -> bool {
        matches!(self, Self::Api { errcode, .. } if *errcode == ERR_INVALID_TOKEN || *errcode == ERR_EXPIRED_TOKEN)
    }

    fn from_errcode(errcode: i64, errmsg: String) -> Self {
        match errcode {
            ERR_INVALID_CODE | ERR_CODE_USED => Self::InvalidCode,
            ERR_RATE_LIMITED => Self::RateLimited,
            ERR_RISKY_USER => Self::RiskyUser,
            ERR_BUSY => Self::Busy,
            _ => Self::Api { errcode, errmsg },
        }
    }
}

impl From<redis::RedisError> for WeChatError {
    fn from(err: redis::RedisError) -> Self {
        Self::Cache(err)
    }
}

/// Talks to WeChat. Cheap to clone: clones share the HTTP client and the token cache.
#[derive(Clone)]
pub struct WeChatClient {
    inner: Arc<Inner>,
}

struct Inner {
    settings: WeChatSettings,
    http: reqwest::Client,
    cache: TokenCache,
    /// One refresh at a time within this process; Redis' lock does the same across replicas.
    refresh_gate: tokio::sync::Mutex<()>,
    release_lock: redis::Script,
}

impl std::fmt::Debug for WeChatClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WeChatClient")
            .field("settings", &self.inner.settings)
            .field("cache", &self.inner.cache)
            .finish_non_exhaustive()
    }
}

/// Every WeChat answer may carry `errcode`/`errmsg`; `errcode: 0` (or none) means success.
#[derive(Deserialize)]
struct Envelope<T> {
    #[serde(default)]
    errcode: i64,
    #[serde(default)]
    errmsg: String,
    #[serde(flatten)]
    body: Option<T>,
}

#[derive(Deserialize)]
struct SessionBody {
    openid: String,
    #[serde(default)]
    unionid: Option<String>,
    /// Read so that a malformed answer is noticed, then dropped: we never use or log it.
    #[serde(default)]
    #[allow(dead_code)]
    session_key: Option<SecretString>,
}

#[derive(Deserialize)]
struct TokenBody {
    access_token: String,
    expires_in: i64,
}

#[derive(Deserialize)]
struct PhoneBody {
    phone_info: PhoneInfo,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct PhoneInfo {
    phone_number: String,
    pure_phone_number: String,
    country_code: StringOrNumber,
    watermark: Watermark,
}

#[derive(Deserialize)]
struct Watermark {
    appid: String,
}

/// `countryCode` is a number in WeChat's official example and a string in other answers.
#[derive(Deserialize)]
#[serde(untagged)]
enum StringOrNumber {
    String(String),
    Number(serde_json::Number),
}

impl StringOrNumber {
    fn into_string(self) -> String {
        match self {
            Self::String(s) => s,
            Self::Number(n) => n.to_string(),
        }
    }
}

#[derive(serde::Serialize)]
struct StableTokenRequest<'a> {
    grant_type: &'static str,
    appid: &'a str,
    secret: &'a str,
    force_refresh: bool,
}

#[derive(serde::Serialize)]
struct PhoneRequest<'a> {
    code: &'a str,
}

/// One subscribe message (`/cgi-bin/message/subscribe/send`).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct SubscribeMessage {
    /// The member's openid.
    pub touser: String,
    pub template_id: String,
    /// The mini-program page the notice opens.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub page: Option<String>,
    /// Each keyword's value.
    #[serde(serialize_with = "keyword_values")]
    pub data: std::collections::BTreeMap<String, String>,
    /// `formal`, `trial` or `developer`: which version of the mini-program the page opens in.
    pub miniprogram_state: String,
    /// `zh_CN`.
    pub lang: String,
}

/// WeChat wants `{"thing1": {"value": "…"}}`.
fn keyword_values<S: serde::Serializer>(
    data: &std::collections::BTreeMap<String, String>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    use serde::ser::SerializeMap;
    let mut map = serializer.serialize_map(Some(data.len()))?;
    for (key, value) in data {
        map.serialize_entry(key, &serde_json::json!({ "value": value }))?;
    }
    map.end()
}

#[derive(Deserialize)]
struct SubscribeBody {
    #[serde(default)]
    msgid: Option<serde_json::Value>,
}

impl WeChatClient {
    /// A client using `http` for requests and `cache` for the access token.
    pub fn new(settings: WeChatSettings, http: reqwest::Client, cache: TokenCache) -> Self {
        Self {
            inner: Arc::new(Inner {
                settings,
                http,
                cache,
                refresh_gate: tokio::sync::Mutex::new(()),
                release_lock: redis::Script::new(RELEASE_LOCK_SCRIPT),
            }),
        }
    }

    /// Exchanges a `wx.login` code for the user's openid (and unionid, when there is one).
    #[tracing::instrument(skip(self, code))]
    pub async fn code_to_session(&self, code: &str) -> Result<WeChatSession, WeChatError> {
        let settings = &self.inner.settings;
        let request = self
            .inner
            .http
            .get(self.url("/sns/jscode2session"))
            .query(&[
                ("appid", settings.appid.as_str()),
                ("secret", settings.secret.expose_secret()),
                ("js_code", code),
                ("grant_type", "authorization_code"),
            ]);
        let body: SessionBody = self.call(request).await?;
        Ok(WeChatSession {
            openid: body.openid,
            unionid: body.unionid.filter(|unionid| !unionid.is_empty()),
        })
    }

    /// The current access token, from the cache or freshly fetched from WeChat.
    #[tracing::instrument(skip(self))]
    pub async fn access_token(&self) -> Result<String, WeChatError> {
        if let Some(token) = self.cached_token().await? {
            return Ok(token);
        }
        self.refresh_token(None).await
    }

    /// The phone number behind a `getPhoneNumber` code, checked to be for our mini-program.
    #[tracing::instrument(skip(self, code))]
    pub async fn phone_number(&self, code: &str) -> Result<WeChatPhone, WeChatError> {
        self.with_token(|token| self.phone_number_with(token, code))
            .await
    }

    /// Sends a subscribe message; returns WeChat's `msgid`. [`ERR_NO_SUBSCRIPTION`] (43101)
    /// means the member has no subscription left for the template.
    #[tracing::instrument(skip(self, message), fields(template = %message.template_id))]
    pub async fn send_subscribe_message(
        &self,
        message: &SubscribeMessage,
    ) -> Result<Option<String>, WeChatError> {
        self.with_token(|token| async move {
            let request = self
                .inner
                .http
                .post(self.url("/cgi-bin/message/subscribe/send"))
                .query(&[("access_token", token)])
                .json(message);
            let body: SubscribeBody = self.call(request).await?;
            Ok(body.msgid.map(|id| match id {
                serde_json::Value::String(s) => s,
                other => other.to_string(),
            }))
        })
        .await
    }

    /// Runs `call` with the access token; when WeChat rejects the token (40001, 42001), once
    /// more with a fresh one.
    async fn with_token<T, F, Fut>(&self, call: F) -> Result<T, WeChatError>
    where
        F: Fn(String) -> Fut,
        Fut: std::future::Future<Output = Result<T, WeChatError>>,
    {
        let token = self.access_token().await?;
        match call(token.clone()).await {
            Err(err) if err.is_token_rejected() => {
                tracing::info!("WeChat rejected the access token; refreshing it once");
                let fresh = self.refresh_token(Some(&token)).await?;
                match call(fresh).await {
                    Err(err) if err.is_token_rejected() => Err(WeChatError::Api {
                        errcode: ERR_INVALID_TOKEN,
                        errmsg: "access token rejected right after a refresh".to_owned(),
                    }),
                    other => other,
                }
            }
            other => other,
        }
    }

    async fn phone_number_with(
        &self,
        token: String,
        code: &str,
    ) -> Result<WeChatPhone, WeChatError> {
        let request = self
            .inner
            .http
            .post(self.url("/wxa/business/getuserphonenumber"))
            .query(&[("access_token", token)])
            .json(&PhoneRequest { code });
        let body: PhoneBody = self.call(request).await?;
        let info = body.phone_info;
        if info.watermark.appid != self.inner.settings.appid {
            tracing::warn!("WeChat phone number watermark names another appid");
            return Err(WeChatError::WrongAppId);
        }
        Ok(WeChatPhone {
            phone_number: info.phone_number,
            pure_phone_number: info.pure_phone_number,
            country_code: info.country_code.into_string(),
        })
    }

    /// The cached token, if any and not due for a refresh.
    async fn cached_token(&self) -> Result<Option<String>, WeChatError> {
        match &self.inner.cache {
            TokenCache::Memory(memory) => Ok(memory.get()),
            TokenCache::Redis { conn, key_prefix } => {
                let mut conn = conn.clone();
                Ok(redis::cmd("GET")
                    .arg(token_key(key_prefix))
                    .query_async::<Option<String>>(&mut conn)
                    .await?)
            }
        }
    }

    /// A new token, fetched by one caller at a time (in this process and across replicas).
    ///
    /// With `stale`, the caller saw WeChat reject that token: any other cached token is taken
    /// as someone else's refresh, otherwise WeChat is asked for a new one with `force_refresh`.
    async fn refresh_token(&self, stale: Option<&str>) -> Result<String, WeChatError> {
        let _gate = self.inner.refresh_gate.lock().await;
        // Whoever held the gate before us may have refreshed already.
        if let Some(token) = self.cached_token().await?
            && Some(token.as_str()) != stale
        {
            return Ok(token);
        }
        match &self.inner.cache {
            TokenCache::Memory(memory) => {
                let (token, usable_for) = self.fetch_token(stale.is_some()).await?;
                memory.put(&token, usable_for);
                Ok(token)
            }
            TokenCache::Redis { conn, key_prefix } => {
                self.refresh_with_redis_lock(conn.clone(), key_prefix, stale)
                    .await
            }
        }
    }

    /// Refreshes under `SET NX PX` so that one replica asks WeChat while the others wait and
    /// re-read the cache.
    async fn refresh_with_redis_lock(
        &self,
        mut conn: ConnectionManager,
        key_prefix: &str,
        stale: Option<&str>,
    ) -> Result<String, WeChatError> {
        let token_key = token_key(key_prefix);
        let lock_key = format!("{token_key}:lock");
        let lock_value = format!("{:032x}", rand::random::<u128>());
        // After two lock lifetimes something is wrong with the lock: fetch anyway rather than
        // fail the user's request.
        let give_up_at = Instant::now() + 2 * LOCK_TTL;
        loop {
            let acquired = redis::cmd("SET")
                .arg(&lock_key)
                .arg(&lock_value)
                .arg("NX")
                .arg("PX")
                .arg(millis(LOCK_TTL))
                .query_async::<Option<String>>(&mut conn)
                .await?
                .is_some();
            if acquired {
                let result = self.refresh_locked(&mut conn, &token_key, stale).await;
                let released = self
                    .inner
                    .release_lock
                    .key(&lock_key)
                    .arg(&lock_value)
                    .invoke_async::<i64>(&mut conn)
                    .await;
                if let Err(err) = released {
                    // The lock expires on its own; the token we got is still good.
                    tracing::warn!(error = %err, "could not release the WeChat token lock");
                }
                return result;
            }
            if Instant::now() >= give_up_at {
                tracing::warn!("WeChat token lock held too long; refreshing without it");
                return self.refresh_locked(&mut conn, &token_key, stale).await;
            }
            tokio::time::sleep(LOCK_POLL_INTERVAL).await;
            if let Some(token) = redis::cmd("GET")
                .arg(&token_key)
                .query_async::<Option<String>>(&mut conn)
                .await?
                && Some(token.as_str()) != stale
            {
                return Ok(token);
            }
        }
    }

    /// Fetches and stores a token; the caller holds the Redis lock.
    async fn refresh_locked(
        &self,
        conn: &mut ConnectionManager,
        token_key: &str,
        stale: Option<&str>,
    ) -> Result<String, WeChatError> {
        // Another replica may have refreshed between our last read and taking the lock.
        if let Some(token) = redis::cmd("GET")
            .arg(token_key)
            .query_async::<Option<String>>(conn)
            .await?
            && Some(token.as_str()) != stale
        {
            return Ok(token);
        }
        let (token, usable_for) = self.fetch_token(stale.is_some()).await?;
        let px = millis(usable_for);
        if px > 0 {
            redis::cmd("SET")
                .arg(token_key)
                .arg(&token)
                .arg("PX")
                .arg(px)
                .query_async::<()>(conn)
                .await?;
        } else if stale.is_some() {
            // Nothing to cache, but the rejected token must not be served again.
            redis::cmd("DEL")
                .arg(token_key)
                .query_async::<()>(conn)
                .await?;
        }
        Ok(token)
    }

    /// Asks WeChat for the stable access token; returns it and how long to use it.
    #[tracing::instrument(skip(self))]
    async fn fetch_token(&self, force_refresh: bool) -> Result<(String, Duration), WeChatError> {
        let settings = &self.inner.settings;
        let request = self
            .inner
            .http
            .post(self.url("/cgi-bin/stable_token"))
            .json(&StableTokenRequest {
                grant_type: "client_credential",
                appid: &settings.appid,
                secret: settings.secret.expose_secret(),
                force_refresh,
            });
        let body: TokenBody = self.call(request).await?;
        if body.access_token.is_empty() {
            return Err(WeChatError::UnexpectedResponse(
                "empty access_token".to_owned(),
            ));
        }
        Ok((body.access_token, usable_lifetime(body.expires_in)))
    }

    /// Sends a request and reads WeChat's JSON answer, mapping a non-zero errcode to an error.
    async fn call<T: DeserializeOwned>(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<T, WeChatError> {
        let response = request
            .timeout(self.inner.settings.timeout)
            .send()
            .await
            .map_err(transport_error)?;
        let status = response.status();
        if status != reqwest::StatusCode::OK {
            tracing::warn!(%status, "WeChat answered an unexpected HTTP status");
            return Err(WeChatError::UnexpectedResponse(format!(
                "HTTP status {status}"
            )));
        }
        let bytes = response.bytes().await.map_err(transport_error)?;
        let envelope: Envelope<T> = serde_json::from_slice(&bytes).map_err(|err| {
            // serde_json's message may quote the offending value (a token, a session key):
            // keep only its category and position.
            tracing::warn!(
                category = ?err.classify(),
                line = err.line(),
                column = err.column(),
                "WeChat answer could not be parsed"
            );
            WeChatError::UnexpectedResponse(format!(
                "malformed body ({:?} error at line {} column {})",
                err.classify(),
                err.line(),
                err.column()
            ))
        })?;
        if envelope.errcode != 0 {
            tracing::warn!(errcode = envelope.errcode, "WeChat answered an error");
            return Err(WeChatError::from_errcode(envelope.errcode, envelope.errmsg));
        }
        envelope.body.ok_or_else(|| {
            WeChatError::UnexpectedResponse("success answer lacks expected fields".to_owned())
        })
    }

    fn url(&self, path: &str) -> String {
        format!(
            "{}{path}",
            self.inner.settings.base_url.trim_end_matches('/')
        )
    }
}

fn token_key(key_prefix: &str) -> String {
    format!("{key_prefix}wechat:access_token")
}

/// The URL carries the secret, the code or the access token: never keep it in the error.
fn transport_error(err: reqwest::Error) -> WeChatError {
    let err = err.without_url();
    tracing::warn!(
        timeout = err.is_timeout(),
        connect = err.is_connect(),
        "WeChat could not be reached"
    );
    WeChatError::Transport(err)
}

/// How long to use a token WeChat says lives `expires_in` seconds: until
/// [`REFRESH_MARGIN`] before that, or half its life if it is shorter than the margin.
fn usable_lifetime(expires_in: i64) -> Duration {
    let lifetime = Duration::from_secs(u64::try_from(expires_in).unwrap_or(0));
    if lifetime > REFRESH_MARGIN {
        lifetime - REFRESH_MARGIN
    } else {
        lifetime / 2
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_client_can_be_shared_between_tasks_and_threads() {
        fn assert_send_sync<T: Send + Sync + Clone + 'static>() {}
        assert_send_sync::<WeChatClient>();
    }

    #[test]
    fn settings_never_show_the_secret() {
        let settings = WeChatSettings {
            base_url: "https://api.weixin.qq.com".to_owned(),
            appid: "wx123".to_owned(),
            secret: SecretString::from("top-secret".to_owned()),
            timeout: Duration::from_secs(5),
        };
        assert!(!format!("{settings:?}").contains("top-secret"));
    }

    #[test]
    fn a_token_is_used_until_five_minutes_before_it_expires() {
        assert_eq!(usable_lifetime(7200), Duration::from_secs(6900));
        assert_eq!(usable_lifetime(301), Duration::from_secs(1));
    }

    #[test]
    fn a_token_shorter_lived_than_the_margin_is_used_for_half_its_life() {
        assert_eq!(usable_lifetime(300), Duration::from_secs(150));
        assert_eq!(usable_lifetime(0), Duration::ZERO);
        assert_eq!(usable_lifetime(-5), Duration::ZERO);
    }

    #[test]
    fn country_code_is_read_as_a_number_or_a_string() {
        let number: StringOrNumber = serde_json::from_str("86").unwrap();
        let string: StringOrNumber = serde_json::from_str("\"86\"").unwrap();
        assert_eq!(number.into_string(), "86");
        assert_eq!(string.into_string(), "86");
    }

    #[test]
    fn an_errcode_alongside_success_fields_is_still_success_when_zero() {
        let envelope: Envelope<TokenBody> = serde_json::from_str(
            r#"{"errcode":0,"errmsg":"ok","access_token":"t","expires_in":7200}"#,
        )
        .unwrap();
        assert_eq!(envelope.errcode, 0);
        assert_eq!(envelope.body.unwrap().access_token, "t");
    }

    #[test]
    fn an_error_answer_has_no_body() {
        let envelope: Envelope<SessionBody> =
            serde_json::from_str(r#"{"errcode":40029,"errmsg":"invalid code"}"#).unwrap();
        assert_eq!(envelope.errcode, 40029);
        assert!(envelope.body.is_none());
    }

    #[test]
    fn error_codes_are_stable() {
        assert_eq!(
            WeChatError::from_errcode(40029, String::new()).code(),
            "wechat_invalid_code"
        );
        assert_eq!(
            WeChatError::from_errcode(45011, String::new()).code(),
            "wechat_rate_limited"
        );
        assert_eq!(
            WeChatError::from_errcode(40226, String::new()).code(),
            "wechat_risky_user"
        );
        assert_eq!(
            WeChatError::from_errcode(-1, String::new()).code(),
            "wechat_busy"
        );
        assert_eq!(
            WeChatError::from_errcode(40013, String::new()).code(),
            "wechat_error"
        );
        assert!(WeChatError::Busy.is_retryable());
        assert!(!WeChatError::InvalidCode.is_retryable());
    }
}

//! The WeChat client against the fake WeChat server (and Redis for the shared token cache).

use std::time::{Duration, Instant};

use huzhu::integrations::wechat::{
    ERR_NO_SUBSCRIPTION, SubscribeMessage, TokenCache, WeChatClient, WeChatError, WeChatSettings,
};
use huzhu_tests::fake_wechat::FakeWeChat;
use redis::aio::ConnectionManager;
use secrecy::SecretString;
use tokio::task::JoinSet;

const TIMEOUT: Duration = Duration::from_secs(5);

fn install_crypto_provider() {
    // Several crates may enable different rustls providers; the first install wins.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

fn settings(fake: &FakeWeChat, timeout: Duration) -> WeChatSettings {
    WeChatSettings {
        base_url: fake.base_url.clone(),
        appid: fake.appid.clone(),
        secret: SecretString::from(fake.secret.clone()),
        timeout,
    }
}

fn client_with(fake: &FakeWeChat, cache: TokenCache) -> WeChatClient {
    install_crypto_provider();
    WeChatClient::new(settings(fake, TIMEOUT), reqwest::Client::new(), cache)
}

fn client(fake: &FakeWeChat) -> WeChatClient {
    client_with(fake, TokenCache::memory())
}

/// A Redis key prefix unique to one test; its keys are deleted when it is dropped.
struct RedisPrefix {
    url: String,
    prefix: String,
}

impl RedisPrefix {
    fn cache(&self, conn: &ConnectionManager) -> TokenCache {
        TokenCache::Redis {
            conn: conn.clone(),
            key_prefix: self.prefix.clone(),
        }
    }
}

impl Drop for RedisPrefix {
    fn drop(&mut self) {
        let token_key = format!("{}wechat:access_token", self.prefix);
        let lock_key = format!("{token_key}:lock");
        let deleted = redis::Client::open(self.url.as_str())
            .and_then(|client| client.get_connection_with_timeout(Duration::from_secs(2)))
            .and_then(|mut conn| {
                redis::cmd("DEL")
                    .arg(&token_key)
                    .arg(&lock_key)
                    .query::<i64>(&mut conn)
            });
        if let Err(err) = deleted {
            eprintln!("could not delete test keys under {}: {err}", self.prefix);
        }
    }
}

/// A connection to the test Redis, or `None` (with a note) when it is unreachable and the
/// environment does not require it (`HUZHU_TEST_REQUIRE_SERVICES=1`).
async fn redis_connection() -> Option<(ConnectionManager, RedisPrefix)> {
    let url = std::env::var("HUZHU_TEST_REDIS_URL")
        .unwrap_or_else(|_| "redis://127.0.0.1:6379".to_owned());
    let required = std::env::var("HUZHU_TEST_REQUIRE_SERVICES").is_ok_and(|v| v == "1");
    let connect = async {
        let client = redis::Client::open(url.as_str())?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_number_of_retries(1)
            .set_connection_timeout(Some(Duration::from_secs(2)));
        ConnectionManager::new_with_config(client, config).await
    };
    let outcome = match tokio::time::timeout(Duration::from_secs(5), connect).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(err)) => Err(err.to_string()),
        Err(_) => Err("timed out".to_owned()),
    };
    match outcome {
        Ok(conn) => {
            let prefix = format!("huzhu-test:{}:", uuid::Uuid::new_v4().simple());
            Some((conn, RedisPrefix { url, prefix }))
        }
        Err(err) if required => panic!("Redis at {url} is required but unreachable: {err}"),
        Err(err) => {
            eprintln!("note: skipping a Redis test, Redis at {url} is unreachable: {err}");
            None
        }
    }
}

/// A second, independent connection: what another replica would have.
async fn second_connection(prefix: &RedisPrefix) -> ConnectionManager {
    let client = redis::Client::open(prefix.url.as_str()).unwrap();
    ConnectionManager::new(client).await.unwrap()
}

#[tokio::test]
async fn a_login_code_is_exchanged_for_the_openid() {
    let fake = FakeWeChat::start().await;
    let code = fake.login_code("o6_bmjrPTlm6_2sgVt7hMZOPfL2M");

    let session = client(&fake).code_to_session(&code).await.unwrap();

    assert_eq!(session.openid, "o6_bmjrPTlm6_2sgVt7hMZOPfL2M");
    assert_eq!(session.unionid, None);
}

#[tokio::test]
async fn a_login_returns_the_unionid_when_wechat_sends_one() {
    let fake = FakeWeChat::start().await;
    let code = fake.login_code_with_unionid("openid-1", "unionid-1");

    let session = client(&fake).code_to_session(&code).await.unwrap();

    assert_eq!(session.unionid.as_deref(), Some("unionid-1"));
}

#[tokio::test]
async fn a_session_never_shows_the_session_key() {
    let fake = FakeWeChat::start().await;
    let code = fake.login_code("openid-1");

    let session = client(&fake).code_to_session(&code).await.unwrap();

    assert!(!format!("{session:?}").contains("session_key"));
}

async fn login_failure(errcode: i64) -> WeChatError {
    let fake = FakeWeChat::start().await;
    let code = fake.login_code("openid-1");
    fake.fail_next_login(errcode);
    client(&fake).code_to_session(&code).await.unwrap_err()
}

#[tokio::test]
async fn errcode_40029_at_login_is_an_invalid_code() {
    let err = login_failure(40029).await;
    assert!(matches!(err, WeChatError::InvalidCode), "{err:?}");
    assert_eq!(err.code(), "wechat_invalid_code");
    assert!(!err.is_retryable());
}

#[tokio::test]
async fn errcode_45011_at_login_is_rate_limited() {
    let err = login_failure(45011).await;
    assert!(matches!(err, WeChatError::RateLimited), "{err:?}");
    assert_eq!(err.code(), "wechat_rate_limited");
    assert!(err.is_retryable());
}

#[tokio::test]
async fn errcode_40226_at_login_is_a_risky_user() {
    let err = login_failure(40226).await;
    assert!(matches!(err, WeChatError::RiskyUser), "{err:?}");
    assert_eq!(err.code(), "wechat_risky_user");
    assert!(!err.is_retryable());
}

#[tokio::test]
async fn errcode_minus_1_at_login_is_busy() {
    let err = login_failure(-1).await;
    assert!(matches!(err, WeChatError::Busy), "{err:?}");
    assert_eq!(err.code(), "wechat_busy");
    assert!(err.is_retryable());
}

#[tokio::test]
async fn a_login_code_used_twice_fails_the_second_time() {
    let fake = FakeWeChat::start().await;
    let code = fake.login_code("openid-1");
    let client = client(&fake);

    client.code_to_session(&code).await.unwrap();
    let second = client.code_to_session(&code).await.unwrap_err();

    assert!(matches!(second, WeChatError::InvalidCode), "{second:?}");
}

#[tokio::test]
async fn an_unknown_login_code_is_an_invalid_code() {
    let fake = FakeWeChat::start().await;

    let err = client(&fake).code_to_session("made-up").await.unwrap_err();

    assert!(matches!(err, WeChatError::InvalidCode), "{err:?}");
}

#[tokio::test]
async fn a_wrong_secret_is_reported_with_wechats_errcode() {
    let fake = FakeWeChat::start().await;
    let code = fake.login_code("openid-1");
    let mut settings = settings(&fake, TIMEOUT);
    settings.secret = SecretString::from("not-the-secret".to_owned());
    install_crypto_provider();
    let client = WeChatClient::new(settings, reqwest::Client::new(), TokenCache::memory());

    let login = client.code_to_session(&code).await.unwrap_err();
    let token = client.access_token().await.unwrap_err();

    assert!(
        matches!(login, WeChatError::Api { errcode: 40125, .. }),
        "{login:?}"
    );
    assert!(
        matches!(token, WeChatError::Api { errcode: 40125, .. }),
        "{token:?}"
    );
    assert_eq!(token.code(), "wechat_error");
}

#[tokio::test]
async fn a_wrong_appid_is_reported_with_wechats_errcode() {
    let fake = FakeWeChat::start().await;
    let mut settings = settings(&fake, TIMEOUT);
    settings.appid = "wx0000000000000000".to_owned();
    install_crypto_provider();
    let client = WeChatClient::new(settings, reqwest::Client::new(), TokenCache::memory());

    let err = client.access_token().await.unwrap_err();

    assert!(
        matches!(err, WeChatError::Api { errcode: 40013, .. }),
        "{err:?}"
    );
}

#[tokio::test]
async fn a_phone_number_with_a_numeric_country_code_is_parsed() {
    let fake = FakeWeChat::start().await;
    let code = fake.phone_code("13800138000");

    let phone = client(&fake).phone_number(&code).await.unwrap();

    assert_eq!(phone.phone_number, "13800138000");
    assert_eq!(phone.pure_phone_number, "13800138000");
    assert_eq!(phone.country_code, "86");
}

#[tokio::test]
async fn a_phone_number_with_a_string_country_code_is_parsed() {
    let fake = FakeWeChat::start().await;
    fake.country_code_as_string(true);
    let code = fake.phone_code("+1 2025550123");

    let phone = client(&fake).phone_number(&code).await.unwrap();

    assert_eq!(phone.phone_number, "+1 2025550123");
    assert_eq!(phone.pure_phone_number, "2025550123");
    assert_eq!(phone.country_code, "1");
}

#[tokio::test]
async fn a_phone_code_used_twice_fails_the_second_time() {
    let fake = FakeWeChat::start().await;
    let code = fake.phone_code("13800138000");
    let client = client(&fake);

    client.phone_number(&code).await.unwrap();
    let second = client.phone_number(&code).await.unwrap_err();

    assert!(matches!(second, WeChatError::InvalidCode), "{second:?}");
}

#[tokio::test]
async fn a_phone_number_watermarked_for_another_appid_is_refused() {
    let fake = FakeWeChat::start().await;
    fake.watermark_appid("wxsomeoneelse0000");
    let code = fake.phone_code("13800138000");

    let err = client(&fake).phone_number(&code).await.unwrap_err();

    assert!(matches!(err, WeChatError::WrongAppId), "{err:?}");
    assert_eq!(err.code(), "wechat_error");
}

#[tokio::test]
async fn a_cached_token_is_reused() {
    let fake = FakeWeChat::start().await;
    let client = client(&fake);

    let first = client.access_token().await.unwrap();
    let second = client.clone().access_token().await.unwrap();

    assert_eq!(first, second);
    assert_eq!(fake.token_requests(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_token_calls_with_the_memory_cache_make_one_token_request() {
    let fake = FakeWeChat::start().await;
    fake.set_latency(Duration::from_millis(200));
    let client = client(&fake);

    let mut calls = JoinSet::new();
    for _ in 0..20 {
        let client = client.clone();
        calls.spawn(async move { client.access_token().await });
    }
    let tokens: Vec<String> = calls
        .join_all()
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();

    assert_eq!(fake.token_requests(), 1);
    assert!(tokens.iter().all(|token| token == &tokens[0]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_concurrent_token_calls_on_two_replicas_sharing_redis_make_one_token_request() {
    let Some((conn, prefix)) = redis_connection().await else {
        return;
    };
    let fake = FakeWeChat::start().await;
    fake.set_latency(Duration::from_millis(200));
    let replica_a = client_with(&fake, prefix.cache(&conn));
    let replica_b = client_with(&fake, prefix.cache(&second_connection(&prefix).await));

    let mut calls = JoinSet::new();
    for i in 0..20 {
        let client = if i % 2 == 0 {
            replica_a.clone()
        } else {
            replica_b.clone()
        };
        calls.spawn(async move { client.access_token().await });
    }
    let tokens: Vec<String> = calls
        .join_all()
        .await
        .into_iter()
        .map(Result::unwrap)
        .collect();

    assert_eq!(fake.token_requests(), 1);
    assert!(tokens.iter().all(|token| token == &tokens[0]));
}

#[tokio::test]
async fn a_token_close_to_expiry_is_refreshed() {
    let fake = FakeWeChat::start().await;
    // Five minutes and one second: usable for one second before the refresh margin.
    fake.set_token_lifetime(301);
    let client = client(&fake);

    let first = client.access_token().await.unwrap();
    assert_eq!(client.access_token().await.unwrap(), first);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let second = client.access_token().await.unwrap();

    assert_ne!(first, second);
    assert_eq!(fake.token_requests(), 2);
}

#[tokio::test]
async fn a_token_close_to_expiry_in_redis_is_refreshed() {
    let Some((conn, prefix)) = redis_connection().await else {
        return;
    };
    let fake = FakeWeChat::start().await;
    fake.set_token_lifetime(301);
    let client = client_with(&fake, prefix.cache(&conn));

    let first = client.access_token().await.unwrap();
    assert_eq!(client.access_token().await.unwrap(), first);
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let second = client.access_token().await.unwrap();

    assert_ne!(first, second);
    assert_eq!(fake.token_requests(), 2);
}

#[tokio::test]
async fn an_invalidated_token_is_refreshed_once_and_the_phone_call_succeeds() {
    let fake = FakeWeChat::start().await;
    let client = client(&fake);
    let old = client.access_token().await.unwrap();
    fake.invalidate_tokens();
    let code = fake.phone_code("13800138000");

    let phone = client.phone_number(&code).await.unwrap();

    assert_eq!(phone.pure_phone_number, "13800138000");
    assert_eq!(fake.token_requests(), 2);
    assert_ne!(client.access_token().await.unwrap(), old);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_invalidated_token_is_refreshed_once_across_two_replicas_sharing_redis() {
    let Some((conn, prefix)) = redis_connection().await else {
        return;
    };
    let fake = FakeWeChat::start().await;
    let replica_a = client_with(&fake, prefix.cache(&conn));
    let replica_b = client_with(&fake, prefix.cache(&second_connection(&prefix).await));
    let old = replica_a.access_token().await.unwrap();
    assert_eq!(replica_b.access_token().await.unwrap(), old);
    fake.invalidate_tokens();
    fake.set_latency(Duration::from_millis(100));

    let mut calls = JoinSet::new();
    for i in 0..6 {
        let client = if i % 2 == 0 {
            replica_a.clone()
        } else {
            replica_b.clone()
        };
        let code = fake.phone_code("13800138000");
        calls.spawn(async move { client.phone_number(&code).await });
    }
    for phone in calls.join_all().await {
        assert_eq!(phone.unwrap().country_code, "86");
    }

    assert_eq!(fake.token_requests(), 2);
}

#[tokio::test]
async fn a_wechat_that_stops_answering_gives_a_transport_error_within_the_timeout() {
    let fake = FakeWeChat::start().await;
    let code = fake.login_code("openid-1");
    fake.stop_answering();
    install_crypto_provider();
    let timeout = Duration::from_millis(300);
    let client = WeChatClient::new(
        settings(&fake, timeout),
        reqwest::Client::new(),
        TokenCache::memory(),
    );

    let started = Instant::now();
    let err = client.code_to_session(&code).await.unwrap_err();
    let elapsed = started.elapsed();

    assert!(matches!(err, WeChatError::Transport(_)), "{err:?}");
    assert_eq!(err.code(), "wechat_unavailable");
    assert!(err.is_retryable());
    assert!(elapsed >= timeout, "gave up after {elapsed:?}");
    assert!(
        elapsed < timeout + Duration::from_secs(1),
        "took {elapsed:?}"
    );
}

#[tokio::test]
async fn a_transport_error_reveals_neither_the_secret_nor_the_code() {
    let fake = FakeWeChat::start().await;
    let code = fake.login_code("openid-1");
    fake.stop_answering();
    install_crypto_provider();
    let client = WeChatClient::new(
        settings(&fake, Duration::from_millis(200)),
        reqwest::Client::new(),
        TokenCache::memory(),
    );

    let err = client.code_to_session(&code).await.unwrap_err();

    let shown = format!("{err} {err:?} {:?}", std::error::Error::source(&err));
    assert!(!shown.contains(&fake.secret), "{shown}");
    assert!(!shown.contains(&code), "{shown}");
}

#[tokio::test]
async fn a_non_200_answer_is_an_unexpected_response() {
    let fake = FakeWeChat::start().await;
    install_crypto_provider();
    let mut settings = settings(&fake, TIMEOUT);
    settings.base_url = format!("{}/not-wechat", fake.base_url);
    let client = WeChatClient::new(settings, reqwest::Client::new(), TokenCache::memory());

    let err = client.code_to_session("any").await.unwrap_err();

    assert!(matches!(err, WeChatError::UnexpectedResponse(_)), "{err:?}");
    assert_eq!(err.code(), "wechat_unavailable");
}

fn payout_notice(openid: &str) -> SubscribeMessage {
    SubscribeMessage {
        touser: openid.to_owned(),
        template_id: "tpl-payout".to_owned(),
        page: Some("pages/claims/detail?id=CL-1".to_owned()),
        data: [
            ("amount1".to_owned(), "6900.00元".to_owned()),
            ("thing2".to_owned(), "已拨付至预留银行卡".to_owned()),
        ]
        .into_iter()
        .collect(),
        miniprogram_state: "formal".to_owned(),
        lang: "zh_CN".to_owned(),
    }
}

#[tokio::test]
async fn a_subscribe_message_reaches_a_subscribed_user_with_its_keywords() {
    let fake = FakeWeChat::start().await;
    fake.subscribe_template("tpl-payout", &["amount1", "thing2"]);
    fake.subscribe("o-member-1", "tpl-payout");
    let client = client(&fake);

    let msgid = client
        .send_subscribe_message(&payout_notice("o-member-1"))
        .await
        .unwrap();

    let sent = fake.subscribe_sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(msgid, Some(sent[0].msgid.to_string()));
    assert_eq!(sent[0].data["amount1"], "6900.00元");
    assert_eq!(sent[0].page.as_deref(), Some("pages/claims/detail?id=CL-1"));
    assert_eq!(sent[0].miniprogram_state.as_deref(), Some("formal"));
    assert_eq!(sent[0].lang.as_deref(), Some("zh_CN"));
}

#[tokio::test]
async fn a_used_up_subscription_is_refused_with_43101() {
    let fake = FakeWeChat::start().await;
    fake.subscribe_template("tpl-payout", &["amount1", "thing2"]);
    fake.subscribe("o-member-1", "tpl-payout");
    let client = client(&fake);

    client
        .send_subscribe_message(&payout_notice("o-member-1"))
        .await
        .unwrap();
    let err = client
        .send_subscribe_message(&payout_notice("o-member-1"))
        .await
        .unwrap_err();

    assert_eq!(err.errcode(), Some(ERR_NO_SUBSCRIPTION));
    assert_eq!(fake.subscribe_sent().len(), 1);
}

#[tokio::test]
async fn a_subscribe_message_with_a_rejected_token_is_sent_once_with_a_fresh_one() {
    let fake = FakeWeChat::start().await;
    fake.subscribe_template("tpl-payout", &["amount1", "thing2"]);
    fake.subscribe("o-member-1", "tpl-payout");
    fake.subscribe("o-member-1", "tpl-payout");
    let client = client(&fake);
    client.access_token().await.unwrap();
    fake.invalidate_tokens();

    client
        .send_subscribe_message(&payout_notice("o-member-1"))
        .await
        .unwrap();

    assert_eq!(fake.token_requests(), 2);
    assert_eq!(fake.subscribe_sent().len(), 1, "sent once");
    assert_eq!(fake.subscribe_requests(), 2, "refused once, then sent");
}

#[tokio::test]
async fn a_value_too_long_for_its_keyword_is_refused_with_47003() {
    let fake = FakeWeChat::start().await;
    fake.subscribe_template("tpl-payout", &["amount1", "thing2"]);
    fake.subscribe("o-member-1", "tpl-payout");
    let client = client(&fake);
    let mut notice = payout_notice("o-member-1");
    notice.data.insert("thing2".to_owned(), "字".repeat(21));

    let err = client.send_subscribe_message(&notice).await.unwrap_err();

    assert_eq!(err.errcode(), Some(47003));
    assert!(fake.subscribe_sent().is_empty());
}

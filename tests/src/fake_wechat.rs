//! A local stand-in for WeChat's server API (`api.weixin.qq.com`), answering like the real one:
//! HTTP 200 with `{errcode, errmsg}` bodies on errors, appid/secret checked on every call,
//! single-use codes that live 5 minutes, stable access tokens that are renewed in the last
//! 5 minutes of their life, and `countryCode` as a number in phone answers (as in WeChat's
//! official example). Subscribe messages (`/cgi-bin/message/subscribe/send`) are taken only
//! for a user who subscribed to that template (one message per subscription, else 43101), with
//! the template's keywords and values that fit their kind (else 47003).
//!
//! ```ignore
//! let wechat = FakeWeChat::start().await;
//! let code = wechat.login_code("o6_bmjrPTlm6_2sgVt7hMZOPfL2M");
//! // point the app's WeChatSettings at wechat.base_url / appid / secret
//! ```

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::net::TcpListener;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use actix_web::dev::ServerHandle;
use actix_web::http::header::ContentType;
use actix_web::{App, HttpResponse, HttpServer, web};
use serde::Deserialize;
use serde_json::{Value, json};

/// How long a login or phone code stays usable, as on WeChat.
const CODE_LIFETIME: Duration = Duration::from_secs(5 * 60);
/// In its last 5 minutes a stable token is replaced by a new one on the next (normal) request.
const TOKEN_RENEWAL_WINDOW: Duration = Duration::from_secs(5 * 60);
/// What "not answering" means: longer than any test waits.
const STALL: Duration = Duration::from_secs(3600);

/// A running fake WeChat server on 127.0.0.1; stops when dropped.
pub struct FakeWeChat {
    /// Root URL to use as `WeChatSettings::base_url`, e.g. `http://127.0.0.1:41234`.
    pub base_url: String,
    /// The mini-program AppID the fake accepts.
    pub appid: String,
    /// The AppSecret the fake accepts.
    pub secret: String,
    state: Arc<Mutex<State>>,
    server: ServerHandle,
}

struct State {
    appid: String,
    secret: String,
    login_codes: HashMap<String, LoginCode>,
    phone_codes: HashMap<String, PhoneCode>,
    /// Errcodes the next `jscode2session` calls answer with, in order.
    login_failures: VecDeque<i64>,
    token_requests: usize,
    token_lifetime_secs: i64,
    /// The token a normal `stable_token` request hands out while it is not near its end.
    current_token: Option<String>,
    /// Every token not revoked, with the moment it expires (then it answers 42001; a revoked or
    /// unknown one answers 40001).
    tokens: HashMap<String, Instant>,
    watermark_appid: String,
    country_code_as_string: bool,
    latency: Duration,
    stalled: bool,
    /// Subscribe-message templates: id → keywords.
    subscribe_templates: HashMap<String, Vec<String>>,
    /// Users of the mini-program (openids WeChat knows).
    users: HashSet<String>,
    /// One-time subscriptions left, by (openid, template id).
    subscriptions: HashMap<(String, String), u32>,
    /// Errcodes the next subscribe-message calls answer with, in order.
    subscribe_failures: VecDeque<i64>,
    /// How many of the next subscribe messages are taken and then never answered.
    subscribe_stalls_after_taking: usize,
    subscribe_requests: usize,
    subscribe_sent: Vec<SubscribeSent>,
}

/// A subscribe message the fake took.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SubscribeSent {
    pub touser: String,
    pub template_id: String,
    pub page: Option<String>,
    pub data: BTreeMap<String, String>,
    pub miniprogram_state: Option<String>,
    pub lang: Option<String>,
    pub msgid: u64,
}

struct LoginCode {
    openid: String,
    unionid: Option<String>,
    issued_at: Instant,
    used: bool,
}

struct PhoneCode {
    phone_number: String,
    pure_phone_number: String,
    country_code: String,
    issued_at: Instant,
    used: bool,
}

impl State {
    fn token_status(&self, token: &str) -> TokenStatus {
        match self.tokens.get(token) {
            None => TokenStatus::Invalid,
            Some(expires_at) if Instant::now() >= *expires_at => TokenStatus::Expired,
            Some(_) => TokenStatus::Valid,
        }
    }

    fn mint_token(&mut self) -> (String, i64) {
        let token = format!("fake-token-{}", uuid::Uuid::new_v4().simple());
        let lifetime = Duration::from_secs(u64::try_from(self.token_lifetime_secs).unwrap_or(0));
        self.tokens.insert(token.clone(), Instant::now() + lifetime);
        self.current_token = Some(token.clone());
        (token, self.token_lifetime_secs)
    }
}

enum TokenStatus {
    Valid,
    Expired,
    Invalid,
}

impl FakeWeChat {
    /// Starts the fake on a free port of 127.0.0.1, with a fresh appid and secret.
    ///
    /// # Panics
    /// If no local port can be bound (test-support code: there is nothing else to do).
    pub async fn start() -> FakeWeChat {
        let appid = format!("wx{}", &uuid::Uuid::new_v4().simple().to_string()[..16]);
        let secret = uuid::Uuid::new_v4().simple().to_string();
        let state = Arc::new(Mutex::new(State {
            appid: appid.clone(),
            secret: secret.clone(),
            login_codes: HashMap::new(),
            phone_codes: HashMap::new(),
            login_failures: VecDeque::new(),
            token_requests: 0,
            token_lifetime_secs: 7200,
            current_token: None,
            tokens: HashMap::new(),
            watermark_appid: appid.clone(),
            country_code_as_string: false,
            latency: Duration::ZERO,
            stalled: false,
            subscribe_templates: HashMap::new(),
            users: HashSet::new(),
            subscriptions: HashMap::new(),
            subscribe_failures: VecDeque::new(),
            subscribe_stalls_after_taking: 0,
            subscribe_requests: 0,
            subscribe_sent: Vec::new(),
        }));

        let listener =
            TcpListener::bind("127.0.0.1:0").expect("fake WeChat: cannot bind 127.0.0.1:0");
        let port = listener
            .local_addr()
            .expect("fake WeChat: listener has no local address")
            .port();
        let data = web::Data::from(state.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .route("/sns/jscode2session", web::get().to(jscode2session))
                .route("/cgi-bin/stable_token", web::post().to(stable_token))
                .route(
                    "/wxa/business/getuserphonenumber",
                    web::post().to(get_user_phone_number),
                )
                .route(
                    "/cgi-bin/message/subscribe/send",
                    web::post().to(send_subscribe_message),
                )
        })
        .workers(1)
        .disable_signals()
        .listen(listener)
        .expect("fake WeChat: cannot listen")
        .run();
        let handle = server.handle();
        tokio::spawn(server);

        FakeWeChat {
            base_url: format!("http://127.0.0.1:{port}"),
            appid,
            secret,
            state,
            server: handle,
        }
    }

    /// Registers a fresh single-use login code (valid 5 minutes) for `openid` and returns it.
    pub fn login_code(&self, openid: &str) -> String {
        self.register_login_code(openid, None)
    }

    /// Like [`FakeWeChat::login_code`], for a user who also has a `unionid`.
    pub fn login_code_with_unionid(&self, openid: &str, unionid: &str) -> String {
        self.register_login_code(openid, Some(unionid.to_owned()))
    }

    fn register_login_code(&self, openid: &str, unionid: Option<String>) -> String {
        let code = random_code();
        self.state().login_codes.insert(
            code.clone(),
            LoginCode {
                openid: openid.to_owned(),
                unionid,
                issued_at: Instant::now(),
                used: false,
            },
        );
        code
    }

    /// Registers a single-use phone code and returns it. `phone` is a mainland number
    /// (`13800138000`, country code 86) or `+CC NUMBER` (`+1 2025550123`).
    pub fn phone_code(&self, phone: &str) -> String {
        let (country_code, pure) = match phone.strip_prefix('+').and_then(|p| p.split_once(' ')) {
            Some((country_code, pure)) => (country_code.to_owned(), pure.to_owned()),
            None => ("86".to_owned(), phone.to_owned()),
        };
        let code = random_code();
        self.state().phone_codes.insert(
            code.clone(),
            PhoneCode {
                phone_number: phone.to_owned(),
                pure_phone_number: pure,
                country_code,
                issued_at: Instant::now(),
                used: false,
            },
        );
        code
    }

    /// The next `jscode2session` call answers `{errcode, errmsg}` (40029, 45011, 40226, -1...).
    /// Several calls queue up in order.
    pub fn fail_next_login(&self, errcode: i64) {
        self.state().login_failures.push_back(errcode);
    }

    /// How many `stable_token` requests the fake has served (errors included).
    pub fn token_requests(&self) -> usize {
        self.state().token_requests
    }

    /// The `expires_in` (seconds) of tokens handed out from now on (default 7200).
    pub fn set_token_lifetime(&self, secs: i64) {
        self.state().token_lifetime_secs = secs;
    }

    /// Revokes every token handed out so far: a phone call with one of them answers 40001.
    pub fn invalidate_tokens(&self) {
        let mut state = self.state();
        state.tokens.clear();
        state.current_token = None;
    }

    /// The appid the phone answers' watermark names (default: the fake's own appid).
    pub fn watermark_appid(&self, appid: &str) {
        appid.clone_into(&mut self.state().watermark_appid);
    }

    /// Sends `countryCode` as a JSON string (`"86"`) instead of a number (`86`).
    pub fn country_code_as_string(&self, as_string: bool) {
        self.state().country_code_as_string = as_string;
    }

    /// Delays every answer by `latency` (to make concurrent requests overlap).
    pub fn set_latency(&self, latency: Duration) {
        self.state().latency = latency;
    }

    /// From now on, requests are accepted but never answered.
    pub fn stop_answering(&self) {
        self.state().stalled = true;
    }

    /// Declares a subscribe-message template of the mini-program with its keywords
    /// (`thing1`, `amount2` …).
    pub fn subscribe_template(&self, template_id: &str, keywords: &[&str]) {
        self.state().subscribe_templates.insert(
            template_id.to_owned(),
            keywords.iter().map(|k| (*k).to_owned()).collect(),
        );
    }

    /// A user of the mini-program who has subscribed to nothing.
    pub fn user(&self, openid: &str) {
        self.state().users.insert(openid.to_owned());
    }

    /// `openid` accepts one more message of `template_id` (`wx.requestSubscribeMessage`).
    pub fn subscribe(&self, openid: &str, template_id: &str) {
        let mut state = self.state();
        state.users.insert(openid.to_owned());
        *state
            .subscriptions
            .entry((openid.to_owned(), template_id.to_owned()))
            .or_default() += 1;
    }

    /// The next subscribe-message calls answer these errcodes, in order.
    pub fn fail_next_subscribe(&self, errcode: i64) {
        self.state().subscribe_failures.push_back(errcode);
    }

    /// The next `n` subscribe messages are taken (the user gets them) and never answered.
    pub fn take_then_stall_subscribe(&self, n: usize) {
        self.state().subscribe_stalls_after_taking = n;
    }

    /// Subscribe-message calls made (errors included).
    pub fn subscribe_requests(&self) -> usize {
        self.state().subscribe_requests
    }

    /// Every subscribe message taken, in order.
    pub fn subscribe_sent(&self) -> Vec<SubscribeSent> {
        self.state().subscribe_sent.clone()
    }

    /// How many subscribe messages `openid` got.
    pub fn subscribe_sent_to(&self, openid: &str) -> usize {
        self.state()
            .subscribe_sent
            .iter()
            .filter(|m| m.touser == openid)
            .count()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }
}

impl Drop for FakeWeChat {
    fn drop(&mut self) {
        let server = self.server.clone();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move { server.stop(false).await });
        }
    }
}

fn lock(state: &Mutex<State>) -> MutexGuard<'_, State> {
    state.lock().unwrap_or_else(PoisonError::into_inner)
}

fn random_code() -> String {
    // WeChat codes are 32 characters of base64-ish text.
    uuid::Uuid::new_v4().simple().to_string()
}

/// WeChat's error body, always with HTTP 200.
fn error(errcode: i64, errmsg: &str) -> HttpResponse {
    let rid = &uuid::Uuid::new_v4().simple().to_string()[..20];
    HttpResponse::Ok().json(json!({
        "errcode": errcode,
        "errmsg": format!("{errmsg} rid: {rid}"),
    }))
}

fn errmsg_for(errcode: i64) -> &'static str {
    match errcode {
        40029 => "invalid code",
        45011 => "api minute-quota reach limit  mustslower  retry next minute",
        40226 => "invalid risky user",
        43101 => "user refuse to accept the msg",
        -1 => "system error",
        _ => "fake error",
    }
}

/// Applies the configured latency, or never answers when the fake was told to stop.
async fn delay(state: &Mutex<State>) {
    let (latency, stalled) = {
        let state = lock(state);
        (state.latency, state.stalled)
    };
    if stalled {
        tokio::time::sleep(STALL).await;
    } else if !latency.is_zero() {
        tokio::time::sleep(latency).await;
    }
}

/// Checks the appid and secret as WeChat does: the appid first.
fn check_credentials(
    state: &State,
    appid: Option<&str>,
    secret: Option<&str>,
) -> Option<HttpResponse> {
    if appid != Some(state.appid.as_str()) {
        return Some(error(40013, "invalid appid"));
    }
    if secret != Some(state.secret.as_str()) {
        return Some(error(40125, "invalid appsecret"));
    }
    None
}

#[derive(Deserialize)]
struct LoginQuery {
    appid: Option<String>,
    secret: Option<String>,
    js_code: Option<String>,
    grant_type: Option<String>,
}

async fn jscode2session(
    state: web::Data<Mutex<State>>,
    query: web::Query<LoginQuery>,
) -> HttpResponse {
    delay(&state).await;
    let mut state = lock(&state);
    if let Some(refusal) =
        check_credentials(&state, query.appid.as_deref(), query.secret.as_deref())
    {
        return refusal;
    }
    if query.grant_type.as_deref() != Some("authorization_code") {
        return error(40002, "invalid grant_type");
    }
    let Some(js_code) = query.js_code.as_deref().filter(|code| !code.is_empty()) else {
        return error(41008, "missing code");
    };
    if let Some(errcode) = state.login_failures.pop_front() {
        return error(errcode, errmsg_for(errcode));
    }
    let Some(login) = state
        .login_codes
        .get_mut(js_code)
        .filter(|login| !login.used && login.issued_at.elapsed() < CODE_LIFETIME)
    else {
        return error(40029, "invalid code");
    };
    login.used = true;
    let mut body = json!({
        "session_key": format!("{}==", &uuid::Uuid::new_v4().simple().to_string()[..22]),
        "openid": login.openid,
    });
    if let Some(unionid) = &login.unionid {
        body["unionid"] = Value::String(unionid.clone());
    }
    // The real endpoint labels its JSON as text/plain: clients must not rely on the header.
    HttpResponse::Ok()
        .content_type(ContentType::plaintext())
        .body(body.to_string())
}

#[derive(Deserialize)]
struct StableTokenBody {
    grant_type: Option<String>,
    appid: Option<String>,
    secret: Option<String>,
    #[serde(default)]
    force_refresh: bool,
}

async fn stable_token(state: web::Data<Mutex<State>>, body: web::Bytes) -> HttpResponse {
    delay(&state).await;
    let mut state = lock(&state);
    state.token_requests += 1;
    let Ok(body) = serde_json::from_slice::<StableTokenBody>(&body) else {
        return error(47001, "data format error");
    };
    if body.grant_type.as_deref() != Some("client_credential") {
        return error(40002, "invalid grant_type");
    }
    if let Some(refusal) = check_credentials(&state, body.appid.as_deref(), body.secret.as_deref())
    {
        return refusal;
    }
    if body.force_refresh {
        // A forced refresh revokes the previous tokens.
        state.tokens.clear();
        state.current_token = None;
    }
    // A normal request hands out the current token until its last 5 minutes, then a new one.
    let current = state.current_token.as_ref().and_then(|token| {
        let expires_at = state.tokens.get(token)?;
        let remaining = expires_at.saturating_duration_since(Instant::now());
        (remaining > TOKEN_RENEWAL_WINDOW).then(|| (token.clone(), remaining))
    });
    let (access_token, expires_in) = match current {
        Some((token, remaining)) => (token, i64::try_from(remaining.as_secs()).unwrap_or(0)),
        None => state.mint_token(),
    };
    HttpResponse::Ok().json(json!({ "access_token": access_token, "expires_in": expires_in }))
}

#[derive(Deserialize)]
struct TokenQuery {
    access_token: Option<String>,
}

#[derive(Deserialize)]
struct PhoneBody {
    code: Option<String>,
}

async fn get_user_phone_number(
    state: web::Data<Mutex<State>>,
    query: web::Query<TokenQuery>,
    body: web::Bytes,
) -> HttpResponse {
    delay(&state).await;
    let mut state = lock(&state);
    let Some(token) = query
        .access_token
        .as_deref()
        .filter(|token| !token.is_empty())
    else {
        return error(41001, "access_token missing");
    };
    match state.token_status(token) {
        TokenStatus::Valid => {}
        TokenStatus::Expired => return error(42001, "access_token expired"),
        TokenStatus::Invalid => {
            return error(
                40001,
                "invalid credential, access_token is invalid or not latest",
            );
        }
    }
    let Ok(body) = serde_json::from_slice::<PhoneBody>(&body) else {
        return error(47001, "data format error");
    };
    let Some(code) = body.code.filter(|code| !code.is_empty()) else {
        return error(41008, "missing code");
    };
    let as_string = state.country_code_as_string;
    let watermark_appid = state.watermark_appid.clone();
    let Some(phone) = state
        .phone_codes
        .get_mut(&code)
        .filter(|phone| !phone.used && phone.issued_at.elapsed() < CODE_LIFETIME)
    else {
        return error(40029, "invalid code");
    };
    phone.used = true;
    let country_code = if as_string {
        Value::String(phone.country_code.clone())
    } else {
        phone
            .country_code
            .parse::<u64>()
            .map_or_else(|_| Value::String(phone.country_code.clone()), Value::from)
    };
    let timestamp = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| since.as_secs());
    HttpResponse::Ok().json(json!({
        "errcode": 0,
        "errmsg": "ok",
        "phone_info": {
            "phoneNumber": phone.phone_number,
            "purePhoneNumber": phone.pure_phone_number,
            "countryCode": country_code,
            "watermark": { "timestamp": timestamp, "appid": watermark_appid },
        },
    }))
}

#[derive(Deserialize)]
struct SubscribeBody {
    touser: Option<String>,
    template_id: Option<String>,
    page: Option<String>,
    data: Option<BTreeMap<String, Value>>,
    miniprogram_state: Option<String>,
    lang: Option<String>,
}

/// Most characters a keyword of this kind holds, as WeChat checks them. Written again here
/// from WeChat's documentation on purpose, not taken from the API crate: the fake stands for
/// WeChat, so a wrong limit in our code meets a 47003 here instead of agreeing with itself.
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

async fn send_subscribe_message(
    state: web::Data<Mutex<State>>,
    query: web::Query<TokenQuery>,
    body: web::Bytes,
) -> HttpResponse {
    // Counted on arrival, so a call that is never answered still shows.
    lock(&state).subscribe_requests += 1;
    delay(&state).await;
    let (answer, stall) = {
        let mut state = lock(&state);
        match subscribe(&mut state, query.access_token.as_deref(), &body) {
            Ok(msgid) => {
                let stall = state.subscribe_stalls_after_taking > 0;
                state.subscribe_stalls_after_taking =
                    state.subscribe_stalls_after_taking.saturating_sub(1);
                (
                    HttpResponse::Ok()
                        .json(json!({ "errcode": 0, "errmsg": "ok", "msgid": msgid })),
                    stall,
                )
            }
            Err((errcode, errmsg)) => (error(errcode, &errmsg), false),
        }
    };
    if stall {
        tokio::time::sleep(STALL).await;
    }
    answer
}

/// Takes one subscribe message, or WeChat's refusal (errcode, errmsg).
fn subscribe(state: &mut State, token: Option<&str>, body: &[u8]) -> Result<u64, (i64, String)> {
    let Some(token) = token.filter(|token| !token.is_empty()) else {
        return Err((41001, "access_token missing".to_owned()));
    };
    match state.token_status(token) {
        TokenStatus::Valid => {}
        TokenStatus::Expired => return Err((42001, "access_token expired".to_owned())),
        TokenStatus::Invalid => {
            return Err((
                40001,
                "invalid credential, access_token is invalid or not latest".to_owned(),
            ));
        }
    }
    let Ok(body) = serde_json::from_slice::<SubscribeBody>(body) else {
        return Err((47001, "data format error".to_owned()));
    };
    if let Some(errcode) = state.subscribe_failures.pop_front() {
        return Err((errcode, errmsg_for(errcode).to_owned()));
    }
    let touser = body.touser.unwrap_or_default();
    if !state.users.contains(&touser) {
        return Err((40003, "invalid openid".to_owned()));
    }
    let template_id = body.template_id.unwrap_or_default();
    let Some(keywords) = state.subscribe_templates.get(&template_id) else {
        return Err((40037, "invalid template_id".to_owned()));
    };
    if let Some(s) = body.miniprogram_state.as_deref()
        && !matches!(s, "developer" | "trial" | "formal")
    {
        return Err((
            47003,
            "argument invalid! miniprogram_state invalid".to_owned(),
        ));
    }
    let given = body.data.unwrap_or_default();
    let mut data = BTreeMap::new();
    for keyword in keywords {
        let Some(value) = given
            .get(keyword)
            .and_then(|v| v.get("value"))
            .and_then(Value::as_str)
            .filter(|v| !v.is_empty())
        else {
            return Err((
                47003,
                format!("argument invalid! data.{keyword}.value is empty"),
            ));
        };
        if keyword_limit(keyword).is_some_and(|limit| value.chars().count() > limit) {
            return Err((
                47003,
                format!("argument invalid! data.{keyword}.value invalid"),
            ));
        }
        data.insert(keyword.clone(), value.to_owned());
    }
    let key = (touser.clone(), template_id.clone());
    match state.subscriptions.get_mut(&key) {
        Some(left) if *left > 0 => *left -= 1,
        _ => return Err((43101, errmsg_for(43101).to_owned())),
    }
    let msgid = 2_900_000_000_000_000_000 + state.subscribe_sent.len() as u64;
    state.subscribe_sent.push(SubscribeSent {
        touser,
        template_id,
        page: body.page,
        data,
        miniprogram_state: body.miniprogram_state,
        lang: body.lang,
        msgid,
    });
    Ok(msgid)
}

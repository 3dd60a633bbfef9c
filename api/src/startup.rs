//! Building the application from settings: state, routes, middleware, listener.

use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{Server, ServiceFactory, ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::ErrorHandlers;
use actix_web::{App, HttpMessage, web};
use anyhow::Context;
use futures_util::future::LocalBoxFuture;
use secrecy::ExposeSecret;
use tracing_actix_web::{RequestId, TracingLogger};
use utoipa::OpenApi;
use utoipa_actix_web::{AppExt, UtoipaApp, scope};
use utoipa_swagger_ui::SwaggerUi;

use crate::auth::JwtKeys;
use crate::auth::keys;
use crate::error::{ApiError, extractors};
use crate::integrations::storage;
use crate::integrations::wechat::{TokenCache, WeChatClient};
use crate::openapi::ApiDoc;
use crate::routes::{self, health};
use crate::service::reminders::schedule::Scheduler;
use crate::settings::{Mode, Settings};
use crate::state::AppState;
use crate::{db, demo, middleware, wire};

/// A built, bound, not-yet-running server.
pub struct Application {
    port: u16,
    server: Server,
    state: AppState,
}

/// Mounts health checks and `/api/v1` on an app (shared by the server and the OpenAPI
/// generator, so the document is exactly what is served).
pub fn mount<T>(app: UtoipaApp<T>, mode: Mode) -> UtoipaApp<T>
where
    T: ServiceFactory<ServiceRequest, Config = (), Error = actix_web::Error, InitError = ()>,
{
    app.openapi(ApiDoc::openapi())
        // Registered before the `/api/v1` scope, which would otherwise answer this path.
        .route("/api/v1/openapi.json", web::get().to(openapi_document))
        .service(health::healthz)
        .service(health::readyz)
        .service(scope::scope("/api/v1").configure(move |cfg| routes::configure(cfg, mode)))
}

/// Builds the shared state: keys, database (migrated when configured), Redis, storage, WeChat.
pub async fn build_state(settings: Settings) -> anyhow::Result<AppState> {
    crate::integrations::tls::install_crypto_provider();
    let mode = settings.effective_mode();
    settings.check()?;
    let keys = keys::resolve(&settings)?;
    let db = db::connect(&settings)
        .await
        .context("connecting to the database")?;
    if settings.migrate_on_start {
        db::migrate_up(&db)
            .await
            .context("migrating the database")?;
    }
    // Events written before the audit chain existed join it before anything new is appended.
    crate::service::audit::seal_legacy(&db)
        .await
        .context("sealing the audit trail")?;
    crate::service::scheme::ensure_seeds(&db)
        .await
        .context("publishing the seed schemes")?;
    crate::service::authorisation::ensure_seed_texts(&db)
        .await
        .context("publishing the seed authorisation texts")?;
    crate::service::reminders::templates::ensure_defaults(&db)
        .await
        .context("writing the default SMS templates")?;
    let redis = match &settings.redis.url {
        Some(url) => Some(redis_connection(url.expose_secret()).await?),
        None => None,
    };
    let storage = storage::operator(&settings).context("object storage")?;
    let pii = keys::vault(&keys)?;
    let http = reqwest::Client::builder()
        .timeout(Duration::from_millis(settings.wechat.timeout_ms))
        .build()
        .context("HTTP client")?;
    let token_cache = match &redis {
        Some(conn) => TokenCache::Redis {
            conn: conn.clone(),
            key_prefix: settings.redis.key_prefix.clone(),
        },
        None => TokenCache::memory(),
    };
    let wechat = WeChatClient::new(
        crate::integrations::wechat::WeChatSettings {
            base_url: settings.wechat.base_url.clone(),
            appid: settings.wechat.appid.clone(),
            secret: settings
                .wechat
                .secret
                .clone()
                .unwrap_or_else(|| secrecy::SecretString::from("")),
            timeout: Duration::from_millis(settings.wechat.timeout_ms),
        },
        http,
        token_cache,
    );
    let jwt = JwtKeys::new(
        &keys.jwt_secret,
        &settings.auth.issuer,
        &settings.auth.audience,
        settings.auth.token_ttl_seconds,
    );
    let sessions =
        crate::service::session::Sessions::new(redis.clone(), &settings.redis.key_prefix);
    let photo_work = crate::service::photo_work::PhotoWork::new(
        settings.http.photo_workers,
        settings.http.photo_queue,
    );
    Ok(AppState {
        breaker: crate::middleware::Breaker::default(),
        photo_work,
        sessions,
        // Built on the server's own runtime (not an HTTP worker's): recomputations run there.
        tallies: crate::service::claim::tallies::Tallies::new(tokio::runtime::Handle::current()),
        db,
        settings: Arc::new(settings),
        mode,
        jwt,
        pii: Arc::new(pii),
        storage,
        redis,
        wechat,
        calendar: match crate::domain::workdays::WorkdayCalendar::official() {
            Ok(c) => Some(Arc::new(c)),
            Err(e) => {
                tracing::error!(error = %e, "the working-day calendar does not load; counting Monday to Friday");
                None
            }
        },
    })
}

/// The OpenAPI document, generated once at start.
#[derive(Clone)]
pub struct OpenApiDocument(pub Arc<String>);

async fn openapi_document(doc: Option<web::Data<OpenApiDocument>>) -> actix_web::HttpResponse {
    match doc {
        Some(doc) => actix_web::HttpResponse::Ok()
            .content_type("application/json")
            .body(doc.0.as_str().to_owned()),
        None => actix_web::HttpResponse::NotFound().finish(),
    }
}

/// Every documented path with its methods, to tell a wrong method (`405` with `Allow`) from an
/// unknown route (`404`): each `#[get]`/`#[post]` is its own resource, so actix itself answers
/// a wrong method like an unknown path.
pub struct KnownRoutes(Vec<(actix_web::dev::ResourceDef, Vec<&'static str>)>);

impl KnownRoutes {
    fn from_document(document: &serde_json::Value) -> Self {
        const METHODS: [&str; 5] = ["GET", "POST", "PUT", "PATCH", "DELETE"];
        let no_paths = serde_json::Map::new();
        let paths = document["paths"].as_object().unwrap_or(&no_paths);
        KnownRoutes(
            paths
                .iter()
                .map(|(path, item)| {
                    let methods = METHODS
                        .into_iter()
                        .filter(|m| item.get(m.to_ascii_lowercase()).is_some())
                        .collect();
                    (actix_web::dev::ResourceDef::new(path.as_str()), methods)
                })
                .collect(),
        )
    }

    /// The methods `path` answers, when it is a known route.
    fn methods(&self, path: &str) -> Option<Vec<&'static str>> {
        let methods: Vec<&'static str> = self
            .0
            .iter()
            .filter(|(def, _)| def.is_match(path))
            .flat_map(|(_, methods)| methods.iter().copied())
            .collect();
        (!methods.is_empty()).then_some(methods)
    }
}

async fn not_found(
    req: actix_web::HttpRequest,
    routes: Option<web::Data<KnownRoutes>>,
) -> actix_web::HttpResponse {
    use actix_web::ResponseError;
    match routes.and_then(|r| r.methods(req.path())) {
        Some(methods) => actix_web::HttpResponse::MethodNotAllowed()
            .insert_header((actix_web::http::header::ALLOW, methods.join(", ")))
            .json(serde_json::json!({
                "error": {
                    "code": "method_not_allowed",
                    "message": "此路径不支持该方法 / this method is not allowed here",
                    "details": { "allow": methods },
                }
            })),
        None => ApiError::NotFound.error_response(),
    }
}

impl Application {
    /// Builds everything and binds the listener (port 0 picks a free port).
    pub async fn build(settings: Settings) -> anyhow::Result<Self> {
        let listen = settings.listen.clone();
        // Counted here, so that the server starts as many workers as there are pools.
        let workers = settings.http_workers();
        let json_limit = settings.http.json_limit_bytes;
        let state = build_state(settings).await?;
        let listener = TcpListener::bind(&listen).with_context(|| format!("binding {listen}"))?;
        let address = listener.local_addr()?;
        if state.mode == Mode::Demo {
            demo::seed_if_empty(&state, &format!("http://{address}"))
                .await
                .context("seeding the demo")?;
        }
        // Labels by route pattern only: every path no route matches shares one label, so
        // unknown paths cannot grow the registry (or the process) without bound.
        let prometheus = actix_web_prom::PrometheusMetricsBuilder::new("huzhu")
            .endpoint("/metrics")
            .mask_unmatched_patterns(UNMATCHED_LABEL)
            .build()
            .map_err(|e| anyhow::anyhow!("metrics: {e}"))?;
        let data = web::Data::new(state.clone());
        // Each HTTP worker answers from its own pool where there are several (`db::worker_pools`);
        // the scheduler, dispatcher and other background work keep `state.db`.
        let worker_states: Vec<web::Data<AppState>> =
            crate::db::worker_pools(&state.settings, workers)
                .await
                .context("opening the workers' database pools")?
                .into_iter()
                .map(|db| {
                    web::Data::new(AppState {
                        db,
                        ..state.clone()
                    })
                })
                .collect();
        let next_worker = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let document_json = crate::openapi::document_json_for(state.mode);
        let known_routes = web::Data::new(KnownRoutes::from_document(&serde_json::from_str(
            &document_json,
        )?));
        let document_data = web::Data::new(OpenApiDocument(Arc::new(document_json)));
        let mode = state.mode;
        // Served as `HttpServer` serves, through `wire::Connection`: the refusals actix-http
        // writes by itself without a body (431 past its own header limits, 400 for an
        // unparsable head, 408) go out in our error shape too.
        let server = wire::serve(listener, workers, move || {
            // Called once on each worker's thread as it starts (again if one is restarted).
            let data = if worker_states.is_empty() {
                data.clone()
            } else {
                let n = next_worker.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                worker_states[n % worker_states.len()].clone()
            };
            let (app, _) = mount(
                App::new()
                    .app_data(data)
                    .app_data(document_data.clone())
                    .app_data(known_routes.clone())
                    .app_data(
                        web::JsonConfig::default()
                            .limit(json_limit)
                            .error_handler(extractors::json_error),
                    )
                    .app_data(web::PayloadConfig::default().limit(json_limit))
                    .app_data(web::QueryConfig::default().error_handler(extractors::query_error))
                    .app_data(web::PathConfig::default().error_handler(extractors::path_error))
                    .wrap_fn(refuse_personal_parameters)
                    .wrap_fn(request_id_header)
                    .wrap(TracingLogger::<crate::telemetry::RequestSpan>::new())
                    .wrap(prometheus.clone())
                    .wrap(ErrorHandlers::new().default_handler(middleware::json_errors))
                    .wrap_fn(guard)
                    .into_utoipa_app(),
                mode,
            )
            .split_for_parts();
            app.service(
                // The UI reads the document from our own route (served from the one string
                // above); handing it the document would keep a parsed copy in every worker.
                SwaggerUi::new("/api/docs/{_:.*}")
                    .config(utoipa_swagger_ui::Config::from("/api/v1/openapi.json")),
            )
            .default_service(web::to(not_found))
        })?;
        // Roster imports a previous process left unfinished.
        tokio::spawn(crate::service::import::resume(state.clone()));
        // Freed start-up memory (and later bursts') goes back to the system.
        crate::memory::spawn_trimmer();
        println!("huzhu listening on http://{address}");
        tracing::info!(%address, ?mode, "listening");
        Ok(Self {
            port: address.port(),
            server,
            state,
        })
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The shared state (tests reach the database through it).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until the process is told to stop, running the renewal reminder scan beside
    /// the server (when `reminders.schedule_enabled`); the scan loop is stopped after the
    /// server.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let scheduler = Scheduler::start(self.state.db.clone(), self.state.settings.clone());
        let dispatcher = start_dispatcher(&self.state);
        let served = self.server.await;
        if let Some(scheduler) = scheduler {
            scheduler.stop().await;
        }
        if let Some((stop, task)) = dispatcher {
            let _ = stop.send(true);
            let _ = task.await;
        }
        served
    }
}

/// Starts the reminder dispatcher beside the server (when `reminders.dispatch_enabled`).
fn start_dispatcher(
    state: &AppState,
) -> Option<(
    tokio::sync::watch::Sender<bool>,
    tokio::task::JoinHandle<()>,
)> {
    let r = &state.settings.reminders;
    if !r.dispatch_enabled {
        return None;
    }
    let provider = match crate::integrations::sms::provider(&state.settings) {
        Ok(p) => p,
        Err(e) => {
            tracing::error!(error = %e, "SMS provider not configured: reminders are not sent");
            return None;
        }
    };
    let dispatcher = crate::service::reminders::dispatch::Dispatcher::from_state(
        state,
        provider,
        crate::service::reminders::dispatch::DispatchConfig::from_settings(r),
        crate::service::reminders::limits::NumberLimits {
            per_minute: r.per_number_per_minute,
            per_day: r.per_number_per_day,
        },
    );
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let interval = Duration::from_secs(r.dispatch_interval_seconds.max(1));
    let task = tokio::spawn(dispatcher.run_every(interval, stopped));
    Some((stop, task))
}

/// The metrics label of every request no route matched.
pub const UNMATCHED_LABEL: &str = "unmatched";

/// In front of everything: refuses oversized headers (`431`) and operators' pages the request
/// may not see ([`middleware::ops_refusal`]) in our error shape, and adds the security headers
/// to every answer, refusals included.
fn guard<S, B>(
    req: ServiceRequest,
    srv: &S,
) -> LocalBoxFuture<'static, Result<ServiceResponse<EitherBody<B>>, actix_web::Error>>
where
    S: actix_web::dev::Service<
            ServiceRequest,
            Response = ServiceResponse<B>,
            Error = actix_web::Error,
        >,
    S::Future: 'static,
    B: MessageBody + 'static,
{
    let state = req.app_data::<web::Data<AppState>>().cloned();
    let (tls, refusal) = match &state {
        Some(state) => {
            let refusal = middleware::oversized_headers(&req)
                .or_else(|| {
                    middleware::is_ops_path(req.path())
                        .then(|| middleware::ops_refusal(&req, &state.settings, state.mode))
                        .flatten()
                        .map(|e| middleware::refuse(&e))
                })
                .or_else(|| {
                    (state.breaker.is_open() && req.path().starts_with("/api/v1/"))
                        .then(middleware::outage_response)
                });
            (middleware::came_over_tls(&req, &state.settings), refusal)
        }
        None => (false, None),
    };
    if let Some(response) = refusal {
        let mut res = req.into_response(response).map_into_right_body();
        middleware::add_security_headers(&mut res, tls);
        return Box::pin(async move { Ok(res) });
    }
    let fut = srv.call(req);
    Box::pin(async move {
        let mut res = fut.await?.map_into_left_body();
        if let Some(state) = &state
            && res
                .response()
                .extensions()
                .get::<middleware::DatabaseOutage>()
                .is_some()
        {
            state.breaker.trip(state.db.clone());
        }
        middleware::add_security_headers(&mut res, tls);
        Ok(res)
    })
}

/// Adds `x-request-id` (the id on every log line of the request) to every response.
/// Refuses a request whose query string names a personal number (`pii_in_url`, 400) before
/// any handler runs (see [`routes::personal_parameter`]). Answered as a response carrying the
/// error, so the outer layers add the request id and log it like any other refusal.
fn refuse_personal_parameters<S, B>(
    req: ServiceRequest,
    srv: &S,
) -> impl std::future::Future<
    Output = Result<ServiceResponse<actix_web::body::EitherBody<B>>, actix_web::Error>,
> + use<S, B>
where
    S: actix_web::dev::Service<
            ServiceRequest,
            Response = ServiceResponse<B>,
            Error = actix_web::Error,
        >,
    B: MessageBody,
{
    let outcome = match routes::personal_parameter(req.query_string()) {
        None => Ok(srv.call(req)),
        Some(parameter) => Err(req.error_response(ApiError::PersonalDataInUrl { parameter })),
    };
    async move {
        match outcome {
            Ok(fut) => fut.await.map(ServiceResponse::map_into_left_body),
            Err(refused) => Ok(refused.map_into_right_body()),
        }
    }
}

fn request_id_header<S, B>(
    req: ServiceRequest,
    srv: &S,
) -> impl std::future::Future<Output = Result<ServiceResponse<B>, actix_web::Error>> + use<S, B>
where
    S: actix_web::dev::Service<
            ServiceRequest,
            Response = ServiceResponse<B>,
            Error = actix_web::Error,
        >,
    B: MessageBody,
{
    let request_id = req.extensions().get::<RequestId>().copied();
    let fut = srv.call(req);
    async move {
        let mut res = fut.await?;
        if let Some(id) = request_id
            && let Ok(value) = HeaderValue::from_str(&id.to_string())
        {
            res.headers_mut()
                .insert(HeaderName::from_static("x-request-id"), value);
        }
        Ok(res)
    }
}

/// The replica's Redis connection (reconnecting by itself), opened within 5 s. Nagle's
/// algorithm is off, as on the database's sockets (vendor/README.md): a command longer than one
/// segment — 1,448 bytes on a real network — would otherwise hold its rest until Redis
/// acknowledged the first, and Redis, holding an incomplete command, acknowledges late.
pub async fn redis_connection(url: &str) -> anyhow::Result<redis::aio::ConnectionManager> {
    use redis::IntoConnectionInfo;
    let info = url
        .into_connection_info()
        .context("redis.url")?
        .set_tcp_settings(redis::io::tcp::TcpSettings::default().set_nodelay(true));
    let client = redis::Client::open(info).context("redis.url")?;
    tokio::time::timeout(
        Duration::from_secs(5),
        redis::aio::ConnectionManager::new(client),
    )
    .await
    .context("connecting to Redis timed out")?
    .context("connecting to Redis")
}

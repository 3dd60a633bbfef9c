//! What every request handler shares.

use std::sync::Arc;

use opendal::Operator;
use sea_orm::DatabaseConnection;

use crate::auth::JwtKeys;
use crate::auth::crypto::PiiVault;
use crate::domain::workdays::WorkdayCalendar;
use crate::integrations::wechat::WeChatClient;
use crate::service::session::Sessions;
use crate::settings::{Mode, Settings};

/// Shared application state (cheap to clone: every field is a handle).
#[derive(Clone)]
pub struct AppState {
    pub db: DatabaseConnection,
    pub settings: Arc<Settings>,
    pub mode: Mode,
    pub jwt: JwtKeys,
    pub pii: Arc<PiiVault>,
    pub storage: Operator,
    /// Present when Redis is configured; otherwise in-process fallbacks are used.
    pub redis: Option<redis::aio::ConnectionManager>,
    pub wechat: WeChatClient,
    /// Token generations per account (revocable sessions), cached in Redis or in process.
    pub sessions: Sessions,
    /// Open while the database is unreachable (see `middleware::Breaker`).
    pub breaker: crate::middleware::Breaker,
    /// The bound on photo decoding (claim material uploads).
    pub photo_work: crate::service::photo_work::PhotoWork,
    /// Badge counts and figures kept briefly (see `service::claim::tallies`).
    pub tallies: crate::service::claim::tallies::Tallies,
    /// The official working-day calendar (service levels); `None` if its data failed to load.
    pub calendar: Option<Arc<WorkdayCalendar>>,
}

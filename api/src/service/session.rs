//! Revocable sessions. Every staff and member account has a token generation; each token
//! carries the generation it was issued under, and a token whose generation is older than the
//! account's is refused. Bumping the generation — an account disabled, its role or organisation
//! changed, "sign out everywhere" — therefore revokes every token issued before it.
//!
//! The generation is asked on every signed-in request, so it is cached: in Redis when
//! configured (a bump writes the new generation there, so every replica refuses at once; an
//! entry lives [`REDIS_TTL_SECONDS`]), and in process otherwise or while Redis does not answer
//! (an entry lives [`LOCAL_TTL`], so a replica that did not see the bump refuses within that).
//! With Redis, a generation read from it is also kept in process for [`SHARED_READ_TTL`], so a
//! burst of requests by one account costs one Redis round trip, and a bump on another replica
//! is refused here within that second.
//! Both caches only ever move a generation *up* (a Lua max for Redis), so a request that read
//! the old generation just before a bump cannot put it back. Nothing changed: no database
//! round trip for a warm account.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QuerySelect};

use entity::{member, staff};

/// How long a replica trusts a generation it read itself (the in-process cache): the longest a
/// revoked token keeps working on a replica that does not share Redis.
pub const LOCAL_TTL: Duration = Duration::from_secs(5);

/// With Redis: how long a replica answers from a generation it read from Redis itself, before
/// asking again (bumps on this replica are seen at once; on others within this).
pub const SHARED_READ_TTL: Duration = Duration::from_secs(1);

/// How long a generation stays in Redis (bumps overwrite it at once; this bounds the damage of
/// a bump whose write to Redis failed).
pub const REDIS_TTL_SECONDS: u64 = 60;

/// Longest wait for Redis on a request's path; past it the in-process cache answers.
const REDIS_WAIT: Duration = Duration::from_millis(300);

/// Entries kept in process before expired ones are swept.
const LOCAL_SWEEP_AT: usize = 10_000;

/// Which table an account lives in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AccountKind {
    Staff,
    Member,
}

impl AccountKind {
    fn as_str(self) -> &'static str {
        match self {
            AccountKind::Staff => "staff",
            AccountKind::Member => "member",
        }
    }
}

/// The generation tokens of `pid` must carry, from the database; `None` when there is no such
/// account or (staff) it is disabled.
pub async fn generation_of<C: ConnectionTrait>(
    db: &C,
    kind: AccountKind,
    pid: &str,
) -> Result<Option<i64>, DbErr> {
    match kind {
        AccountKind::Staff => Ok(staff::Entity::find()
            .select_only()
            .column(staff::Column::TokenGeneration)
            .column(staff::Column::Active)
            .filter(staff::Column::Pid.eq(pid))
            .into_tuple::<(i64, bool)>()
            .one(db)
            .await?
            .and_then(|(generation, active)| active.then_some(generation))),
        AccountKind::Member => {
            member::Entity::find()
                .select_only()
                .column(member::Column::TokenGeneration)
                .filter(member::Column::Pid.eq(pid))
                .into_tuple::<i64>()
                .one(db)
                .await
        }
    }
}

/// Raises the account's generation by one inside the caller's transaction, refusing every
/// token issued before; returns the new generation (`None`: no such account). Publish it with
/// [`Sessions::revoked`] once the transaction has committed.
pub async fn bump<C: ConnectionTrait>(
    db: &C,
    kind: AccountKind,
    pid: &str,
) -> Result<Option<i64>, DbErr> {
    match kind {
        AccountKind::Staff => {
            staff::Entity::update_many()
                .col_expr(
                    staff::Column::TokenGeneration,
                    Expr::col(staff::Column::TokenGeneration).add(1),
                )
                .filter(staff::Column::Pid.eq(pid))
                .exec(db)
                .await?;
            Ok(staff::Entity::find()
                .select_only()
                .column(staff::Column::TokenGeneration)
                .filter(staff::Column::Pid.eq(pid))
                .into_tuple::<i64>()
                .one(db)
                .await?)
        }
        AccountKind::Member => {
            member::Entity::update_many()
                .col_expr(
                    member::Column::TokenGeneration,
                    Expr::col(member::Column::TokenGeneration).add(1),
                )
                .filter(member::Column::Pid.eq(pid))
                .exec(db)
                .await?;
            member::Entity::find()
                .select_only()
                .column(member::Column::TokenGeneration)
                .filter(member::Column::Pid.eq(pid))
                .into_tuple::<i64>()
                .one(db)
                .await
        }
    }
}

/// Sets a key to the larger of its value and `ARGV[1]` (with a TTL) and answers the result.
const RAISE_SCRIPT: &str = r"
local current = tonumber(redis.call('GET', KEYS[1]) or '-1')
local proposed = tonumber(ARGV[1])
if proposed > current then
  redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
  return proposed
end
return current
";

/// What a cached look-up found.
#[derive(Clone, Copy, Debug)]
struct Entry {
    generation: i64,
    read_at: Instant,
}

/// The generation cache every replica keeps (cheap to clone).
#[derive(Clone)]
pub struct Sessions {
    redis: Option<(redis::aio::ConnectionManager, String)>,
    local: Arc<Mutex<HashMap<(AccountKind, String), Entry>>>,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions")
            .field("redis", &self.redis.is_some())
            .finish_non_exhaustive()
    }
}

impl Sessions {
    /// A cache shared through Redis when `redis` is given (keys under `key_prefix`).
    pub fn new(redis: Option<redis::aio::ConnectionManager>, key_prefix: &str) -> Self {
        Self {
            redis: redis.map(|conn| (conn, key_prefix.to_owned())),
            local: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    fn key(prefix: &str, kind: AccountKind, pid: &str) -> String {
        format!("{prefix}session-generation:{}:{pid}", kind.as_str())
    }

    /// Whether a token issued under `generation` for `pid` is still good: its generation is the
    /// account's current one (and the account exists and, for staff, is active).
    pub async fn accepts<C: ConnectionTrait>(
        &self,
        db: &C,
        kind: AccountKind,
        pid: &str,
        generation: i64,
    ) -> Result<bool, DbErr> {
        Ok(self
            .current(db, kind, pid)
            .await?
            .is_some_and(|current| current <= generation))
    }

    /// The account's generation, through the caches.
    async fn current<C: ConnectionTrait>(
        &self,
        db: &C,
        kind: AccountKind,
        pid: &str,
    ) -> Result<Option<i64>, DbErr> {
        if let Some((conn, prefix)) = &self.redis {
            // A generation this replica read from Redis within the last second answers without
            // a round trip (a page load is a burst of requests by one account); a bump made on
            // another replica is therefore refused here within a second.
            if let Some(generation) = self.fresh_locally(kind, pid, SHARED_READ_TTL) {
                return Ok(Some(generation));
            }
            let mut conn = conn.clone();
            let key = Self::key(prefix, kind, pid);
            let asked = tokio::time::timeout(
                REDIS_WAIT,
                redis::cmd("GET")
                    .arg(&key)
                    .query_async::<Option<i64>>(&mut conn),
            )
            .await
            .map_err(|_| "timed out".to_owned())
            .and_then(|r| r.map_err(|e| e.to_string()));
            match asked {
                Ok(Some(generation)) => {
                    self.raise_locally(kind, pid, generation, Instant::now());
                    return Ok(Some(generation));
                }
                Ok(None) => {
                    let Some(generation) = generation_of(db, kind, pid).await? else {
                        return Ok(None);
                    };
                    let generation = self
                        .raise_in_redis(&key, generation)
                        .await
                        .unwrap_or(generation);
                    self.raise_locally(kind, pid, generation, Instant::now());
                    return Ok(Some(generation));
                }
                Err(e) => {
                    tracing::warn!(error = %e, "Redis does not answer: session generations from the in-process cache");
                }
            }
        }
        if let Some(generation) = self.fresh_locally(kind, pid, LOCAL_TTL) {
            return Ok(Some(generation));
        }
        let Some(generation) = generation_of(db, kind, pid).await? else {
            return Ok(None);
        };
        self.raise_locally(kind, pid, generation, Instant::now());
        Ok(Some(generation))
    }

    /// The generation this replica read within `ttl`, if any.
    fn fresh_locally(&self, kind: AccountKind, pid: &str, ttl: Duration) -> Option<i64> {
        self.local
            .lock()
            .ok()
            .and_then(|map| map.get(&(kind, pid.to_owned())).copied())
            .filter(|e| e.read_at.elapsed() < ttl)
            .map(|e| e.generation)
    }

    async fn raise_in_redis(&self, key: &str, generation: i64) -> Option<i64> {
        let (conn, _) = self.redis.as_ref()?;
        let mut conn = conn.clone();
        let script = redis::Script::new(RAISE_SCRIPT);
        let mut invocation = script.key(key);
        invocation.arg(generation).arg(REDIS_TTL_SECONDS);
        match tokio::time::timeout(REDIS_WAIT, invocation.invoke_async::<i64>(&mut conn)).await {
            Ok(Ok(raised)) => Some(raised),
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "writing a session generation to Redis failed");
                None
            }
            Err(_) => {
                tracing::warn!("writing a session generation to Redis timed out");
                None
            }
        }
    }

    fn raise_locally(&self, kind: AccountKind, pid: &str, generation: i64, read_at: Instant) {
        let Ok(mut map) = self.local.lock() else {
            return;
        };
        if map.len() >= LOCAL_SWEEP_AT {
            map.retain(|_, e| e.read_at.elapsed() < LOCAL_TTL);
        }
        let entry = map.entry((kind, pid.to_owned())).or_insert(Entry {
            generation,
            read_at,
        });
        if generation >= entry.generation {
            *entry = Entry {
                generation,
                read_at,
            };
        }
    }

    /// Publishes a bumped generation (after its transaction committed): to Redis, so every
    /// replica refuses older tokens at once, and to this replica's own cache.
    pub async fn revoked(&self, kind: AccountKind, pid: &str, generation: i64) {
        self.raise_locally(kind, pid, generation, Instant::now());
        if let Some((_, prefix)) = &self.redis
            && self
                .raise_in_redis(&Self::key(prefix, kind, pid), generation)
                .await
                .is_none()
        {
            tracing::error!(
                account = pid,
                "a revocation could not be written to Redis: other replicas refuse older tokens once their cached generation expires"
            );
        }
    }
}

/// "Sign out everywhere": bumps the requester's own generation (audited), so every token of
/// the account — this one included — is refused; returns the new generation to publish.
pub async fn revoke_all(
    db: &sea_orm::DatabaseConnection,
    requester: &super::Requester,
    kind: AccountKind,
) -> Result<Option<i64>, DbErr> {
    let txn = crate::db::begin_write(db).await?;
    let generation = bump(&txn, kind, &requester.pid).await?;
    if generation.is_some() {
        requester
            .audit(
                &txn,
                "sessions.revoked",
                (kind.as_str(), Some(&requester.pid)),
                serde_json::json!({}),
            )
            .await?;
    }
    txn.commit().await?;
    Ok(generation)
}

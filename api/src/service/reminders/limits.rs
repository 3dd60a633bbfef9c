//! Per-number sending limits, shared across replicas through Redis, in process without it;
//! and quiet hours: messages go only between 08:00 and 21:00 Asia/Shanghai.
//!
//! Two limits per number:
//! - **rolling minute**: at most `per_minute` (default 1) messages in any 60 s, counted from
//!   each message's own time — never by calendar minute, where 08:00:38 and 08:01:00 would both
//!   go, 22 s apart, and Tencent refuses the second (`PhoneNumberThirtySecondLimit`). With one
//!   a minute the providers' 30 s rule is never reached;
//! - **calendar day**: at most `per_day` (default 10) messages per day of Asia/Shanghai, as both
//!   providers count their daily limit (per natural day, Beijing time), so ours runs out no
//!   later than theirs on the same day. Quiet hours keep messages away from midnight, where the
//!   two counts could fall on different days.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, Duration, NaiveTime, TimeZone, Timelike, Utc};
use chrono_tz::Asia::Shanghai;

/// How many messages one number may get.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NumberLimits {
    /// In any 60 s.
    pub per_minute: u32,
    /// Per calendar day (Asia/Shanghai).
    pub per_day: u32,
}

impl Default for NumberLimits {
    fn default() -> Self {
        NumberLimits {
            per_minute: 1,
            per_day: 10,
        }
    }
}

/// The rolling window of [`NumberLimits::per_minute`].
const WINDOW: Duration = Duration::seconds(60);

/// The first moment at or after `now` inside 08:00–21:00 Asia/Shanghai.
pub fn sending_window_start(now: DateTime<Utc>) -> DateTime<Utc> {
    let local = now.with_timezone(&Shanghai);
    let hour = local.hour();
    if (8..21).contains(&hour) {
        return now;
    }
    let day = if hour >= 21 {
        local.date_naive().succ_opt().unwrap_or(local.date_naive())
    } else {
        local.date_naive()
    };
    let eight = NaiveTime::from_hms_opt(8, 0, 0).unwrap_or(NaiveTime::MIN);
    Shanghai
        .from_local_datetime(&day.and_time(eight))
        .earliest()
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or(now)
}

/// Whether `now` is inside the sending hours.
pub fn in_sending_hours(now: DateTime<Utc>) -> bool {
    sending_window_start(now) == now
}

/// The answer for one number.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Permit {
    /// Send now (the message is counted).
    Granted,
    /// Not before this moment.
    NotBefore(DateTime<Utc>),
}

/// What the in-process limiter remembers of one number.
#[derive(Debug, Default)]
pub struct Recent {
    /// Messages of the last 60 s, in order.
    sent: Vec<DateTime<Utc>>,
    /// The calendar day counted, and its count.
    day: i64,
    today: u32,
}

/// Counts messages per number.
pub enum NumberLimiter {
    Redis {
        redis: redis::aio::ConnectionManager,
        prefix: String,
        limits: NumberLimits,
    },
    Memory {
        counts: Mutex<HashMap<String, Recent>>,
        limits: NumberLimits,
    },
}

fn day_of(now: DateTime<Utc>) -> i64 {
    let local = now.with_timezone(&Shanghai).date_naive();
    local
        .signed_duration_since(chrono::NaiveDate::MIN)
        .num_days()
}

fn next_day(now: DateTime<Utc>) -> DateTime<Utc> {
    let tomorrow = now
        .with_timezone(&Shanghai)
        .date_naive()
        .succ_opt()
        .unwrap_or(now.date_naive());
    sending_window_start(
        Shanghai
            .from_local_datetime(&tomorrow.and_time(NaiveTime::MIN))
            .earliest()
            .map(|t| t.with_timezone(&Utc))
            .unwrap_or(now + Duration::days(1)),
    )
}

/// Takes one slot for each of a batch's messages atomically, in order (a number twice in the
/// batch sees its first slot): for each, drops what left the window, then answers 0 (granted,
/// counted), 1 (the day is full) or 2 with the time (ms) of the message that must leave the
/// window first — a flat list of two numbers per message. One call per batch, not per message.
/// KEYS: per message its number's window (a sorted set scored by ms) and day counter. ARGV: now
/// (ms), per_minute, per_day, the window (ms), the day counter's lifetime (s), then a unique
/// member per message.
const TAKE_MANY: &str = r"
local now = tonumber(ARGV[1])
local per_minute = tonumber(ARGV[2])
local per_day = tonumber(ARGV[3])
local window = tonumber(ARGV[4])
local lifetime = tonumber(ARGV[5])
local out = {}
for i = 1, #KEYS / 2 do
  local recent = KEYS[2 * i - 1]
  local day = KEYS[2 * i]
  redis.call('ZREMRANGEBYSCORE', recent, '-inf', now - window)
  if tonumber(redis.call('GET', day) or '0') >= per_day then
    out[#out + 1] = 1
    out[#out + 1] = 0
  else
    local n = redis.call('ZCARD', recent)
    if n >= per_minute then
      local first = redis.call('ZRANGE', recent, n - per_minute, n - per_minute, 'WITHSCORES')
      out[#out + 1] = 2
      out[#out + 1] = tonumber(first[2] or now)
    else
      redis.call('ZADD', recent, now, ARGV[5 + i])
      redis.call('PEXPIRE', recent, 2 * window)
      redis.call('INCR', day)
      redis.call('EXPIRE', day, lifetime)
      out[#out + 1] = 0
      out[#out + 1] = 0
    end
  end
end
return out
";

/// Gives one slot back: the latest message of the window at or before `at` (ms), and one of
/// the day. KEYS: the window, the day counter. ARGV: at (ms).
const GIVE_BACK: &str = r"
local last = redis.call('ZREVRANGEBYSCORE', KEYS[1], ARGV[1], '-inf', 'LIMIT', 0, 1)
if last[1] then
  redis.call('ZREM', KEYS[1], last[1])
end
if tonumber(redis.call('GET', KEYS[2]) or '0') > 0 then
  redis.call('DECR', KEYS[2])
end
return 0
";

impl NumberLimiter {
    /// In process (the embedded default, or without Redis).
    pub fn in_memory(limits: NumberLimits) -> Self {
        NumberLimiter::Memory {
            counts: Mutex::new(HashMap::new()),
            limits,
        }
    }

    /// Shared through Redis under `prefix`.
    pub fn redis(
        redis: redis::aio::ConnectionManager,
        prefix: String,
        limits: NumberLimits,
    ) -> Self {
        NumberLimiter::Redis {
            redis,
            prefix,
            limits,
        }
    }

    fn keys(prefix: &str, number_key: &str, at: DateTime<Utc>) -> (String, String) {
        (
            format!("{prefix}sms:recent:{number_key}"),
            format!("{prefix}sms:day:{number_key}:{}", day_of(at)),
        )
    }

    /// Takes one message for `number_key` (the number's look-up hash, never the number) at
    /// `now`, or says when it may go.
    pub async fn take(
        &self,
        number_key: &str,
        now: DateTime<Utc>,
    ) -> Result<Permit, redis::RedisError> {
        Ok(self
            .take_many(&[number_key], now)
            .await?
            .pop()
            .unwrap_or(Permit::Granted))
    }

    /// Takes one message for each of `number_keys` at `now`, in order, or says when each may
    /// go: one round trip to Redis for the whole batch.
    pub async fn take_many(
        &self,
        number_keys: &[&str],
        now: DateTime<Utc>,
    ) -> Result<Vec<Permit>, redis::RedisError> {
        if number_keys.is_empty() {
            return Ok(Vec::new());
        }
        match self {
            NumberLimiter::Memory { counts, limits } => {
                let mut counts = counts.lock().unwrap_or_else(|p| p.into_inner());
                Ok(number_keys
                    .iter()
                    .map(|key| {
                        let recent = counts.entry((*key).to_owned()).or_default();
                        take_in_memory(recent, limits, now)
                    })
                    .collect())
            }
            NumberLimiter::Redis {
                redis,
                prefix,
                limits,
            } => {
                let mut conn = redis.clone();
                let script = redis::Script::new(TAKE_MANY);
                let mut invocation = script.prepare_invoke();
                for key in number_keys {
                    let (window, day) = Self::keys(prefix, key, now);
                    invocation.key(window).key(day);
                }
                invocation
                    .arg(now.timestamp_millis())
                    .arg(limits.per_minute)
                    .arg(limits.per_day)
                    .arg(WINDOW.num_milliseconds())
                    .arg(2 * 86_400);
                for _ in number_keys {
                    invocation.arg(format!(
                        "{}:{}",
                        now.timestamp_millis(),
                        uuid::Uuid::new_v4().simple()
                    ));
                }
                let flat: Vec<i64> = invocation.invoke_async(&mut conn).await?;
                Ok(flat
                    .chunks(2)
                    .map(|answer| match answer {
                        [0, _] => Permit::Granted,
                        [1, _] => Permit::NotBefore(next_day(now)),
                        [_, first_ms] => Permit::NotBefore(
                            DateTime::from_timestamp_millis(*first_ms).unwrap_or(now) + WINDOW,
                        ),
                        _ => Permit::NotBefore(now + WINDOW),
                    })
                    .collect())
            }
        }
    }
}

/// One message for a number counted in process, or when it may go.
fn take_in_memory(recent: &mut Recent, limits: &NumberLimits, now: DateTime<Utc>) -> Permit {
    recent.sent.retain(|t| *t + WINDOW > now);
    let day = day_of(now);
    if recent.day != day {
        recent.day = day;
        recent.today = 0;
    }
    if recent.today >= limits.per_day {
        return Permit::NotBefore(next_day(now));
    }
    let per_minute = limits.per_minute as usize;
    if recent.sent.len() >= per_minute {
        // The one whose leaving the window frees a slot.
        let first = recent
            .sent
            .get(recent.sent.len() - per_minute)
            .copied()
            .unwrap_or(now);
        return Permit::NotBefore(first + WINDOW);
    }
    let at = recent.sent.partition_point(|t| *t <= now);
    recent.sent.insert(at, now);
    recent.today += 1;
    Permit::Granted
}

impl NumberLimiter {
    /// Gives back a message taken with [`NumberLimiter::take`] at or before `at` that never
    /// reached the provider (it was refused, the call failed before it was taken, or the
    /// dispatcher lost it), so it does not count.
    pub async fn give_back(
        &self,
        number_key: &str,
        at: DateTime<Utc>,
    ) -> Result<(), redis::RedisError> {
        match self {
            NumberLimiter::Memory { counts, .. } => {
                let mut counts = counts.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(recent) = counts.get_mut(number_key) {
                    if let Some(i) = recent.sent.iter().rposition(|t| *t <= at) {
                        recent.sent.remove(i);
                    }
                    if recent.day == day_of(at) {
                        recent.today = recent.today.saturating_sub(1);
                    }
                }
                Ok(())
            }
            NumberLimiter::Redis { redis, prefix, .. } => {
                let mut conn = redis.clone();
                let (window, day) = Self::keys(prefix, number_key, at);
                let _: i64 = redis::Script::new(GIVE_BACK)
                    .key(window)
                    .key(day)
                    .arg(at.timestamp_millis())
                    .invoke_async(&mut conn)
                    .await?;
                Ok(())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        Shanghai
            .from_local_datetime(
                &chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").expect("time"),
            )
            .earliest()
            .expect("local")
            .with_timezone(&Utc)
    }

    #[test]
    fn quiet_hours_hold_messages_to_eight_in_the_morning() {
        assert_eq!(
            sending_window_start(at("2025-06-01 07:59:59")),
            at("2025-06-01 08:00:00")
        );
        assert_eq!(
            sending_window_start(at("2025-06-01 08:00:00")),
            at("2025-06-01 08:00:00")
        );
        assert_eq!(
            sending_window_start(at("2025-06-01 20:59:59")),
            at("2025-06-01 20:59:59")
        );
        assert_eq!(
            sending_window_start(at("2025-06-01 21:00:00")),
            at("2025-06-02 08:00:00")
        );
        assert!(!in_sending_hours(at("2025-06-01 23:30:00")));
    }

    #[tokio::test]
    async fn one_a_minute_and_ten_a_day() {
        let limiter = NumberLimiter::in_memory(NumberLimits::default());
        let t = at("2025-06-01 09:00:10");
        assert_eq!(limiter.take("n", t).await.expect("take"), Permit::Granted);
        assert_eq!(
            limiter.take("n", t).await.expect("take"),
            Permit::NotBefore(at("2025-06-01 09:01:10")),
            "60 s after the first"
        );
        assert_eq!(
            limiter.take("other", t).await.expect("take"),
            Permit::Granted
        );
        for m in 1..10 {
            let later = t + Duration::minutes(m);
            assert_eq!(
                limiter.take("n", later).await.expect("take"),
                Permit::Granted
            );
        }
        assert_eq!(
            limiter
                .take("n", t + Duration::minutes(30))
                .await
                .expect("take"),
            Permit::NotBefore(at("2025-06-02 08:00:00"))
        );
    }

    #[tokio::test]
    async fn a_number_waits_sixty_seconds_not_for_the_next_calendar_minute() {
        let limiter = NumberLimiter::in_memory(NumberLimits::default());
        let first = at("2025-06-02 08:00:38");
        assert_eq!(
            limiter.take("n", first).await.expect("take"),
            Permit::Granted
        );
        assert_eq!(
            limiter
                .take("n", at("2025-06-02 08:01:00"))
                .await
                .expect("take"),
            Permit::NotBefore(at("2025-06-02 08:01:38")),
            "22 s after the first: Tencent refuses it (PhoneNumberThirtySecondLimit)"
        );
        assert_eq!(
            limiter
                .take("n", at("2025-06-02 08:01:38"))
                .await
                .expect("take"),
            Permit::Granted
        );
    }
}

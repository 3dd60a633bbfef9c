//! Per-number sending limits (one message a minute, ten a day by default), shared across
//! replicas through Redis, in process without it. Quiet hours: messages go only between 08:00
//! and 21:00 Asia/Shanghai.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, Duration, NaiveTime, TimeZone, Timelike, Utc};
use chrono_tz::Asia::Shanghai;

/// How many messages one number may get.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NumberLimits {
    pub per_minute: u32,
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

/// Counts messages per number.
pub enum NumberLimiter {
    Redis {
        redis: redis::aio::ConnectionManager,
        prefix: String,
        limits: NumberLimits,
    },
    Memory {
        counts: Mutex<HashMap<String, (i64, u32, i64, u32)>>,
        limits: NumberLimits,
    },
}

fn minute_of(now: DateTime<Utc>) -> i64 {
    now.timestamp().div_euclid(60)
}

fn day_of(now: DateTime<Utc>) -> i64 {
    let local = now.with_timezone(&Shanghai).date_naive();
    local
        .signed_duration_since(chrono::NaiveDate::MIN)
        .num_days()
}

fn next_minute(now: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp((minute_of(now) + 1) * 60, 0).unwrap_or(now + Duration::minutes(1))
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

    /// Takes one message for `number_key` (the number's look-up hash, never the number) at
    /// `now`, or says when it may go.
    pub async fn take(
        &self,
        number_key: &str,
        now: DateTime<Utc>,
    ) -> Result<Permit, redis::RedisError> {
        let (minute, day) = (minute_of(now), day_of(now));
        match self {
            NumberLimiter::Memory { counts, limits } => {
                let mut counts = counts.lock().unwrap_or_else(|p| p.into_inner());
                let entry = counts
                    .entry(number_key.to_owned())
                    .or_insert((minute, 0, day, 0));
                if entry.0 != minute {
                    entry.0 = minute;
                    entry.1 = 0;
                }
                if entry.2 != day {
                    entry.2 = day;
                    entry.3 = 0;
                }
                if entry.3 >= limits.per_day {
                    return Ok(Permit::NotBefore(next_day(now)));
                }
                if entry.1 >= limits.per_minute {
                    return Ok(Permit::NotBefore(next_minute(now)));
                }
                entry.1 += 1;
                entry.3 += 1;
                Ok(Permit::Granted)
            }
            NumberLimiter::Redis {
                redis,
                prefix,
                limits,
            } => {
                let mut conn = redis.clone();
                let minute_key = format!("{prefix}sms:minute:{number_key}:{minute}");
                let day_key = format!("{prefix}sms:day:{number_key}:{day}");
                // Count first, then give the slot back when over: concurrent replicas never
                // both get the last slot.
                let (in_minute, in_day): (u32, u32) = redis::pipe()
                    .atomic()
                    .incr(&minute_key, 1)
                    .expire(&minute_key, 120)
                    .ignore()
                    .incr(&day_key, 1)
                    .expire(&day_key, 2 * 86_400)
                    .ignore()
                    .query_async(&mut conn)
                    .await?;
                if in_day > limits.per_day || in_minute > limits.per_minute {
                    let _: () = redis::pipe()
                        .atomic()
                        .decr(&minute_key, 1)
                        .ignore()
                        .decr(&day_key, 1)
                        .ignore()
                        .query_async(&mut conn)
                        .await?;
                    return Ok(Permit::NotBefore(if in_day > limits.per_day {
                        next_day(now)
                    } else {
                        next_minute(now)
                    }));
                }
                Ok(Permit::Granted)
            }
        }
    }
}

impl NumberLimiter {
    /// Gives back a message taken with [`NumberLimiter::take`] that never reached the provider
    /// (it was refused or the call failed before it was taken), so it does not count.
    pub async fn give_back(
        &self,
        number_key: &str,
        now: DateTime<Utc>,
    ) -> Result<(), redis::RedisError> {
        let (minute, day) = (minute_of(now), day_of(now));
        match self {
            NumberLimiter::Memory { counts, .. } => {
                let mut counts = counts.lock().unwrap_or_else(|p| p.into_inner());
                if let Some(entry) = counts.get_mut(number_key) {
                    if entry.0 == minute {
                        entry.1 = entry.1.saturating_sub(1);
                    }
                    if entry.2 == day {
                        entry.3 = entry.3.saturating_sub(1);
                    }
                }
                Ok(())
            }
            NumberLimiter::Redis { redis, prefix, .. } => {
                let mut conn = redis.clone();
                let _: () = redis::pipe()
                    .atomic()
                    .decr(format!("{prefix}sms:minute:{number_key}:{minute}"), 1)
                    .ignore()
                    .decr(format!("{prefix}sms:day:{number_key}:{day}"), 1)
                    .ignore()
                    .query_async(&mut conn)
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
            Permit::NotBefore(at("2025-06-01 09:01:00"))
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
}

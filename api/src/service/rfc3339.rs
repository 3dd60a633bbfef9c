//! Instants in answers, written as chrono writes them (RFC 3339, UTC as `Z`, as many fraction
//! digits as the instant needs: 0, 3, 6 or 9) but handed to the serializer as one string.
//!
//! chrono's own `Serialize` gives serde_json a `Display` to collect, which chrono writes a
//! character or two at a time and serde_json escapes call by call: with a hundred instants on
//! a page of claims that was 3–4 % of a list request's CPU (issue 20). Use with
//! `#[serde(serialize_with = "rfc3339::instant")]` (or `rfc3339::maybe` for an `Option`).

use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serializer;

/// `at` as chrono's `Serialize` writes it.
pub fn instant<S: Serializer>(at: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&at.to_rfc3339_opts(SecondsFormat::AutoSi, true))
}

/// [`instant`] for an instant that may be missing (`null`).
pub fn maybe<S: Serializer>(at: &Option<DateTime<Utc>>, serializer: S) -> Result<S::Ok, S::Error> {
    match at {
        Some(at) => instant(at, serializer),
        None => serializer.serialize_none(),
    }
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use proptest::prelude::*;

    use super::*;

    #[derive(serde::Serialize)]
    struct Ours {
        #[serde(serialize_with = "instant")]
        at: DateTime<Utc>,
        #[serde(serialize_with = "maybe")]
        maybe: Option<DateTime<Utc>>,
    }

    #[derive(serde::Serialize)]
    struct Chronos {
        at: DateTime<Utc>,
        maybe: Option<DateTime<Utc>>,
    }

    fn same(at: DateTime<Utc>, maybe: Option<DateTime<Utc>>) {
        let ours = serde_json::to_string(&Ours { at, maybe }).unwrap();
        let theirs = serde_json::to_string(&Chronos { at, maybe }).unwrap();
        assert_eq!(ours, theirs);
    }

    #[test]
    fn whole_seconds_milli_micro_and_nanoseconds_are_written_as_chrono_writes_them() {
        let base = Utc.with_ymd_and_hms(2025, 12, 31, 16, 0, 0).unwrap();
        for nanos in [
            0,
            1,
            1_000,
            1_000_000,
            120_000_000,
            123_456_000,
            999_999_999,
        ] {
            let at = base + chrono::Duration::nanoseconds(nanos);
            same(at, Some(at));
            same(at, None);
        }
        // A leap second as chrono represents it, and the far ends of a four-digit year.
        let leap = chrono::NaiveDate::from_ymd_opt(2016, 12, 31)
            .unwrap()
            .and_hms_nano_opt(23, 59, 59, 1_500_000_000)
            .unwrap()
            .and_utc();
        same(leap, Some(leap));
        same(Utc.with_ymd_and_hms(1, 1, 1, 0, 0, 0).unwrap(), None);
        same(
            Utc.with_ymd_and_hms(9999, 12, 31, 23, 59, 59).unwrap(),
            None,
        );
    }

    proptest! {
        #[test]
        fn any_instant_is_written_as_chrono_writes_it(
            seconds in 0i64..253_402_300_799,
            nanos in 0u32..1_000_000_000,
        ) {
            let at = DateTime::from_timestamp(seconds, nanos).unwrap();
            same(at, Some(at));
        }
    }
}

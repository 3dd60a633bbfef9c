//! Instants in answers, written as chrono writes them (RFC 3339, UTC as `Z`, as many fraction
//! digits as the instant needs: 0, 3, 6 or 9) but handed to the serializer as one string.
//!
//! chrono's own `Serialize` gives serde_json a `Display` to collect, which chrono writes a
//! character or two at a time and serde_json escapes call by call: with a hundred instants on
//! a page of claims that was 3–4 % of a list request's CPU (issue 20). `to_rfc3339_opts`
//! instead still went through `core::fmt` and a new `String` per instant (1,300 instructions
//! each, 6 % of the member's list); the usual instant — a year of four digits, no leap second —
//! is now written digit by digit into a buffer on the stack, and any other is left to chrono.
//! The tests hold both to chrono's own `Serialize`. Use with
//! `#[serde(serialize_with = "rfc3339::instant")]` (or `rfc3339::maybe` for an `Option`).

use chrono::{DateTime, Datelike, SecondsFormat, Timelike, Utc};
use serde::Serializer;

/// `at` as chrono's `Serialize` writes it.
pub fn instant<S: Serializer>(at: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
    let mut buf = [0u8; 30];
    match written(at, &mut buf) {
        Some(text) => serializer.serialize_str(text),
        None => serializer.serialize_str(&at.to_rfc3339_opts(SecondsFormat::AutoSi, true)),
    }
}

/// [`instant`] for an instant that may be missing (`null`).
pub fn maybe<S: Serializer>(at: &Option<DateTime<Utc>>, serializer: S) -> Result<S::Ok, S::Error> {
    match at {
        Some(at) => instant(at, serializer),
        None => serializer.serialize_none(),
    }
}

/// `at` in `buf` as `YYYY-MM-DDTHH:MM:SS[.fff|.ffffff|.fffffffff]Z`, the fraction as short as
/// it can be without losing a digit (chrono's `SecondsFormat::AutoSi`); `None` for a year
/// outside 0–9999 or a leap second, which chrono writes.
pub(crate) fn written<'b>(at: &DateTime<Utc>, buf: &'b mut [u8; 30]) -> Option<&'b str> {
    let (date, time) = (at.date_naive(), at.time());
    let year = u32::try_from(date.year()).ok().filter(|y| *y <= 9999)?;
    let nanos = time.nanosecond();
    if nanos >= 1_000_000_000 {
        return None;
    }
    let (fraction, digits) = if nanos == 0 {
        (0, 0)
    } else if nanos % 1_000_000 == 0 {
        (nanos / 1_000_000, 3)
    } else if nanos % 1_000 == 0 {
        (nanos / 1_000, 6)
    } else {
        (nanos, 9)
    };
    let mut at = 0;
    let mut put = |value: u32, width: usize, then: Option<u8>| {
        let mut v = value;
        for i in (0..width).rev() {
            buf[at + i] = b'0' + (v % 10) as u8;
            v /= 10;
        }
        at += width;
        if let Some(c) = then {
            buf[at] = c;
            at += 1;
        }
    };
    put(year, 4, Some(b'-'));
    put(date.month(), 2, Some(b'-'));
    put(date.day(), 2, Some(b'T'));
    put(time.hour(), 2, Some(b':'));
    put(time.minute(), 2, Some(b':'));
    if digits == 0 {
        put(time.second(), 2, Some(b'Z'));
    } else {
        put(time.second(), 2, Some(b'.'));
        put(fraction, digits, Some(b'Z'));
    }
    std::str::from_utf8(&buf[..at]).ok()
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
            seconds in -62_167_219_200i64..253_402_300_799,
            nanos in prop_oneof![
                Just(0u32),
                (0u32..1_000).prop_map(|ms| ms * 1_000_000),
                (0u32..1_000_000).prop_map(|us| us * 1_000),
                0u32..1_000_000_000,
            ],
        ) {
            let at = DateTime::from_timestamp(seconds, nanos).unwrap();
            same(at, Some(at));
        }

        #[test]
        fn instants_beyond_four_digit_years_are_written_as_chrono_writes_them(
            seconds in prop_oneof![
                -8_000_000_000_000i64..-62_167_219_200,
                253_402_300_800i64..8_000_000_000_000,
            ],
            nanos in 0u32..1_000_000_000,
        ) {
            let at = DateTime::from_timestamp(seconds, nanos).unwrap();
            same(at, None);
        }
    }
}

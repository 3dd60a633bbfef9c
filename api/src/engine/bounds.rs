//! Sane ranges for what a claim or a free extension may state, checked before anything is
//! stored (finding 5 of issue 18: a stay admitted on 9999-12-30 was kept as a draft, a coverage
//! extended to 9999-12-31). Pure: `today` and the coverage period are passed in.
//!
//! - an event happened: none of its dates lies after `today` (`event_in_future`);
//! - an event belongs to the period claimed against: at least one of its days lies inside
//!   `[coverage_start, coverage_end]` (`event_outside_period`) — a stay admitted before the start
//!   and discharged inside is still prorated by the engine;
//! - every amount is at most [`MAX_CLAIM_AMOUNT`] (`amount_out_of_range`): no scheme pays on
//!   more, and a ten-million figure is a typing error or a probe;
//! - a free extension adds at most one coverage term (one year, every scheme's period) to the
//!   coverage it extends (`extension_too_long`).

use chrono::{Months, NaiveDate};
use rust_decimal::Decimal;

use super::model::Event;

/// The largest amount any claim may state, in yuan (10,000,000.00). Every seed scheme's
/// benefits stop far below it (the highest cap is 500,000).
pub const MAX_CLAIM_AMOUNT: Decimal = Decimal::from_parts(1_000_000_000, 0, 0, false, 2);

/// The longest a free extension may push coverage beyond its current end: one coverage term.
pub const MAX_EXTENSION_MONTHS: u32 = 12;

/// Why a value is out of its sane range; each has its own code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutOfRange {
    /// A date of the event lies after today.
    EventInFuture {
        field: &'static str,
        today: NaiveDate,
    },
    /// No day of the event lies inside the coverage period.
    EventOutsidePeriod {
        field: &'static str,
        coverage_start: NaiveDate,
        coverage_end: NaiveDate,
    },
    /// An amount above [`MAX_CLAIM_AMOUNT`].
    AmountOutOfRange { field: &'static str },
    /// A free extension beyond one coverage term after the coverage it extends.
    ExtensionTooLong { latest: NaiveDate },
}

impl OutOfRange {
    /// The stable error code.
    pub fn code(&self) -> &'static str {
        match self {
            OutOfRange::EventInFuture { .. } => "event_in_future",
            OutOfRange::EventOutsidePeriod { .. } => "event_outside_period",
            OutOfRange::AmountOutOfRange { .. } => "amount_out_of_range",
            OutOfRange::ExtensionTooLong { .. } => "extension_too_long",
        }
    }

    /// The field concerned (for `details.field`).
    pub fn field(&self) -> &'static str {
        match self {
            OutOfRange::EventInFuture { field, .. }
            | OutOfRange::EventOutsidePeriod { field, .. }
            | OutOfRange::AmountOutOfRange { field } => field,
            OutOfRange::ExtensionTooLong { .. } => "new_end",
        }
    }

    /// A message for a person, in Chinese and English.
    pub fn message(&self) -> String {
        match self {
            OutOfRange::EventInFuture { today, .. } => {
                format!("日期不能晚于今天 / the date is after today ({today})")
            }
            OutOfRange::EventOutsidePeriod {
                coverage_start,
                coverage_end,
                ..
            } => format!(
                "事件不在保障期内 / the event lies outside the coverage period {coverage_start} … {coverage_end}"
            ),
            OutOfRange::AmountOutOfRange { .. } => {
                format!("金额超出合理范围 / the amount exceeds {MAX_CLAIM_AMOUNT}")
            }
            OutOfRange::ExtensionTooLong { latest } => format!(
                "免费延期最多一个保障期 / a free extension may end on {latest} at the latest"
            ),
        }
    }
}

/// The dates an event states, each with its field path, and the span of days it covers.
fn dates(event: &Event) -> (Vec<(&'static str, NaiveDate)>, NaiveDate, NaiveDate) {
    match event {
        Event::Inpatient(stay) => (
            vec![
                ("event.admitted_on", stay.admitted_on),
                ("event.discharged_on", stay.discharged_on),
            ],
            stay.admitted_on,
            stay.discharged_on,
        ),
        Event::OutpatientSpecial(month) => {
            let first = month.month.first_day();
            let last = first + chrono::Days::new(u64::from(month.month.days().saturating_sub(1)));
            (vec![("event.month", first)], first, last)
        }
        Event::Diagnosis(d) => (
            vec![("event.diagnosed_on", d.diagnosed_on)],
            d.diagnosed_on,
            d.diagnosed_on,
        ),
        Event::WorkInjury(w) => (
            vec![("event.appraised_on", w.appraised_on)],
            w.appraised_on,
            w.appraised_on,
        ),
    }
}

/// The amounts an event states, each with its field path.
fn amounts(event: &Event) -> Vec<(&'static str, Decimal)> {
    match event {
        Event::Inpatient(s) => [
            ("event.eligible_self_pay", s.eligible_self_pay),
            ("event.personal_burden", s.personal_burden),
            ("event.out_of_pocket", s.out_of_pocket),
            ("event.deductible", s.deductible),
            ("event.unsettled_cost", s.unsettled_cost),
            ("event.own_liability_cost", s.own_liability_cost),
        ]
        .into_iter()
        .filter_map(|(field, amount)| amount.map(|a| (field, a)))
        .collect(),
        Event::OutpatientSpecial(m) => vec![("event.eligible_self_pay", m.eligible_self_pay)],
        Event::Diagnosis(_) | Event::WorkInjury(_) => Vec::new(),
    }
}

/// Checks a claim's event against today and the period it is claimed against.
pub fn check_event(
    event: &Event,
    coverage_start: NaiveDate,
    coverage_end: NaiveDate,
    today: NaiveDate,
) -> Result<(), OutOfRange> {
    for (field, amount) in amounts(event) {
        if amount > MAX_CLAIM_AMOUNT {
            return Err(OutOfRange::AmountOutOfRange { field });
        }
    }
    let (stated, first, last) = dates(event);
    // An outpatient month is settled once it has begun; every other date must have passed.
    for (field, date) in stated {
        if date > today {
            return Err(OutOfRange::EventInFuture { field, today });
        }
    }
    if last < coverage_start || first > coverage_end {
        let field = match event {
            Event::Inpatient(_) => "event.admitted_on",
            Event::OutpatientSpecial(_) => "event.month",
            Event::Diagnosis(_) => "event.diagnosed_on",
            Event::WorkInjury(_) => "event.appraised_on",
        };
        return Err(OutOfRange::EventOutsidePeriod {
            field,
            coverage_start,
            coverage_end,
        });
    }
    Ok(())
}

/// The latest end a free extension of coverage now ending on `coverage_end` may set.
pub fn latest_extension_end(coverage_end: NaiveDate) -> NaiveDate {
    coverage_end
        .checked_add_months(Months::new(MAX_EXTENSION_MONTHS))
        .unwrap_or(coverage_end)
}

/// Checks a free extension to `new_end` of coverage now ending on `coverage_end`.
pub fn check_extension(coverage_end: NaiveDate, new_end: NaiveDate) -> Result<(), OutOfRange> {
    let latest = latest_extension_end(coverage_end);
    if new_end > latest {
        return Err(OutOfRange::ExtensionTooLong { latest });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::model::{Cause, Stay};

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn stay(admitted: &str, discharged: &str, self_pay: &str) -> Event {
        Event::Inpatient(Stay {
            admitted_on: d(admitted),
            discharged_on: d(discharged),
            billed_days: Some(1),
            cause: Cause::default(),
            eligible_self_pay: Some(self_pay.parse().unwrap()),
            personal_burden: None,
            out_of_pocket: None,
            deductible: None,
            settled_by_insurance: true,
            unsettled_cost: None,
            own_liability_cost: None,
        })
    }

    const START: &str = "2025-01-01";
    const END: &str = "2025-12-31";

    fn check(event: &Event, today: &str) -> Result<(), OutOfRange> {
        check_event(event, d(START), d(END), d(today))
    }

    #[test]
    fn a_stay_inside_the_period_that_has_happened_passes() {
        assert_eq!(
            check(&stay("2025-03-01", "2025-03-05", "1000.00"), "2025-06-01"),
            Ok(())
        );
    }

    #[test]
    fn a_stay_in_the_far_future_is_refused_event_in_future() {
        let err = check(&stay("9999-12-30", "9999-12-31", "1000.00"), "2025-06-01").unwrap_err();
        assert_eq!(err.code(), "event_in_future");
        assert_eq!(err.field(), "event.admitted_on");
    }

    #[test]
    fn a_discharge_after_today_is_refused() {
        let err = check(&stay("2025-05-30", "2025-06-02", "1000.00"), "2025-06-01").unwrap_err();
        assert_eq!(err.code(), "event_in_future");
        assert_eq!(err.field(), "event.discharged_on");
    }

    #[test]
    fn a_stay_with_no_day_in_the_period_is_refused_but_one_overlapping_the_start_passes() {
        let err = check(&stay("2024-03-01", "2024-03-05", "1000.00"), "2026-06-01").unwrap_err();
        assert_eq!(err.code(), "event_outside_period");
        assert_eq!(
            check(&stay("2024-12-28", "2025-01-03", "1000.00"), "2026-06-01"),
            Ok(())
        );
    }

    #[test]
    fn an_amount_over_ten_million_is_refused_and_ten_million_passes() {
        let err = check(
            &stay("2025-03-01", "2025-03-05", "10000000.01"),
            "2025-06-01",
        )
        .unwrap_err();
        assert_eq!(err.code(), "amount_out_of_range");
        assert_eq!(err.field(), "event.eligible_self_pay");
        assert_eq!(
            check(
                &stay("2025-03-01", "2025-03-05", "10000000.00"),
                "2025-06-01"
            ),
            Ok(())
        );
    }

    #[test]
    fn an_extension_may_add_one_term_and_no_more() {
        assert_eq!(check_extension(d(END), d("2026-12-31")), Ok(()));
        assert_eq!(
            check_extension(d(END), d("9999-12-31")),
            Err(OutOfRange::ExtensionTooLong {
                latest: d("2026-12-31")
            })
        );
    }
}

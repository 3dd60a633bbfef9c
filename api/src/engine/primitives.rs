//! The primitives every scheme is composed from. Each is a small pure function over exact
//! decimals and calendar dates; none of them rounds (rounding happens once per item, in
//! [`super::judge`]).

use chrono::{Datelike, Months, NaiveDate};
use rust_decimal::Decimal;

use super::scheme::{Band, Bracket, Coverage, CoverageStyle, MoneyValue};

/// Progressive bands (分段按比例): each slice of `amount` inside a band `(from, to]` is paid at
/// that band's rate, like income tax. Nothing is paid below the first band or above a closed
/// last band.
pub fn banded(bands: &[Band], amount: Decimal) -> Decimal {
    let mut total = Decimal::ZERO;
    for band in bands {
        if amount <= band.from {
            break;
        }
        let upper = match band.to {
            Some(to) if to < amount => to,
            _ => amount,
        };
        total = total.saturating_add((upper.saturating_sub(band.from)).saturating_mul(band.rate));
    }
    total
}

/// Whether `amount` lies inside the bracket, honouring its inclusive/exclusive edges.
pub fn in_bracket(bracket: &Bracket, amount: Decimal) -> bool {
    let above_from = if bracket.from_inclusive {
        amount >= bracket.from
    } else {
        amount > bracket.from
    };
    let below_to = match bracket.to {
        None => true,
        Some(to) if bracket.to_inclusive => amount <= to,
        Some(to) => amount < to,
    };
    above_from && below_to
}

/// Fixed brackets (定额): the bracket the whole amount falls in, if any.
pub fn bracket_for(brackets: &[Bracket], amount: Decimal) -> Option<&Bracket> {
    brackets.iter().find(|b| in_bracket(b, amount))
}

/// What the brackets pay for `amount` (0 when it falls in none).
pub fn bracket_amount(brackets: &[Bracket], amount: Decimal) -> Decimal {
    bracket_for(brackets, amount).map_or(Decimal::ZERO, |b| b.amount)
}

/// Accumulation with difference payment: what adding `addition` to an accumulated total
/// `accumulated` pays, given what the period already paid by these brackets.
pub fn accumulated_difference(
    brackets: &[Bracket],
    accumulated: Decimal,
    addition: Decimal,
    already_paid: Decimal,
) -> Decimal {
    let target = bracket_amount(brackets, accumulated.saturating_add(addition));
    (target - already_paid).max(Decimal::ZERO)
}

/// A day number (days from the common era), for overflow-free date arithmetic.
pub fn day_number(date: NaiveDate) -> i64 {
    i64::from(date.num_days_from_ce())
}

/// Days of a hospital stay: the admission day counts, the discharge day does not; a stay that
/// begins and ends on one day counts 1 day. (A discharge before admission also counts 1; the
/// contract refuses it before it gets here.)
pub fn stay_days(admitted_on: NaiveDate, discharged_on: NaiveDate) -> i64 {
    (day_number(discharged_on) - day_number(admitted_on)).max(1)
}

/// Days of a stay inside coverage. Days before `coverage_start` are never covered;
/// `covered_after_end` (continuous renewal) makes days after `coverage_end` covered.
pub fn covered_stay_days(
    admitted_on: NaiveDate,
    discharged_on: NaiveDate,
    coverage_start: NaiveDate,
    coverage_end: NaiveDate,
    covered_after_end: bool,
) -> i64 {
    let first = day_number(admitted_on);
    let end_excl = first + stay_days(admitted_on, discharged_on);
    // A stay needs at least one day inside [start, end]; only then do later days count.
    let start = day_number(coverage_start);
    let end = day_number(coverage_end);
    let inside = (end_excl.min(end + 1) - first.max(start)).max(0);
    if inside == 0 {
        return 0;
    }
    let upper = if covered_after_end {
        end_excl
    } else {
        end_excl.min(end + 1)
    };
    (upper - first.max(start)).max(0)
}

/// Days of a month inside `[coverage_start, coverage_end]`, renewal or not.
pub fn covered_month_days(
    first_day: NaiveDate,
    days: u32,
    coverage_start: NaiveDate,
    coverage_end: NaiveDate,
) -> i64 {
    let first = day_number(first_day);
    let end_excl = first + i64::from(days);
    (end_excl.min(day_number(coverage_end) + 1) - first.max(day_number(coverage_start))).max(0)
}

/// Proration by covered days: `amount × covered / total`, exact (no rounding).
pub fn prorate(amount: Decimal, covered: i64, total: i64) -> Decimal {
    if total <= 0 || covered >= total {
        return amount;
    }
    if covered <= 0 {
        return Decimal::ZERO;
    }
    amount.saturating_mul(Decimal::from(covered)) / Decimal::from(total)
}

/// The daily rate for the member's consecutive period: the 1st entry for a first period, the
/// 2nd for the second consecutive one, the last entry from then on.
pub fn daily_rate(rates: &[MoneyValue], consecutive_periods: u32) -> Decimal {
    let idx = usize::try_from(consecutive_periods.max(1) - 1).unwrap_or(usize::MAX);
    rates
        .get(idx)
        .or(rates.last())
        .map_or(Decimal::ZERO, |m| m.0)
}

/// Whether `date` lies in `[start, end]` (both inclusive).
pub fn within(date: NaiveDate, start: NaiveDate, end: NaiveDate) -> bool {
    start <= date && date <= end
}

/// The coverage period of an enrolment: for one-year schemes, from the day after the unit's
/// enrolment is completed to the same date one year after completion (completed 2022-05-10 →
/// 2022-05-11 … 2023-05-10); for calendar-year schemes, the scheme's year. `None` when the
/// scheme's data is inconsistent or the dates are out of range.
pub fn coverage_period(
    coverage: &Coverage,
    completed_on: NaiveDate,
) -> Option<(NaiveDate, NaiveDate)> {
    match coverage.style {
        CoverageStyle::OneYearFromDayAfterCompletion => {
            let start = completed_on.succ_opt()?;
            let end = completed_on.checked_add_months(Months::new(12))?;
            Some((start, end))
        }
        CoverageStyle::CalendarYear => {
            let year = coverage.year.unwrap_or_else(|| completed_on.year());
            Some((
                NaiveDate::from_ymd_opt(year, 1, 1)?,
                NaiveDate::from_ymd_opt(year, 12, 31)?,
            ))
        }
    }
}

/// Whether a renewal completed on `renewed_on` keeps the member continuous: within
/// `grace_days` calendar days after the previous period's end (以内 includes the last day).
pub fn renewal_is_continuous(
    previous_end: NaiveDate,
    renewed_on: NaiveDate,
    grace_days: u32,
) -> bool {
    day_number(renewed_on) - day_number(previous_end) <= i64::from(grace_days)
}

/// The next period's `consecutive_periods`: one more when renewed continuously, except that
/// after a period in which a daily allowance was paid the count starts again at 1; a lapse
/// also starts again at 1.
pub fn next_consecutive_periods(
    previous: u32,
    continuous: bool,
    allowance_paid_in_previous: bool,
) -> u32 {
    if !continuous || allowance_paid_in_previous {
        1
    } else {
        previous.max(1).saturating_add(1)
    }
}

/// The observation period `[start, start + days − 1]`, or `None` when the scheme has none or
/// the member renewed continuously.
pub fn observation_period(
    observation_days: u32,
    coverage_start: NaiveDate,
    continuous_renewal: bool,
) -> Option<(NaiveDate, NaiveDate)> {
    if observation_days == 0 || continuous_renewal {
        return None;
    }
    let last =
        coverage_start.checked_add_days(chrono::Days::new(u64::from(observation_days - 1)))?;
    Some((coverage_start, last))
}

//! Working-day arithmetic for mainland China (工作日计算).
//!
//! Benefit officers must pay approved claims within 5 working days (15 at most)
//! and reviews are due within 20 (60 at most). A *working day* in mainland China
//! is Monday–Friday, minus the public holidays, plus the weekend make-up working
//! days (调休上班) that the State Council General Office announces every year in
//! its notice 国务院办公厅关于XXXX年部分节假日安排的通知.
//!
//! Those announcements are data, not rules that can be computed: they live in
//! `calendars/cn-workdays.toml`, embedded at compile time and validated by
//! [`WorkdayCalendar::official`]. A date in a year that the data does not cover
//! (or whose notice is marked `verified = false`) is an error, never a guess.
//!
//! The module is pure: no I/O, no clock, no global state.

use std::collections::{BTreeMap, BTreeSet, HashSet};

use chrono::{Datelike, NaiveDate, Weekday};
use serde::Deserialize;

/// The official calendars (2024–2026), transcribed from the State Council notices.
const OFFICIAL_TOML: &str = include_str!("../../calendars/cn-workdays.toml");

/// Longest holiday range accepted (days). The longest real one so far is 9 days
/// (春节 2026); the cap catches typos such as a wrong month.
const MAX_HOLIDAY_DAYS: i64 = 14;

/// How far (days) a make-up working day may lie from the holiday it belongs to.
/// Real ones are at most ~11 days away (2026-09-20 for 国庆节 10/1).
const MAX_MAKE_UP_DISTANCE_DAYS: i64 = 31;

/// Why a calendar could not be loaded, or a date could not be judged.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CalendarError {
    /// The TOML text is malformed or does not have the expected shape.
    #[error("calendar data is not valid TOML of the expected shape: {message}")]
    Parse {
        /// The parser's message.
        message: String,
    },
    /// A date field is not a plain local date (`YYYY-MM-DD`).
    #[error("{field}: `{value}` is not a plain date (YYYY-MM-DD)")]
    InvalidDate {
        /// Which field (year, entry and key).
        field: String,
        /// The value as written.
        value: String,
    },
    /// The data holds no year at all.
    #[error("calendar data holds no year")]
    Empty,
    /// Two entries describe the same year.
    #[error("year {year} appears more than once")]
    DuplicateYear {
        /// The repeated year.
        year: i32,
    },
    /// A year lacks its notice title, document number or (if verified) sources.
    #[error("year {year}: missing {what}")]
    MissingSource {
        /// The year.
        year: i32,
        /// What is missing.
        what: &'static str,
    },
    /// A date lies outside its year's entry (only the year itself and, for 元旦
    /// spilling back, December of the previous year are allowed).
    #[error("year {year}: date {date} lies outside that year")]
    DateOutsideYear {
        /// The entry's year.
        year: i32,
        /// The offending date.
        date: NaiveDate,
    },
    /// A holiday entry has an empty or repeated name.
    #[error("year {year}: holiday name `{name}` is empty or repeated")]
    BadHolidayName {
        /// The year.
        year: i32,
        /// The name as written.
        name: String,
    },
    /// A holiday range ends before it starts, or is implausibly long.
    #[error(
        "year {year}: holiday {name} runs {first}..={last}, which is reversed or longer than {MAX_HOLIDAY_DAYS} days"
    )]
    BadHolidayRange {
        /// The year.
        year: i32,
        /// The holiday.
        name: String,
        /// First day as written.
        first: NaiveDate,
        /// Last day as written.
        last: NaiveDate,
    },
    /// Two holiday ranges share a date.
    #[error("{date} belongs to more than one holiday")]
    OverlappingHolidays {
        /// The shared date.
        date: NaiveDate,
    },
    /// A make-up working day falls on Monday–Friday (they are always weekends).
    #[error("make-up working day {date} is a {weekday}, not a Saturday or Sunday")]
    MakeUpNotWeekend {
        /// The make-up day.
        date: NaiveDate,
        /// Its actual weekday.
        weekday: Weekday,
    },
    /// A make-up working day is listed twice.
    #[error("make-up working day {date} is listed more than once")]
    DuplicateMakeUp {
        /// The repeated date.
        date: NaiveDate,
    },
    /// A make-up working day names a holiday its year does not list.
    #[error("year {year}: make-up working day {date} belongs to unknown holiday `{holiday}`")]
    UnknownHoliday {
        /// The year.
        year: i32,
        /// The make-up day.
        date: NaiveDate,
        /// The holiday name as written.
        holiday: String,
    },
    /// A make-up working day lies implausibly far from its holiday.
    #[error(
        "make-up working day {date} is more than {MAX_MAKE_UP_DISTANCE_DAYS} days from {holiday}"
    )]
    MakeUpFarFromHoliday {
        /// The make-up day.
        date: NaiveDate,
        /// The holiday it claims to belong to.
        holiday: String,
    },
    /// A date is both a holiday and a make-up working day.
    #[error("{date} is both a holiday and a make-up working day")]
    HolidayAndMakeUp {
        /// The contradictory date.
        date: NaiveDate,
    },
    /// The date's year is not in the calendar data.
    #[error("{date}: year {year} is not covered by the working-day calendar (covered: {covered})")]
    NotCovered {
        /// The date asked about.
        date: NaiveDate,
        /// Its year.
        year: i32,
        /// The covered years, for the message.
        covered: String,
    },
    /// The date's year is in the data but its notice has not been verified.
    #[error("{date}: the {year} calendar is marked unverified and is not used")]
    Unverified {
        /// The date asked about.
        date: NaiveDate,
        /// Its year.
        year: i32,
    },
    /// Date arithmetic left chrono's representable range.
    #[error("date arithmetic overflowed after {date}")]
    Overflow {
        /// The last representable date reached.
        date: NaiveDate,
    },
}

/// One announced holiday period (放假), e.g. 春节 2025-01-28..=2025-02-04.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Holiday {
    /// Name as in the notice, e.g. `春节` or `国庆节、中秋节`.
    pub name: String,
    /// First day off.
    pub first: NaiveDate,
    /// Last day off (inclusive).
    pub last: NaiveDate,
}

/// One weekend make-up working day (调休上班).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MakeUpDay {
    /// The Saturday or Sunday that is worked.
    pub date: NaiveDate,
    /// The holiday it is listed under in the notice.
    pub holiday: String,
}

/// One year's arrangement and where it comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalendarYear {
    /// The calendar year.
    pub year: i32,
    /// Whether every date was checked against the notice's text. Unverified
    /// years are kept for reference but treated as not covered.
    pub verified: bool,
    /// Notice title, e.g. 国务院办公厅关于2025年部分节假日安排的通知.
    pub notice: String,
    /// Document number, e.g. 国办发明电〔2024〕12号.
    pub number: String,
    /// Date the notice was issued.
    pub issued: NaiveDate,
    /// Where the text was read.
    pub sources: Vec<String>,
    /// Holiday periods, in file order.
    pub holidays: Vec<Holiday>,
    /// Make-up working days, in file order.
    pub make_up_days: Vec<MakeUpDay>,
}

/// Mainland China's working-day calendar for the years in its data.
#[derive(Debug, Clone)]
pub struct WorkdayCalendar {
    years: BTreeMap<i32, CalendarYear>,
    holidays: HashSet<NaiveDate>,
    make_up_days: HashSet<NaiveDate>,
}

impl WorkdayCalendar {
    /// The official calendar embedded in the binary (`calendars/cn-workdays.toml`), validated.
    ///
    /// # Errors
    /// As [`from_toml`](Self::from_toml); the tests make sure the embedded file passes.
    pub fn official() -> Result<WorkdayCalendar, CalendarError> {
        Self::from_toml(OFFICIAL_TOML)
    }

    /// Parse and validate calendar data in the format of `calendars/cn-workdays.toml`.
    ///
    /// Refuses: malformed TOML or dates, no years, a year listed twice, a missing
    /// notice title/number (or sources for a verified year), dates outside their
    /// year (December of the previous year is allowed), empty or repeated holiday
    /// names, reversed or over-long holiday ranges, overlapping holidays, make-up
    /// days that are not weekends, listed twice, far from or naming an unknown
    /// holiday, and any date that is both a holiday and a make-up day.
    ///
    /// # Errors
    /// The [`CalendarError`] naming the first problem found.
    pub fn from_toml(text: &str) -> Result<WorkdayCalendar, CalendarError> {
        let raw: RawFile = toml::from_str(text).map_err(|e| CalendarError::Parse {
            message: e.to_string(),
        })?;
        if raw.year.is_empty() {
            return Err(CalendarError::Empty);
        }
        let mut years = BTreeMap::new();
        let mut holidays = HashSet::new();
        let mut make_up_days = HashSet::new();
        for raw_year in raw.year {
            let year = raw_year.into_year()?;
            if years.contains_key(&year.year) {
                return Err(CalendarError::DuplicateYear { year: year.year });
            }
            for holiday in &year.holidays {
                for date in holiday.first.iter_days().take_while(|d| *d <= holiday.last) {
                    if !holidays.insert(date) {
                        return Err(CalendarError::OverlappingHolidays { date });
                    }
                }
            }
            for make_up in &year.make_up_days {
                if !make_up_days.insert(make_up.date) {
                    return Err(CalendarError::DuplicateMakeUp { date: make_up.date });
                }
            }
            years.insert(year.year, year);
        }
        if let Some(date) = holidays.intersection(&make_up_days).min() {
            return Err(CalendarError::HolidayAndMakeUp { date: *date });
        }
        Ok(WorkdayCalendar {
            years,
            holidays,
            make_up_days,
        })
    }

    /// Whether `date`'s year is in the data and verified, i.e. whether
    /// [`is_working_day`](Self::is_working_day) can answer for it.
    #[must_use]
    pub fn covers(&self, date: NaiveDate) -> bool {
        self.years.get(&date.year()).is_some_and(|y| y.verified)
    }

    /// The years in the data (verified or not) with their sources, in order.
    pub fn years(&self) -> impl Iterator<Item = &CalendarYear> {
        self.years.values()
    }

    /// Whether `date` is a working day.
    ///
    /// # Errors
    /// [`CalendarError::NotCovered`] if its year is not in the data,
    /// [`CalendarError::Unverified`] if it is but marked unverified.
    pub fn is_working_day(&self, date: NaiveDate) -> Result<bool, CalendarError> {
        self.ensure_covered(date)?;
        if self.make_up_days.contains(&date) {
            return Ok(true);
        }
        if self.holidays.contains(&date) {
            return Ok(false);
        }
        Ok(!is_weekend(date))
    }

    /// The date `n` working days after `start` (start itself not counted; n = 0 → start).
    ///
    /// `start` may be any day (a holiday, a weekend, even the last day of an
    /// uncovered year): only the days after it are judged, and each of those must
    /// be covered, so a deadline running past the data is an error.
    ///
    /// # Errors
    /// [`CalendarError::NotCovered`] / [`CalendarError::Unverified`] for the first
    /// day judged outside the usable data; [`CalendarError::Overflow`] at chrono's limit.
    pub fn add_working_days(&self, start: NaiveDate, n: u32) -> Result<NaiveDate, CalendarError> {
        let mut date = start;
        let mut left = n;
        while left > 0 {
            date = date.succ_opt().ok_or(CalendarError::Overflow { date })?;
            if self.is_working_day(date)? {
                left -= 1;
            }
        }
        Ok(date)
    }

    /// Working days strictly after `from` up to and including `to` (0 if to <= from).
    ///
    /// Every day counted must be covered; `from` itself is not judged.
    ///
    /// # Errors
    /// As [`add_working_days`](Self::add_working_days).
    pub fn working_days_between(
        &self,
        from: NaiveDate,
        to: NaiveDate,
    ) -> Result<u32, CalendarError> {
        let mut count = 0u32;
        let mut date = from;
        while date < to {
            date = date.succ_opt().ok_or(CalendarError::Overflow { date })?;
            if self.is_working_day(date)? {
                count += 1;
            }
        }
        Ok(count)
    }

    fn ensure_covered(&self, date: NaiveDate) -> Result<(), CalendarError> {
        let year = date.year();
        match self.years.get(&year) {
            Some(y) if y.verified => Ok(()),
            Some(_) => Err(CalendarError::Unverified { date, year }),
            None => Err(CalendarError::NotCovered {
                date,
                year,
                covered: self.covered_description(),
            }),
        }
    }

    fn covered_description(&self) -> String {
        let verified: Vec<String> = self
            .years
            .values()
            .filter(|y| y.verified)
            .map(|y| y.year.to_string())
            .collect();
        if verified.is_empty() {
            "none".to_owned()
        } else {
            verified.join(", ")
        }
    }
}

fn is_weekend(date: NaiveDate) -> bool {
    matches!(date.weekday(), Weekday::Sat | Weekday::Sun)
}

// ---------------------------------------------------------------------------
// File format

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    year: Vec<RawYear>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawYear {
    year: i32,
    verified: bool,
    notice: String,
    number: String,
    issued: toml::value::Datetime,
    #[serde(default)]
    sources: Vec<String>,
    #[serde(default)]
    holiday: Vec<RawHoliday>,
    #[serde(default)]
    makeup: Vec<RawMakeUp>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawHoliday {
    name: String,
    first: toml::value::Datetime,
    last: toml::value::Datetime,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawMakeUp {
    date: toml::value::Datetime,
    holiday: String,
}

impl RawYear {
    /// Convert and validate everything that concerns this year alone.
    fn into_year(self) -> Result<CalendarYear, CalendarError> {
        let year = self.year;
        if self.notice.trim().is_empty() {
            return Err(CalendarError::MissingSource {
                year,
                what: "notice title",
            });
        }
        if self.number.trim().is_empty() {
            return Err(CalendarError::MissingSource {
                year,
                what: "document number",
            });
        }
        if self.verified && self.sources.iter().all(|s| s.trim().is_empty()) {
            return Err(CalendarError::MissingSource {
                year,
                what: "sources",
            });
        }
        let issued = plain_date(&self.issued, || format!("year {year}: issued"))?;

        let mut names = BTreeSet::new();
        let mut holidays = Vec::with_capacity(self.holiday.len());
        for raw in self.holiday {
            let name = raw.name.trim().to_owned();
            if name.is_empty() || !names.insert(name.clone()) {
                return Err(CalendarError::BadHolidayName {
                    year,
                    name: raw.name,
                });
            }
            let first = plain_date(&raw.first, || format!("year {year}: holiday {name}: first"))?;
            let last = plain_date(&raw.last, || format!("year {year}: holiday {name}: last"))?;
            for date in [first, last] {
                ensure_in_year(year, date)?;
            }
            let days = (last - first).num_days() + 1;
            if !(1..=MAX_HOLIDAY_DAYS).contains(&days) {
                return Err(CalendarError::BadHolidayRange {
                    year,
                    name,
                    first,
                    last,
                });
            }
            holidays.push(Holiday { name, first, last });
        }

        let mut make_up_days = Vec::with_capacity(self.makeup.len());
        for raw in self.makeup {
            let date = plain_date(&raw.date, || format!("year {year}: makeup"))?;
            ensure_in_year(year, date)?;
            if !is_weekend(date) {
                return Err(CalendarError::MakeUpNotWeekend {
                    date,
                    weekday: date.weekday(),
                });
            }
            let name = raw.holiday.trim();
            let Some(holiday) = holidays.iter().find(|h| h.name == name) else {
                return Err(CalendarError::UnknownHoliday {
                    year,
                    date,
                    holiday: raw.holiday,
                });
            };
            let distance = if date < holiday.first {
                (holiday.first - date).num_days()
            } else {
                (date - holiday.last).num_days()
            };
            if distance > MAX_MAKE_UP_DISTANCE_DAYS {
                return Err(CalendarError::MakeUpFarFromHoliday {
                    date,
                    holiday: holiday.name.clone(),
                });
            }
            make_up_days.push(MakeUpDay {
                date,
                holiday: holiday.name.clone(),
            });
        }

        Ok(CalendarYear {
            year,
            verified: self.verified,
            notice: self.notice,
            number: self.number,
            issued,
            sources: self.sources,
            holidays,
            make_up_days,
        })
    }
}

/// A notice for year N may reach back into December of N-1 (元旦 starting on
/// 12/30 or 12/31, with a make-up Saturday before it), never further.
fn ensure_in_year(year: i32, date: NaiveDate) -> Result<(), CalendarError> {
    let in_year = date.year() == year;
    let previous_december = date.year() == year - 1 && date.month() == 12;
    if in_year || previous_december {
        Ok(())
    } else {
        Err(CalendarError::DateOutsideYear { year, date })
    }
}

fn plain_date(
    value: &toml::value::Datetime,
    field: impl FnOnce() -> String,
) -> Result<NaiveDate, CalendarError> {
    let invalid = |field: String| CalendarError::InvalidDate {
        field,
        value: value.to_string(),
    };
    match (value.date, value.time, value.offset) {
        (Some(d), None, None) => {
            NaiveDate::from_ymd_opt(i32::from(d.year), u32::from(d.month), u32::from(d.day))
                .ok_or_else(|| invalid(field()))
        }
        _ => Err(invalid(field())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::sync::LazyLock;

    static OFFICIAL: LazyLock<WorkdayCalendar> =
        LazyLock::new(|| WorkdayCalendar::official().expect("embedded calendar is valid"));

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).expect("valid test date")
    }

    fn works(date: NaiveDate) -> bool {
        OFFICIAL.is_working_day(date).expect("covered date")
    }

    /// A minimal valid year block, for validation tests to tamper with.
    fn year_block(makeup_date: &str, extra: &str) -> String {
        format!(
            r#"
[[year]]
year = 2025
verified = true
notice = "国务院办公厅关于2025年部分节假日安排的通知"
number = "国办发明电〔2024〕12号"
issued = 2024-11-12
sources = ["test"]

[[year.holiday]]
name = "劳动节"
first = 2025-05-01
last = 2025-05-05

[[year.makeup]]
date = {makeup_date}
holiday = "劳动节"
{extra}
"#
        )
    }

    #[test]
    fn the_official_calendar_loads_with_three_verified_years() {
        let years: Vec<(i32, bool)> = OFFICIAL.years().map(|y| (y.year, y.verified)).collect();
        assert_eq!(years, vec![(2024, true), (2025, true), (2026, true)]);
        let numbers: Vec<&str> = OFFICIAL.years().map(|y| y.number.as_str()).collect();
        assert_eq!(
            numbers,
            vec![
                "国办发明电〔2023〕7号",
                "国办发明电〔2024〕12号",
                "国办发明电〔2025〕7号"
            ]
        );
    }

    #[test]
    fn sunday_2024_02_04_is_a_make_up_working_day() {
        assert_eq!(d(2024, 2, 4).weekday(), Weekday::Sun);
        assert!(works(d(2024, 2, 4)));
    }

    #[test]
    fn monday_2024_02_12_in_the_spring_festival_is_not_a_working_day() {
        assert_eq!(d(2024, 2, 12).weekday(), Weekday::Mon);
        assert!(!works(d(2024, 2, 12)));
    }

    #[test]
    fn new_years_eve_2024_02_09_is_only_encouraged_off_and_stays_a_working_day() {
        assert!(works(d(2024, 2, 9)));
    }

    #[test]
    fn sunday_2025_01_26_is_a_make_up_working_day() {
        assert_eq!(d(2025, 1, 26).weekday(), Weekday::Sun);
        assert!(works(d(2025, 1, 26)));
    }

    #[test]
    fn wednesday_2025_10_08_is_a_holiday() {
        assert_eq!(d(2025, 10, 8).weekday(), Weekday::Wed);
        assert!(!works(d(2025, 10, 8)));
    }

    #[test]
    fn saturday_2025_10_11_is_a_make_up_working_day() {
        assert_eq!(d(2025, 10, 11).weekday(), Weekday::Sat);
        assert!(works(d(2025, 10, 11)));
    }

    #[test]
    fn plain_weekdays_work_and_plain_weekends_rest() {
        assert!(works(d(2025, 3, 12))); // Wednesday
        assert!(!works(d(2025, 3, 15))); // Saturday
        assert!(!works(d(2026, 3, 15))); // Sunday
    }

    #[test]
    fn the_2026_notice_is_transcribed() {
        assert!(!works(d(2026, 1, 2))); // 元旦 Fri
        assert!(works(d(2026, 1, 4))); // 元旦 make-up Sun
        assert!(works(d(2026, 2, 14))); // 春节 make-up Sat
        assert!(!works(d(2026, 2, 23))); // 春节 last day, Mon
        assert!(works(d(2026, 2, 28))); // 春节 make-up Sat
        assert!(!works(d(2026, 4, 6))); // 清明 Mon
        assert!(!works(d(2026, 5, 5))); // 劳动节 Tue
        assert!(works(d(2026, 5, 9))); // 劳动节 make-up Sat
        assert!(!works(d(2026, 6, 19))); // 端午 Fri
        assert!(works(d(2026, 9, 20))); // 国庆 make-up Sun
        assert!(!works(d(2026, 9, 25))); // 中秋 Fri
        assert!(!works(d(2026, 10, 7))); // 国庆 Wed
        assert!(works(d(2026, 10, 8))); // back to work Thu
        assert!(works(d(2026, 10, 10))); // 国庆 make-up Sat
    }

    /// The notices print a weekday next to most dates; check the transcription
    /// against them (a wrong day or month would almost always change the weekday).
    #[test]
    fn dates_match_the_weekdays_printed_in_the_notices() {
        use Weekday::*;
        let printed = [
            // 2024 (the notice labels only the make-up days: 星期日/星期六)
            (d(2024, 2, 4), Sun),
            (d(2024, 2, 18), Sun),
            (d(2024, 4, 7), Sun),
            (d(2024, 4, 28), Sun),
            (d(2024, 5, 11), Sat),
            (d(2024, 9, 14), Sat),
            (d(2024, 9, 29), Sun),
            (d(2024, 10, 12), Sat),
            // 2025
            (d(2025, 1, 1), Wed),
            (d(2025, 1, 28), Tue),
            (d(2025, 2, 4), Tue),
            (d(2025, 1, 26), Sun),
            (d(2025, 2, 8), Sat),
            (d(2025, 4, 4), Fri),
            (d(2025, 4, 6), Sun),
            (d(2025, 5, 1), Thu),
            (d(2025, 5, 5), Mon),
            (d(2025, 4, 27), Sun),
            (d(2025, 5, 31), Sat),
            (d(2025, 6, 2), Mon),
            (d(2025, 10, 1), Wed),
            (d(2025, 10, 8), Wed),
            (d(2025, 9, 28), Sun),
            (d(2025, 10, 11), Sat),
            // 2026
            (d(2026, 1, 1), Thu),
            (d(2026, 1, 3), Sat),
            (d(2026, 1, 4), Sun),
            (d(2026, 2, 15), Sun),
            (d(2026, 2, 23), Mon),
            (d(2026, 2, 14), Sat),
            (d(2026, 2, 28), Sat),
            (d(2026, 4, 4), Sat),
            (d(2026, 4, 6), Mon),
            (d(2026, 5, 1), Fri),
            (d(2026, 5, 5), Tue),
            (d(2026, 5, 9), Sat),
            (d(2026, 6, 19), Fri),
            (d(2026, 6, 21), Sun),
            (d(2026, 9, 25), Fri),
            (d(2026, 9, 27), Sun),
            (d(2026, 10, 1), Thu),
            (d(2026, 10, 7), Wed),
            (d(2026, 9, 20), Sun),
            (d(2026, 10, 10), Sat),
        ];
        for (date, weekday) in printed {
            assert_eq!(date.weekday(), weekday, "{date}");
        }
        // Every one of those dates is actually in the data as a boundary or make-up day.
        let listed: HashSet<NaiveDate> = OFFICIAL
            .years()
            .flat_map(|y| {
                y.holidays
                    .iter()
                    .flat_map(|h| [h.first, h.last])
                    .chain(y.make_up_days.iter().map(|m| m.date))
                    .collect::<Vec<_>>()
            })
            .collect();
        for (date, _) in printed {
            assert!(
                listed.contains(&date),
                "{date} is not a boundary or make-up day in the data"
            );
        }
    }

    /// Independent check of the transcription: weekday holiday days minus make-up
    /// days must equal the statutory holiday count (11 days until 2024, 13 from
    /// 2025 after the 2024 revision of 全国年节及纪念日放假办法), and the yearly
    /// totals must match the hand count:
    /// 2024: 262 weekdays − 19 holiday weekdays + 8 make-up = 251;
    /// 2025: 261 − 18 + 5 = 248; 2026: 261 − 19 + 6 = 248.
    #[test]
    fn yearly_totals_match_the_hand_count_and_the_statutory_days() {
        for (year, statutory, holiday_dates, make_ups, total) in [
            (2024, 11, 28, 8, 251),
            (2025, 13, 28, 5, 248),
            (2026, 13, 33, 6, 248),
        ] {
            let info = OFFICIAL
                .years()
                .find(|y| y.year == year)
                .expect("year present");
            let days: Vec<NaiveDate> = info
                .holidays
                .iter()
                .flat_map(|h| h.first.iter_days().take_while(move |x| *x <= h.last))
                .collect();
            assert_eq!(days.len(), holiday_dates, "{year} holiday dates");
            assert_eq!(info.make_up_days.len(), make_ups, "{year} make-up days");
            let weekday_holidays = days.iter().filter(|x| !is_weekend(**x)).count();
            assert_eq!(
                weekday_holidays - make_ups,
                statutory,
                "{year} statutory days"
            );
            let worked = OFFICIAL
                .working_days_between(d(year - 1, 12, 31), d(year, 12, 31))
                .expect("covered");
            assert_eq!(worked, total, "{year} working days");
        }
    }

    /// Approval on Tue 2025-09-30, 5 working days:
    /// 10-01..=10-08 国庆节、中秋节 (off), Thu 10-09 = 1, Fri 10-10 = 2,
    /// Sat 10-11 make-up = 3, Sun 10-12 off, Mon 10-13 = 4, Tue 10-14 = 5.
    /// So the 5-day deadline is 2025-10-14; 2025-10-13 is the 4th working day
    /// (counting 10-13 as the 5th would forget that 9-30 itself is not counted
    /// or that Sunday 10-12 is not a make-up day).
    #[test]
    fn an_approval_on_2025_09_30_plus_5_working_days_lands_on_2025_10_14() {
        let approved = d(2025, 9, 30);
        assert_eq!(OFFICIAL.add_working_days(approved, 5), Ok(d(2025, 10, 14)));
        assert_eq!(OFFICIAL.add_working_days(approved, 4), Ok(d(2025, 10, 13)));
        assert_eq!(OFFICIAL.add_working_days(approved, 3), Ok(d(2025, 10, 11)));
        assert_eq!(
            OFFICIAL.working_days_between(approved, d(2025, 10, 13)),
            Ok(4)
        );
        assert_eq!(
            OFFICIAL.working_days_between(approved, d(2025, 10, 14)),
            Ok(5)
        );
    }

    #[test]
    fn zero_working_days_is_the_start_itself_even_on_a_holiday() {
        assert_eq!(
            OFFICIAL.add_working_days(d(2025, 10, 3), 0),
            Ok(d(2025, 10, 3))
        );
    }

    #[test]
    fn between_is_zero_when_to_is_not_after_from() {
        assert_eq!(
            OFFICIAL.working_days_between(d(2025, 3, 12), d(2025, 3, 12)),
            Ok(0)
        );
        assert_eq!(
            OFFICIAL.working_days_between(d(2025, 3, 12), d(2025, 3, 1)),
            Ok(0)
        );
    }

    #[test]
    fn counting_across_new_year_moves_between_the_years_data() {
        // Tue 2024-12-31 + 1 → 2025-01-01 is 元旦 → Thu 2025-01-02.
        assert_eq!(
            OFFICIAL.add_working_days(d(2024, 12, 31), 1),
            Ok(d(2025, 1, 2))
        );
        // Wed 2025-12-31 + 1 → 2026-01-01..=03 元旦 → Sun 2026-01-04 is a make-up day.
        assert_eq!(
            OFFICIAL.add_working_days(d(2025, 12, 31), 1),
            Ok(d(2026, 1, 4))
        );
        assert_eq!(
            OFFICIAL.add_working_days(d(2025, 12, 31), 2),
            Ok(d(2026, 1, 5))
        );
        // Fri 2025-12-26 → Fri 2026-01-09: 12-29, 12-30, 12-31, 01-04, 01-05..=01-09.
        assert_eq!(
            OFFICIAL.working_days_between(d(2025, 12, 26), d(2026, 1, 9)),
            Ok(9)
        );
        // A 20-day review started 2025-12-15: 12-16..=12-31 = 12, then 01-04..=01-09 = 6,
        // 01-12, 01-13 → 2026-01-13.
        assert_eq!(
            OFFICIAL.add_working_days(d(2025, 12, 15), 20),
            Ok(d(2026, 1, 13))
        );
    }

    #[test]
    fn dates_outside_the_data_are_errors_not_guesses() {
        assert!(!OFFICIAL.covers(d(2023, 12, 29)));
        assert!(!OFFICIAL.covers(d(2027, 1, 4)));
        assert!(OFFICIAL.covers(d(2026, 12, 31)));
        assert!(matches!(
            OFFICIAL.is_working_day(d(2023, 12, 29)),
            Err(CalendarError::NotCovered { year: 2023, .. })
        ));
        assert!(matches!(
            OFFICIAL.is_working_day(d(2027, 1, 4)),
            Err(CalendarError::NotCovered { year: 2027, .. })
        ));
        // A deadline that runs past 2026 is refused rather than extrapolated.
        assert!(matches!(
            OFFICIAL.add_working_days(d(2026, 12, 28), 5),
            Err(CalendarError::NotCovered { year: 2027, .. })
        ));
        assert!(matches!(
            OFFICIAL.working_days_between(d(2023, 12, 1), d(2024, 1, 5)),
            Err(CalendarError::NotCovered { year: 2023, .. })
        ));
        // The start itself is never judged, so starting on the last day before the data is fine.
        assert_eq!(
            OFFICIAL.add_working_days(d(2023, 12, 31), 1),
            Ok(d(2024, 1, 2))
        );
    }

    #[test]
    fn error_messages_name_the_covered_years() {
        let err = OFFICIAL.is_working_day(d(2027, 3, 1)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "2027-03-01: year 2027 is not covered by the working-day calendar (covered: 2024, 2025, 2026)"
        );
    }

    #[test]
    fn an_unverified_year_is_loaded_but_not_covered() {
        let text = year_block("2025-04-27", "").replace("verified = true", "verified = false");
        let cal = WorkdayCalendar::from_toml(&text).expect("valid");
        assert!(!cal.covers(d(2025, 4, 28)));
        assert_eq!(
            cal.is_working_day(d(2025, 4, 28)),
            Err(CalendarError::Unverified {
                date: d(2025, 4, 28),
                year: 2025
            })
        );
    }

    #[test]
    fn the_test_fixture_itself_is_valid() {
        let cal = WorkdayCalendar::from_toml(&year_block("2025-04-27", "")).expect("valid");
        assert_eq!(cal.is_working_day(d(2025, 4, 27)), Ok(true));
        assert_eq!(cal.is_working_day(d(2025, 5, 2)), Ok(false));
    }

    #[test]
    fn validation_refuses_a_make_up_day_on_a_wednesday() {
        let err = WorkdayCalendar::from_toml(&year_block("2025-04-30", "")).unwrap_err();
        assert_eq!(
            err,
            CalendarError::MakeUpNotWeekend {
                date: d(2025, 4, 30),
                weekday: Weekday::Wed
            }
        );
    }

    #[test]
    fn validation_refuses_a_date_both_holiday_and_make_up() {
        // 2025-05-03 is a Saturday inside 劳动节 and also listed as a make-up day.
        let err = WorkdayCalendar::from_toml(&year_block("2025-05-03", "")).unwrap_err();
        assert_eq!(
            err,
            CalendarError::HolidayAndMakeUp {
                date: d(2025, 5, 3)
            }
        );
    }

    #[test]
    fn validation_refuses_overlapping_or_repeated_years() {
        let twice = format!(
            "{}{}",
            year_block("2025-04-27", ""),
            year_block("2025-04-27", "")
        );
        assert_eq!(
            WorkdayCalendar::from_toml(&twice).unwrap_err(),
            CalendarError::DuplicateYear { year: 2025 }
        );
        let overlapping = year_block(
            "2025-04-27",
            "[[year.holiday]]\nname = \"五一\"\nfirst = 2025-05-05\nlast = 2025-05-06\n",
        );
        assert_eq!(
            WorkdayCalendar::from_toml(&overlapping).unwrap_err(),
            CalendarError::OverlappingHolidays {
                date: d(2025, 5, 5)
            }
        );
    }

    #[test]
    fn validation_refuses_implausible_entries() {
        let cases = [
            // make-up day naming a holiday the year does not list
            (
                year_block("2025-04-27", "")
                    .replace("holiday = \"劳动节\"\n", "holiday = \"五一\"\n"),
                "UnknownHoliday",
            ),
            // make-up day months away from its holiday (a typo'd month)
            (year_block("2025-07-27", ""), "MakeUpFarFromHoliday"),
            // date in another year
            (
                year_block("2025-04-27", "").replace("last = 2025-05-05", "last = 2026-05-05"),
                "DateOutsideYear",
            ),
            // reversed range
            (
                year_block("2025-04-27", "").replace("first = 2025-05-01", "first = 2025-05-06"),
                "BadHolidayRange",
            ),
            // over-long range
            (
                year_block("2025-04-27", "").replace("last = 2025-05-05", "last = 2025-05-25"),
                "BadHolidayRange",
            ),
            // date with a time
            (
                year_block("2025-04-27", "")
                    .replace("first = 2025-05-01", "first = 2025-05-01T08:00:00"),
                "InvalidDate",
            ),
            // missing document number
            (
                year_block("2025-04-27", "").replace("国办发明电〔2024〕12号", ""),
                "MissingSource",
            ),
            // unknown key (typo)
            (
                year_block("2025-04-27", "").replace("verified = true", "verfied = true"),
                "Parse",
            ),
            // no years at all
            ("# nothing\n".to_owned(), "Empty"),
        ];
        for (text, expected) in cases {
            let err = WorkdayCalendar::from_toml(&text).expect_err(expected);
            assert!(
                format!("{err:?}").starts_with(expected),
                "expected {expected}, got {err:?}"
            );
        }
    }

    #[test]
    fn a_previous_december_date_may_belong_to_the_next_years_notice() {
        // Like the 2019 notice: 元旦 2018-12-30..=2019-01-01, make-up Sat 2018-12-29.
        let text = r#"
[[year]]
year = 2019
verified = true
notice = "国务院办公厅关于2019年部分节假日安排的通知"
number = "test"
issued = 2018-12-06
sources = ["test"]

[[year.holiday]]
name = "元旦"
first = 2018-12-30
last = 2019-01-01

[[year.makeup]]
date = 2018-12-29
holiday = "元旦"
"#;
        let cal = WorkdayCalendar::from_toml(text).expect("valid");
        assert_eq!(cal.is_working_day(d(2019, 1, 1)), Ok(false));
        assert_eq!(cal.add_working_days(d(2018, 12, 31), 1), Ok(d(2019, 1, 2)));
    }

    fn covered_date() -> impl Strategy<Value = NaiveDate> {
        let first = d(2024, 1, 1);
        let span = (d(2026, 12, 31) - first).num_days();
        (0..=span).prop_map(move |offset| first + chrono::Duration::days(offset))
    }

    proptest! {
        #[test]
        fn adding_then_counting_round_trips(start in covered_date(), n in 0u32..400) {
            match OFFICIAL.add_working_days(start, n) {
                Ok(end) => {
                    prop_assert!(end >= start);
                    prop_assert_eq!(OFFICIAL.working_days_between(start, end), Ok(n));
                    if n > 0 {
                        prop_assert_eq!(OFFICIAL.is_working_day(end), Ok(true));
                        // `end` is the first date reaching n: the day before has n - 1.
                        let before = end.pred_opt().expect("not the minimum date");
                        prop_assert_eq!(OFFICIAL.working_days_between(start, before), Ok(n - 1));
                    }
                }
                Err(err) => {
                    let ran_out = matches!(err, CalendarError::NotCovered { year: 2027, .. });
                    prop_assert!(ran_out, "unexpected error {:?}", err);
                }
            }
        }

        #[test]
        fn counting_then_adding_reaches_the_last_working_day_up_to_to(
            from in covered_date(),
            to in covered_date(),
        ) {
            let k = OFFICIAL.working_days_between(from, to)?;
            let reached = OFFICIAL.add_working_days(from, k)?;
            prop_assert!(reached <= to.max(from));
            prop_assert_eq!(OFFICIAL.working_days_between(from, reached), Ok(k));
            // Nothing between `reached` and `to` is a working day.
            if reached < to {
                prop_assert_eq!(OFFICIAL.working_days_between(reached, to), Ok(0));
            }
        }
    }
}

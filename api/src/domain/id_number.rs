//! Mainland China resident identity card number (GB 11643-1999).

use std::fmt;

use chrono::{Datelike, NaiveDate};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::domain::{DomainError, Sex, fold_full_width_digit, mask_middle};

/// Number of characters in a second-generation resident ID number.
const LENGTH: usize = 18;

/// ISO 7064 MOD 11-2 weights for the first 17 digits.
const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];

/// Check character for each remainder `sum % 11`.
const CHECK_CHARS: [u8; 11] = *b"10X98765432";

/// Birth years before this are refused: a real calendar date such as
/// 0001-01-01 is still certainly a typo, and no living holder predates it.
const MIN_BIRTH_YEAR: i32 = 1800;

/// A validated mainland resident ID number (居民身份证号码), normalised to 18
/// ASCII characters with an uppercase `X` check character.
///
/// Construct with [`IdNumber::parse`]. `Debug` prints only the masked form and
/// there is deliberately no `Display`: use [`IdNumber::as_str`] where the full
/// number is really needed (encryption, lookup hashing).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct IdNumber {
    value: String,
    birth_date: NaiveDate,
}

/// Why a string is not a valid resident ID number. Messages never contain the
/// input, which is personal data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum IdNumberError {
    /// Not 18 characters after removing spaces.
    #[error("an ID number must have 18 characters, got {actual}")]
    Length {
        /// Number of characters found.
        actual: usize,
    },
    /// Something other than digits, or an `X` anywhere but the last place.
    #[error("an ID number must be 17 digits followed by a digit or X")]
    Characters,
    /// Characters 7–14 are not a real calendar date.
    #[error("the birth date in the ID number is not a valid date")]
    BirthDate,
    /// The last character does not match the ISO 7064 MOD 11-2 check.
    #[error("the ID number's check character is wrong")]
    Checksum,
}

impl IdNumberError {
    /// Stable snake_case code for API clients and logs.
    pub fn code(&self) -> &'static str {
        match self {
            IdNumberError::Length { .. } => "id_number_length",
            IdNumberError::Characters => "id_number_characters",
            IdNumberError::BirthDate => "id_number_birth_date",
            IdNumberError::Checksum => "id_number_checksum",
        }
    }

    /// User-facing message in Chinese.
    pub fn message_zh(&self) -> &'static str {
        match self {
            IdNumberError::Length { .. } => "身份证号码应为18位",
            IdNumberError::Characters => "身份证号码只能包含数字，最后一位可以是X",
            IdNumberError::BirthDate => "身份证号码中的出生日期无效",
            IdNumberError::Checksum => "身份证号码校验位错误",
        }
    }
}

impl DomainError for IdNumberError {
    fn code(&self) -> &'static str {
        IdNumberError::code(self)
    }

    fn message_zh(&self) -> &'static str {
        IdNumberError::message_zh(self)
    }
}

impl IdNumber {
    /// Parses and validates an ID number.
    ///
    /// Accepts what people actually type or paste: surrounding and inner
    /// whitespace (including the full-width space), full-width digits, and a
    /// lowercase or full-width `x`. Checks length, characters, that the birth
    /// date is a real calendar date, and the check character. Parsing does not
    /// look at the clock: a birth date in the future is not refused here; use
    /// [`IdNumber::age_on`] with today's date where that matters.
    /// Completes 17 digits (region, birth date, sequence) with their check character — for
    /// generating demo and test people, never for accepting input.
    pub fn complete(first_17_digits: &str) -> Result<IdNumber, IdNumberError> {
        let check = Self::check_character(first_17_digits).ok_or(IdNumberError::Characters)?;
        IdNumber::parse(&format!("{first_17_digits}{check}"))
    }

    /// The check character of 17 digits (`None` unless exactly 17 ASCII digits), whatever
    /// they say — tests use it to build numbers that are wrong in other ways.
    pub fn check_character(first_17_digits: &str) -> Option<char> {
        let body = first_17_digits.as_bytes();
        (body.len() == 17 && body.iter().all(u8::is_ascii_digit))
            .then(|| char::from(check_char(body)))
    }

    pub fn parse(input: &str) -> Result<IdNumber, IdNumberError> {
        let value: String = input
            .chars()
            .filter(|c| !c.is_whitespace())
            .map(fold_full_width_digit)
            .map(|c| match c {
                'x' | 'ｘ' | 'Ｘ' => 'X',
                other => other,
            })
            .collect();

        let actual = value.chars().count();
        if actual != LENGTH {
            return Err(IdNumberError::Length { actual });
        }
        // Refusing non-ASCII here makes byte indexing below the same as
        // character indexing.
        if !value.is_ascii() {
            return Err(IdNumberError::Characters);
        }
        let bytes = value.as_bytes();
        let body_is_digits = bytes[..LENGTH - 1].iter().all(u8::is_ascii_digit);
        let last = bytes[LENGTH - 1];
        if !body_is_digits || !(last.is_ascii_digit() || last == b'X') {
            return Err(IdNumberError::Characters);
        }

        let birth_date = parse_birth_date(&bytes[6..14]).ok_or(IdNumberError::BirthDate)?;

        if check_char(&bytes[..LENGTH - 1]) != last {
            return Err(IdNumberError::Checksum);
        }

        Ok(IdNumber { value, birth_date })
    }

    /// The full normalised number (18 ASCII characters, uppercase `X`).
    pub fn as_str(&self) -> &str {
        &self.value
    }

    /// Date of birth encoded in characters 7–14.
    pub fn birth_date(&self) -> NaiveDate {
        self.birth_date
    }

    /// Sex encoded in the 17th digit (odd = male, even = female).
    pub fn sex(&self) -> Sex {
        let digit = self.value.as_bytes()[LENGTH - 2] - b'0';
        if digit % 2 == 1 {
            Sex::Male
        } else {
            Sex::Female
        }
    }

    /// Age in full years on `date`, the birthday itself counting as the day
    /// the age goes up. Someone born on 29 February has their birthday on
    /// 1 March in non-leap years. Returns 0 for dates before birth.
    pub fn age_on(&self, date: NaiveDate) -> u32 {
        let birth = self.birth_date;
        if date < birth {
            return 0;
        }
        // date >= birth, so the year difference is non-negative.
        let years = u32::try_from(date.year() - birth.year()).unwrap_or(0);
        // Comparing (month, day) pairs puts 29 Feb after 28 Feb, so in a
        // non-leap year the birthday has passed only from 1 March on.
        let birthday_reached = (date.month(), date.day()) >= (birth.month(), birth.day());
        if birthday_reached {
            years
        } else {
            years.saturating_sub(1)
        }
    }

    /// Administrative division code of the place of first registration (the
    /// first six digits).
    pub fn region_code(&self) -> &str {
        &self.value[..6]
    }

    /// The number with all but the first four and last four characters
    /// replaced by `*`, e.g. `1101**********002X`. Safe for logs and screens.
    pub fn masked(&self) -> String {
        mask_middle(&self.value, 4, 4)
    }
}

/// Parses `YYYYMMDD` (already known to be ASCII digits) into a real date.
fn parse_birth_date(digits: &[u8]) -> Option<NaiveDate> {
    let number = |range: std::ops::Range<usize>| -> u32 {
        digits[range]
            .iter()
            .fold(0, |acc, d| acc * 10 + u32::from(d - b'0'))
    };
    let year = i32::try_from(number(0..4)).ok()?;
    if year < MIN_BIRTH_YEAR {
        return None;
    }
    NaiveDate::from_ymd_opt(year, number(4..6), number(6..8))
}

/// Computes the ISO 7064 MOD 11-2 check character of 17 ASCII digits.
fn check_char(body: &[u8]) -> u8 {
    let sum: u32 = body
        .iter()
        .zip(WEIGHTS)
        .map(|(d, w)| u32::from(d - b'0') * w)
        .sum();
    // `sum % 11` is always < 11, the length of the table.
    CHECK_CHARS[(sum % 11) as usize]
}

impl fmt::Debug for IdNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("IdNumber").field(&self.masked()).finish()
    }
}

impl std::str::FromStr for IdNumber {
    type Err = IdNumberError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        IdNumber::parse(s)
    }
}

impl Serialize for IdNumber {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.value)
    }
}

impl<'de> Deserialize<'de> for IdNumber {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        IdNumber::parse(&raw).map_err(serde::de::Error::custom)
    }
}

impl utoipa::PartialSchema for IdNumber {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        crate::domain::string_schema(
            "Mainland resident ID number (18 characters, GB 11643-1999). \
             Spaces, full-width digits and a lowercase x are accepted on input.",
            "11010519491231002X",
            None,
        )
    }
}

impl utoipa::ToSchema for IdNumber {}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Builds a valid ID number from its parts by computing the check
    /// character with an independent, straightforward implementation.
    pub(crate) fn make_id(region: &str, birth: &str, sequence: &str) -> String {
        let body = format!("{region}{birth}{sequence}");
        assert_eq!(body.len(), 17);
        let weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
        let sum: u32 = body
            .chars()
            .zip(weights)
            .map(|(c, w)| c.to_digit(10).unwrap() * w)
            .sum();
        let check = ['1', '0', 'X', '9', '8', '7', '6', '5', '4', '3', '2'][(sum % 11) as usize];
        format!("{body}{check}")
    }

    fn date(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    #[test]
    fn the_well_known_example_parses() {
        let id = IdNumber::parse("11010519491231002X").unwrap();
        assert_eq!(id.as_str(), "11010519491231002X");
        assert_eq!(id.birth_date(), date(1949, 12, 31));
        assert_eq!(id.sex(), Sex::Female);
        assert_eq!(id.region_code(), "110105");
    }

    #[test]
    fn the_test_helper_agrees_with_the_well_known_example() {
        assert_eq!(make_id("110105", "19491231", "002"), "11010519491231002X");
    }

    #[test]
    fn a_lowercase_x_is_normalised_to_uppercase() {
        let id = IdNumber::parse("11010519491231002x").unwrap();
        assert_eq!(id.as_str(), "11010519491231002X");
    }

    #[test]
    fn full_width_digits_and_full_width_x_are_accepted() {
        let id = IdNumber::parse("１１０１０５１９４９１２３１００２ｘ").unwrap();
        assert_eq!(id.as_str(), "11010519491231002X");
        let id = IdNumber::parse("１１０１０５１９４９１２３１００２Ｘ").unwrap();
        assert_eq!(id.as_str(), "11010519491231002X");
    }

    #[test]
    fn surrounding_and_inner_spaces_are_removed() {
        let id = IdNumber::parse("  110105 19491231 002X\u{3000}").unwrap();
        assert_eq!(id.as_str(), "11010519491231002X");
    }

    #[test]
    fn a_wrong_check_character_is_refused() {
        assert_eq!(
            IdNumber::parse("110105194912310021"),
            Err(IdNumberError::Checksum)
        );
        assert_eq!(
            IdNumber::parse("110105194912310021").unwrap_err().code(),
            "id_number_checksum"
        );
    }

    #[test]
    fn a_single_changed_digit_is_caught_by_the_check_character() {
        // Change the sequence digit: the date stays valid, only the check fails.
        assert_eq!(
            IdNumber::parse("11010519491231003X"),
            Err(IdNumberError::Checksum)
        );
    }

    #[test]
    fn a_wrong_length_is_refused_with_the_length_found() {
        assert_eq!(
            IdNumber::parse("11010519491231002"),
            Err(IdNumberError::Length { actual: 17 })
        );
        assert_eq!(
            IdNumber::parse("11010519491231002X1"),
            Err(IdNumberError::Length { actual: 19 })
        );
        assert_eq!(
            IdNumber::parse(""),
            Err(IdNumberError::Length { actual: 0 })
        );
        // The old 15-digit first-generation format is not accepted.
        assert_eq!(
            IdNumber::parse("110105491231002"),
            Err(IdNumberError::Length { actual: 15 })
        );
    }

    #[test]
    fn letters_or_an_x_in_the_middle_are_refused() {
        assert_eq!(
            IdNumber::parse("1101051949123100XX"),
            Err(IdNumberError::Characters)
        );
        assert_eq!(
            IdNumber::parse("11010519491231002A"),
            Err(IdNumberError::Characters)
        );
        assert_eq!(
            IdNumber::parse("1101051949一231002X"),
            Err(IdNumberError::Characters)
        );
    }

    #[test]
    fn an_impossible_birth_date_is_refused() {
        let bad_month = make_id("110105", "19491331", "002");
        assert_eq!(IdNumber::parse(&bad_month), Err(IdNumberError::BirthDate));
        let bad_day = make_id("110105", "19490431", "002");
        assert_eq!(IdNumber::parse(&bad_day), Err(IdNumberError::BirthDate));
        let year_zero = make_id("110105", "00010101", "002");
        assert_eq!(IdNumber::parse(&year_zero), Err(IdNumberError::BirthDate));
    }

    #[test]
    fn february_29_is_accepted_only_in_leap_years() {
        let leap = make_id("440305", "20000229", "123");
        assert_eq!(
            IdNumber::parse(&leap).unwrap().birth_date(),
            date(2000, 2, 29)
        );
        let leap_1996 = make_id("440305", "19960229", "123");
        assert!(IdNumber::parse(&leap_1996).is_ok());

        let not_leap = make_id("440305", "20010229", "123");
        assert_eq!(IdNumber::parse(&not_leap), Err(IdNumberError::BirthDate));
        // 1900 is divisible by 4 but not a leap year.
        let century = make_id("440305", "19000229", "123");
        assert_eq!(IdNumber::parse(&century), Err(IdNumberError::BirthDate));
    }

    #[test]
    fn the_seventeenth_digit_gives_the_sex() {
        let male = IdNumber::parse(&make_id("310101", "19800101", "001")).unwrap();
        assert_eq!(male.sex(), Sex::Male);
        let female = IdNumber::parse(&make_id("310101", "19800101", "008")).unwrap();
        assert_eq!(female.sex(), Sex::Female);
    }

    #[test]
    fn age_goes_up_on_the_birthday_itself() {
        let id = IdNumber::parse(&make_id("310101", "19800615", "001")).unwrap();
        assert_eq!(id.age_on(date(2020, 6, 14)), 39);
        assert_eq!(id.age_on(date(2020, 6, 15)), 40);
        assert_eq!(id.age_on(date(2020, 6, 16)), 40);
        assert_eq!(id.age_on(date(1980, 6, 15)), 0);
        assert_eq!(id.age_on(date(1981, 6, 14)), 0);
        assert_eq!(id.age_on(date(1981, 6, 15)), 1);
    }

    #[test]
    fn age_before_birth_is_zero() {
        let id = IdNumber::parse(&make_id("310101", "19800615", "001")).unwrap();
        assert_eq!(id.age_on(date(1970, 1, 1)), 0);
    }

    #[test]
    fn someone_born_on_february_29_ages_on_march_1_in_non_leap_years() {
        let id = IdNumber::parse(&make_id("440305", "20000229", "123")).unwrap();
        assert_eq!(id.age_on(date(2001, 2, 28)), 0);
        assert_eq!(id.age_on(date(2001, 3, 1)), 1);
        assert_eq!(id.age_on(date(2004, 2, 28)), 3);
        assert_eq!(id.age_on(date(2004, 2, 29)), 4);
    }

    #[test]
    fn the_mask_keeps_four_characters_at_each_end() {
        let id = IdNumber::parse("11010519491231002X").unwrap();
        assert_eq!(id.masked(), "1101**********002X");
        assert_eq!(id.masked().chars().count(), 18);
    }

    #[test]
    fn debug_never_shows_the_full_number() {
        let id = IdNumber::parse("11010519491231002X").unwrap();
        let debug = format!("{id:?}");
        assert!(!debug.contains("11010519491231002X"), "{debug}");
        assert!(!debug.contains("19491231"), "{debug}");
        assert_eq!(debug, "IdNumber(\"1101**********002X\")");
        let pretty = format!("{id:#?}");
        assert!(!pretty.contains("19491231"), "{pretty}");
    }

    #[test]
    fn error_messages_never_echo_the_input() {
        for input in [
            "110105194912310021",
            "11010519491231002",
            "1101051949123100XA",
        ] {
            let err = IdNumber::parse(input).unwrap_err();
            assert!(!err.to_string().contains("1949"), "{err}");
        }
    }

    #[test]
    fn every_error_has_a_code_and_a_chinese_message() {
        let errors = [
            IdNumberError::Length { actual: 3 },
            IdNumberError::Characters,
            IdNumberError::BirthDate,
            IdNumberError::Checksum,
        ];
        let codes: Vec<_> = errors.iter().map(IdNumberError::code).collect();
        assert_eq!(
            codes,
            [
                "id_number_length",
                "id_number_characters",
                "id_number_birth_date",
                "id_number_checksum"
            ]
        );
        assert_eq!(IdNumberError::Checksum.message_zh(), "身份证号码校验位错误");
        assert!(errors.iter().all(|e| !e.message_zh().is_empty()));
    }

    #[test]
    fn serde_round_trips_the_normalised_number() {
        let id: IdNumber = serde_json::from_str("\"11010519491231002x\"").unwrap();
        assert_eq!(
            serde_json::to_string(&id).unwrap(),
            "\"11010519491231002X\""
        );
    }

    #[test]
    fn deserialising_a_bad_number_gives_the_error_message() {
        let err = serde_json::from_str::<IdNumber>("\"110105194912310021\"").unwrap_err();
        assert!(err.to_string().contains("check character"), "{err}");
        assert!(serde_json::from_str::<IdNumber>("12").is_err());
    }

    #[test]
    fn the_schema_is_a_string_with_an_example() {
        let schema = serde_json::to_value(<IdNumber as utoipa::PartialSchema>::schema()).unwrap();
        assert_eq!(schema["type"], "string");
        assert_eq!(schema["examples"][0], "11010519491231002X");
        assert_eq!(<IdNumber as utoipa::ToSchema>::name(), "IdNumber");
    }

    /// Valid ID numbers: any region digits, a birth date between 1900 and
    /// 2099, any sequence number.
    fn valid_id() -> impl Strategy<Value = String> {
        let base = date(1900, 1, 1);
        (0u32..1_000_000, 0i64..73_000, 0u32..1000).prop_map(move |(region, days, seq)| {
            let birth = base + chrono::Duration::days(days);
            make_id(
                &format!("{region:06}"),
                &birth.format("%Y%m%d").to_string(),
                &format!("{seq:03}"),
            )
        })
    }

    proptest! {
        #[test]
        fn any_valid_id_parses_and_round_trips(raw in valid_id()) {
            let id = IdNumber::parse(&raw).unwrap();
            prop_assert_eq!(id.as_str(), raw.as_str());
            prop_assert_eq!(id.birth_date().format("%Y%m%d").to_string(), &raw[6..14]);
            let reparsed = IdNumber::parse(&raw.to_lowercase()).unwrap();
            prop_assert_eq!(&reparsed, &id);
            let json = serde_json::to_string(&id).unwrap();
            prop_assert_eq!(serde_json::from_str::<IdNumber>(&json).unwrap(), id);
        }

        #[test]
        fn masking_an_id_preserves_its_length_and_ends(raw in valid_id()) {
            let masked = IdNumber::parse(&raw).unwrap().masked();
            prop_assert_eq!(masked.len(), 18);
            prop_assert_eq!(&masked[..4], &raw[..4]);
            prop_assert_eq!(&masked[14..], &raw[14..]);
            prop_assert_eq!(&masked[4..14], "**********");
        }

        #[test]
        fn changing_any_one_digit_of_a_valid_id_is_refused(
            raw in valid_id(), position in 0usize..17, delta in 1u8..10
        ) {
            let mut bytes = raw.into_bytes();
            bytes[position] = b'0' + (bytes[position] - b'0' + delta) % 10;
            let changed = String::from_utf8(bytes).unwrap();
            prop_assert!(IdNumber::parse(&changed).is_err());
        }

        #[test]
        fn parsing_arbitrary_text_never_panics(input in "\\PC{0,40}") {
            let _ = IdNumber::parse(&input);
        }
    }
}

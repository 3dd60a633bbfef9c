//! Bank card number (debit card used to pay out benefits).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::domain::{DomainError, fold_full_width_digit, mask_middle};

/// Shortest card number accepted (UnionPay debit cards are 16–19 digits).
const MIN_LENGTH: usize = 16;
/// Longest card number accepted.
const MAX_LENGTH: usize = 19;

/// A validated bank card number: 16–19 ASCII digits passing the Luhn check.
///
/// `Debug` prints only the masked form and there is no `Display`; use
/// [`BankCardNumber::as_str`] deliberately.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct BankCardNumber(String);

/// Why a string is not a valid bank card number. Messages never contain the
/// input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BankCardNumberError {
    /// Not 16–19 digits long.
    #[error("a bank card number must have 16 to 19 digits, got {actual}")]
    Length {
        /// Number of digits found.
        actual: usize,
    },
    /// Contains something other than digits and spaces.
    #[error("a bank card number may only contain digits")]
    Characters,
    /// Fails the Luhn check, so at least one digit is mistyped.
    #[error("the bank card number fails its check digit")]
    Checksum,
}

impl BankCardNumberError {
    /// Stable snake_case code for API clients and logs.
    pub fn code(&self) -> &'static str {
        match self {
            BankCardNumberError::Length { .. } => "bank_card_length",
            BankCardNumberError::Characters => "bank_card_characters",
            BankCardNumberError::Checksum => "bank_card_checksum",
        }
    }

    /// User-facing message in Chinese.
    pub fn message_zh(&self) -> &'static str {
        match self {
            BankCardNumberError::Length { .. } => "银行卡号应为16至19位数字",
            BankCardNumberError::Characters => "银行卡号只能包含数字",
            BankCardNumberError::Checksum => "银行卡号有误，请核对后重新输入",
        }
    }
}

impl DomainError for BankCardNumberError {
    fn code(&self) -> &'static str {
        BankCardNumberError::code(self)
    }

    fn message_zh(&self) -> &'static str {
        BankCardNumberError::message_zh(self)
    }
}

impl BankCardNumber {
    /// Parses a card number: removes whitespace (cards are printed and often
    /// typed in groups of four), folds full-width digits, then checks
    /// characters, length and the Luhn check digit, in that order.
    pub fn parse(input: &str) -> Result<BankCardNumber, BankCardNumberError> {
        let digits: String = input
            .chars()
            .filter(|c| !c.is_whitespace())
            .map(fold_full_width_digit)
            .collect();
        if !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(BankCardNumberError::Characters);
        }
        // All ASCII now, so bytes are characters.
        let actual = digits.len();
        if !(MIN_LENGTH..=MAX_LENGTH).contains(&actual) {
            return Err(BankCardNumberError::Length { actual });
        }
        if !luhn_valid(digits.as_bytes()) {
            return Err(BankCardNumberError::Checksum);
        }
        Ok(BankCardNumber(digits))
    }

    /// The full normalised digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The number with all but the first four and last four digits replaced
    /// by `*`, keeping its length: `6222***********0128`.
    pub fn masked(&self) -> String {
        mask_middle(&self.0, 4, 4)
    }

    /// The last four digits, as users recognise their card by them.
    pub fn last_four(&self) -> &str {
        // Always at least 16 ASCII digits, so this slice is in bounds.
        &self.0[self.0.len() - 4..]
    }
}

/// Luhn (mod 10) check over ASCII digits, the last one being the check digit.
fn luhn_valid(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, d)| {
            let d = u32::from(d - b'0');
            if i % 2 == 1 {
                let doubled = d * 2;
                if doubled > 9 { doubled - 9 } else { doubled }
            } else {
                d
            }
        })
        .sum();
    sum.is_multiple_of(10)
}

impl fmt::Debug for BankCardNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("BankCardNumber")
            .field(&self.masked())
            .finish()
    }
}

impl std::str::FromStr for BankCardNumber {
    type Err = BankCardNumberError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        BankCardNumber::parse(s)
    }
}

impl Serialize for BankCardNumber {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for BankCardNumber {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        BankCardNumber::parse(&raw).map_err(serde::de::Error::custom)
    }
}

impl utoipa::PartialSchema for BankCardNumber {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        crate::domain::string_schema(
            "Bank card number, 16 to 19 digits with a valid Luhn check digit. \
             Spaces are accepted on input.",
            "6222021234567890128",
            None,
        )
    }
}

impl utoipa::ToSchema for BankCardNumber {}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Appends the Luhn check digit, computed the textbook way.
    fn with_check_digit(payload: &str) -> String {
        let mut sum = 0;
        for (i, c) in payload.chars().rev().enumerate() {
            let mut d = c.to_digit(10).unwrap();
            // The check digit will take position 0, so the payload's last
            // digit is at an odd position from the right and gets doubled.
            if i % 2 == 0 {
                d *= 2;
                if d > 9 {
                    d -= 9;
                }
            }
            sum += d;
        }
        format!("{payload}{}", (10 - sum % 10) % 10)
    }

    #[test]
    fn the_helper_reproduces_a_known_luhn_number() {
        // 4111 1111 1111 1111 is the classic Luhn-valid test card.
        assert_eq!(with_check_digit("411111111111111"), "4111111111111111");
    }

    #[test]
    fn a_known_valid_19_digit_card_parses() {
        // Check digit computed by the helper, not trusted from elsewhere.
        let number = with_check_digit("622202123456789012");
        assert_eq!(number, "6222021234567890128");
        let card = BankCardNumber::parse(&number).unwrap();
        assert_eq!(card.as_str(), "6222021234567890128");
        assert_eq!(card.last_four(), "0128");
    }

    #[test]
    fn spaces_and_full_width_digits_are_accepted() {
        let card = BankCardNumber::parse(" 6222 0212 3456 7890 128 ").unwrap();
        assert_eq!(card.as_str(), "6222021234567890128");
        let card = BankCardNumber::parse("６２２２０２１２３４５６７８９０１２８").unwrap();
        assert_eq!(card.as_str(), "6222021234567890128");
    }

    #[test]
    fn a_wrong_check_digit_is_refused() {
        assert_eq!(
            BankCardNumber::parse("6222021234567890127"),
            Err(BankCardNumberError::Checksum)
        );
        assert_eq!(
            BankCardNumber::parse("4111111111111112")
                .unwrap_err()
                .code(),
            "bank_card_checksum"
        );
    }

    #[test]
    fn swapping_two_adjacent_digits_is_caught() {
        // "34" -> "43". (Luhn cannot see a 09 <-> 90 swap; no mod-10 check can.)
        assert_eq!(
            BankCardNumber::parse("6222021243567890128"),
            Err(BankCardNumberError::Checksum)
        );
    }

    #[test]
    fn too_short_or_too_long_numbers_are_refused() {
        let fifteen = with_check_digit("41111111111111");
        assert_eq!(
            BankCardNumber::parse(&fifteen),
            Err(BankCardNumberError::Length { actual: 15 })
        );
        let twenty = with_check_digit("6222021234567890123");
        assert_eq!(
            BankCardNumber::parse(&twenty),
            Err(BankCardNumberError::Length { actual: 20 })
        );
        assert_eq!(
            BankCardNumber::parse("").unwrap_err().code(),
            "bank_card_length"
        );
    }

    #[test]
    fn dashes_letters_and_other_characters_are_refused() {
        for input in [
            "6222-0212-3456-7890-128",
            "6222O21234567890128",
            "+6222021234567890128",
        ] {
            assert_eq!(
                BankCardNumber::parse(input),
                Err(BankCardNumberError::Characters),
                "{input}"
            );
        }
        assert_eq!(
            BankCardNumberError::Characters.code(),
            "bank_card_characters"
        );
    }

    #[test]
    fn the_mask_keeps_four_digits_at_each_end_and_the_length() {
        let card = BankCardNumber::parse("6222021234567890128").unwrap();
        assert_eq!(card.masked(), "6222***********0128");
        let card = BankCardNumber::parse("4111111111111111").unwrap();
        assert_eq!(card.masked(), "4111********1111");
    }

    #[test]
    fn debug_never_shows_the_full_number() {
        let card = BankCardNumber::parse("6222021234567890128").unwrap();
        let debug = format!("{card:?}");
        assert!(!debug.contains("6222021234567890128"), "{debug}");
        assert!(!debug.contains("12345"), "{debug}");
        assert_eq!(debug, "BankCardNumber(\"6222***********0128\")");
    }

    #[test]
    fn every_error_has_a_chinese_message() {
        for err in [
            BankCardNumberError::Length { actual: 3 },
            BankCardNumberError::Characters,
            BankCardNumberError::Checksum,
        ] {
            assert!(err.message_zh().contains("银行卡号"));
        }
    }

    #[test]
    fn serde_round_trips_the_normalised_number() {
        let card: BankCardNumber = serde_json::from_str("\"6222 0212 3456 7890 128\"").unwrap();
        assert_eq!(
            serde_json::to_string(&card).unwrap(),
            "\"6222021234567890128\""
        );
        let err = serde_json::from_str::<BankCardNumber>("\"6222021234567890127\"").unwrap_err();
        assert!(err.to_string().contains("check digit"), "{err}");
    }

    #[test]
    fn the_schema_is_a_string_with_an_example_that_is_itself_valid() {
        let schema =
            serde_json::to_value(<BankCardNumber as utoipa::PartialSchema>::schema()).unwrap();
        assert_eq!(schema["type"], "string");
        let example = schema["examples"][0].as_str().unwrap();
        assert!(BankCardNumber::parse(example).is_ok());
    }

    proptest! {
        #[test]
        fn any_luhn_valid_number_of_allowed_length_parses(payload in "[0-9]{15,18}") {
            let number = with_check_digit(&payload);
            let card = BankCardNumber::parse(&number).unwrap();
            prop_assert_eq!(card.as_str(), number.as_str());
            let masked = card.masked();
            prop_assert_eq!(masked.len(), number.len());
            prop_assert_eq!(&masked[..4], &number[..4]);
            prop_assert_eq!(&masked[masked.len() - 4..], &number[number.len() - 4..]);
        }

        #[test]
        fn changing_any_one_digit_is_refused(
            payload in "[0-9]{15,18}", position in 0usize..16, delta in 1u8..10
        ) {
            let mut bytes = with_check_digit(&payload).into_bytes();
            bytes[position] = b'0' + (bytes[position] - b'0' + delta) % 10;
            let changed = String::from_utf8(bytes).unwrap();
            prop_assert_eq!(BankCardNumber::parse(&changed), Err(BankCardNumberError::Checksum));
        }

        #[test]
        fn parsing_arbitrary_text_never_panics(input in "\\PC{0,30}") {
            let _ = BankCardNumber::parse(&input);
        }
    }
}

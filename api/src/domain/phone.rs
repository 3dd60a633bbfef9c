//! Mainland China mobile phone number.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::domain::{DomainError, fold_full_width_digit, mask_middle};

/// A validated mainland mobile number, normalised to 11 ASCII digits without
/// country code (e.g. `13812345678`).
///
/// `Debug` prints only the masked form and there is no `Display`; use
/// [`PhoneNumber::as_str`] or [`PhoneNumber::e164`] deliberately.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PhoneNumber(String);

/// Why a string is not a valid mainland mobile number. The message never
/// contains the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PhoneNumberError {
    /// Not 11 digits starting with 1 and a second digit of 3–9, after removing
    /// separators and the country code.
    #[error("not a valid mainland China mobile number")]
    Invalid,
}

impl PhoneNumberError {
    /// Stable snake_case code for API clients and logs.
    pub fn code(&self) -> &'static str {
        match self {
            PhoneNumberError::Invalid => "phone_invalid",
        }
    }

    /// User-facing message in Chinese.
    pub fn message_zh(&self) -> &'static str {
        match self {
            PhoneNumberError::Invalid => "请输入正确的11位手机号码",
        }
    }
}

impl DomainError for PhoneNumberError {
    fn code(&self) -> &'static str {
        PhoneNumberError::code(self)
    }

    fn message_zh(&self) -> &'static str {
        PhoneNumberError::message_zh(self)
    }
}

impl PhoneNumber {
    /// Parses a mainland mobile number.
    ///
    /// Accepts spaces, dashes (ASCII and full-width), full-width digits and the
    /// country-code prefixes `+86`, `0086` and `86`; the result is the bare 11
    /// digits.
    pub fn parse(input: &str) -> Result<PhoneNumber, PhoneNumberError> {
        let cleaned: String = input
            .chars()
            .filter(|c| !c.is_whitespace() && !matches!(c, '-' | '－'))
            .map(fold_full_width_digit)
            .map(|c| if c == '＋' { '+' } else { c })
            .collect();

        let national = if let Some(rest) = cleaned.strip_prefix("+86") {
            rest
        } else if let Some(rest) = cleaned.strip_prefix("0086") {
            rest
        } else if cleaned.len() == 13 {
            // A bare "86" is only a country code when 11 digits follow: an
            // 11-digit mobile number itself can never start with 8.
            cleaned.strip_prefix("86").unwrap_or(&cleaned)
        } else {
            &cleaned
        };

        let bytes = national.as_bytes();
        let valid = bytes.len() == 11
            && bytes.iter().all(u8::is_ascii_digit)
            && bytes[0] == b'1'
            && (b'3'..=b'9').contains(&bytes[1]);
        if valid {
            Ok(PhoneNumber(national.to_owned()))
        } else {
            Err(PhoneNumberError::Invalid)
        }
    }

    /// The 11 digits, without country code.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The number in E.164 form, e.g. `+8613812345678` (for SMS gateways).
    pub fn e164(&self) -> String {
        format!("+86{}", self.0)
    }

    /// The number with the middle four digits hidden: `138****5678`.
    pub fn masked(&self) -> String {
        mask_middle(&self.0, 3, 4)
    }
}

impl fmt::Debug for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("PhoneNumber").field(&self.masked()).finish()
    }
}

impl std::str::FromStr for PhoneNumber {
    type Err = PhoneNumberError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PhoneNumber::parse(s)
    }
}

impl Serialize for PhoneNumber {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for PhoneNumber {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        PhoneNumber::parse(&raw).map_err(serde::de::Error::custom)
    }
}

impl utoipa::PartialSchema for PhoneNumber {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        crate::domain::string_schema(
            "Mainland China mobile number. Spaces, dashes, full-width digits and a \
             +86/0086/86 prefix are accepted on input; output is the bare 11 digits.",
            "13812345678",
            None,
        )
    }
}

impl utoipa::ToSchema for PhoneNumber {}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn a_plain_eleven_digit_number_parses() {
        let phone = PhoneNumber::parse("13812345678").unwrap();
        assert_eq!(phone.as_str(), "13812345678");
    }

    #[test]
    fn country_code_prefixes_are_removed() {
        for input in [
            "+8613812345678",
            "+86 138 1234 5678",
            "8613812345678",
            "008613812345678",
            "0086-138-1234-5678",
            "＋８６ １３８１２３４５６７８",
        ] {
            assert_eq!(
                PhoneNumber::parse(input).map(|p| p.as_str().to_owned()),
                Ok("13812345678".to_owned()),
                "{input}"
            );
        }
    }

    #[test]
    fn spaces_dashes_and_full_width_digits_are_accepted() {
        for input in [
            " 138 1234 5678 ",
            "138-1234-5678",
            "１３８１２３４５６７８",
            "138－1234－5678",
        ] {
            assert_eq!(
                PhoneNumber::parse(input).unwrap().as_str(),
                "13812345678",
                "{input}"
            );
        }
    }

    #[test]
    fn numbers_that_are_not_mainland_mobiles_are_refused() {
        for input in [
            "",
            "1381234567",   // 10 digits
            "138123456789", // 12 digits
            "12812345678",  // second digit 2
            "10012345678",  // second digit 0
            "23812345678",  // does not start with 1
            "+85213812345678",
            "+1 415 555 2671",
            "010-12345678", // landline
            "1381234567a",
            "86138123456789",
        ] {
            let err = PhoneNumber::parse(input).unwrap_err();
            assert_eq!(err.code(), "phone_invalid", "{input}");
        }
    }

    #[test]
    fn a_number_with_second_digit_six_keeps_its_leading_digits() {
        // 166… must not be mistaken for anything with an 86 prefix.
        assert_eq!(
            PhoneNumber::parse("16612345678").unwrap().as_str(),
            "16612345678"
        );
        assert_eq!(
            PhoneNumber::parse("8616612345678").unwrap().as_str(),
            "16612345678"
        );
    }

    #[test]
    fn the_mask_hides_the_middle_four_digits() {
        assert_eq!(
            PhoneNumber::parse("13812345678").unwrap().masked(),
            "138****5678"
        );
    }

    #[test]
    fn e164_adds_the_country_code() {
        assert_eq!(
            PhoneNumber::parse("138 1234 5678").unwrap().e164(),
            "+8613812345678"
        );
    }

    #[test]
    fn debug_never_shows_the_full_number() {
        let phone = PhoneNumber::parse("13812345678").unwrap();
        let debug = format!("{phone:?}");
        assert!(!debug.contains("13812345678"), "{debug}");
        assert!(!debug.contains("1234"), "{debug}");
        assert_eq!(debug, "PhoneNumber(\"138****5678\")");
    }

    #[test]
    fn the_error_has_a_chinese_message() {
        assert!(PhoneNumberError::Invalid.message_zh().contains("手机号码"));
        assert!(!PhoneNumberError::Invalid.to_string().is_empty());
    }

    #[test]
    fn serde_round_trips_the_normalised_number() {
        let phone: PhoneNumber = serde_json::from_str("\"+86 138-1234-5678\"").unwrap();
        assert_eq!(serde_json::to_string(&phone).unwrap(), "\"13812345678\"");
        let err = serde_json::from_str::<PhoneNumber>("\"12345\"").unwrap_err();
        assert!(err.to_string().contains("mobile number"), "{err}");
    }

    #[test]
    fn the_schema_is_a_string_with_an_example() {
        let schema =
            serde_json::to_value(<PhoneNumber as utoipa::PartialSchema>::schema()).unwrap();
        assert_eq!(schema["type"], "string");
        assert_eq!(schema["examples"][0], "13812345678");
    }

    proptest! {
        #[test]
        fn any_valid_number_parses_with_or_without_a_prefix(
            number in "1[3-9][0-9]{9}",
            prefix in prop::sample::select(vec!["", "+86", "86", "0086", "+86 ", "+86-"]),
        ) {
            let phone = PhoneNumber::parse(&format!("{prefix}{number}")).unwrap();
            prop_assert_eq!(phone.as_str(), number.as_str());
            prop_assert_eq!(phone.masked().len(), 11);
            prop_assert_eq!(phone.e164(), format!("+86{number}"));
        }

        #[test]
        fn parsing_arbitrary_text_never_panics(input in "\\PC{0,30}") {
            let _ = PhoneNumber::parse(&input);
        }
    }
}

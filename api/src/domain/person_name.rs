//! A person's name as written on their ID card.

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::domain::DomainError;

/// Longest accepted name, in characters (not bytes: one Chinese character is
/// three UTF-8 bytes).
const MAX_CHARS: usize = 50;

/// The middle dot used on ID cards between the parts of minority and
/// transliterated names (U+00B7), e.g. `阿卜杜·热合曼`.
const MIDDLE_DOT: char = '·';

/// A validated, normalised personal name.
///
/// Trimmed; inner runs of whitespace collapsed to one space; look-alike dots
/// (`•`, `・`, `‧`, `∙`, `･`) normalised to the ID-card middle dot `·`, with no
/// spaces around it. Letters of any script are allowed, plus `·`, space, `-`,
/// `'` and `.` between them (for names such as `Mary-Jane O'Neil`); digits,
/// control characters and other symbols are refused.
///
/// A name is personal data too, so `Debug` prints only the masked form and
/// there is no `Display`: use [`PersonName::as_str`] deliberately.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct PersonName(String);

/// Why a string is not an acceptable name. Messages never contain the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PersonNameError {
    /// Nothing left after trimming.
    #[error("the name is empty")]
    Empty,
    /// More than 50 characters.
    #[error("the name is longer than {MAX_CHARS} characters")]
    TooLong,
    /// Contains digits, control characters or symbols, or starts or ends with
    /// a separator.
    #[error("the name contains characters that are not allowed in a name")]
    Characters,
}

impl PersonNameError {
    /// Stable snake_case code for API clients and logs.
    pub fn code(&self) -> &'static str {
        match self {
            PersonNameError::Empty => "person_name_empty",
            PersonNameError::TooLong => "person_name_too_long",
            PersonNameError::Characters => "person_name_characters",
        }
    }

    /// User-facing message in Chinese.
    pub fn message_zh(&self) -> &'static str {
        match self {
            PersonNameError::Empty => "请填写姓名",
            PersonNameError::TooLong => "姓名不能超过50个字",
            PersonNameError::Characters => "姓名不能包含数字或特殊符号",
        }
    }
}

impl DomainError for PersonNameError {
    fn code(&self) -> &'static str {
        PersonNameError::code(self)
    }

    fn message_zh(&self) -> &'static str {
        PersonNameError::message_zh(self)
    }
}

impl PersonName {
    /// Parses and normalises a name (see the type's documentation for the
    /// rules).
    pub fn parse(input: &str) -> Result<PersonName, PersonNameError> {
        let collapsed = input.split_whitespace().collect::<Vec<_>>().join(" ");
        if collapsed.is_empty() {
            return Err(PersonNameError::Empty);
        }

        let mut name = String::with_capacity(collapsed.len());
        for c in collapsed.chars() {
            let c = normalise_dot(c);
            // Drop a space next to a middle dot ("阿卜杜 · 热合曼"): the dot
            // already separates the parts, and ID cards have no spaces there.
            if c == MIDDLE_DOT && name.ends_with(' ') {
                name.pop();
            }
            if c == ' ' && name.ends_with(MIDDLE_DOT) {
                continue;
            }
            name.push(c);
        }

        if !name.chars().all(is_allowed) {
            return Err(PersonNameError::Characters);
        }
        let starts_with_letter = name.chars().next().is_some_and(char::is_alphabetic);
        let ends_well = name
            .chars()
            .next_back()
            .is_some_and(|c| c.is_alphabetic() || c == '.' || is_combining_mark(c));
        if !starts_with_letter || !ends_well {
            return Err(PersonNameError::Characters);
        }
        if name.chars().count() > MAX_CHARS {
            return Err(PersonNameError::TooLong);
        }
        Ok(PersonName(name))
    }

    /// The normalised name.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The first character followed by one `*` per remaining character, e.g.
    /// `张**` for `张三丰`. A one-character name is shown as a single `*`,
    /// since showing its first character would show all of it.
    pub fn masked(&self) -> String {
        let mut chars = self.0.chars();
        let first = chars.next();
        let rest = chars.count();
        match first {
            Some(first) if rest > 0 => std::iter::once(first)
                .chain(std::iter::repeat_n('*', rest))
                .collect(),
            _ => "*".to_owned(),
        }
    }
}

/// Maps dot characters that input methods produce instead of `·` to `·`.
fn normalise_dot(c: char) -> char {
    match c {
        '\u{2022}' | '\u{30FB}' | '\u{2027}' | '\u{2219}' | '\u{FF65}' => MIDDLE_DOT,
        other => other,
    }
}

/// Combining diacritical marks, so decomposed Latin names (`José` as
/// `e` + U+0301) are not refused.
fn is_combining_mark(c: char) -> bool {
    matches!(c, '\u{0300}'..='\u{036F}')
}

fn is_allowed(c: char) -> bool {
    // `is_alphabetic` covers Chinese, Latin, Uyghur (Arabic script), Tibetan
    // and other scripts, and excludes digits; Chinese numerals such as 三 are
    // letters and so are allowed, as they must be.
    c.is_alphabetic() || is_combining_mark(c) || matches!(c, MIDDLE_DOT | ' ' | '-' | '\'' | '.')
}

impl fmt::Debug for PersonName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("PersonName").field(&self.masked()).finish()
    }
}

impl std::str::FromStr for PersonName {
    type Err = PersonNameError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PersonName::parse(s)
    }
}

impl Serialize for PersonName {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.0)
    }
}

impl<'de> Deserialize<'de> for PersonName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        PersonName::parse(&raw).map_err(serde::de::Error::custom)
    }
}

impl utoipa::PartialSchema for PersonName {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::schema::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .description(Some(
                "Person's name as on the ID card, 1 to 50 characters; minority names \
                 use the middle dot, e.g. 阿卜杜·热合曼.",
            ))
            .min_length(Some(1))
            .max_length(Some(MAX_CHARS))
            .examples(["张三"])
            .into()
    }
}

impl utoipa::ToSchema for PersonName {}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn parsed(input: &str) -> String {
        PersonName::parse(input).unwrap().as_str().to_owned()
    }

    #[test]
    fn a_chinese_name_is_kept_as_is() {
        assert_eq!(parsed("张三"), "张三");
        assert_eq!(parsed("欧阳娜娜"), "欧阳娜娜");
    }

    #[test]
    fn surrounding_whitespace_is_trimmed_and_inner_runs_collapse() {
        assert_eq!(parsed("  张三 \u{3000}"), "张三");
        assert_eq!(parsed("John \t  Smith"), "John Smith");
    }

    #[test]
    fn minority_names_with_a_middle_dot_are_accepted() {
        assert_eq!(parsed("阿卜杜·热合曼"), "阿卜杜·热合曼");
        assert_eq!(parsed("买买提·艾力·吐尔逊"), "买买提·艾力·吐尔逊");
    }

    #[test]
    fn look_alike_dots_and_spaces_around_them_are_normalised() {
        assert_eq!(parsed("阿卜杜•热合曼"), "阿卜杜·热合曼");
        assert_eq!(parsed("阿卜杜・热合曼"), "阿卜杜·热合曼");
        assert_eq!(parsed("阿卜杜 · 热合曼"), "阿卜杜·热合曼");
    }

    #[test]
    fn names_in_other_scripts_and_latin_punctuation_are_accepted() {
        assert_eq!(parsed("Mary-Jane O'Neil"), "Mary-Jane O'Neil");
        assert_eq!(parsed("J. R. Smith"), "J. R. Smith");
        assert_eq!(parsed("Jose\u{301}"), "Jose\u{301}");
        assert_eq!(parsed("ئابدۇرېھىم"), "ئابدۇرېھىم");
        // Chinese numerals are ordinary characters in names.
        assert_eq!(parsed("张三"), "张三");
        assert_eq!(parsed("王五一"), "王五一");
    }

    #[test]
    fn an_empty_or_blank_name_is_refused() {
        assert_eq!(PersonName::parse(""), Err(PersonNameError::Empty));
        assert_eq!(
            PersonName::parse(" \u{3000}\t"),
            Err(PersonNameError::Empty)
        );
        assert_eq!(
            PersonName::parse("").unwrap_err().code(),
            "person_name_empty"
        );
    }

    #[test]
    fn digits_are_refused_in_any_width() {
        assert_eq!(PersonName::parse("张3"), Err(PersonNameError::Characters));
        assert_eq!(PersonName::parse("张３"), Err(PersonNameError::Characters));
    }

    #[test]
    fn control_characters_and_symbols_are_refused() {
        for input in [
            "张\u{0}三",
            "张\u{7}三",
            "张\u{200B}三",
            "张三😀",
            "<b>张三</b>",
            "张@三",
        ] {
            assert_eq!(
                PersonName::parse(input),
                Err(PersonNameError::Characters),
                "{input:?}"
            );
        }
    }

    #[test]
    fn a_name_must_start_with_a_letter_and_not_end_with_a_separator() {
        for input in ["·热合曼", "阿卜杜·", "-张三", "张三-", "·", "'"] {
            assert_eq!(
                PersonName::parse(input),
                Err(PersonNameError::Characters),
                "{input:?}"
            );
        }
    }

    #[test]
    fn the_length_limit_counts_characters_not_bytes() {
        let fifty = "张".repeat(50);
        assert_eq!(fifty.len(), 150);
        assert_eq!(parsed(&fifty), fifty);
        let fifty_one = "张".repeat(51);
        assert_eq!(PersonName::parse(&fifty_one), Err(PersonNameError::TooLong));
        assert_eq!(PersonNameError::TooLong.code(), "person_name_too_long");
    }

    #[test]
    fn kangxi_radicals_that_only_look_like_characters_are_refused() {
        // U+2F00 "⼀" is a symbol that PDF copy-paste produces instead of
        // U+4E00 "一"; storing it would make the name match nothing.
        assert_eq!(
            PersonName::parse("王\u{2F00}"),
            Err(PersonNameError::Characters)
        );
    }

    #[test]
    fn a_single_character_name_is_allowed() {
        assert_eq!(parsed("张"), "张");
    }

    #[test]
    fn the_mask_shows_only_the_first_character() {
        assert_eq!(PersonName::parse("张三丰").unwrap().masked(), "张**");
        assert_eq!(PersonName::parse("张三").unwrap().masked(), "张*");
        assert_eq!(
            PersonName::parse("阿卜杜·热合曼").unwrap().masked(),
            "阿******"
        );
        assert_eq!(PersonName::parse("张").unwrap().masked(), "*");
    }

    #[test]
    fn debug_never_shows_the_full_name() {
        let name = PersonName::parse("张三丰").unwrap();
        let debug = format!("{name:?}");
        assert!(!debug.contains("三丰"), "{debug}");
        assert_eq!(debug, "PersonName(\"张**\")");
    }

    #[test]
    fn every_error_has_a_code_and_a_chinese_message() {
        assert_eq!(PersonNameError::Characters.code(), "person_name_characters");
        for err in [
            PersonNameError::Empty,
            PersonNameError::TooLong,
            PersonNameError::Characters,
        ] {
            assert!(err.message_zh().contains("姓名"));
        }
    }

    #[test]
    fn serde_round_trips_the_normalised_name() {
        let name: PersonName = serde_json::from_str("\" 阿卜杜 • 热合曼 \"").unwrap();
        assert_eq!(serde_json::to_string(&name).unwrap(), "\"阿卜杜·热合曼\"");
        let err = serde_json::from_str::<PersonName>("\"张3\"").unwrap_err();
        assert!(err.to_string().contains("not allowed"), "{err}");
    }

    #[test]
    fn the_schema_limits_the_length() {
        let schema = serde_json::to_value(<PersonName as utoipa::PartialSchema>::schema()).unwrap();
        assert_eq!(schema["type"], "string");
        assert_eq!(schema["maxLength"], 50);
        assert_eq!(schema["examples"][0], "张三");
    }

    proptest! {
        #[test]
        fn masking_preserves_the_length_in_characters(input in "[\u{4E00}-\u{9FFF}]{1,50}") {
            let name = PersonName::parse(&input).unwrap();
            prop_assert_eq!(name.as_str(), input.as_str());
            prop_assert_eq!(name.masked().chars().count(), input.chars().count());
        }

        #[test]
        fn parsing_is_idempotent(input in "\\PC{0,60}") {
            if let Ok(name) = PersonName::parse(&input) {
                prop_assert!(name.as_str().chars().count() <= MAX_CHARS);
                let again = PersonName::parse(name.as_str()).unwrap();
                prop_assert_eq!(again, name);
            }
        }
    }
}

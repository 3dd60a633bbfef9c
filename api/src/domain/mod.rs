//! The value types everything else is built from: the personal data members submit (ID
//! numbers, phone numbers, bank cards, names, sex), [`Money`] (the only money type), [`Role`],
//! and the working-day calendar ([`workdays`], whose holidays are data).
//!
//! The bottom of the layout: uses nothing of the crate above it, does no I/O and reads no clock.
//!
//! Every type here is parsed once at the edge and is valid by construction, so
//! the rest of the backend never re-validates. The personal-data types print
//! only a masked form through `Debug` and have no `Display`, so that a stray
//! `{:?}` in a log line cannot leak an ID or card number.

mod bank_card;
mod id_number;
pub mod money;
mod person_name;
mod phone;
mod role;
mod sex;
pub mod workdays;

pub use bank_card::BankCardNumber;
pub use bank_card::BankCardNumberError;
pub use id_number::IdNumber;
pub use id_number::IdNumberError;
pub use money::Money;
pub use money::MoneyError;
pub use person_name::PersonName;
pub use person_name::PersonNameError;
pub use phone::PhoneNumber;
pub use phone::PhoneNumberError;
pub use role::Role;
pub use sex::Sex;

/// Common surface of every validation error in this module, so the HTTP edge
/// can turn any of them into the same JSON error body without matching on
/// each type.
pub trait DomainError: std::error::Error {
    /// Stable, snake_case machine code (for the mini-program and for logs).
    fn code(&self) -> &'static str;
    /// Message to show to the user, in Chinese.
    fn message_zh(&self) -> &'static str;
}

/// Maps full-width digits (`０`–`９`, U+FF10–U+FF19, as typed by many Chinese
/// input methods) to ASCII digits and leaves every other character alone.
pub(crate) fn fold_full_width_digit(c: char) -> char {
    match c {
        '\u{FF10}'..='\u{FF19}' => {
            // The range check above guarantees the offset is 0..=9.
            let offset = u32::from(c) - 0xFF10;
            char::from_digit(offset, 10).unwrap_or(c)
        }
        _ => c,
    }
}

/// Masks all but the first `keep_start` and last `keep_end` characters with
/// `*`, keeping the length. Shared by the number-like types.
pub(crate) fn mask_middle(value: &str, keep_start: usize, keep_end: usize) -> String {
    let len = value.chars().count();
    value
        .chars()
        .enumerate()
        .map(|(i, c)| {
            if i < keep_start || i + keep_end >= len {
                c
            } else {
                '*'
            }
        })
        .collect()
}

/// Builds the OpenAPI schema shared by the string-typed personal data types.
pub(crate) fn string_schema(
    description: &str,
    example: &str,
    pattern: Option<&str>,
) -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    utoipa::openapi::schema::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .description(Some(description))
        .pattern(pattern)
        .examples([example])
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_width_digits_fold_to_ascii_and_others_are_untouched() {
        let folded: String = "０１２３４５６７８９a１"
            .chars()
            .map(fold_full_width_digit)
            .collect();
        assert_eq!(folded, "0123456789a1");
    }

    /// A request body as an HTTP handler would declare it.
    #[derive(Debug, serde::Deserialize, serde::Serialize, utoipa::ToSchema)]
    struct EnrolRequest {
        name: PersonName,
        id_number: IdNumber,
        phone: PhoneNumber,
        bank_card: BankCardNumber,
        contribution: Money,
        sex: Sex,
    }

    const VALID_BODY: &str = r#"{
        "name": " 阿卜杜 · 热合曼 ",
        "id_number": "11010519491231002x",
        "phone": "+86 138 1234 5678",
        "bank_card": "6222 0212 3456 7890 128",
        "contribution": "120.5",
        "sex": "female"
    }"#;

    #[test]
    fn an_edge_type_deserialises_and_normalises_every_field() {
        let body: EnrolRequest = serde_json::from_str(VALID_BODY).unwrap();
        assert_eq!(body.name.as_str(), "阿卜杜·热合曼");
        assert_eq!(body.id_number.as_str(), "11010519491231002X");
        assert_eq!(body.phone.as_str(), "13812345678");
        assert_eq!(body.bank_card.as_str(), "6222021234567890128");
        assert_eq!(body.contribution.to_fen(), Ok(12_050));
        assert_eq!(body.sex, Sex::Female);
    }

    #[test]
    fn debugging_an_edge_type_leaks_none_of_the_personal_data() {
        let body: EnrolRequest = serde_json::from_str(VALID_BODY).unwrap();
        let debug = format!("{body:?}");
        for secret in ["热合曼", "19491231", "12345678", "021234567890"] {
            assert!(!debug.contains(secret), "{secret} in {debug}");
        }
    }

    #[test]
    fn a_bad_field_in_an_edge_type_names_the_problem() {
        let body = VALID_BODY.replace("11010519491231002x", "110105194912310021");
        let err = serde_json::from_str::<EnrolRequest>(&body).unwrap_err();
        assert!(err.to_string().contains("check character"), "{err}");
        assert!(!err.to_string().contains("110105194912310021"), "{err}");
    }

    #[test]
    fn the_openapi_document_references_every_domain_schema() {
        #[derive(utoipa::OpenApi)]
        #[openapi(components(schemas(EnrolRequest)))]
        struct Doc;

        let doc = serde_json::to_value(<Doc as utoipa::OpenApi>::openapi()).unwrap();
        let schemas = &doc["components"]["schemas"];
        let request = &schemas["EnrolRequest"]["properties"];
        assert_eq!(
            request["contribution"]["$ref"],
            "#/components/schemas/Money"
        );
        assert_eq!(
            request["id_number"]["$ref"],
            "#/components/schemas/IdNumber"
        );
        assert_eq!(schemas["Money"]["type"], "string");
        assert_eq!(schemas["Money"]["pattern"], r"^\d+\.\d{2}$");
        for name in [
            "IdNumber",
            "PhoneNumber",
            "BankCardNumber",
            "PersonName",
            "Sex",
        ] {
            assert!(schemas.get(name).is_some(), "{name} missing from {schemas}");
        }
    }

    #[test]
    fn masking_keeps_the_ends_and_the_length() {
        assert_eq!(mask_middle("1234567890", 2, 3), "12*****890");
        assert_eq!(mask_middle("张三丰", 1, 0), "张**");
        assert_eq!(mask_middle("", 1, 1), "");
    }
}

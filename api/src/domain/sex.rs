//! Sex as recorded on a resident ID card.

use serde::{Deserialize, Serialize};

/// Sex as recorded on a mainland resident ID card (the 17th digit of the ID
/// number: odd is male, even is female).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Sex {
    /// 男
    Male,
    /// 女
    Female,
}

impl Sex {
    /// The wire name (`"male"` / `"female"`), identical to the serde form.
    pub fn as_str(self) -> &'static str {
        match self {
            Sex::Male => "male",
            Sex::Female => "female",
        }
    }

    /// The Chinese label shown to users (`男` / `女`).
    pub fn label_zh(self) -> &'static str {
        match self {
            Sex::Male => "男",
            Sex::Female => "女",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sex_serialises_as_snake_case_and_round_trips() {
        assert_eq!(serde_json::to_string(&Sex::Male).unwrap(), "\"male\"");
        assert_eq!(serde_json::to_string(&Sex::Female).unwrap(), "\"female\"");
        let back: Sex = serde_json::from_str("\"female\"").unwrap();
        assert_eq!(back, Sex::Female);
        assert!(serde_json::from_str::<Sex>("\"Female\"").is_err());
    }

    #[test]
    fn sex_has_stable_names_and_chinese_labels() {
        assert_eq!(Sex::Male.as_str(), "male");
        assert_eq!(Sex::Female.label_zh(), "女");
    }

    #[test]
    fn sex_schema_lists_both_values() {
        let schema = serde_json::to_value(<Sex as utoipa::PartialSchema>::schema()).unwrap();
        assert_eq!(schema["enum"], serde_json::json!(["male", "female"]));
    }
}

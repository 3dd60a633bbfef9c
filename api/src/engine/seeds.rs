//! The seed schemes shipped with the repository (`api/schemes/*.toml`), parsed and validated.

use super::scheme::{SchemeDefinition, SchemeProblem};

/// The seed scheme files, by code.
pub const SEED_FILES: &[(&str, &str)] = &[
    (
        "nm-inpatient-2022",
        include_str!("../../schemes/nm-inpatient-2022.toml"),
    ),
    (
        "nm-inpatient-2025",
        include_str!("../../schemes/nm-inpatient-2025.toml"),
    ),
    (
        "nm-xinkang-2022",
        include_str!("../../schemes/nm-xinkang-2022.toml"),
    ),
    (
        "nm-xinkang-2025",
        include_str!("../../schemes/nm-xinkang-2025.toml"),
    ),
    ("yc-2022", include_str!("../../schemes/yc-2022.toml")),
    ("wj-2022", include_str!("../../schemes/wj-2022.toml")),
    ("hy-2021", include_str!("../../schemes/hy-2021.toml")),
];

/// Why a scheme file could not be loaded.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SchemeLoadError {
    /// The TOML does not parse into a [`SchemeDefinition`].
    #[error("scheme file `{file}` does not parse: {message}")]
    Parse {
        /// The file's code.
        file: String,
        /// The parser's message.
        message: String,
    },
    /// The file's `code` is not its file name.
    #[error("scheme file `{file}` declares code `{code}`")]
    CodeMismatch {
        /// The file's code.
        file: String,
        /// The declared code.
        code: String,
    },
    /// The definition fails validation.
    #[error("scheme `{file}` is invalid: {}", problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Invalid {
        /// The file's code.
        file: String,
        /// The problems.
        problems: Vec<SchemeProblem>,
    },
}

/// Parses a scheme definition from TOML text (without validating it).
pub fn parse_scheme_toml(text: &str) -> Result<SchemeDefinition, toml::de::Error> {
    toml::from_str(text)
}

/// The seed schemes, parsed and validated (hy-2021 is valid as an incomplete version).
pub fn seed_schemes() -> Result<Vec<SchemeDefinition>, SchemeLoadError> {
    SEED_FILES
        .iter()
        .map(|(file, text)| {
            let scheme = parse_scheme_toml(text).map_err(|e| SchemeLoadError::Parse {
                file: (*file).to_owned(),
                message: e.to_string(),
            })?;
            if scheme.code != *file {
                return Err(SchemeLoadError::CodeMismatch {
                    file: (*file).to_owned(),
                    code: scheme.code,
                });
            }
            scheme
                .validate()
                .map_err(|problems| SchemeLoadError::Invalid {
                    file: (*file).to_owned(),
                    problems,
                })?;
            Ok(scheme)
        })
        .collect()
}

//! The three secrets the service cannot run without — the token signing key, the personal-data
//! encryption key and the look-up hash key — checked at start-up.
//!
//! Demo mode generates them once into `{data_dir}/secrets.toml` (mode 0600), so data stays
//! readable across restarts. Production requires each to be configured and refuses to start
//! with a missing, short or well-known placeholder signing key.

use std::path::Path;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::settings::{Mode, Settings, SettingsError};

/// Secrets in force.
#[derive(Clone, Debug)]
pub struct Keys {
    pub jwt_secret: SecretString,
    pub encryption_key: SecretString,
    pub lookup_key: SecretString,
}

/// Values found in examples and templates; a production signing key must be none of them.
const PLACEHOLDERS: &[&str] = &[
    "change-me",
    "changeme",
    "secret",
    "example",
    "huzhu",
    "default",
];

/// Minimum length of the signing key, in bytes.
pub const MIN_JWT_SECRET_BYTES: usize = 32;

#[derive(Serialize, Deserialize)]
struct GeneratedSecrets {
    jwt_secret: String,
    encryption_key: String,
    lookup_key: String,
}

fn random_base64() -> String {
    let bytes: [u8; 32] = rand::random();
    STANDARD.encode(bytes)
}

/// Whether `secret` is acceptable as a production signing key.
pub fn check_signing_key(secret: &str) -> Result<(), String> {
    let lower = secret.to_ascii_lowercase();
    if secret.len() < MIN_JWT_SECRET_BYTES {
        return Err(format!(
            "auth.jwt_secret must be at least {MIN_JWT_SECRET_BYTES} bytes"
        ));
    }
    if PLACEHOLDERS.iter().any(|p| lower.contains(p)) {
        return Err("auth.jwt_secret is a default/placeholder value: generate a random one (e.g. `openssl rand -base64 48`)".into());
    }
    Ok(())
}

fn check_key32(name: &str, value: &SecretString) -> Result<(), SettingsError> {
    match STANDARD.decode(value.expose_secret().trim()) {
        Ok(bytes) if bytes.len() == 32 => Ok(()),
        _ => Err(SettingsError::Invalid(format!(
            "{name} must be the base64 encoding of exactly 32 bytes"
        ))),
    }
}

fn load_or_generate(data_dir: &Path) -> Result<GeneratedSecrets, SettingsError> {
    let path = data_dir.join("secrets.toml");
    let io = |e: std::io::Error| SettingsError::Invalid(format!("{}: {e}", path.display()));
    if path.exists() {
        let text = std::fs::read_to_string(&path).map_err(io)?;
        return toml::from_str(&text)
            .map_err(|e| SettingsError::Invalid(format!("{}: {e}", path.display())));
    }
    std::fs::create_dir_all(data_dir).map_err(io)?;
    let generated = GeneratedSecrets {
        jwt_secret: random_base64(),
        encryption_key: random_base64(),
        lookup_key: random_base64(),
    };
    let text = toml::to_string(&generated)
        .map_err(|e| SettingsError::Invalid(format!("secrets.toml: {e}")))?;
    let header = "# Generated on first start of the demo. Keep it: it decrypts the personal data in this directory.\n";
    write_private(&path, &format!("{header}{text}")).map_err(io)?;
    Ok(generated)
}

#[cfg(unix)]
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(contents.as_bytes())
}

#[cfg(not(unix))]
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    std::fs::write(path, contents)
}

/// Resolves the keys for `settings`, generating demo keys when allowed.
pub fn resolve(settings: &Settings) -> Result<Keys, SettingsError> {
    let configured = (
        settings.auth.jwt_secret.clone(),
        settings.pii.encryption_key.clone(),
        settings.pii.lookup_key.clone(),
    );
    let keys = match (settings.effective_mode(), configured) {
        (_, (Some(jwt), Some(enc), Some(lookup))) => Keys {
            jwt_secret: jwt,
            encryption_key: enc,
            lookup_key: lookup,
        },
        (Mode::Production, (jwt, enc, lookup)) => {
            let missing: Vec<&str> = [
                ("auth.jwt_secret", jwt.is_none()),
                ("pii.encryption_key", enc.is_none()),
                ("pii.lookup_key", lookup.is_none()),
            ]
            .into_iter()
            .filter_map(|(name, absent)| absent.then_some(name))
            .collect();
            return Err(SettingsError::Invalid(format!(
                "production mode needs these secrets configured: {}",
                missing.join(", ")
            )));
        }
        (Mode::Demo, (jwt, enc, lookup)) => {
            let generated = load_or_generate(&settings.data_dir)?;
            Keys {
                jwt_secret: jwt.unwrap_or_else(|| SecretString::from(generated.jwt_secret)),
                encryption_key: enc.unwrap_or_else(|| SecretString::from(generated.encryption_key)),
                lookup_key: lookup.unwrap_or_else(|| SecretString::from(generated.lookup_key)),
            }
        }
    };
    if settings.effective_mode() == Mode::Production {
        check_signing_key(keys.jwt_secret.expose_secret()).map_err(SettingsError::Invalid)?;
        if settings.wechat.secret.is_none() {
            return Err(SettingsError::Invalid(
                "production mode needs wechat.secret (and wechat.appid)".into(),
            ));
        }
    } else if keys.jwt_secret.expose_secret().len() < MIN_JWT_SECRET_BYTES {
        return Err(SettingsError::Invalid(format!(
            "auth.jwt_secret must be at least {MIN_JWT_SECRET_BYTES} bytes"
        )));
    }
    check_key32("pii.encryption_key", &keys.encryption_key)?;
    check_key32("pii.lookup_key", &keys.lookup_key)?;
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_short_signing_key_is_refused() {
        assert!(check_signing_key("too-short").is_err());
    }

    #[test]
    fn a_placeholder_signing_key_is_refused_even_when_long() {
        assert!(check_signing_key("change-me-change-me-change-me-change-me").is_err());
    }

    #[test]
    fn a_random_signing_key_is_accepted() {
        assert!(check_signing_key(&random_base64()).is_ok());
    }

    #[test]
    fn demo_keys_are_generated_once_and_reused() {
        let dir = std::env::temp_dir().join(format!("huzhu-keys-{}", uuid::Uuid::new_v4()));
        let settings = Settings {
            data_dir: dir.clone(),
            ..Settings::default()
        };
        let first = resolve(&settings).expect("first");
        let second = resolve(&settings).expect("second");
        assert_eq!(
            first.jwt_secret.expose_secret(),
            second.jwt_secret.expose_secret()
        );
        let _ = std::fs::remove_dir_all(dir);
    }
}

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

use crate::auth::crypto::{CryptoError, FieldCipher, LookupHasher, PiiVault};
use crate::settings::{Mode, Settings, SettingsError};

/// Secrets in force.
#[derive(Clone, Debug)]
pub struct Keys {
    pub jwt_secret: SecretString,
    pub encryption_key: SecretString,
    pub lookup_key: SecretString,
    /// The key id the encryption key writes (`pii.key_id`).
    pub key_id: u32,
    /// Retired encryption keys by id, still decrypting until `huzhu admin rotate-pii` ran.
    pub previous_keys: Vec<(u32, SecretString)>,
}

/// Values found in examples and templates; no production key may contain one.
const PLACEHOLDERS: &[&str] = &[
    "change-me",
    "changeme",
    "change_me",
    "replace-me",
    "secret",
    "example",
    "huzhu",
    "default",
    "password",
    "dummy",
    "placeholder",
    "your-key",
    "xxxxxxxx",
];

/// Every key that appears in this repository (tests, scripts, examples): public, so never a
/// production key. A new test key goes here too (`keys_in_the_repository_are_listed` in the
/// security suite looks for base64 keys in the sources).
pub const REPOSITORY_TEST_KEYS: &[&str] = &[
    // api/src/auth/jwt.rs tests
    "0123456789abcdef0123456789abcdef",
    "another-key-another-key-another-key",
    // api/src/auth/crypto.rs tests: [7; 32] and [9; 32]
    "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc=",
    "CQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQkJCQk=",
    // scripts/check-compose
    "Y2hlY2stY29tcG9zZS1kdW1teS0zMi1ieXRlcy0wMDA=",
    "Y2hlY2stY29tcG9zZS1kdW1teS0zMi1ieXRlcy0wMDE=",
    "Y2hlY2stY29tcG9zZS1kdW1teS0zMi1ieXRlcy0wMDI=",
    // tests/tests/security/jwt.rs
    "8J+UkSB0aGUgc2VjdXJpdHkgc3VpdGUncyBqd3Qga2V5IPCflJE=",
];

/// Minimum length of the signing key, in bytes.
pub const MIN_JWT_SECRET_BYTES: usize = 32;

/// Minimum estimated entropy of a production key, in bits.
pub const MIN_KEY_BITS: f64 = 128.0;

/// An estimate of the entropy of `bytes`: the Shannon entropy of its symbol frequencies times
/// its length. It cannot see structure (`abcdabcd…`) beyond repeated symbols, so it is a floor
/// for guessable keys, not a proof of randomness: 32 × `a` is 0 bits, a 32-byte random key
/// about 155, a 64-character base64 text about 350.
pub fn estimated_bits(bytes: &[u8]) -> f64 {
    if bytes.is_empty() {
        return 0.0;
    }
    let mut counts = [0usize; 256];
    for &b in bytes {
        counts[usize::from(b)] += 1;
    }
    let n = bytes.len() as f64;
    let per_symbol: f64 = counts
        .iter()
        .filter(|&&c| c > 0)
        .map(|&c| {
            let p = c as f64 / n;
            -p * p.log2()
        })
        .sum();
    per_symbol * n
}

/// Why a production key is refused, naming the setting; `material` is what the key decodes to
/// (the raw bytes of a base64 key, the text of the signing key).
fn check_strength(name: &str, text: &str, material: &[u8]) -> Result<(), String> {
    let trimmed = text.trim();
    if REPOSITORY_TEST_KEYS.contains(&trimmed) {
        return Err(format!(
            "{name} is a test key published in the Huzhu repository: generate your own with `huzhu admin gen-secrets`"
        ));
    }
    let lower = String::from_utf8_lossy(material).to_ascii_lowercase();
    let text_lower = trimmed.to_ascii_lowercase();
    if PLACEHOLDERS
        .iter()
        .any(|p| lower.contains(p) || text_lower.contains(p))
    {
        return Err(format!(
            "{name} is a default/placeholder value: generate a random one with `huzhu admin gen-secrets`"
        ));
    }
    if material.iter().all(|&b| b == 0) {
        return Err(format!(
            "{name} is all zeros: generate a random one with `huzhu admin gen-secrets`"
        ));
    }
    let bits = estimated_bits(material);
    if bits < MIN_KEY_BITS {
        return Err(format!(
            "{name} has too little entropy (about {bits:.0} bits estimated, at least {MIN_KEY_BITS:.0} needed): generate a random one with `huzhu admin gen-secrets`"
        ));
    }
    Ok(())
}

/// Refuses production keys that are weak, published or shared between purposes, naming the
/// setting: low entropy, known placeholders, test keys from this repository, all-zero keys, and
/// one key used for two jobs (`pii.encryption_key` equal to `pii.lookup_key`, or either equal to
/// `auth.jwt_secret`).
pub fn check_production_keys(keys: &Keys) -> Result<(), String> {
    check_signing_key(keys.jwt_secret.expose_secret())?;
    for (name, value) in [
        ("pii.encryption_key", &keys.encryption_key),
        ("pii.lookup_key", &keys.lookup_key),
    ] {
        let text = value.expose_secret();
        let bytes = STANDARD
            .decode(text.trim())
            .map_err(|_| format!("{name} must be the base64 encoding of exactly 32 bytes"))?;
        check_strength(name, text, &bytes)?;
    }
    let (enc, lookup, jwt) = (
        keys.encryption_key.expose_secret().trim(),
        keys.lookup_key.expose_secret().trim(),
        keys.jwt_secret.expose_secret().trim(),
    );
    if enc == lookup {
        return Err(
            "pii.encryption_key and pii.lookup_key are the same key: each purpose needs its own"
                .into(),
        );
    }
    if jwt == enc || jwt == lookup {
        return Err(
            "auth.jwt_secret is also a pii key: the signing key must be a key of its own".into(),
        );
    }
    Ok(())
}

/// Three fresh keys as `HUZHU_*` environment lines (`huzhu admin gen-secrets`): a 48-byte
/// signing key and two 32-byte PII keys, base64, from the operating system's generator.
pub fn generate_env_lines() -> String {
    let jwt: [u8; 48] = rand::random();
    format!(
        "HUZHU_AUTH__JWT_SECRET={}\nHUZHU_PII__ENCRYPTION_KEY={}\nHUZHU_PII__LOOKUP_KEY={}\n",
        STANDARD.encode(jwt),
        random_base64(),
        random_base64()
    )
}

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
    if secret.len() < MIN_JWT_SECRET_BYTES {
        return Err(format!(
            "auth.jwt_secret must be at least {MIN_JWT_SECRET_BYTES} bytes"
        ));
    }
    check_strength("auth.jwt_secret", secret, secret.as_bytes())
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
    let mut keys = match (settings.effective_mode(), configured) {
        (_, (Some(jwt), Some(enc), Some(lookup))) => Keys {
            jwt_secret: jwt,
            encryption_key: enc,
            lookup_key: lookup,
            key_id: 0,
            previous_keys: Vec::new(),
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
                key_id: 0,
                previous_keys: Vec::new(),
            }
        }
    };
    keys.key_id = settings.pii.key_id;
    keys.previous_keys = previous_keys(settings)?;
    check_key32("pii.encryption_key", &keys.encryption_key)?;
    check_key32("pii.lookup_key", &keys.lookup_key)?;
    if settings.effective_mode() == Mode::Production {
        check_production_keys(&keys).map_err(SettingsError::Invalid)?;
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
    Ok(keys)
}

/// The personal-data vault for `keys`: the current encryption key under its id, the retired
/// ones under theirs, and the look-up key.
pub fn vault(keys: &Keys) -> Result<PiiVault, SettingsError> {
    let invalid = |name: &str, e: CryptoError| SettingsError::Invalid(format!("{name}: {e}"));
    let cipher =
        FieldCipher::from_base64_with_version(keys.encryption_key.expose_secret(), keys.key_id)
            .map_err(|e| invalid("pii.encryption_key", e))?;
    let hasher = LookupHasher::from_base64(keys.lookup_key.expose_secret())
        .map_err(|e| invalid("pii.lookup_key", e))?;
    let previous = keys
        .previous_keys
        .iter()
        .map(|(id, key)| {
            FieldCipher::from_base64_with_version(key.expose_secret(), *id)
                .map_err(|e| invalid(&format!("pii.previous_keys.{id}"), e))
        })
        .collect::<Result<_, _>>()?;
    Ok(PiiVault::with_previous(cipher, hasher, previous))
}

/// `pii.previous_keys` as (id, key), checked: numeric ids other than `pii.key_id`, each key
/// base64 of 32 bytes. Their strength is not judged: a weak old key is exactly what rotation
/// retires.
fn previous_keys(settings: &Settings) -> Result<Vec<(u32, SecretString)>, SettingsError> {
    let current = settings.pii.key_id;
    if current == 0 {
        return Err(SettingsError::Invalid(
            "pii.key_id must be 1 or more".into(),
        ));
    }
    let mut out = Vec::new();
    for (id, key) in &settings.pii.previous_keys {
        let name = format!("pii.previous_keys.{id}");
        let id: u32 = id.parse().ok().filter(|&n| n > 0).ok_or_else(|| {
            SettingsError::Invalid(format!(
                "{name}: the id of a previous key is its key id, a whole number from 1"
            ))
        })?;
        if id == current {
            return Err(SettingsError::Invalid(format!(
                "{name} has the id of the current key (pii.key_id = {current}): give the new key a new id"
            )));
        }
        check_key32(&name, key)?;
        out.push((id, key.clone()));
    }
    Ok(out)
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

    fn production_keys(jwt: &str, enc: &str, lookup: &str) -> Keys {
        Keys {
            jwt_secret: SecretString::from(jwt.to_owned()),
            encryption_key: SecretString::from(enc.to_owned()),
            lookup_key: SecretString::from(lookup.to_owned()),
            key_id: 1,
            previous_keys: Vec::new(),
        }
    }

    #[test]
    fn generated_keys_pass_the_production_checks() {
        let lines = generate_env_lines();
        let value = |name: &str| {
            lines
                .lines()
                .find_map(|l| l.strip_prefix(&format!("{name}=")))
                .unwrap()
                .to_owned()
        };
        let keys = production_keys(
            &value("HUZHU_AUTH__JWT_SECRET"),
            &value("HUZHU_PII__ENCRYPTION_KEY"),
            &value("HUZHU_PII__LOOKUP_KEY"),
        );
        assert_eq!(check_production_keys(&keys), Ok(()));
    }

    #[test]
    fn weak_published_zero_and_shared_keys_are_refused_naming_the_setting() {
        let good = || random_base64();
        let zero = STANDARD.encode([0u8; 32]);
        let cases = [
            (
                production_keys(&"a".repeat(32), &good(), &good()),
                "auth.jwt_secret",
            ),
            (
                production_keys("0123456789abcdef0123456789abcdef", &good(), &good()),
                "auth.jwt_secret",
            ),
            (
                production_keys(&good(), &zero, &good()),
                "pii.encryption_key",
            ),
            (
                production_keys(&good(), &good(), REPOSITORY_TEST_KEYS[3]),
                "pii.lookup_key",
            ),
            (
                production_keys(&good(), &STANDARD.encode([b'a'; 32]), &good()),
                "pii.encryption_key",
            ),
        ];
        for (keys, setting) in cases {
            let err = check_production_keys(&keys).unwrap_err();
            assert!(err.contains(setting), "{err}");
        }
        let same = good();
        let err = check_production_keys(&production_keys(&good(), &same, &same)).unwrap_err();
        assert!(
            err.contains("pii.encryption_key and pii.lookup_key"),
            "{err}"
        );
    }

    #[test]
    fn the_entropy_estimate_separates_repeated_from_random() {
        assert_eq!(estimated_bits(&[b'a'; 32]), 0.0);
        let random: [u8; 32] = rand::random();
        assert!(estimated_bits(&random) > 128.0);
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

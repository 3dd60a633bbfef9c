//! Our own tokens (HS256): issuer, audience, short expiry, subject, role, organisation scope.

use std::sync::Arc;

use chrono::Utc;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, errors::ErrorKind};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};

use crate::domain::Role;

/// The claims of a Huzhu token.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    pub iss: String,
    pub aud: String,
    /// Public id of the member or staff account.
    pub sub: String,
    pub iat: i64,
    pub exp: i64,
    pub role: Role,
    /// Public id of the staff member's organisation (absent for members).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub org: Option<String>,
    /// Materialised path of that organisation: the subtree the caller may see.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// The account's token generation when this was issued: a later bump (disabled, role or
    /// organisation changed, signed out everywhere) refuses it. Tokens from before
    /// generations existed read as 0, the generation every account started with.
    #[serde(default)]
    pub generation: i64,
}

/// Clock skew tolerated between replicas (and for `exp`, `nbf`, `iat`), in seconds.
pub const LEEWAY_SECONDS: u64 = 5;

/// How many verified tokens a replica keeps (a few MB at most).
const VERIFIED_KEPT: u64 = 10_000;

/// Why a token was not accepted.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TokenError {
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid")]
    Invalid,
}

/// Keys and rules for issuing and checking tokens.
#[derive(Clone)]
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
    issuer: String,
    audience: String,
    ttl_seconds: i64,
    /// Tokens whose signature, issuer, audience, `nbf` and `iat` were checked, by their exact
    /// text: a page load is a burst of requests with one token, and only its expiry can change
    /// (HMAC, base64 and JSON were 3.5 % of a list request's CPU, BENCHMARKS.md). Whether the
    /// account still accepts the token is asked on every request, after this.
    verified: moka::sync::Cache<String, Arc<Claims>>,
}

impl std::fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtKeys")
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .finish_non_exhaustive()
    }
}

impl JwtKeys {
    /// Keys from a secret of at least 32 bytes (checked by the caller at start-up).
    pub fn new(secret: &SecretString, issuer: &str, audience: &str, ttl_seconds: i64) -> Self {
        let bytes = secret.expose_secret().as_bytes();
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[audience]);
        validation.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
        validation.leeway = LEEWAY_SECONDS;
        // A token not valid yet is refused: `nbf` is ours to check (jsonwebtoken leaves it off).
        validation.validate_nbf = true;
        Self {
            encoding: EncodingKey::from_secret(bytes),
            decoding: DecodingKey::from_secret(bytes),
            validation,
            issuer: issuer.to_owned(),
            audience: audience.to_owned(),
            ttl_seconds,
            verified: moka::sync::Cache::builder()
                .max_capacity(VERIFIED_KEPT)
                .time_to_live(std::time::Duration::from_secs(
                    ttl_seconds.clamp(1, 24 * 3600) as u64 + LEEWAY_SECONDS,
                ))
                .build(),
        }
    }

    /// Seconds a new token lives.
    pub fn ttl_seconds(&self) -> i64 {
        self.ttl_seconds
    }

    /// Issues a token for a subject.
    pub fn issue(
        &self,
        subject: &str,
        role: Role,
        organisation: Option<(&str, &str)>,
        generation: i64,
    ) -> Result<String, jsonwebtoken::errors::Error> {
        let now = Utc::now().timestamp();
        let claims = Claims {
            iss: self.issuer.clone(),
            aud: self.audience.clone(),
            sub: subject.to_owned(),
            iat: now,
            exp: now + self.ttl_seconds,
            role,
            org: organisation.map(|(pid, _)| pid.to_owned()),
            scope: organisation.map(|(_, path)| path.to_owned()),
            generation,
        };
        jsonwebtoken::encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
    }

    /// Checks the algorithm (HS256 only: `none` and RS/ES headers are refused), signature,
    /// issuer, audience, expiry, and that neither `nbf` nor `iat` lies in the future beyond
    /// [`LEEWAY_SECONDS`] (a token "issued tomorrow" was not issued by us).
    pub fn verify(&self, token: &str) -> Result<Claims, TokenError> {
        self.verify_at(token, Utc::now().timestamp())
    }

    /// [`Self::verify`] with `now` for the expiry of a token verified before (a fresh
    /// verification reads the clock itself).
    fn verify_at(&self, token: &str, now: i64) -> Result<Claims, TokenError> {
        if let Some(claims) = self.verified.get(token) {
            // jsonwebtoken's rule: expired once `exp` is more than the leeway in the past.
            if claims.exp < now - LEEWAY_SECONDS as i64 {
                self.verified.invalidate(token);
                return Err(TokenError::Expired);
            }
            return Ok(Claims::clone(&claims));
        }
        let claims = jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation)
            .map(|data| data.claims)
            .map_err(|e| match e.kind() {
                ErrorKind::ExpiredSignature => TokenError::Expired,
                _ => TokenError::Invalid,
            })?;
        if claims.iat > Utc::now().timestamp() + LEEWAY_SECONDS as i64 {
            return Err(TokenError::Invalid);
        }
        self.verified
            .insert(token.to_owned(), Arc::new(claims.clone()));
        Ok(claims)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(ttl: i64) -> JwtKeys {
        JwtKeys::new(
            &SecretString::from("0123456789abcdef0123456789abcdef"),
            "huzhu",
            "huzhu-miniapp",
            ttl,
        )
    }

    #[test]
    fn an_issued_token_verifies_with_its_role_and_scope() {
        let k = keys(60);
        let token = k
            .issue("p-1", Role::UnionReviewer, Some(("org-1", "/1/2/")), 3)
            .expect("issue");
        let claims = k.verify(&token).expect("verify");
        assert_eq!(claims.sub, "p-1");
        assert_eq!(claims.role, Role::UnionReviewer);
        assert_eq!(claims.scope.as_deref(), Some("/1/2/"));
        assert_eq!(claims.generation, 3);
    }

    #[test]
    fn a_kept_token_is_still_refused_once_expired_and_kept_by_its_exact_text() {
        let k = keys(60);
        let token = k.issue("p-1", Role::Member, None, 0).expect("issue");
        let now = Utc::now().timestamp();
        let first = k.verify_at(&token, now).expect("verify");
        assert_eq!(k.verify_at(&token, now + 30), Ok(first.clone()), "kept");
        // Within the leeway past `exp`, as jsonwebtoken; beyond it, expired.
        assert_eq!(k.verify_at(&token, first.exp + 5), Ok(first.clone()));
        assert_eq!(
            k.verify_at(&token, first.exp + 6),
            Err(TokenError::Expired),
            "a kept token expires as any other"
        );
        // Another text is another token: its signature is checked, whatever was kept.
        let (head, signature) = token.rsplit_once('.').unwrap();
        let first_char = if signature.starts_with('A') { "B" } else { "A" };
        let forged = format!("{first_char}{}", &signature[1..]);
        let k = keys(60);
        k.verify(&token).expect("kept");
        assert_eq!(
            k.verify(&format!("{head}.{forged}")),
            Err(TokenError::Invalid)
        );
    }

    #[test]
    fn an_expired_token_is_refused_as_expired() {
        let k = keys(-60);
        let token = k.issue("p-1", Role::Member, None, 0).expect("issue");
        assert_eq!(k.verify(&token), Err(TokenError::Expired));
    }

    #[test]
    fn a_token_signed_with_another_key_is_invalid() {
        let other = JwtKeys::new(
            &SecretString::from("another-key-another-key-another-key"),
            "huzhu",
            "huzhu-miniapp",
            60,
        );
        let token = other.issue("p-1", Role::Admin, None, 0).expect("issue");
        assert_eq!(keys(60).verify(&token), Err(TokenError::Invalid));
    }

    /// Signs arbitrary claims with the test key (HS256).
    fn signed(claims: &serde_json::Value) -> String {
        jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            claims,
            &EncodingKey::from_secret(b"0123456789abcdef0123456789abcdef"),
        )
        .expect("encode")
    }

    fn claims_at(iat: i64, nbf: Option<i64>) -> serde_json::Value {
        let now = Utc::now().timestamp();
        let mut claims = serde_json::json!({
            "iss": "huzhu", "aud": "huzhu-miniapp", "sub": "p-1", "role": "member",
            "iat": iat, "exp": now + 600,
        });
        if let Some(nbf) = nbf {
            claims["nbf"] = nbf.into();
        }
        claims
    }

    #[test]
    fn a_token_not_valid_before_a_future_time_is_invalid() {
        let now = Utc::now().timestamp();
        assert_eq!(
            keys(60).verify(&signed(&claims_at(now, Some(now + 120)))),
            Err(TokenError::Invalid)
        );
        assert!(keys(60).verify(&signed(&claims_at(now, Some(now)))).is_ok());
    }

    #[test]
    fn a_token_issued_in_the_future_is_invalid_beyond_the_leeway() {
        let now = Utc::now().timestamp();
        assert_eq!(
            keys(60).verify(&signed(&claims_at(now + 120, None))),
            Err(TokenError::Invalid)
        );
        // Within the leeway (replicas' clocks differ by a second or two) it passes.
        assert!(keys(60).verify(&signed(&claims_at(now + 2, None))).is_ok());
    }

    #[test]
    fn a_token_for_another_audience_is_invalid() {
        let other = JwtKeys::new(
            &SecretString::from("0123456789abcdef0123456789abcdef"),
            "huzhu",
            "someone-else",
            60,
        );
        let token = other.issue("p-1", Role::Admin, None, 0).expect("issue");
        assert_eq!(keys(60).verify(&token), Err(TokenError::Invalid));
    }
}

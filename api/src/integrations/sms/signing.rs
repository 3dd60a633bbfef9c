//! Request signing for the SMS providers: Tencent Cloud API 3.0 (TC3-HMAC-SHA256), Aliyun RPC
//! (HMAC-SHA1, `SignatureVersion` 1.0) and Aliyun V3 (ACS3-HMAC-SHA256).
//!
//! Everything here is pure: no clock, no randomness, no I/O. Timestamps and nonces are
//! parameters, so the official test vectors can be reproduced byte for byte and callers decide
//! where time and randomness come from. Secrets are only ever fed to HMAC; none of the types here
//! print them (their `Debug` output redacts secrets and signatures).

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, KeyInit, Mac};
use sha1::Sha1;
use sha2::{Digest, Sha256};

// ---------------------------------------------------------------------------------------------
// Shared primitives
// ---------------------------------------------------------------------------------------------

/// Lower-case hex SHA-256 of `data`.
fn sha256_hex(data: &[u8]) -> String {
    hex::encode(Sha256::digest(data))
}

/// Brings a key of any length to the HMAC block size exactly as RFC 2104 does (hash it when it
/// is longer than a block, then pad with zeros), so the infallible `KeyInit::new` can be used
/// instead of `new_from_slice`, whose `Result` can never be an error for HMAC.
fn hmac_block_key<const BLOCK: usize>(
    key: &[u8],
    hash: impl FnOnce(&[u8]) -> Vec<u8>,
) -> [u8; BLOCK] {
    let mut block = [0u8; BLOCK];
    if key.len() <= BLOCK {
        block[..key.len()].copy_from_slice(key);
    } else {
        let digest = hash(key);
        let n = digest.len().min(BLOCK);
        block[..n].copy_from_slice(&digest[..n]);
    }
    block
}

/// HMAC-SHA256 of `data` under `key` (any length).
fn hmac_sha256(key: &[u8], data: &[u8]) -> [u8; 32] {
    let block = hmac_block_key::<64>(key, |k| Sha256::digest(k).to_vec());
    let mut mac = Hmac::<Sha256>::new(&block.into());
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// HMAC-SHA1 of `data` under `key` (any length).
fn hmac_sha1(key: &[u8], data: &[u8]) -> [u8; 20] {
    let block = hmac_block_key::<64>(key, |k| Sha1::digest(k).to_vec());
    let mut mac = Hmac::<Sha1>::new(&block.into());
    mac.update(data);
    mac.finalize().into_bytes().into()
}

/// Percent-encodes `s` as both Aliyun signature schemes require: RFC 3986 unreserved characters
/// (`A–Z a–z 0–9 - _ . ~`) are kept, every other UTF-8 byte becomes `%XX` with upper-case hex.
///
/// This is what Aliyun's documentation obtains from Java's `URLEncoder` plus the replacements
/// `+`→`%20`, `*`→`%2A`, `%7E`→`~`: a space becomes `%20`, `*` becomes `%2A`, `~` stays, and a
/// literal `+` in the input becomes `%2B`.
#[must_use]
pub fn aliyun_percent_encode(s: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(s.len() * 3);
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(char::from(b));
        } else {
            out.push('%');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
    }
    out
}

/// `k=v&k=v` with keys and values percent-encoded and pairs sorted by encoded key, then value
/// (byte order), as both Aliyun schemes canonicalise their parameters.
fn aliyun_canonical_query(params: &[(&str, &str)]) -> String {
    let mut encoded: Vec<(String, String)> = params
        .iter()
        .map(|(k, v)| (aliyun_percent_encode(k), aliyun_percent_encode(v)))
        .collect();
    encoded.sort();
    encoded
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

/// UTC calendar date (`YYYY-MM-DD`) of a Unix timestamp, total over all `i64` values
/// (Howard Hinnant's `civil_from_days`), so signing never has to fail on an odd clock.
fn utc_date(timestamp: i64) -> String {
    let days = i128::from(timestamp.div_euclid(86_400));
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097; // [0, 146096]
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365; // [0, 399]
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100); // [0, 365]
    let mp = (5 * doy + 2) / 153; // [0, 11], March-based
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i128::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

// ---------------------------------------------------------------------------------------------
// Tencent Cloud API 3.0: TC3-HMAC-SHA256
// ---------------------------------------------------------------------------------------------

const TC3_ALGORITHM: &str = "TC3-HMAC-SHA256";

/// A Tencent Cloud API 3.0 request to be signed with TC3-HMAC-SHA256 (always `POST /`, no query).
#[derive(Clone, Copy)]
pub struct Tc3Request<'a> {
    /// `SecretId` (goes into the `Credential` part of the Authorization header).
    pub secret_id: &'a str,
    /// `SecretKey` (only ever used as HMAC key material).
    pub secret_key: &'a str,
    /// Service name, the first label of the host: `sms`, `cvm`.
    pub service: &'a str,
    /// Host, e.g. `sms.tencentcloudapi.com`.
    pub host: &'a str,
    /// API action, e.g. `SendSms`.
    pub action: &'a str,
    /// API version, e.g. `2021-01-11`.
    pub version: &'a str,
    /// Region, sent as `X-TC-Region` when present (e.g. `ap-guangzhou`).
    pub region: Option<&'a str>,
    /// Unix timestamp in seconds; its UTC date goes into the credential scope.
    pub timestamp: i64,
    /// Content type, normally `application/json; charset=utf-8`.
    pub content_type: &'a str,
    /// The exact body bytes that will be sent.
    pub payload: &'a [u8],
}

impl fmt::Debug for Tc3Request<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tc3Request")
            .field("secret_id", &self.secret_id)
            .field("secret_key", &"<redacted>")
            .field("service", &self.service)
            .field("host", &self.host)
            .field("action", &self.action)
            .field("version", &self.version)
            .field("region", &self.region)
            .field("timestamp", &self.timestamp)
            .field("content_type", &self.content_type)
            .field("payload_len", &self.payload.len())
            .finish()
    }
}

/// The result of [`tc3_sign`]: headers to send plus the intermediate strings for diagnostics.
#[derive(Clone, PartialEq, Eq)]
pub struct Tc3Signed {
    /// Value of the `Authorization` header.
    pub authorization: String,
    /// Headers to send, in this order: `Authorization`, `Content-Type`, `Host`, `X-TC-Action`,
    /// `X-TC-Version`, `X-TC-Timestamp` and, when a region is given, `X-TC-Region`.
    pub headers: Vec<(&'static str, String)>,
    /// The canonical request that was hashed.
    pub canonical_request: String,
    /// The string that was signed.
    pub string_to_sign: String,
    /// Lower-case hex signature.
    pub signature: String,
}

impl fmt::Debug for Tc3Signed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tc3Signed")
            .field("authorization", &"<redacted>")
            .field("canonical_request", &self.canonical_request)
            .field("string_to_sign", &self.string_to_sign)
            .field("signature", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// Lower-case hex SHA-256 of a TC3 request body (`HashedRequestPayload`).
#[must_use]
pub fn tc3_payload_hash(payload: &[u8]) -> String {
    sha256_hex(payload)
}

/// Signs a Tencent Cloud API 3.0 `POST /` request with TC3-HMAC-SHA256, signing the headers
/// `content-type;host` as Tencent's published example does.
#[must_use]
pub fn tc3_sign(req: &Tc3Request) -> Tc3Signed {
    const SIGNED_HEADERS: &str = "content-type;host";
    let content_type = req.content_type.trim().to_ascii_lowercase();
    let host = req.host.trim().to_ascii_lowercase();
    let canonical_request = format!(
        "POST\n/\n\ncontent-type:{content_type}\nhost:{host}\n\n{SIGNED_HEADERS}\n{}",
        tc3_payload_hash(req.payload)
    );

    let date = utc_date(req.timestamp);
    let scope = format!("{date}/{}/tc3_request", req.service);
    let string_to_sign = format!(
        "{TC3_ALGORITHM}\n{}\n{scope}\n{}",
        req.timestamp,
        sha256_hex(canonical_request.as_bytes())
    );

    let secret_date = hmac_sha256(format!("TC3{}", req.secret_key).as_bytes(), date.as_bytes());
    let secret_service = hmac_sha256(&secret_date, req.service.as_bytes());
    let secret_signing = hmac_sha256(&secret_service, b"tc3_request");
    let signature = hex::encode(hmac_sha256(&secret_signing, string_to_sign.as_bytes()));

    let authorization = format!(
        "{TC3_ALGORITHM} Credential={}/{scope}, SignedHeaders={SIGNED_HEADERS}, Signature={signature}",
        req.secret_id
    );
    let mut headers = vec![
        ("Authorization", authorization.clone()),
        ("Content-Type", req.content_type.to_owned()),
        ("Host", req.host.to_owned()),
        ("X-TC-Action", req.action.to_owned()),
        ("X-TC-Version", req.version.to_owned()),
        ("X-TC-Timestamp", req.timestamp.to_string()),
    ];
    if let Some(region) = req.region {
        headers.push(("X-TC-Region", region.to_owned()));
    }

    Tc3Signed {
        authorization,
        headers,
        canonical_request,
        string_to_sign,
        signature,
    }
}

// ---------------------------------------------------------------------------------------------
// Aliyun RPC: HMAC-SHA1, SignatureVersion 1.0
// ---------------------------------------------------------------------------------------------

/// Aliyun RPC signature (HMAC-SHA1, `SignatureVersion=1.0`), Base64-encoded, to be sent as the
/// `Signature` parameter.
///
/// `params` are all request parameters, common ones included (`AccessKeyId`, `Timestamp`,
/// `SignatureNonce`, `SignatureMethod`, `SignatureVersion`, `Format`, `Version`, `Action`, …);
/// a `Signature` entry, if present, is ignored. `method` is `GET` or `POST`. The HMAC key is
/// `access_key_secret + "&"`.
#[must_use]
pub fn aliyun_rpc_signature(
    method: &str,
    params: &[(&str, &str)],
    access_key_secret: &str,
) -> String {
    let signed: Vec<(&str, &str)> = params
        .iter()
        .copied()
        .filter(|(k, _)| *k != "Signature")
        .collect();
    let string_to_sign = format!(
        "{}&{}&{}",
        method.to_ascii_uppercase(),
        aliyun_percent_encode("/"),
        aliyun_percent_encode(&aliyun_canonical_query(&signed))
    );
    let key = format!("{access_key_secret}&");
    BASE64.encode(hmac_sha1(key.as_bytes(), string_to_sign.as_bytes()))
}

// ---------------------------------------------------------------------------------------------
// Aliyun V3: ACS3-HMAC-SHA256
// ---------------------------------------------------------------------------------------------

const ACS3_ALGORITHM: &str = "ACS3-HMAC-SHA256";

/// An Aliyun V3 request to be signed with ACS3-HMAC-SHA256.
#[derive(Clone, Copy)]
pub struct Acs3Request<'a> {
    /// HTTP method, e.g. `POST`.
    pub method: &'a str,
    /// Host, e.g. `dysmsapi.aliyuncs.com`.
    pub host: &'a str,
    /// Path, `/` for RPC-style APIs; each segment is percent-encoded, `/` kept.
    pub path: &'a str,
    /// Query parameters, unencoded (they are encoded and sorted for signing).
    pub query: &'a [(&'a str, &'a str)],
    /// `x-acs-action`, e.g. `SendSms`.
    pub action: &'a str,
    /// `x-acs-version`, e.g. `2017-05-25`.
    pub version: &'a str,
    /// `x-acs-date`, UTC ISO 8601: `2023-10-26T10:22:32Z`.
    pub date: &'a str,
    /// `x-acs-signature-nonce`, unique per request.
    pub nonce: &'a str,
    /// The exact body bytes that will be sent (empty when the parameters are in the query).
    pub body: &'a [u8],
    /// `AccessKey` ID (goes into the `Credential` part of the Authorization header).
    pub access_key_id: &'a str,
    /// `AccessKey` secret (only ever used as HMAC key material).
    pub access_key_secret: &'a str,
    /// Further headers to send. `content-type` and `x-acs-*` ones are signed, others are sent
    /// unsigned; one that repeats a header computed here (`host`, `x-acs-action`,
    /// `x-acs-content-sha256`, `x-acs-date`, `x-acs-signature-nonce`, `x-acs-version`,
    /// `authorization`) is ignored.
    pub extra_headers: &'a [(&'a str, &'a str)],
}

impl fmt::Debug for Acs3Request<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Acs3Request")
            .field("method", &self.method)
            .field("host", &self.host)
            .field("path", &self.path)
            .field("query", &self.query)
            .field("action", &self.action)
            .field("version", &self.version)
            .field("date", &self.date)
            .field("nonce", &self.nonce)
            .field("body_len", &self.body.len())
            .field("access_key_id", &self.access_key_id)
            .field("access_key_secret", &"<redacted>")
            .field("extra_headers", &self.extra_headers)
            .finish()
    }
}

/// The result of [`acs3_sign`]: headers to send plus the intermediate values for diagnostics.
#[derive(Clone, PartialEq, Eq)]
pub struct Acs3Signed {
    /// Value of the `Authorization` header.
    pub authorization: String,
    /// Headers to send (lower-case names): `authorization`, the signed headers in canonical
    /// order, then any unsigned extra headers.
    pub headers: Vec<(String, String)>,
    /// The canonical request that was hashed.
    pub canonical_request: String,
    /// Lower-case hex SHA-256 of the canonical request.
    pub canonical_request_hash: String,
    /// Lower-case hex signature.
    pub signature: String,
}

impl fmt::Debug for Acs3Signed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Acs3Signed")
            .field("authorization", &"<redacted>")
            .field("canonical_request", &self.canonical_request)
            .field("canonical_request_hash", &self.canonical_request_hash)
            .field("signature", &"<redacted>")
            .finish_non_exhaustive()
    }
}

/// Headers [`acs3_sign`] computes itself; extra headers with these names are ignored.
const ACS3_COMPUTED_HEADERS: [&str; 7] = [
    "authorization",
    "host",
    "x-acs-action",
    "x-acs-content-sha256",
    "x-acs-date",
    "x-acs-signature-nonce",
    "x-acs-version",
];

/// Signs an Aliyun V3 request with ACS3-HMAC-SHA256.
///
/// Signed headers are `host`, `x-acs-action`, `x-acs-content-sha256`, `x-acs-date`,
/// `x-acs-signature-nonce`, `x-acs-version`, plus any `content-type` / `x-acs-*` extra header.
#[must_use]
pub fn acs3_sign(req: &Acs3Request) -> Acs3Signed {
    let body_hash = sha256_hex(req.body);
    let mut signed: Vec<(String, String)> = vec![
        ("host".to_owned(), req.host.trim().to_owned()),
        ("x-acs-action".to_owned(), req.action.trim().to_owned()),
        ("x-acs-content-sha256".to_owned(), body_hash.clone()),
        ("x-acs-date".to_owned(), req.date.trim().to_owned()),
        (
            "x-acs-signature-nonce".to_owned(),
            req.nonce.trim().to_owned(),
        ),
        ("x-acs-version".to_owned(), req.version.trim().to_owned()),
    ];
    let mut unsigned: Vec<(String, String)> = Vec::new();
    for (name, value) in req.extra_headers {
        let name = name.trim().to_ascii_lowercase();
        if ACS3_COMPUTED_HEADERS.contains(&name.as_str()) {
            continue;
        }
        let value = value.trim().to_owned();
        if name == "content-type" || name.starts_with("x-acs-") {
            signed.push((name, value));
        } else {
            unsigned.push((name, value));
        }
    }
    signed.sort();

    let mut canonical_headers = String::new();
    for (name, value) in &signed {
        canonical_headers.push_str(name);
        canonical_headers.push(':');
        canonical_headers.push_str(value);
        canonical_headers.push('\n');
    }
    let signed_headers = signed
        .iter()
        .map(|(k, _)| k.as_str())
        .collect::<Vec<_>>()
        .join(";");
    let canonical_uri = if req.path.is_empty() {
        "/".to_owned()
    } else {
        req.path
            .split('/')
            .map(aliyun_percent_encode)
            .collect::<Vec<_>>()
            .join("/")
    };
    let canonical_request = format!(
        "{}\n{canonical_uri}\n{}\n{canonical_headers}\n{signed_headers}\n{}",
        req.method.to_ascii_uppercase(),
        aliyun_canonical_query(req.query),
        body_hash,
    );
    let canonical_request_hash = sha256_hex(canonical_request.as_bytes());
    let string_to_sign = format!("{ACS3_ALGORITHM}\n{canonical_request_hash}");
    let signature = hex::encode(hmac_sha256(
        req.access_key_secret.as_bytes(),
        string_to_sign.as_bytes(),
    ));
    let authorization = format!(
        "{ACS3_ALGORITHM} Credential={},SignedHeaders={signed_headers},Signature={signature}",
        req.access_key_id
    );

    let mut headers = Vec::with_capacity(1 + signed.len() + unsigned.len());
    headers.push(("authorization".to_owned(), authorization.clone()));
    headers.extend(signed);
    headers.extend(unsigned);

    Acs3Signed {
        authorization,
        headers,
        canonical_request,
        canonical_request_hash,
        signature,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TC3_VECTOR_PAYLOAD: &[u8] = br#"{"Limit": 1, "Filters": [{"Values": ["\u672a\u547d\u540d"], "Name": "instance-name"}]}"#;

    fn tc3_vector_request() -> Tc3Request<'static> {
        Tc3Request {
            secret_id: "AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE",
            secret_key: "Gu5t9xGARNpq86cd98joQYCN3EXAMPLE",
            service: "cvm",
            host: "cvm.tencentcloudapi.com",
            action: "DescribeInstances",
            version: "2017-03-12",
            region: Some("ap-guangzhou"),
            timestamp: 1_551_113_065,
            content_type: "application/json; charset=utf-8",
            payload: TC3_VECTOR_PAYLOAD,
        }
    }

    fn header<'h>(headers: &'h [(&'static str, String)], name: &str) -> Option<&'h str> {
        headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn tc3_payload_hash_matches_the_official_vector() {
        assert_eq!(
            tc3_payload_hash(TC3_VECTOR_PAYLOAD),
            "35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064"
        );
    }

    #[test]
    fn tc3_sign_reproduces_the_official_vector() {
        let signed = tc3_sign(&tc3_vector_request());
        assert_eq!(
            signed.canonical_request,
            "POST\n/\n\ncontent-type:application/json; charset=utf-8\nhost:cvm.tencentcloudapi.com\n\n\
             content-type;host\n35e9c5b0e3ae67532d3c9f17ead6c90222632e5b1ff7f6e89887f1398934f064"
        );
        assert_eq!(
            sha256_hex(signed.canonical_request.as_bytes()),
            "5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031"
        );
        assert_eq!(
            signed.string_to_sign,
            "TC3-HMAC-SHA256\n1551113065\n2019-02-25/cvm/tc3_request\n\
             5ffe6a04c0664d6b969fab9a13bdab201d63ee709638e2749d62a09ca18d7031"
        );
        assert_eq!(
            signed.signature,
            "72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168"
        );
        assert_eq!(
            signed.authorization,
            "TC3-HMAC-SHA256 Credential=AKIDz8krbsJ5yKBZQpn74WFkmLPx3EXAMPLE/2019-02-25/cvm/tc3_request, \
             SignedHeaders=content-type;host, \
             Signature=72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168"
        );
    }

    #[test]
    fn tc3_send_sms_request_carries_every_header() {
        let body = r#"{"PhoneNumberSet":["+8613800000000"],"SmsSdkAppId":"1400000000","SignName":"互助会","TemplateId":"100000","TemplateParamSet":["1234"],"SessionContext":"attempt-42"}"#;
        let req = Tc3Request {
            secret_id: "AKIDEXAMPLE",
            secret_key: "secretEXAMPLE",
            service: "sms",
            host: "sms.tencentcloudapi.com",
            action: "SendSms",
            version: "2021-01-11",
            region: Some("ap-guangzhou"),
            timestamp: 1_700_000_000, // 2023-11-14T22:13:20Z
            content_type: "application/json; charset=utf-8",
            payload: body.as_bytes(),
        };
        let signed = tc3_sign(&req);
        let names: Vec<&str> = signed.headers.iter().map(|(k, _)| *k).collect();
        assert_eq!(
            names,
            [
                "Authorization",
                "Content-Type",
                "Host",
                "X-TC-Action",
                "X-TC-Version",
                "X-TC-Timestamp",
                "X-TC-Region"
            ]
        );
        assert_eq!(
            header(&signed.headers, "Authorization"),
            Some(signed.authorization.as_str())
        );
        assert_eq!(
            header(&signed.headers, "Content-Type"),
            Some("application/json; charset=utf-8")
        );
        assert_eq!(
            header(&signed.headers, "Host"),
            Some("sms.tencentcloudapi.com")
        );
        assert_eq!(header(&signed.headers, "X-TC-Action"), Some("SendSms"));
        assert_eq!(header(&signed.headers, "X-TC-Version"), Some("2021-01-11"));
        assert_eq!(
            header(&signed.headers, "X-TC-Timestamp"),
            Some("1700000000")
        );
        assert_eq!(header(&signed.headers, "X-TC-Region"), Some("ap-guangzhou"));
        assert!(signed.authorization.starts_with(
            "TC3-HMAC-SHA256 Credential=AKIDEXAMPLE/2023-11-14/sms/tc3_request, SignedHeaders=content-type;host, Signature="
        ));
        assert_eq!(signed.signature.len(), 64);
        assert!(
            signed
                .signature
                .bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
        );
        assert!(
            signed
                .canonical_request
                .ends_with(&tc3_payload_hash(body.as_bytes()))
        );
        // Deterministic, and sensitive to the body.
        assert_eq!(tc3_sign(&req), signed);
        let other = tc3_sign(&Tc3Request {
            payload: b"{}",
            ..req
        });
        assert_ne!(other.signature, signed.signature);
    }

    #[test]
    fn tc3_without_region_sends_no_region_header() {
        let signed = tc3_sign(&Tc3Request {
            region: None,
            ..tc3_vector_request()
        });
        assert_eq!(header(&signed.headers, "X-TC-Region"), None);
        assert_eq!(signed.headers.len(), 6);
        // The region is not part of the signature.
        assert_eq!(
            signed.signature,
            "72e494ea809ad7a8c8f7a4507b9bddcbaa8e581f516e8da2f66e2c5a96525168"
        );
    }

    #[test]
    fn utc_dates_are_right_across_calendar_edges() {
        assert_eq!(utc_date(0), "1970-01-01");
        assert_eq!(utc_date(-1), "1969-12-31");
        assert_eq!(utc_date(1_551_113_065), "2019-02-25");
        assert_eq!(utc_date(951_782_400), "2000-02-29");
        assert_eq!(utc_date(951_868_799), "2000-02-29");
        assert_eq!(utc_date(951_868_800), "2000-03-01");
        assert_eq!(utc_date(4_102_444_800), "2100-01-01");
        assert_eq!(utc_date(1_709_251_199), "2024-02-29");
        // Extreme values do not panic.
        assert!(!utc_date(i64::MAX).is_empty());
        assert!(!utc_date(i64::MIN).is_empty());
    }

    fn aliyun_rpc_vector_params() -> Vec<(&'static str, &'static str)> {
        vec![
            ("AccessKeyId", "testId"),
            ("Action", "SendSms"),
            ("Format", "XML"),
            ("OutId", "123"),
            ("PhoneNumbers", "15300000001"),
            ("RegionId", "cn-hangzhou"),
            ("SignName", "阿里云短信测试专用"),
            ("SignatureMethod", "HMAC-SHA1"),
            ("SignatureNonce", "45e25e9b-0a6f-4070-8c85-2956eda1b466"),
            ("SignatureVersion", "1.0"),
            ("TemplateCode", "SMS_71390007"),
            ("TemplateParam", r#"{"customer":"test"}"#),
            ("Timestamp", "2017-07-12T02:42:19Z"),
            ("Version", "2017-05-25"),
        ]
    }

    #[test]
    fn aliyun_rpc_signature_reproduces_the_official_vector() {
        assert_eq!(
            aliyun_rpc_signature("GET", &aliyun_rpc_vector_params(), "testSecret"),
            "zJDF+Lrzhj/ThnlvIToysFRq6t4="
        );
    }

    #[test]
    fn aliyun_rpc_signature_ignores_parameter_order_and_a_signature_parameter() {
        let mut params = aliyun_rpc_vector_params();
        params.reverse();
        params.push(("Signature", "stale"));
        assert_eq!(
            aliyun_rpc_signature("get", &params, "testSecret"),
            "zJDF+Lrzhj/ThnlvIToysFRq6t4="
        );
        assert_ne!(
            aliyun_rpc_signature("POST", &params, "testSecret"),
            "zJDF+Lrzhj/ThnlvIToysFRq6t4="
        );
    }

    #[test]
    fn aliyun_percent_encoding_handles_the_awkward_characters() {
        assert_eq!(
            aliyun_percent_encode("阿里云短信测试专用"),
            "%E9%98%BF%E9%87%8C%E4%BA%91%E7%9F%AD%E4%BF%A1%E6%B5%8B%E8%AF%95%E4%B8%93%E7%94%A8"
        );
        assert_eq!(aliyun_percent_encode("*"), "%2A");
        assert_eq!(aliyun_percent_encode("~"), "~");
        assert_eq!(aliyun_percent_encode("a b"), "a%20b");
        assert_eq!(aliyun_percent_encode("+"), "%2B");
        assert_eq!(aliyun_percent_encode("AZaz09-_."), "AZaz09-_.");
        assert_eq!(aliyun_percent_encode("/"), "%2F");
        assert_eq!(aliyun_percent_encode("="), "%3D");
        assert_eq!(aliyun_percent_encode("&"), "%26");
        assert_eq!(aliyun_percent_encode("%"), "%25");
        assert_eq!(
            aliyun_percent_encode(r#"{"code":"1234"}"#),
            "%7B%22code%22%3A%221234%22%7D"
        );
        assert_eq!(aliyun_percent_encode(""), "");
    }

    fn acs3_vector_request() -> Acs3Request<'static> {
        Acs3Request {
            method: "POST",
            host: "ecs.cn-shanghai.aliyuncs.com",
            path: "/",
            query: &[
                (
                    "ImageId",
                    "win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd",
                ),
                ("RegionId", "cn-shanghai"),
            ],
            action: "RunInstances",
            version: "2014-05-26",
            date: "2023-10-26T10:22:32Z",
            nonce: "3156853299f313e23d1673dc12e1703d",
            body: b"",
            access_key_id: "YourAccessKeyId",
            access_key_secret: "YourAccessKeySecret",
            extra_headers: &[],
        }
    }

    #[test]
    fn acs3_sign_reproduces_the_official_vector() {
        let signed = acs3_sign(&acs3_vector_request());
        let empty = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
        assert_eq!(
            signed.canonical_request,
            format!(
                "POST\n/\nImageId=win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd&RegionId=cn-shanghai\n\
                 host:ecs.cn-shanghai.aliyuncs.com\nx-acs-action:RunInstances\nx-acs-content-sha256:{empty}\n\
                 x-acs-date:2023-10-26T10:22:32Z\nx-acs-signature-nonce:3156853299f313e23d1673dc12e1703d\n\
                 x-acs-version:2014-05-26\n\n\
                 host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version\n{empty}"
            )
        );
        assert_eq!(
            signed.canonical_request_hash,
            "7ea06492da5221eba5297e897ce16e55f964061054b7695beedaac1145b1e259"
        );
        assert_eq!(
            signed.signature,
            "06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0"
        );
        assert_eq!(
            signed.authorization,
            "ACS3-HMAC-SHA256 Credential=YourAccessKeyId,\
             SignedHeaders=host;x-acs-action;x-acs-content-sha256;x-acs-date;x-acs-signature-nonce;x-acs-version,\
             Signature=06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0"
        );
        let names: Vec<&str> = signed.headers.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(
            names,
            [
                "authorization",
                "host",
                "x-acs-action",
                "x-acs-content-sha256",
                "x-acs-date",
                "x-acs-signature-nonce",
                "x-acs-version"
            ]
        );
    }

    #[test]
    fn acs3_query_order_does_not_matter() {
        let reversed = [
            ("RegionId", "cn-shanghai"),
            (
                "ImageId",
                "win2019_1809_x64_dtc_zh-cn_40G_alibase_20230811.vhd",
            ),
        ];
        let signed = acs3_sign(&Acs3Request {
            query: &reversed,
            ..acs3_vector_request()
        });
        assert_eq!(
            signed.signature,
            "06563a9e1b43f5dfe96b81484da74bceab24a1d853912eee15083a6f0f3283c0"
        );
    }

    #[test]
    fn acs3_signs_content_type_and_acs_extras_but_not_others() {
        let body = b"PhoneNumbers=15300000001&SignName=%E4%BA%92%E5%8A%A9";
        let extras = [
            ("Content-Type", "application/x-www-form-urlencoded"),
            ("x-acs-security-token", "token"),
            ("User-Agent", "huzhu"),
            ("x-acs-date", "1999-01-01T00:00:00Z"), // computed header: ignored
        ];
        let signed = acs3_sign(&Acs3Request {
            host: "dysmsapi.aliyuncs.com",
            query: &[],
            action: "SendSms",
            version: "2017-05-25",
            body,
            extra_headers: &extras,
            ..acs3_vector_request()
        });
        assert!(signed.authorization.contains(
            "SignedHeaders=content-type;host;x-acs-action;x-acs-content-sha256;x-acs-date;\
             x-acs-security-token;x-acs-signature-nonce;x-acs-version,"
        ));
        assert!(
            signed
                .canonical_request
                .contains("x-acs-date:2023-10-26T10:22:32Z\n")
        );
        assert!(!signed.canonical_request.contains("1999"));
        assert!(signed.canonical_request.ends_with(&sha256_hex(body)));
        assert_eq!(
            signed.headers.last(),
            Some(&("user-agent".to_owned(), "huzhu".to_owned()))
        );
        assert_eq!(
            signed
                .headers
                .iter()
                .filter(|(k, _)| k == "x-acs-date")
                .count(),
            1
        );
    }

    #[test]
    fn long_hmac_keys_are_hashed_first_as_rfc_2104_says() {
        // RFC 4231 test case 6: 131-byte key.
        let key = [0xaau8; 131];
        assert_eq!(
            hex::encode(hmac_sha256(
                &key,
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            )),
            "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"
        );
        // RFC 2202 test case 6 for HMAC-SHA1: 80-byte key.
        let key = [0xaau8; 80];
        assert_eq!(
            hex::encode(hmac_sha1(
                &key,
                b"Test Using Larger Than Block-Size Key - Hash Key First"
            )),
            "aa4ae5e15272d00e95705637ce8a3b55ed402112"
        );
    }

    #[test]
    fn debug_output_never_shows_secrets_or_signatures() {
        let tc3 = tc3_vector_request();
        let signed = tc3_sign(&tc3);
        let acs3 = acs3_vector_request();
        let acs3_signed = acs3_sign(&acs3);
        for text in [
            format!("{tc3:?}"),
            format!("{signed:?}"),
            format!("{acs3:?}"),
            format!("{acs3_signed:?}"),
        ] {
            assert!(!text.contains("Gu5t9xGARNpq86cd98joQYCN3EXAMPLE"), "{text}");
            assert!(!text.contains("YourAccessKeySecret"), "{text}");
            assert!(!text.contains("72e494ea"), "{text}");
            assert!(!text.contains("06563a9e"), "{text}");
        }
    }
}

//! The security and reliability suite (issue 18): each test reproduces a finding of the outside
//! review and proves its control (listed in `SECURITY.md`) against the real server, on SQLite
//! and on PostgreSQL + Redis wherever data is touched.
//!
//! - `pii`: no personal number in a URL or a log line; none in plain text in a `pg_dump`;
//! - `secrets`: production refuses weak, published and shared keys; PII key rotation;
//! - `ranges`: dates and amounts in sane ranges, each refusal with its own code;
//! - `matrix`: every operation of the OpenAPI document × every caller × own / foreign /
//!   unknown object, against a declared policy;
//! - `jwt`: forged, altered, expired and not-yet-valid tokens are refused;
//! - `sessions`: disabled accounts and "sign out everywhere" revoke earlier tokens;
//! - `replicas`: a revocation on one replica is refused by another within seconds;
//! - `metrics`: labels by route pattern; metrics and docs closed in production;
//! - `errors`: one JSON error shape, framework refusals included;
//! - `headers`: security headers and `no-store`;
//! - `outages`: a stopped database answers 503 with `Retry-After`; Redis down is degraded.

mod errors;
mod headers;
mod jwt;
mod matrix;
mod metrics;
mod outages;
mod pii;
mod ranges;
mod replicas;
mod secrets;
mod sessions;

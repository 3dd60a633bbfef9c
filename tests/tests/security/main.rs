//! The security suite (issue 18): each test reproduces a finding of the outside review and
//! proves its control, on SQLite and on PostgreSQL + Redis where data is touched.
//!
//! - `pii`: no personal number in a URL or a log line; none in plain text in a `pg_dump`;
//! - `secrets`: production refuses weak, published and shared keys; PII key rotation;
//! - `ranges`: dates and amounts in sane ranges, each refusal with its own code;
//! - `jwt`: forged, altered, expired and not-yet-valid tokens are refused.

mod jwt;
mod pii;
mod ranges;
mod secrets;

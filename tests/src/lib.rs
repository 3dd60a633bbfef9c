//! Shared pieces of the end-to-end tests: the app on port 0 with an isolated database
//! (a SQLite file, or a fresh PostgreSQL database dropped afterwards), and local fakes of the
//! outside services.

pub mod claim_flow;
pub mod claim_rows;
pub mod claims;
pub mod fake_sms;
pub mod fake_wechat;
pub mod harness;
pub mod pictures;
pub mod roster;
pub mod s3;

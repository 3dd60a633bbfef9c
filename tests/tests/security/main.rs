//! The security and reliability suite (issue 18): each module proves one control listed in
//! `SECURITY.md` against the real server — on SQLite and on PostgreSQL + Redis wherever data
//! is touched.

mod errors;
mod headers;
mod metrics;
mod outages;
mod sessions;

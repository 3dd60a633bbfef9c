//! The outside world: WeChat, the SMS gateways, object storage, and the TLS set-up their clients
//! share.
//!
//! Clients speak the providers' protocols and sign their requests; they know nothing of our
//! entities or transactions (the services decide what to send and record what came back). They
//! may use `domain/` value types and `settings`, never `service/`, `routes/` or actix.

pub mod sms;
pub mod storage;
pub mod tls;
pub mod wechat;

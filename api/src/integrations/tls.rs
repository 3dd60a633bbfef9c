//! TLS for every outgoing connection (WeChat, SMS gateways, object storage, PostgreSQL).

/// Installs the process-wide rustls crypto provider. Two back-ends end up in the dependency tree
/// (aws-lc-rs through reqwest and OpenDAL, ring through sqlx); with both present and none
/// installed, the first TLS handshake panics. Idempotent: later calls change nothing.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

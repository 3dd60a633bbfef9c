//! Who is calling: our JWTs, the [`Principal`] extracted from them, and roles.

pub mod crypto;
mod jwt;
pub mod keys;
mod principal;

pub use jwt::{Claims, JwtKeys, TokenError};
pub use principal::{MaybePrincipal, Principal};

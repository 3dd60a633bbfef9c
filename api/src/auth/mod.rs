//! Who is calling: our JWTs, the [`Principal`] extracted from them, and roles.

mod jwt;
mod principal;

pub use jwt::{Claims, JwtKeys, TokenError};
pub use principal::{MaybePrincipal, Principal, Role};

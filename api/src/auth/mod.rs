//! Who is calling, and the secrets that prove it: our JWTs ([`JwtKeys`]), the [`Principal`]
//! extractor that reads them (the one actix type here; `routes/` use it, services never do),
//! the three keys checked at start-up ([`keys`]) and the field cipher and look-up hashes of
//! personal data ([`crypto`], pure: services seal and unseal with it).

pub mod crypto;
mod jwt;
pub mod keys;
mod principal;

pub use jwt::{Claims, JwtKeys, TokenError};
pub use principal::{MaybePrincipal, Principal};

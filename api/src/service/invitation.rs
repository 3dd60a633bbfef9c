//! Invitation codes: an admin creates one for a staff account; the person signs in once in
//! the mini-program with it, which binds their WeChat. Codes are stored only as SHA-256.

use chrono::{Duration, Utc};
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, Set,
};
use sha2::{Digest, Sha256};

use entity::invitation;

/// Letters and digits that cannot be confused when read aloud or typed on a phone.
const ALPHABET: &[u8] = b"ABCDEFGHJKMNPQRSTUVWXYZ23456789";

/// A freshly issued code (shown once).
#[derive(Clone, Debug)]
pub struct IssuedInvitation {
    pub code: String,
    pub expires_at: chrono::DateTime<Utc>,
}

/// Normalises what a person typed: upper case, no spaces or dashes.
pub fn normalise(code: &str) -> String {
    code.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

fn hash(code: &str) -> String {
    hex::encode(Sha256::digest(normalise(code).as_bytes()))
}

fn generate() -> String {
    use rand::Rng;
    let mut rng = rand::rng();
    let raw: String = (0..12)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect();
    format!("{}-{}-{}", &raw[0..4], &raw[4..8], &raw[8..12])
}

/// Issues a code for `staff_id`, valid `ttl_hours`.
pub async fn issue<C: ConnectionTrait>(
    db: &C,
    staff_id: i64,
    ttl_hours: i64,
) -> Result<IssuedInvitation, DbErr> {
    let code = generate();
    let now = Utc::now();
    let expires_at = now + Duration::hours(ttl_hours);
    invitation::ActiveModel {
        staff_id: Set(staff_id),
        code_hash: Set(hash(&code)),
        expires_at: Set(expires_at),
        used_at: Set(None),
        created_at: Set(now),
        ..Default::default()
    }
    .insert(db)
    .await?;
    Ok(IssuedInvitation { code, expires_at })
}

/// Uses a code: marks it used (exactly once, even under concurrent attempts) and returns the
/// staff id it was issued for; `None` when unknown, expired or already used.
pub async fn redeem<C: ConnectionTrait>(db: &C, code: &str) -> Result<Option<i64>, DbErr> {
    let now = Utc::now();
    let Some(found) = invitation::Entity::find()
        .filter(invitation::Column::CodeHash.eq(hash(code)))
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    // The conditional update is the claim: only one caller can turn used_at from NULL.
    let claimed = invitation::Entity::update_many()
        .col_expr(invitation::Column::UsedAt, Expr::value(now))
        .filter(invitation::Column::Id.eq(found.id))
        .filter(invitation::Column::UsedAt.is_null())
        .filter(invitation::Column::ExpiresAt.gt(now))
        .exec(db)
        .await?;
    Ok((claimed.rows_affected == 1).then_some(found.staff_id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_is_three_groups_of_unambiguous_characters() {
        let code = generate();
        assert_eq!(code.len(), 14);
        assert!(normalise(&code).bytes().all(|b| ALPHABET.contains(&b)));
    }

    #[test]
    fn a_code_typed_in_lower_case_with_spaces_hashes_the_same() {
        assert_eq!(hash("ABCD-EFGH-JKMN"), hash(" abcd efgh jkmn "));
    }
}

//! Photographed materials: checked and cleaned by [`crate::formats::photos`], stored through OpenDAL under
//! keys the server chooses (never in the database), shown through short-lived signed links,
//! and compared with earlier bills so a bill photographed again is flagged to reviewers.
//!
//! Duplicates are looked for among bills only (settlement slips, invoices, medication lists):
//! ID and bank cards are rightly the same in every claim of a member. An exact copy (same
//! SHA-256) is flagged whoever's claim holds it; a re-photograph (perceptual hash within
//! [`SAME_DOCUMENT_MAX_DISTANCE`]) is looked for among the same member's claims, because slips
//! printed from one hospital's template for other patients are as close as a re-photograph.

use chrono::{DateTime, Utc};
use opendal::Operator;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, JoinType,
    QueryFilter, QueryOrder, QuerySelect, RelationTrait, Set,
};
use serde_json::{Value, json};

use entity::{claim, claim_material};

use super::filing::get;
use super::{Caller, Claim, ClaimError, ClaimStatus};
use crate::auth::crypto::LookupHasher;
use crate::domain::Role;
use crate::engine::scheme::Material;
use crate::formats::photos::{self, PhotoError, PhotoLimits, SAME_DOCUMENT_MAX_DISTANCE};
use crate::service::audit::{self, Actor};
use crate::service::new_pid;
use crate::service::photo_work::Ticket;

/// Categories compared for duplicates.
pub const BILLS: [Material; 3] = [
    Material::SettlementSlip,
    Material::Invoice,
    Material::MedicationList,
];

/// How long a signed photo link works.
pub const LINK_SECONDS: i64 = 600;

/// A stored material.
#[derive(Clone, Debug)]
pub struct StoredMaterial {
    pub id: i64,
    pub pid: String,
    pub category: Material,
    pub content_type: String,
    pub byte_size: i64,
    pub width: i32,
    pub height: i32,
    pub sha256: String,
    pub object_key: String,
    pub thumbnail_key: String,
    /// The claim holding the same bill, when this one looks like a copy.
    pub duplicate_of_claim: Option<String>,
    pub created_at: DateTime<Utc>,
}

/// Why an upload was refused.
#[derive(Debug, thiserror::Error)]
pub enum UploadError {
    #[error(transparent)]
    Photo(#[from] PhotoError),
    #[error(transparent)]
    Claim(#[from] ClaimError),
    #[error("storage: {0}")]
    Storage(#[from] opendal::Error),
    /// Every photo worker is busy and the queue is full: try again shortly.
    #[error(transparent)]
    Busy(#[from] crate::service::photo_work::Busy),
}

/// Parses a material category name.
pub fn parse_category(name: &str) -> Option<Material> {
    serde_json::from_value(Value::String(name.to_owned())).ok()
}

/// A category's stored name.
pub fn category_name(m: Material) -> String {
    serde_json::to_value(m)
        .ok()
        .and_then(|v| v.as_str().map(str::to_owned))
        .unwrap_or_default()
}

fn to_stored(m: claim_material::Model) -> Result<StoredMaterial, ClaimError> {
    Ok(StoredMaterial {
        category: parse_category(&m.category)
            .ok_or_else(|| anyhow::anyhow!("stored material category {}", m.category))?,
        id: m.id,
        pid: m.pid,
        content_type: m.content_type,
        byte_size: m.byte_size,
        width: m.width,
        height: m.height,
        sha256: m.sha256,
        object_key: m.object_key,
        thumbnail_key: m.thumbnail_key,
        duplicate_of_claim: m.duplicate_of_claim_pid,
        created_at: m.created_at,
    })
}

/// A claim takes materials while it is being prepared: a draft, a returned claim, or an offer
/// before its confirmation (the materials its scheme still asks of an offer).
const EDITABLE: [&str; 3] = ["draft", "returned", "offered"];

fn check_editable(caller: &Caller, c: &Claim) -> Result<(), ClaimError> {
    if !matches!(
        c.status,
        ClaimStatus::Draft | ClaimStatus::Returned | ClaimStatus::Offered
    ) {
        return Err(ClaimError::WrongStatus { status: c.status });
    }
    match caller.role {
        Role::Member | Role::UnionReviewer => Ok(()),
        _ if c.filed_by_pid == caller.pid => Ok(()),
        // The association's appraisal step records the third-party appraisal certificate.
        _ => Err(ClaimError::Forbidden(
            "只有申领人可以上传材料 / only whoever files the claim uploads its materials".into(),
        )),
    }
}

/// Where a duplicate bill was seen before.
async fn find_duplicate<C: ConnectionTrait>(
    db: &C,
    c: &Claim,
    sha256: &str,
    phash: &str,
) -> Result<Option<(i64, String)>, ClaimError> {
    let bills: Vec<String> = BILLS.iter().map(|m| category_name(*m)).collect();
    // An exact copy, anyone's.
    let exact = claim_material::Entity::find()
        .select_only()
        .column(claim_material::Column::Id)
        .column(claim::Column::Pid)
        .join(JoinType::InnerJoin, claim_material::Relation::Claim.def())
        .filter(claim_material::Column::Sha256.eq(sha256))
        .filter(claim_material::Column::Category.is_in(bills.clone()))
        .order_by_asc(claim_material::Column::Id)
        .into_tuple::<(i64, String)>()
        .one(db)
        .await?;
    if exact.is_some() {
        return Ok(exact);
    }
    // A re-photograph, among the member's own bills.
    let candidates = claim_material::Entity::find()
        .select_only()
        .column(claim_material::Column::Id)
        .column(claim::Column::Pid)
        .column(claim_material::Column::Phash)
        .join(JoinType::InnerJoin, claim_material::Relation::Claim.def())
        .filter(claim::Column::MemberId.eq(c.member_id))
        .filter(claim_material::Column::Category.is_in(bills))
        .order_by_asc(claim_material::Column::Id)
        .into_tuple::<(i64, String, String)>()
        .all(db)
        .await?;
    Ok(candidates
        .into_iter()
        .find(|(_, _, other)| {
            photos::hash_distance(phash, other).is_some_and(|d| d <= SAME_DOCUMENT_MAX_DISTANCE)
        })
        .map(|(id, pid, _)| (id, pid)))
}

/// Checks, cleans and stores one photo for a claim. Nothing is stored when any check fails;
/// the objects are removed again when the row cannot be written.
#[allow(clippy::too_many_arguments)]
pub async fn upload(
    db: &DatabaseConnection,
    storage: &Operator,
    caller: &Caller,
    claim_pid: &str,
    category: Material,
    bytes: Vec<u8>,
    limits: PhotoLimits,
    ticket: &Ticket,
    request_id: Option<String>,
) -> Result<StoredMaterial, UploadError> {
    let c = get(db, caller, claim_pid).await?;
    check_editable(caller, &c)?;
    // At most `http.photo_workers` decodings at once; the admitted uploads queue here.
    let processed = ticket
        .run(move || photos::process(&bytes, &limits))
        .await
        .map_err(ClaimError::Internal)??;
    let duplicate = if BILLS.contains(&category) {
        find_duplicate(db, &c, &processed.sha256, &processed.perceptual_hash).await?
    } else {
        None
    };
    let pid = new_pid();
    let object_key = format!("claims/{}/{}.{}", c.pid, pid, processed.kind.extension());
    let thumbnail_key = format!("claims/{}/{}.thumb.jpg", c.pid, pid);
    storage.write(&object_key, processed.stored.clone()).await?;
    if let Err(e) = storage
        .write(&thumbnail_key, processed.thumbnail.clone())
        .await
    {
        let _ = storage.delete(&object_key).await;
        return Err(e.into());
    }
    let now = Utc::now();
    let written = async {
        let txn = crate::db::begin_write(db).await?;
        // A write first: the claim must still accept materials.
        let still_editable = claim::Entity::update_many()
            .col_expr(
                claim::Column::Flagged,
                Expr::col(claim::Column::Flagged).or(Expr::value(duplicate.is_some())),
            )
            .filter(claim::Column::Id.eq(c.id))
            .filter(claim::Column::Status.is_in(EDITABLE))
            .exec(&txn)
            .await?;
        if still_editable.rows_affected != 1 {
            txn.rollback().await?;
            return Err(super::transition::refusal(db, c.id, c.version).await);
        }
        let row = claim_material::ActiveModel {
            pid: Set(pid.clone()),
            claim_id: Set(c.id),
            category: Set(category_name(category)),
            object_key: Set(object_key.clone()),
            thumbnail_key: Set(thumbnail_key.clone()),
            content_type: Set(processed.kind.mime().to_owned()),
            byte_size: Set(i64::try_from(processed.stored.len()).unwrap_or(i64::MAX)),
            width: Set(i32::try_from(processed.width).unwrap_or(i32::MAX)),
            height: Set(i32::try_from(processed.height).unwrap_or(i32::MAX)),
            sha256: Set(processed.sha256.clone()),
            phash: Set(processed.perceptual_hash.clone()),
            duplicate_of_material_id: Set(duplicate.as_ref().map(|d| d.0)),
            duplicate_of_claim_pid: Set(duplicate.as_ref().map(|d| d.1.clone())),
            uploaded_by: Set(caller.pid.clone()),
            created_at: Set(now),
            ..Default::default()
        }
        .insert(&txn)
        .await?;
        audit::record(
            &txn,
            &Actor::Account {
                pid: caller.pid.clone(),
            },
            "claim.material.upload",
            ("claim", Some(claim_pid)),
            json!({
                "material": pid,
                "category": category_name(category),
                "sha256": processed.sha256,
                "duplicate_of_claim": duplicate.as_ref().map(|d| d.1.clone()),
            }),
            request_id,
        )
        .await?;
        txn.commit().await?;
        Ok::<_, ClaimError>(row)
    }
    .await;
    match written {
        Ok(row) => Ok(to_stored(row)?),
        Err(e) => {
            let _ = storage.delete(&object_key).await;
            let _ = storage.delete(&thumbnail_key).await;
            Err(e.into())
        }
    }
}

/// The materials of a claim the caller may see, oldest first.
pub async fn list<C: ConnectionTrait>(
    db: &C,
    caller: &Caller,
    claim_pid: &str,
) -> Result<(Claim, Vec<StoredMaterial>), ClaimError> {
    let c = get(db, caller, claim_pid).await?;
    let rows = of_claim(db, c.id).await?;
    Ok((c, rows))
}

/// The materials of a claim, oldest first.
pub async fn of_claim<C: ConnectionTrait>(
    db: &C,
    claim_id: i64,
) -> Result<Vec<StoredMaterial>, ClaimError> {
    claim_material::Entity::find()
        .filter(claim_material::Column::ClaimId.eq(claim_id))
        .order_by_asc(claim_material::Column::Id)
        .all(db)
        .await?
        .into_iter()
        .map(to_stored)
        .collect()
}

/// Removes a material from a draft or returned claim (row first, then the objects).
pub async fn remove(
    db: &DatabaseConnection,
    storage: &Operator,
    caller: &Caller,
    claim_pid: &str,
    material_pid: &str,
    request_id: Option<String>,
) -> Result<(), ClaimError> {
    let c = get(db, caller, claim_pid).await?;
    check_editable(caller, &c)?;
    let row = claim_material::Entity::find()
        .filter(claim_material::Column::ClaimId.eq(c.id))
        .filter(claim_material::Column::Pid.eq(material_pid))
        .one(db)
        .await?
        .ok_or(ClaimError::NotFound)?;
    let txn = crate::db::begin_write(db).await?;
    let deleted = claim_material::Entity::delete_many()
        .filter(claim_material::Column::Id.eq(row.id))
        .exec(&txn)
        .await?;
    if deleted.rows_affected != 1 {
        txn.rollback().await?;
        return Err(ClaimError::NotFound);
    }
    audit::record(
        &txn,
        &Actor::Account {
            pid: caller.pid.clone(),
        },
        "claim.material.remove",
        ("claim", Some(claim_pid)),
        json!({ "material": material_pid, "category": row.category, "sha256": row.sha256 }),
        request_id,
    )
    .await?;
    txn.commit().await?;
    for key in [&row.object_key, &row.thumbnail_key] {
        if let Err(e) = storage.delete(key).await {
            tracing::warn!(key = %key, error = %e, "could not delete a removed material's object");
        }
    }
    Ok(())
}

/// Which image a link shows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Variant {
    Full,
    Thumbnail,
}

impl Variant {
    /// Stable name, as in links.
    pub fn as_str(self) -> &'static str {
        match self {
            Variant::Full => "full",
            Variant::Thumbnail => "thumbnail",
        }
    }
}

fn link_signature(
    key: &LookupHasher,
    material_pid: &str,
    variant: Variant,
    expires: i64,
) -> String {
    key.hash(
        "claim-photo-link",
        &format!("{material_pid}|{}|{expires}", variant.as_str()),
    )
}

/// A short-lived link to a material's image (issued only to callers who may see the claim):
/// `(expires, signature)` for `GET /claim-photos/{pid}?variant=&expires=&signature=`, usable
/// as an `<image src>` in the mini-program, which cannot send a bearer token.
pub fn sign_link(
    key: &LookupHasher,
    material_pid: &str,
    variant: Variant,
    now: DateTime<Utc>,
) -> (i64, String) {
    let expires = now.timestamp() + LINK_SECONDS;
    (expires, link_signature(key, material_pid, variant, expires))
}

/// Checks a link; `true` when it was signed by us and has not expired.
pub fn link_is_valid(
    key: &LookupHasher,
    material_pid: &str,
    variant: Variant,
    expires: i64,
    signature: &str,
    now: DateTime<Utc>,
) -> bool {
    use subtle::ConstantTimeEq;
    if now.timestamp() > expires {
        return false;
    }
    let expected = link_signature(key, material_pid, variant, expires);
    expected.as_bytes().ct_eq(signature.as_bytes()).into()
}

/// A material's image bytes and type, by public id (the link was checked by the caller).
pub async fn image<C: ConnectionTrait>(
    db: &C,
    storage: &Operator,
    material_pid: &str,
    variant: Variant,
) -> Result<(Vec<u8>, String), ClaimError> {
    let row = claim_material::Entity::find()
        .filter(claim_material::Column::Pid.eq(material_pid))
        .one(db)
        .await?
        .ok_or(ClaimError::NotFound)?;
    let (key, content_type) = match variant {
        Variant::Full => (row.object_key, row.content_type),
        Variant::Thumbnail => (row.thumbnail_key, "image/jpeg".to_owned()),
    };
    let bytes = storage
        .read(&key)
        .await
        .map_err(|e| anyhow::anyhow!("reading {key}: {e}"))?
        .to_vec();
    Ok((bytes, content_type))
}

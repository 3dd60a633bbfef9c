//! Payment authorisations (Wujin's individual enrolment): the versioned texts members sign, and
//! the signed records. A record is written once and never edited; revocation only sets
//! `revoked_at` and `effective_until` (the last day of the month it was revoked in, Beijing
//! time), so the next month's deductions no longer use it.
//!
//! Signing judges the ID card photos and the signature through [`crate::formats::photos`],
//! stores them through OpenDAL and writes the record with its audit entry; a failure on the way
//! leaves no file behind.

use std::collections::HashMap;

use chrono::{DateTime, Datelike, Days, NaiveDate, Utc};
use chrono_tz::Asia::Shanghai;
use opendal::Operator;
use sea_orm::sea_query::{Expr, Query};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect, Set,
};
use serde_json::json;
use sha2::{Digest, Sha256};

use entity::{authorisation_text, member, payment_authorisation};

use super::audit::{self, Actor};
use super::page::{Page, page_from};
use super::scope::Scope;
use super::{Problem, is_unique_violation, new_pid};
use crate::auth::crypto::{PiiKind, PiiVault};
use crate::domain::BankCardNumber;
use crate::engine::YearMonth;
use crate::formats::photos::{self, PhotoError, PhotoKind, PhotoRules};

/// The texts shipped with the product, published as version 1 of their scheme on first start.
const SEED_TEXTS: &[(&str, &str)] = &[(
    "wj-2022",
    include_str!("../../authorisations/wj-2022-v1.md"),
)];

/// Lowercase hex SHA-256 of some bytes.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// The last day of a month.
pub fn last_day(month: YearMonth) -> NaiveDate {
    let first = month.first_day();
    first
        .checked_add_days(Days::new(u64::from(month.days().saturating_sub(1))))
        .unwrap_or(first)
}

/// The calendar day of an instant in Beijing time (the schemes' calendar).
pub fn local_date(at: DateTime<Utc>) -> NaiveDate {
    at.with_timezone(&Shanghai).date_naive()
}

/// The instant a Beijing-time day begins.
pub fn start_of_local_day(day: NaiveDate) -> DateTime<Utc> {
    // Asia/Shanghai has had no daylight saving since 1991, so midnight always exists once.
    day.and_hms_opt(0, 0, 0)
        .and_then(|t| t.and_local_timezone(Shanghai).earliest())
        .map(|t| t.with_timezone(&Utc))
        .unwrap_or_else(|| day.and_time(chrono::NaiveTime::MIN).and_utc())
}

/// One published version of an authorisation text.
#[derive(Clone, Debug)]
pub struct AuthorisationText {
    pub id: i64,
    pub scheme_code: String,
    pub version: i32,
    pub body: String,
    pub sha256: String,
    pub published_at: DateTime<Utc>,
}

impl From<authorisation_text::Model> for AuthorisationText {
    fn from(m: authorisation_text::Model) -> Self {
        Self {
            id: m.id,
            scheme_code: m.scheme_code,
            version: m.version,
            body: m.body,
            sha256: m.sha256,
            published_at: m.published_at,
        }
    }
}

/// The newest text of a scheme.
pub async fn current_text<C: ConnectionTrait>(
    db: &C,
    scheme_code: &str,
) -> Result<Option<AuthorisationText>, DbErr> {
    Ok(authorisation_text::Entity::find()
        .filter(authorisation_text::Column::SchemeCode.eq(scheme_code))
        .order_by_desc(authorisation_text::Column::Version)
        .one(db)
        .await?
        .map(Into::into))
}

/// Why a new text version was not published.
#[derive(Debug, thiserror::Error)]
pub enum PublishTextError {
    #[error("the text is empty")]
    Empty,
    #[error("the text is the same as the current version")]
    Unchanged,
    #[error("another version was published at the same moment; try again")]
    Concurrent,
    #[error(transparent)]
    Db(#[from] DbErr),
}

/// Publishes `body` as the next version of a scheme's authorisation text. Members who signed an
/// earlier version keep it (their record holds its id and hash); new signatures need this one.
pub async fn publish_text<C: ConnectionTrait>(
    db: &C,
    scheme_code: &str,
    body: &str,
    now: DateTime<Utc>,
) -> Result<AuthorisationText, PublishTextError> {
    if body.trim().is_empty() {
        return Err(PublishTextError::Empty);
    }
    let sha256 = sha256_hex(body.as_bytes());
    let current = current_text(db, scheme_code).await?;
    if current.as_ref().is_some_and(|c| c.sha256 == sha256) {
        return Err(PublishTextError::Unchanged);
    }
    let version = current.map_or(1, |c| c.version + 1);
    authorisation_text::ActiveModel {
        scheme_code: Set(scheme_code.to_owned()),
        version: Set(version),
        body: Set(body.to_owned()),
        sha256: Set(sha256),
        published_at: Set(now),
        ..Default::default()
    }
    .insert(db)
    .await
    .map(Into::into)
    .map_err(|e| {
        if is_unique_violation(&e) {
            PublishTextError::Concurrent
        } else {
            PublishTextError::Db(e)
        }
    })
}

/// Publishes each shipped text as version 1 of its scheme unless the scheme has a text. Safe
/// to run from several replicas at once (the unique key settles races).
pub async fn ensure_seed_texts<C: ConnectionTrait>(db: &C) -> Result<(), DbErr> {
    for (scheme_code, body) in SEED_TEXTS {
        if current_text(db, scheme_code).await?.is_some() {
            continue;
        }
        match publish_text(db, scheme_code, body, Utc::now()).await {
            Ok(_) | Err(PublishTextError::Concurrent) => {}
            Err(PublishTextError::Db(e)) => return Err(e),
            Err(e) => return Err(DbErr::Custom(format!("seed text {scheme_code}: {e}"))),
        }
    }
    Ok(())
}

/// Whether an authorisation may still be used, and until when.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AuthorisationStatus {
    Active,
    Revoked,
}

/// A signed payment authorisation, bank card opened (mask before showing it).
#[derive(Clone, Debug)]
pub struct PaymentAuthorisation {
    pub id: i64,
    pub pid: String,
    pub member_id: i64,
    pub scheme_code: String,
    pub text_version: i32,
    pub text_sha256: String,
    pub bank_card: BankCardNumber,
    pub signature_sha256: String,
    pub signed_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub effective_until: Option<NaiveDate>,
}

impl PaymentAuthorisation {
    /// Active until revoked.
    pub fn status(&self) -> AuthorisationStatus {
        if self.revoked_at.is_some() {
            AuthorisationStatus::Revoked
        } else {
            AuthorisationStatus::Active
        }
    }
}

fn open(
    vault: &PiiVault,
    m: payment_authorisation::Model,
    text: Option<&authorisation_text::Model>,
) -> Result<PaymentAuthorisation, DbErr> {
    let corrupt =
        |what: &str| DbErr::Custom(format!("authorisation {}: {what} cannot be read", m.pid));
    let text = text.ok_or_else(|| corrupt("text"))?;
    let bank_card = vault
        .open(PiiKind::BankCard, &m.bank_card_cipher)
        .ok()
        .and_then(|plain| BankCardNumber::parse(&plain).ok())
        .ok_or_else(|| corrupt("bank card"))?;
    Ok(PaymentAuthorisation {
        id: m.id,
        pid: m.pid,
        member_id: m.member_id,
        scheme_code: text.scheme_code.clone(),
        text_version: text.version,
        text_sha256: m.text_sha256,
        bank_card,
        signature_sha256: m.signature_sha256,
        signed_at: m.signed_at,
        revoked_at: m.revoked_at,
        effective_until: m.effective_until,
    })
}

/// Opens rows, fetching their texts in one query.
pub(crate) async fn open_all<C: ConnectionTrait>(
    db: &C,
    vault: &PiiVault,
    rows: Vec<payment_authorisation::Model>,
) -> Result<Vec<PaymentAuthorisation>, DbErr> {
    let mut text_ids: Vec<i64> = rows.iter().map(|r| r.text_id).collect();
    text_ids.sort_unstable();
    text_ids.dedup();
    let texts: HashMap<i64, authorisation_text::Model> = authorisation_text::Entity::find()
        .filter(authorisation_text::Column::Id.is_in(text_ids))
        .all(db)
        .await?
        .into_iter()
        .map(|t| (t.id, t))
        .collect();
    rows.into_iter()
        .map(|r| {
            let text = texts.get(&r.text_id);
            open(vault, r, text)
        })
        .collect()
}

/// The form fields that hold images, and how each is judged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SigningImage {
    IdCardFront,
    IdCardBack,
    Signature,
}

impl SigningImage {
    /// The form field.
    pub const fn field(self) -> &'static str {
        match self {
            SigningImage::IdCardFront => "id_card_front",
            SigningImage::IdCardBack => "id_card_back",
            SigningImage::Signature => "signature",
        }
    }

    /// The image of a form field.
    pub fn of_field(field: &str) -> Option<SigningImage> {
        [
            SigningImage::IdCardFront,
            SigningImage::IdCardBack,
            SigningImage::Signature,
        ]
        .into_iter()
        .find(|i| i.field() == field)
    }

    /// How it is judged: ID card photos are re-encoded, the signature is kept as drawn.
    pub const fn rules(self) -> PhotoRules {
        match self {
            SigningImage::Signature => PhotoRules::SIGNATURE,
            SigningImage::IdCardFront | SigningImage::IdCardBack => PhotoRules::ID_CARD_PHOTO,
        }
    }

    /// Largest upload, in bytes (the form reader stops there).
    pub const fn max_bytes(self) -> usize {
        self.rules().limits.max_bytes
    }

    /// The refusal of an upload the form reader stopped at [`max_bytes`](Self::max_bytes), in
    /// the judge's words.
    pub fn too_large(self) -> Problem {
        self.refusal(&PhotoError::TooLarge {
            limit: self.max_bytes(),
        })
    }

    fn refusal(self, error: &PhotoError) -> Problem {
        let mut details = json!({ "field": self.field() });
        if let PhotoError::TooLarge { limit } = error {
            details["limit_bytes"] = json!(limit);
        }
        Problem::invalid(error.code(), self.rules().message(error), details)
    }
}

/// What the member sent to sign: the form's text fields as sent, the images as uploaded, and
/// where it came from.
#[derive(Clone, Debug)]
pub struct Signing {
    pub scheme_code: String,
    /// The `version` of the text the member read.
    pub text_version: String,
    /// The `sha256` of the text the member read.
    pub text_sha256: String,
    /// `true` when the member ticked their consent.
    pub consent: String,
    pub bank_card: String,
    pub id_card_front: Vec<u8>,
    pub id_card_back: Vec<u8>,
    pub signature: Vec<u8>,
    pub ip_address: String,
    pub user_agent: String,
}

/// Why a signature was refused.
#[derive(Debug, thiserror::Error)]
pub enum SignError {
    /// The scheme has no authorisation text, or the signed-in member is not (or no longer) one.
    #[error("not found")]
    NotFound,
    /// Refused, with the reason the member reads (`text_changed`, `authorisation_active`,
    /// `consent_required`, `bank_card_*`, the images' codes).
    #[error("{}", .0.message)]
    Refused(Problem),
    #[error(transparent)]
    Db(#[from] DbErr),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

/// The objects stored for one authorisation, under keys the server chose.
#[derive(Clone, Debug)]
struct StoredObjects {
    id_card_front: String,
    id_card_back: String,
    signature: String,
}

/// Everything a signature records.
#[derive(Clone, Debug)]
struct NewAuthorisation<'a> {
    /// Chosen before the files were stored (their keys contain it).
    pid: String,
    member_id: i64,
    text: &'a AuthorisationText,
    bank_card: BankCardNumber,
    objects: StoredObjects,
    signature_sha256: String,
    signed_at: DateTime<Utc>,
    ip_address: String,
    user_agent: String,
}

fn already_active() -> SignError {
    SignError::Refused(Problem::conflict(
        "authorisation_active",
        "您已签署该方案的付款授权，如需更换银行卡请先撤销 / an authorisation for this scheme is active; revoke it first to change the card",
        json!({}),
    ))
}

/// The text ids of a scheme, as a subquery.
pub(crate) fn texts_of(scheme_code: &str) -> sea_orm::sea_query::SelectStatement {
    Query::select()
        .column(authorisation_text::Column::Id)
        .from(authorisation_text::Entity)
        .and_where(authorisation_text::Column::SchemeCode.eq(scheme_code))
        .to_owned()
}

/// The member's active (not revoked) authorisation for a scheme, if any.
pub async fn active_for<C: ConnectionTrait>(
    db: &C,
    member_id: i64,
    scheme_code: &str,
) -> Result<Option<String>, DbErr> {
    Ok(payment_authorisation::Entity::find()
        .filter(payment_authorisation::Column::MemberId.eq(member_id))
        .filter(payment_authorisation::Column::TextId.in_subquery(texts_of(scheme_code)))
        .filter(payment_authorisation::Column::RevokedAt.is_null())
        .one(db)
        .await?
        .map(|m| m.pid))
}

/// The member `member_pid` (inside `scope`) signs a payment authorisation. The images are
/// judged by their bytes (type, size, dimensions; the ID card photos re-encoded without their
/// metadata, the signature kept as drawn but not blank), the text must be the current one and
/// consent given; the files are stored under keys the server chooses and the record is written
/// with its audit entry in one transaction. If that fails the stored files are deleted, so a
/// failed signature leaves nothing behind.
#[allow(clippy::too_many_arguments)]
pub async fn sign(
    db: &DatabaseConnection,
    storage: &Operator,
    vault: &PiiVault,
    scope: &Scope,
    member_pid: &str,
    signing: Signing,
    ticket: &crate::service::photo_work::Ticket,
    today: NaiveDate,
    request_id: Option<String>,
) -> Result<PaymentAuthorisation, SignError> {
    let Signing {
        scheme_code,
        text_version,
        text_sha256,
        consent,
        bank_card,
        id_card_front,
        id_card_back,
        signature,
        ip_address,
        user_agent,
    } = signing;
    // Decoding is CPU work and memory: off the async threads, under the photo limit.
    let judged = ticket
        .run(move || judge_images(id_card_front, id_card_back, signature))
        .await
        .map_err(|e| e.context("judging the images"))??;
    let [front, back, signature] = judged;

    let text = current_text(db, &scheme_code)
        .await?
        .ok_or(SignError::NotFound)?;
    if text_version.parse::<i32>().ok() != Some(text.version)
        || !text_sha256.eq_ignore_ascii_case(&text.sha256)
    {
        return Err(SignError::Refused(Problem::conflict(
            "text_changed",
            "授权书已更新，请阅读新版本后重新签署 / the authorisation text has changed: read the new version and sign again",
            json!({ "current_version": text.version, "current_sha256": text.sha256 }),
        )));
    }
    if consent != "true" {
        return Err(SignError::Refused(Problem::invalid_value(
            "consent_required",
            "consent",
            "请阅读并勾选同意付款授权书和代收协议 / you must consent to the authorisation and the collection agreement",
        )));
    }
    let bank_card = BankCardNumber::parse(&bank_card).map_err(|e| {
        SignError::Refused(Problem::invalid_value(e.code(), "bank_card", e.to_string()))
    })?;

    let m = super::member::get_within(db, vault, scope, member_pid)
        .await?
        .ok_or(SignError::NotFound)?;
    if active_for(db, m.id, &scheme_code).await?.is_some() {
        return Err(already_active());
    }
    offered_to(db, m.id, &scheme_code, today).await?;

    let pid = new_pid();
    let objects = StoredObjects {
        id_card_front: format!(
            "authorisations/{pid}/id-card-front.{}",
            front.kind.extension()
        ),
        id_card_back: format!(
            "authorisations/{pid}/id-card-back.{}",
            back.kind.extension()
        ),
        signature: format!(
            "authorisations/{pid}/signature.{}",
            signature.kind.extension()
        ),
    };
    let signature_sha256 = sha256_hex(&signature.bytes);
    let mut stored: Vec<String> = Vec::new();
    for (key, image) in [
        (&objects.id_card_front, front),
        (&objects.id_card_back, back),
        (&objects.signature, signature),
    ] {
        let written = storage
            .write_with(key, image.bytes)
            .content_type(image.kind.mime())
            .await;
        if let Err(e) = written {
            delete_objects(storage, &stored).await;
            return Err(anyhow::Error::new(e)
                .context("storing an authorisation file")
                .into());
        }
        stored.push(key.clone());
    }

    let recorded = async {
        let txn = crate::db::begin_write(db).await?;
        let signed = insert_signed(
            &txn,
            vault,
            NewAuthorisation {
                pid: pid.clone(),
                member_id: m.id,
                text: &text,
                bank_card,
                objects: objects.clone(),
                signature_sha256,
                signed_at: Utc::now(),
                ip_address,
                user_agent,
            },
        )
        .await?;
        audit::record(
            &txn,
            &Actor::Account { pid: m.pid.clone() },
            "authorisation.signed",
            ("payment_authorisation", Some(&signed.pid)),
            json!({
                "scheme_code": signed.scheme_code,
                "text_version": signed.text_version,
                "text_sha256": signed.text_sha256,
                "signature_sha256": signed.signature_sha256,
            }),
            request_id,
        )
        .await?;
        txn.commit().await?;
        Ok::<_, SignError>(signed)
    }
    .await;
    if recorded.is_err() {
        delete_objects(storage, &stored).await;
    }
    recorded
}

/// Refuses unless the scheme's enrolment window (or a late window the association opened) is
/// open on `today` (`enrolment_not_open`, `enrolment_closed`: a signature then could only pay
/// for a period nobody may still enrol in) and the member's unit union takes part in the scheme
/// for the coverage period its authorisation pays for (`scheme_not_offered`, see
/// [`super::participation`]).
async fn offered_to<C: ConnectionTrait>(
    db: &C,
    member_id: i64,
    scheme_code: &str,
    today: NaiveDate,
) -> Result<(), SignError> {
    let scheme = super::scheme::latest(db, scheme_code)
        .await?
        .ok_or(SignError::NotFound)?;
    let (start, end) = super::deduction::period_of(&scheme.definition)
        .ok_or_else(|| DbErr::Custom(format!("scheme {scheme_code}: no coverage period")))?;
    if let Some(opens) = scheme.definition.enrolment.opens
        && today < opens
    {
        return Err(SignError::Refused(Problem::invalid(
            "enrolment_not_open",
            format!("参保登记 {opens} 开始，届时再签署 / the enrolment window opens on {opens}"),
            json!({ "field": "scheme_code", "opens": opens }),
        )));
    }
    let closes = super::deduction::window_closes(db, scheme_code, &scheme.definition).await?;
    if today > closes {
        return Err(SignError::Refused(Problem::invalid(
            "enrolment_closed",
            format!(
                "{start} 至 {end} 保障期的参保登记已于 {closes} 截止 / the enrolment window for {start}..{end} closed on {closes}"
            ),
            json!({
                "field": "scheme_code",
                "closes": closes,
                "coverage_start": start,
                "coverage_end": end,
            }),
        )));
    }
    let union = member::Entity::find_by_id(member_id)
        .one(db)
        .await?
        .ok_or(SignError::NotFound)?
        .organisation_id;
    if super::participation::takes_part(db, union, scheme_code, start.year()).await? {
        return Ok(());
    }
    Err(SignError::Refused(Problem::invalid(
        "scheme_not_offered",
        "您所在的单位工会未参加该方案，不能签署付款授权 / your unit union does not take part in this scheme",
        json!({ "field": "scheme_code", "coverage_start": start, "coverage_end": end }),
    )))
}

/// An image as it will be stored.
struct StoredImage {
    kind: PhotoKind,
    bytes: Vec<u8>,
}

/// Judges the three images, in the order of the form: the ID card photos re-encoded, the
/// signature kept.
fn judge_images(
    front: Vec<u8>,
    back: Vec<u8>,
    signature: Vec<u8>,
) -> Result<[StoredImage; 3], SignError> {
    let photo = |image: SigningImage, bytes: &[u8]| {
        photos::process_with(bytes, &image.rules())
            .map(|p| StoredImage {
                kind: p.kind,
                bytes: p.stored,
            })
            .map_err(|e| SignError::Refused(image.refusal(&e)))
    };
    let front = photo(SigningImage::IdCardFront, &front)?;
    let back = photo(SigningImage::IdCardBack, &back)?;
    let image = SigningImage::Signature;
    let header = photos::check_with(&signature, &image.rules())
        .map_err(|e| SignError::Refused(image.refusal(&e)))?;
    Ok([
        front,
        back,
        StoredImage {
            kind: header.kind,
            bytes: signature,
        },
    ])
}

async fn delete_objects(storage: &Operator, keys: &[String]) {
    for key in keys {
        if let Err(e) = storage.delete(key).await {
            tracing::error!(error = %e, key, "could not delete an object of a failed signature");
        }
    }
}

/// Writes a signed authorisation. Run inside a transaction: the member row is locked so two
/// signatures at once cannot both pass the one-active-authorisation check. The member's WeChat
/// openid is taken from their row (empty for a demo sign-in, which has none).
async fn insert_signed<C: ConnectionTrait>(
    db: &C,
    vault: &PiiVault,
    new: NewAuthorisation<'_>,
) -> Result<PaymentAuthorisation, SignError> {
    let member_row = member::Entity::find_by_id(new.member_id)
        .lock_exclusive()
        .one(db)
        .await?
        .ok_or(SignError::NotFound)?;
    if active_for(db, new.member_id, &new.text.scheme_code)
        .await?
        .is_some()
    {
        return Err(already_active());
    }
    let (cipher, lookup) = vault
        .seal(PiiKind::BankCard, new.bank_card.as_str())
        .map_err(|e| DbErr::Custom(format!("sealing bank card: {e}")))?;
    let row = payment_authorisation::ActiveModel {
        pid: Set(new.pid.clone()),
        member_id: Set(new.member_id),
        text_id: Set(new.text.id),
        text_sha256: Set(new.text.sha256.clone()),
        bank_card_cipher: Set(cipher),
        bank_card_lookup: Set(lookup),
        id_front_key: Set(new.objects.id_card_front.clone()),
        id_back_key: Set(new.objects.id_card_back.clone()),
        signature_key: Set(new.objects.signature.clone()),
        signature_sha256: Set(new.signature_sha256.clone()),
        consent: Set(true),
        signed_at: Set(new.signed_at),
        openid: Set(member_row.wechat_openid.unwrap_or_default()),
        ip_address: Set(new.ip_address.clone()),
        user_agent: Set(new.user_agent.clone()),
        revoked_at: Set(None),
        effective_until: Set(None),
        ..Default::default()
    }
    .insert(db)
    .await?;
    Ok(PaymentAuthorisation {
        id: row.id,
        pid: row.pid,
        member_id: row.member_id,
        scheme_code: new.text.scheme_code.clone(),
        text_version: new.text.version,
        text_sha256: row.text_sha256,
        bank_card: new.bank_card,
        signature_sha256: row.signature_sha256,
        signed_at: row.signed_at,
        revoked_at: None,
        effective_until: None,
    })
}

fn member_id_of(member_pid: &str) -> sea_orm::sea_query::SelectStatement {
    Query::select()
        .column(member::Column::Id)
        .from(member::Entity)
        .and_where(member::Column::Pid.eq(member_pid))
        .to_owned()
}

/// A member's own authorisations, newest first.
pub async fn list_for_member<C: ConnectionTrait>(
    db: &C,
    vault: &PiiVault,
    member_pid: &str,
) -> Result<Vec<PaymentAuthorisation>, DbErr> {
    let rows = payment_authorisation::Entity::find()
        .filter(payment_authorisation::Column::MemberId.in_subquery(member_id_of(member_pid)))
        .order_by_desc(payment_authorisation::Column::SignedAt)
        .order_by_desc(payment_authorisation::Column::Id)
        .all(db)
        .await?;
    open_all(db, vault, rows).await
}

/// One of a member's own authorisations (`None` when it is not theirs or does not exist).
pub async fn get_for_member<C: ConnectionTrait>(
    db: &C,
    vault: &PiiVault,
    member_pid: &str,
    pid: &str,
) -> Result<Option<PaymentAuthorisation>, DbErr> {
    let rows = payment_authorisation::Entity::find()
        .filter(payment_authorisation::Column::MemberId.in_subquery(member_id_of(member_pid)))
        .filter(payment_authorisation::Column::Pid.eq(pid))
        .all(db)
        .await?;
    Ok(open_all(db, vault, rows).await?.into_iter().next())
}

/// Why a revocation was refused.
#[derive(Debug, thiserror::Error)]
pub enum RevokeError {
    #[error("no such authorisation")]
    NotFound,
    #[error("already revoked")]
    AlreadyRevoked,
    #[error("a written reason is required")]
    ReasonMissing,
    #[error(transparent)]
    Db(#[from] DbErr),
}

/// Revokes one of the member's own authorisations at `now` (stamped) on `today` (the service's
/// calendar day): it stays usable until the last day of today's month, so it takes effect on
/// the first day of the next month.
pub async fn revoke<C: ConnectionTrait>(
    db: &C,
    vault: &PiiVault,
    member_pid: &str,
    pid: &str,
    now: DateTime<Utc>,
    today: NaiveDate,
) -> Result<PaymentAuthorisation, RevokeError> {
    let found = get_for_member(db, vault, member_pid, pid)
        .await?
        .ok_or(RevokeError::NotFound)?;
    let until = last_day(YearMonth::from(today));
    // The conditional update is the claim: only one revocation turns revoked_at from NULL.
    let updated = payment_authorisation::Entity::update_many()
        .col_expr(payment_authorisation::Column::RevokedAt, Expr::value(now))
        .col_expr(
            payment_authorisation::Column::EffectiveUntil,
            Expr::value(until),
        )
        .filter(payment_authorisation::Column::Id.eq(found.id))
        .filter(payment_authorisation::Column::RevokedAt.is_null())
        .exec(db)
        .await?;
    if updated.rows_affected != 1 {
        return Err(RevokeError::AlreadyRevoked);
    }
    Ok(PaymentAuthorisation {
        revoked_at: Some(now),
        effective_until: Some(until),
        ..found
    })
}

/// The member revokes one of their own authorisations at `now` (see [`revoke`]), with its
/// audit entry, in one transaction.
pub async fn revoke_own(
    db: &DatabaseConnection,
    vault: &PiiVault,
    member_pid: &str,
    pid: &str,
    now: DateTime<Utc>,
    today: NaiveDate,
    request_id: Option<String>,
) -> Result<PaymentAuthorisation, RevokeError> {
    let txn = crate::db::begin_write(db).await?;
    let revoked = revoke(&txn, vault, member_pid, pid, now, today).await?;
    audit::record(
        &txn,
        &Actor::Account {
            pid: member_pid.to_owned(),
        },
        "authorisation.revoked",
        ("payment_authorisation", Some(&revoked.pid)),
        json!({ "effective_until": revoked.effective_until }),
        request_id,
    )
    .await?;
    txn.commit().await?;
    Ok(revoked)
}

/// A signed authorisation as the association's officer sees it for disputes and audits.
#[derive(Clone, Debug)]
pub struct StaffAuthorisation {
    pub authorisation: PaymentAuthorisation,
    pub member_pid: String,
    pub member_name: String,
    pub union_name: String,
    pub ip_address: String,
    pub user_agent: String,
}

/// Signed authorisations of members inside `scope`, newest first, optionally of one scheme
/// and/or members whose name contains `name`, one page (cursor on the authorisation).
pub async fn list_for_staff<C: ConnectionTrait>(
    db: &C,
    vault: &PiiVault,
    scope: &Scope,
    scheme_code: Option<&str>,
    name: Option<&str>,
    after_id: Option<i64>,
    limit: u64,
) -> Result<Page<StaffAuthorisation>, DbErr> {
    let mut q = payment_authorisation::Entity::find()
        .filter(payment_authorisation::Column::MemberId.in_subquery(scope.member_ids()));
    if let Some(code) = scheme_code {
        q = q.filter(payment_authorisation::Column::TextId.in_subquery(texts_of(code)));
    }
    if let Some(name) = name.map(str::trim).filter(|n| !n.is_empty()) {
        q = q.filter(
            payment_authorisation::Column::MemberId.in_subquery(
                Query::select()
                    .column(member::Column::Id)
                    .from(member::Entity)
                    .and_where(member::Column::Name.contains(name))
                    .to_owned(),
            ),
        );
    }
    if let Some(after) = after_id {
        q = q.filter(payment_authorisation::Column::Id.lt(after));
    }
    let rows = q
        .order_by_desc(payment_authorisation::Column::Id)
        .limit(limit + 1)
        .all(db)
        .await?;
    let Page {
        items: rows,
        next_cursor,
    } = page_from(rows, limit, |r| r.id);
    let origin: HashMap<i64, (String, String)> = rows
        .iter()
        .map(|r| (r.id, (r.ip_address.clone(), r.user_agent.clone())))
        .collect();
    let members = crate::service::member::rows_by_id(db, rows.iter().map(|r| r.member_id)).await?;
    let unions = crate::service::member::union_names(db, &members).await?;
    let items = open_all(db, vault, rows)
        .await?
        .into_iter()
        .map(|a| {
            let m = members
                .get(&a.member_id)
                .ok_or_else(|| DbErr::Custom(format!("authorisation {}: member missing", a.pid)))?;
            let (ip_address, user_agent) = origin.get(&a.id).cloned().unwrap_or_default();
            Ok(StaffAuthorisation {
                member_pid: m.pid.clone(),
                member_name: m.name.clone(),
                union_name: unions.get(&m.organisation_id).cloned().unwrap_or_default(),
                ip_address,
                user_agent,
                authorisation: a,
            })
        })
        .collect::<Result<Vec<_>, DbErr>>()?;
    Ok(Page { items, next_cursor })
}

/// The exact text a member signed, by the public id of one of their own authorisations
/// (`None` when it is not theirs or does not exist). The record keeps the text's id and hash,
/// so this is the version they read, whatever was published since.
pub async fn signed_text<C: ConnectionTrait>(
    db: &C,
    member_pid: &str,
    pid: &str,
) -> Result<Option<AuthorisationText>, DbErr> {
    let Some(row) = payment_authorisation::Entity::find()
        .filter(payment_authorisation::Column::MemberId.in_subquery(member_id_of(member_pid)))
        .filter(payment_authorisation::Column::Pid.eq(pid))
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    let text = authorisation_text::Entity::find_by_id(row.text_id)
        .one(db)
        .await?
        .ok_or_else(|| DbErr::Custom(format!("authorisation {pid}: text missing")))?;
    if text.sha256 != row.text_sha256 {
        return Err(DbErr::Custom(format!(
            "authorisation {pid}: the kept text no longer matches the signed hash"
        )));
    }
    Ok(Some(text.into()))
}

/// The evidence kept with a signed authorisation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Evidence {
    Signature,
    IdCardFront,
    IdCardBack,
}

impl Evidence {
    /// From its name in the path.
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "signature" => Some(Evidence::Signature),
            "id-card-front" => Some(Evidence::IdCardFront),
            "id-card-back" => Some(Evidence::IdCardBack),
            _ => None,
        }
    }
}

/// One evidence image of an authorisation as `actor_pid` views it (audited), with its media
/// type; `None` when there is no such authorisation.
#[allow(clippy::too_many_arguments)]
pub async fn evidence(
    db: &DatabaseConnection,
    storage: &Operator,
    scope: &Scope,
    pid: &str,
    which: Evidence,
    actor_pid: &str,
    request_id: Option<String>,
) -> Result<Option<(Vec<u8>, &'static str)>, anyhow::Error> {
    let Some(row) = payment_authorisation::Entity::find()
        .filter(payment_authorisation::Column::Pid.eq(pid))
        .filter(payment_authorisation::Column::MemberId.in_subquery(scope.member_ids()))
        .one(db)
        .await?
    else {
        return Ok(None);
    };
    let key = match which {
        Evidence::Signature => row.signature_key,
        Evidence::IdCardFront => row.id_front_key,
        Evidence::IdCardBack => row.id_back_key,
    };
    let bytes = storage.read(&key).await?.to_vec();
    let mime = if key.ends_with(".png") {
        "image/png"
    } else if key.ends_with(".webp") {
        "image/webp"
    } else {
        "image/jpeg"
    };
    audit::record(
        db,
        &Actor::Account {
            pid: actor_pid.to_owned(),
        },
        "authorisation.evidence_viewed",
        ("payment_authorisation", Some(pid)),
        json!({ "evidence": key.rsplit('/').next() }),
        request_id,
    )
    .await?;
    Ok(Some((bytes, mime)))
}

/// The association revokes a member's authorisation on their behalf (a call to the centre),
/// with a written reason: the same effect as the member's own revocation (from the first day of
/// next month on the service's calendar), audited as on behalf, and the member is told through
/// the outbox, in one transaction.
#[allow(clippy::too_many_arguments)]
pub async fn revoke_on_behalf(
    db: &DatabaseConnection,
    vault: &PiiVault,
    scope: &Scope,
    pid: &str,
    reason: &str,
    actor_pid: &str,
    now: DateTime<Utc>,
    today: NaiveDate,
    request_id: Option<String>,
) -> Result<PaymentAuthorisation, RevokeError> {
    let reason = reason.trim();
    if reason.is_empty() {
        return Err(RevokeError::ReasonMissing);
    }
    let txn = crate::db::begin_write(db).await?;
    let member_pid = payment_authorisation::Entity::find()
        .filter(payment_authorisation::Column::Pid.eq(pid))
        .filter(payment_authorisation::Column::MemberId.in_subquery(scope.member_ids()))
        .one(&txn)
        .await?
        .ok_or(RevokeError::NotFound)?;
    let member_row = member::Entity::find_by_id(member_pid.member_id)
        .one(&txn)
        .await?
        .ok_or(RevokeError::NotFound)?;
    let revoked = revoke(&txn, vault, &member_row.pid, pid, now, today).await?;
    audit::record(
        &txn,
        &Actor::Account {
            pid: actor_pid.to_owned(),
        },
        "authorisation.revoked",
        ("payment_authorisation", Some(&revoked.pid)),
        json!({
            "on_behalf_of": member_row.pid,
            "reason": reason,
            "effective_until": revoked.effective_until,
        }),
        request_id,
    )
    .await?;
    let effective_from = revoked.effective_until.and_then(|d| d.succ_opt());
    super::outbox::enqueue(
        &txn,
        super::outbox::Occasion::AuthorisationRevoked,
        member_row.id,
        &format!("authorisation:{}:revoked", revoked.pid),
        json!({
            "scheme_code": revoked.scheme_code,
            "effective_from": effective_from,
            "reason": reason,
        }),
        now,
    )
    .await?;
    txn.commit().await?;
    Ok(revoked)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ym(s: &str) -> YearMonth {
        YearMonth::parse(s).unwrap()
    }

    #[test]
    fn the_last_day_of_a_month_knows_leap_years() {
        assert_eq!(last_day(ym("2024-02")).to_string(), "2024-02-29");
        assert_eq!(last_day(ym("2023-02")).to_string(), "2023-02-28");
        assert_eq!(last_day(ym("2021-12")).to_string(), "2021-12-31");
        assert_eq!(last_day(ym("2021-11")).to_string(), "2021-11-30");
    }

    #[test]
    fn beijing_time_decides_the_day() {
        // 2021-11-30 16:30 UTC is already 1 December in Beijing.
        let at = "2021-11-30T16:30:00Z".parse::<DateTime<Utc>>().unwrap();
        assert_eq!(local_date(at).to_string(), "2021-12-01");
        let midnight = start_of_local_day(NaiveDate::from_ymd_opt(2021, 12, 1).unwrap());
        assert_eq!(midnight.to_rfc3339(), "2021-11-30T16:00:00+00:00");
    }

    #[test]
    fn the_shipped_text_names_the_four_parties_and_the_amount() {
        let (_, body) = SEED_TEXTS[0];
        for needle in [
            "参互职工",
            "武进区职工医疗互助保障服务中心",
            "代收银行",
            "见证方",
            "30 元",
            "次月 1 日",
        ] {
            assert!(body.contains(needle), "{needle}");
        }
        assert_eq!(sha256_hex(b"abc").len(), 64);
    }
}

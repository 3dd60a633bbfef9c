//! Members: people known to the scheme. ID, phone and bank card numbers are sealed (encrypted,
//! with a keyed look-up hash) on the way in and opened on the way out; nothing else ever sees
//! the ciphertext.

use chrono::Utc;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect, Set,
};
use serde_json::json;

use entity::{member, organisation};

use super::audit::{self, Actor};
use super::organisation::{Organisation, OrganisationKind};
use super::page::{Page, page_from};
use super::{is_unique_violation, new_pid};
use crate::auth::crypto::{PiiKind, PiiVault};
use crate::domain::{BankCardNumber, IdNumber, PersonName, PhoneNumber, Sex};
use crate::service::scope::{Scope, Scoped};

/// A member with personal data decrypted (mask before showing it).
#[derive(Clone, Debug)]
pub struct Member {
    pub id: i64,
    pub pid: String,
    pub organisation_pid: String,
    pub organisation_name: String,
    pub name: PersonName,
    pub id_number: IdNumber,
    pub phone: Option<PhoneNumber>,
    pub bank_card: Option<BankCardNumber>,
    pub retired: bool,
    pub wechat_bound: bool,
}

impl Member {
    /// Sex, as the ID number states it.
    pub fn sex(&self) -> Sex {
        self.id_number.sex()
    }
}

/// What a new member needs.
#[derive(Clone, Debug)]
pub struct NewMember {
    pub name: PersonName,
    pub id_number: IdNumber,
    pub phone: Option<PhoneNumber>,
    pub bank_card: Option<BankCardNumber>,
    pub retired: bool,
}

/// Why a member change was refused.
#[derive(Debug, thiserror::Error)]
pub enum MemberError {
    #[error("no such unit union in the caller's subtree")]
    UnitNotFound,
    #[error("members belong to a unit union")]
    NotAUnitUnion,
    #[error("a member with this ID number already exists")]
    DuplicateIdNumber,
    #[error(transparent)]
    Db(#[from] DbErr),
}

/// A member insert's error: an ID number already known is the caller's mistake, not ours.
fn insert_error(e: DbErr) -> MemberError {
    if is_unique_violation(&e) {
        MemberError::DuplicateIdNumber
    } else {
        MemberError::Db(e)
    }
}

fn seal(vault: &PiiVault, kind: PiiKind, value: &str) -> Result<(String, String), DbErr> {
    vault
        .seal(kind, value)
        .map_err(|e| DbErr::Custom(format!("sealing {kind:?}: {e}")))
}

fn open(
    vault: &PiiVault,
    m: member::Model,
    org: Option<organisation::Model>,
) -> Result<Member, DbErr> {
    let corrupt = |what: &str| DbErr::Custom(format!("member {}: {what} cannot be read", m.pid));
    let org = org.ok_or_else(|| corrupt("organisation"))?;
    let id_number = vault
        .open(PiiKind::IdNumber, &m.id_number_cipher)
        .ok()
        .and_then(|plain| IdNumber::parse(&plain).ok())
        .ok_or_else(|| corrupt("ID number"))?;
    let phone = match &m.phone_cipher {
        Some(c) => Some(
            vault
                .open(PiiKind::Phone, c)
                .ok()
                .and_then(|plain| PhoneNumber::parse(&plain).ok())
                .ok_or_else(|| corrupt("phone"))?,
        ),
        None => None,
    };
    let bank_card = match &m.bank_card_cipher {
        Some(c) => Some(
            vault
                .open(PiiKind::BankCard, c)
                .ok()
                .and_then(|plain| BankCardNumber::parse(&plain).ok())
                .ok_or_else(|| corrupt("bank card"))?,
        ),
        None => None,
    };
    let name = PersonName::parse(&m.name).map_err(|_| corrupt("name"))?;
    Ok(Member {
        id: m.id,
        pid: m.pid,
        organisation_pid: org.pid,
        organisation_name: org.name,
        name,
        id_number,
        phone,
        bank_card,
        retired: m.retired,
        wechat_bound: m.wechat_openid.is_some(),
    })
}

/// Adds a member to a unit union.
pub async fn create<C: ConnectionTrait>(
    db: &C,
    vault: &PiiVault,
    unit: &Organisation,
    new: &NewMember,
) -> Result<Member, MemberError> {
    if unit.kind != OrganisationKind::UnitUnion {
        return Err(MemberError::NotAUnitUnion);
    }
    let (id_cipher, id_lookup) = seal(vault, PiiKind::IdNumber, new.id_number.as_str())?;
    let phone = new
        .phone
        .as_ref()
        .map(|p| seal(vault, PiiKind::Phone, p.as_str()))
        .transpose()?;
    let card = new
        .bank_card
        .as_ref()
        .map(|c| seal(vault, PiiKind::BankCard, c.as_str()))
        .transpose()?;
    let now = Utc::now();
    member::ActiveModel {
        pid: Set(new_pid()),
        organisation_id: Set(unit.id),
        name: Set(new.name.as_str().to_owned()),
        id_number_cipher: Set(id_cipher),
        id_number_lookup: Set(id_lookup),
        birth_date: Set(new.id_number.birth_date()),
        sex: Set(new.id_number.sex().as_str().to_owned()),
        phone_cipher: Set(phone.as_ref().map(|p| p.0.clone())),
        phone_lookup: Set(phone.map(|p| p.1)),
        bank_card_cipher: Set(card.as_ref().map(|c| c.0.clone())),
        bank_card_lookup: Set(card.map(|c| c.1)),
        wechat_openid: Set(None),
        retired: Set(new.retired),
        created_at: Set(now),
        updated_at: Set(now),
        ..Default::default()
    }
    .insert(db)
    .await
    .map_err(insert_error)
    .map(|m| Member {
        id: m.id,
        pid: m.pid,
        organisation_pid: unit.pid.clone(),
        organisation_name: unit.name.clone(),
        name: new.name.clone(),
        id_number: new.id_number.clone(),
        phone: new.phone.clone(),
        bank_card: new.bank_card.clone(),
        retired: new.retired,
        wechat_bound: false,
    })
}

/// Adds one member to the unit union `organisation_pid` inside `scope`, with the audit entry of
/// `actor_pid` who added them, in one transaction.
pub async fn create_within(
    db: &DatabaseConnection,
    vault: &PiiVault,
    scope: &Scope,
    organisation_pid: &str,
    new: &NewMember,
    actor_pid: &str,
    request_id: Option<String>,
) -> Result<Member, MemberError> {
    let txn = crate::db::begin_write(db).await?;
    let unit = super::organisation::get_within(&txn, scope, organisation_pid)
        .await?
        .ok_or(MemberError::UnitNotFound)?;
    let created = create(&txn, vault, &unit, new).await?;
    audit::record(
        &txn,
        &Actor::Account {
            pid: actor_pid.to_owned(),
        },
        "member.created",
        ("member", Some(&created.pid)),
        json!({ "organisation": unit.pid }),
        request_id,
    )
    .await?;
    txn.commit().await?;
    Ok(created)
}

/// Adds many new people to a unit union at once (roster imports): batched inserts, then one
/// read back of their ids. Returns the id of each, by ID-number look-up hash. The caller has
/// made sure none of them exists yet (inside the same transaction).
pub async fn create_many<C: ConnectionTrait>(
    db: &C,
    vault: &PiiVault,
    unit: &Organisation,
    news: &[NewMember],
) -> Result<std::collections::HashMap<String, i64>, MemberError> {
    if unit.kind != OrganisationKind::UnitUnion {
        return Err(MemberError::NotAUnitUnion);
    }
    use super::bulk::{self, Kind};
    const COLUMNS: [(&str, Kind); 12] = [
        ("pid", Kind::Text),
        ("organisation_id", Kind::Int),
        ("name", Kind::Text),
        ("id_number_cipher", Kind::Text),
        ("id_number_lookup", Kind::Text),
        ("birth_date", Kind::Date),
        ("sex", Kind::Text),
        ("phone_cipher", Kind::Text),
        ("phone_lookup", Kind::Text),
        ("retired", Kind::Bool),
        ("created_at", Kind::Timestamp),
        ("updated_at", Kind::Timestamp),
    ];
    /// A new member's row as stored (`COLUMNS`).
    #[derive(serde::Serialize)]
    struct Row<'a> {
        pid: String,
        organisation_id: i64,
        name: &'a str,
        id_number_cipher: String,
        id_number_lookup: String,
        birth_date: String,
        sex: &'static str,
        phone_cipher: Option<String>,
        phone_lookup: Option<String>,
        retired: bool,
        created_at: &'a str,
        updated_at: &'a str,
    }
    let now = bulk::timestamp_text(Utc::now());
    // Each statement's people are sealed while the database stores the statement before
    // (`bulk::insert_returning`); one statement per few thousand people, through one JSON
    // parameter, returning the ids: a 10,000-row roster's members were 20 multi-row inserts of
    // 15 parameters a row and 20 look-ups of 500 values, each planned anew (BENCHMARKS.md,
    // issue 20).
    let sealed = news.chunks(bulk::ROWS_PER_STATEMENT).map(|people| {
        let rows = people
            .iter()
            .map(|new| {
                let (id_number_cipher, id_number_lookup) =
                    seal(vault, PiiKind::IdNumber, new.id_number.as_str())?;
                let phone = new
                    .phone
                    .as_ref()
                    .map(|p| seal(vault, PiiKind::Phone, p.as_str()))
                    .transpose()?;
                let (phone_cipher, phone_lookup) = phone.unzip();
                Ok(Row {
                    pid: new_pid(),
                    organisation_id: unit.id,
                    name: new.name.as_str(),
                    id_number_cipher,
                    id_number_lookup,
                    birth_date: bulk::date_text(new.id_number.birth_date()),
                    sex: new.id_number.sex().as_str(),
                    phone_cipher,
                    phone_lookup,
                    retired: new.retired,
                    created_at: &now,
                    updated_at: &now,
                })
            })
            .collect::<Result<Vec<Row>, DbErr>>()?;
        bulk::batch(&rows)
    });
    let stored = bulk::insert_returning(db, "member", &COLUMNS, sealed, "id, id_number_lookup")
        .await
        .map_err(insert_error)?;
    let mut ids = std::collections::HashMap::with_capacity(stored.len());
    for row in stored {
        ids.insert(
            row.try_get::<String>("", "id_number_lookup")?,
            row.try_get::<i64>("", "id")?,
        );
    }
    Ok(ids)
}

async fn one_where<C: ConnectionTrait>(
    db: &C,
    vault: &PiiVault,
    query: sea_orm::Select<member::Entity>,
) -> Result<Option<Member>, DbErr> {
    match query
        .find_also_related(organisation::Entity)
        .one(db)
        .await?
    {
        Some((m, o)) => Ok(Some(open(vault, m, o)?)),
        None => Ok(None),
    }
}

/// A member by public id inside `scope`.
pub async fn get_within<C: ConnectionTrait>(
    db: &C,
    vault: &PiiVault,
    scope: &Scope,
    pid: &str,
) -> Result<Option<Member>, DbErr> {
    one_where(
        db,
        vault,
        member::Entity::find_within(scope).filter(member::Column::Pid.eq(pid)),
    )
    .await
}

/// A member by public id (sign-in, unscoped).
pub async fn get_by_pid<C: ConnectionTrait>(
    db: &C,
    vault: &PiiVault,
    pid: &str,
) -> Result<Option<Member>, DbErr> {
    one_where(
        db,
        vault,
        member::Entity::find().filter(member::Column::Pid.eq(pid)),
    )
    .await
}

/// Many members by public id (exports), in chunks; unscoped — the caller scoped the list
/// the ids came from.
pub async fn get_many<C: ConnectionTrait>(
    db: &C,
    vault: &PiiVault,
    pids: &[String],
) -> Result<std::collections::HashMap<String, Member>, DbErr> {
    let mut out = std::collections::HashMap::with_capacity(pids.len());
    for chunk in pids.chunks(500) {
        for (m, o) in member::Entity::find()
            .filter(member::Column::Pid.is_in(chunk.to_vec()))
            .find_also_related(organisation::Entity)
            .all(db)
            .await?
        {
            let opened = open(vault, m, o)?;
            out.insert(opened.pid.clone(), opened);
        }
    }
    Ok(out)
}

/// Member rows by internal id (for assembling lists that name them); unscoped — the caller
/// scoped the rows the ids came from.
pub async fn rows_by_id<C: ConnectionTrait>(
    db: &C,
    ids: impl IntoIterator<Item = i64>,
) -> Result<std::collections::HashMap<i64, member::Model>, DbErr> {
    Ok(member::Entity::find()
        .filter(member::Column::Id.is_in(ids))
        .all(db)
        .await?
        .into_iter()
        .map(|m| (m.id, m))
        .collect())
}

/// The names of the unit unions `members` belong to, by organisation id.
pub async fn union_names<C: ConnectionTrait>(
    db: &C,
    members: &std::collections::HashMap<i64, member::Model>,
) -> Result<std::collections::HashMap<i64, String>, DbErr> {
    Ok(organisation::Entity::find()
        .filter(organisation::Column::Id.is_in(members.values().map(|m| m.organisation_id)))
        .all(db)
        .await?
        .into_iter()
        .map(|o| (o.id, o.name))
        .collect())
}

/// The member bound to a WeChat openid.
pub async fn find_by_openid<C: ConnectionTrait>(
    db: &C,
    vault: &PiiVault,
    openid: &str,
) -> Result<Option<Member>, DbErr> {
    one_where(
        db,
        vault,
        member::Entity::find().filter(member::Column::WechatOpenid.eq(openid)),
    )
    .await
}

/// The member on the roster with this name and ID number (how a worker proves who they are
/// on first sign-in).
pub async fn find_by_identity<C: ConnectionTrait>(
    db: &C,
    vault: &PiiVault,
    name: &PersonName,
    id_number: &IdNumber,
) -> Result<Option<Member>, DbErr> {
    let lookup = vault.lookup_hash(PiiKind::IdNumber, id_number.as_str());
    let found = one_where(
        db,
        vault,
        member::Entity::find().filter(member::Column::IdNumberLookup.eq(lookup)),
    )
    .await?;
    Ok(found.filter(|m| m.name.as_str() == name.as_str()))
}

/// Filters for listing members.
#[derive(Debug, Default)]
pub struct MemberFilter {
    /// Only this unit union (public id); it must itself be in scope to match anything.
    pub organisation_pid: Option<String>,
    /// Exact ID number (matched by its look-up hash).
    pub id_number: Option<IdNumber>,
    /// Exact mobile number (matched by its look-up hash).
    pub phone: Option<PhoneNumber>,
    /// Exact bank card number (matched by its look-up hash).
    pub bank_card: Option<BankCardNumber>,
}

/// Members inside `scope`, in id order.
pub async fn list_within<C: ConnectionTrait>(
    db: &C,
    vault: &PiiVault,
    scope: &Scope,
    filter: &MemberFilter,
    after_id: Option<i64>,
    limit: u64,
) -> Result<Page<Member>, DbErr> {
    let mut query = member::Entity::find_within(scope).order_by_asc(member::Column::Id);
    if let Some(org) = &filter.organisation_pid {
        query = query.filter(
            member::Column::OrganisationId.in_subquery(
                sea_orm::sea_query::Query::select()
                    .column(organisation::Column::Id)
                    .from(organisation::Entity)
                    .and_where(organisation::Column::Pid.eq(org.as_str()))
                    .to_owned(),
            ),
        );
    }
    if let Some(id_number) = &filter.id_number {
        query = query.filter(
            member::Column::IdNumberLookup
                .eq(vault.lookup_hash(PiiKind::IdNumber, id_number.as_str())),
        );
    }
    if let Some(phone) = &filter.phone {
        query = query.filter(
            member::Column::PhoneLookup.eq(vault.lookup_hash(PiiKind::Phone, phone.as_str())),
        );
    }
    if let Some(card) = &filter.bank_card {
        query = query.filter(
            member::Column::BankCardLookup.eq(vault.lookup_hash(PiiKind::BankCard, card.as_str())),
        );
    }
    if let Some(after) = after_id {
        query = query.filter(member::Column::Id.gt(after));
    }
    let rows = query
        .find_also_related(organisation::Entity)
        .limit(limit + 1)
        .all(db)
        .await?;
    let page = page_from(rows, limit, |(m, _)| m.id);
    Ok(Page {
        items: page
            .items
            .into_iter()
            .map(|(m, o)| open(vault, m, o))
            .collect::<Result<_, _>>()?,
        next_cursor: page.next_cursor,
    })
}

/// Binds a WeChat openid to the member. Returns false when the openid is already bound to
/// another member.
pub async fn bind_openid<C: ConnectionTrait>(
    db: &C,
    member_id: i64,
    openid: &str,
) -> Result<bool, DbErr> {
    let result = member::ActiveModel {
        id: Set(member_id),
        wechat_openid: Set(Some(openid.to_owned())),
        updated_at: Set(Utc::now()),
        ..Default::default()
    }
    .update(db)
    .await;
    match result {
        Ok(_) => Ok(true),
        Err(e) if is_unique_violation(&e) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Records the member's phone number (from WeChat's phone-number API).
pub async fn set_phone<C: ConnectionTrait>(
    db: &C,
    vault: &PiiVault,
    member_id: i64,
    phone: &PhoneNumber,
) -> Result<(), DbErr> {
    let (cipher, lookup) = seal(vault, PiiKind::Phone, phone.as_str())?;
    member::ActiveModel {
        id: Set(member_id),
        phone_cipher: Set(Some(cipher)),
        phone_lookup: Set(Some(lookup)),
        updated_at: Set(Utc::now()),
        ..Default::default()
    }
    .update(db)
    .await?;
    Ok(())
}

//! What a union's roster said about a person beyond what enrolment needs — workplace (工作单位),
//! department (部门), employee number (工号), remarks (备注), the insured flag as written and every
//! other column of the file — kept on the person's enrolment entry and shown wherever the clerk
//! looks: the ledger (JSON and workbook), the member detail, the renewal roster.
//!
//! None of it is a sealed field: the reader has already masked ID, phone and card numbers in
//! the free text (`formats::roster`), and these values never decide anything.

use std::collections::HashMap;
use std::fmt;

use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder};
use serde::de::{MapAccess, Visitor};
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use utoipa::ToSchema;

use entity::{enrolment_batch, enrolment_entry, member, organisation};

use super::enrolment::BatchStatus;
use crate::service::scope::{Scope, Scoped};

/// The roster's other columns of one row: `(header, text)` in the file's order. As JSON, an
/// object in that order (`{"民族": "汉", "政治面貌": "党员"}`).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ExtraColumns(pub Vec<(String, String)>);

impl ExtraColumns {
    /// The value under `header`, if the row had it.
    pub fn get(&self, header: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(h, _)| h == header)
            .map(|(_, v)| v.as_str())
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// As stored: the JSON object, or `None` when there is nothing.
    pub fn to_stored(&self) -> Option<String> {
        (!self.0.is_empty()).then(|| serde_json::to_string(self).unwrap_or_default())
    }

    /// From the stored JSON; anything unreadable is no columns (never an error on a read path).
    pub fn from_stored(stored: Option<&str>) -> ExtraColumns {
        stored
            .and_then(|s| serde_json::from_str(s).ok())
            .unwrap_or_default()
    }
}

impl Serialize for ExtraColumns {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for ExtraColumns {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct InOrder;
        impl<'de> Visitor<'de> for InOrder {
            type Value = ExtraColumns;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("an object of texts")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ExtraColumns, A::Error> {
                let mut pairs = Vec::new();
                while let Some((k, v)) = map.next_entry::<String, String>()? {
                    pairs.push((k, v));
                }
                Ok(ExtraColumns(pairs))
            }
        }
        deserializer.deserialize_map(InOrder)
    }
}

/// What the roster said about one person.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, ToSchema)]
pub struct RosterFacts {
    /// 工作单位: the workplace (a subsidiary, a branch), not the union.
    pub workplace: Option<String>,
    /// 部门.
    pub department: Option<String>,
    /// 工号.
    pub employee_number: Option<String>,
    /// 备注 (ID, phone and card numbers masked).
    pub remarks: Option<String>,
    /// 是否参加医保 as written; `null` when left empty.
    pub insured: Option<bool>,
    /// Every other column of the roster, header → text, in the file's order (ID, phone and card
    /// numbers masked).
    #[schema(value_type = std::collections::HashMap<String, String>)]
    pub extra_columns: ExtraColumns,
}

impl RosterFacts {
    fn from_entry(e: &enrolment_entry::Model) -> RosterFacts {
        RosterFacts {
            workplace: e.workplace.clone(),
            department: e.department.clone(),
            employee_number: e.employee_number.clone(),
            remarks: e.remarks.clone(),
            insured: e.insured,
            extra_columns: ExtraColumns::from_stored(e.extra_columns.as_deref()),
        }
    }
}

/// The facts of the entries behind memberships, by `(batch id, member id)` (the entry's
/// unique key): queried 500 members at a time.
pub async fn by_batch_and_member<C: ConnectionTrait>(
    db: &C,
    keys: &[(i64, i64)],
) -> Result<HashMap<(i64, i64), RosterFacts>, DbErr> {
    let mut batch_ids: Vec<i64> = keys.iter().map(|(b, _)| *b).collect();
    batch_ids.sort_unstable();
    batch_ids.dedup();
    let mut member_ids: Vec<i64> = keys.iter().map(|(_, m)| *m).collect();
    member_ids.sort_unstable();
    member_ids.dedup();
    let mut facts = HashMap::new();
    if batch_ids.is_empty() {
        return Ok(facts);
    }
    for chunk in member_ids.chunks(500) {
        for e in enrolment_entry::Entity::find()
            .filter(enrolment_entry::Column::BatchId.is_in(batch_ids.clone()))
            .filter(enrolment_entry::Column::MemberId.is_in(chunk.to_vec()))
            .all(db)
            .await?
        {
            facts.insert((e.batch_id, e.member_id), RosterFacts::from_entry(&e));
        }
    }
    Ok(facts)
}

/// One roster line naming a member: the batch it is on and what it said.
#[derive(Clone, Debug)]
pub struct MemberRosterLine {
    pub enrolment_pid: String,
    pub organisation_pid: String,
    pub organisation_name: String,
    pub scheme_code: String,
    pub status: BatchStatus,
    /// The Excel row the person was on.
    pub row: i32,
    pub submitted_at: DateTime<Utc>,
    pub facts: RosterFacts,
}

/// Every roster line naming the member of public id `member_pid` on a batch inside `scope`,
/// newest first (lines of unions outside the caller's subtree are left out).
pub async fn lines_of_member<C: ConnectionTrait>(
    db: &C,
    scope: &Scope,
    member_pid: &str,
) -> Result<Vec<MemberRosterLine>, DbErr> {
    let Some(member) = member::Entity::find()
        .filter(member::Column::Pid.eq(member_pid))
        .one(db)
        .await?
    else {
        return Ok(Vec::new());
    };
    let entries = enrolment_entry::Entity::find()
        .filter(enrolment_entry::Column::MemberId.eq(member.id))
        .all(db)
        .await?;
    if entries.is_empty() {
        return Ok(Vec::new());
    }
    let batches: HashMap<i64, (enrolment_batch::Model, Option<organisation::Model>)> =
        enrolment_batch::Entity::find_within(scope)
            .filter(enrolment_batch::Column::Id.is_in(entries.iter().map(|e| e.batch_id)))
            .find_also_related(organisation::Entity)
            .order_by_desc(enrolment_batch::Column::Id)
            .all(db)
            .await?
            .into_iter()
            .map(|(b, o)| (b.id, (b, o)))
            .collect();
    let mut lines: Vec<(i64, MemberRosterLine)> = Vec::new();
    for e in &entries {
        let Some((b, Some(o))) = batches.get(&e.batch_id) else {
            continue;
        };
        let status = BatchStatus::parse(&b.status).ok_or_else(|| {
            DbErr::Custom(format!("batch {}: unknown status {}", b.pid, b.status))
        })?;
        lines.push((
            b.id,
            MemberRosterLine {
                enrolment_pid: b.pid.clone(),
                organisation_pid: o.pid.clone(),
                organisation_name: o.name.clone(),
                scheme_code: b.scheme_code.clone(),
                status,
                row: e.row_number,
                submitted_at: b.created_at,
                facts: RosterFacts::from_entry(e),
            },
        ));
    }
    lines.sort_by_key(|(id, _)| std::cmp::Reverse(*id));
    Ok(lines.into_iter().map(|(_, l)| l).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extra_columns_keep_the_file_order_through_storage() {
        let extra = ExtraColumns(vec![
            ("政治面貌".into(), "党员".into()),
            ("民族".into(), "汉".into()),
            ("A列".into(), "x".into()),
        ]);
        let stored = extra.to_stored().unwrap();
        assert_eq!(stored, r#"{"政治面貌":"党员","民族":"汉","A列":"x"}"#);
        assert_eq!(ExtraColumns::from_stored(Some(&stored)), extra);
        assert_eq!(
            ExtraColumns::from_stored(Some("not json")),
            ExtraColumns::default()
        );
        assert_eq!(ExtraColumns::default().to_stored(), None);
    }
}

//! Scheme versions: the seed schemes are published as version 1 on first start; an
//! administrator publishes later versions. Versions are never changed or deleted.

use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, DbErr, EntityTrait,
    QueryFilter, QueryOrder, QuerySelect, Set,
};
use serde_json::json;

use entity::scheme_version;

use super::{Requester, is_unique_violation};
use crate::engine::{SchemeDefinition, SchemeProblem, seed_schemes};

/// A published version.
#[derive(Clone, Debug)]
pub struct PublishedScheme {
    pub version: i32,
    pub definition: SchemeDefinition,
    pub published_at: DateTime<Utc>,
    pub published_by: String,
}

/// Why publishing was refused.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    #[error("the definition is invalid")]
    Invalid(Vec<SchemeProblem>),
    #[error("another version was published at the same moment; try again")]
    Concurrent,
    #[error(transparent)]
    Db(#[from] DbErr),
}

fn to_published(m: scheme_version::Model) -> Result<PublishedScheme, DbErr> {
    let definition: SchemeDefinition = serde_json::from_str(&m.definition).map_err(|e| {
        DbErr::Custom(format!(
            "scheme {} v{} is unreadable: {e}",
            m.code, m.version
        ))
    })?;
    Ok(PublishedScheme {
        version: m.version,
        definition,
        published_at: m.published_at,
        published_by: m.published_by,
    })
}

async fn insert<C: ConnectionTrait>(
    db: &C,
    definition: &SchemeDefinition,
    version: i32,
    published_by: &str,
) -> Result<scheme_version::Model, DbErr> {
    let json = serde_json::to_string(definition)
        .map_err(|e| DbErr::Custom(format!("serialising scheme {}: {e}", definition.code)))?;
    scheme_version::ActiveModel {
        code: Set(definition.code.clone()),
        version: Set(version),
        definition: Set(json),
        complete: Set(definition.is_complete()),
        published_at: Set(Utc::now()),
        published_by: Set(published_by.to_owned()),
        ..Default::default()
    }
    .insert(db)
    .await
}

/// Publishes each seed scheme as version 1 unless the scheme already has a version. Safe to
/// run from several replicas at once (the unique key settles races).
pub async fn ensure_seeds<C: ConnectionTrait>(db: &C) -> Result<(), DbErr> {
    let seeds = seed_schemes().map_err(|e| DbErr::Custom(format!("seed schemes: {e}")))?;
    for definition in seeds {
        if latest(db, &definition.code).await?.is_some() {
            continue;
        }
        match insert(db, &definition, 1, "seed").await {
            Ok(_) => {}
            Err(e) if is_unique_violation(&e) => {}
            Err(e) => return Err(e),
        }
    }
    Ok(())
}

/// The newest version of a scheme.
pub async fn latest<C: ConnectionTrait>(
    db: &C,
    code: &str,
) -> Result<Option<PublishedScheme>, DbErr> {
    scheme_version::Entity::find()
        .filter(scheme_version::Column::Code.eq(code))
        .order_by_desc(scheme_version::Column::Version)
        .one(db)
        .await?
        .map(to_published)
        .transpose()
}

/// One version of a scheme.
pub async fn version<C: ConnectionTrait>(
    db: &C,
    code: &str,
    version: i32,
) -> Result<Option<PublishedScheme>, DbErr> {
    scheme_version::Entity::find()
        .filter(scheme_version::Column::Code.eq(code))
        .filter(scheme_version::Column::Version.eq(version))
        .one(db)
        .await?
        .map(to_published)
        .transpose()
}

/// The newest version of every scheme, by code.
pub async fn all_latest<C: ConnectionTrait>(db: &C) -> Result<Vec<PublishedScheme>, DbErr> {
    let rows = scheme_version::Entity::find()
        .order_by_asc(scheme_version::Column::Code)
        .order_by_desc(scheme_version::Column::Version)
        .all(db)
        .await?;
    let mut out: Vec<PublishedScheme> = Vec::new();
    for row in rows {
        if out.last().is_some_and(|p| p.definition.code == row.code) {
            continue;
        }
        out.push(to_published(row)?);
    }
    Ok(out)
}

/// Every version of a scheme, newest first (the history an administrator audits).
pub async fn versions<C: ConnectionTrait>(
    db: &C,
    code: &str,
) -> Result<Vec<PublishedScheme>, DbErr> {
    scheme_version::Entity::find()
        .filter(scheme_version::Column::Code.eq(code))
        .order_by_desc(scheme_version::Column::Version)
        .all(db)
        .await?
        .into_iter()
        .map(to_published)
        .collect()
}

/// Validates and publishes `definition` as the next version of its scheme (audited).
pub async fn publish(
    db: &DatabaseConnection,
    requester: &Requester,
    definition: &SchemeDefinition,
) -> Result<PublishedScheme, PublishError> {
    let txn = crate::db::begin_write(db).await?;
    let published = publish_next(&txn, definition, &requester.pid).await?;
    requester
        .audit(
            &txn,
            "scheme.published",
            ("scheme", Some(&definition.code)),
            json!({ "version": published.version, "complete": definition.is_complete() }),
        )
        .await?;
    txn.commit().await?;
    Ok(published)
}

async fn publish_next<C: ConnectionTrait>(
    db: &C,
    definition: &SchemeDefinition,
    published_by: &str,
) -> Result<PublishedScheme, PublishError> {
    definition.validate().map_err(PublishError::Invalid)?;
    let newest: Option<i32> = scheme_version::Entity::find()
        .select_only()
        .column_as(scheme_version::Column::Version.max(), "v")
        .filter(scheme_version::Column::Code.eq(definition.code.as_str()))
        .into_tuple::<Option<i32>>()
        .one(db)
        .await?
        .flatten();
    let model = insert(db, definition, newest.unwrap_or(0) + 1, published_by)
        .await
        .map_err(|e| {
            if is_unique_violation(&e) {
                PublishError::Concurrent
            } else {
                PublishError::Db(e)
            }
        })?;
    Ok(to_published(model)?)
}

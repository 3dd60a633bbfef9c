//! Whether a unit union takes part in a scheme for a coverage period: the association's
//! task-allocation (an enrolment target naming the scheme for the period's year, set on the
//! union or on any organisation above it), or the union's members already holding memberships
//! of the scheme's family (a union that took part keeps taking part). A target for "all
//! schemes" does not count: it allocates head-count, not a scheme.

use std::collections::HashMap;

use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QuerySelect};

use entity::{enrolment_target, membership, organisation};

use super::enrolment::scheme_family;

/// The ids of an organisation and every organisation above it, from its materialised path.
fn ancestry(path: &str) -> Vec<i64> {
    path.split('/').filter_map(|s| s.parse().ok()).collect()
}

/// Whether the unit union `organisation_id` takes part in `scheme_code` for coverage `year`.
pub async fn takes_part<C: ConnectionTrait>(
    db: &C,
    organisation_id: i64,
    scheme_code: &str,
    year: i32,
) -> Result<bool, DbErr> {
    let Some(org) = organisation::Entity::find_by_id(organisation_id)
        .one(db)
        .await?
    else {
        return Ok(false);
    };
    let family = scheme_family(scheme_code);
    let allocated = enrolment_target::Entity::find()
        .filter(enrolment_target::Column::OrganisationId.is_in(ancestry(&org.path)))
        .filter(enrolment_target::Column::Year.eq(year))
        .filter(enrolment_target::Column::SchemeCode.eq(family))
        .one(db)
        .await?
        .is_some();
    if allocated {
        return Ok(true);
    }
    let codes: Vec<String> = membership::Entity::find()
        .select_only()
        .column(membership::Column::SchemeCode)
        .filter(membership::Column::OrganisationId.eq(organisation_id))
        .filter(membership::Column::SchemeCode.starts_with(family))
        .distinct()
        .into_tuple()
        .all(db)
        .await?;
    Ok(codes.iter().any(|c| scheme_family(c) == family))
}

/// [`takes_part`] for many unions at once, each asked once.
#[derive(Default)]
pub struct Participation {
    known: HashMap<i64, bool>,
}

impl Participation {
    /// Whether `organisation_id` takes part (remembered).
    pub async fn of<C: ConnectionTrait>(
        &mut self,
        db: &C,
        organisation_id: i64,
        scheme_code: &str,
        year: i32,
    ) -> Result<bool, DbErr> {
        if let Some(known) = self.known.get(&organisation_id) {
            return Ok(*known);
        }
        let answer = takes_part(db, organisation_id, scheme_code, year).await?;
        self.known.insert(organisation_id, answer);
        Ok(answer)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_path_names_every_organisation_above() {
        assert_eq!(super::ancestry("/1/5/9/"), [1, 5, 9]);
    }
}

//! Who does what in the schemes (`workflow.md`): the roles a token carries and staff accounts hold.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The roles of `workflow.md`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    Member,
    UnionReviewer,
    ServicePointReviewer,
    AssociationReviewer,
    Admin,
}

impl Role {
    /// Stable snake_case name, as stored and serialised.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Member => "member",
            Role::UnionReviewer => "union_reviewer",
            Role::ServicePointReviewer => "service_point_reviewer",
            Role::AssociationReviewer => "association_reviewer",
            Role::Admin => "admin",
        }
    }

    /// Parses a stored role name.
    pub fn parse(value: &str) -> Option<Role> {
        [
            Role::Member,
            Role::UnionReviewer,
            Role::ServicePointReviewer,
            Role::AssociationReviewer,
            Role::Admin,
        ]
        .into_iter()
        .find(|r| r.as_str() == value)
    }

    /// Roles held by staff accounts.
    pub fn is_staff(self) -> bool {
        self != Role::Member
    }

    /// Roles that see full ID, phone and bank card numbers (the association pays to cards
    /// and answers to the members; unions and service points see masked values).
    pub fn sees_full_personal_data(self) -> bool {
        matches!(self, Role::AssociationReviewer | Role::Admin)
    }
}

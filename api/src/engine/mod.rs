//! The pure benefit engine: scheme versions as data, and the one function that computes every
//! payout ([`judge_event`]). No database, clock or I/O; exact decimals, never floats. Money is
//! [`crate::domain::Money`]'s: the engine computes on its exact decimals, rounds each item
//! with it, and reads and writes the contract's amounts with its strict reading
//! ([`crate::domain::money::contract_amount`]).
//!
//! - [`scheme`]: definition types (rules + display data) and validation for publishing;
//! - [`primitives`]: bands, brackets, deductibles, caps, allowances, proration, calendars;
//! - [`judge`]: judges the next event of a period, knowing the ones before it;
//! - [`contract`]: the simulation contract's request, response and error;
//! - [`period`]: the period is the unit of money — a period's claims judged in filing order, and
//!   what an approval grants;
//! - [`seeds`]: the seed schemes shipped in `api/schemes/` (compiled in).
//!
//! May use: `domain/`. Never: the database, the clock (`today` is passed in), `service/`,
//! `formats/`, `integrations/`, `routes/` or actix.

pub mod bounds;
pub mod claim_rules;
pub mod contract;
pub mod judge;
pub mod model;
pub mod period;
pub mod primitives;
pub mod scheme;
pub mod seeds;

#[cfg(test)]
mod proptests;
#[cfg(test)]
mod tests;

pub use contract::{
    ErrorCode, EventResult, SimulationError, SimulationErrorBody, SimulationErrorPayload,
    SimulationRequest, SimulationResponse, simulate,
};
pub use judge::judge_event;
pub use model::{
    Cause, Component, Diagnosis, Event, EventKind, InjuryGrade, ItemCode, JudgedEvent, Judgement,
    MemberPeriod, OutpatientMonth, Refusal, Stay, WorkInjury, YearMonth,
};
pub use primitives::{
    coverage_period, next_consecutive_periods, observation_period, renewal_is_continuous,
};
pub use scheme::{SchemeDefinition, SchemeProblem};
pub use seeds::{SchemeLoadError, parse_scheme_toml, seed_schemes};

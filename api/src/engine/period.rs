//! The period is the unit of money.
//!
//! A period's claims are judged together, in the order they were filed, exactly as the
//! simulation judges its events — never in the order reviewers happen to approve them. When a
//! claim is approved, the whole period is judged again with it; the claim is granted what that
//! adds to what the period's other claims were already granted. If an earlier-filed claim is
//! approved after a later one took an allowance or a bracket, what it adds can be less than
//! nothing: it is granted 0 and the period carries the overpaid amount as an open offset, which
//! the next claims of the period absorb. Whatever the order of approvals:
//!
//! `Σ granted − open offset = the judgement of the approved claims in filing order`, to the fen.

use rust_decimal::Decimal;

use super::judge::judge_event;
use super::model::{Event, JudgedEvent, Judgement, MemberPeriod};
use super::scheme::SchemeDefinition;

/// Judges `events` (a period's, in filing order), each knowing the ones before it — the
/// simulation's rule. A refused event stays in the history, as in the simulation.
pub fn judge_in_filing_order(
    scheme: &SchemeDefinition,
    member: &MemberPeriod,
    events: &[Event],
) -> Vec<Judgement> {
    let each: Vec<(&SchemeDefinition, &Event)> = events.iter().map(|e| (scheme, e)).collect();
    judge_each_in_filing_order(member, &each)
}

/// [`judge_in_filing_order`] where each claim is judged under its own scheme version (the one
/// in force when it was filed), still knowing every claim filed before it.
pub fn judge_each_in_filing_order(
    member: &MemberPeriod,
    events: &[(&SchemeDefinition, &Event)],
) -> Vec<Judgement> {
    let mut history: Vec<JudgedEvent> = Vec::with_capacity(events.len());
    for (scheme, event) in events.iter().copied() {
        let judgement = judge_event(scheme, member, &history, event);
        history.push(JudgedEvent {
            event: event.clone(),
            judgement,
        });
    }
    history.into_iter().map(|j| j.judgement).collect()
}

/// What the claim being approved is granted, and what the period still owes back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant {
    /// The period's total after this approval: every approved claim judged in filing order.
    pub period_total: Decimal,
    /// Granted to the claim being approved (never negative).
    pub granted: Decimal,
    /// Granted to the period's claims beyond its total, after this approval.
    pub open_offset: Decimal,
}

/// The grant of the claim being approved, given the period's total with it
/// (`period_total`) and what the period's other approved claims were granted
/// (`granted_before`). The open offset is not an input: it is always
/// `Σ granted − period_total` when that is positive, so it cannot drift from the claims.
pub fn grant(period_total: Decimal, granted_before: Decimal) -> Grant {
    let due = period_total - granted_before;
    let granted = due.max(Decimal::ZERO);
    Grant {
        period_total,
        granted,
        open_offset: (granted_before + granted - period_total).max(Decimal::ZERO),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rust_decimal_macros::dec;

    #[test]
    fn a_claim_is_granted_what_it_adds_to_the_period() {
        // Stay B approved first: 2860.00. Then A, filed before it: the period is 5900.00.
        let first = grant(dec!(2860.00), dec!(0));
        assert_eq!(first.granted, dec!(2860.00));
        assert_eq!(first.open_offset, dec!(0));
        let second = grant(dec!(5900.00), dec!(2860.00));
        assert_eq!(second.granted, dec!(3040.00));
        assert_eq!(second.open_offset, dec!(0));
    }

    #[test]
    fn less_than_nothing_is_granted_zero_and_carried_as_an_offset() {
        let g = grant(dec!(1000.00), dec!(1200.00));
        assert_eq!(g.granted, dec!(0));
        assert_eq!(g.open_offset, dec!(200.00));
        // The next claim adds 500.00 to the period: 200.00 of it absorbs the offset.
        let next = grant(dec!(1500.00), dec!(1200.00));
        assert_eq!(next.granted, dec!(300.00));
        assert_eq!(next.open_offset, dec!(0));
    }

    #[test]
    fn granted_less_offset_is_always_the_period_total() {
        let mut granted_sum = dec!(0);
        for total in [dec!(10), dec!(5), dec!(30), dec!(30), dec!(12.34), dec!(40)] {
            let g = grant(total, granted_sum);
            granted_sum += g.granted;
            assert!(g.granted >= dec!(0));
            assert_eq!(granted_sum - g.open_offset, total);
        }
    }
}

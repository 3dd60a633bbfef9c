//! The core: judges the next event of a period, knowing the ones judged before it.
//!
//! Pure: no database, clock or I/O. Every payout the app makes is computed here.

use rust_decimal::Decimal;

use super::model::{
    Cause, Component, Diagnosis, Event, InjuryGrade, ItemCode, JudgedEvent, Judgement,
    MemberPeriod, OutpatientMonth, Refusal, Stay, WorkInjury,
};
use super::primitives::{
    accumulated_difference, banded, bracket_amount, bracket_for, covered_month_days,
    covered_stay_days, daily_rate, observation_period, prorate, stay_days, within,
};
use super::scheme::{
    AmountField, DiagnosisRules, InpatientRules, SchemeDefinition, StayCoverage, StayDeductible,
    WorkInjuryRules,
};
use crate::domain::Money;

/// Rounds an item once, to the fen, half-up (四舍五入): money's one rounding rule, applied to
/// the engine's exact decimals.
pub(super) fn round_money(amount: Decimal) -> Decimal {
    Money::from_decimal(amount).round_half_up().as_decimal()
}

/// What the earlier events of the period leave behind.
#[derive(Debug, Default)]
struct PeriodState {
    /// An earlier stay was paid (not refused, banded + allowance above 0).
    paid_stay: bool,
    /// Banded benefits paid so far (stays and outpatient months).
    banded_used: Decimal,
    /// The accumulated counted amount of earlier stays (wj).
    accumulated: Decimal,
    /// What the accumulated brackets already paid (wj).
    bracket_paid: Decimal,
    /// The once-a-year extra grant was paid (yc).
    extra_grant_paid: bool,
    /// The first-stay grant was paid (yc 安馨).
    first_stay_grant_paid: bool,
    /// A disease benefit was paid (xinkang, wj critical illness).
    diagnosis_paid: bool,
}

impl PeriodState {
    fn from_history(history: &[JudgedEvent]) -> Self {
        let mut s = Self::default();
        for judged in history {
            let j = &judged.judgement;
            if j.refused.is_some() {
                continue;
            }
            for item in &j.items {
                match item.code {
                    ItemCode::Banded => s.banded_used += item.amount,
                    ItemCode::Bracket => s.bracket_paid += item.amount,
                    ItemCode::ExtraGrant => s.extra_grant_paid = true,
                    ItemCode::AnxinAllowance => s.first_stay_grant_paid = true,
                    _ => {}
                }
            }
            match &judged.event {
                Event::Inpatient(_) => {
                    if j.item(ItemCode::Banded) + j.item(ItemCode::DailyAllowance) > Decimal::ZERO {
                        s.paid_stay = true;
                    }
                    if let Some(c) = j.counted_amount {
                        s.accumulated = s.accumulated.saturating_add(c);
                    }
                }
                Event::Diagnosis(_) => {
                    if j.payable() > Decimal::ZERO {
                        s.diagnosis_paid = true;
                    }
                }
                Event::OutpatientSpecial(_) | Event::WorkInjury(_) => {}
            }
        }
        s
    }
}

/// Judges `event`, the next event of the member's period, given the events of the same period
/// judged before it (in filing order). Returns the items (each rounded once, half-up, to 0.01;
/// items of 0 left out) or a refusal.
///
/// The scheme should be complete and valid, and the event should carry the fields the scheme
/// needs (see [`super::contract::missing_scheme_field`]); `simulate` checks both first. Here a
/// missing amount counts as 0 and a missing parameter pays nothing, so no input can panic.
pub fn judge_event(
    scheme: &SchemeDefinition,
    member: &MemberPeriod,
    history: &[JudgedEvent],
    event: &Event,
) -> Judgement {
    if !scheme.accepts(event.kind()) {
        return Judgement::refused(Refusal::WrongEventKind);
    }
    let state = PeriodState::from_history(history);
    match event {
        Event::Inpatient(stay) => match &scheme.inpatient {
            Some(rules) => judge_stay(rules, member, &state, stay),
            None => Judgement::refused(Refusal::WrongEventKind),
        },
        Event::OutpatientSpecial(month) => match (&scheme.outpatient_special, &scheme.inpatient) {
            (Some(o), Some(rules)) => {
                judge_outpatient_month(rules, o.counts_toward_period_cap, member, &state, month)
            }
            _ => Judgement::refused(Refusal::WrongEventKind),
        },
        Event::Diagnosis(d) => match &scheme.diagnosis {
            Some(rules) => {
                judge_diagnosis(rules, scheme.coverage.observation_days, member, &state, d)
            }
            None => Judgement::refused(Refusal::WrongEventKind),
        },
        Event::WorkInjury(w) => match &scheme.work_injury {
            Some(rules) => judge_work_injury(rules, member, w),
            None => Judgement::refused(Refusal::WrongEventKind),
        },
    }
}

/// Collects items, leaving out zeros.
struct Components(Vec<Component>);

impl Components {
    fn new() -> Self {
        Self(Vec::with_capacity(4))
    }
    fn push(&mut self, code: ItemCode, amount: Decimal) {
        if amount > Decimal::ZERO {
            self.0.push(Component { code, amount });
        }
    }
    fn total(&self) -> Decimal {
        self.0.iter().map(|i| i.amount).sum()
    }
}

/// The stay's base amount for the scheme (exact; wj's counted amount).
fn stay_amount(rules: &InpatientRules, stay: &Stay) -> Decimal {
    let zero = Decimal::ZERO;
    if let Some(c) = &rules.counted_amount
        && !stay.settled_by_insurance
    {
        return if stay.cause == Cause::TrafficAccident {
            stay.own_liability_cost
                .unwrap_or(zero)
                .saturating_mul(c.traffic_accident_rate)
        } else {
            stay.unsettled_cost
                .unwrap_or(zero)
                .saturating_mul(c.unsettled_rate)
        };
    }
    match rules.amount_field {
        AmountField::EligibleSelfPay => stay.eligible_self_pay,
        AmountField::PersonalBurden => stay.personal_burden,
        AmountField::OutOfPocket => stay.out_of_pocket,
    }
    .unwrap_or(zero)
}

fn judge_stay(
    rules: &InpatientRules,
    member: &MemberPeriod,
    state: &PeriodState,
    stay: &Stay,
) -> Judgement {
    // 1. Coverage.
    let total_days = stay_days(stay.admitted_on, stay.discharged_on);
    let covered_days = match rules.coverage_rule {
        StayCoverage::ProrateByCoveredDays => covered_stay_days(
            stay.admitted_on,
            stay.discharged_on,
            member.coverage_start,
            member.coverage_end,
            member.continuous_renewal,
        ),
        StayCoverage::AdmissionDate => {
            if within(stay.admitted_on, member.coverage_start, member.coverage_end) {
                total_days
            } else {
                0
            }
        }
    };
    if covered_days <= 0 {
        return Judgement::refused(Refusal::OutsideCoverage);
    }
    // 2. Excluded causes.
    if rules.excluded_causes.contains(&stay.cause) {
        return Judgement::refused(Refusal::ExcludedCause);
    }
    let amount = stay_amount(rules, stay);
    let mut items = Components::new();
    let mut cut_by_cap = false;

    // 3a. Accumulated brackets with difference payment (wj).
    if let Some(brackets) = &rules.accumulated_brackets {
        let top = brackets
            .iter()
            .map(|b| b.amount)
            .max()
            .unwrap_or(Decimal::ZERO);
        if top > Decimal::ZERO && state.bracket_paid >= top {
            return Judgement::refused(Refusal::BenefitTerminated);
        }
        let pay = accumulated_difference(brackets, state.accumulated, amount, state.bracket_paid);
        items.push(ItemCode::Bracket, round_money(pay));
    }

    // 3b. Progressive bands, proration, period cap, allowance, floor.
    let mut banded_item = Decimal::ZERO;
    if let Some(bands) = &rules.bands {
        let base = match rules.deductible.stay_deductible {
            StayDeductible::AfterFirstPaidStay if state.paid_stay => {
                (amount - stay.deductible.unwrap_or(Decimal::ZERO)).max(Decimal::ZERO)
            }
            _ => amount,
        };
        let exact = prorate(banded(bands, base), covered_days, total_days);
        let uncapped = round_money(exact);
        banded_item = match rules.period_cap {
            Some(cap) => {
                let remaining = (cap - state.banded_used).max(Decimal::ZERO);
                if uncapped > remaining {
                    cut_by_cap = true;
                }
                uncapped.min(remaining)
            }
            None => uncapped,
        };
        items.push(ItemCode::Banded, banded_item);
    }
    let mut allowance = Decimal::ZERO;
    if let Some(a) = &rules.daily_allowance
        && !state.paid_stay
    {
        let rate = daily_rate(&a.per_day_by_consecutive_period, member.consecutive_periods);
        let billed = stay.billed_days.map_or(total_days, i64::from);
        let days = billed.min(covered_days).min(i64::from(a.max_days)).max(0);
        allowance = round_money(rate.saturating_mul(Decimal::from(days)));
        items.push(ItemCode::DailyAllowance, allowance);
    }
    let paid_stay = banded_item + allowance > Decimal::ZERO;
    if let Some(minimum) = rules.minimum
        && paid_stay
        && banded_item + allowance < minimum
    {
        items.push(
            ItemCode::MinimumTopUp,
            round_money(minimum - banded_item - allowance),
        );
    }
    // 3c. Second grant on what the member still pays after the banded grant (hy).
    if let Some(brackets) = &rules.second_grant {
        let still_paid = (amount - banded_item).max(Decimal::ZERO);
        items.push(
            ItemCode::SecondGrant,
            round_money(bracket_amount(brackets, still_paid)),
        );
    }
    // 3d. Once-a-year extra grant on the first stay whose amount reaches a bracket (yc).
    if let Some(brackets) = &rules.extra_grant
        && !state.extra_grant_paid
        && let Some(b) = bracket_for(brackets, amount)
    {
        items.push(ItemCode::ExtraGrant, round_money(b.amount));
    }
    // 3e. Once-a-year grant with the first stay inside coverage (yc 安馨).
    if let Some(grant) = rules.first_stay_grant
        && !state.first_stay_grant_paid
    {
        items.push(ItemCode::AnxinAllowance, round_money(grant));
    }

    if cut_by_cap && items.total().is_zero() {
        return Judgement::refused(Refusal::BenefitTerminated);
    }
    Judgement {
        refused: None,
        items: items.0,
        counted_amount: Some(amount),
    }
}

fn judge_outpatient_month(
    rules: &InpatientRules,
    counts_toward_cap: bool,
    member: &MemberPeriod,
    state: &PeriodState,
    month: &OutpatientMonth,
) -> Judgement {
    let days = month.month.days();
    let covered = covered_month_days(
        month.month.first_day(),
        days,
        member.coverage_start,
        member.coverage_end,
    );
    if covered <= 0 {
        return Judgement::refused(Refusal::OutsideCoverage);
    }
    let Some(bands) = &rules.bands else {
        return Judgement::default();
    };
    let uncapped = round_money(prorate(
        banded(bands, month.eligible_self_pay),
        covered,
        i64::from(days),
    ));
    let mut amount = uncapped;
    if counts_toward_cap && let Some(cap) = rules.period_cap {
        amount = uncapped.min((cap - state.banded_used).max(Decimal::ZERO));
        if amount.is_zero() && uncapped > Decimal::ZERO {
            return Judgement::refused(Refusal::BenefitTerminated);
        }
    }
    let mut items = Components::new();
    items.push(ItemCode::Banded, amount);
    Judgement {
        refused: None,
        items: items.0,
        counted_amount: None,
    }
}

fn judge_diagnosis(
    rules: &DiagnosisRules,
    observation_days: u32,
    member: &MemberPeriod,
    state: &PeriodState,
    d: &Diagnosis,
) -> Judgement {
    // The first of these refusals wins.
    if !within(d.diagnosed_on, member.coverage_start, member.coverage_end) {
        return Judgement::refused(Refusal::OutsideCoverage);
    }
    if !rules.covered.contains(&d.disease) || (d.in_situ && !rules.in_situ_covered) {
        return Judgement::refused(Refusal::NotCoveredDisease);
    }
    if !d.recognised_institution {
        return Judgement::refused(Refusal::UnrecognisedInstitution);
    }
    if d.pre_existing {
        return Judgement::refused(Refusal::PreExisting);
    }
    if rules.once_per_period && state.diagnosis_paid {
        return Judgement::refused(Refusal::BenefitTerminated);
    }
    let Some(b) = &rules.benefits else {
        return Judgement::default();
    };
    let mut items = Components::new();
    let in_observation = observation_period(
        observation_days,
        member.coverage_start,
        member.continuous_renewal,
    )
    .is_some_and(|(from, to)| within(d.diagnosed_on, from, to));
    if in_observation {
        items.push(
            ItemCode::Condolence,
            round_money(b.condolence_in_observation.unwrap_or(Decimal::ZERO)),
        );
    } else {
        let main = if d.in_situ {
            b.in_situ_amount.unwrap_or(b.default_amount)
        } else {
            b.by_disease
                .get(&d.disease)
                .map_or(b.default_amount, |m| m.0)
        };
        items.push(ItemCode::FixedBenefit, round_money(main));
        items.push(
            ItemCode::RehabilitationGrant,
            round_money(b.rehabilitation_grant.unwrap_or(Decimal::ZERO)),
        );
    }
    Judgement {
        refused: None,
        items: items.0,
        counted_amount: None,
    }
}

fn judge_work_injury(rules: &WorkInjuryRules, member: &MemberPeriod, w: &WorkInjury) -> Judgement {
    if !within(w.appraised_on, member.coverage_start, member.coverage_end) {
        return Judgement::refused(Refusal::OutsideCoverage);
    }
    let amount = match w.grade {
        InjuryGrade::Death => rules.death.unwrap_or(Decimal::ZERO),
        InjuryGrade::Grade(g) => rules
            .grades
            .iter()
            .find(|r| r.from <= g && g <= r.to)
            .map_or(Decimal::ZERO, |r| r.amount),
    };
    let mut items = Components::new();
    items.push(ItemCode::WorkInjury, round_money(amount));
    Judgement {
        refused: None,
        items: items.0,
        counted_amount: None,
    }
}

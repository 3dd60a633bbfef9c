//! Criterion benchmark of the benefit engine over a realistic mix of events: stays judged per
//! second per core (goal ≥ 1,000,000). Each iteration judges a batch of periods, every event
//! knowing the ones judged before it, exactly as claims are approved.

use std::hint::black_box;

use chrono::NaiveDate;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use huzhu::engine::{
    Cause, Diagnosis, Event, InjuryGrade, JudgedEvent, MemberPeriod, OutpatientMonth,
    SchemeDefinition, Stay, WorkInjury, YearMonth, judge_event, seed_schemes,
};
use rust_decimal::Decimal;

fn date(y: i32, m: u32, d: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, d).unwrap_or_default()
}

fn stay(admitted: NaiveDate, days: u64, amount: Decimal, cause: Cause) -> Event {
    Event::Inpatient(Stay {
        admitted_on: admitted,
        discharged_on: admitted + chrono::Days::new(days),
        billed_days: u32::try_from(days).ok(),
        cause,
        eligible_self_pay: Some(amount),
        personal_burden: Some(amount),
        out_of_pocket: Some(amount),
        deductible: Some(Decimal::new(80000, 2)),
        settled_by_insurance: true,
        unsettled_cost: None,
        own_liability_cost: None,
    })
}

/// A period: scheme, member, and its events in filing order.
struct Period<'a> {
    scheme: &'a SchemeDefinition,
    member: MemberPeriod,
    events: Vec<Event>,
}

fn mix(seeds: &[SchemeDefinition]) -> Vec<Period<'_>> {
    let by = |code: &str| seeds.iter().find(|s| s.code == code);
    let mut periods = Vec::new();
    let amounts = [150, 2_800, 7_450, 12_000, 36_999, 88_000, 260_000];
    for (i, amount) in amounts.iter().enumerate() {
        let i = i as u64;
        let s = Decimal::new(*amount * 100 + 37, 2);
        if let Some(scheme) = by("nm-inpatient-2022") {
            let member = MemberPeriod {
                coverage_start: date(2022, 5, 11),
                coverage_end: date(2023, 5, 10),
                consecutive_periods: 1 + (i as u32 % 3),
                continuous_renewal: i.is_multiple_of(2),
            };
            periods.push(Period {
                scheme,
                member,
                events: vec![
                    stay(date(2022, 5, 6), 3 + i, s, Cause::Illness),
                    Event::OutpatientSpecial(OutpatientMonth {
                        month: YearMonth::new(2022, 7).unwrap_or(YearMonth::from(date(2022, 7, 1))),
                        eligible_self_pay: s,
                    }),
                    stay(date(2022, 9, 1), 12, s * Decimal::TWO, Cause::Illness),
                    stay(date(2023, 5, 1), 20, s, Cause::Illness),
                ],
            });
        }
        if let Some(scheme) = by("nm-inpatient-2025") {
            let member = MemberPeriod {
                coverage_start: date(2025, 1, 1),
                coverage_end: date(2025, 12, 31),
                consecutive_periods: 2,
                continuous_renewal: true,
            };
            periods.push(Period {
                scheme,
                member,
                events: vec![
                    stay(date(2025, 2, 1), 5 + i, s, Cause::Illness),
                    stay(date(2025, 6, 1), 7, s, Cause::TrafficAccident),
                    stay(date(2025, 8, 1), 9, s, Cause::Illness),
                ],
            });
        }
        let year = |y| MemberPeriod {
            coverage_start: date(y, 1, 1),
            coverage_end: date(y, 12, 31),
            consecutive_periods: 1,
            continuous_renewal: false,
        };
        if let Some(scheme) = by("yc-2022") {
            periods.push(Period {
                scheme,
                member: year(2022),
                events: vec![
                    stay(date(2022, 3, 1), 6, s, Cause::Illness),
                    stay(
                        date(2022, 7, 1),
                        10,
                        s + Decimal::from(4_000),
                        Cause::Illness,
                    ),
                ],
            });
        }
        if let Some(scheme) = by("wj-2022") {
            periods.push(Period {
                scheme,
                member: year(2022),
                events: vec![
                    stay(date(2022, 3, 1), 6, s, Cause::Illness),
                    stay(date(2022, 5, 1), 4, s, Cause::Maternity),
                    Event::Diagnosis(Diagnosis {
                        diagnosed_on: date(2022, 6, 1),
                        disease: "critical_illness".into(),
                        in_situ: false,
                        pre_existing: false,
                        recognised_institution: true,
                    }),
                    Event::WorkInjury(WorkInjury {
                        appraised_on: date(2022, 9, 1),
                        grade: InjuryGrade::Grade(1 + (i as u8 % 10)),
                    }),
                ],
            });
        }
        if let Some(scheme) = by("nm-xinkang-2022") {
            let member = MemberPeriod {
                coverage_start: date(2022, 6, 1),
                coverage_end: date(2023, 5, 31),
                consecutive_periods: 1,
                continuous_renewal: false,
            };
            periods.push(Period {
                scheme,
                member,
                events: vec![
                    Event::Diagnosis(Diagnosis {
                        diagnosed_on: date(2022, 6, 10 + i as u32),
                        disease: "breast_cancer".into(),
                        in_situ: i.is_multiple_of(3),
                        pre_existing: false,
                        recognised_institution: true,
                    }),
                    Event::Diagnosis(Diagnosis {
                        diagnosed_on: date(2022, 9, 1),
                        disease: "invasive_mole".into(),
                        in_situ: false,
                        pre_existing: false,
                        recognised_institution: true,
                    }),
                ],
            });
        }
    }
    periods
}

fn judge_periods(periods: &[Period<'_>], history: &mut Vec<JudgedEvent>) -> usize {
    let mut judged = 0;
    for p in periods {
        history.clear();
        for event in &p.events {
            let judgement = judge_event(p.scheme, &p.member, history, event);
            history.push(JudgedEvent {
                event: event.clone(),
                judgement,
            });
            judged += 1;
        }
    }
    judged
}

fn bench(c: &mut Criterion) {
    let seeds = seed_schemes().unwrap_or_default();
    let periods = mix(&seeds);
    let events: usize = periods.iter().map(|p| p.events.len()).sum();
    let mut group = c.benchmark_group("engine");
    group.throughput(Throughput::Elements(events as u64));
    let mut history = Vec::with_capacity(8);
    group.bench_function("judge_event_mixed_periods", |b| {
        b.iter(|| black_box(judge_periods(black_box(&periods), &mut history)))
    });
    // Without re-cloning events into the history (the judge itself only).
    let single: Vec<(&SchemeDefinition, &MemberPeriod, &Event)> = periods
        .iter()
        .flat_map(|p| {
            p.events
                .iter()
                .take(1)
                .map(move |e| (p.scheme, &p.member, e))
        })
        .collect();
    group.throughput(Throughput::Elements(single.len() as u64));
    group.bench_function("judge_event_first_of_period", |b| {
        b.iter(|| {
            for (s, m, e) in &single {
                black_box(judge_event(s, m, &[], e));
            }
        })
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

//! The engine's inputs and outputs: a member's period, events, judgements.
//!
//! These types are also the contract's JSON (see `simulate.md`): the request's events
//! deserialise into [`Event`]. Amounts are exact `Decimal`s here (the engine multiplies and
//! prorates them) and [`Money`](crate::domain::Money)'s contract strings on the wire
//! ([`contract_amount`]).

use chrono::{Datelike, NaiveDate};
use rust_decimal::Decimal;
use serde::{Deserialize, Deserializer, Serialize, Serializer, de};
use utoipa::ToSchema;

use crate::domain::money::contract_amount;

/// The coverage period being judged, and the member's continuity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MemberPeriod {
    /// First covered day (inclusive).
    pub coverage_start: NaiveDate,
    /// Last covered day (inclusive).
    pub coverage_end: NaiveDate,
    /// 1 for a first period, 2 for the second consecutive one, …; it starts again at 1 after a
    /// period in which a daily allowance was paid (see [`super::next_consecutive_periods`]).
    #[serde(default = "one")]
    pub consecutive_periods: u32,
    /// Renewed within the grace window into this period (and, for stays running past
    /// `coverage_end`, into the next one).
    #[serde(default)]
    pub continuous_renewal: bool,
}

fn one() -> u32 {
    1
}

/// The kinds of events (claims).
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum EventKind {
    /// A hospital stay.
    Inpatient,
    /// A month of outpatient special-disease care.
    OutpatientSpecial,
    /// A diagnosis of a covered disease.
    Diagnosis,
    /// A work injury with its appraisal.
    WorkInjury,
}

impl EventKind {
    /// All kinds, in contract order.
    pub const ALL: [EventKind; 4] = [
        Self::Inpatient,
        Self::OutpatientSpecial,
        Self::Diagnosis,
        Self::WorkInjury,
    ];

    /// The contract's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Inpatient => "inpatient",
            Self::OutpatientSpecial => "outpatient_special",
            Self::Diagnosis => "diagnosis",
            Self::WorkInjury => "work_injury",
        }
    }

    /// Parses the contract's name.
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == name)
    }
}

/// Causes of a hospital stay.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Cause {
    /// Illness (the default).
    #[default]
    Illness,
    /// 工伤.
    WorkInjury,
    /// 生育（含节育）.
    Maternity,
    /// 职业病.
    OccupationalDisease,
    /// 精神和行为障碍 (ICD-10 F).
    MentalDisorder,
    /// 医疗事故.
    MedicalAccident,
    /// 交通事故.
    TrafficAccident,
    /// 突发公共卫生事件或不可抗力.
    PublicHealthEmergency,
    /// 打架斗殴、吸毒、自杀、酗酒、犯罪等.
    IllegalAct,
    /// 整容、美容.
    Cosmetic,
    /// 体检、疗养.
    Checkup,
    /// 欺诈.
    Fraud,
}

/// A month `YYYY-MM`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct YearMonth {
    year: i32,
    month: u32,
}

impl YearMonth {
    /// A month, if valid (years 1–9999).
    pub fn new(year: i32, month: u32) -> Option<Self> {
        ((1..=9999).contains(&year) && (1..=12).contains(&month)).then_some(Self { year, month })
    }

    /// First day of the month.
    pub fn first_day(self) -> NaiveDate {
        NaiveDate::from_ymd_opt(self.year, self.month, 1).unwrap_or(NaiveDate::MIN)
    }

    /// Number of days in the month.
    pub fn days(self) -> u32 {
        let (ny, nm) = if self.month == 12 {
            (self.year + 1, 1)
        } else {
            (self.year, self.month + 1)
        };
        match NaiveDate::from_ymd_opt(ny, nm, 1) {
            Some(next) => u32::try_from((next - self.first_day()).num_days()).unwrap_or(31),
            None => 31,
        }
    }

    /// Parses `YYYY-MM` strictly.
    pub fn parse(s: &str) -> Option<Self> {
        let b = s.as_bytes();
        if b.len() != 7
            || b[4] != b'-'
            || !b
                .iter()
                .enumerate()
                .all(|(i, c)| i == 4 || c.is_ascii_digit())
        {
            return None;
        }
        let year = s.get(0..4)?.parse().ok()?;
        let month = s.get(5..7)?.parse().ok()?;
        Self::new(year, month)
    }
}

impl std::fmt::Display for YearMonth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

impl From<NaiveDate> for YearMonth {
    fn from(d: NaiveDate) -> Self {
        Self {
            year: d.year(),
            month: d.month(),
        }
    }
}

impl Serialize for YearMonth {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.to_string())
    }
}

impl<'de> Deserialize<'de> for YearMonth {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = YearMonth;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a month like \"2022-07\"")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<YearMonth, E> {
                YearMonth::parse(v).ok_or_else(|| E::custom("a month must look like \"2022-07\""))
            }
        }
        d.deserialize_str(V)
    }
}

/// A work-injury appraisal: grade 1–10, or a work-related death.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InjuryGrade {
    /// Disability grade 1 (worst) … 10.
    Grade(u8),
    /// 工亡.
    Death,
}

impl Serialize for InjuryGrade {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Self::Grade(g) => s.serialize_u8(*g),
            Self::Death => s.serialize_str("death"),
        }
    }
}

impl<'de> Deserialize<'de> for InjuryGrade {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl de::Visitor<'_> for V {
            type Value = InjuryGrade;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a grade 1–10 or \"death\"")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<InjuryGrade, E> {
                match u8::try_from(v) {
                    Ok(g @ 1..=10) => Ok(InjuryGrade::Grade(g)),
                    _ => Err(E::custom("a grade is 1–10 or \"death\"")),
                }
            }
            fn visit_i64<E: de::Error>(self, _: i64) -> Result<InjuryGrade, E> {
                Err(E::custom("a grade is 1–10 or \"death\""))
            }
            fn visit_f64<E: de::Error>(self, _: f64) -> Result<InjuryGrade, E> {
                Err(E::custom("a grade is 1–10 or \"death\""))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<InjuryGrade, E> {
                if v == "death" {
                    Ok(InjuryGrade::Death)
                } else {
                    Err(E::custom("a grade is 1–10 or \"death\""))
                }
            }
        }
        d.deserialize_any(V)
    }
}

fn default_true() -> bool {
    true
}

/// A hospital stay. Amount fields are optional here; the scheme says which one it needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Stay {
    /// Admission day (counted).
    pub admitted_on: NaiveDate,
    /// Discharge day (not counted, except for a same-day stay).
    pub discharged_on: NaiveDate,
    /// Days billed on the settlement slip.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub billed_days: Option<u32>,
    /// Cause (default `illness`).
    #[serde(default)]
    pub cause: Cause,
    /// 自付 (nm).
    #[schema(value_type = Option<String>, example = "12000.00")]
    #[serde(
        default,
        with = "contract_amount::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub eligible_self_pay: Option<Decimal>,
    /// 个人负担 (yc).
    #[schema(value_type = Option<String>, example = "12000.00")]
    #[serde(
        default,
        with = "contract_amount::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub personal_burden: Option<Decimal>,
    /// 自理 (wj), when settled through insurance.
    #[schema(value_type = Option<String>, example = "3000.00")]
    #[serde(
        default,
        with = "contract_amount::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub out_of_pocket: Option<Decimal>,
    /// The stay's insurance deductible 起付标准 (nm 2025); missing is 0.
    #[schema(value_type = Option<String>, example = "800.00")]
    #[serde(
        default,
        with = "contract_amount::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub deductible: Option<Decimal>,
    /// Settled through medical insurance (wj, default true).
    #[serde(default = "default_true")]
    pub settled_by_insurance: bool,
    /// Cost that could not be settled (wj).
    #[schema(value_type = Option<String>, example = "10000.00")]
    #[serde(
        default,
        with = "contract_amount::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub unsettled_cost: Option<Decimal>,
    /// Member's own-liability share of the total cost, traffic accident (wj).
    #[schema(value_type = Option<String>, example = "10000.00")]
    #[serde(
        default,
        with = "contract_amount::option",
        skip_serializing_if = "Option::is_none"
    )]
    pub own_liability_cost: Option<Decimal>,
}

/// A month of outpatient special-disease care (nm).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OutpatientMonth {
    /// The month settled.
    #[schema(value_type = String, example = "2022-07")]
    pub month: YearMonth,
    /// 自付 of the month.
    #[schema(value_type = String, example = "2000.00")]
    #[serde(with = "contract_amount")]
    pub eligible_self_pay: Decimal,
}

/// A diagnosis (xinkang diseases, wj `critical_illness`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Diagnosis {
    /// Date of the pathology report.
    pub diagnosed_on: NaiveDate,
    /// Disease code.
    pub disease: String,
    /// Carcinoma in situ.
    #[serde(default)]
    pub in_situ: bool,
    /// The member had it before enrolling.
    #[serde(default)]
    pub pre_existing: bool,
    /// Certified by a recognised institution.
    #[serde(default = "default_true")]
    pub recognised_institution: bool,
}

/// A work injury (wj).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkInjury {
    /// Date of the appraisal (鉴定书 / 工亡认定书).
    pub appraised_on: NaiveDate,
    /// Grade 1–10 or `"death"`.
    #[schema(value_type = Object, example = 7)]
    pub grade: InjuryGrade,
}

/// One event of a period.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event {
    /// A hospital stay.
    Inpatient(Stay),
    /// A month of outpatient special-disease care.
    OutpatientSpecial(OutpatientMonth),
    /// A diagnosis.
    Diagnosis(Diagnosis),
    /// A work injury.
    WorkInjury(WorkInjury),
}

impl Event {
    /// The event's kind.
    pub fn kind(&self) -> EventKind {
        match self {
            Self::Inpatient(_) => EventKind::Inpatient,
            Self::OutpatientSpecial(_) => EventKind::OutpatientSpecial,
            Self::Diagnosis(_) => EventKind::Diagnosis,
            Self::WorkInjury(_) => EventKind::WorkInjury,
        }
    }
}

/// Why an event pays nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Refusal {
    /// The cause is excluded by the scheme.
    ExcludedCause,
    /// Not inside the coverage period.
    OutsideCoverage,
    /// The member had the disease before enrolling.
    PreExisting,
    /// The disease is not covered.
    NotCoveredDisease,
    /// Certified by a non-recognised institution.
    UnrecognisedInstitution,
    /// The benefit has ended for this period (paid once, cap used up, top bracket paid).
    BenefitTerminated,
    /// The scheme does not judge this kind of event.
    WrongEventKind,
}

/// Codes of payout components.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ItemCode {
    /// Progressive banded benefit.
    Banded,
    /// Daily hospital allowance.
    DailyAllowance,
    /// Top-up to the minimum.
    MinimumTopUp,
    /// Accumulated bracket difference (wj).
    Bracket,
    /// Once-a-year extra grant (yc).
    ExtraGrant,
    /// 安馨 allowance (yc).
    AnxinAllowance,
    /// Fixed disease benefit.
    FixedBenefit,
    /// Rehabilitation grant.
    RehabilitationGrant,
    /// Condolence in the observation period.
    Condolence,
    /// Work-injury grant.
    WorkInjury,
    /// Second grant (hy).
    SecondGrant,
}

/// One payout component, rounded to 0.01.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[schema(as = Item)]
pub struct Component {
    /// What it is.
    pub code: ItemCode,
    /// How much.
    #[schema(value_type = String, example = "1234.50")]
    #[serde(with = "contract_amount")]
    pub amount: Decimal,
}

/// The judgement of one event.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Judgement {
    /// Set when the event is refused (then `items` is empty).
    pub refused: Option<Refusal>,
    /// Payout components, each above 0.
    pub items: Vec<Component>,
    /// For a stay not refused: the amount it adds to the period's accumulated total (exact,
    /// unrounded; wj's counted amount).
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "rust_decimal::serde::str_option"
    )]
    pub counted_amount: Option<Decimal>,
}

impl Judgement {
    /// A refusal.
    pub fn refused(refusal: Refusal) -> Self {
        Self {
            refused: Some(refusal),
            items: Vec::new(),
            counted_amount: None,
        }
    }

    /// The sum of the items.
    pub fn payable(&self) -> Decimal {
        self.items.iter().map(|i| i.amount).sum()
    }

    /// The amount of the item with this code (0 when absent).
    pub fn item(&self, code: ItemCode) -> Decimal {
        self.items
            .iter()
            .filter(|i| i.code == code)
            .map(|i| i.amount)
            .sum()
    }
}

/// An event already judged in the period, with its judgement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JudgedEvent {
    /// The event.
    pub event: Event,
    /// How it was judged.
    pub judgement: Judgement,
}

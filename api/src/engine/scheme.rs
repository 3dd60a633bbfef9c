//! Scheme definitions: the data a scheme version is made of, composed from the primitives in
//! [`super::primitives`], plus the display data the mini-program shows, and the validation an
//! administrator's new version must pass before it is published.

use std::collections::BTreeMap;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::model::{Cause, EventKind};

/// One published (or to-be-published) version of a scheme: rules and display data.
///
/// Deserialised from the TOML files in `api/schemes/`; the app stores it as JSON per version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SchemeDefinition {
    /// Stable code, e.g. `nm-inpatient-2022`.
    pub code: String,
    /// Parameters the source text lacks. Non-empty means the version is incomplete: it can be
    /// shown but every simulation or approval against it is refused with `scheme_incomplete`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing: Vec<String>,
    /// What the mini-program shows.
    pub display: Display,
    /// Who may join.
    pub eligibility: Eligibility,
    /// Fees per member and period.
    pub fees: Fees,
    /// Enrolment window and mode.
    pub enrolment: Enrolment,
    /// Coverage style, grace and observation days.
    pub coverage: Coverage,
    /// Claim deadlines and processing times.
    pub claims: Claims,
    /// The event kinds the scheme judges; any other known kind is refused `wrong_event_kind`.
    pub event_kinds: Vec<EventKind>,
    /// Hospital stays.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inpatient: Option<InpatientRules>,
    /// Outpatient special diseases settled monthly (uses the inpatient bands).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outpatient_special: Option<OutpatientSpecialRules>,
    /// Fixed disease benefits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diagnosis: Option<DiagnosisRules>,
    /// Work-injury grants by appraisal grade.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub work_injury: Option<WorkInjuryRules>,
    /// Materials a claim of each kind needs.
    #[serde(default)]
    pub materials: Vec<ClaimMaterials>,
    /// Review by exception (免申即享): how a claim offered from the bureau's settlement record
    /// is reviewed, per claim kind. A kind not listed is reviewed as an application (every
    /// stage, every material).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub offers: Vec<OfferReview>,
}

/// Texts for the mini-program's scheme page.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Display {
    /// Chinese name, e.g. 内蒙古职工住院医疗互助保障 2022年度（第4期）.
    pub display_name_zh: String,
    /// Region, e.g. 内蒙古自治区.
    pub region_zh: String,
    /// Who runs the scheme.
    pub organiser_zh: String,
    /// Who may join, as one paragraph.
    pub who_may_join_zh: String,
    /// How fees are paid.
    pub fees_zh: String,
    /// Coverage period, as one sentence.
    pub coverage_zh: String,
    /// What is paid, one short line each.
    pub what_is_paid_zh: Vec<String>,
    /// What is never paid, one short line each.
    #[serde(default)]
    pub exclusions_zh: Vec<String>,
    /// Claim deadline, as one sentence.
    pub claim_deadline_zh: String,
    /// The seed the rules come from.
    pub source: String,
}

/// Who may join; the machine-readable parts only where the scheme states them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Eligibility {
    /// Active (in-service) employees may join.
    pub in_service: bool,
    /// Minimum age in full years, inclusive (以上).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_age: Option<u32>,
    /// Maximum age in full years, inclusive (以下 / 含).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age: Option<u32>,
    /// Women only (spouses of enrolled men may join where `spouses_of_members`).
    #[serde(default)]
    pub women_only: bool,
    /// Spouses of enrolled members may join.
    #[serde(default)]
    pub spouses_of_members: bool,
    /// Must be in basic medical insurance.
    #[serde(default)]
    pub requires_basic_medical_insurance: bool,
    /// Retirees, when they may join.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retirees: Option<RetireeRule>,
    /// Anything else the text states.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notes_zh: Option<String>,
}

/// When retirees may join.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RetireeRule {
    /// Maximum age, inclusive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_age: Option<u32>,
    /// Continuous enrolment since this year required (nm 2025: 2019).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub continuous_since_year: Option<i32>,
    /// Or this many years of continuous enrolment (nm 2025: 10).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub or_continuous_years: Option<u32>,
    /// The condition in words.
    pub condition_zh: String,
}

/// Fees of one share for one period (money strings).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Fees {
    /// Paid by an active member.
    #[schema(value_type = String, example = "100.00")]
    #[serde(with = "rust_decimal::serde::str")]
    pub in_service: Decimal,
    /// Paid by a retired member, where retirees may join.
    #[schema(value_type = Option<String>, example = "400.00")]
    #[serde(
        default,
        with = "rust_decimal::serde::str_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub retired: Option<Decimal>,
    /// Added per member by the regional union (not paid by the member).
    #[schema(value_type = Option<String>, example = "10.00")]
    #[serde(
        default,
        with = "rust_decimal::serde::str_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub regional_union_share: Option<Decimal>,
    /// One share per person per period.
    pub one_share_per_person: bool,
    /// Fees are never refunded.
    pub refundable: bool,
}

/// How members enrol.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EnrolmentMode {
    /// Only through the unit union, with a minimum participation ratio (团体会员制).
    Group,
    /// Voluntary, collected by department.
    Department,
    /// Each member signs up alone (bank payment authorisation).
    Individual,
}

/// Enrolment window and participation rules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Enrolment {
    /// Group, department or individual.
    pub mode: EnrolmentMode,
    /// First day of the window (inclusive), where the text states it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub opens: Option<NaiveDate>,
    /// Last day of the window (inclusive).
    pub closes: NaiveDate,
    /// Minimum share of the unit's eligible employees (0..=1).
    #[schema(value_type = Option<String>, example = "0.75")]
    #[serde(
        default,
        with = "rust_decimal::serde::str_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub min_participation: Option<Decimal>,
    /// Lower ratio for large units.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub large_unit: Option<LargeUnitParticipation>,
    /// Units with fewer eligible employees than this must enrol all of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub all_eligible_below: Option<u32>,
    /// How to enrol, in words.
    pub how_zh: String,
    /// What a roster must hold beyond 姓名 and 身份证号码.
    #[serde(default, skip_serializing_if = "RosterRequirements::is_empty")]
    pub roster: RosterRequirements,
}

/// The columns a scheme's roster must fill in every row, and why (the insured flag where
/// the scheme requires basic medical insurance, the mobile number where members are told by
/// SMS). A file without such a column is refused; an empty cell is a problem of its row.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RosterRequirements {
    /// Columns every row must fill.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub required: Vec<RosterColumn>,
    /// Why, in words, for the clerk.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason_zh: Option<String>,
}

impl RosterRequirements {
    /// Nothing beyond name and ID number.
    pub fn is_empty(&self) -> bool {
        self.required.is_empty() && self.reason_zh.is_none()
    }

    /// Whether `column` must be filled.
    pub fn requires(&self, column: RosterColumn) -> bool {
        self.required.contains(&column)
    }
}

/// A roster column a scheme may require.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RosterColumn {
    /// 手机号码 (a mobile number: SMS).
    Phone,
    /// 是否参加医保.
    Insured,
    /// 在职/退休.
    Status,
    /// 工作单位.
    Employer,
}

/// Participation ratio for units of at least `min_employees`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LargeUnitParticipation {
    /// Units with at least this many employees (以上 includes it).
    pub min_employees: u32,
    /// Their minimum ratio (0..=1).
    #[schema(value_type = String, example = "0.70")]
    #[serde(with = "rust_decimal::serde::str")]
    pub min_participation: Decimal,
}

/// How the coverage period is set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum CoverageStyle {
    /// One year from the day after the unit's enrolment is completed.
    OneYearFromDayAfterCompletion,
    /// The calendar year `year`.
    CalendarYear,
}

/// Coverage rules.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Coverage {
    /// One year from completion, or a calendar year.
    pub style: CoverageStyle,
    /// The year, for calendar-year schemes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub year: Option<i32>,
    /// Renewal within this many calendar days after the previous period's end is continuous.
    pub grace_days: u32,
    /// Observation days at the start of a non-continuous period (0: none).
    #[serde(default)]
    pub observation_days: u32,
}

/// Claim deadlines and processing.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Claims {
    /// Claims within this many calendar days after the coverage period ends.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub days_after_period_end: Option<u32>,
    /// Claims within this many days of discharge.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub days_after_discharge: Option<u32>,
    /// No claim after this date.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_date: Option<NaiveDate>,
    /// Review within this many working days.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review_working_days: Option<u32>,
    /// Review at most this many working days in complex cases.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub review_max_working_days: Option<u32>,
    /// Payment within this many working days after approval.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_working_days: Option<u32>,
    /// Payment at most this many working days in complex cases.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_max_working_days: Option<u32>,
    /// Claims of this amount or more need a third-party appraisal.
    #[schema(value_type = Option<String>, example = "7000.00")]
    #[serde(
        default,
        with = "rust_decimal::serde::str_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub appraisal_from: Option<Decimal>,
    /// Benefits are paid to the member only.
    #[serde(default)]
    pub paid_to_member_only: bool,
}

/// Which request field a scheme's stay amount comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum AmountField {
    /// 自付 after basic and catastrophic insurance (nm).
    EligibleSelfPay,
    /// 个人负担 (yc).
    PersonalBurden,
    /// 自理 = 自付 + 自费 (wj).
    OutOfPocket,
}

impl AmountField {
    /// The request field name.
    pub fn field_name(self) -> &'static str {
        match self {
            Self::EligibleSelfPay => "eligible_self_pay",
            Self::PersonalBurden => "personal_burden",
            Self::OutOfPocket => "out_of_pocket",
        }
    }
}

/// How a stay is placed in the coverage period.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StayCoverage {
    /// Banded benefit × covered days / total days (nm, hy).
    ProrateByCoveredDays,
    /// Judged by the admission date, no proration (yc, wj).
    AdmissionDate,
}

/// When the stay's own insurance deductible (`deductible` in the request) is taken off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StayDeductible {
    /// Never (the request field is accepted and ignored).
    #[default]
    Never,
    /// From the second paid stay of a period on (nm 2025).
    AfterFirstPaidStay,
}

/// Deductibles.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Deductible {
    /// A fixed threshold (起付标准): nothing is paid up to it; the bands start here.
    #[schema(value_type = String, example = "1000.00")]
    #[serde(default, with = "rust_decimal::serde::str")]
    pub fixed: Decimal,
    /// When the stay's own insurance deductible is taken off the amount before the bands.
    #[serde(default)]
    pub stay_deductible: StayDeductible,
}

/// A progressive band: the slice of the amount in `(from, to]` is paid at `rate`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Band {
    /// Lower edge, exclusive.
    #[schema(value_type = String, example = "3000.00")]
    #[serde(with = "rust_decimal::serde::str")]
    pub from: Decimal,
    /// Upper edge, inclusive; absent for the last, open band.
    #[schema(value_type = Option<String>, example = "5000.00")]
    #[serde(
        default,
        with = "rust_decimal::serde::str_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub to: Option<Decimal>,
    /// Rate 0..=1.
    #[schema(value_type = String, example = "0.50")]
    #[serde(with = "rust_decimal::serde::str")]
    pub rate: Decimal,
}

/// A fixed bracket: an amount inside it pays `amount`. Edges are inclusive or exclusive as data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Bracket {
    /// Lower edge.
    #[schema(value_type = String, example = "1000.00")]
    #[serde(with = "rust_decimal::serde::str")]
    pub from: Decimal,
    /// Whether `from` itself is inside (含).
    pub from_inclusive: bool,
    /// Upper edge; absent for the last, open bracket.
    #[schema(value_type = Option<String>, example = "5000.00")]
    #[serde(
        default,
        with = "rust_decimal::serde::str_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub to: Option<Decimal>,
    /// Whether `to` itself is inside.
    #[serde(default)]
    pub to_inclusive: bool,
    /// What the bracket pays.
    #[schema(value_type = String, example = "500.00")]
    #[serde(with = "rust_decimal::serde::str")]
    pub amount: Decimal,
}

/// Daily allowance by consecutive periods, for the first paid stay of a period.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DailyAllowance {
    /// Per day in the 1st, 2nd, … consecutive period; the last entry applies from then on.
    #[schema(value_type = Vec<String>, example = json!(["10.00", "20.00", "30.00"]))]
    pub per_day_by_consecutive_period: Vec<MoneyValue>,
    /// At most this many days.
    pub max_days: u32,
}

/// A money value in a list (serde as a string).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MoneyValue(#[serde(with = "rust_decimal::serde::str")] pub Decimal);

/// Counted amounts for stays not settled through medical insurance (wj).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CountedAmount {
    /// Share of `unsettled_cost` counted (34%).
    #[schema(value_type = String, example = "0.34")]
    #[serde(with = "rust_decimal::serde::str")]
    pub unsettled_rate: Decimal,
    /// Share of `own_liability_cost` counted for a traffic accident (54.5%).
    #[schema(value_type = String, example = "0.545")]
    #[serde(with = "rust_decimal::serde::str")]
    pub traffic_accident_rate: Decimal,
}

/// Rules for hospital stays.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InpatientRules {
    /// Which request field is the stay's amount.
    pub amount_field: AmountField,
    /// Proration by covered days or judgement by admission date.
    pub coverage_rule: StayCoverage,
    /// Causes refused `excluded_cause`.
    #[serde(default)]
    pub excluded_causes: Vec<Cause>,
    /// Deductibles.
    #[serde(default)]
    pub deductible: Deductible,
    /// Progressive bands (分段按比例), starting at `deductible.fixed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bands: Option<Vec<Band>>,
    /// The banded benefits of one period together never exceed this.
    #[schema(value_type = Option<String>, example = "500000.00")]
    #[serde(
        default,
        with = "rust_decimal::serde::str_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub period_cap: Option<Decimal>,
    /// Daily allowance for the first paid stay.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub daily_allowance: Option<DailyAllowance>,
    /// Floor of banded + allowance for a paid stay.
    #[schema(value_type = Option<String>, example = "200.00")]
    #[serde(
        default,
        with = "rust_decimal::serde::str_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub minimum: Option<Decimal>,
    /// Once-a-year grant on the first stay whose amount falls in one of these brackets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra_grant: Option<Vec<Bracket>>,
    /// Once-a-year grant with the first stay inside coverage (yc 安馨).
    #[schema(value_type = Option<String>, example = "200.00")]
    #[serde(
        default,
        with = "rust_decimal::serde::str_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub first_stay_grant: Option<Decimal>,
    /// Lump sum by bracket on the year's accumulated amount, paid as differences (wj).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub accumulated_brackets: Option<Vec<Bracket>>,
    /// Counted amounts for stays not settled through insurance (wj).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counted_amount: Option<CountedAmount>,
    /// Second grant per stay by bracket on what the member still pays after the banded grant (hy).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub second_grant: Option<Vec<Bracket>>,
}

/// Outpatient special diseases, settled monthly on the inpatient bands.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OutpatientSpecialRules {
    /// The months' banded benefits count toward the inpatient period cap.
    pub counts_toward_period_cap: bool,
    /// What is covered, in words.
    pub covered_zh: String,
}

/// Fixed disease benefits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DiagnosisRules {
    /// Disease codes covered.
    pub covered: Vec<String>,
    /// Display names by code.
    #[serde(default)]
    pub names_zh: BTreeMap<String, String>,
    /// Whether a carcinoma in situ is covered.
    pub in_situ_covered: bool,
    /// One payout per period, after which the benefit ends.
    pub once_per_period: bool,
    /// The amounts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub benefits: Option<DiagnosisBenefits>,
    /// Configurable list of illnesses behind a generic code (wj's 30 critical illnesses).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub illness_list_zh: Vec<String>,
    /// ICD-10 codes (主要诊断编码 on a settlement) that mean a covered disease, matched by code
    /// prefix: the 免申即享 import offers a diagnosis it finds here. Empty: the scheme's
    /// diagnoses are only ever applied for.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub icd10: Vec<Icd10Code>,
}

/// One ICD-10 code prefix of a scheme's disease list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Icd10Code {
    /// The code prefix, upper-case, e.g. `C50` (every code under it) or `C57.0` (not `C57.1`).
    pub prefix: String,
    /// The covered disease it means (one of `covered`).
    pub disease: String,
    /// A carcinoma in situ of that disease (ICD-10 D05–D07).
    #[serde(default)]
    pub in_situ: bool,
}

impl DiagnosisRules {
    /// The entry of the disease list an ICD-10 code falls under: the longest prefix that
    /// matches, so `C57.0x` is `C57.0` and a more precise entry wins over a broader one. Dots
    /// and case are ignored (files write `C50.9`, `c509` and `C50.900x001` alike).
    pub fn icd10_entry(&self, code: &str) -> Option<&Icd10Code> {
        let bare = |c: &str| -> String {
            c.trim()
                .chars()
                .filter(|c| *c != '.')
                .map(|c| c.to_ascii_uppercase())
                .collect()
        };
        let code = bare(code);
        self.icd10
            .iter()
            .filter(|e| {
                let prefix = bare(&e.prefix);
                !prefix.is_empty() && code.starts_with(&prefix)
            })
            .max_by_key(|e| bare(&e.prefix).len())
    }
}

/// Amounts of the fixed disease benefits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DiagnosisBenefits {
    /// Main sum for a covered disease not listed in `by_disease`.
    #[schema(value_type = String, example = "20000.00")]
    #[serde(with = "rust_decimal::serde::str")]
    pub default_amount: Decimal,
    /// Main sum by disease code.
    #[schema(value_type = BTreeMap<String, String>)]
    #[serde(default)]
    pub by_disease: BTreeMap<String, MoneyValue>,
    /// Main sum for a carcinoma in situ.
    #[schema(value_type = Option<String>, example = "10000.00")]
    #[serde(
        default,
        with = "rust_decimal::serde::str_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub in_situ_amount: Option<Decimal>,
    /// Rehabilitation grant paid with the main sum.
    #[schema(value_type = Option<String>, example = "2000.00")]
    #[serde(
        default,
        with = "rust_decimal::serde::str_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub rehabilitation_grant: Option<Decimal>,
    /// Condolence, the only payment for a diagnosis inside the observation period.
    #[schema(value_type = Option<String>, example = "500.00")]
    #[serde(
        default,
        with = "rust_decimal::serde::str_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub condolence_in_observation: Option<Decimal>,
}

/// Work-injury grants by appraisal grade.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WorkInjuryRules {
    /// Grade ranges and their amounts; together they cover 1–10 exactly once.
    #[serde(default)]
    pub grades: Vec<GradeAmount>,
    /// Paid on a work-related death (工亡).
    #[schema(value_type = Option<String>, example = "5000.00")]
    #[serde(
        default,
        with = "rust_decimal::serde::str_option",
        skip_serializing_if = "Option::is_none"
    )]
    pub death: Option<Decimal>,
}

/// One row of a grade table.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct GradeAmount {
    /// First grade of the row (inclusive).
    pub from: u8,
    /// Last grade of the row (inclusive).
    pub to: u8,
    /// Amount paid.
    #[schema(value_type = String, example = "3000.00")]
    #[serde(with = "rust_decimal::serde::str")]
    pub amount: Decimal,
}

/// Materials a claim of one kind needs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ClaimMaterials {
    /// The claim (event) kind.
    pub claim_kind: EventKind,
    /// Always needed.
    pub required: Vec<Material>,
    /// Needed only in some cases.
    #[serde(default)]
    pub conditional: Vec<ConditionalMaterials>,
}

/// How an offered claim of one kind is reviewed: the settlement record replaces the
/// photographed slip, so the stages that check the photographs are skipped and only the
/// materials the record cannot replace are asked for.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct OfferReview {
    /// The claim (event) kind.
    pub claim_kind: EventKind,
    /// Review stages an offer of this kind does not pass. The association's review, which
    /// judges the money, is never skipped.
    #[serde(default)]
    pub skip_stages: Vec<SkippableStage>,
    /// Materials still needed before the member may confirm the offer (the appraisal
    /// certificate is added when the appraisal stage is not skipped and the amount reaches
    /// the scheme's threshold).
    #[serde(default)]
    pub required: Vec<Material>,
}

/// A review stage an offered claim may skip.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SkippableStage {
    /// The unit union's first review.
    Union,
    /// The service point's (or office's) second review.
    ServicePoint,
    /// The third-party appraisal.
    Appraisal,
}

/// Materials needed in one case.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConditionalMaterials {
    /// The case, in words.
    pub when_zh: String,
    /// What it needs.
    pub materials: Vec<Material>,
}

/// Claim materials.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Material {
    /// 身份证正面.
    IdCardFront,
    /// 身份证反面.
    IdCardBack,
    /// 医保卡.
    InsuranceCard,
    /// 银行卡.
    BankCard,
    /// 医保结算单.
    SettlementSlip,
    /// 医疗费用发票/收据.
    Invoice,
    /// 用药清单.
    MedicationList,
    /// 出院证明.
    DischargeCertificate,
    /// 急诊材料.
    EmergencyRecord,
    /// 诊断证明.
    DiagnosisReport,
    /// 病理报告.
    PathologyReport,
    /// 鉴定书.
    AppraisalCertificate,
    /// 死亡证明.
    DeathCertificate,
    /// 亲属关系证明.
    KinshipProof,
}

/// One problem found when validating a scheme version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct SchemeProblem {
    /// Where, e.g. `inpatient.bands[2].from`.
    pub path: String,
    /// Why, in English.
    pub reason: String,
}

impl std::fmt::Display for SchemeProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path, self.reason)
    }
}

/// Paths of the parameters a version may list in `missing`.
pub const MISSING_PARAMETER_PATHS: &[&str] = &[
    "inpatient",
    "inpatient.bands",
    "outpatient_special",
    "diagnosis",
    "diagnosis.benefits",
    "work_injury",
    "work_injury.grades",
    "work_injury.death",
];

impl Eligibility {
    /// Whether a person of `age` full years is within the stated age limits of an active
    /// member (以上/以下 include the number: "60周岁以下" admits 60).
    pub fn accepts_age(&self, age: u32) -> bool {
        self.min_age.is_none_or(|min| age >= min) && self.max_age.is_none_or(|max| age <= max)
    }
}

impl SchemeDefinition {
    /// The scheme's code.
    pub fn code(&self) -> &str {
        &self.code
    }

    /// Parameters the version lacks (empty for a complete version).
    pub fn missing_parameters(&self) -> &[String] {
        &self.missing
    }

    /// How an offered claim of `kind` is reviewed, when the version says.
    pub fn offer_review(&self, kind: EventKind) -> Option<&OfferReview> {
        self.offers.iter().find(|o| o.claim_kind == kind)
    }

    /// Whether the version can be simulated and used for approvals.
    pub fn is_complete(&self) -> bool {
        self.missing.is_empty()
    }

    /// Whether the scheme judges this event kind.
    pub fn accepts(&self, kind: EventKind) -> bool {
        self.event_kinds.contains(&kind)
    }

    /// Required parameters that are absent.
    pub fn absent_required_parameters(&self) -> Vec<String> {
        let mut absent = Vec::new();
        let mut need = |cond: bool, path: &str| {
            if cond {
                absent.push(path.to_owned());
            }
        };
        let kinds = &self.event_kinds;
        if kinds.contains(&EventKind::Inpatient) {
            match &self.inpatient {
                None => need(true, "inpatient"),
                Some(r) => need(
                    r.bands.is_none() && r.accumulated_brackets.is_none(),
                    "inpatient.bands",
                ),
            }
        }
        if kinds.contains(&EventKind::OutpatientSpecial) {
            need(self.outpatient_special.is_none(), "outpatient_special");
            if let Some(r) = &self.inpatient {
                // The months use the inpatient bands; report once.
                if r.accumulated_brackets.is_some() && r.bands.is_none() {
                    need(true, "inpatient.bands");
                }
            } else if !kinds.contains(&EventKind::Inpatient) {
                need(true, "inpatient.bands");
            }
        }
        if kinds.contains(&EventKind::Diagnosis) {
            match &self.diagnosis {
                None => need(true, "diagnosis"),
                Some(d) => need(d.benefits.is_none(), "diagnosis.benefits"),
            }
        }
        if kinds.contains(&EventKind::WorkInjury) {
            match &self.work_injury {
                None => need(true, "work_injury"),
                Some(w) => {
                    need(w.grades.is_empty(), "work_injury.grades");
                    need(w.death.is_none(), "work_injury.death");
                }
            }
        }
        absent.dedup();
        absent
    }

    /// Validates a version for publishing: bands contiguous and ordered, rates within 0..=1,
    /// every amount non-negative, required parameters present (or listed in `missing`).
    /// Each problem has a path and a reason.
    pub fn validate(&self) -> Result<(), Vec<SchemeProblem>> {
        let mut v = Validator::default();
        v.check(self);
        if v.problems.is_empty() {
            Ok(())
        } else {
            Err(v.problems)
        }
    }
}

#[derive(Default)]
struct Validator {
    problems: Vec<SchemeProblem>,
}

impl Validator {
    fn push(&mut self, path: impl Into<String>, reason: impl Into<String>) {
        self.problems.push(SchemeProblem {
            path: path.into(),
            reason: reason.into(),
        });
    }

    fn non_negative(&mut self, path: &str, amount: Decimal) {
        if amount.is_sign_negative() && !amount.is_zero() {
            self.push(path, "amount must not be negative");
        }
    }

    fn opt_non_negative(&mut self, path: &str, amount: Option<Decimal>) {
        if let Some(a) = amount {
            self.non_negative(path, a);
        }
    }

    fn rate(&mut self, path: &str, rate: Decimal) {
        if rate < Decimal::ZERO || rate > Decimal::ONE {
            self.push(path, "rate must be within 0..=1");
        }
    }

    fn check(&mut self, s: &SchemeDefinition) {
        if s.code.trim().is_empty() {
            self.push("code", "code must not be empty");
        }
        if s.display.display_name_zh.trim().is_empty() {
            self.push("display.display_name_zh", "display name must not be empty");
        }
        if s.event_kinds.is_empty() {
            self.push("event_kinds", "a scheme judges at least one event kind");
        }
        for (i, k) in s.event_kinds.iter().enumerate() {
            if s.event_kinds[..i].contains(k) {
                self.push(format!("event_kinds[{i}]"), "event kind listed twice");
            }
        }
        // Required parameters: each absent one must be listed in `missing`, and `missing` lists
        // only absent, known parameters.
        let absent = s.absent_required_parameters();
        for path in &absent {
            if !s.missing.contains(path) {
                self.push(path.as_str(), "required parameter is absent (list it in `missing` to publish an incomplete version)");
            }
        }
        for (i, m) in s.missing.iter().enumerate() {
            if !MISSING_PARAMETER_PATHS.contains(&m.as_str()) {
                self.push(format!("missing[{i}]"), format!("unknown parameter `{m}`"));
            } else if !absent.contains(m) {
                self.push(
                    format!("missing[{i}]"),
                    format!("`{m}` is listed as missing but is present"),
                );
            }
        }
        // Sections for kinds the scheme does not judge.
        let section_without_kind = [
            (s.inpatient.is_some(), EventKind::Inpatient, "inpatient"),
            (
                s.outpatient_special.is_some(),
                EventKind::OutpatientSpecial,
                "outpatient_special",
            ),
            (s.diagnosis.is_some(), EventKind::Diagnosis, "diagnosis"),
            (
                s.work_injury.is_some(),
                EventKind::WorkInjury,
                "work_injury",
            ),
        ];
        for (present, kind, path) in section_without_kind {
            if present && !s.accepts(kind) {
                self.push(
                    path,
                    "section present but its event kind is not in `event_kinds`",
                );
            }
        }
        // Fees, enrolment, coverage.
        self.non_negative("fees.in_service", s.fees.in_service);
        self.opt_non_negative("fees.retired", s.fees.retired);
        self.opt_non_negative("fees.regional_union_share", s.fees.regional_union_share);
        if let Some(r) = s.enrolment.min_participation {
            self.rate("enrolment.min_participation", r);
        }
        if let Some(l) = &s.enrolment.large_unit {
            self.rate(
                "enrolment.large_unit.min_participation",
                l.min_participation,
            );
        }
        if let Some(opens) = s.enrolment.opens
            && opens > s.enrolment.closes
        {
            self.push(
                "enrolment.closes",
                "the enrolment window closes before it opens",
            );
        }
        match (s.coverage.style, s.coverage.year) {
            (CoverageStyle::CalendarYear, None) => {
                self.push("coverage.year", "a calendar-year scheme needs its year")
            }
            (CoverageStyle::OneYearFromDayAfterCompletion, Some(_)) => self.push(
                "coverage.year",
                "a one-year-from-completion scheme has no fixed year",
            ),
            _ => {}
        }
        if let (Some(min), Some(max)) = (s.eligibility.min_age, s.eligibility.max_age)
            && min > max
        {
            self.push(
                "eligibility.max_age",
                "maximum age is below the minimum age",
            );
        }
        self.opt_non_negative("claims.appraisal_from", s.claims.appraisal_from);
        if let Some(r) = &s.inpatient {
            self.inpatient(r);
        }
        if let Some(d) = &s.diagnosis {
            self.diagnosis(d);
        }
        if let Some(w) = &s.work_injury {
            self.work_injury(w);
        }
        for kind in &s.event_kinds {
            if !s.materials.iter().any(|m| m.claim_kind == *kind) {
                self.push(
                    "materials",
                    format!("no materials listed for claim kind `{}`", kind.as_str()),
                );
            }
        }
        for (i, m) in s.materials.iter().enumerate() {
            if !s.accepts(m.claim_kind) {
                self.push(
                    format!("materials[{i}].claim_kind"),
                    "claim kind is not in `event_kinds`",
                );
            }
            if m.required.is_empty() {
                self.push(
                    format!("materials[{i}].required"),
                    "at least one material is required",
                );
            }
        }
        for (i, o) in s.offers.iter().enumerate() {
            if !s.accepts(o.claim_kind) {
                self.push(
                    format!("offers[{i}].claim_kind"),
                    "claim kind is not in `event_kinds`",
                );
            }
            if s.offers[..i].iter().any(|e| e.claim_kind == o.claim_kind) {
                self.push(format!("offers[{i}].claim_kind"), "claim kind listed twice");
            }
        }
    }

    fn inpatient(&mut self, r: &InpatientRules) {
        self.non_negative("inpatient.deductible.fixed", r.deductible.fixed);
        if let Some(bands) = &r.bands {
            self.bands("inpatient.bands", bands, r.deductible.fixed);
        }
        self.opt_non_negative("inpatient.period_cap", r.period_cap);
        self.opt_non_negative("inpatient.minimum", r.minimum);
        self.opt_non_negative("inpatient.first_stay_grant", r.first_stay_grant);
        if let Some(a) = &r.daily_allowance {
            if a.per_day_by_consecutive_period.is_empty() {
                self.push(
                    "inpatient.daily_allowance.per_day_by_consecutive_period",
                    "at least one daily rate is required",
                );
            }
            for (i, m) in a.per_day_by_consecutive_period.iter().enumerate() {
                self.non_negative(
                    &format!("inpatient.daily_allowance.per_day_by_consecutive_period[{i}]"),
                    m.0,
                );
            }
        }
        if let Some(b) = &r.extra_grant {
            self.brackets("inpatient.extra_grant", b, false);
        }
        if let Some(b) = &r.accumulated_brackets {
            self.brackets("inpatient.accumulated_brackets", b, true);
            if r.bands.is_some() {
                self.push(
                    "inpatient.accumulated_brackets",
                    "a scheme pays stays either by bands or by accumulated brackets, not both",
                );
            }
        }
        if let Some(b) = &r.second_grant {
            self.brackets("inpatient.second_grant", b, false);
        }
        if let Some(c) = &r.counted_amount {
            self.rate("inpatient.counted_amount.unsettled_rate", c.unsettled_rate);
            self.rate(
                "inpatient.counted_amount.traffic_accident_rate",
                c.traffic_accident_rate,
            );
        }
        for (i, c) in r.excluded_causes.iter().enumerate() {
            if r.excluded_causes[..i].contains(c) {
                self.push(
                    format!("inpatient.excluded_causes[{i}]"),
                    "cause listed twice",
                );
            }
        }
    }

    fn bands(&mut self, path: &str, bands: &[Band], start: Decimal) {
        if bands.is_empty() {
            self.push(path, "at least one band is required");
            return;
        }
        let mut expected_from = Some(start);
        for (i, b) in bands.iter().enumerate() {
            let p = format!("{path}[{i}]");
            self.rate(&format!("{p}.rate"), b.rate);
            self.non_negative(&format!("{p}.from"), b.from);
            match expected_from {
                Some(e) if b.from != e => self.push(
                    format!("{p}.from"),
                    if i == 0 {
                        format!("the first band must start at the fixed deductible {e}")
                    } else {
                        format!("bands must be contiguous: expected {e}")
                    },
                ),
                None => self.push(format!("{p}.from"), "no band may follow an open-ended band"),
                _ => {}
            }
            if let Some(to) = b.to
                && to <= b.from
            {
                self.push(
                    format!("{p}.to"),
                    "a band's upper edge must be above its lower edge",
                );
            }
            expected_from = b.to;
        }
    }

    fn brackets(&mut self, path: &str, brackets: &[Bracket], non_decreasing: bool) {
        if brackets.is_empty() {
            self.push(path, "at least one bracket is required");
            return;
        }
        let mut prev: Option<&Bracket> = None;
        for (i, b) in brackets.iter().enumerate() {
            let p = format!("{path}[{i}]");
            self.non_negative(&format!("{p}.from"), b.from);
            self.non_negative(&format!("{p}.amount"), b.amount);
            if let Some(to) = b.to
                && to <= b.from
            {
                self.push(
                    format!("{p}.to"),
                    "a bracket's upper edge must be above its lower edge",
                );
            }
            if let Some(pb) = prev {
                match pb.to {
                    None => self.push(
                        format!("{p}.from"),
                        "no bracket may follow an open-ended bracket",
                    ),
                    Some(pto) => {
                        if b.from != pto {
                            self.push(
                                format!("{p}.from"),
                                format!("brackets must be contiguous: expected {pto}"),
                            );
                        } else if pb.to_inclusive == b.from_inclusive {
                            self.push(
                                format!("{p}.from_inclusive"),
                                "exactly one of two adjacent brackets must include their shared edge",
                            );
                        }
                    }
                }
                if non_decreasing && b.amount < pb.amount {
                    self.push(
                        format!("{p}.amount"),
                        "accumulated bracket amounts must not decrease",
                    );
                }
            }
            prev = Some(b);
        }
    }

    fn diagnosis(&mut self, d: &DiagnosisRules) {
        if d.covered.is_empty() {
            self.push("diagnosis.covered", "at least one disease is required");
        }
        for (i, c) in d.covered.iter().enumerate() {
            let ok = !c.is_empty()
                && c.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
            if !ok {
                self.push(
                    format!("diagnosis.covered[{i}]"),
                    "disease codes are snake_case",
                );
            }
            if d.covered[..i].contains(c) {
                self.push(format!("diagnosis.covered[{i}]"), "disease listed twice");
            }
        }
        for (i, e) in d.icd10.iter().enumerate() {
            let p = format!("diagnosis.icd10[{i}]");
            let mut chars = e.prefix.chars();
            let well_formed = chars.next().is_some_and(|c| c.is_ascii_uppercase())
                && chars.all(|c| c.is_ascii_digit() || c == '.' || c.is_ascii_uppercase())
                && e.prefix.len() >= 3;
            if !well_formed {
                self.push(
                    format!("{p}.prefix"),
                    "an ICD-10 code prefix: a capital letter, then digits (e.g. C50, C57.0)",
                );
            }
            if !d.covered.contains(&e.disease) {
                self.push(format!("{p}.disease"), "disease is not in `covered`");
            }
            if e.in_situ && !d.in_situ_covered {
                self.push(format!("{p}.in_situ"), "carcinoma in situ is not covered");
            }
            if d.icd10[..i].iter().any(|o| o.prefix == e.prefix) {
                self.push(format!("{p}.prefix"), "prefix listed twice");
            }
        }
        if let Some(b) = &d.benefits {
            self.non_negative("diagnosis.benefits.default_amount", b.default_amount);
            for (code, amount) in &b.by_disease {
                let p = format!("diagnosis.benefits.by_disease.{code}");
                self.non_negative(&p, amount.0);
                if !d.covered.contains(code) {
                    self.push(p, "disease is not in `covered`");
                }
            }
            self.opt_non_negative("diagnosis.benefits.in_situ_amount", b.in_situ_amount);
            self.opt_non_negative(
                "diagnosis.benefits.rehabilitation_grant",
                b.rehabilitation_grant,
            );
            self.opt_non_negative(
                "diagnosis.benefits.condolence_in_observation",
                b.condolence_in_observation,
            );
            if d.in_situ_covered && b.in_situ_amount.is_none() {
                self.push(
                    "diagnosis.benefits.in_situ_amount",
                    "required when carcinoma in situ is covered",
                );
            }
        }
    }

    fn work_injury(&mut self, w: &WorkInjuryRules) {
        self.opt_non_negative("work_injury.death", w.death);
        let mut seen = [0u8; 11];
        for (i, g) in w.grades.iter().enumerate() {
            let p = format!("work_injury.grades[{i}]");
            self.non_negative(&format!("{p}.amount"), g.amount);
            if g.from < 1 || g.to > 10 || g.from > g.to {
                self.push(p, "grades run from 1 to 10, `from` ≤ `to`");
                continue;
            }
            for grade in g.from..=g.to {
                seen[usize::from(grade)] += 1;
            }
        }
        if !w.grades.is_empty() {
            for (grade, count) in seen.iter().enumerate().skip(1) {
                if *count != 1 {
                    self.push(
                        "work_injury.grades",
                        format!("grade {grade} must appear exactly once"),
                    );
                }
            }
        }
    }
}

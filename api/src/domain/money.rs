//! Amounts of money in Chinese yuan (CNY): the one money type of the backend, its two
//! readings of text, its rounding, its two-decimal form, and the serde helpers the benefit
//! engine's contract uses for its decimal fields ([`contract_amount`]).

use std::fmt;
use std::ops::{Add, Sub};

use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::domain::DomainError;

/// Decimal places of the smallest unit, the fen (分).
const FEN_PLACES: u32 = 2;

/// An amount of money in yuan, held exactly as a decimal.
///
/// On the wire it is always a string with exactly two decimals (`"1234.50"`),
/// never a JSON number, so no client parses it into a binary float. Amounts
/// computed here (e.g. a reimbursement ratio applied to an expense) may carry
/// more than two decimals until [`Money::round_half_up`] is applied;
/// [`Money::to_fen`] and serialisation refuse such unrounded amounts rather
/// than round them silently.
///
/// Amounts coming from outside are never negative; arithmetic inside the
/// backend may produce negative differences.
///
/// Text comes in through two doors that have always read it differently, so
/// the type has two named readings sharing one scanner:
/// - [`Money::parse`] (and `Deserialize`, `FromStr`): an amount **entered** by
///   a person or sent in an ordinary request body or bank file — surrounding
///   whitespace ignored, no ceiling below `Decimal`'s range;
/// - [`Money::parse_contract`] (and [`contract_amount`]): an amount in the
///   **simulation contract** (`simulate.md`, a claim's facts, a stored
///   judgement) — the exact string or nothing, at most [`Money::CONTRACT_MAX`],
///   and a JSON number refused with the contract's own wording.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Money(Decimal);

/// Why a string or amount is not acceptable money. Messages never contain
/// the input.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MoneyError {
    /// Not a plain decimal number such as `12`, `12.5` or `12.50` (exponents,
    /// signs, thousands separators and other text are refused).
    #[error("an amount must be a plain decimal number such as 1234.50")]
    Format,
    /// A minus sign: amounts entered by users are never negative.
    #[error("an amount cannot be negative")]
    Negative,
    /// Finer than one fen (0.01 yuan).
    #[error("an amount cannot have more than 2 decimal places")]
    Precision,
    /// Too large: beyond `Decimal`'s range when entered, above
    /// [`Money::CONTRACT_MAX`] in the contract.
    #[error("the amount is too large")]
    Overflow,
}

impl MoneyError {
    /// Stable snake_case code for API clients and logs.
    pub fn code(&self) -> &'static str {
        match self {
            MoneyError::Format => "money_format",
            MoneyError::Negative => "money_negative",
            MoneyError::Precision => "money_precision",
            MoneyError::Overflow => "money_overflow",
        }
    }

    /// User-facing message in Chinese.
    pub fn message_zh(&self) -> &'static str {
        match self {
            MoneyError::Format => "金额格式不正确",
            MoneyError::Negative => "金额不能为负数",
            MoneyError::Precision => "金额最多保留两位小数",
            MoneyError::Overflow => "金额超出范围",
        }
    }

    /// The English message the simulation contract gives in `invalid_request`:
    /// its wording is part of the contract's answers (and names the contract's
    /// ceiling), so it is kept apart from `Display`.
    fn contract_message(&self) -> &'static str {
        match self {
            MoneyError::Format => "an amount must be a decimal string like \"1234.50\"",
            MoneyError::Negative => "an amount must not be negative",
            MoneyError::Precision => "an amount has at most 2 decimal places",
            MoneyError::Overflow => "an amount must not exceed 1000000000000.00",
        }
    }
}

impl DomainError for MoneyError {
    fn code(&self) -> &'static str {
        MoneyError::code(self)
    }

    fn message_zh(&self) -> &'static str {
        MoneyError::message_zh(self)
    }
}

impl Money {
    /// Zero yuan.
    pub const ZERO: Money = Money(Decimal::ZERO);

    /// The largest amount the simulation contract accepts (one trillion
    /// yuan). It keeps every sum the engine makes of such amounts far from
    /// `Decimal`'s range, so no arithmetic there can overflow.
    pub const CONTRACT_MAX: Money = Money(Decimal::from_parts(3_567_587_328, 232, 0, false, 0));

    /// Wraps an exact decimal amount of yuan, of any precision and sign (for
    /// computed amounts; round with [`Money::round_half_up`] before storing).
    pub const fn from_decimal(amount: Decimal) -> Money {
        Money(amount)
    }

    /// An amount given in fen (分, 0.01 yuan), the unit payment gateways such
    /// as WeChat Pay use. Exact for every `i64`.
    pub fn from_fen(fen: i64) -> Money {
        Money(Decimal::new(fen, FEN_PLACES))
    }

    /// The amount in fen.
    ///
    /// Fails with [`MoneyError::Precision`] if the amount is not a whole
    /// number of fen (round first), or [`MoneyError::Overflow`] if it does
    /// not fit an `i64`.
    pub fn to_fen(&self) -> Result<i64, MoneyError> {
        let fen = self
            .0
            .checked_mul(Decimal::ONE_HUNDRED)
            .ok_or(MoneyError::Overflow)?
            .normalize();
        // After normalising, a whole number has scale 0 and its mantissa is
        // the integer value itself.
        if fen.scale() != 0 {
            return Err(MoneyError::Precision);
        }
        i64::try_from(fen.mantissa()).map_err(|_| MoneyError::Overflow)
    }

    /// Parses an amount of yuan as typed by a user or sent by a client:
    /// digits with an optional `.` and one or two decimals, surrounding
    /// whitespace ignored. Refuses signs, exponents, separators and anything
    /// else, so what is stored is exactly what was shown.
    pub fn parse(input: &str) -> Result<Money, MoneyError> {
        let text = input.trim();
        if text.starts_with('-') {
            return Err(MoneyError::Negative);
        }
        let (_, fraction) = plain_digits(text).ok_or(MoneyError::Format)?;
        if fraction.is_some_and(|f| f.len() > FEN_PLACES as usize) {
            return Err(MoneyError::Precision);
        }
        // The text is now plain digits, so the only failure left is a value
        // beyond Decimal's 96-bit range.
        text.parse::<Decimal>()
            .map(Money)
            .map_err(|_| MoneyError::Overflow)
    }

    /// Parses an amount of the simulation contract strictly: the string is
    /// the amount, with nothing around it (no whitespace), at most two
    /// decimals, no sign, no exponent, at most [`Money::CONTRACT_MAX`]. A
    /// minus sign before something that is not a number is a format error,
    /// not a negative amount.
    pub fn parse_contract(text: &str) -> Result<Money, MoneyError> {
        let (negative, body) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let (whole, fraction) = plain_digits(body).ok_or(MoneyError::Format)?;
        if negative {
            return Err(MoneyError::Negative);
        }
        if fraction.is_some_and(|f| f.len() > FEN_PLACES as usize) {
            return Err(MoneyError::Precision);
        }
        // At most 13 integer digits (after leading zeros) before parsing keeps
        // Decimal well in range.
        if whole.trim_start_matches('0').len() > 13 {
            return Err(MoneyError::Overflow);
        }
        let amount = body
            .parse::<Decimal>()
            .map(Money)
            .map_err(|_| MoneyError::Format)?;
        if amount > Money::CONTRACT_MAX {
            return Err(MoneyError::Overflow);
        }
        Ok(amount)
    }

    /// The exact decimal amount of yuan.
    pub const fn as_decimal(&self) -> Decimal {
        self.0
    }

    /// Rounds to whole fen, halves away from zero (四舍五入: 0.005 → 0.01).
    pub fn round_half_up(self) -> Money {
        Money(
            self.0
                .round_dp_with_strategy(FEN_PLACES, RoundingStrategy::MidpointAwayFromZero),
        )
    }

    /// Whether the amount is a whole number of fen, i.e. can be stored,
    /// paid out and serialised as it is.
    pub fn is_whole_fen(&self) -> bool {
        self.0.normalize().scale() <= FEN_PLACES
    }

    /// Whether the amount is below zero.
    pub fn is_negative(&self) -> bool {
        self.0.is_sign_negative() && !self.0.is_zero()
    }

    /// Adds, or `None` on overflow (beyond about 7.9 × 10²⁸ yuan).
    pub fn checked_add(self, other: Money) -> Option<Money> {
        self.0.checked_add(other.0).map(Money)
    }

    /// Subtracts, or `None` on overflow.
    pub fn checked_sub(self, other: Money) -> Option<Money> {
        self.0.checked_sub(other.0).map(Money)
    }

    /// The amount with exactly two decimals, if it is a whole number of fen.
    fn two_decimal_string(&self) -> Option<String> {
        // An amount made from fen (`from_fen`: every amount read from the database) has scale
        // 2 and its mantissa is the fen: written as integers, without the decimal arithmetic
        // below (which a claim list paid for every amount of every item, issue 20).
        if self.0.scale() == FEN_PLACES
            && let Ok(fen) = i64::try_from(self.0.mantissa())
        {
            let sign = if fen < 0 { "-" } else { "" };
            let fen = fen.unsigned_abs();
            return Some(format!("{sign}{}.{:02}", fen / 100, fen % 100));
        }
        if !self.is_whole_fen() {
            return None;
        }
        let mut amount = self.0.normalize();
        // Widening the scale to 2 only appends zeros, so nothing is rounded.
        amount.rescale(FEN_PLACES);
        Some(amount.to_string())
    }
}

/// Splits plain decimal text (`12`, `12.5`) into its whole and fraction
/// digits; `None` for anything else: a sign, an exponent, a separator, no
/// digit on one side of the point.
fn plain_digits(text: &str) -> Option<(&str, Option<&str>)> {
    let (whole, fraction) = match text.split_once('.') {
        Some((whole, fraction)) => (whole, Some(fraction)),
        None => (text, None),
    };
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    (all_digits(whole) && fraction.is_none_or(all_digits)).then_some((whole, fraction))
}

/// Adds two amounts. Panics only on overflow beyond about 7.9 × 10²⁸ yuan,
/// like integer addition; use [`Money::checked_add`] where that is possible.
impl Add for Money {
    type Output = Money;

    fn add(self, other: Money) -> Money {
        Money(self.0 + other.0)
    }
}

/// Subtracts two amounts; the result may be negative. Panics only on overflow
/// beyond about 7.9 × 10²⁸ yuan; see [`Money::checked_sub`].
impl Sub for Money {
    type Output = Money;

    fn sub(self, other: Money) -> Money {
        Money(self.0 - other.0)
    }
}

impl std::iter::Sum for Money {
    fn sum<I: Iterator<Item = Money>>(iter: I) -> Money {
        iter.fold(Money::ZERO, Add::add)
    }
}

/// Two decimals (`1234.50`). An unrounded amount is shown with all its
/// decimals rather than rounded, so logs never hide a missing rounding step.
impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.two_decimal_string() {
            Some(text) => f.write_str(&text),
            None => write!(f, "{}", self.0.normalize()),
        }
    }
}

impl std::str::FromStr for Money {
    type Err = MoneyError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Money::parse(s)
    }
}

/// Serialises as a string with exactly two decimals. Refuses an amount that
/// is not a whole number of fen: rounding is a business decision that must be
/// made explicitly with [`Money::round_half_up`], not by the JSON encoder.
impl Serialize for Money {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.two_decimal_string() {
            Some(text) => serializer.serialize_str(&text),
            None => Err(serde::ser::Error::custom(
                "money with more than 2 decimal places must be rounded before serialising",
            )),
        }
    }
}

/// Accepts only a string (not a JSON number, which a client may already have
/// turned into an inexact float), validated with [`Money::parse`].
impl<'de> Deserialize<'de> for Money {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(deserializer)?;
        Money::parse(&raw).map_err(serde::de::Error::custom)
    }
}

impl utoipa::PartialSchema for Money {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        crate::domain::string_schema(
            "Amount in yuan (CNY) as a string with exactly two decimals. \
             Input may omit trailing decimals (\"12\", \"12.5\").",
            "1234.50",
            Some(r"^\d+\.\d{2}$"),
        )
    }
}

impl utoipa::ToSchema for Money {}

/// Serde for a `Decimal` amount of the simulation contract (the engine's
/// events, items and totals), through [`Money`]: read with
/// [`Money::parse_contract`], written rounded half-up
/// ([`Money::round_half_up`]) with two decimals. The engine keeps `Decimal`
/// fields because it multiplies amounts by rates and prorates them before
/// rounding once per item; only the text form is money's. Use as
/// `#[serde(with = "contract_amount")]`, or `contract_amount::option` for an
/// `Option` (absent or `null` is `None`).
pub mod contract_amount {
    use rust_decimal::Decimal;
    use serde::{Deserialize, Deserializer, Serialize, Serializer, de};

    use super::Money;

    struct ContractVisitor;

    impl de::Visitor<'_> for ContractVisitor {
        type Value = Decimal;

        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a money string like \"1234.50\"")
        }

        fn visit_str<E: de::Error>(self, v: &str) -> Result<Decimal, E> {
            Money::parse_contract(v)
                .map(|m| m.as_decimal())
                .map_err(|e| E::custom(e.contract_message()))
        }

        // A JSON number is a binary float for most clients, and the contract
        // says "money as strings": refused, with a message that says so.
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Decimal, E> {
            Err(E::custom(NOT_A_NUMBER))
        }

        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Decimal, E> {
            Err(E::custom(NOT_A_NUMBER))
        }

        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Decimal, E> {
            Err(E::custom(NOT_A_NUMBER))
        }
    }

    const NOT_A_NUMBER: &str = "an amount must be a JSON string like \"1234.50\", not a number";

    /// Writes the amount rounded half-up to the fen, with two decimals.
    pub fn serialize<S: Serializer>(amount: &Decimal, s: S) -> Result<S::Ok, S::Error> {
        Money::from_decimal(*amount).round_half_up().serialize(s)
    }

    /// Reads a contract money string (a JSON number is refused).
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Decimal, D::Error> {
        d.deserialize_any(ContractVisitor)
    }

    /// The same for an optional amount: `null` or absent is `None`.
    pub mod option {
        use super::*;

        /// Writes `null` for `None`, else as [`super::serialize`].
        pub fn serialize<S: Serializer>(amount: &Option<Decimal>, s: S) -> Result<S::Ok, S::Error> {
            match amount {
                Some(a) => super::serialize(a, s),
                None => s.serialize_none(),
            }
        }

        /// Reads `null` as `None`, else as [`super::deserialize`].
        pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Decimal>, D::Error> {
            #[derive(Deserialize)]
            struct Amount(#[serde(deserialize_with = "super::deserialize")] Decimal);
            Option::<Amount>::deserialize(d).map(|o| o.map(|a| a.0))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn money(text: &str) -> Money {
        Money::parse(text).unwrap()
    }

    fn dec(text: &str) -> Decimal {
        text.parse().unwrap()
    }

    #[test]
    fn plain_amounts_parse_and_display_with_two_decimals() {
        assert_eq!(money("1234.5").to_string(), "1234.50");
        assert_eq!(money("1234.50").to_string(), "1234.50");
        assert_eq!(money("1234").to_string(), "1234.00");
        assert_eq!(money("0").to_string(), "0.00");
        assert_eq!(money(" 0.01 ").to_string(), "0.01");
        assert_eq!(money("007.10").to_string(), "7.10");
    }

    #[test]
    fn negative_amounts_are_refused() {
        assert_eq!(Money::parse("-1.00"), Err(MoneyError::Negative));
        assert_eq!(Money::parse("-0"), Err(MoneyError::Negative));
    }

    #[test]
    fn more_than_two_decimals_are_refused() {
        assert_eq!(Money::parse("1.001"), Err(MoneyError::Precision));
        assert_eq!(Money::parse("1.000"), Err(MoneyError::Precision));
    }

    #[test]
    fn exponents_signs_separators_and_garbage_are_refused() {
        for input in [
            "", " ", "1e3", "1E3", "1.5e2", "+1", "1,000.00", "1.", ".5", "1..2", "1.2.3", "abc",
            "１２", "¥12", "12元", "NaN", "inf", "0x10", "1 000",
        ] {
            assert_eq!(Money::parse(input), Err(MoneyError::Format), "{input:?}");
        }
    }

    #[test]
    fn amounts_beyond_the_decimal_range_overflow() {
        assert_eq!(
            Money::parse("999999999999999999999999999999999"),
            Err(MoneyError::Overflow)
        );
    }

    #[test]
    fn fen_round_trip_exactly() {
        assert_eq!(Money::from_fen(123_450).to_string(), "1234.50");
        assert_eq!(money("1234.5").to_fen(), Ok(123_450));
        assert_eq!(Money::from_fen(1).to_fen(), Ok(1));
        assert_eq!(Money::from_fen(i64::MAX).to_fen(), Ok(i64::MAX));
        assert_eq!(Money::from_fen(i64::MIN).to_fen(), Ok(i64::MIN));
        assert_eq!(Money::from_fen(-5).to_string(), "-0.05");
    }

    #[test]
    fn to_fen_refuses_fractions_of_a_fen() {
        assert_eq!(
            Money::from_decimal(dec("0.005")).to_fen(),
            Err(MoneyError::Precision)
        );
        // Trailing zeros beyond two places are not a real fraction of a fen.
        assert_eq!(Money::from_decimal(dec("70.0000")).to_fen(), Ok(7000));
    }

    #[test]
    fn to_fen_refuses_amounts_beyond_i64() {
        let too_big = Money::from_fen(i64::MAX) + Money::from_fen(1);
        assert_eq!(too_big.to_fen(), Err(MoneyError::Overflow));
        assert_eq!(
            Money::from_decimal(Decimal::MAX).to_fen(),
            Err(MoneyError::Overflow)
        );
    }

    #[test]
    fn rounding_is_half_up_to_the_fen() {
        let round = |s: &str| Money::from_decimal(dec(s)).round_half_up().to_string();
        assert_eq!(round("0.005"), "0.01");
        assert_eq!(round("0.004999"), "0.00");
        assert_eq!(round("2.675"), "2.68");
        assert_eq!(round("2.665"), "2.67");
        assert_eq!(round("1.5"), "1.50");
        assert_eq!(round("-0.005"), "-0.01");
    }

    #[test]
    fn a_reimbursement_ratio_applied_then_rounded_gives_whole_fen() {
        let expense = money("1234.57");
        let reimbursed = Money::from_decimal(expense.as_decimal() * dec("0.7"));
        assert!(!reimbursed.is_whole_fen());
        assert_eq!(reimbursed.to_string(), "864.199");
        let rounded = reimbursed.round_half_up();
        assert_eq!(rounded.to_string(), "864.20");
        assert_eq!(rounded.to_fen(), Ok(86_420));
    }

    #[test]
    fn addition_and_subtraction_are_exact() {
        let sum = money("0.10") + money("0.20");
        assert_eq!(sum, money("0.30"));
        assert_eq!(sum.to_string(), "0.30");
        assert_eq!(money("1.00") - money("0.01"), money("0.99"));
        let difference = money("1") - money("2.5");
        assert!(difference.is_negative());
        assert_eq!(difference.to_string(), "-1.50");
        assert_eq!(money("5") - money("5"), Money::ZERO);
        assert!(!(money("5") - money("5")).is_negative());
        let total: Money = ["1.10", "2.20", "3.30"].into_iter().map(money).sum();
        assert_eq!(total.to_string(), "6.60");
    }

    #[test]
    fn checked_arithmetic_reports_overflow() {
        let max = Money::from_decimal(Decimal::MAX);
        assert_eq!(max.checked_add(Money::from_fen(100)), None);
        assert_eq!(
            money("1.00").checked_sub(money("0.50")),
            Some(money("0.50"))
        );
    }

    #[test]
    fn equal_amounts_compare_equal_regardless_of_scale() {
        assert_eq!(money("1.5"), money("1.50"));
        assert!(money("1.5") < money("1.51"));
        assert_eq!(Money::default(), Money::ZERO);
    }

    #[test]
    fn serialises_as_a_string_with_exactly_two_decimals() {
        assert_eq!(
            serde_json::to_string(&money("1234.5")).unwrap(),
            "\"1234.50\""
        );
        assert_eq!(serde_json::to_string(&Money::ZERO).unwrap(), "\"0.00\"");
        assert_eq!(
            serde_json::to_string(&Money::from_decimal(dec("70.0000"))).unwrap(),
            "\"70.00\""
        );
    }

    #[test]
    fn serialising_an_unrounded_amount_is_an_error() {
        let unrounded = Money::from_decimal(dec("1.005"));
        assert!(serde_json::to_string(&unrounded).is_err());
        assert_eq!(unrounded.to_string(), "1.005");
    }

    #[test]
    fn deserialises_only_from_a_valid_string() {
        let parsed: Money = serde_json::from_str("\"1234.5\"").unwrap();
        assert_eq!(parsed.to_fen(), Ok(123_450));
        assert!(serde_json::from_str::<Money>("1234.5").is_err());
        let err = serde_json::from_str::<Money>("\"1.001\"").unwrap_err();
        assert!(err.to_string().contains("2 decimal places"), "{err}");
        assert!(serde_json::from_str::<Money>("\"-1\"").is_err());
    }

    #[test]
    fn every_error_has_a_code_and_a_chinese_message() {
        let all = [
            MoneyError::Format,
            MoneyError::Negative,
            MoneyError::Precision,
            MoneyError::Overflow,
        ];
        let codes: Vec<_> = all.iter().map(MoneyError::code).collect();
        assert_eq!(
            codes,
            [
                "money_format",
                "money_negative",
                "money_precision",
                "money_overflow"
            ]
        );
        assert!(all.iter().all(|e| e.message_zh().contains("金额")));
    }

    #[test]
    fn the_schema_is_a_two_decimal_string() {
        let schema = serde_json::to_value(<Money as utoipa::PartialSchema>::schema()).unwrap();
        assert_eq!(schema["type"], "string");
        assert_eq!(schema["pattern"], r"^\d+\.\d{2}$");
        assert_eq!(schema["examples"][0], "1234.50");
        assert_eq!(<Money as utoipa::ToSchema>::name(), "Money");
    }

    #[test]
    fn the_contract_reading_is_strict_where_the_entered_reading_forgives() {
        use MoneyError::*;
        type Reading = Result<&'static str, MoneyError>;
        // (input, entered, contract)
        let cases: [(&str, Reading, Reading); 11] = [
            ("12.5", Ok("12.50"), Ok("12.50")),
            (" 12.50 ", Ok("12.50"), Err(Format)),
            ("-1", Err(Negative), Err(Negative)),
            ("-abc", Err(Negative), Err(Format)),
            ("1.234", Err(Precision), Err(Precision)),
            ("1e3", Err(Format), Err(Format)),
            (
                "1000000000000.00",
                Ok("1000000000000.00"),
                Ok("1000000000000.00"),
            ),
            ("1000000000000.01", Ok("1000000000000.01"), Err(Overflow)),
            ("99999999999999", Ok("99999999999999.00"), Err(Overflow)),
            ("000000000000000000001.50", Ok("1.50"), Ok("1.50")),
            (
                "999999999999999999999999999999999",
                Err(Overflow),
                Err(Overflow),
            ),
        ];
        for (input, entered, contract) in cases {
            let shown = |r: Result<Money, MoneyError>| r.map(|m| m.to_string());
            let owned = |r: Result<&str, MoneyError>| r.map(str::to_owned);
            assert_eq!(shown(Money::parse(input)), owned(entered), "{input:?}");
            assert_eq!(
                shown(Money::parse_contract(input)),
                owned(contract),
                "{input:?}"
            );
        }
    }

    #[test]
    fn the_contract_ceiling_is_the_one_its_message_names() {
        assert_eq!(Money::CONTRACT_MAX, money("1000000000000"));
        assert!(
            MoneyError::Overflow
                .contract_message()
                .ends_with(&Money::CONTRACT_MAX.to_string())
        );
    }

    #[derive(Debug, PartialEq, serde::Deserialize, serde::Serialize)]
    struct ContractFields {
        #[serde(with = "contract_amount")]
        amount: Decimal,
        #[serde(default, with = "contract_amount::option")]
        optional: Option<Decimal>,
    }

    #[test]
    fn contract_amounts_are_read_strictly_with_the_contracts_wording() {
        let read = |json: &str| serde_json::from_str::<ContractFields>(json);
        let fields = read(r#"{"amount": "12000.5", "optional": null}"#).unwrap();
        assert_eq!(fields.amount, dec("12000.5"));
        assert_eq!(fields.optional, None);
        assert_eq!(read(r#"{"amount": "0"}"#).unwrap().optional, None);
        for (json, message) in [
            (r#"{"amount": 12000}"#, "not a number"),
            (r#"{"amount": "12000", "optional": 1.5}"#, "not a number"),
            (r#"{"amount": " 1"}"#, "a decimal string like"),
            (r#"{"amount": "-1"}"#, "must not be negative"),
            (r#"{"amount": "1.001"}"#, "at most 2 decimal places"),
            (r#"{"amount": "1000000000000.01"}"#, "must not exceed"),
            (r#"{"amount": true}"#, "expected a money string"),
        ] {
            let err = read(json).unwrap_err().to_string();
            assert!(err.contains(message), "{json}: {err}");
        }
    }

    #[test]
    fn contract_amounts_are_written_rounded_half_up_with_two_decimals() {
        let write = |amount: &str, optional: Option<&str>| {
            serde_json::to_string(&ContractFields {
                amount: dec(amount),
                optional: optional.map(dec),
            })
            .unwrap()
        };
        assert_eq!(
            write("0.125", Some("6600")),
            r#"{"amount":"0.13","optional":"6600.00"}"#
        );
        assert_eq!(write("0", None), r#"{"amount":"0.00","optional":null}"#);
        assert_eq!(
            write("-0.005", None),
            r#"{"amount":"-0.01","optional":null}"#
        );
    }

    proptest! {
        #[test]
        fn any_fen_amount_round_trips(fen in any::<i64>()) {
            prop_assert_eq!(Money::from_fen(fen).to_fen(), Ok(fen));
        }

        #[test]
        fn any_non_negative_amount_round_trips_through_json(fen in 0i64..=i64::MAX) {
            let amount = Money::from_fen(fen);
            let json = serde_json::to_string(&amount).unwrap();
            let text = json.trim_matches('"');
            let (_, decimals) = text.split_once('.').unwrap();
            prop_assert_eq!(decimals.len(), 2);
            prop_assert_eq!(serde_json::from_str::<Money>(&json).unwrap(), amount);
        }

        #[test]
        fn rounding_always_yields_whole_fen_within_half_a_fen(
            mantissa in -1_000_000_000_000i64..1_000_000_000_000, scale in 0u32..8
        ) {
            let exact = Money::from_decimal(Decimal::new(mantissa, scale));
            let rounded = exact.round_half_up();
            prop_assert!(rounded.to_fen().is_ok());
            let error = (rounded.as_decimal() - exact.as_decimal()).abs();
            prop_assert!(error <= Decimal::new(5, 3));
        }

        #[test]
        fn amounts_are_written_as_the_decimal_writes_them(
            mantissa in any::<i64>(), scale in 0u32..6, negative_zero in any::<bool>()
        ) {
            // The decimal's own text at two places, as every amount was written before
            // `from_fen` amounts were written from their integer.
            let by_decimal = |m: &Money| {
                m.is_whole_fen().then(|| {
                    let mut amount = m.0.normalize();
                    amount.rescale(FEN_PLACES);
                    amount.to_string()
                })
            };
            let amount = Money::from_decimal(Decimal::new(mantissa, scale));
            prop_assert_eq!(amount.two_decimal_string(), by_decimal(&amount));
            let fen = Money::from_fen(mantissa);
            prop_assert_eq!(fen.two_decimal_string(), by_decimal(&fen));
            if negative_zero {
                let zero = Money::from_decimal(-Decimal::new(0, FEN_PLACES));
                prop_assert_eq!(zero.two_decimal_string(), by_decimal(&zero));
            }
        }

        #[test]
        fn parsing_arbitrary_text_never_panics(input in "\\PC{0,40}") {
            let _ = Money::parse(&input);
        }
    }
}

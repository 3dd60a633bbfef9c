//! Money: exact decimals, rounding once per item, and the contract's string form.
//!
//! Reading chosen for the contract: **money in a request must be a JSON string** (`"1234.50"`),
//! with at most two decimal places, no sign, no exponent. A JSON number is refused as
//! `invalid_request`: a JSON number is a binary float for most clients, and the contract says
//! "money as strings". The same strict parser is used by the HTTP layer, the CLI and the
//! engine's own serde, so every entry point agrees.

use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Deserializer, Serializer, de};

/// The largest amount accepted in a request (one trillion yuan). Anything larger is refused as
/// `invalid_request`; this keeps every later sum far from `Decimal`'s range, so no arithmetic in
/// the engine can overflow.
pub const MAX_AMOUNT: Decimal = Decimal::from_parts(3_567_587_328, 232, 0, false, 0); // 1_000_000_000_000

/// Rounds a payout component once, to 0.01, half-up (四舍五入, `MidpointAwayFromZero`).
pub fn round_money(amount: Decimal) -> Decimal {
    amount.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero)
}

/// Formats money with exactly two decimals (`"1234.50"`), after rounding half-up.
pub fn format_money(amount: Decimal) -> String {
    let mut rounded = round_money(amount);
    if rounded.is_zero() {
        return "0.00".to_owned();
    }
    rounded.rescale(2);
    rounded.to_string()
}

/// Why a money string was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AmountProblem {
    /// Empty, a letter, an exponent, a sign other than a leading minus…
    NotANumber,
    /// A leading minus.
    Negative,
    /// Three or more digits after the point.
    TooManyDecimals,
    /// Above [`MAX_AMOUNT`].
    TooLarge,
}

impl AmountProblem {
    /// The English message used in `invalid_request`.
    pub fn message(self) -> &'static str {
        match self {
            Self::NotANumber => "an amount must be a decimal string like \"1234.50\"",
            Self::Negative => "an amount must not be negative",
            Self::TooManyDecimals => "an amount has at most 2 decimal places",
            Self::TooLarge => "an amount must not exceed 1000000000000.00",
        }
    }
}

/// Parses a contract money string strictly: digits, optionally `.` and one or two digits.
pub fn parse_amount(text: &str) -> Result<Decimal, AmountProblem> {
    let (negative, body) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (int_part, frac_part) = match body.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (body, None),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(int_part) || frac_part.is_some_and(|f| !digits(f)) {
        return Err(AmountProblem::NotANumber);
    }
    if negative {
        return Err(AmountProblem::Negative);
    }
    if frac_part.is_some_and(|f| f.len() > 2) {
        return Err(AmountProblem::TooManyDecimals);
    }
    // At most 13 integer digits (after leading zeros) before parsing keeps Decimal well in range.
    if int_part.trim_start_matches('0').len() > 13 {
        return Err(AmountProblem::TooLarge);
    }
    let value: Decimal = body.parse().map_err(|_| AmountProblem::NotANumber)?;
    if value > MAX_AMOUNT {
        return Err(AmountProblem::TooLarge);
    }
    Ok(value)
}

struct AmountVisitor;

impl de::Visitor<'_> for AmountVisitor {
    type Value = Decimal;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a money string like \"1234.50\"")
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Decimal, E> {
        parse_amount(v).map_err(|p| E::custom(p.message()))
    }

    fn visit_u64<E: de::Error>(self, _: u64) -> Result<Decimal, E> {
        Err(E::custom(
            "an amount must be a JSON string like \"1234.50\", not a number",
        ))
    }

    fn visit_i64<E: de::Error>(self, _: i64) -> Result<Decimal, E> {
        Err(E::custom(
            "an amount must be a JSON string like \"1234.50\", not a number",
        ))
    }

    fn visit_f64<E: de::Error>(self, _: f64) -> Result<Decimal, E> {
        Err(E::custom(
            "an amount must be a JSON string like \"1234.50\", not a number",
        ))
    }
}

/// Strict deserializer of a required money string.
pub fn de_amount<'de, D: Deserializer<'de>>(d: D) -> Result<Decimal, D::Error> {
    d.deserialize_any(AmountVisitor)
}

/// Strict deserializer of an optional money string (`null` or absent is `None`).
pub fn de_opt_amount<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Decimal>, D::Error> {
    #[derive(Deserialize)]
    struct Wrapped(#[serde(deserialize_with = "de_amount")] Decimal);
    Option::<Wrapped>::deserialize(d).map(|o| o.map(|w| w.0))
}

/// Serializes money as a two-decimal string.
pub fn ser_amount<S: Serializer>(amount: &Decimal, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_money(*amount))
}

/// Serializes optional money as a two-decimal string or `null`.
pub fn ser_opt_amount<S: Serializer>(amount: &Option<Decimal>, s: S) -> Result<S::Ok, S::Error> {
    match amount {
        Some(a) => s.serialize_str(&format_money(*a)),
        None => s.serialize_none(),
    }
}

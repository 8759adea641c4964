//! `numeric` into `rust_decimal::Decimal`, rounded as a direct query rounds it.
//!
//! A direct tokio-postgres query reads a `numeric` through rust_decimal's own
//! `FromSql`, which takes PostgreSQL's base-10000 digits and rounds what
//! `Decimal` cannot hold to 28 decimal places. The event carries the same
//! value as text; [`Numeric::parse`] turns that text back into the digits
//! PostgreSQL sends, and [`Numeric::into_decimal`] follows rust_decimal's steps
//! on them, so both reads agree to the last digit and the scale.

use std::borrow::Cow;

use rust_decimal::Decimal;
use serde_json::Value;

use super::{Decode, ValueError};
use crate::table::{Encoding, SessionSettings};

/// A finite `numeric` as PostgreSQL stores it and sends it in binary.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Numeric {
    negative: bool,
    /// The power of 10000 of the first digit.
    weight: i32,
    /// Decimal digits after the point, as written.
    scale: usize,
    /// Base-10000 digits, without leading or trailing zero digits.
    digits: Vec<u16>,
}

impl Numeric {
    /// Reads `numeric_out`'s form: `-?[0-9]+(\.[0-9]+)?`.
    fn parse(text: &str) -> Option<Numeric> {
        let (negative, unsigned) = match text.strip_prefix('-') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let (whole, fraction) = unsigned.split_once('.').unwrap_or((unsigned, ""));
        if (whole.is_empty() && fraction.is_empty())
            || !whole
                .bytes()
                .chain(fraction.bytes())
                .all(|b| b.is_ascii_digit())
        {
            return None;
        }
        let whole = whole.trim_start_matches('0');
        // Digits are grouped by four either side of the point.
        let lead = (4 - whole.len() % 4) % 4;
        let trail = (4 - fraction.len() % 4) % 4;
        let mut padded = vec![b'0'; lead];
        padded.extend(whole.bytes().chain(fraction.bytes()));
        padded.resize(padded.len() + trail, b'0');
        let mut digits: Vec<u16> = padded
            .chunks_exact(4)
            .map(|group| group.iter().fold(0, |n, b| n * 10 + u16::from(b - b'0')))
            .collect();
        let mut weight = i32::try_from((lead + whole.len()) / 4).ok()? - 1;
        let leading_zeros = digits.iter().take_while(|&&d| d == 0).count();
        digits.drain(..leading_zeros);
        weight -= i32::try_from(leading_zeros).ok()?;
        let trailing_zeros = digits.iter().rev().take_while(|&&d| d == 0).count();
        digits.truncate(digits.len() - trailing_zeros);
        let zero = digits.is_empty();
        Some(Numeric {
            // PostgreSQL has no negative zero, and gives zero the weight 0.
            negative: negative && !zero,
            weight: if zero { 0 } else { weight },
            scale: fraction.len(),
            digits,
        })
    }

    /// rust_decimal's `FromSql` for `numeric`, step for step (its rounding
    /// included: each addition rounds once the sum needs more than 96 bits,
    /// and digits past the 28th decimal place round on the 29th alone).
    /// `None` where it fails, and also where it panics: on some values above
    /// `Decimal::MAX` whose last base-10000 digits are zeros.
    fn into_decimal(self) -> Option<Decimal> {
        let Numeric {
            negative,
            weight,
            scale,
            mut digits,
        } = self;
        let count = i32::try_from(digits.len()).ok()?;
        let mut result = Decimal::ZERO;
        let integer_digits = weight + 1;
        if integer_digits > 0 {
            // Zero digits after the last one stored, up to the point.
            let (zeros, stored) = if integer_digits > count {
                (integer_digits - count, digits.len())
            } else {
                (0, integer_digits as usize)
            };
            for digit in digits.drain(..stored) {
                result = result.checked_mul(Decimal::from_i128_with_scale(10i128.pow(4), 0))?;
                result = result.checked_add(Decimal::new(i64::from(digit), 0))?;
            }
            let power = 10i128.checked_pow(4 * zeros as u32)?;
            result = result.checked_mul(Decimal::try_from_i128_with_scale(power, 0).ok()?)?;
        }
        if count - weight - 1 > 0 {
            // Zero digits between the point and the first one stored.
            let skipped = if weight < 0 { (-weight) as u32 - 1 } else { 0 };
            for (i, digit) in (0u32..).zip(digits) {
                let places = 4u32.checked_mul(i + 1 + skipped)?;
                if places <= Decimal::MAX_SCALE {
                    result = result.checked_add(
                        Decimal::new(i64::from(digit), 0)
                            / Decimal::from_i128_with_scale(10i128.pow(places), 0),
                    )?;
                } else if places == Decimal::MAX_SCALE + 4 && digit >= 5000 {
                    result = result.checked_add(
                        Decimal::new(1, 0)
                            / Decimal::from_i128_with_scale(10i128.pow(Decimal::MAX_SCALE), 0),
                    )?;
                }
            }
        }
        result.set_sign_negative(negative);
        let scale = u32::try_from(scale).unwrap_or(u32::MAX);
        result.rescale(scale.min(Decimal::MAX_SCALE));
        Some(result)
    }
}

/// `numeric` travels as text so that no JSON parser rounds it through `f64`;
/// it is then read as a direct query reads it: rounded to 28 decimal places
/// where it has more, an error where it is NaN, infinite or rounds beyond
/// `Decimal::MAX`.
impl Decode for Decimal {
    const ENCODING: Encoding = Encoding::Text;
    const SETTINGS: SessionSettings = SessionSettings::NONE;

    fn sql_type() -> Cow<'static, str> {
        "numeric".into()
    }

    fn decode(value: &Value) -> Result<Self, ValueError> {
        let text = match value {
            Value::String(text) => Cow::Borrowed(text.as_str()),
            Value::Number(n) if !n.is_f64() => Cow::Owned(n.to_string()),
            _ => return Err(ValueError::expected("a numeric as a string")),
        };
        match &*text {
            "NaN" | "Infinity" | "-Infinity" => Err(ValueError::new(format_args!(
                "rust_decimal::Decimal cannot hold {text}"
            ))),
            _ => Numeric::parse(&text)
                .ok_or_else(|| ValueError::new("expected a numeric in PostgreSQL's text form"))?
                .into_decimal()
                .ok_or_else(|| {
                    ValueError::new(format_args!(
                        "out of the range of rust_decimal::Decimal (at most {} in magnitude)",
                        Decimal::MAX
                    ))
                }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;
    use tokio_postgres::types::{FromSql, Type};

    fn numeric(negative: bool, weight: i32, scale: usize, digits: &[u16]) -> Numeric {
        Numeric {
            negative,
            weight,
            scale,
            digits: digits.to_vec(),
        }
    }

    #[test]
    fn parses_into_postgres_digits() {
        let parse = |text| Numeric::parse(text).unwrap();
        assert_eq!(
            parse("3950.123456"),
            numeric(false, 0, 6, &[3950, 1234, 5600])
        );
        assert_eq!(parse("-0.00001"), numeric(true, -2, 5, &[1000]));
        assert_eq!(parse("12345678"), numeric(false, 1, 0, &[1234, 5678]));
        assert_eq!(parse("100000000.0000"), numeric(false, 2, 4, &[1]));
        assert_eq!(parse("-0.000"), numeric(false, 0, 3, &[]));
        assert_eq!(parse("0"), numeric(false, 0, 0, &[]));
        for bad in ["", "-", ".", "1e5", "+1", "1.2.3", " 1", "0x1"] {
            assert_eq!(Numeric::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn rounds_as_a_direct_query_does() {
        let decode = |text: &str| Decimal::decode(&json!(text)).map(|d| d.to_string());
        assert_eq!(
            decode("1.00000000000000000000000000000001").unwrap(),
            "1.0000000000000000000000000000"
        );
        assert_eq!(
            decode("0.00000000000000000000000000005").unwrap(),
            "0.0000000000000000000000000001"
        );
        assert_eq!(
            decode("-0.000000000000000000000000000001").unwrap(),
            "-0.0000000000000000000000000000"
        );
        assert_eq!(
            decode("-0.000000000000000000000000001").unwrap(),
            "-0.000000000000000000000000001"
        );
        // Scale 1 would not fit: the value keeps scale 0.
        assert_eq!(
            decode("79228162514264337593543950330.0").unwrap(),
            "79228162514264337593543950330"
        );
        assert_eq!(
            decode("0.1234567890123456789012345678901").unwrap(),
            "0.1234567890123456789012345679"
        );
        // Past 96 bits, additions round half to even.
        assert_eq!(
            decode("79228162514264337593543950334.5").unwrap(),
            "79228162514264337593543950334"
        );
        assert_eq!(
            decode("-79228162514264337593543950335.4").unwrap(),
            "-79228162514264337593543950335"
        );
        assert!(decode("79228162514264337593543950335.5").is_err());
        assert_eq!(Decimal::decode(&json!(-12)).unwrap(), Decimal::new(-12, 0));
        let err = decode("79228162514264337593543950336").unwrap_err();
        assert!(err.reason().contains("out of the range"), "{err}");
        // rust_decimal's FromSql panics on this one (10^32 as a Decimal).
        assert!(decode("100000000000000000000000000000000").is_err());
        assert!(decode("NaN")
            .unwrap_err()
            .reason()
            .contains("cannot hold NaN"));
        assert!(decode("12a").is_err());
    }

    /// PostgreSQL's binary form of `numeric`, as tokio-postgres receives it.
    fn binary(n: &Numeric) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&(n.digits.len() as u16).to_be_bytes());
        out.extend_from_slice(&(n.weight as i16).to_be_bytes());
        out.extend_from_slice(&(if n.negative { 0x4000u16 } else { 0 }).to_be_bytes());
        out.extend_from_slice(&(n.scale as u16).to_be_bytes());
        for digit in &n.digits {
            out.extend_from_slice(&digit.to_be_bytes());
        }
        out
    }

    /// Whether rust_decimal's `FromSql` may panic: it builds 10^(4 × zeros)
    /// as a `Decimal`, for the zero digits between the last one stored and
    /// the point, and that panics past 10^28 where 10^(4 × zeros) fits an i128.
    fn from_sql_panics(n: &Numeric) -> bool {
        let zeros = n.weight + 1 - n.digits.len() as i32;
        matches!(zeros, 8 | 9)
    }

    proptest! {
        #![proptest_config(ProptestConfig {
            cases: 4096,
            failure_persistence: None,
            ..ProptestConfig::default()
        })]

        /// The digits the text gives, read by rust_decimal's FromSql, are
        /// what the decoder returns (the fidelity tests check the digits
        /// against PostgreSQL's own).
        #[test]
        fn agrees_with_rust_decimal_from_sql(
            negative in any::<bool>(),
            whole in "[0-9]{0,4}0{0,36}|[0-9]{1,40}|7922816251426433759354395033[0-9]",
            fraction in "|\\.[0-9]{1,40}|\\.0{20,36}[0-9]{1,4}|\\.[0-9]{0,8}0{0,32}",
        ) {
            let whole = if whole.is_empty() { "0".to_owned() } else { whole };
            let text = format!("{}{whole}{fraction}", if negative { "-" } else { "" });
            let parsed = Numeric::parse(&text).expect("valid numeric text");
            let decoded = Decimal::decode(&json!(text));
            if from_sql_panics(&parsed) {
                prop_assert!(decoded.is_err(), "{text}: {decoded:?}");
            } else {
                let direct = Decimal::from_sql(&Type::NUMERIC, &binary(&parsed));
                match (direct, decoded) {
                    (Ok(direct), Ok(decoded)) => {
                        prop_assert_eq!(direct.serialize(), decoded.serialize(), "{}", text)
                    }
                    (Err(_), Err(_)) => {}
                    (direct, decoded) => {
                        prop_assert!(false, "{}: FromSql {:?}, decoded {:?}", text, direct, decoded)
                    }
                }
            }
        }
    }
}

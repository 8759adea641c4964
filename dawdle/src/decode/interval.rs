use std::borrow::Cow;
use std::error::Error;
use std::fmt;

use tokio_postgres::types::{accepts, to_sql_checked, FromSql, IsNull, ToSql, Type};

use super::{Decode, ValueError};
use crate::table::SessionSettings;

/// A PostgreSQL `interval`: months, days and microseconds, kept apart as
/// PostgreSQL keeps them (a month is not a fixed number of days).
///
/// It also reads and writes `interval` through tokio-postgres, so a value
/// decoded from an event can be compared with a direct query.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Interval {
    /// Months (and years, as 12 months each).
    pub months: i32,
    /// Days.
    pub days: i32,
    /// Hours, minutes, seconds and fractions, in microseconds.
    pub microseconds: i64,
}

impl Interval {
    /// Parses PostgreSQL's `iso_8601` interval style, e.g. `P1Y2M3DT4H5M6.789S`,
    /// `P-10M-3DT4H`, `PT-0.5S`.
    pub fn parse_iso8601(text: &str) -> Result<Interval, ValueError> {
        let invalid = || ValueError::new(format_args!("invalid ISO 8601 interval {text:?}"));
        let body = text.strip_prefix('P').ok_or_else(invalid)?;
        let (date, time) = body.split_once('T').unwrap_or((body, ""));
        let mut interval = Interval::default();
        for (part, in_time) in [(date, false), (time, true)] {
            let mut rest = part;
            while !rest.is_empty() {
                let unit_at = rest
                    .find(|c: char| c.is_ascii_alphabetic())
                    .ok_or_else(invalid)?;
                let (number, tail) = rest.split_at(unit_at);
                let unit = tail.as_bytes()[0];
                rest = &tail[1..];
                match (in_time, unit) {
                    (false, b'Y' | b'M' | b'W' | b'D') => {
                        let n: i32 = number.parse().map_err(|_| invalid())?;
                        let overflow =
                            || ValueError::new(format_args!("interval {text:?} overflows"));
                        match unit {
                            b'Y' => {
                                interval.months = n
                                    .checked_mul(12)
                                    .and_then(|m| interval.months.checked_add(m))
                                    .ok_or_else(overflow)?
                            }
                            b'M' => {
                                interval.months =
                                    interval.months.checked_add(n).ok_or_else(overflow)?
                            }
                            b'W' => {
                                interval.days = n
                                    .checked_mul(7)
                                    .and_then(|d| interval.days.checked_add(d))
                                    .ok_or_else(overflow)?
                            }
                            _ => {
                                interval.days = interval.days.checked_add(n).ok_or_else(overflow)?
                            }
                        }
                    }
                    (true, b'H' | b'M' | b'S') => {
                        let micros = decimal_micros(number).ok_or_else(invalid)?;
                        let scale = match unit {
                            b'H' => 3_600,
                            b'M' => 60,
                            _ => 1,
                        };
                        interval.microseconds = micros
                            .checked_mul(scale)
                            .and_then(|m| interval.microseconds.checked_add(m))
                            .ok_or_else(invalid)?;
                    }
                    _ => return Err(invalid()),
                }
            }
        }
        Ok(interval)
    }
}

/// `-12.5` → -12_500_000 microseconds; at most 6 fractional digits.
fn decimal_micros(number: &str) -> Option<i64> {
    let (negative, digits) = match number.strip_prefix('-') {
        Some(d) => (true, d),
        None => (false, number),
    };
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    if whole.is_empty()
        || fraction.len() > 6
        || !(whole.bytes().chain(fraction.bytes())).all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let whole: i64 = whole.parse().ok()?;
    let fraction: i64 = if fraction.is_empty() {
        0
    } else {
        fraction.parse::<i64>().ok()? * 10i64.pow(6 - fraction.len() as u32)
    };
    let micros = whole.checked_mul(1_000_000)?.checked_add(fraction)?;
    Some(if negative { -micros } else { micros })
}

impl fmt::Display for Interval {
    /// Writes the `iso_8601` form that [`Interval::parse_iso8601`] reads.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "P{}M{}DT", self.months, self.days)?;
        let sign = if self.microseconds < 0 { "-" } else { "" };
        let abs = self.microseconds.unsigned_abs();
        write!(f, "{sign}{}.{:06}S", abs / 1_000_000, abs % 1_000_000)
    }
}

impl Decode for Interval {
    const SETTINGS: SessionSettings = SessionSettings::INTERVAL_STYLE;

    fn sql_type() -> Cow<'static, str> {
        "interval".into()
    }

    fn decode(value: &serde_json::Value) -> Result<Self, ValueError> {
        let text = value
            .as_str()
            .ok_or_else(|| ValueError::expected("a string"))?;
        // PostgreSQL 17 and later hold infinite intervals as every field at
        // its limit, which is how the `FromSql` below reads them.
        match text {
            "infinity" => Ok(Interval {
                months: i32::MAX,
                days: i32::MAX,
                microseconds: i64::MAX,
            }),
            "-infinity" => Ok(Interval {
                months: i32::MIN,
                days: i32::MIN,
                microseconds: i64::MIN,
            }),
            text => Interval::parse_iso8601(text),
        }
    }
}

impl<'a> FromSql<'a> for Interval {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn Error + Sync + Send>> {
        let raw: [u8; 16] = raw.try_into().map_err(|_| "interval must be 16 bytes")?;
        Ok(Interval {
            microseconds: i64::from_be_bytes(raw[0..8].try_into()?),
            days: i32::from_be_bytes(raw[8..12].try_into()?),
            months: i32::from_be_bytes(raw[12..16].try_into()?),
        })
    }

    accepts!(INTERVAL);
}

impl ToSql for Interval {
    fn to_sql(
        &self,
        _: &Type,
        out: &mut bytes::BytesMut,
    ) -> Result<IsNull, Box<dyn Error + Sync + Send>> {
        out.extend_from_slice(&self.microseconds.to_be_bytes());
        out.extend_from_slice(&self.days.to_be_bytes());
        out.extend_from_slice(&self.months.to_be_bytes());
        Ok(IsNull::No)
    }

    accepts!(INTERVAL);
    to_sql_checked!();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_postgres_iso_8601_style() {
        let i = Interval::parse_iso8601("P-10M-3DT4H5M6.789S").unwrap();
        assert_eq!(
            i,
            Interval {
                months: -10,
                days: -3,
                microseconds: 14_706_789_000
            }
        );
        assert_eq!(
            Interval::parse_iso8601("PT0S").unwrap(),
            Interval::default()
        );
        assert_eq!(
            Interval::parse_iso8601("PT-0.5S").unwrap().microseconds,
            -500_000
        );
        assert_eq!(
            Interval::parse_iso8601("P1Y2W").unwrap(),
            Interval {
                months: 12,
                days: 14,
                microseconds: 0
            }
        );
        assert!(Interval::parse_iso8601("1 day").is_err());
        let i = Interval {
            months: 3,
            days: -2,
            microseconds: -1_500_000,
        };
        assert_eq!(Interval::parse_iso8601(&i.to_string()).unwrap(), i);
    }

    #[test]
    fn reads_infinities_as_their_binary_form() {
        let read = |raw: [u8; 16]| Interval::from_sql(&Type::INTERVAL, &raw).unwrap();
        let mut end = [0xff; 16];
        end[0] = 0x7f;
        end[8] = 0x7f;
        end[12] = 0x7f;
        let mut start = [0; 16];
        start[0] = 0x80;
        start[8] = 0x80;
        start[12] = 0x80;
        let decode = |text: &str| Interval::decode(&serde_json::json!(text)).unwrap();
        assert_eq!(decode("infinity"), read(end));
        assert_eq!(decode("-infinity"), read(start));
    }
}

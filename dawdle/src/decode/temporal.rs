//! Dates and times in PostgreSQL's JSON form (ISO 8601, ` BC` suffix for
//! years before 1, `infinity` for the special values), for chrono and `time`.

use std::borrow::Cow;

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, Utc};

use super::{Decode, ValueError};
use crate::table::{Encoding, SessionSettings};

/// The parts of a date, time or timestamp as PostgreSQL writes them in JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Parts {
    /// Proleptic Gregorian year: 1 BC is 0.
    year: i32,
    month: u32,
    day: u32,
    hour: u32,
    minute: u32,
    second: u32,
    micro: u32,
    /// Offset east of UTC, in seconds.
    offset: Option<i32>,
}

fn text(value: &serde_json::Value) -> Result<&str, ValueError> {
    let text = value
        .as_str()
        .ok_or_else(|| ValueError::expected("a string"))?;
    if text.ends_with("infinity") {
        return Err(ValueError::new(format_args!(
            "{text} has no Rust equivalent; use an `sql` override or a custom type"
        )));
    }
    Ok(text)
}

fn number<T: std::str::FromStr>(s: &str, what: &str) -> Result<T, ValueError> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ValueError::new(format_args!("invalid {what} {s:?}")));
    }
    s.parse()
        .map_err(|_| ValueError::new(format_args!("{what} {s} out of range")))
}

/// `YYYY-MM-DD` with an optional ` BC` after the whole value.
fn date_part(s: &str, bc: bool) -> Result<(i32, u32, u32), ValueError> {
    let mut it = s.rsplitn(3, '-');
    let (day, month, year) = match (it.next(), it.next(), it.next()) {
        (Some(d), Some(m), Some(y)) => (d, m, y),
        _ => return Err(ValueError::new(format_args!("invalid date {s:?}"))),
    };
    let year: i32 = number(year, "year")?;
    let year = if bc { 1 - year } else { year };
    Ok((year, number(month, "month")?, number(day, "day")?))
}

/// `HH:MM:SS[.ffffff]`.
fn time_part(s: &str) -> Result<(u32, u32, u32, u32), ValueError> {
    let (hms, fraction) = s.split_once('.').unwrap_or((s, ""));
    let mut it = hms.splitn(3, ':');
    let (h, m, sec) = match (it.next(), it.next(), it.next()) {
        (Some(h), Some(m), Some(sec)) => (h, m, sec),
        _ => return Err(ValueError::new(format_args!("invalid time {s:?}"))),
    };
    let micro = if fraction.is_empty() {
        0
    } else {
        if fraction.len() > 6 {
            return Err(ValueError::new(format_args!(
                "more than 6 fractional digits in {s:?}"
            )));
        }
        number::<u32>(fraction, "fraction")? * 10u32.pow(6 - fraction.len() as u32)
    };
    Ok((
        number(h, "hour")?,
        number(m, "minute")?,
        number(sec, "second")?,
        micro,
    ))
}

/// `+HH[:MM[:SS]]` or `-...`.
fn offset_part(s: &str) -> Result<i32, ValueError> {
    let (sign, rest) = match s.as_bytes().first() {
        Some(b'+') => (1, &s[1..]),
        Some(b'-') => (-1, &s[1..]),
        _ => return Err(ValueError::new(format_args!("invalid UTC offset {s:?}"))),
    };
    let mut seconds = 0;
    for (i, part) in rest.split(':').enumerate() {
        if i > 2 {
            return Err(ValueError::new(format_args!("invalid UTC offset {s:?}")));
        }
        seconds += number::<i32>(part, "offset")? * [3600, 60, 1][i];
    }
    Ok(sign * seconds)
}

impl Parts {
    fn parse(
        s: &str,
        want_date: bool,
        want_time: bool,
        want_offset: bool,
    ) -> Result<Parts, ValueError> {
        let (s, bc) = match s.strip_suffix(" BC") {
            Some(s) => (s, true),
            None => (s, false),
        };
        let mut parts = Parts {
            year: 1970,
            month: 1,
            day: 1,
            hour: 0,
            minute: 0,
            second: 0,
            micro: 0,
            offset: None,
        };
        let rest = if want_date {
            let (date, rest) = match s.split_once('T') {
                Some((date, rest)) if want_time => (date, rest),
                None if !want_time => (s, ""),
                _ => return Err(ValueError::new(format_args!("invalid value {s:?}"))),
            };
            (parts.year, parts.month, parts.day) = date_part(date, bc)?;
            rest
        } else {
            s
        };
        if want_time {
            let split = if want_offset {
                rest.rfind(['+', '-'])
                    .ok_or_else(|| ValueError::new(format_args!("missing UTC offset in {s:?}")))?
            } else {
                rest.len()
            };
            let (time, offset) = rest.split_at(split);
            (parts.hour, parts.minute, parts.second, parts.micro) = time_part(time)?;
            if want_offset {
                parts.offset = Some(offset_part(offset)?);
            }
        }
        Ok(parts)
    }

    fn out_of_range(&self) -> ValueError {
        ValueError::new("out of the range the Rust type can hold")
    }

    /// PostgreSQL's `time` runs to 24:00:00 inclusive; tokio-postgres adds
    /// its microseconds to midnight, wrapping, and reads midnight.
    fn wrapping_day(mut self) -> Parts {
        if (self.hour, self.minute, self.second, self.micro) == (24, 0, 0, 0) {
            self.hour = 0;
        }
        self
    }

    /// The instant, in microseconds since 1970-01-01 00:00 UTC.
    ///
    /// Computed on its own calendar rather than through the Rust types':
    /// a writer east of UTC writes their last instants with a local date
    /// past the last one they hold, yet tokio-postgres reads those instants.
    fn unix_micros(&self) -> Result<i128, ValueError> {
        let leap = self.year % 4 == 0 && (self.year % 100 != 0 || self.year % 400 == 0);
        let month_days = match self.month {
            1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
            4 | 6 | 9 | 11 => 30,
            2 if leap => 29,
            2 => 28,
            _ => 0,
        };
        if !(1..=month_days).contains(&self.day)
            || self.hour > 23
            || self.minute > 59
            || self.second > 59
        {
            return Err(ValueError::new("not a valid date and time"));
        }
        // Days from 1970-01-01 in the proleptic Gregorian calendar, counted
        // in 400-year eras of 146097 days, each year starting on 1 March.
        let year = i64::from(self.year) - i64::from(self.month <= 2);
        let era = year.div_euclid(400);
        let year_of_era = year - era * 400;
        let march_month = i64::from((self.month + 9) % 12);
        let day_of_year = (153 * march_month + 2) / 5 + i64::from(self.day) - 1;
        let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
        let days = era * 146_097 + day_of_era - 719_468;
        let seconds = days * 86_400
            + i64::from(self.hour) * 3600
            + i64::from(self.minute) * 60
            + i64::from(self.second)
            - i64::from(self.offset.unwrap_or(0));
        Ok(i128::from(seconds) * 1_000_000 + i128::from(self.micro))
    }

    fn chrono_date(&self) -> Result<NaiveDate, ValueError> {
        NaiveDate::from_ymd_opt(self.year, self.month, self.day).ok_or_else(|| self.out_of_range())
    }

    fn chrono_time(&self) -> Result<NaiveTime, ValueError> {
        NaiveTime::from_hms_micro_opt(self.hour, self.minute, self.second, self.micro)
            .ok_or_else(|| self.out_of_range())
    }

    fn chrono_datetime(&self) -> Result<NaiveDateTime, ValueError> {
        Ok(self.chrono_date()?.and_time(self.chrono_time()?))
    }

    fn chrono_instant(&self) -> Result<DateTime<Utc>, ValueError> {
        i64::try_from(self.unix_micros()?)
            .ok()
            .and_then(DateTime::from_timestamp_micros)
            .ok_or_else(|| self.out_of_range())
    }
}

macro_rules! temporal {
    ($($ty:ty => $sql:literal, ($d:expr, $t:expr, $o:expr), |$p:ident| $convert:expr;)*) => {$(
        impl Decode for $ty {
            // `to_json` writes dates and times as ISO 8601 whatever the
            // DateStyle; a timestamptz in the session's offset, read back
            // into UTC.
            const ENCODING: Encoding = if $o { Encoding::Instant } else { Encoding::Json };
            const SETTINGS: SessionSettings = SessionSettings::NONE;

            fn sql_type() -> Cow<'static, str> {
                $sql.into()
            }

            fn decode(value: &serde_json::Value) -> Result<Self, ValueError> {
                let $p = Parts::parse(text(value)?, $d, $t, $o)?;
                $convert
            }
        }
    )*};
}

temporal! {
    NaiveDate => "date", (true, false, false), |p| p.chrono_date();
    NaiveTime => "time", (false, true, false), |p| p.wrapping_day().chrono_time();
    NaiveDateTime => "timestamp", (true, true, false), |p| p.chrono_datetime();
    // As tokio-postgres reads it: the instant, at offset +00:00.
    DateTime<FixedOffset> => "timestamptz", (true, true, true), |p| Ok(p.chrono_instant()?.with_timezone(&FixedOffset::east_opt(0).expect("0 is a valid offset")));
    DateTime<Utc> => "timestamptz", (true, true, true), |p| p.chrono_instant();
}

#[cfg(feature = "time")]
mod time_crate {
    use super::*;

    impl Parts {
        fn time_date(&self) -> Result<time::Date, ValueError> {
            let month = u8::try_from(self.month)
                .ok()
                .and_then(|m| time::Month::try_from(m).ok())
                .ok_or_else(|| self.out_of_range())?;
            time::Date::from_calendar_date(self.year, month, self.day as u8)
                .map_err(ValueError::new)
        }

        fn time_time(&self) -> Result<time::Time, ValueError> {
            time::Time::from_hms_micro(
                self.hour as u8,
                self.minute as u8,
                self.second as u8,
                self.micro,
            )
            .map_err(ValueError::new)
        }

        fn time_primitive(&self) -> Result<time::PrimitiveDateTime, ValueError> {
            Ok(time::PrimitiveDateTime::new(
                self.time_date()?,
                self.time_time()?,
            ))
        }

        fn time_offset(&self) -> Result<time::OffsetDateTime, ValueError> {
            // As tokio-postgres reads it: the instant, at offset UTC.
            time::OffsetDateTime::from_unix_timestamp_nanos(self.unix_micros()? * 1000)
                .map_err(|_| self.out_of_range())
        }
    }

    temporal! {
        time::Date => "date", (true, false, false), |p| p.time_date();
        time::Time => "time", (false, true, false), |p| p.wrapping_day().time_time();
        time::PrimitiveDateTime => "timestamp", (true, true, false), |p| p.time_primitive();
        time::OffsetDateTime => "timestamptz", (true, true, true), |p| p.time_offset();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_postgres_json_forms() {
        let ts = NaiveDateTime::decode(&json!("2020-02-04T10:11:12.123456")).unwrap();
        assert_eq!(ts.to_string(), "2020-02-04 10:11:12.123456");
        let bc = NaiveDate::decode(&json!("0044-03-15 BC")).unwrap();
        assert_eq!(bc, NaiveDate::from_ymd_opt(-43, 3, 15).unwrap());
        let tz = DateTime::<Utc>::decode(&json!("1800-01-01T00:00:00+00:19:32")).unwrap();
        assert_eq!(tz.to_rfc3339(), "1799-12-31T23:40:28+00:00");
        // Written by a session in America/St_Johns: the instant, at +00:00.
        let fixed =
            DateTime::<FixedOffset>::decode(&json!("0001-12-31T20:30:00-03:30 BC")).unwrap();
        assert_eq!(fixed.to_rfc3339(), "0001-01-01T00:00:00+00:00");
        assert_eq!(DateTime::<Utc>::ENCODING, Encoding::Instant);
        assert_eq!(<Vec<DateTime<Utc>>>::ENCODING, Encoding::Json);
        let t = NaiveTime::decode(&json!("23:59:59.5")).unwrap();
        assert_eq!(
            t,
            NaiveTime::from_hms_micro_opt(23, 59, 59, 500_000).unwrap()
        );
    }

    #[test]
    fn reads_what_tokio_postgres_reads() {
        // The end of PostgreSQL's day is tokio-postgres's midnight.
        assert_eq!(
            NaiveTime::decode(&json!("24:00:00")).unwrap(),
            NaiveTime::MIN
        );
        // chrono's last instant, written 14 hours east of UTC.
        let last = DateTime::<Utc>::decode(&json!("262143-01-01T13:59:59.999999+14:00")).unwrap();
        assert_eq!(
            last.timestamp_micros(),
            NaiveDateTime::MAX.and_utc().timestamp_micros()
        );
        let epoch = DateTime::<FixedOffset>::decode(&json!("1969-12-31T19:00:00-05")).unwrap();
        assert_eq!(epoch.timestamp_micros(), 0);
        let bc = DateTime::<Utc>::decode(&json!("4714-11-24T00:00:00+00:00 BC")).unwrap();
        assert_eq!(bc.to_rfc3339(), "-4713-11-24T00:00:00+00:00");
    }

    #[cfg(feature = "time")]
    #[test]
    fn reads_what_tokio_postgres_reads_into_time() {
        assert_eq!(
            time::Time::decode(&json!("24:00:00")).unwrap(),
            time::Time::MIDNIGHT
        );
        let last =
            time::OffsetDateTime::decode(&json!("10000-01-01T08:59:59.999999+09:00")).unwrap();
        assert_eq!(last.offset(), time::UtcOffset::UTC);
        assert_eq!(
            (last.year(), last.hour(), last.microsecond()),
            (9999, 23, 999_999)
        );
        assert!(time::OffsetDateTime::decode(&json!("9999-12-31T23:00:00-01:00")).is_err());
    }

    #[test]
    fn refuses_what_rust_cannot_hold() {
        assert!(NaiveDate::decode(&json!("infinity"))
            .unwrap_err()
            .reason()
            .contains("infinity"));
        assert!(NaiveTime::decode(&json!("24:00:01")).is_err());
        assert!(NaiveDateTime::decode(&json!("2020-02-04T24:00:00")).is_err());
        assert!(DateTime::<Utc>::decode(&json!("262143-01-01T00:00:00-00:00:01")).is_err());
        assert!(DateTime::<Utc>::decode(&json!("2020-02-30T00:00:00+00")).is_err());
        assert!(NaiveDate::decode(&json!("2020-02-30")).is_err());
        assert!(NaiveDateTime::decode(&json!("2020-02-04")).is_err());
    }
}

//! From PostgreSQL's JSON form of a row back to the Rust value.
//!
//! A trigger renders each captured column with [`to_json`] (or its text form,
//! see [`Encoding`]). Where that form depends on a session setting
//! (`bytea_output` for `bytea`, `IntervalStyle` for `interval`), the trigger
//! function fixes the setting (see [`SessionSettings`]), so the JSON of a
//! value does not depend on the writer's session; a `timestamptz` keeps the
//! writer's UTC offset, which does not change the instant. The [`Decode`]
//! implementations here read that form back, so that a decoded row equals
//! what a direct query returns, field for field.
//!
//! # Types
//!
//! Where a direct tokio-postgres query reads a value, its event decodes to
//! the same value; where the direct query fails, the event is refused with a
//! [`DecodeError`] that names the column, the value and the reason, and the
//! listener dead-letters it.
//!
//! | PostgreSQL | Rust | At the edges |
//! |---|---|---|
//! | `smallint`, `integer`, `bigint` | `i16`, `i32`, `i64` | every value |
//! | `real`, `double precision` | `f32`, `f64` | every value, bit for bit: NaN, ±infinity, -0 |
//! | `numeric` | `rust_decimal::Decimal` | exact, scale kept, up to 28 decimal places; past that rounded as rust_decimal's `FromSql` rounds (`0.1234567890123456789012345678901` → `0.1234567890123456789012345679`, `1.00000000000000000000000000000001` → `1.0000000000000000000000000000`); NaN, ±Infinity and values that do not round to within ±`Decimal::MAX` are errors |
//! | `boolean` | `bool` | |
//! | `text`, `varchar`, `char(n)` | `String` | `char(n)` with its padding |
//! | `bytea` | `Vec<u8>` | |
//! | `uuid` | `uuid::Uuid` | |
//! | `date` | `chrono::NaiveDate`, `time::Date` | ±infinity and dates past the Rust type's range (chrono: 262142-12-31; `time`: 9999-12-31) are errors |
//! | `time` | `chrono::NaiveTime`, `time::Time` | `24:00:00` is `00:00:00` |
//! | `timestamp` | `chrono::NaiveDateTime`, `time::PrimitiveDateTime` | ±infinity and timestamps past the Rust type's range are errors |
//! | `timestamptz` | `chrono::DateTime<Utc>`, `chrono::DateTime<FixedOffset>`, `time::OffsetDateTime` | the instant, at offset +00:00, whatever the writer's time zone; ±infinity and instants past the Rust type's range are errors |
//! | `interval` | [`Interval`] | every value; PostgreSQL 17's ±infinity as every field at its limit |
//! | `json`, `jsonb` | `serde_json::Value`, `serde_json::Map`, `HashMap<String, V>`, `BTreeMap<String, V>` | |
//! | arrays | `Vec<T>`, `Vec<Option<T>>` for NULL elements | any lower bound; nested `Vec`s for more dimensions |
//! | nullable columns | `Option<T>` | |
//!
//! The `time` types need the `time` feature. Enums and typed json decode
//! through serde with `#[dawdle(serde)]`; other types through an `sql`
//! override or an implementation of [`Decode`].
//!
//! [`to_json`]: https://www.postgresql.org/docs/current/functions-json.html

mod error;
mod impls;
mod interval;
mod numeric;
mod row;
mod temporal;

use std::borrow::Cow;

pub(crate) use error::shorten;
pub use error::{DecodeError, ValueError};
pub use interval::Interval;
pub use row::Row;

use crate::table::{Encoding, SessionSettings};
use serde_json::Value;

/// A Rust type that a captured column decodes into.
///
/// dawdle implements it for the types listed in the [module docs](crate::decode#types);
/// implement it for your own types, or decode them with their `serde`
/// implementation through `#[dawdle(serde)]`.
///
/// ```
/// use dawdle::decode::{Decode, ValueError};
/// use dawdle::SessionSettings;
/// use serde_json::Value;
///
/// /// A PostgreSQL `point`, captured as its JSON form `"(x,y)"`.
/// struct Point { x: f64, y: f64 }
///
/// impl Decode for Point {
///     // point_out writes its coordinates as float8out does.
///     const SETTINGS: SessionSettings = SessionSettings::EXTRA_FLOAT_DIGITS;
///
///     fn sql_type() -> std::borrow::Cow<'static, str> { "point".into() }
///
///     fn decode(value: &Value) -> Result<Self, ValueError> {
///         let text = value.as_str().ok_or_else(|| ValueError::expected("a string"))?;
///         let inner = text.trim_start_matches('(').trim_end_matches(')');
///         let (x, y) = inner.split_once(',').ok_or_else(|| ValueError::new("expected (x,y)"))?;
///         let parse = |s: &str| s.parse().map_err(ValueError::new);
///         Ok(Point { x: parse(x)?, y: parse(y)? })
///     }
/// }
/// ```
pub trait Decode: Sized {
    /// How the trigger renders a column of this type into JSON.
    const ENCODING: Encoding = Encoding::Json;

    /// The session settings that change this type's JSON (as rendered with
    /// [`ENCODING`](Self::ENCODING)); the trigger fixes them. All of them
    /// unless an implementation says otherwise: declare
    /// only those the type's PostgreSQL output reads (`DateStyle` and
    /// `TimeZone` for dates and times as text, `IntervalStyle` for intervals,
    /// `bytea_output` for bytes, `extra_float_digits` for floats), or
    /// [`SessionSettings::NONE`], and writers skip the cost of fixing the
    /// others on every row.
    const SETTINGS: SessionSettings = SessionSettings::ALL;

    /// The PostgreSQL type this Rust type stands for, for error messages.
    fn sql_type() -> Cow<'static, str>;

    /// Decodes one non-NULL column value. `Option<T>` handles NULL.
    fn decode(value: &Value) -> Result<Self, ValueError>;

    /// Decodes a NULL. Only `Option` accepts it.
    #[doc(hidden)]
    fn decode_null() -> Result<Self, ValueError> {
        Err(ValueError::new(
            "unexpected NULL; use Option<_> for a nullable column",
        ))
    }

    /// Not public API: how the trigger renders `Option<Self>`. A type whose
    /// JSON form can itself be `null` (json) needs another form there, or an
    /// SQL NULL and a JSON null would arrive alike.
    #[doc(hidden)]
    const OPTION_ENCODING: Encoding = Self::ENCODING;

    /// Not public API: decodes the non-NULL value of an `Option<Self>`,
    /// rendered with `OPTION_ENCODING`.
    #[doc(hidden)]
    fn decode_some(value: &Value) -> Result<Self, ValueError> {
        Self::decode(value)
    }

    /// Not public API: lets `Vec<u8>` mean `bytea` while other `Vec<T>` mean arrays.
    #[doc(hidden)]
    const VEC_ENCODING: Encoding = Self::ENCODING.array_of();

    /// Not public API: the settings of `Vec<Self>`, rendered with `VEC_ENCODING`.
    #[doc(hidden)]
    const VEC_SETTINGS: SessionSettings = Self::SETTINGS;

    /// Not public API: see `VEC_ENCODING`.
    #[doc(hidden)]
    fn vec_sql_type() -> Cow<'static, str> {
        format!("{}[]", Self::sql_type()).into()
    }

    /// Not public API: see `VEC_ENCODING`.
    #[doc(hidden)]
    fn decode_vec(value: &Value) -> Result<Vec<Self>, ValueError> {
        let items = value
            .as_array()
            .ok_or_else(|| ValueError::expected("an array"))?;
        items
            .iter()
            .enumerate()
            .map(|(i, item)| decode_value::<Self>(item).map_err(|e| e.at_index(i)))
            .collect()
    }
}

/// Decodes a value that may be JSON `null` (SQL NULL).
pub fn decode_value<T: Decode>(value: &Value) -> Result<T, ValueError> {
    match value {
        Value::Null => T::decode_null(),
        value => T::decode(value),
    }
}

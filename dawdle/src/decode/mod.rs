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
//! [`to_json`]: https://www.postgresql.org/docs/current/functions-json.html

mod error;
mod impls;
mod interval;
mod row;
mod temporal;

use std::borrow::Cow;

pub use error::{DecodeError, ValueError};
pub use interval::Interval;
pub use row::Row;

use crate::table::{Encoding, SessionSettings};
use serde_json::Value;

/// A Rust type that a captured column decodes into.
///
/// dawdle implements it for the types listed in the [crate docs](crate#types);
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

//! `Decode` for scalars, text, bytes, uuid, json, `Option` and arrays.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::str::FromStr;

use serde_json::{Map, Value};
use uuid::Uuid;

use super::{decode_value, Decode, ValueError};
use crate::table::{Encoding, SessionSettings};

fn as_str(value: &Value) -> Result<&str, ValueError> {
    value
        .as_str()
        .ok_or_else(|| ValueError::expected("a string"))
}

impl<T: Decode> Decode for Option<T> {
    const ENCODING: Encoding = T::OPTION_ENCODING;
    const SETTINGS: SessionSettings = T::SETTINGS;
    const VEC_SETTINGS: SessionSettings = T::VEC_SETTINGS;

    fn sql_type() -> Cow<'static, str> {
        T::sql_type()
    }

    fn decode(value: &Value) -> Result<Self, ValueError> {
        T::decode_some(value).map(Some)
    }

    fn decode_null() -> Result<Self, ValueError> {
        Ok(None)
    }
}

impl<T: Decode> Decode for Vec<T> {
    const ENCODING: Encoding = T::VEC_ENCODING;
    const SETTINGS: SessionSettings = T::VEC_SETTINGS;

    fn sql_type() -> Cow<'static, str> {
        T::vec_sql_type()
    }

    fn decode(value: &Value) -> Result<Self, ValueError> {
        T::decode_vec(value)
    }
}

impl Decode for bool {
    const SETTINGS: SessionSettings = SessionSettings::NONE;

    fn sql_type() -> Cow<'static, str> {
        "boolean".into()
    }

    fn decode(value: &Value) -> Result<Self, ValueError> {
        value
            .as_bool()
            .ok_or_else(|| ValueError::expected("true or false"))
    }
}

macro_rules! integer {
    ($($ty:ty => $sql:literal),* $(,)?) => {$(
        impl Decode for $ty {
            const SETTINGS: SessionSettings = SessionSettings::NONE;

            fn sql_type() -> Cow<'static, str> {
                $sql.into()
            }

            fn decode(value: &Value) -> Result<Self, ValueError> {
                let n = value.as_i64().ok_or_else(|| ValueError::expected("an integer"))?;
                <$ty>::try_from(n).map_err(|_| {
                    ValueError::new(format_args!("{n} is out of range for {}", stringify!($ty)))
                })
            }
        }
    )*};
}

integer!(i16 => "smallint", i32 => "integer", i64 => "bigint");

/// Floats travel as text: PostgreSQL's JSON numbers drop the sign of `-0`.
/// The [`Encoding::Float`] form needs no setting fixed; arrays of floats are
/// plain text arrays, and need `extra_float_digits`.
macro_rules! float {
    ($($ty:ty => $sql:literal),* $(,)?) => {$(
        impl Decode for $ty {
            const ENCODING: Encoding = Encoding::Float;
            const SETTINGS: SessionSettings = SessionSettings::NONE;
            const VEC_SETTINGS: SessionSettings = SessionSettings::EXTRA_FLOAT_DIGITS;

            fn sql_type() -> Cow<'static, str> {
                $sql.into()
            }

            fn decode(value: &Value) -> Result<Self, ValueError> {
                match value {
                    Value::String(text) => match text.as_str() {
                        "NaN" => Ok(<$ty>::NAN),
                        "Infinity" => Ok(<$ty>::INFINITY),
                        "-Infinity" => Ok(<$ty>::NEG_INFINITY),
                        text => text.parse().map_err(ValueError::new),
                    },
                    // An `sql` override may produce a plain JSON number.
                    Value::Number(n) => n
                        .as_f64()
                        .map(|f| f as $ty)
                        .ok_or_else(|| ValueError::expected("a number")),
                    _ => Err(ValueError::expected("a number as a string")),
                }
            }
        }
    )*};
}

float!(f32 => "real", f64 => "double precision");

impl Decode for String {
    const SETTINGS: SessionSettings = SessionSettings::NONE;

    fn sql_type() -> Cow<'static, str> {
        "text".into()
    }

    fn decode(value: &Value) -> Result<Self, ValueError> {
        as_str(value).map(str::to_owned)
    }
}

/// `u8` exists only so that `Vec<u8>` decodes a `bytea`.
impl Decode for u8 {
    const SETTINGS: SessionSettings = SessionSettings::NONE;

    fn sql_type() -> Cow<'static, str> {
        "bytea element".into()
    }

    fn decode(_: &Value) -> Result<Self, ValueError> {
        Err(ValueError::new(
            "PostgreSQL has no single-byte integer; use Vec<u8> for bytea or i16 for smallint",
        ))
    }

    const VEC_ENCODING: Encoding = Encoding::Json;
    const VEC_SETTINGS: SessionSettings = SessionSettings::BYTEA_OUTPUT;

    fn vec_sql_type() -> Cow<'static, str> {
        "bytea".into()
    }

    fn decode_vec(value: &Value) -> Result<Vec<Self>, ValueError> {
        let text = as_str(value)?;
        let hex = text
            .strip_prefix("\\x")
            .ok_or_else(|| ValueError::new("expected bytea in hex form (\\x...)"))?;
        decode_hex(hex)
    }
}

fn decode_hex(hex: &str) -> Result<Vec<u8>, ValueError> {
    fn nibble(b: u8) -> Result<u8, ValueError> {
        match b {
            b'0'..=b'9' => Ok(b - b'0'),
            b'a'..=b'f' => Ok(b - b'a' + 10),
            b'A'..=b'F' => Ok(b - b'A' + 10),
            _ => Err(ValueError::new(format_args!(
                "invalid hex digit {:?}",
                b as char
            ))),
        }
    }
    let bytes = hex.as_bytes();
    if !bytes.len().is_multiple_of(2) {
        return Err(ValueError::new("odd number of hex digits"));
    }
    bytes
        .chunks_exact(2)
        .map(|pair| Ok(nibble(pair[0])? << 4 | nibble(pair[1])?))
        .collect()
}

impl Decode for Uuid {
    const SETTINGS: SessionSettings = SessionSettings::NONE;

    fn sql_type() -> Cow<'static, str> {
        "uuid".into()
    }

    fn decode(value: &Value) -> Result<Self, ValueError> {
        Uuid::from_str(as_str(value)?).map_err(ValueError::new)
    }
}

/// `json` and `jsonb`: object keys stay strings, whatever they look like.
impl Decode for Value {
    const SETTINGS: SessionSettings = SessionSettings::NONE;

    fn sql_type() -> Cow<'static, str> {
        "jsonb".into()
    }

    fn decode(value: &Value) -> Result<Self, ValueError> {
        Ok(value.clone())
    }

    // In the event, the JSON `null` that a json column holds and an SQL NULL
    // look alike. A `Value` field reads both as `Value::Null`, which is what
    // tokio-postgres reads for the former (and the only one a NOT NULL column
    // holds); an `Option<Value>` field gets its values as text instead, so
    // that `Some(Value::Null)` and `None` stay apart.
    fn decode_null() -> Result<Self, ValueError> {
        Ok(Value::Null)
    }

    const OPTION_ENCODING: Encoding = Encoding::Text;

    fn decode_some(value: &Value) -> Result<Self, ValueError> {
        let text = as_str(value).map_err(|_| ValueError::expected("json as a string"))?;
        serde_json::from_str(text).map_err(ValueError::new)
    }
}

impl Decode for Map<String, Value> {
    const SETTINGS: SessionSettings = SessionSettings::NONE;

    fn sql_type() -> Cow<'static, str> {
        "jsonb object".into()
    }

    fn decode(value: &Value) -> Result<Self, ValueError> {
        value
            .as_object()
            .cloned()
            .ok_or_else(|| ValueError::expected("a JSON object"))
    }
}

macro_rules! map {
    ($($map:ident),*) => {$(
        impl<V: Decode> Decode for $map<String, V> {
            const SETTINGS: SessionSettings = SessionSettings::NONE;

            fn sql_type() -> Cow<'static, str> {
                "jsonb object".into()
            }

            fn decode(value: &Value) -> Result<Self, ValueError> {
                let object = value
                    .as_object()
                    .ok_or_else(|| ValueError::expected("a JSON object"))?;
                object
                    .iter()
                    .map(|(k, v)| {
                        let v = decode_value::<V>(v)
                            .map_err(|e| ValueError::new(format_args!("at key {k:?}: {e}")))?;
                        Ok((k.clone(), v))
                    })
                    .collect()
            }
        }
    )*};
}

map!(HashMap, BTreeMap);

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn floats_keep_their_sign_and_specials() {
        assert!(f64::decode(&json!("-0")).unwrap().is_sign_negative());
        assert!(f64::decode(&json!("NaN")).unwrap().is_nan());
        assert_eq!(f32::decode(&json!("-Infinity")).unwrap(), f32::NEG_INFINITY);
        assert_eq!(f64::decode(&json!("1e+300")).unwrap(), 1e300);
    }

    #[test]
    fn floats_read_both_text_forms() {
        // to_char's 17 significant digits, written where the session would round.
        assert_eq!(f64::decode(&json!("1.0000000000000001e-01")).unwrap(), 0.1);
        assert_eq!(
            f32::decode(&json!("1.0000000149011612e-01")).unwrap(),
            0.1f32
        );
        assert_eq!(
            f64::decode(&json!("4.9406564584124654e-324")).unwrap(),
            5e-324
        );
    }

    #[test]
    fn settings_are_only_those_the_output_reads() {
        assert_eq!(<Option<i64>>::SETTINGS, SessionSettings::NONE);
        assert_eq!(<Option<f64>>::SETTINGS, SessionSettings::NONE);
        assert_eq!(
            <Vec<Option<f64>>>::SETTINGS,
            SessionSettings::EXTRA_FLOAT_DIGITS
        );
        assert_eq!(
            <Vec<Vec<f32>>>::SETTINGS,
            SessionSettings::EXTRA_FLOAT_DIGITS
        );
        assert_eq!(<Option<Vec<u8>>>::SETTINGS, SessionSettings::BYTEA_OUTPUT);
        assert_eq!(
            <Vec<Option<Vec<u8>>>>::SETTINGS,
            SessionSettings::BYTEA_OUTPUT
        );
        assert_eq!(<Vec<Option<Value>>>::SETTINGS, SessionSettings::NONE);
        assert_eq!(<HashMap<String, f64>>::SETTINGS, SessionSettings::NONE);
    }

    #[test]
    fn bytea_is_hex() {
        assert_eq!(
            Vec::<u8>::decode(&json!("\\x00ff10")).unwrap(),
            vec![0, 255, 16]
        );
        assert_eq!(Vec::<u8>::decode(&json!("\\x")).unwrap(), Vec::<u8>::new());
        assert!(Vec::<u8>::decode(&json!("\\x0")).is_err());
    }

    #[test]
    fn arrays_report_the_failing_element() {
        let err = Vec::<Vec<i32>>::decode(&json!([[1], [2, "x"]])).unwrap_err();
        assert_eq!(err.to_string(), "at element [1][1]: expected an integer");
        assert_eq!(
            Vec::<Option<i16>>::decode(&json!([1, null])).unwrap(),
            vec![Some(1), None]
        );
        assert_eq!(<Vec<Vec<f64>>>::ENCODING, Encoding::TextArray);
        assert_eq!(<Option<Vec<u8>>>::ENCODING, Encoding::Json);
        assert_eq!(<Option<f64>>::ENCODING, Encoding::Float);
        assert_eq!(<Vec<Option<i64>>>::sql_type(), "bigint[]");
    }

    #[test]
    fn json_null_and_sql_null_stay_apart() {
        assert_eq!(Value::ENCODING, Encoding::Json);
        assert_eq!(<Option<Value>>::ENCODING, Encoding::Text);
        assert_eq!(<Vec<Option<Value>>>::ENCODING, Encoding::TextArray);
        assert_eq!(decode_value::<Value>(&json!(null)).unwrap(), Value::Null);
        assert_eq!(decode_value::<Option<Value>>(&json!(null)).unwrap(), None);
        assert_eq!(
            decode_value::<Option<Value>>(&json!("null")).unwrap(),
            Some(Value::Null)
        );
        assert_eq!(
            Vec::<Option<Value>>::decode(&json!(["{\"a\": 1}", null])).unwrap(),
            vec![Some(json!({"a": 1})), None]
        );
    }
}

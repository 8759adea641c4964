//! A column's JSON, built in Rust from the text `pgoutput` sends: exactly
//! the text the triggers' readers build with `to_json` (PostgreSQL's
//! `json_categorize_type` and `datum_to_json`), byte for byte.
//!
//! The walsender writes every value with its type's output function, in a
//! session whose settings are the readers' (`SessionSettings::EACH`):
//! `TimeZone` UTC, `DateStyle` ISO, `IntervalStyle` iso_8601, `bytea_output`
//! hex, `extra_float_digits` 1. From that text and the type's catalog entry
//! ([`TypeCatalog`]) the encoder writes:
//!
//! - [`Encoding::Json`]: `to_json(value)`. Domains are their base type;
//!   `bool` is `true`/`false`; the number types are their text when it is a
//!   JSON number, else a JSON string (`"NaN"`); `date`, `timestamp` and
//!   `timestamptz` are XSD strings (`T` between date and time, `+00:00`);
//!   `json` and `jsonb` are their text; arrays are JSON arrays (any depth,
//!   bounds dropped) and composites JSON objects of their attributes, each
//!   element by its own type; any other type is the JSON string of its text.
//!   A non-built-in type with its own cast to json (hstore) is refused, by
//!   [`TypeCatalog::check`]: the cast cannot be run here.
//! - [`Encoding::Text`] and [`Encoding::Float`]: `to_json(value::text)`.
//!   That is the output text, except for the built-in casts to `text` that
//!   are functions: `bool` (`true`), `character` (trailing blanks dropped),
//!   `inet` and `cidr` (always with the mask length).
//! - [`Encoding::TextArray`]: `to_json(value::text[])`, the elements cast
//!   to text as above.
//! - [`Encoding::Instant`]: `to_json(timestamptz)`; in the row key
//!   ([`TypeCatalog::encode_key`]) `to_json(value AT TIME ZONE 'UTC')`.
//!
//! Each value is read once and appended to the output; a quoted element of
//! an array or a record is copied aside only when it holds an escape.

use std::collections::{HashMap, HashSet};

use crate::table::Encoding;

/// The first oid of an object not built into PostgreSQL: `to_json` looks
/// for a type's own cast to json only from here on.
const FIRST_NORMAL_OID: u32 = 16384;

/// Built-in type oids (`pg_type.dat`) the encoder treats apart.
mod oid {
    pub const BOOL: u32 = 16;
    pub const CHAR: u32 = 18;
    pub const NAME: u32 = 19;
    pub const INT8: u32 = 20;
    pub const INT2: u32 = 21;
    pub const INT4: u32 = 23;
    pub const TEXT: u32 = 25;
    pub const JSON: u32 = 114;
    pub const PG_NODE_TREE: u32 = 194;
    pub const CIDR: u32 = 650;
    pub const FLOAT4: u32 = 700;
    pub const FLOAT8: u32 = 701;
    pub const INET: u32 = 869;
    pub const BPCHAR: u32 = 1042;
    pub const VARCHAR: u32 = 1043;
    pub const DATE: u32 = 1082;
    pub const TIMESTAMP: u32 = 1114;
    pub const TIMESTAMPTZ: u32 = 1184;
    pub const NUMERIC: u32 = 1700;
    pub const JSONB: u32 = 3802;
}

/// How deep domains over domains, arrays of composites of arrays... may
/// nest before the catalog is taken to be circular.
const MAX_DEPTH: usize = 64;

/// What the encoder knows of each type it met: loaded from `pg_type`,
/// `pg_attribute` and `pg_cast` by [`load`](Self::load).
#[derive(Debug, Default, Clone)]
pub struct TypeCatalog {
    types: HashMap<u32, TypeInfo>,
}

#[derive(Debug, Clone)]
struct TypeInfo {
    /// `format_type(oid, NULL)`, for messages.
    name: String,
    kind: Kind,
    /// `typdelim`: what separates this type's values in an array literal.
    delimiter: u8,
    /// What `value::text` does for a value of this type.
    to_text: ToText,
}

/// The type's `to_json` category, domains apart.
#[derive(Debug, Clone)]
enum Kind {
    Domain {
        base: u32,
    },
    Bool,
    Number,
    Date,
    Timestamp,
    Timestamptz,
    Json,
    Array {
        element: u32,
    },
    Composite {
        attributes: Vec<Attribute>,
    },
    /// A type with its own cast to json, a function.
    Cast {
        function: String,
    },
    /// Written as the JSON string of its text.
    Other,
    /// Neither to_json nor a literal of it can be read (`record`, pseudo-types).
    Unsupported {
        why: &'static str,
    },
}

#[derive(Debug, Clone)]
struct Attribute {
    /// The attribute's name as a JSON string, and the `:` after it.
    key: String,
    type_oid: u32,
}

/// `value::text`: the output text, or one of the built-in cast functions.
#[derive(Debug, Clone)]
enum ToText {
    Output,
    /// `text(boolean)`: `true`, `false`.
    Bool,
    /// `text(character)`: without trailing blanks.
    Bpchar,
    /// `text(inet)`: always with the mask length.
    Inet,
    /// A cast the encoder cannot reproduce, and why.
    Refused(String),
}

/// A value the encoder could not read: its type and what was wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("cannot encode a value of type {type_name} as JSON: {problem}")]
pub struct EncodeError {
    type_name: String,
    problem: String,
}

impl EncodeError {
    fn new(type_name: &str, problem: impl Into<String>) -> EncodeError {
        EncodeError {
            type_name: type_name.to_owned(),
            problem: problem.into(),
        }
    }

    fn malformed(info: &TypeInfo, what: &str, at: usize) -> EncodeError {
        EncodeError::new(&info.name, format!("malformed {what} literal at byte {at}"))
    }

    /// The type, as `format_type` spells it (or its oid when unknown).
    pub fn type_name(&self) -> &str {
        &self.type_name
    }

    /// What was wrong with the value.
    pub fn problem(&self) -> &str {
        &self.problem
    }
}

const LOAD: &str = "\
SELECT t.oid, format_type(t.oid, NULL), t.typtype::text, t.typbasetype, t.typelem, t.typlen, \
       t.typdelim::text, \
       (SELECT c.castmethod::text || ' ' || c.castfunc::regprocedure::text FROM pg_catalog.pg_cast c \
         WHERE c.castsource = t.oid AND c.casttarget = 'pg_catalog.json'::pg_catalog.regtype), \
       (SELECT c.castmethod::text || ' ' || c.castfunc::regprocedure::text FROM pg_catalog.pg_cast c \
         WHERE c.castsource = t.oid AND c.casttarget = 'pg_catalog.text'::pg_catalog.regtype), \
       ARRAY(SELECT a.attname::text FROM pg_catalog.pg_attribute a \
              WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum), \
       ARRAY(SELECT a.atttypid FROM pg_catalog.pg_attribute a \
              WHERE a.attrelid = t.typrelid AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum) \
FROM pg_catalog.pg_type t WHERE t.oid = ANY($1::pg_catalog.oid[])";

impl TypeCatalog {
    /// An empty catalog.
    pub fn new() -> Self {
        TypeCatalog::default()
    }

    /// Loads these type oids and everything they refer to (array element
    /// types, the attributes of composites, the base types of domains),
    /// skipping those already known. An oid `pg_type` does not hold stays
    /// unknown, which [`check`](Self::check) reports.
    pub async fn load(
        &mut self,
        client: &tokio_postgres::Client,
        oids: &[u32],
    ) -> Result<(), tokio_postgres::Error> {
        let mut asked: HashSet<u32> = HashSet::new();
        let mut pending: Vec<u32> = Vec::new();
        for &oid in oids {
            if !self.types.contains_key(&oid) && asked.insert(oid) {
                pending.push(oid);
            }
        }
        while !pending.is_empty() {
            let rows = client.query(LOAD, &[&pending]).await?;
            pending.clear();
            for row in rows {
                let oid: u32 = row.get(0);
                let info = type_info(&row)?;
                let mut refer = |oid: u32| {
                    if oid != 0 && !self.types.contains_key(&oid) && asked.insert(oid) {
                        pending.push(oid);
                    }
                };
                match &info.kind {
                    Kind::Domain { base } => refer(*base),
                    Kind::Array { element } => refer(*element),
                    Kind::Composite { attributes } => {
                        attributes.iter().for_each(|a| refer(a.type_oid))
                    }
                    _ => {}
                }
                self.types.insert(oid, info);
            }
        }
        Ok(())
    }

    /// `Err(reason)` when a value of this type cannot be encoded with this
    /// encoding: an unknown oid, a type with its own cast to json (hstore)
    /// for [`Encoding::Json`], a cast to text other than the output
    /// function for [`Encoding::Text`], a non-array for
    /// [`Encoding::TextArray`], a non-`timestamptz` for [`Encoding::Instant`].
    pub fn check(&self, oid: u32, encoding: Encoding) -> Result<(), String> {
        match encoding {
            Encoding::Json => self.check_json(oid, 0),
            Encoding::Text | Encoding::Float => self.check_text(oid),
            Encoding::TextArray => {
                let (_, info) = self.base(oid).map_err(|e| e.problem)?;
                match info.kind {
                    Kind::Array { element } => self.check_text(element),
                    _ => Err(format!(
                        "type {} is not an array, which `{encoding:?}` needs",
                        info.name
                    )),
                }
            }
            Encoding::Instant => self.check_instant(oid),
        }
    }

    /// As [`check`](Self::check), for the column in the row key
    /// ([`encode_key`](Self::encode_key)).
    pub fn check_key(&self, oid: u32, encoding: Encoding) -> Result<(), String> {
        match encoding {
            Encoding::Instant => self.check_instant(oid),
            _ => self.check_json(oid, 0),
        }
    }

    /// Appends the value's JSON, by `encoding`, to `out`. On an error `out`
    /// may hold part of the value.
    pub fn encode(
        &self,
        oid: u32,
        encoding: Encoding,
        text: &str,
        out: &mut String,
    ) -> Result<(), EncodeError> {
        match encoding {
            Encoding::Json => self.json(oid, text, out, 0),
            Encoding::Instant => {
                let (_, info) = self.base(oid)?;
                match info.kind {
                    Kind::Timestamptz => timestamptz(info, text, out, false),
                    _ => Err(EncodeError::new(&info.name, "not a timestamptz")),
                }
            }
            Encoding::Text | Encoding::Float => {
                let (_, info) = self.base(oid)?;
                as_text(info, text, out)
            }
            Encoding::TextArray => {
                let (_, info) = self.base(oid)?;
                let Kind::Array { element } = info.kind else {
                    return Err(EncodeError::new(&info.name, "not an array"));
                };
                let (_, element_base) = self.base(element)?;
                let delimiter = self.info(element)?.delimiter;
                array(info, delimiter, text, out, &mut |item, out| match item {
                    None => {
                        out.push_str("null");
                        Ok(())
                    }
                    Some(item) => as_text(element_base, item, out),
                })
            }
        }
    }

    /// Appends the value's JSON as the row key has it, to `out`: the
    /// readers build the key with `json_build_array(column, ...)`, so this
    /// is `to_json(value)` whatever the encoding, except that an
    /// [`Encoding::Instant`] is `to_json(value AT TIME ZONE 'UTC')`, a
    /// timestamp without offset.
    pub fn encode_key(
        &self,
        oid: u32,
        encoding: Encoding,
        text: &str,
        out: &mut String,
    ) -> Result<(), EncodeError> {
        match encoding {
            Encoding::Instant => {
                let (_, info) = self.base(oid)?;
                match info.kind {
                    Kind::Timestamptz => timestamptz(info, text, out, true),
                    _ => Err(EncodeError::new(&info.name, "not a timestamptz")),
                }
            }
            _ => self.json(oid, text, out, 0),
        }
    }

    fn info(&self, oid: u32) -> Result<&TypeInfo, EncodeError> {
        self.types
            .get(&oid)
            .ok_or_else(|| EncodeError::new(&format!("oid {oid}"), "unknown type (not loaded)"))
    }

    /// The type, through any domains.
    fn base(&self, mut oid: u32) -> Result<(u32, &TypeInfo), EncodeError> {
        for _ in 0..MAX_DEPTH {
            let info = self.info(oid)?;
            match info.kind {
                Kind::Domain { base } => oid = base,
                _ => return Ok((oid, info)),
            }
        }
        Err(EncodeError::new(
            &self.info(oid)?.name,
            "domains nested too deep",
        ))
    }

    fn check_json(&self, oid: u32, depth: usize) -> Result<(), String> {
        if depth > MAX_DEPTH {
            return Err(format!("type oid {oid} nests too deep"));
        }
        let (_, info) = self.base(oid).map_err(|e| e.to_string())?;
        match &info.kind {
            Kind::Cast { function } => Err(format!(
                "type {} has its own cast to json ({function}), which to_json applies and \
                 the WAL reader cannot",
                info.name
            )),
            Kind::Unsupported { why } => Err(format!("type {} is {why}", info.name)),
            Kind::Array { element } => self.check_json(*element, depth + 1),
            Kind::Composite { attributes } => attributes
                .iter()
                .try_for_each(|a| self.check_json(a.type_oid, depth + 1)),
            _ => Ok(()),
        }
    }

    fn check_text(&self, oid: u32) -> Result<(), String> {
        let (_, info) = self.base(oid).map_err(|e| e.to_string())?;
        match &info.to_text {
            ToText::Refused(why) => Err(why.clone()),
            _ => Ok(()),
        }
    }

    fn check_instant(&self, oid: u32) -> Result<(), String> {
        let (_, info) = self.base(oid).map_err(|e| e.to_string())?;
        match info.kind {
            Kind::Timestamptz => Ok(()),
            _ => Err(format!(
                "type {} is not a timestamptz, which `Instant` needs",
                info.name
            )),
        }
    }

    /// `to_json(value)`.
    fn json(
        &self,
        oid: u32,
        text: &str,
        out: &mut String,
        depth: usize,
    ) -> Result<(), EncodeError> {
        let (_, info) = self.base(oid)?;
        if depth > MAX_DEPTH {
            return Err(EncodeError::new(&info.name, "nested too deep"));
        }
        match &info.kind {
            Kind::Bool => match text {
                "t" => out.push_str("true"),
                "f" => out.push_str("false"),
                _ => return Err(EncodeError::new(&info.name, "not t or f")),
            },
            Kind::Number => {
                if is_json_number(text) {
                    out.push_str(text);
                } else {
                    string(out, text);
                }
            }
            Kind::Date => string(out, text),
            Kind::Timestamp => timestamp(info, text, out)?,
            Kind::Timestamptz => timestamptz(info, text, out, false)?,
            Kind::Json => out.push_str(text),
            Kind::Other => string(out, text),
            Kind::Array { element } => {
                let element = *element;
                let delimiter = self.info(element)?.delimiter;
                array(info, delimiter, text, out, &mut |item, out| match item {
                    None => {
                        out.push_str("null");
                        Ok(())
                    }
                    Some(item) => self.json(element, item, out, depth + 1),
                })?
            }
            Kind::Composite { attributes } => record(
                info,
                attributes,
                text,
                out,
                &mut |attribute, item, out| match item {
                    None => {
                        out.push_str("null");
                        Ok(())
                    }
                    Some(item) => self.json(attribute.type_oid, item, out, depth + 1),
                },
            )?,
            Kind::Cast { function } => {
                return Err(EncodeError::new(
                    &info.name,
                    format!("its own cast to json ({function}) cannot be applied here"),
                ))
            }
            Kind::Unsupported { why } => return Err(EncodeError::new(&info.name, *why)),
            Kind::Domain { .. } => unreachable!("base() looks through domains"),
        }
        Ok(())
    }
}

/// The catalog entry of one row of [`LOAD`].
fn type_info(row: &tokio_postgres::Row) -> Result<TypeInfo, tokio_postgres::Error> {
    let oid: u32 = row.try_get(0)?;
    let name: String = row.try_get(1)?;
    let typtype: String = row.try_get(2)?;
    let base: u32 = row.try_get(3)?;
    let element: u32 = row.try_get(4)?;
    let length: i16 = row.try_get(5)?;
    let delimiter: String = row.try_get(6)?;
    let json_cast: Option<String> = row.try_get(7)?;
    let text_cast: Option<String> = row.try_get(8)?;
    let names: Vec<String> = row.try_get(9)?;
    let types: Vec<u32> = row.try_get(10)?;

    // As json_categorize_type: domains, then the built-in categories,
    // arrays (`IsTrueArrayType`), composites, and a non-built-in type's
    // own cast to json.
    let kind = match oid {
        _ if typtype == "d" => Kind::Domain { base },
        oid::BOOL => Kind::Bool,
        oid::INT2 | oid::INT4 | oid::INT8 | oid::FLOAT4 | oid::FLOAT8 | oid::NUMERIC => {
            Kind::Number
        }
        oid::DATE => Kind::Date,
        oid::TIMESTAMP => Kind::Timestamp,
        oid::TIMESTAMPTZ => Kind::Timestamptz,
        oid::JSON | oid::JSONB => Kind::Json,
        _ if element != 0 && length == -1 => Kind::Array { element },
        _ if typtype == "c" => Kind::Composite {
            attributes: names
                .iter()
                .zip(&types)
                .map(|(name, &type_oid)| {
                    let mut key = String::with_capacity(name.len() + 3);
                    string(&mut key, name);
                    key.push(':');
                    Attribute { key, type_oid }
                })
                .collect(),
        },
        _ if typtype == "p" => Kind::Unsupported {
            why: "a pseudo-type (its values' literals do not name their attributes)",
        },
        _ => match json_cast.as_deref().and_then(|c| c.strip_prefix("f ")) {
            Some(function) if oid >= FIRST_NORMAL_OID => Kind::Cast {
                function: function.to_owned(),
            },
            _ => Kind::Other,
        },
    };

    // As find_coercion_pathway to text: the cast in pg_cast if any, else
    // the output function (a cast through I/O).
    let to_text = match text_cast
        .as_deref()
        .map(|c| c.split_once(' ').unwrap_or((c, "")))
    {
        None | Some(("i", _)) => ToText::Output,
        Some(("b", _)) if matches!(oid, oid::VARCHAR | oid::PG_NODE_TREE) => ToText::Output,
        Some(("f", _)) if matches!(oid, oid::NAME | oid::CHAR) => ToText::Output,
        Some(("f", _)) if oid == oid::BOOL => ToText::Bool,
        Some(("f", _)) if oid == oid::BPCHAR => ToText::Bpchar,
        Some(("f", _)) if matches!(oid, oid::INET | oid::CIDR) => ToText::Inet,
        Some(("b", _)) => ToText::Refused(format!(
            "type {name}'s cast to text is binary: its text is not the type's output"
        )),
        Some((_, function)) => ToText::Refused(format!(
            "type {name} has its own cast to text ({function}), which the WAL reader cannot apply"
        )),
    };
    let to_text = if oid == oid::TEXT {
        ToText::Output
    } else {
        to_text
    };

    Ok(TypeInfo {
        name,
        kind,
        delimiter: delimiter.bytes().next().unwrap_or(b','),
        to_text,
    })
}

/// `to_json(value::text)`, `info` not a domain.
fn as_text(info: &TypeInfo, text: &str, out: &mut String) -> Result<(), EncodeError> {
    match &info.to_text {
        ToText::Output => string(out, text),
        ToText::Bool => match text {
            "t" => out.push_str("\"true\""),
            "f" => out.push_str("\"false\""),
            _ => return Err(EncodeError::new(&info.name, "not t or f")),
        },
        ToText::Bpchar => string(out, text.trim_end_matches(' ')),
        ToText::Inet => {
            out.push('"');
            escape(out, text);
            if !text.contains('/') {
                out.push_str(if text.contains(':') { "/128" } else { "/32" });
            }
            out.push('"');
        }
        ToText::Refused(why) => return Err(EncodeError::new(&info.name, why.as_str())),
    }
    Ok(())
}

/// Appends `text` as a JSON string, as PostgreSQL's `escape_json`.
pub(crate) fn string(out: &mut String, text: &str) {
    out.reserve(text.len() + 2);
    out.push('"');
    escape(out, text);
    out.push('"');
}

/// `escape_json` without the quotes: `\b \f \n \r \t \" \\`, any other
/// control character as `\u00xx` (lower-case hex), everything else as is.
fn escape(out: &mut String, text: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let bytes = text.as_bytes();
    let mut start = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let short = match b {
            0x08 => "\\b",
            0x0c => "\\f",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            b'"' => "\\\"",
            b'\\' => "\\\\",
            0..=0x1f => "",
            _ => continue,
        };
        out.push_str(&text[start..i]);
        if short.is_empty() {
            out.push_str("\\u00");
            out.push(HEX[usize::from(b >> 4)] as char);
            out.push(HEX[usize::from(b & 0xf)] as char);
        } else {
            out.push_str(short);
        }
        start = i + 1;
    }
    out.push_str(&text[start..]);
}

/// Whether PostgreSQL's JSON lexer reads all of `text` as one number
/// (`IsValidJsonNumber`): `-`? (`0` | [1-9][0-9]*) (`.` [0-9]+)? ([eE] [+-]? [0-9]+)?
fn is_json_number(text: &str) -> bool {
    let b = text.as_bytes();
    let mut i = usize::from(b.first() == Some(&b'-'));
    let digits = |i: &mut usize| {
        let start = *i;
        while b.get(*i).is_some_and(u8::is_ascii_digit) {
            *i += 1;
        }
        *i > start
    };
    match b.get(i) {
        Some(b'0') => i += 1,
        Some(b'1'..=b'9') => {
            digits(&mut i);
        }
        _ => return false,
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        if !digits(&mut i) {
            return false;
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if !digits(&mut i) {
            return false;
        }
    }
    i == b.len()
}

/// A `timestamp`'s ISO text (`2020-01-01 12:00:00.5`, `... BC`,
/// `infinity`) as `to_json` writes it: `T` between date and time.
fn timestamp(info: &TypeInfo, text: &str, out: &mut String) -> Result<(), EncodeError> {
    match text.split_once(' ') {
        Some((date, rest)) => {
            out.push('"');
            out.push_str(date);
            out.push('T');
            out.push_str(rest);
            out.push('"');
        }
        None if text == "infinity" || text == "-infinity" => string(out, text),
        None => return Err(EncodeError::malformed(info, "timestamp", 0)),
    }
    Ok(())
}

/// A `timestamptz`'s ISO text (`2020-01-01 12:00:00.5+00`, `... BC`,
/// `infinity`) as `to_json` writes it (`T`, the offset as `+hh:mm`), or, for
/// the key, as `to_json(value AT TIME ZONE 'UTC')` (no offset; the text
/// must be in UTC, as the walsender's is).
fn timestamptz(
    info: &TypeInfo,
    text: &str,
    out: &mut String,
    key: bool,
) -> Result<(), EncodeError> {
    let Some((date, rest)) = text.split_once(' ') else {
        if text == "infinity" || text == "-infinity" {
            string(out, text);
            return Ok(());
        }
        return Err(EncodeError::malformed(info, "timestamptz", 0));
    };
    let Some(sign) = rest.find(['+', '-']) else {
        return Err(EncodeError::malformed(info, "timestamptz", date.len() + 1));
    };
    let (time, zone) = rest.split_at(sign);
    let (offset, era) = match zone.find(' ') {
        Some(space) => zone.split_at(space),
        None => (zone, ""),
    };
    out.push('"');
    out.push_str(date);
    out.push('T');
    out.push_str(time);
    if key {
        if !matches!(offset, "+00" | "+00:00" | "-00") {
            return Err(EncodeError::new(
                &info.name,
                format!("offset {offset} is not UTC's: the WAL session's TimeZone is not UTC"),
            ));
        }
    } else {
        out.push_str(offset);
        // XSD style always has the minutes (ISO drops ":00").
        if !offset.contains(':') {
            out.push_str(":00");
        }
    }
    out.push_str(era);
    out.push('"');
    Ok(())
}

/// Writes an array element's JSON (`None`: NULL).
type WriteElement<'a> = dyn FnMut(Option<&str>, &mut String) -> Result<(), EncodeError> + 'a;

/// Writes a record attribute's JSON (`None`: NULL).
type WriteField<'a> =
    dyn FnMut(&Attribute, Option<&str>, &mut String) -> Result<(), EncodeError> + 'a;

/// Reads an array literal as `array_out` writes it (`[1:2]={...}`
/// decorations, nested braces, `delimiter` between elements, quoted
/// elements with backslash escapes, unquoted `NULL`) and writes the JSON
/// array's brackets and commas, `element` writing each element (its text,
/// unquoted, or `None` for NULL).
fn array(
    info: &TypeInfo,
    delimiter: u8,
    text: &str,
    out: &mut String,
    element: &mut WriteElement<'_>,
) -> Result<(), EncodeError> {
    let b = text.as_bytes();
    let mut i = 0;
    if b.first() == Some(&b'[') {
        // Dimensions: `[lower:upper]` per dimension, then `=`.
        match text.find('=') {
            Some(eq) => i = eq + 1,
            None => return Err(EncodeError::malformed(info, "array", 0)),
        }
    }
    if b.get(i) != Some(&b'{') {
        return Err(EncodeError::malformed(info, "array", i));
    }
    let mut scratch = String::new();
    let end = array_level(info, delimiter, text, i, out, &mut scratch, element)?;
    if end != b.len() {
        return Err(EncodeError::malformed(info, "array", end));
    }
    Ok(())
}

/// One `{...}` of an array literal, at `i`: returns the index after its `}`.
fn array_level(
    info: &TypeInfo,
    delimiter: u8,
    text: &str,
    mut i: usize,
    out: &mut String,
    scratch: &mut String,
    element: &mut WriteElement<'_>,
) -> Result<usize, EncodeError> {
    let b = text.as_bytes();
    let malformed = |at| EncodeError::malformed(info, "array", at);
    // At `{`.
    i += 1;
    out.push('[');
    if b.get(i) == Some(&b'}') {
        out.push(']');
        return Ok(i + 1);
    }
    loop {
        match b.get(i) {
            Some(b'{') => i = array_level(info, delimiter, text, i, out, scratch, element)?,
            Some(b'"') => {
                let (item, next) = quoted(text, i, scratch).ok_or_else(|| malformed(i))?;
                element(Some(item), out)?;
                i = next;
            }
            Some(_) => {
                let start = i;
                let mut escaped = false;
                while let Some(&c) = b.get(i) {
                    if c == delimiter || c == b'}' {
                        break;
                    }
                    if c == b'\\' {
                        escaped = true;
                        i += 1;
                    }
                    i += 1;
                }
                if i > b.len() {
                    return Err(malformed(start));
                }
                let raw = &text[start..i];
                if escaped {
                    scratch.clear();
                    unescape(raw, scratch);
                    element(Some(scratch), out)?;
                } else if raw.eq_ignore_ascii_case("NULL") {
                    element(None, out)?;
                } else {
                    element(Some(raw), out)?;
                }
            }
            None => return Err(malformed(i)),
        }
        match b.get(i) {
            Some(&c) if c == delimiter => {
                out.push(',');
                i += 1;
            }
            Some(b'}') => {
                out.push(']');
                return Ok(i + 1);
            }
            _ => return Err(malformed(i)),
        }
    }
}

/// The quoted array element at `start` (a `"`), its backslash escapes
/// undone (in `scratch` when it has any), and the index after its closing
/// quote. `None` when it does not end.
fn quoted<'a>(text: &'a str, start: usize, scratch: &'a mut String) -> Option<(&'a str, usize)> {
    let b = text.as_bytes();
    let mut i = start + 1;
    let mut escaped = false;
    loop {
        match b.get(i)? {
            b'"' => break,
            b'\\' => {
                escaped = true;
                i += 2;
            }
            _ => i += 1,
        }
    }
    let raw = text.get(start + 1..i)?;
    if escaped {
        scratch.clear();
        unescape(raw, scratch);
        Some((scratch.as_str(), i + 1))
    } else {
        Some((raw, i + 1))
    }
}

/// `raw` without its backslashes (each escaping the character after it).
fn unescape(raw: &str, out: &mut String) {
    let mut rest = raw;
    while let Some(at) = rest.find('\\') {
        out.push_str(&rest[..at]);
        let mut chars = rest[at + 1..].chars();
        if let Some(c) = chars.next() {
            out.push(c);
        }
        rest = chars.as_str();
    }
    out.push_str(rest);
}

/// Reads a record literal as `record_out` writes it (`(a,"b c",)`: fields
/// quoted when they need it, an empty field for NULL) and writes the JSON
/// object of `attributes`, `field` writing each attribute's value.
fn record(
    info: &TypeInfo,
    attributes: &[Attribute],
    text: &str,
    out: &mut String,
    field: &mut WriteField<'_>,
) -> Result<(), EncodeError> {
    if attributes.is_empty() {
        // `CREATE TYPE t AS ()`: its values are `()`, one field to read.
        return match text {
            "()" => {
                out.push_str("{}");
                Ok(())
            }
            _ => Err(EncodeError::malformed(info, "record", 0)),
        };
    }
    out.push('{');
    let mut n = 0;
    let read = fields(text, &mut |at, item| {
        let Some(attribute) = attributes.get(n) else {
            return Err(EncodeError::new(
                &info.name,
                format!(
                    "record literal not closed after the {} attributes of the type (at byte {at}): \
                     the type changed since it was loaded",
                    attributes.len()
                ),
            ));
        };
        if n > 0 {
            out.push(',');
        }
        n += 1;
        out.push_str(&attribute.key);
        field(attribute, item, out)
    });
    match read {
        Ok(_) if n < attributes.len() => Err(EncodeError::new(
            &info.name,
            format!(
                "record literal with fewer attributes ({n}) than the {} of the type: \
                 the type changed since it was loaded",
                attributes.len()
            ),
        )),
        Ok(_) => {
            out.push('}');
            Ok(())
        }
        Err(Malformed::At(at)) => Err(EncodeError::malformed(info, "record", at)),
        Err(Malformed::Field(error)) => Err(error),
    }
}

/// Reads one field of a record: its byte offset and its text (`None`: NULL).
pub(crate) type ReadField<'a, E> = dyn FnMut(usize, Option<&str>) -> Result<(), E> + 'a;

/// Why [`fields`] stopped.
pub(crate) enum Malformed<E> {
    /// The literal is not a record's, at this byte.
    At(usize),
    /// What the callback returned.
    Field(E),
}

impl<E> From<E> for Malformed<E> {
    fn from(error: E) -> Self {
        Malformed::Field(error)
    }
}

/// Splits a record literal as `record_out` writes it into its fields,
/// calling `field` with each one's byte offset and text, unquoted (`None`
/// for NULL, an empty unquoted field). Says how many fields it read.
pub(crate) fn fields<E>(text: &str, field: &mut ReadField<'_, E>) -> Result<usize, Malformed<E>> {
    let b = text.as_bytes();
    if b.first() != Some(&b'(') {
        return Err(Malformed::At(0));
    }
    let mut i = 1;
    let mut n = 0;
    let mut scratch = String::new();
    loop {
        let start = i;
        // Up to the `,` or `)` outside quotes.
        let mut plain = true;
        let mut in_quotes = false;
        loop {
            match b.get(i) {
                None => return Err(Malformed::At(start)),
                Some(b',' | b')') if !in_quotes => break,
                Some(b'\\') => {
                    plain = false;
                    i += 2;
                }
                Some(b'"') => {
                    plain = false;
                    if in_quotes && b.get(i + 1) == Some(&b'"') {
                        i += 2;
                    } else {
                        in_quotes = !in_quotes;
                        i += 1;
                    }
                }
                Some(_) => i += 1,
            }
        }
        let raw = text.get(start..i).ok_or(Malformed::At(start))?;
        if raw.is_empty() {
            field(start, None)?;
        } else if plain {
            field(start, Some(raw))?;
        } else if let Some(inner) = raw
            .strip_prefix('"')
            .and_then(|r| r.strip_suffix('"'))
            .filter(|inner| !inner.contains(['"', '\\']))
        {
            // Quoted, nothing escaped: the common case of a field with a
            // comma or a blank.
            field(start, Some(inner))?;
        } else {
            scratch.clear();
            unquote_field(raw, &mut scratch);
            field(start, Some(&scratch))?;
        }
        n += 1;
        if b[i] == b')' {
            return if i + 1 == b.len() {
                Ok(n)
            } else {
                Err(Malformed::At(i + 1))
            };
        }
        i += 1;
    }
}

/// A record field as `record_in` reads it: quotes dropped (`""` inside
/// quotes is a quote), a backslash escaping the character after it.
fn unquote_field(raw: &str, out: &mut String) {
    let mut chars = raw.chars().peekable();
    let mut in_quotes = false;
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                if let Some(next) = chars.next() {
                    out.push(next);
                }
            }
            '"' if in_quotes && chars.peek() == Some(&'"') => {
                chars.next();
                out.push('"');
            }
            '"' => in_quotes = !in_quotes,
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn other(name: &str) -> TypeInfo {
        TypeInfo {
            name: name.to_owned(),
            kind: Kind::Other,
            delimiter: b',',
            to_text: ToText::Output,
        }
    }

    fn with(kind: Kind, name: &str) -> TypeInfo {
        TypeInfo {
            kind,
            ..other(name)
        }
    }

    /// int4 (23), text (25), int4[] (1007), text[] (1009), box (603, `;`),
    /// box[] (1020), and a composite `pair` (70000) of an int4 and a text[].
    fn catalog() -> TypeCatalog {
        let mut types = HashMap::new();
        types.insert(23, with(Kind::Number, "integer"));
        types.insert(25, other("text"));
        types.insert(1007, with(Kind::Array { element: 23 }, "integer[]"));
        types.insert(1009, with(Kind::Array { element: 25 }, "text[]"));
        types.insert(
            603,
            TypeInfo {
                delimiter: b';',
                ..other("box")
            },
        );
        types.insert(1020, with(Kind::Array { element: 603 }, "box[]"));
        let key = |name: &str| {
            let mut key = String::new();
            string(&mut key, name);
            key.push(':');
            key
        };
        types.insert(
            70000,
            with(
                Kind::Composite {
                    attributes: vec![
                        Attribute {
                            key: key("n"),
                            type_oid: 23,
                        },
                        Attribute {
                            key: key("we\"ird"),
                            type_oid: 1009,
                        },
                    ],
                },
                "pair",
            ),
        );
        types.insert(70001, with(Kind::Array { element: 70000 }, "pair[]"));
        types.insert(70002, with(Kind::Domain { base: 1007 }, "ints"));
        TypeCatalog { types }
    }

    fn json(oid: u32, text: &str) -> Result<String, EncodeError> {
        let mut out = String::new();
        catalog().encode(oid, Encoding::Json, text, &mut out)?;
        Ok(out)
    }

    fn text_array(oid: u32, text: &str) -> String {
        let mut out = String::new();
        catalog()
            .encode(oid, Encoding::TextArray, text, &mut out)
            .unwrap();
        out
    }

    #[test]
    fn escapes_as_escape_json() {
        let mut out = String::new();
        string(&mut out, "a\u{8}\u{c}\n\r\t\"\\/\u{1}\u{1f}\u{7f}é\u{2028}");
        assert_eq!(
            out,
            "\"a\\b\\f\\n\\r\\t\\\"\\\\/\\u0001\\u001f\u{7f}é\u{2028}\""
        );
    }

    #[test]
    fn json_numbers() {
        for yes in [
            "0",
            "-0",
            "1",
            "-12.5",
            "1e+300",
            "1E-7",
            "0.000",
            "123456789012345678901234567890",
        ] {
            assert!(is_json_number(yes), "{yes}");
        }
        for no in [
            "",
            "-",
            "NaN",
            "Infinity",
            "-Infinity",
            "01",
            "1.",
            ".5",
            "1e",
            "1e+",
            "+1",
            "1 ",
            "0x1",
        ] {
            assert!(!is_json_number(no), "{no}");
        }
    }

    #[test]
    fn arrays() {
        assert_eq!(json(1007, "{}").unwrap(), "[]");
        assert_eq!(json(1007, "{1,2,NULL}").unwrap(), "[1,2,null]");
        assert_eq!(json(1007, "{{1,2},{3,4}}").unwrap(), "[[1,2],[3,4]]");
        assert_eq!(
            json(1007, "[0:1][-2:-1]={{1,2},{3,NULL}}").unwrap(),
            "[[1,2],[3,null]]"
        );
        assert_eq!(json(70002, "{1}").unwrap(), "[1]");
        assert_eq!(
            json(1009, r#"{"a,b","","NULL",null,"\"q\\",é,"{x}"}"#).unwrap(),
            r#"["a,b","","NULL",null,"\"q\\","é","{x}"]"#
        );
        assert_eq!(
            json(1020, "{(3,4),(1,2);(1,1),(0,0)}").unwrap(),
            r#"["(3,4),(1,2)","(1,1),(0,0)"]"#
        );
        assert_eq!(text_array(1007, "{{1,NULL}}"), r#"[["1",null]]"#);
        for bad in [
            "", "1", "{1", "{1,}x", "{1}}", "[0:1]{1}", "{\"a}", "{1,2}x",
        ] {
            assert!(json(1007, bad).is_err(), "{bad}");
        }
        // Like to_json, numbers are not checked: their text is a string
        // unless it is a JSON number.
        assert_eq!(json(1007, "{1,x}").unwrap(), r#"[1,"x"]"#);
        let error = json(1007, "{1,2").unwrap_err();
        assert_eq!(error.type_name(), "integer[]");
        assert_eq!(
            error.to_string(),
            "cannot encode a value of type integer[] as JSON: malformed array literal at byte 4"
        );
    }

    #[test]
    fn records() {
        assert_eq!(
            json(70000, r#"(1,"{a,""b c"",NULL,""\\\\""}")"#).unwrap(),
            r#"{"n":1,"we\"ird":["a","b c",null,"\\"]}"#
        );
        assert_eq!(json(70000, "(,)").unwrap(), r#"{"n":null,"we\"ird":null}"#);
        assert_eq!(json(70000, "(2,{})").unwrap(), r#"{"n":2,"we\"ird":[]}"#);
        assert_eq!(
            json(70001, r#"{"(1,{x})",NULL,"(,\"{\"\"\"\"}\")"}"#).unwrap(),
            r#"[{"n":1,"we\"ird":["x"]},null,{"n":null,"we\"ird":[""]}]"#
        );
        for bad in ["", "(1)", "(1,{},3)", "(1,{}", "(1,{})x", "1,{}"] {
            assert!(json(70000, bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn unquoting() {
        let mut out = String::new();
        unquote_field(r#""a""b\\c" d"#, &mut out);
        assert_eq!(out, r#"a"b\c d"#);
        out.clear();
        unescape(r#"a\\b\""#, &mut out);
        assert_eq!(out, r#"a\b""#);
    }

    #[test]
    fn temporal() {
        let info = other("timestamptz");
        let mut out = String::new();
        timestamptz(&info, "0044-03-15 06:15:00.5+00 BC", &mut out, false).unwrap();
        assert_eq!(out, r#""0044-03-15T06:15:00.5+00:00 BC""#);
        out.clear();
        timestamptz(&info, "0044-03-15 06:15:00.5+00 BC", &mut out, true).unwrap();
        assert_eq!(out, r#""0044-03-15T06:15:00.5 BC""#);
        out.clear();
        timestamptz(&info, "2020-01-01 00:00:00+05:30", &mut out, false).unwrap();
        assert_eq!(out, r#""2020-01-01T00:00:00+05:30""#);
        out.clear();
        timestamptz(&info, "-infinity", &mut out, true).unwrap();
        assert_eq!(out, r#""-infinity""#);
        assert!(timestamptz(&info, "2020-01-01 00:00:00+01", &mut out, true).is_err());
        out.clear();
        timestamp(&info, "294276-12-31 23:59:59.999999", &mut out).unwrap();
        assert_eq!(out, r#""294276-12-31T23:59:59.999999""#);
    }
}

//! A change of the stream as a wire event, spelled as the trigger mode's
//! readers spell it: `json_build_object`'s `"key" : value, ...`, the row
//! key as `json_build_array`'s `[a, b]`, values as the readers' encodings.

use std::fmt::Write;

use super::encode::TypeCatalog;
use super::pgoutput::Datum;
use super::tables::{Captured, Mapped};
use crate::table::Action;

/// What every event of a transaction shares.
#[derive(Debug, Clone)]
pub(crate) struct Meta<'a> {
    /// The database's `dawdle.origin`, as a JSON string.
    pub source: &'a str,
    /// The commit time, as a JSON string.
    pub captured_at: &'a str,
    /// The transaction id (xid8), as a JSON string.
    pub txid: &'a str,
}

/// An event built: its JSON, its FIFO group and its action.
#[derive(Debug)]
pub(crate) struct Built {
    pub json: String,
    pub group: String,
}

/// A value the WAL did not carry, or did not carry readably.
#[derive(Debug)]
pub(crate) struct BuildError(pub String);

/// The event of a change of `table` (`mapped`: the relation it came
/// through). `old` and `new` are the relation's tuples.
#[allow(clippy::too_many_arguments)]
pub(crate) fn build(
    id: i64,
    meta: &Meta<'_>,
    table: &Captured,
    mapped: &Mapped,
    types: &TypeCatalog,
    action: Action,
    old: Option<&[Datum]>,
    new: Option<&[Datum]>,
) -> Result<Built, BuildError> {
    let mut json = String::with_capacity(256);
    let _ = write!(json, "{{\"id\" : {id}, \"source\" : {}, ", meta.source);
    json.push_str("\"schema\" : ");
    push_string(&mut json, &table.schema);
    json.push_str(", \"table\" : ");
    push_string(&mut json, &table.name);
    let _ = write!(json, ", \"action\" : \"{}\", \"key\" : ", action.as_str());
    let key_start = json.len();
    match action {
        Action::Truncate => json.push_str("[]"),
        _ => {
            let row = if action == Action::Delete { old } else { new };
            key(&mut json, table, mapped, types, row, old)?;
        }
    }
    let key_end = json.len();
    let _ = write!(
        json,
        ", \"captured_at\" : {}, \"txid\" : {}, \"old\" : ",
        meta.captured_at, meta.txid
    );
    match (action, old) {
        (Action::Update | Action::Delete, Some(old)) => {
            object(&mut json, table, mapped, types, old, None)?
        }
        _ => json.push_str("null"),
    }
    json.push_str(", \"new\" : ");
    match (action, new) {
        (Action::Insert | Action::Update | Action::Snapshot, Some(new)) => {
            object(&mut json, table, mapped, types, new, old)?
        }
        _ => json.push_str("null"),
    }
    json.push('}');
    let mut group =
        String::with_capacity(table.schema.len() + table.name.len() + 2 + key_end - key_start);
    group.push_str(&table.schema);
    group.push('.');
    group.push_str(&table.name);
    group.push(':');
    group.push_str(&json[key_start..key_end]);
    Ok(Built { json, group })
}

/// Whether an update changed none of the captured columns.
pub(crate) fn unchanged(mapped: &Mapped, old: &[Datum], new: &[Datum]) -> bool {
    mapped.columns.iter().all(
        |&(position, _)| match (old.get(position), new.get(position)) {
            (Some(a), Some(Datum::Unchanged)) => !matches!(a, Datum::Unchanged),
            (Some(a), Some(b)) => a == b,
            _ => false,
        },
    )
}

/// The value of a column: `row`'s, or where the update left a TOASTed
/// value out, the old row's.
fn datum<'d>(
    row: &'d [Datum],
    fallback: Option<&'d [Datum]>,
    position: usize,
) -> Option<&'d Datum> {
    match row.get(position) {
        Some(Datum::Unchanged) => fallback.and_then(|old| old.get(position)),
        other => other,
    }
}

fn text<'d>(
    datum: &'d Datum,
    table: &Captured,
    column: &str,
) -> Result<Option<&'d str>, BuildError> {
    match datum {
        Datum::Null => Ok(None),
        Datum::Text(bytes) => std::str::from_utf8(bytes).map(Some).map_err(|_| {
            BuildError(format!(
                "{}.{}.{column}: the value is not UTF-8",
                table.schema, table.name
            ))
        }),
        Datum::Unchanged => Err(BuildError(format!(
            "{}.{}.{column}: an update left the value out and no old row carries it \
             (is the table's REPLICA IDENTITY FULL?)",
            table.schema, table.name
        ))),
    }
}

fn key(
    out: &mut String,
    table: &Captured,
    mapped: &Mapped,
    types: &TypeCatalog,
    row: Option<&[Datum]>,
    old: Option<&[Datum]>,
) -> Result<(), BuildError> {
    let row = row.ok_or_else(|| {
        BuildError(format!(
            "{}.{}: the change carries no row to take the key from",
            table.schema, table.name
        ))
    })?;
    out.push('[');
    let mut first = true;
    for (column, &(position, oid)) in table.columns.iter().zip(&mapped.columns) {
        if !column.key {
            continue;
        }
        if !first {
            out.push_str(", ");
        }
        first = false;
        let datum = datum(row, old, position).unwrap_or(&Datum::Null);
        match text(datum, table, &column.name)? {
            None => out.push_str("null"),
            Some(text) => types
                .encode_key(oid, column.encoding, text, out)
                .map_err(|e| {
                    BuildError(format!(
                        "{}.{}.{}: {e}",
                        table.schema, table.name, column.name
                    ))
                })?,
        }
    }
    out.push(']');
    Ok(())
}

fn object(
    out: &mut String,
    table: &Captured,
    mapped: &Mapped,
    types: &TypeCatalog,
    row: &[Datum],
    fallback: Option<&[Datum]>,
) -> Result<(), BuildError> {
    out.push('{');
    for (i, (column, &(position, oid))) in table.columns.iter().zip(&mapped.columns).enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(&column.json_key);
        out.push_str(" : ");
        let datum = datum(row, fallback, position).unwrap_or(&Datum::Null);
        match text(datum, table, &column.name)? {
            None => out.push_str("null"),
            Some(text) => types.encode(oid, column.encoding, text, out).map_err(|e| {
                BuildError(format!(
                    "{}.{}.{}: {e}",
                    table.schema, table.name, column.name
                ))
            })?,
        }
    }
    out.push('}');
    Ok(())
}

/// `text` as a JSON string, escaped as PostgreSQL's `escape_json` does.
pub(crate) fn push_string(out: &mut String, text: &str) {
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

//! The readers: per captured table the function turning its event tables'
//! rows into events, and the window over every reader, the view of waiting
//! events and the backlog.

use super::{
    text_array, window_filter, NO_SIGNAL, READER_COLUMNS, READER_PARAMETERS, TEXT_COLUMNS,
};
use crate::sql::catalog::{BODY_QUOTE, CAPTURES_TABLE, CURSOR_TABLE, EVENTS_TABLE, SCHEMA};
use crate::sql::model::{CheckedColumn, CheckedTable, Record};
use crate::sql::quote::{ident, join, literal, object_name, push_fmt, qualified};
use crate::table::{Encoding, SessionSettings};

/// `json_build_object` takes at most 100 arguments: 50 columns.
const COLUMNS_PER_OBJECT: usize = 50;

/// Drops the readers that lack the columns of signals, with the window and
/// what reads it.
pub(super) fn up_retire(sql: &mut String) {
    let schema = ident(SCHEMA);
    push_fmt(
        sql,
        format_args!(
            "
-- The readers return the columns of signals: an installation whose readers
-- lack them has them (and the window, and the view over it) dropped here,
-- to be made anew below.
DO {BODY_QUOTE}
DECLARE
  r record;
BEGIN
  IF EXISTS (SELECT FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace s ON s.oid = p.pronamespace
             WHERE s.nspname = {schema_literal} AND p.proname = 'window'
               AND NOT ('deliver_at' = ANY (p.proargnames))) THEN
    DROP VIEW IF EXISTS {events};
    DROP FUNCTION IF EXISTS {schema}.\"backlog\"();
    DROP FUNCTION {schema}.\"window\"({READER_PARAMETERS});
    FOR r IN SELECT \"reader\" FROM {captures} LOOP
      EXECUTE format('DROP FUNCTION IF EXISTS %s(%s)', r.\"reader\", {reader_types});
    END LOOP;
  END IF;
END
{BODY_QUOTE};
",
            schema_literal = literal(SCHEMA),
            events = qualified(SCHEMA, EVENTS_TABLE),
            captures = qualified(SCHEMA, CAPTURES_TABLE),
            reader_types = literal("pg_snapshot, pg_snapshot, bigint, boolean, bigint"),
        ),
    );
}

/// The reader: the events of a window, with their rows as JSON built with
/// fixed session settings, whatever the reading session's.
pub(super) fn up(sql: &mut String, table: &CheckedTable) {
    push_fmt(
        sql,
        format_args!(
            "CREATE OR REPLACE FUNCTION {}({READER_PARAMETERS})\nRETURNS TABLE ({READER_COLUMNS})\nLANGUAGE plpgsql STABLE\n",
            table.reader
        ),
    );
    for (_, name, value) in SessionSettings::EACH {
        push_fmt(sql, format_args!("SET {} TO {value}\n", ident(name)));
    }
    let key = |record: Record| {
        let mut key = String::from("json_build_array(");
        join(&mut key, table.primary_key(), ", ", |out, c| {
            let stored = format!("e.{}", c.stored.get(record));
            match c.encoding {
                // Spelled alike by every session: the key names the FIFO group.
                Encoding::Instant => push_fmt(out, format_args!("({stored} AT TIME ZONE 'UTC')")),
                _ => out.push_str(&stored),
            }
        });
        key.push(')');
        key
    };
    push_fmt(
        sql,
        format_args!(
            "AS {BODY_QUOTE}\n#variable_conflict use_column\nBEGIN\n  RETURN QUERY\n  \
             SELECT e.\"id\", e.\"txid\", e.\"captured_at\", {schema}::text, {name}::text, e.\"action\",\n    \
             CASE e.\"action\" WHEN 'delete' THEN {old_key} WHEN 'truncate' THEN '[]'::json ELSE {new_key} END,\n    \
             CASE WHEN \"rows\" AND e.\"action\" IN ('update', 'delete') THEN {old} END,\n    \
             CASE WHEN \"rows\" AND e.\"action\" IN ('insert', 'update', 'snapshot') THEN {new} END,\n    \
             {NO_SIGNAL}\n",
            schema = table.schema_literal,
            name = table.name_literal,
            old_key = key(Record::Old),
            new_key = key(Record::New),
            old = row_json(table, Record::Old),
            new = row_json(table, Record::New),
        ),
    );
    window_rows(sql, table);
}

/// The text reader: the events of a window as the reader returns them, but
/// with the rows' captured columns as the text of one record each, in
/// field order, which the watcher turns into JSON (`wal::event`) with the
/// encodings the reader uses. Each row carries the shape of the table it
/// was read with; the watcher checks it against the registry's `encode`
/// before it trusts what it knows of the columns' types.
pub(super) fn up_text(sql: &mut String, table: &CheckedTable) {
    push_fmt(
        sql,
        format_args!(
            "CREATE OR REPLACE FUNCTION {}({READER_PARAMETERS})\nRETURNS TABLE ({READER_COLUMNS}, {TEXT_COLUMNS})\nLANGUAGE plpgsql STABLE\n",
            table.text_reader
        ),
    );
    for (_, name, value) in SessionSettings::EACH {
        push_fmt(sql, format_args!("SET {} TO {value}\n", ident(name)));
    }
    let record = |record: Record| {
        let mut row = String::from("ROW(");
        join(&mut row, &table.columns, ", ", |out, c| {
            push_fmt(out, format_args!("e.{}", c.stored.get(record)))
        });
        row.push_str(")::text");
        row
    };
    // Read once per call, after the query locked the event tables (which an
    // ALTER of their columns must wait for).
    let stored = stored_names(table);
    push_fmt(
        sql,
        format_args!(
            "AS {BODY_QUOTE}\n#variable_conflict use_column\nBEGIN\n  RETURN QUERY\n  \
             SELECT e.\"id\", e.\"txid\", e.\"captured_at\", {schema}::text, {name}::text, e.\"action\",\n    \
             NULL::json, NULL::json, NULL::json, {NO_SIGNAL},\n    \
             CASE WHEN \"rows\" AND e.\"action\" IN ('update', 'delete') THEN {old} END,\n    \
             CASE WHEN \"rows\" AND e.\"action\" IN ('insert', 'update', 'snapshot') THEN {new} END,\n    \
             (SELECT hashtext({spec} || ';' || {dawdle}.\"stored_types\"({slot}::regclass, {stored})))\n",
            schema = table.schema_literal,
            name = table.name_literal,
            old = record(Record::Old),
            new = record(Record::New),
            spec = literal(&encode_spec(table)),
            dawdle = ident(SCHEMA),
            slot = literal(&table.slots[0]),
            stored = text_array(&stored),
        ),
    );
    window_rows(sql, table);
}

/// What the watcher needs to encode the text reader's rows, as the
/// registry's `encode` holds it: the text reader, the event tables' column
/// names of the new row (whose types the rows are read with), and the
/// columns as the WAL spec has them.
pub(super) fn encode_spec(table: &CheckedTable) -> String {
    let stored = stored_names(table);
    let mut spec: serde_json::Value =
        serde_json::from_str(&super::wal::spec(table)).expect("the spec is JSON");
    spec["reader"] = serde_json::Value::String(table.text_reader.clone());
    spec["stored"] = serde_json::json!(stored);
    spec.to_string()
}

/// The event tables' columns holding the new row, in field order.
fn stored_names(table: &CheckedTable) -> Vec<String> {
    table
        .column_names
        .iter()
        .map(|name| object_name(Record::New.prefix(), &[name]))
        .collect()
}

/// The end of a reader: from its event tables, the rows of the window in id
/// order, at most `limit`.
fn window_rows(sql: &mut String, table: &CheckedTable) {
    sql.push_str("  FROM (SELECT * FROM (");
    for (s, slot) in table.slots.iter().enumerate() {
        if s > 0 {
            sql.push_str("\n    UNION ALL ");
        }
        push_fmt(
            sql,
            format_args!("SELECT \"id\", \"txid\", \"captured_at\", \"action\""),
        );
        for record in [Record::Old, Record::New] {
            for column in &table.columns {
                push_fmt(sql, format_args!(", {}", column.stored.get(record)));
            }
        }
        push_fmt(sql, format_args!(" FROM {slot}"));
    }
    push_fmt(
        sql,
        format_args!(
            ") e\n    WHERE {}\n    ORDER BY e.\"id\" LIMIT \"limit\") e;\nEND\n{BODY_QUOTE};\n",
            window_filter("e")
        ),
    );
}

/// Drops the table's reader.
pub(super) fn down(sql: &mut String, table: &CheckedTable) {
    push_fmt(
        sql,
        format_args!(
            "DROP FUNCTION IF EXISTS {}({READER_PARAMETERS});\nDROP FUNCTION IF EXISTS {}({READER_PARAMETERS});\n",
            table.reader, table.text_reader
        ),
    );
}

/// The JSON object of the captured columns of `record`, from an event
/// table's row aliased `e`.
fn row_json(table: &CheckedTable, record: Record) -> String {
    let chunks: Vec<&[CheckedColumn]> = table.columns.chunks(COLUMNS_PER_OBJECT).collect();
    let object = |chunk: &[CheckedColumn], function: &str| {
        let mut out = format!("{function}(");
        join(&mut out, chunk, ", ", |out, c| {
            push_fmt(out, format_args!("{}, {}", c.json_key, value(c, record)))
        });
        out.push(')');
        out
    };
    if let [only] = chunks.as_slice() {
        return object(only, "json_build_object");
    }
    // Spliced as text: merging as jsonb would rewrite the values of json
    // columns (`1e16` becomes `10000000000000000`, `-0` becomes `0`), and
    // then the event would no longer read as a direct query does. Each
    // chunk's object loses the braces where it meets its neighbours.
    let last = chunks.len() - 1;
    let mut out = String::from("(");
    for (i, chunk) in chunks.into_iter().enumerate() {
        let text = format!("{}::text", object(chunk, "json_build_object"));
        let spliced = match i {
            0 => format!("left({text}, -1)"),
            i if i == last => format!("right({text}, -1)"),
            _ => format!("left(right({text}, -1), -1)"),
        };
        if i > 0 {
            out.push_str(" || ', ' || ");
        }
        out.push_str(&spliced);
    }
    out.push_str(")::json");
    out
}

/// One stored column's value as it goes into the event JSON. The reader
/// fixes `extra_float_digits` to 1, so a float's text is its shortest exact
/// form.
fn value(column: &CheckedColumn, record: Record) -> String {
    let expr = format!("e.{}", column.stored.get(record));
    match column.encoding {
        Encoding::Json | Encoding::Instant => expr,
        Encoding::Text | Encoding::Float => format!("{expr}::text"),
        Encoding::TextArray => format!("{expr}::text[]"),
    }
}

/// The function reading every table's events (rebuilt from the registry),
/// the view of waiting events, and the backlog.
pub(super) fn up_window(sql: &mut String) {
    push_fmt(
        sql,
        format_args!(
            "
SELECT {schema}.\"rebuild\"();

-- The events waiting to be sent, oldest first, as the watcher reads them.
CREATE OR REPLACE VIEW {events} AS
SELECT e.* FROM {cursor} c,
  LATERAL {schema}.\"window\"(c.\"read\", coalesce(c.\"window\", pg_current_snapshot()), c.\"after\", true, NULL) e
UNION ALL
SELECT e.* FROM {cursor} c,
  LATERAL {schema}.\"window\"(c.\"window\", pg_current_snapshot(), 0, true, NULL) e
WHERE c.\"window\" IS NOT NULL;

-- How many events wait, and how old the oldest is (in seconds).
-- (No JIT: the readers' row estimates would make it compile, which costs
-- more than counting.)
CREATE OR REPLACE FUNCTION {schema}.\"backlog\"(OUT \"events\" bigint, OUT \"oldest_age\" float8)
LANGUAGE sql STABLE SET jit = off AS {BODY_QUOTE}
SELECT count(*), extract(epoch FROM now() - min(e.\"captured_at\"))::float8
-- A delayed signal waits from its due time.
FROM (SELECT greatest(e.\"captured_at\", e.\"deliver_at\") AS \"captured_at\" FROM {cursor} c,
        LATERAL {schema}.\"window\"(c.\"read\", coalesce(c.\"window\", pg_current_snapshot()), c.\"after\", false, NULL) e
      UNION ALL
      SELECT greatest(e.\"captured_at\", e.\"deliver_at\") FROM {cursor} c,
        LATERAL {schema}.\"window\"(c.\"window\", pg_current_snapshot(), 0, false, NULL) e
      WHERE c.\"window\" IS NOT NULL) e
{BODY_QUOTE};
",
            schema = ident(SCHEMA),
            cursor = qualified(SCHEMA, CURSOR_TABLE),
            events = qualified(SCHEMA, EVENTS_TABLE),
        ),
    );
}

/// Drops the view of waiting events and the backlog, which read the window.
pub(super) fn down_view(sql: &mut String) {
    push_fmt(
        sql,
        format_args!(
            "DROP VIEW IF EXISTS {events};\nDROP FUNCTION IF EXISTS {schema}.\"backlog\"();\n",
            events = qualified(SCHEMA, EVENTS_TABLE),
            schema = ident(SCHEMA),
        ),
    );
}

/// Drops the window.
pub(super) fn down_window(sql: &mut String) {
    push_fmt(
        sql,
        format_args!(
            "DROP FUNCTION IF EXISTS {schema}.\"window\"({READER_PARAMETERS});\n\
             DROP FUNCTION IF EXISTS {schema}.\"window_text\"({READER_PARAMETERS});\n",
            schema = ident(SCHEMA)
        ),
    );
}

//! Signals, an application's own events: their event tables, the table of
//! delayed ones, the functions that send, cancel and release them, and
//! their reader.

use super::index_if_missing;
use super::{current_slot, per_slot, ring, text_array, window_filter};
use super::{READER_COLUMNS, READER_PARAMETERS};
use crate::sql::catalog::{
    BODY_QUOTE, CAPTURES_TABLE, DELAYED_TABLE, EVENT_ID_SEQUENCE, SCHEMA, SIGNALS_CAPTURE, SLOTS,
};
use crate::sql::quote::{ident, literal, push_fmt, qualified};

/// The reader of the signals' event tables.
const SIGNAL_READER: &str = "read:signals";

/// The signals' event tables, one per slot.
fn signal_slots() -> Vec<String> {
    (0..SLOTS)
        .map(|slot| qualified(SCHEMA, &format!("signals:{slot}")))
        .collect()
}

/// Signals: their event tables (written like a captured table's, by slot,
/// and read by their own reader), the table of delayed ones, and the
/// functions that send, cancel and release them.
pub(super) fn up(sql: &mut String) {
    let schema = ident(SCHEMA);
    let slots = signal_slots();
    let delayed = qualified(SCHEMA, DELAYED_TABLE);
    sql.push_str("\n-- Signals: an application's own events (dawdle::signal).\n");
    for (slot, table) in slots.iter().enumerate() {
        push_fmt(
            sql,
            format_args!(
                "CREATE TABLE IF NOT EXISTS {table} (\n    \
                 \"id\"          bigint NOT NULL,\n    \
                 \"txid\"        xid8 NOT NULL DEFAULT pg_current_xact_id(),\n    \
                 \"captured_at\" timestamptz NOT NULL DEFAULT clock_timestamp(),\n    \
                 \"name\"        text NOT NULL,\n    \
                 \"payload\"     json NOT NULL,\n    \
                 \"deliver_at\"  timestamptz NOT NULL\n);\n\
                 {index}",
                index = index_if_missing(&format!("signals:{slot}:txid"), table, "\"txid\""),
            ),
        );
    }
    push_fmt(
        sql,
        format_args!(
            "\
-- Signals to deliver later, until the watcher releases them when due.
CREATE TABLE IF NOT EXISTS {delayed} (
    \"id\"          bigint PRIMARY KEY,
    \"captured_at\" timestamptz NOT NULL DEFAULT clock_timestamp(),
    \"name\"        text NOT NULL,
    \"payload\"     json NOT NULL,
    \"deliver_at\"  timestamptz NOT NULL
);
{delayed_index}
-- Records a signal in the caller's transaction; returns its id.
CREATE OR REPLACE FUNCTION {schema}.\"signal\"(\"name\" text, \"payload\" json,
    \"deliver_at\" timestamptz DEFAULT now()) RETURNS bigint
LANGUAGE plpgsql AS {BODY_QUOTE}
DECLARE
  slot int4 := {slot};
  id bigint;
  due timestamptz := coalesce(\"signal\".\"deliver_at\", now());
BEGIN
  IF coalesce(\"signal\".\"name\", '') = '' THEN
    RAISE EXCEPTION 'dawdle.signal: a signal needs a name' USING ERRCODE = '22023';
  END IF;
  IF \"signal\".\"payload\" IS NULL THEN
    RAISE EXCEPTION 'dawdle.signal: signal % has no payload (SQL NULL; a JSON null is ''null''::json)',
      \"signal\".\"name\" USING ERRCODE = '22004';
  END IF;
  id := nextval({sequence});
  IF due > clock_timestamp() THEN
    INSERT INTO {delayed} (\"id\", \"name\", \"payload\", \"deliver_at\")
    VALUES (id, \"signal\".\"name\", \"signal\".\"payload\", due);
  ELSE
",
            slot = current_slot(),
            sequence = literal(&qualified(SCHEMA, EVENT_ID_SEQUENCE)),
            delayed_index = index_if_missing("delayed_deliver_at", &delayed, "\"deliver_at\""),
        ),
    );
    per_slot(sql, "    ", &slots, |sql, table| {
        push_fmt(
            sql,
            format_args!(
                "      INSERT INTO {table} (\"id\", \"name\", \"payload\", \"deliver_at\")\n      \
                 VALUES (id, \"signal\".\"name\", \"signal\".\"payload\", due);\n"
            ),
        )
    });
    push_fmt(
        sql,
        format_args!(
            "  END IF;\n{ring}  RETURN id;\nEND\n{BODY_QUOTE};\n\n\
-- Cancels a signal that waits for its time; says whether it did.
CREATE OR REPLACE FUNCTION {schema}.\"cancel_signal\"(\"id\" bigint) RETURNS boolean
LANGUAGE sql AS {BODY_QUOTE}
WITH d AS (DELETE FROM {delayed} d WHERE d.\"id\" = $1 RETURNING 1) SELECT EXISTS (SELECT FROM d)
{BODY_QUOTE};

-- Moves due signals (at most \"max\", earliest first) into this
-- transaction's event table, keeping their ids; says how many, and in how
-- many seconds the next that was not due yet falls due.
-- Always by the index on deliver_at: a plan that scans the table would
-- read every signal waiting for a later time, on every look.
CREATE OR REPLACE FUNCTION {schema}.\"release_signals\"(\"max\" int4,
    OUT \"released\" int4, OUT \"next_due\" float8)
LANGUAGE plpgsql SET enable_seqscan = off AS {BODY_QUOTE}
DECLARE
  slot int4;
  -- A variable, not clock_timestamp() itself: a volatile function in the
  -- condition would keep the index on deliver_at from being used.
  at timestamptz := clock_timestamp();
BEGIN
  \"released\" := 0;
  -- Without a due signal, no transaction id is taken.
  IF (SELECT min(w.\"deliver_at\") FROM {delayed} w) <= at THEN
  slot := {slot};
",
            ring = ring("  "),
            slot = current_slot(),
        ),
    );
    per_slot(sql, "  ", &slots, |sql, table| {
        push_fmt(
            sql,
            format_args!(
                "    WITH due AS (\n      \
                 DELETE FROM {delayed} d WHERE d.\"id\" IN (\n        \
                 SELECT w.\"id\" FROM {delayed} w WHERE w.\"deliver_at\" <= at\n        \
                 ORDER BY w.\"deliver_at\" LIMIT \"max\" FOR UPDATE SKIP LOCKED)\n      \
                 RETURNING d.*)\n    \
                 INSERT INTO {table} (\"id\", \"captured_at\", \"name\", \"payload\", \"deliver_at\")\n    \
                 SELECT \"id\", \"captured_at\", \"name\", \"payload\", \"deliver_at\" FROM due ORDER BY \"id\";\n"
            ),
        )
    });
    push_fmt(
        sql,
        format_args!(
            "  GET DIAGNOSTICS \"released\" = ROW_COUNT;\n  END IF;\n  \
             -- The next to fall due: one due already and still here is locked by a\n  \
             -- transaction (a cancel, a move), and waits for the next look.\n  \
             SELECT extract(epoch FROM min(w.\"deliver_at\") - clock_timestamp())::float8\n  \
             INTO \"next_due\" FROM {delayed} w WHERE w.\"deliver_at\" > at;\nEND\n{BODY_QUOTE};\n\n"
        ),
    );
    // The reader: signals have no rows, and no settings to fix, so it is a
    // SQL function, which the planner inlines into the window's query.
    push_fmt(
        sql,
        format_args!(
            "CREATE OR REPLACE FUNCTION {reader}({READER_PARAMETERS})\n\
             RETURNS TABLE ({READER_COLUMNS})\nLANGUAGE sql STABLE AS {BODY_QUOTE}\n\
             SELECT e.\"id\", e.\"txid\", e.\"captured_at\", {schema_literal}::text, 'signals'::text, 'signal'::text,\n    \
             json_build_array(e.\"id\"), NULL::json, NULL::json, e.\"name\",\n    \
             CASE WHEN \"rows\" THEN e.\"payload\" END, e.\"deliver_at\"\n  \
             FROM (",
            reader = qualified(SCHEMA, SIGNAL_READER),
            schema_literal = literal(SCHEMA),
        ),
    );
    for (s, table) in slots.iter().enumerate() {
        if s > 0 {
            sql.push_str("\n    UNION ALL ");
        }
        push_fmt(sql, format_args!("SELECT * FROM {table}"));
    }
    push_fmt(
        sql,
        format_args!(
            ") e\n  WHERE {filter}\n  ORDER BY e.\"id\" LIMIT \"limit\"\n{BODY_QUOTE};\n\
             INSERT INTO {captures} (\"name\", \"reader\", \"slots\") VALUES ({key}, {reader}, {slots})\n\
             ON CONFLICT (\"name\") DO NOTHING;\n",
            filter = window_filter("e"),
            captures = qualified(SCHEMA, CAPTURES_TABLE),
            key = literal(SIGNALS_CAPTURE),
            reader = literal(&qualified(SCHEMA, SIGNAL_READER)),
            slots = text_array(&slots),
        ),
    );
}

/// Drops the signals' functions, reader and tables, waiting signals included.
pub(super) fn down(sql: &mut String) {
    let schema = ident(SCHEMA);
    push_fmt(
        sql,
        format_args!(
            "\
DROP FUNCTION IF EXISTS {schema}.\"signal\"(text, json, timestamptz);
DROP FUNCTION IF EXISTS {schema}.\"cancel_signal\"(bigint);
DROP FUNCTION IF EXISTS {schema}.\"release_signals\"(int4);
DROP FUNCTION IF EXISTS {signal_reader}({READER_PARAMETERS});
",
            signal_reader = qualified(SCHEMA, SIGNAL_READER),
        ),
    );
    for table in signal_slots() {
        push_fmt(sql, format_args!("DROP TABLE IF EXISTS {table};\n"));
    }
    push_fmt(
        sql,
        format_args!(
            "DROP TABLE IF EXISTS {};\n",
            qualified(SCHEMA, DELAYED_TABLE)
        ),
    );
}

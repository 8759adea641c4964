//! What every captured table shares: the schema, the id sequence, the
//! watcher's cursor, the registry of captured tables, the backfills, the
//! payloads and held events, the origin, and the helper functions.

use super::{NO_SIGNAL, READER_COLUMNS, READER_PARAMETERS, TEXT_COLUMNS};
use crate::sql::catalog::{
    ACTIVITY_TABLE, BACKFILLS_TABLE, BODY_QUOTE, CAPTURES_TABLE, CURSOR_TABLE, EVENT_ID_SEQUENCE,
    HELD_TABLE, ORIGIN_TABLE, PAYLOADS_TABLE, SCHEMA,
};
use crate::sql::quote::{ident, literal, push_fmt, qualified};

/// The schema and the event id sequence.
pub(super) fn up_schema(sql: &mut String) {
    push_fmt(
        sql,
        format_args!(
            "\
CREATE SCHEMA IF NOT EXISTS {schema};

-- Event ids, shared by every captured table. One value at a time (CACHE 1):
-- a later change of a row always gets a higher id than an earlier one.
CREATE SEQUENCE IF NOT EXISTS {sequence} CACHE 1;
",
            schema = ident(SCHEMA),
            sequence = qualified(SCHEMA, EVENT_ID_SEQUENCE),
        ),
    );
}

/// The watcher's cursor and the registry of captured tables.
pub(super) fn up_registry(sql: &mut String) {
    push_fmt(
        sql,
        format_args!(
            "
-- Where the watcher is: every event of a transaction visible in \"read\" was
-- sent; of a window read in part, those visible in \"window\" up to \"after\".
CREATE TABLE IF NOT EXISTS {cursor} (
    \"read\"   pg_snapshot NOT NULL,
    \"window\" pg_snapshot,
    \"after\"  bigint NOT NULL DEFAULT 0
);
CREATE UNIQUE INDEX IF NOT EXISTS \"cursor_one_row\" ON {cursor} ((true));
INSERT INTO {cursor} (\"read\") VALUES ('1:1:') ON CONFLICT DO NOTHING;

-- One row per captured table (and one for dawdle 0.1's event table while
-- it holds events): the function reading its events, and its event tables;
-- for a table captured from the WAL, its columns as the watcher reads them.
CREATE TABLE IF NOT EXISTS {captures} (
    \"name\"     text PRIMARY KEY,
    \"reader\"   text NOT NULL,
    \"slots\"    text[] NOT NULL,
    \"until\"    xid8,
    \"snapshot\" text,
    \"target\"   text
);
-- Columns added since the first version, without a lock when present.
DO {BODY_QUOTE}
BEGIN
  IF (SELECT count(*) FROM pg_catalog.pg_attribute a
      WHERE a.attrelid = {captures_literal}::regclass AND NOT a.attisdropped
        AND a.attname IN ('snapshot', 'target', 'type_name', 'columns', 'install', 'prepare', 'functions', 'wal',
                          'encode')) < 9 THEN
    ALTER TABLE {captures} ADD COLUMN IF NOT EXISTS \"snapshot\" text, ADD COLUMN IF NOT EXISTS \"target\" text,
      ADD COLUMN IF NOT EXISTS \"type_name\" text, ADD COLUMN IF NOT EXISTS \"columns\" text[],
      ADD COLUMN IF NOT EXISTS \"install\" text, ADD COLUMN IF NOT EXISTS \"prepare\" text,
      ADD COLUMN IF NOT EXISTS \"functions\" text[], ADD COLUMN IF NOT EXISTS \"wal\" jsonb,
      ADD COLUMN IF NOT EXISTS \"encode\" text;
  END IF;
END
{BODY_QUOTE};
",
            cursor = qualified(SCHEMA, CURSOR_TABLE),
            captures = qualified(SCHEMA, CAPTURES_TABLE),
            captures_literal = literal(&qualified(SCHEMA, CAPTURES_TABLE)),
        ),
    );
}

/// The backfills, the payloads and held events, the origin, and the helper
/// functions.
pub(super) fn up_state(sql: &mut String) {
    push_fmt(
        sql,
        format_args!(
            "
-- The backfill of each table (the key of dawdle.captures): the rows it
-- selects, the key of the last row sent (each key column's text), and
-- how far it got: the rows it selects (counted or estimated when a run
-- began), whether an operator paused or cancelled it (a cancelled one is
-- finished too), what its rate is measured from (when a run began or it
-- was resumed, and the rows read then), and the run working on it (a run
-- started later takes it over).
CREATE TABLE IF NOT EXISTS {backfills} (
    \"name\"           text PRIMARY KEY,
    \"filter\"         text,
    \"after\"          json,
    \"rows_read\"      bigint NOT NULL DEFAULT 0,
    \"started_at\"     timestamptz NOT NULL DEFAULT now(),
    \"updated_at\"     timestamptz NOT NULL DEFAULT now(),
    \"finished_at\"    timestamptz,
    \"rows_total\"     bigint,
    \"paused_at\"      timestamptz,
    \"cancelled_at\"   timestamptz,
    \"resumed_at\"     timestamptz,
    \"rows_at_resume\" bigint NOT NULL DEFAULT 0,
    \"run_id\"         uuid
);
-- Columns added since the first version (altered only when one lacks: a
-- re-run takes no lock).
DO {BODY_QUOTE}
BEGIN
  IF (SELECT count(*) FROM pg_catalog.pg_attribute a
      WHERE a.attrelid = {backfills_literal}::regclass AND NOT a.attisdropped
        AND a.attname IN ('rows_total', 'paused_at', 'cancelled_at', 'resumed_at', 'rows_at_resume', 'run_id')) < 6 THEN
    ALTER TABLE {backfills} ADD COLUMN IF NOT EXISTS \"rows_total\" bigint,
      ADD COLUMN IF NOT EXISTS \"paused_at\" timestamptz, ADD COLUMN IF NOT EXISTS \"cancelled_at\" timestamptz,
      ADD COLUMN IF NOT EXISTS \"resumed_at\" timestamptz,
      ADD COLUMN IF NOT EXISTS \"rows_at_resume\" bigint NOT NULL DEFAULT 0,
      ADD COLUMN IF NOT EXISTS \"run_id\" uuid;
  END IF;
END
{BODY_QUOTE};

-- Rows of events too large for one queue message, kept as long as their
-- message can still be delivered: until handled, or until expires_at
-- (NULL: until a listener, or the discard of a dead letter, deletes them).
-- An event sent to several routes keeps its rows until the listener of
-- each route in routes removed its name (NULL: one route).
CREATE TABLE IF NOT EXISTS {payloads} (
    \"id\"         bigint PRIMARY KEY,
    \"old\"        json,
    \"new\"        json,
    \"expires_at\" timestamptz,
    \"routes\"     text[]
);
-- Installations made earlier have expires_at NOT NULL, and no routes
-- (altered only then: a re-run takes no lock).
DO {BODY_QUOTE}
BEGIN
  IF (SELECT a.attnotnull FROM pg_catalog.pg_attribute a
      WHERE a.attrelid = {payloads_literal}::regclass AND a.attname = 'expires_at') THEN
    ALTER TABLE {payloads} ALTER COLUMN \"expires_at\" DROP NOT NULL;
  END IF;
  IF NOT EXISTS (SELECT FROM pg_catalog.pg_attribute a
      WHERE a.attrelid = {payloads_literal}::regclass AND a.attname = 'routes'
        AND NOT a.attisdropped) THEN
    ALTER TABLE {payloads} ADD COLUMN \"routes\" text[];
  END IF;
END
{BODY_QUOTE};

-- Events a standard queue refused even by reference (their key alone is
-- larger than a message), per route, with the message and the reason.
CREATE TABLE IF NOT EXISTS {held} (
    \"id\"      bigint NOT NULL,
    \"route\"   text NOT NULL DEFAULT 'default',
    \"message\" text NOT NULL,
    \"reason\"  text NOT NULL,
    \"held_at\" timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (\"id\", \"route\")
);
-- Installations made earlier key it by the event alone (altered only then:
-- a re-run takes no lock).
DO {BODY_QUOTE}
BEGIN
  IF NOT EXISTS (SELECT FROM pg_catalog.pg_attribute a
      WHERE a.attrelid = {held_literal}::regclass AND a.attname = 'route'
        AND NOT a.attisdropped) THEN
    ALTER TABLE {held} ADD COLUMN \"route\" text NOT NULL DEFAULT 'default',
      DROP CONSTRAINT \"held_pkey\", ADD PRIMARY KEY (\"id\", \"route\");
  END IF;
END
{BODY_QUOTE};

-- Events the watcher read, per minute, table and action (a signal: table
-- signals, action signal), kept for a day: what the console draws.
CREATE TABLE IF NOT EXISTS {activity} (
    \"minute\"      timestamptz NOT NULL,
    \"schema_name\" text NOT NULL,
    \"table_name\"  text NOT NULL,
    \"action\"      text NOT NULL,
    \"events\"      bigint NOT NULL,
    PRIMARY KEY (\"minute\", \"schema_name\", \"table_name\", \"action\")
);

-- A random id of this database, which tells its events apart from other
-- databases' on a shared queue.
CREATE TABLE IF NOT EXISTS {origin} (
    \"source\" uuid NOT NULL DEFAULT gen_random_uuid()
);
CREATE UNIQUE INDEX IF NOT EXISTS \"origin_one_row\" ON {origin} ((true));
INSERT INTO {origin} DEFAULT VALUES ON CONFLICT DO NOTHING;

-- Gives an event table the columns, in the types, of a probe view: after an
-- ALTER TABLE of a captured column, the copies of waiting events are
-- converted through their text.
CREATE OR REPLACE FUNCTION {schema}.\"converge\"(\"target\" regclass, \"probe\" regclass) RETURNS void
LANGUAGE plpgsql AS {BODY_QUOTE}
DECLARE
  c record;
BEGIN
  FOR c IN
    SELECT p.attname, pg_catalog.format_type(p.atttypid, p.atttypmod) AS type, t.attname IS NULL AS missing
    FROM pg_catalog.pg_attribute p
    LEFT JOIN pg_catalog.pg_attribute t ON t.attrelid = \"target\" AND t.attname = p.attname AND NOT t.attisdropped
    WHERE p.attrelid = \"probe\" AND p.attnum > 0 AND NOT p.attisdropped
      AND (t.attname IS NULL OR (t.atttypid, t.atttypmod) <> (p.atttypid, p.atttypmod))
  LOOP
    IF c.missing THEN
      EXECUTE format('ALTER TABLE %s ADD COLUMN %I %s', \"target\", c.attname, c.type);
    ELSE
      EXECUTE format('ALTER TABLE %s ALTER COLUMN %I TYPE %s USING %I::text::%s',
                     \"target\", c.attname, c.type, c.attname, c.type);
    END IF;
  END LOOP;
  FOR c IN
    SELECT t.attname FROM pg_catalog.pg_attribute t
    WHERE t.attrelid = \"target\" AND t.attnum > 0 AND NOT t.attisdropped
      AND NOT EXISTS (SELECT FROM pg_catalog.pg_attribute p
                      WHERE p.attrelid = \"probe\" AND p.attname = t.attname AND NOT p.attisdropped)
  LOOP
    EXECUTE format('ALTER TABLE %s DROP COLUMN %I', \"target\", c.attname);
  END LOOP;
END
{BODY_QUOTE};

-- The types of an event table's columns `names`, in that order, as oids
-- joined by commas: what the watcher decodes a text reader's rows with.
CREATE OR REPLACE FUNCTION {schema}.\"stored_types\"(\"slot\" regclass, \"names\" text[]) RETURNS text
LANGUAGE sql STABLE AS {BODY_QUOTE}
SELECT string_agg(a.atttypid::text, ',' ORDER BY array_position(\"names\", a.attname::text))
FROM pg_catalog.pg_attribute a
WHERE a.attrelid = \"slot\" AND a.attname = ANY (\"names\") AND NOT a.attisdropped
{BODY_QUOTE};

-- (Re)writes {schema}.\"window\", which reads the events of every captured
-- table, from the registry.
CREATE OR REPLACE FUNCTION {schema}.\"rebuild\"() RETURNS void
LANGUAGE plpgsql AS {BODY_QUOTE}
DECLARE
  body text;
BEGIN
  SELECT string_agg(format('SELECT * FROM %s($1, $2, $3, $4, $5)', \"reader\"), ' UNION ALL ' ORDER BY \"name\")
  INTO body FROM {captures};
  -- A SQL function: the planner inlines it into the watcher's query.
  EXECUTE format('CREATE OR REPLACE FUNCTION {schema}.\"window\"({READER_PARAMETERS}) '
                 'RETURNS TABLE ({READER_COLUMNS}) LANGUAGE sql STABLE AS %L',
                 coalesce(body,
                   'SELECT NULL::bigint, NULL::xid8, NULL::timestamptz, NULL::text, NULL::text, '
                   'NULL::text, NULL::json, NULL::json, NULL::json, {NO_SIGNAL} WHERE false'));
  -- The same events with the rows' columns as text, which the watcher
  -- encodes: from each table's text reader, or where there is none (signals,
  -- tables of an earlier version) as JSON built here.
  SELECT string_agg(CASE WHEN \"encode\" IS NULL
                      THEN format('SELECT *, NULL::text, NULL::text, NULL::integer FROM %s($1, $2, $3, $4, $5)', \"reader\")
                      ELSE format('SELECT * FROM %s($1, $2, $3, $4, $5)', \"encode\"::jsonb->>'reader') END,
                    ' UNION ALL ' ORDER BY \"name\")
  INTO body FROM {captures};
  EXECUTE format('CREATE OR REPLACE FUNCTION {schema}.\"window_text\"({READER_PARAMETERS}) '
                 'RETURNS TABLE ({READER_COLUMNS}, {TEXT_COLUMNS}) LANGUAGE sql STABLE AS %L',
                 coalesce(body,
                   'SELECT NULL::bigint, NULL::xid8, NULL::timestamptz, NULL::text, NULL::text, '
                   'NULL::text, NULL::json, NULL::json, NULL::json, {NO_SIGNAL}, '
                   'NULL::text, NULL::text, NULL::integer WHERE false'));
END
{BODY_QUOTE};
",
            schema = ident(SCHEMA),
            captures = qualified(SCHEMA, CAPTURES_TABLE),
            backfills = qualified(SCHEMA, BACKFILLS_TABLE),
            backfills_literal = literal(&qualified(SCHEMA, BACKFILLS_TABLE)),
            payloads = qualified(SCHEMA, PAYLOADS_TABLE),
            payloads_literal = literal(&qualified(SCHEMA, PAYLOADS_TABLE)),
            held = qualified(SCHEMA, HELD_TABLE),
            held_literal = literal(&qualified(SCHEMA, HELD_TABLE)),
            activity = qualified(SCHEMA, ACTIVITY_TABLE),
            origin = qualified(SCHEMA, ORIGIN_TABLE),
        ),
    );
}

/// Drops the helper functions, once nothing calls them.
pub(super) fn down_functions(sql: &mut String) {
    push_fmt(
        sql,
        format_args!(
            "\
DROP FUNCTION IF EXISTS {schema}.\"rebuild\"();
DROP FUNCTION IF EXISTS {schema}.\"converge\"(regclass, regclass);
DROP FUNCTION IF EXISTS {schema}.\"stored_types\"(regclass, text[]);
",
            schema = ident(SCHEMA),
        ),
    );
}

/// Drops the backfills, the registry and the cursor.
pub(super) fn down_registry(sql: &mut String) {
    push_fmt(
        sql,
        format_args!(
            "\
DROP TABLE IF EXISTS {backfills};
DROP TABLE IF EXISTS {captures};
DROP TABLE IF EXISTS {cursor};
",
            backfills = qualified(SCHEMA, BACKFILLS_TABLE),
            captures = qualified(SCHEMA, CAPTURES_TABLE),
            cursor = qualified(SCHEMA, CURSOR_TABLE),
        ),
    );
}

/// Drops the sequence, the origin, the payloads and held events, and the
/// schema, last.
pub(super) fn down_schema(sql: &mut String) {
    push_fmt(
        sql,
        format_args!(
            "\
DROP SEQUENCE IF EXISTS {sequence};
DROP TABLE IF EXISTS {origin};
DROP TABLE IF EXISTS {payloads};
DROP TABLE IF EXISTS {held};
DROP TABLE IF EXISTS {activity};
DROP SCHEMA IF EXISTS {schema};
",
            sequence = qualified(SCHEMA, EVENT_ID_SEQUENCE),
            origin = qualified(SCHEMA, ORIGIN_TABLE),
            payloads = qualified(SCHEMA, PAYLOADS_TABLE),
            held = qualified(SCHEMA, HELD_TABLE),
            activity = qualified(SCHEMA, ACTIVITY_TABLE),
            schema = ident(SCHEMA),
        ),
    );
}

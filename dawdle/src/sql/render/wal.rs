//! Capture from the write-ahead log: instead of triggers, per table
//! `REPLICA IDENTITY FULL` (on it and every table below it) and a place in
//! the publication `dawdle`, and the registry's description of its columns
//! for the watcher; the functions that make the replication slot and tell
//! what is not ready; down drops the publication and the slot.

use crate::sql::catalog::{BODY_QUOTE, CAPTURES_TABLE, SCHEMA};
use crate::sql::model::CheckedTable;
use crate::sql::quote::{ident, literal, push_fmt, qualified};
use crate::table::{Action, Encoding};

/// The publication every WAL-captured table is in.
pub(crate) const PUBLICATION: &str = "dawdle";

/// How the watcher names an encoding in the registry's `wal` column.
pub(crate) const fn encoding_name(encoding: Encoding) -> &'static str {
    match encoding {
        Encoding::Json => "json",
        Encoding::Text => "text",
        Encoding::TextArray => "text_array",
        Encoding::Float => "float",
        Encoding::Instant => "instant",
    }
}

/// What the watcher needs of a table to build its events from the WAL:
/// its captured columns (name, encoding, part of the key), actions, and
/// whether unchanged rows give events.
pub(super) fn spec(table: &CheckedTable) -> String {
    let columns: Vec<serde_json::Value> = table
        .column_names
        .iter()
        .zip(&table.columns)
        .map(|(name, column)| {
            serde_json::json!({
                "name": name,
                "encoding": encoding_name(column.encoding),
                "key": column.primary_key,
            })
        })
        .collect();
    let actions: Vec<&str> = table.actions.iter().map(|a| a.as_str()).collect();
    serde_json::json!({
        "columns": columns,
        "actions": actions,
        "unchanged": table.capture_unchanged,
    })
    .to_string()
}

/// Inside a table's install function (`rel`, its `pg_class` row `c`):
/// readies a table (or one below it) for capture from the WAL, beside the
/// triggers refusing a TRUNCATE of it alone: sets `REPLICA IDENTITY FULL`
/// on tables that hold rows, and puts the table in the publication unless
/// a table above it is there for it (a partitioned one publishes its
/// partitions as itself). Nothing is locked when nothing is to change.
pub(super) fn ready(sql: &mut String, table: &CheckedTable) {
    push_fmt(
        sql,
        format_args!(
            "\
  -- Updates and deletes carry the whole old row (for a type that captures
  -- neither, the identity stays as it is: a whole old row costs WAL).
  IF {needs_old} AND c.relkind IN ('r', 'p') AND c.relreplident <> 'f' THEN
    PERFORM {schema}.\"lock\"(\"rel\");
    EXECUTE format('ALTER TABLE %s REPLICA IDENTITY FULL', \"rel\");
  END IF;
  IF NOT c.relispartition AND NOT EXISTS (
      SELECT FROM pg_catalog.pg_publication_rel r JOIN pg_catalog.pg_publication p ON p.oid = r.prpubid
      WHERE p.pubname = {publication_literal} AND r.prrelid = \"rel\") THEN
    EXECUTE format('ALTER PUBLICATION {publication} ADD TABLE ONLY %s', \"rel\");
  END IF;
",
            schema = ident(SCHEMA),
            publication = ident(PUBLICATION),
            publication_literal = literal(PUBLICATION),
            needs_old = needs_old(table),
        ),
    );
}

/// The tables captured from the WAL and every table below them
/// (partitions, inheritance children), as `tree(oid, old)`: `old` when the
/// captured table's events carry old rows.
fn tree() -> String {
    format!(
        "WITH RECURSIVE tree(oid, old) AS (\
         SELECT to_regclass(c.\"target\")::oid, c.\"wal\" -> 'actions' ?| ARRAY['update', 'delete'] \
         FROM {captures} c WHERE c.\"wal\" IS NOT NULL AND to_regclass(c.\"target\") IS NOT NULL \
         UNION ALL \
         SELECT i.inhrelid, tree.old FROM pg_catalog.pg_inherits i JOIN tree ON i.inhparent = tree.oid)",
        captures = qualified(SCHEMA, CAPTURES_TABLE),
    )
}

/// Whether the table's events carry old rows: it captures updates or
/// deletes.
fn needs_old(table: &CheckedTable) -> bool {
    table
        .actions
        .iter()
        .any(|a| matches!(a, Action::Update | Action::Delete))
}

/// The publication, made before the tables are readied; the functions
/// naming and making the slot, and listing what is not ready.
pub(super) fn up_publication(sql: &mut String) {
    push_fmt(
        sql,
        format_args!(
            "
-- Capture from the WAL: the publication of the captured tables (their
-- partitions published as their root), read by the watcher through a
-- logical replication slot with pgoutput.
DO {BODY_QUOTE}
BEGIN
  IF NOT EXISTS (SELECT FROM pg_catalog.pg_publication WHERE pubname = {publication_literal}) THEN
    CREATE PUBLICATION {publication} WITH (publish_via_partition_root = true);
  ELSIF NOT (SELECT pubviaroot FROM pg_catalog.pg_publication WHERE pubname = {publication_literal}) THEN
    ALTER PUBLICATION {publication} SET (publish_via_partition_root = true);
  END IF;
END
{BODY_QUOTE};

-- The replication slot of this database (slots are the cluster's).
CREATE OR REPLACE FUNCTION {schema}.\"slot_name\"() RETURNS text
LANGUAGE sql STABLE AS {BODY_QUOTE}
SELECT 'dawdle_' || d.oid FROM pg_catalog.pg_database d WHERE d.datname = current_database()
{BODY_QUOTE};

-- Makes the slot unless it exists, and says whether it did. Changes are
-- captured from then on: run it once up committed, outside a transaction
-- that wrote (dawdle-sql apply does; the watcher does at start).
CREATE OR REPLACE FUNCTION {schema}.\"ensure_slot\"() RETURNS boolean
LANGUAGE plpgsql AS {BODY_QUOTE}
DECLARE
  name text := {schema}.\"slot_name\"();
BEGIN
  IF EXISTS (SELECT FROM pg_catalog.pg_replication_slots WHERE slot_name = name) THEN
    RETURN false;
  END IF;
  PERFORM pg_catalog.pg_create_logical_replication_slot(name, 'pgoutput');
  RETURN true;
END
{BODY_QUOTE};

-- The tables of a WAL-captured tree that would lose changes or old rows:
-- without REPLICA IDENTITY FULL (made after up without the event
-- trigger), or outside the publication. The watcher refuses to start
-- while there are any, and says which.
CREATE OR REPLACE FUNCTION {schema}.\"unpublished\"() RETURNS text[]
LANGUAGE sql STABLE AS {BODY_QUOTE}
{tree}
SELECT coalesce(array_agg(DISTINCT r.problem ORDER BY r.problem), '{{}}') FROM (
  SELECT format('%s (replica identity is not full)', t.oid::regclass) AS problem
  FROM tree t JOIN pg_catalog.pg_class k ON k.oid = t.oid
  WHERE t.old AND k.relkind = 'r' AND k.relreplident <> 'f'
  UNION ALL
  SELECT format('%s (not in the publication {publication_text})', t.oid::regclass)
  FROM tree t JOIN pg_catalog.pg_class k ON k.oid = t.oid
  WHERE NOT k.relispartition AND NOT EXISTS (
    SELECT FROM pg_catalog.pg_publication_rel r JOIN pg_catalog.pg_publication p ON p.oid = r.prpubid
    WHERE p.pubname = {publication_literal} AND r.prrelid = t.oid)) r
{BODY_QUOTE};
",
            schema = ident(SCHEMA),
            publication = ident(PUBLICATION),
            publication_literal = literal(PUBLICATION),
            publication_text = PUBLICATION,
            tree = tree(),
        ),
    );
}

/// After the tables were readied: tables no longer below a WAL-captured
/// one leave the publication.
pub(super) fn up_prune(sql: &mut String) {
    push_fmt(
        sql,
        format_args!(
            "
DO {BODY_QUOTE}
DECLARE
  t record;
BEGIN
  FOR t IN
    {tree}
    SELECT r.prrelid::regclass AS rel FROM pg_catalog.pg_publication_rel r
    JOIN pg_catalog.pg_publication p ON p.oid = r.prpubid
    WHERE p.pubname = {publication_literal} AND r.prrelid NOT IN (SELECT oid FROM tree)
  LOOP
    EXECUTE format('ALTER PUBLICATION {publication} DROP TABLE %s', t.rel);
  END LOOP;
END
{BODY_QUOTE};
",
            tree = tree(),
            publication = ident(PUBLICATION),
            publication_literal = literal(PUBLICATION),
        ),
    );
}

/// Before the registry goes: the tables captured from the WAL get back
/// their default replica identity, then the publication and the slot go.
pub(super) fn down(sql: &mut String) {
    push_fmt(
        sql,
        format_args!(
            "
-- Capture from the WAL, if up made it: replica identities, the
-- publication, the replication slot (which must not be in use).
DO {BODY_QUOTE}
DECLARE
  t record;
BEGIN
  IF to_regclass({captures_literal}) IS NOT NULL AND EXISTS (
      SELECT FROM pg_catalog.pg_attribute a WHERE a.attrelid = {captures_literal}::regclass
        AND a.attname = 'wal' AND NOT a.attisdropped) THEN
    FOR t IN EXECUTE $q$
      {tree}
      SELECT k.oid::regclass AS rel FROM tree JOIN pg_catalog.pg_class k ON k.oid = tree.oid
      WHERE k.relreplident = 'f'$q$
    LOOP
      EXECUTE format('ALTER TABLE %s REPLICA IDENTITY DEFAULT', t.rel);
    END LOOP;
  END IF;
  IF EXISTS (SELECT FROM pg_catalog.pg_publication WHERE pubname = {publication_literal}) THEN
    DROP PUBLICATION {publication};
  END IF;
  PERFORM pg_catalog.pg_drop_replication_slot(s.slot_name) FROM pg_catalog.pg_replication_slots s
  WHERE s.slot_name = (SELECT 'dawdle_' || d.oid FROM pg_catalog.pg_database d WHERE d.datname = current_database());
END
{BODY_QUOTE};
DROP FUNCTION IF EXISTS {schema}.\"unpublished\"();
DROP FUNCTION IF EXISTS {schema}.\"ensure_slot\"();
DROP FUNCTION IF EXISTS {schema}.\"slot_name\"();
",
            schema = ident(SCHEMA),
            tree = tree(),
            captures_literal = literal(&qualified(SCHEMA, CAPTURES_TABLE)),
            publication = ident(PUBLICATION),
            publication_literal = literal(PUBLICATION),
        ),
    );
}

//! What keeps capture whole however the captured tables are written and
//! changed: the mark each statement leaves for the order of nested ones,
//! the preparation of event tables without locks when nothing changes, the
//! triggers on partitions and inheritance children (and a guard on
//! partitions made later), and the event trigger that installs them on new
//! children and refuses schema changes that would stop every write.

use crate::sql::catalog::{BODY_QUOTE, CAPTURES_TABLE, EVENT_ID_SEQUENCE, SCHEMA};
use crate::sql::quote::{ident, literal, push_fmt, qualified};

/// The event trigger's name (event triggers are named per database).
const EVENT_TRIGGER: &str = "dawdle_ddl";

/// The setting that turns the event trigger off while up (or the event
/// trigger itself) changes dawdle's own objects.
const QUIET: &str = "dawdle.ddl";

/// Turns the event trigger off for the rest of the session's migration.
pub(super) fn up_quiet(sql: &mut String) {
    push_fmt(
        sql,
        format_args!(
            "-- The event trigger (below) leaves this migration's own changes alone.\n\
             SELECT pg_catalog.set_config({}, 'off', false);\n",
            literal(QUIET)
        ),
    );
}

/// The functions every captured table's triggers and up use.
pub(super) fn up(sql: &mut String) {
    push_fmt(
        sql,
        format_args!(
            "
-- Before each statement on a captured table: marks what the table's clock
-- (the last event id this transaction's captures of it took) read when it
-- began, at its trigger depth; the argument names the table. A statement
-- whose mark and clock differ at its end had others of the table captured
-- while it ran. While the clock is empty (the transaction's first
-- statements on the table) it writes nothing, which spares a one-statement
-- transaction a setting's write: a mark is only ever set from a set clock,
-- and a rollback to a savepoint undoes both, so a missing mark reads as
-- the empty clock it would hold.
CREATE OR REPLACE FUNCTION {schema}.\"enter\"() RETURNS trigger
LANGUAGE plpgsql AS {BODY_QUOTE}
DECLARE
  clock text := current_setting('dawdle.c_' || TG_ARGV[0], true);
  ignored text;
BEGIN
  IF clock <> '' THEN
    ignored := set_config('dawdle.m' || (pg_trigger_depth() - 1) || '_' || TG_ARGV[0], clock, true);
  END IF;
  RETURN NULL;
END
{BODY_QUOTE};

-- Before a TRUNCATE of a watched table that captures TRUNCATE: marks one
-- under way (the argument names the table), which the tables below it,
-- whose truncate triggers it fires too, let through.
CREATE OR REPLACE FUNCTION {schema}.\"truncating\"() RETURNS trigger
LANGUAGE plpgsql AS {BODY_QUOTE}
DECLARE
  ignored text;
BEGIN
  ignored := set_config('dawdle.t_' || TG_ARGV[0], 'on', true);
  RETURN NULL;
END
{BODY_QUOTE};

-- Before a TRUNCATE of a partition or child of such a table: refused,
-- unless it is part of the table's own. No event could say that only its
-- rows are gone (a TRUNCATE event is the whole table emptied).
CREATE OR REPLACE FUNCTION {schema}.\"truncate_below\"() RETURNS trigger
LANGUAGE plpgsql AS {BODY_QUOTE}
BEGIN
  IF coalesce(current_setting('dawdle.t_' || TG_ARGV[0], true), '') <> 'on' THEN
    RAISE EXCEPTION 'dawdle cannot capture a TRUNCATE of %.% alone: it captures a TRUNCATE of % as the whole table emptied',
      TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_ARGV[1]
      USING ERRCODE = 'object_not_in_prerequisite_state',
            HINT = 'DELETE its rows instead (each is captured), or TRUNCATE the whole table.';
  END IF;
  RETURN NULL;
END
{BODY_QUOTE};

-- Gives this transaction's events in an event table after id \"after\" new
-- ids, in the order PostgreSQL applied them: those of the statement ending
-- now (at trigger depth \"depth\") and of statements beside it in the same
-- command (writable CTEs, whose statement triggers fire in no useful order)
-- first, deletes before updates before inserts (a key is freed before it is
-- taken again); then those of statements run inside it (its rows'
-- triggers, cascades), in the order they were given.
-- Says how many it renumbered. It runs as its owner: a writer's role needs
-- no grant beyond INSERT on the event tables.
CREATE OR REPLACE FUNCTION {schema}.\"reorder\"(\"events\" text, \"after\" text, \"depth\" int4) RETURNS int8
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS {BODY_QUOTE}
DECLARE
  renumbered int8;
BEGIN
  -- Materialized: the new ids are taken once each, in the sorted order.
  EXECUTE format($q$
    WITH m AS MATERIALIZED (
      SELECT s.\"id\" AS \"old\", nextval({sequence}) AS \"new\"
      FROM (SELECT \"id\" FROM %1$s WHERE \"txid\" = pg_current_xact_id() AND \"id\" > $1
            ORDER BY \"depth\" IS DISTINCT FROM $2,
                     CASE WHEN \"depth\" = $2 THEN
                       CASE \"action\" WHEN 'delete' THEN 0 WHEN 'update' THEN 1 ELSE 2 END END,
                     \"id\") s)
    UPDATE %1$s e SET \"id\" = m.\"new\" FROM m
    WHERE e.\"txid\" = pg_current_xact_id() AND e.\"id\" = m.\"old\"$q$, \"events\")
  USING coalesce(nullif(\"after\", '')::int8, 0), \"depth\";
  GET DIAGNOSTICS renumbered = ROW_COUNT;
  RETURN renumbered;
END
{BODY_QUOTE};

-- Locks a captured table (or partition, or child) in the mode CREATE
-- TRIGGER takes, before up changes anything of its capture: writers lock
-- the table before the event tables, and so does up.
CREATE OR REPLACE FUNCTION {schema}.\"lock\"(\"rel\" regclass) RETURNS void
LANGUAGE plpgsql AS {BODY_QUOTE}
BEGIN
  EXECUTE format('LOCK TABLE %s IN SHARE ROW EXCLUSIVE MODE', \"rel\");
END
{BODY_QUOTE};

-- Makes an event table ready: made from the probe view if missing, its
-- columns in the probe's types, its defaults and index in place. When all
-- is in place it takes no lock; otherwise it locks the captured table first.
CREATE OR REPLACE FUNCTION {schema}.\"ready\"(\"events\" text, \"probe\" regclass, \"target\" text,
    \"index\" text, \"old_index\" text) RETURNS void
LANGUAGE plpgsql AS {BODY_QUOTE}
DECLARE
  t regclass := to_regclass(\"events\");
BEGIN
  IF t IS NOT NULL
     AND NOT EXISTS (SELECT FROM pg_catalog.pg_attribute p
                     LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = t AND a.attname = p.attname AND NOT a.attisdropped
                     WHERE p.attrelid = \"probe\" AND p.attnum > 0 AND NOT p.attisdropped
                       AND (a.attname IS NULL OR (a.atttypid, a.atttypmod) <> (p.atttypid, p.atttypmod)))
     AND NOT EXISTS (SELECT FROM pg_catalog.pg_attribute a
                     WHERE a.attrelid = t AND a.attnum > 0 AND NOT a.attisdropped
                       AND NOT EXISTS (SELECT FROM pg_catalog.pg_attribute p
                                       WHERE p.attrelid = \"probe\" AND p.attname = a.attname AND NOT p.attisdropped))
     AND (SELECT count(*) FROM pg_catalog.pg_attrdef d
          JOIN pg_catalog.pg_attribute a ON a.attrelid = d.adrelid AND a.attnum = d.adnum
          WHERE d.adrelid = t AND a.attname IN ('id', 'txid', 'captured_at', 'depth')) = 4
     AND to_regclass(format('%I.%I', {schema_literal}, \"index\")) IS NOT NULL
     AND to_regclass(format('%I.%I', {schema_literal}, \"old_index\")) IS NULL THEN
    RETURN;
  END IF;
  PERFORM {schema}.\"lock\"(\"target\"::regclass);
  IF t IS NULL THEN
    EXECUTE format('CREATE TABLE %s AS SELECT * FROM %s WITH NO DATA', \"events\", \"probe\");
    t := to_regclass(\"events\");
  END IF;
  PERFORM {schema}.\"converge\"(t, \"probe\");
  EXECUTE format('ALTER TABLE %s ALTER \"id\" SET DEFAULT nextval(%L), ALTER \"id\" SET NOT NULL, '
                 'ALTER \"txid\" SET DEFAULT pg_current_xact_id(), ALTER \"txid\" SET NOT NULL, '
                 'ALTER \"captured_at\" SET DEFAULT clock_timestamp(), ALTER \"captured_at\" SET NOT NULL, '
                 'ALTER \"depth\" SET DEFAULT pg_trigger_depth(), ALTER \"action\" SET NOT NULL',
                 t, {sequence});
  IF to_regclass(format('%I.%I', {schema_literal}, \"index\")) IS NULL THEN
    EXECUTE format('CREATE INDEX %I ON %s (\"txid\", \"id\")', \"index\", t);
  END IF;
  IF to_regclass(format('%I.%I', {schema_literal}, \"old_index\")) IS NOT NULL THEN
    EXECUTE format('DROP INDEX %I.%I', {schema_literal}, \"old_index\");
  END IF;
END
{BODY_QUOTE};

-- On a partition of a captured table that has none of its triggers (made
-- after up, without the event trigger): refuses the write, which would
-- otherwise not be captured.
CREATE OR REPLACE FUNCTION {schema}.\"guard\"() RETURNS trigger
LANGUAGE plpgsql AS {BODY_QUOTE}
BEGIN
  RAISE EXCEPTION 'dawdle cannot capture this write to %.%: it is a partition of a captured table, made after dawdle''s up migration',
    TG_TABLE_SCHEMA, TG_TABLE_NAME
    USING ERRCODE = 'object_not_in_prerequisite_state',
          HINT = 'Run the up migration again (dawdle-sql apply) to capture it. Applied by a role that may create '
                 'event triggers (a superuser), up installs one that captures new partitions by itself.';
END
{BODY_QUOTE};

-- Puts each captured table's triggers on it and on every partition and
-- inheritance child below it, and takes them off tables no longer below a
-- captured one (detached, or no longer inheriting).
CREATE OR REPLACE FUNCTION {schema}.\"sync\"() RETURNS void
LANGUAGE plpgsql AS {BODY_QUOTE}
DECLARE
  c record;
  r regclass;
  captured oid[] := '{{}}';
  t record;
BEGIN
  FOR c IN SELECT \"install\", \"target\" FROM {captures}
           WHERE \"install\" IS NOT NULL AND to_regclass(\"target\") IS NOT NULL ORDER BY \"name\" LOOP
    FOR r IN WITH RECURSIVE tree(oid, level) AS (
               SELECT to_regclass(c.\"target\")::oid, 0
               UNION ALL
               SELECT i.inhrelid, tree.level + 1 FROM pg_catalog.pg_inherits i JOIN tree ON i.inhparent = tree.oid)
             SELECT tree.oid::regclass FROM tree ORDER BY tree.level, tree.oid LOOP
      EXECUTE format('SELECT %s(%L)', c.\"install\", r);
      captured := captured || r::oid;
    END LOOP;
  END LOOP;
  FOR t IN SELECT g.tgrelid::regclass AS rel, g.tgname FROM pg_catalog.pg_trigger g
           JOIN pg_catalog.pg_proc p ON p.oid = g.tgfoid
           JOIN pg_catalog.pg_namespace s ON s.oid = p.pronamespace
           WHERE s.nspname = {schema_literal} AND g.tgparentid = 0 AND g.tgname LIKE 'dawdle\\_%'
             AND g.tgrelid <> ALL (captured) LOOP
    PERFORM {schema}.\"lock\"(t.rel);
    EXECUTE format('DROP TRIGGER %I ON %s', t.tgname, t.rel);
  END LOOP;
END
{BODY_QUOTE};

-- The tables below a captured one (partitions, inheritance children) that
-- lack its triggers: made after up without the event trigger (partitions
-- then refuse writes; inheritance children would lose them). The watcher
-- refuses to start while there are any, and says which.
CREATE OR REPLACE FUNCTION {schema}.\"uncaptured\"() RETURNS text[]
LANGUAGE sql STABLE AS {BODY_QUOTE}
WITH RECURSIVE tree(oid, function) AS (
  SELECT to_regclass(c.\"target\")::oid, to_regprocedure(c.\"functions\"[1] || '()')
  FROM {captures} c WHERE c.\"functions\" IS NOT NULL AND to_regclass(c.\"target\") IS NOT NULL
  UNION ALL
  SELECT i.inhrelid, tree.function FROM pg_catalog.pg_inherits i JOIN tree ON i.inhparent = tree.oid)
SELECT coalesce(array_agg(tree.oid::regclass::text ORDER BY tree.oid::regclass::text), '{{}}')
FROM tree
WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_trigger g
                  WHERE g.tgrelid = tree.oid AND g.tgfoid = tree.function AND g.tgparentid = 0)
  -- A partition whose guard is on refuses writes instead: nothing is lost.
  AND NOT EXISTS (SELECT FROM pg_catalog.pg_trigger g
                  WHERE g.tgrelid = tree.oid AND g.tgname = 'dawdle_guard' AND g.tgenabled <> 'D')
{BODY_QUOTE};

-- The event trigger's function: after CREATE TABLE or ALTER TABLE, refuses a
-- change that renames or drops a captured column (or renames or moves a
-- captured table), which would make every write to it fail; converges the
-- event tables of a table whose columns were retyped; and installs the
-- triggers on new partitions and children. It runs as its owner, so that
-- any role's DDL may call it.
CREATE OR REPLACE FUNCTION {schema}.\"ddl\"() RETURNS event_trigger
LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS {BODY_QUOTE}
DECLARE
  was text := coalesce(current_setting({quiet}, true), '');
  touched oid[];
  c record;
  rel regclass;
  missing text;
BEGIN
  IF was = 'off' THEN
    RETURN;
  END IF;
  SELECT coalesce(array_agg(d.objid), '{{}}') INTO touched
  FROM pg_catalog.pg_event_trigger_ddl_commands() d WHERE d.classid = 'pg_catalog.pg_class'::regclass;
  PERFORM set_config({quiet}, 'off', true);
  FOR c IN SELECT * FROM {captures} WHERE \"install\" IS NOT NULL ORDER BY \"name\" LOOP
    rel := to_regclass(c.\"target\");
    IF rel IS NULL THEN
      -- Dropped with its triggers, or renamed or moved with them.
      IF EXISTS (SELECT FROM pg_catalog.pg_trigger g WHERE g.tgfoid = to_regprocedure(c.\"functions\"[1] || '()')) THEN
        RAISE EXCEPTION 'dawdle captures % (%): it cannot be renamed or moved to another schema', c.\"target\", c.\"type_name\"
          USING ERRCODE = 'dependent_objects_still_exist',
                HINT = 'Run dawdle''s down migration for it first, then rename it, change the Rust type and run up again.';
      END IF;
      CONTINUE;
    END IF;
    SELECT string_agg(format('%I', k.name), ', ' ORDER BY k.i) INTO missing
    FROM unnest(c.\"columns\") WITH ORDINALITY k(name, i)
    WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_attribute a
                      WHERE a.attrelid = rel AND a.attname = k.name AND a.attnum > 0 AND NOT a.attisdropped);
    IF missing IS NOT NULL THEN
      RAISE EXCEPTION 'dawdle captures column % of % (%): renaming or dropping it would make every write to the table fail',
        missing, c.\"target\", c.\"type_name\"
        USING ERRCODE = 'dependent_objects_still_exist',
              HINT = 'Change a captured column in steps (README, \"Changing a captured column\"): add the new column, '
                     'write both, capture the new one in the Rust type and run up, then drop the old one.';
    END IF;
    IF rel = ANY (touched) THEN
      EXECUTE format('SELECT %s()', c.\"prepare\");
    END IF;
  END LOOP;
  PERFORM {schema}.\"sync\"();
  PERFORM set_config({quiet}, was, true);
END
{BODY_QUOTE};
",
            schema = ident(SCHEMA),
            schema_literal = literal(SCHEMA),
            sequence = literal(&qualified(SCHEMA, EVENT_ID_SEQUENCE)),
            captures = qualified(SCHEMA, CAPTURES_TABLE),
            quiet = literal(QUIET),
        ),
    );
}

/// After every table's registration: puts the triggers on the tables and
/// their children, creates the event trigger where the role may, and
/// turns it on again.
pub(super) fn up_install(sql: &mut String) {
    push_fmt(
        sql,
        format_args!(
            "
SELECT {schema}.\"sync\"();

-- New partitions and children get the triggers as they are made, and a
-- change that would stop every write to a captured table is refused. Only a
-- superuser may create an event trigger: without one, a partition made
-- later refuses writes until up runs again (dawdle.guard).
DO {BODY_QUOTE}
BEGIN
  IF NOT EXISTS (SELECT FROM pg_catalog.pg_event_trigger WHERE evtname = {name_literal}) THEN
    CREATE EVENT TRIGGER {name} ON ddl_command_end
      WHEN TAG IN ('CREATE TABLE', 'ALTER TABLE', 'CREATE TABLE AS', 'SELECT INTO')
      EXECUTE FUNCTION {schema}.\"ddl\"();
  END IF;
EXCEPTION WHEN insufficient_privilege THEN
  RAISE WARNING 'dawdle: role % may not create event triggers, so dawdle''s is not installed', current_user
    USING DETAIL = 'Partitions made later refuse writes until up runs again, and renaming or dropping a '
                   'captured column makes writes to its table fail until up runs again.',
          HINT = 'Apply the up migration as a superuser once to install it.';
END
{BODY_QUOTE};
SELECT pg_catalog.set_config({quiet}, '', false);
",
            schema = ident(SCHEMA),
            name = ident(EVENT_TRIGGER),
            name_literal = literal(EVENT_TRIGGER),
            quiet = literal(QUIET),
        ),
    );
}

/// Drops the event trigger, first of all.
pub(super) fn down_event_trigger(sql: &mut String) {
    push_fmt(
        sql,
        format_args!("DROP EVENT TRIGGER IF EXISTS {};\n", ident(EVENT_TRIGGER)),
    );
}

/// Drops the functions, once no trigger calls them.
pub(super) fn down(sql: &mut String) {
    let schema = ident(SCHEMA);
    for (name, args) in [
        ("ddl", ""),
        ("uncaptured", ""),
        ("sync", ""),
        ("guard", ""),
        ("truncate_below", ""),
        ("truncating", ""),
        ("ready", "text, regclass, text, text, text"),
        ("lock", "regclass"),
        ("reorder", "text, text, int4"),
        ("enter", ""),
    ] {
        push_fmt(
            sql,
            format_args!(
                "DROP FUNCTION IF EXISTS {schema}.{}({args});\n",
                ident(name)
            ),
        );
    }
}

//! Per captured table: the function that writes a backfill's next batch as
//! snapshot events.

use super::{current_slot, ring, text_array};
use crate::sql::catalog::{BACKFILLS_TABLE, BODY_QUOTE, SCHEMA};
use crate::sql::model::{CheckedTable, Record};
use crate::sql::quote::{join, literal, push_fmt, qualified};

/// The function that writes one batch of a backfill of the table: the next
/// `batch` keys after the backfill's cursor (in `dawdle.backfills`), in key
/// order, that its filter selects, and for each the row as snapshot event
/// in the event table of the transaction, with the trigger's expressions.
///
/// The keys are chosen first, without locks, and the cursor moves to the
/// last of them: a row whose key a concurrent update moves can never move
/// the cursor past rows not read. The rows are then read `FOR SHARE`, so
/// that a change of one of them either committed before (its event comes
/// first, and the snapshot shows its result) or waits for the batch (its
/// event comes after the snapshot). A row whose key changed meanwhile is
/// not read by this batch: its update event carries it, and a key moved
/// forward is read again later.
pub(super) fn up(sql: &mut String, table: &CheckedTable) {
    let key_columns = |prefix: &str, suffix: &str| {
        let mut out = String::new();
        join(&mut out, table.primary_key(), ", ", |out, c| {
            push_fmt(out, format_args!("{prefix}{}{suffix}", c.name))
        });
        out
    };
    let order = key_columns("n.", "");
    let mut insert = format!(
        "INSERT INTO \0 (\"action\"{}) SELECT 'snapshot'",
        table
            .columns
            .iter()
            .map(|c| format!(", {}", c.stored.get(Record::New)))
            .collect::<String>()
    );
    for column in &table.columns {
        push_fmt(
            &mut insert,
            format_args!(", {}", column.value.get(Record::New)),
        );
    }
    push_fmt(&mut insert, format_args!(" FROM b n ORDER BY {order}"));
    // A format() string: `%` of overrides doubled, then three `%s` for the
    // filter (twice), the bound on the key and the event table.
    let query = format!(
        "WITH k AS (SELECT {order} FROM {target} n WHERE (\0) AND \0 ORDER BY {order} LIMIT $2), \
         b AS (SELECT * FROM {target} n WHERE ({order}) IN (SELECT * FROM k) AND (\0) FOR SHARE OF n), \
         i AS (\0 RETURNING 1) \
         SELECT (SELECT count(*) FROM i)::int4, (SELECT count(*) FROM k)::int4, \
         (SELECT json_build_array({last}) FROM k n ORDER BY {descending} LIMIT 1)",
        target = table.target,
        last = key_columns("n.", "::text"),
        descending = key_columns("n.", " DESC"),
    )
    .replace('%', "%%")
    .replacen('\0', "%1$s", 1)
    .replacen('\0', "%2$s", 1)
    .replacen('\0', "%1$s", 1)
    .replacen('\0', &insert.replace('%', "%%").replace('\0', "%3$s"), 1);
    let key_names = {
        let mut out = String::new();
        join(&mut out, table.primary_key(), ", ", |out, c| {
            out.push_str(&c.json_key)
        });
        out
    };
    push_fmt(
        sql,
        format_args!(
            "\
CREATE OR REPLACE FUNCTION {function}(\"batch\" int4, OUT \"read\" int4, OUT \"finished\" boolean)
LANGUAGE plpgsql
-- The cursor holds each key column's text: read back alike by any session.
SET \"DateStyle\" TO 'ISO, MDY' SET \"IntervalStyle\" TO 'iso_8601' SET \"extra_float_digits\" TO 1
SET \"bytea_output\" TO 'hex'
AS {BODY_QUOTE}
DECLARE
  slot int4 := {slot};
  b {backfills}%ROWTYPE;
  bound text := 'true';
  keys int4;
  last json;
BEGIN
  SELECT * INTO b FROM {backfills} WHERE \"name\" = {key} FOR UPDATE NOWAIT;
  IF NOT FOUND THEN
    RAISE EXCEPTION 'no backfill of % is started (a row in dawdle.backfills)', {key};
  END IF;
  IF b.\"finished_at\" IS NOT NULL THEN
    \"read\" := 0; \"finished\" := true; RETURN;
  END IF;
  -- Walking the key is sound only if it is one: NOT NULL, and unique.
  IF EXISTS (SELECT FROM pg_catalog.pg_attribute a
             WHERE a.attrelid = {target_literal}::regclass AND a.attname = ANY (ARRAY[{key_names}]::text[])
               AND NOT a.attnotnull)
     OR NOT EXISTS (SELECT FROM pg_catalog.pg_index i
                    WHERE i.indrelid = {target_literal}::regclass AND i.indisunique
                      AND i.indpred IS NULL AND i.indexprs IS NULL
                      AND NOT EXISTS (SELECT FROM pg_catalog.pg_attribute a
                                      WHERE a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
                                        AND a.attname <> ALL (ARRAY[{key_names}]::text[]))) THEN
    RAISE EXCEPTION 'cannot backfill %: its key columns (%) must be NOT NULL and unique (a primary key or a unique index on them)',
      {key}, array_to_string(ARRAY[{key_names}]::text[], ', ');
  END IF;
  IF b.\"after\" IS NOT NULL THEN
    -- The last key sent, each column's text cast back to its type.
    SELECT '(' || string_agg(format('($1 ->> %s)::%s', k.i - 1, pg_catalog.format_type(a.atttypid, a.atttypmod)),
                             ', ' ORDER BY k.i) || ')'
    INTO bound
    FROM unnest(ARRAY[{key_names}]::text[]) WITH ORDINALITY k(name, i)
    JOIN pg_catalog.pg_attribute a ON a.attrelid = {target_literal}::regclass AND a.attname = k.name;
    bound := {bound_prefix} || bound;
  END IF;
  EXECUTE format({query}, coalesce(b.\"filter\", 'true'), bound, ({slots})[slot + 1])
  INTO \"read\", keys, last USING b.\"after\", \"batch\";
  \"finished\" := keys < \"batch\";
  UPDATE {backfills} SET \"after\" = coalesce(last, b.\"after\"), \"rows_read\" = b.\"rows_read\" + \"read\",
    \"updated_at\" = now(), \"finished_at\" = CASE WHEN \"finished\" THEN now() END
  WHERE \"name\" = {key};
  IF \"read\" > 0 THEN
{ring}  END IF;
END
{BODY_QUOTE};
",
            function = table.snapshot,
            slot = current_slot(),
            backfills = qualified(SCHEMA, BACKFILLS_TABLE),
            key = table.key_literal,
            target_literal = literal(&table.target),
            bound_prefix = literal(&format!("({order}) > ")),
            slots = text_array(&table.slots),
            query = literal(&query),
            ring = ring("    "),
        ),
    );
}

/// Drops the table's backfill function.
pub(super) fn down(sql: &mut String, table: &CheckedTable) {
    push_fmt(
        sql,
        format_args!("DROP FUNCTION IF EXISTS {}(int4);\n", table.snapshot),
    );
}

//! The upgrade from dawdle 0.1: its event table renamed, and read to its
//! end by a reader of its own before it is dropped.

use super::{window_filter, NO_SIGNAL, READER_COLUMNS, READER_PARAMETERS};
use crate::sql::catalog::{
    BODY_QUOTE, CAPTURES_TABLE, EVENTS_TABLE, EVENT_ID_SEQUENCE, LEGACY_TABLE, SCHEMA,
};
use crate::sql::quote::{ident, literal, push_fmt, qualified};

/// The reader of dawdle 0.1's event table.
const LEGACY_READER: &str = "read:0.1";

/// The name of dawdle 0.1's event table in the registry.
const LEGACY_KEY: &str = "dawdle 0.1";

/// Renames dawdle 0.1's event table, and sets the id sequence above its ids.
pub(super) fn up_rename(sql: &mut String) {
    push_fmt(
        sql,
        format_args!(
            "
-- Upgrade from dawdle 0.1: its event table is renamed, and read to its end
-- by the watcher before it is emptied; ids go on above its own.
DO {BODY_QUOTE}
BEGIN
  IF EXISTS (SELECT FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace s ON s.oid = c.relnamespace
             WHERE s.nspname = {schema_literal} AND c.relname = {events_literal} AND c.relkind = 'r') THEN
    ALTER TABLE {events} RENAME TO {legacy_name};
    PERFORM pg_catalog.setval({sequence_literal}, greatest(
      (SELECT pg_catalog.pg_sequence_last_value(pg_catalog.pg_get_serial_sequence({legacy_literal}, 'id'))),
      (SELECT max(\"id\") FROM {legacy}), 1));
  END IF;
END
{BODY_QUOTE};
",
            schema_literal = literal(SCHEMA),
            events_literal = literal(EVENTS_TABLE),
            events = qualified(SCHEMA, EVENTS_TABLE),
            legacy_name = ident(LEGACY_TABLE),
            sequence_literal = literal(&qualified(SCHEMA, EVENT_ID_SEQUENCE)),
            legacy_literal = literal(&qualified(SCHEMA, LEGACY_TABLE)),
            legacy = qualified(SCHEMA, LEGACY_TABLE),
        ),
    );
}

/// The reader of dawdle 0.1's event table, registered while it holds
/// events; once it is empty, the table is dropped.
pub(super) fn up_reader(sql: &mut String) {
    push_fmt(
        sql,
        format_args!(
            "\
-- dawdle 0.1's event table, read to its end.
DO {BODY_QUOTE}
BEGIN
  IF to_regclass({legacy_literal}) IS NOT NULL THEN
    IF EXISTS (SELECT FROM {legacy}) THEN
      CREATE OR REPLACE FUNCTION {legacy_reader}({READER_PARAMETERS})
      RETURNS TABLE ({READER_COLUMNS}) LANGUAGE plpgsql STABLE AS $legacy$
      #variable_conflict use_column
      BEGIN
        RETURN QUERY SELECT e.\"id\", e.\"txid\", e.\"captured_at\", e.\"schema_name\", e.\"table_name\",
                            e.\"action\", e.\"row_key\", e.\"old\", e.\"new\", {NO_SIGNAL}
        FROM {legacy} e WHERE {window_filter} ORDER BY e.\"id\" LIMIT \"limit\";
      END
      $legacy$;
      INSERT INTO {captures} (\"name\", \"reader\", \"slots\", \"until\")
      VALUES ({legacy_key}, {legacy_reader_literal}, ARRAY[{legacy_literal}], pg_current_xact_id())
      ON CONFLICT (\"name\") DO NOTHING;
    ELSE
      DELETE FROM {captures} WHERE \"name\" = {legacy_key};
      DROP FUNCTION IF EXISTS {legacy_reader}({READER_PARAMETERS});
      DROP TABLE {legacy};
    END IF;
  END IF;
END
{BODY_QUOTE};
",
            window_filter = window_filter("e"),
            legacy = qualified(SCHEMA, LEGACY_TABLE),
            legacy_literal = literal(&qualified(SCHEMA, LEGACY_TABLE)),
            legacy_key = literal(LEGACY_KEY),
            legacy_reader = qualified(SCHEMA, LEGACY_READER),
            legacy_reader_literal = literal(&qualified(SCHEMA, LEGACY_READER)),
            captures = qualified(SCHEMA, CAPTURES_TABLE),
        ),
    );
}

/// Drops the reader of dawdle 0.1's event table.
pub(super) fn down_reader(sql: &mut String) {
    push_fmt(
        sql,
        format_args!(
            "DROP FUNCTION IF EXISTS {}({READER_PARAMETERS});\n",
            qualified(SCHEMA, LEGACY_READER)
        ),
    );
}

/// Drops dawdle 0.1's event table, waiting events included.
pub(super) fn down_table(sql: &mut String) {
    push_fmt(
        sql,
        format_args!(
            "DROP TABLE IF EXISTS {};\n",
            qualified(SCHEMA, LEGACY_TABLE)
        ),
    );
}

//! Per captured table: its event tables, its trigger function and
//! triggers, and its row in the registry; down drops them.

use super::{current_slot, per_slot, ring, text_array};
use crate::sql::catalog::{BODY_QUOTE, CAPTURES_TABLE, EVENT_ID_SEQUENCE, SCHEMA};
use crate::sql::model::{CheckedTable, Record};
use crate::sql::quote::{ident, join, literal, push_fmt, qualified};
use crate::table::Action;

/// The transition tables the statement triggers see.
const OLD_ROWS: &str = "\"old_rows\"";
const NEW_ROWS: &str = "\"new_rows\"";

fn trigger_name(action: Action) -> String {
    format!("dawdle_{action}")
}

/// One table's event tables, trigger function and triggers.
pub(super) fn up(sql: &mut String, table: &CheckedTable) {
    push_fmt(
        sql,
        format_args!("-- {} ({})\n", table.comment, table.type_name),
    );
    event_tables(sql, table);
    trigger_function(sql, table);
    triggers(sql, table);
}

/// The table's row in the registry: its reader, event tables, backfill
/// function and name, which the watcher and backfills look up.
pub(super) fn register(sql: &mut String, table: &CheckedTable) {
    push_fmt(
        sql,
        format_args!(
            "INSERT INTO {captures} (\"name\", \"reader\", \"slots\", \"snapshot\", \"target\")\n\
             VALUES ({key}, {reader}, {slots}, {snapshot}, {target})\n\
             ON CONFLICT (\"name\") DO UPDATE SET \"reader\" = EXCLUDED.\"reader\", \"slots\" = EXCLUDED.\"slots\",\n  \
             \"snapshot\" = EXCLUDED.\"snapshot\", \"target\" = EXCLUDED.\"target\";\n",
            captures = qualified(SCHEMA, CAPTURES_TABLE),
            key = table.key_literal,
            reader = literal(&table.reader),
            snapshot = literal(&table.snapshot),
            target = literal(&table.target),
            slots = text_array(&table.slots),
        ),
    );
}

/// Drops the table's triggers and trigger function.
pub(super) fn down(sql: &mut String, table: &CheckedTable) {
    push_fmt(sql, format_args!("-- {}\n", table.comment));
    drop_triggers(sql, table);
    push_fmt(
        sql,
        format_args!("DROP FUNCTION IF EXISTS {}();\n", table.function),
    );
}

/// Drops the table's event tables, waiting events included.
pub(super) fn down_tables(sql: &mut String, table: &CheckedTable) {
    for slot in &table.slots {
        push_fmt(sql, format_args!("DROP TABLE IF EXISTS {slot};\n"));
    }
    push_fmt(sql, format_args!("\n"));
}

/// The event tables: the captured columns of the old and the new row in
/// their own types (or the override's), taken from the table itself by a
/// probe view, so that a re-run converges them after an ALTER TABLE.
fn event_tables(sql: &mut String, table: &CheckedTable) {
    let probe = "pg_temp.\"dawdle:probe\"";
    push_fmt(
        sql,
        format_args!(
            "CREATE OR REPLACE TEMPORARY VIEW \"dawdle:probe\" AS\nSELECT 0::int8 AS \"id\", '0'::xid8 AS \"txid\", \
             now() AS \"captured_at\", ''::text AS \"action\""
        ),
    );
    for record in [Record::Old, Record::New] {
        for column in &table.columns {
            push_fmt(
                sql,
                format_args!(
                    ",\n  {} AS {}",
                    column.value.get(record),
                    column.stored.get(record)
                ),
            );
        }
    }
    push_fmt(
        sql,
        format_args!(
            "\nFROM {target} o, {target} n WHERE false;\n",
            target = table.target
        ),
    );
    for (slot, index) in table.slots.iter().zip(&table.slot_indexes) {
        push_fmt(
            sql,
            format_args!(
                "CREATE TABLE IF NOT EXISTS {slot} AS SELECT * FROM {probe} WITH NO DATA;\n\
                 SELECT {schema}.\"converge\"('{slot_text}', '{probe}');\n\
                 ALTER TABLE {slot} ALTER \"id\" SET DEFAULT nextval({sequence}), ALTER \"id\" SET NOT NULL,\n  \
                 ALTER \"txid\" SET DEFAULT pg_current_xact_id(), ALTER \"txid\" SET NOT NULL,\n  \
                 ALTER \"captured_at\" SET DEFAULT clock_timestamp(), ALTER \"captured_at\" SET NOT NULL,\n  \
                 ALTER \"action\" SET NOT NULL;\n\
                 CREATE INDEX IF NOT EXISTS {index} ON {slot} (\"txid\");\n",
                schema = ident(SCHEMA),
                slot_text = slot.replace('\'', "''"),
                sequence = literal(&qualified(SCHEMA, EVENT_ID_SEQUENCE)),
            ),
        );
    }
    push_fmt(sql, format_args!("DROP VIEW {probe};\n"));
}

/// The trigger function: one statement per captured action and slot.
fn trigger_function(sql: &mut String, table: &CheckedTable) {
    push_fmt(
        sql,
        format_args!(
            "CREATE OR REPLACE FUNCTION {}() RETURNS trigger\nLANGUAGE plpgsql AS {BODY_QUOTE}\n\
             DECLARE\n  slot int4 := {};\nBEGIN\n",
            table.function,
            current_slot(),
        ),
    );
    for (i, &action) in table.actions.iter().enumerate() {
        let keyword = if i == 0 { "IF" } else { "ELSIF" };
        push_fmt(
            sql,
            format_args!(
                "  {keyword} TG_OP = '{}' THEN\n",
                action.as_str().to_uppercase()
            ),
        );
        per_slot(sql, "    ", &table.slots, |sql, slot| {
            insert_events(sql, table, action, slot)
        });
    }
    push_fmt(
        sql,
        format_args!(
            "  END IF;\n{}  RETURN NULL;\nEND\n{BODY_QUOTE};\n",
            ring("  ")
        ),
    );
}

/// The statement copying the changed rows of one action into one slot.
fn insert_events(sql: &mut String, table: &CheckedTable, action: Action, slot: &str) {
    let records: &[Record] = match action {
        Action::Insert => &[Record::New],
        Action::Update => &[Record::Old, Record::New],
        Action::Delete => &[Record::Old],
        // Written by backfills and signals, never by a trigger.
        Action::Snapshot | Action::Signal => return,
        Action::Truncate => {
            push_fmt(
                sql,
                format_args!("      INSERT INTO {slot} (\"action\") VALUES ('truncate');\n"),
            );
            return;
        }
    };
    push_fmt(sql, format_args!("      INSERT INTO {slot} (\"action\""));
    for &record in records {
        for column in &table.columns {
            push_fmt(sql, format_args!(", {}", column.stored.get(record)));
        }
    }
    push_fmt(sql, format_args!(")\n      SELECT '{}'", action.as_str()));
    for &record in records {
        for column in &table.columns {
            push_fmt(sql, format_args!(", {}", column.value.get(record)));
        }
    }
    match action {
        Action::Insert => push_fmt(sql, format_args!("\n      FROM {NEW_ROWS} n;\n")),
        Action::Delete => push_fmt(sql, format_args!("\n      FROM {OLD_ROWS} o;\n")),
        _ => {
            // A statement's old and new transition rows are stored in step,
            // one pair per updated row: their positions pair them, even
            // when the update changed the primary key.
            push_fmt(
                sql,
                format_args!(
                    "\n      FROM (SELECT row_number() OVER () AS \"dawdle:row\", * FROM {OLD_ROWS}) o\n      \
                     JOIN (SELECT row_number() OVER () AS \"dawdle:row\", * FROM {NEW_ROWS}) n \
                     ON o.\"dawdle:row\" = n.\"dawdle:row\""
                ),
            );
            if !table.capture_unchanged {
                // Binary images compare every type, json included, and
                // treat two NULLs as equal.
                let row = |record: Record| {
                    let mut row = String::from("ROW(");
                    join(&mut row, &table.columns, ", ", |out, c| {
                        out.push_str(c.reference.get(record))
                    });
                    row.push(')');
                    row
                };
                push_fmt(
                    sql,
                    format_args!(
                        "\n      WHERE pg_catalog.record_image_ne({}, {})",
                        row(Record::Old),
                        row(Record::New)
                    ),
                );
            }
            sql.push_str(";\n");
        }
    }
}

fn triggers(sql: &mut String, table: &CheckedTable) {
    // Dropping them all first makes a re-run converge when `events` changed.
    drop_triggers(sql, table);
    for &action in &table.actions {
        let transition = match action {
            Action::Insert => format!(" REFERENCING NEW TABLE AS {NEW_ROWS}"),
            Action::Update => {
                format!(" REFERENCING OLD TABLE AS {OLD_ROWS} NEW TABLE AS {NEW_ROWS}")
            }
            Action::Delete => format!(" REFERENCING OLD TABLE AS {OLD_ROWS}"),
            // Not in `table.actions`: no trigger writes them.
            Action::Truncate | Action::Snapshot | Action::Signal => String::new(),
        };
        push_fmt(
            sql,
            format_args!(
                "CREATE TRIGGER {} AFTER {} ON {}{transition}\nFOR EACH STATEMENT EXECUTE FUNCTION {}();\n",
                ident(&trigger_name(action)),
                action.as_str().to_uppercase(),
                table.target,
                table.function,
            ),
        );
        if table.capture_replica {
            // Also in sessions with session_replication_role = replica.
            push_fmt(
                sql,
                format_args!(
                    "ALTER TABLE {} ENABLE ALWAYS TRIGGER {};\n",
                    table.target,
                    ident(&trigger_name(action))
                ),
            );
        }
    }
}

fn drop_triggers(sql: &mut String, table: &CheckedTable) {
    for action in Action::CAPTURED {
        push_fmt(
            sql,
            format_args!(
                "DROP TRIGGER IF EXISTS {} ON {};\n",
                ident(&trigger_name(action)),
                table.target
            ),
        );
    }
}

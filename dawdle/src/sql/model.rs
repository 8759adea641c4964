//! The checked model: what the renderer takes, and the only way to get it.
//!
//! [`CheckedTables::check`] is the check and the constructor in one: it
//! refuses a set of tables that would make wrong SQL and, while at it, turns
//! every name and override into the SQL text the renderer pastes in (quoted
//! identifiers, string literals, overrides expanded for `OLD` and `NEW`).
//! The renderer takes nothing else, so nothing renders unchecked and it has
//! nothing left that could fail.

use super::catalog::{SCHEMA, SLOTS};
use super::error::SqlError;
use super::quote::{check_ident, expand_override, ident, literal, object_name, qualified};
use super::Capture;
use crate::table::{Action, Encoding, Table};

/// Tables known to make valid SQL, in the order given.
pub(super) struct CheckedTables(Vec<CheckedTable>, Capture);

/// One table's capture, as SQL text.
pub(super) struct CheckedTable {
    /// The Rust type, for the SQL comment.
    pub(super) type_name: &'static str,
    /// `schema.table` for an SQL comment, with no character that could end it.
    pub(super) comment: String,
    /// The table: `"schema"."name"`.
    pub(super) target: String,
    /// The schema, as a string literal: the event's `schema_name`.
    pub(super) schema_literal: String,
    /// The name, as a string literal: the event's `table_name`.
    pub(super) name_literal: String,
    /// The trigger function, in dawdle's schema: `"dawdle"."capture:..."`.
    pub(super) function: String,
    /// The function that reads its events as JSON: `"dawdle"."read:..."`.
    pub(super) reader: String,
    /// The function that reads its events with the rows as record text,
    /// for the watcher to encode: `"dawdle"."read_text:..."`.
    pub(super) text_reader: String,
    /// The function that writes a batch of snapshot events of a backfill:
    /// `"dawdle"."snapshot:..."`.
    pub(super) snapshot: String,
    /// The row-level trigger function of sessions replicating changes in
    /// (`session_replication_role = replica`): `"dawdle"."capture_row:..."`.
    pub(super) row_function: String,
    /// The function that puts the triggers on the table or one of its
    /// partitions or inheritance children: `"dawdle"."install:..."`.
    pub(super) install: String,
    /// The function that makes the event tables ready (created, and their
    /// columns in the types of the table's): `"dawdle"."prepare:..."`.
    pub(super) prepare: String,
    /// `schema.table`, as a string literal: its key in `dawdle.captures`.
    pub(super) key_literal: String,
    /// Its event tables, one per [`SLOTS`] slot: `"dawdle"."changes:0:..."`.
    pub(super) slots: Vec<String>,
    /// The index on `txid` and `id` of each event table (unqualified: an
    /// index lives in its table's schema).
    pub(super) slot_indexes: Vec<String>,
    /// The index on `txid` alone that earlier versions made, dropped.
    pub(super) old_slot_indexes: Vec<String>,
    /// The captured actions, in [`Action::CAPTURED`] order; at least one.
    pub(super) actions: Vec<Action>,
    /// See [`Table::capture_unchanged`].
    pub(super) capture_unchanged: bool,
    /// See [`Table::capture_replica`].
    pub(super) capture_replica: bool,
    /// In field order; at least one, and at least one of them a key.
    pub(super) columns: Vec<CheckedColumn>,
    /// The captured columns' names, as they are, in field order.
    pub(super) column_names: Vec<String>,
    /// A short name of the table (hex digits) for its settings of order:
    /// the clock `dawdle.c_<mark>`, the marks `dawdle.m<depth>_<mark>`.
    pub(super) mark: String,
}

/// One captured column, as SQL text.
pub(super) struct CheckedColumn {
    /// The name, as a string literal: the column's key in the event JSON.
    pub(super) json_key: String,
    /// The name, quoted: `"name"`.
    pub(super) name: String,
    /// Part of the primary key.
    pub(super) primary_key: bool,
    /// How its value goes into the event JSON.
    pub(super) encoding: Encoding,
    /// The column of each record: `o."name"`, `n."name"`.
    pub(super) reference: PerRecord,
    /// What is captured of each record: the reference, or the `sql`
    /// override applied to it, parenthesized.
    pub(super) value: PerRecord,
    /// The event table's column holding it, for each record:
    /// `"old:name"`, `"new:name"` (cut and hashed past 63 bytes).
    pub(super) stored: PerRecord,
}

/// The row a trigger reads: before or after the change.
#[derive(Clone, Copy)]
pub(super) enum Record {
    Old,
    New,
}

impl Record {
    /// The alias of the transition table holding the rows in the trigger's
    /// queries.
    pub(super) const fn alias(self) -> &'static str {
        match self {
            Record::Old => "o",
            Record::New => "n",
        }
    }

    /// The prefix of its columns in an event table.
    pub(super) const fn prefix(self) -> &'static str {
        match self {
            Record::Old => "old:",
            Record::New => "new:",
        }
    }
}

/// One SQL expression for each [`Record`].
#[derive(Clone)]
pub(super) struct PerRecord {
    old: String,
    new: String,
}

impl PerRecord {
    fn from_fn(f: impl Fn(Record) -> String) -> PerRecord {
        PerRecord {
            old: f(Record::Old),
            new: f(Record::New),
        }
    }

    /// The expression for `record`.
    pub(super) fn get(&self, record: Record) -> &str {
        match record {
            Record::Old => &self.old,
            Record::New => &self.new,
        }
    }
}

impl CheckedTables {
    /// Checks everything about `tables` that would make the SQL wrong, and
    /// turns them into the text the renderer needs.
    pub(super) fn check(tables: &[&Table], capture: Capture) -> Result<CheckedTables, SqlError> {
        let mut checked = Vec::with_capacity(tables.len());
        for (i, table) in tables.iter().enumerate() {
            if let Some(other) = tables[..i]
                .iter()
                .find(|t| (t.schema, t.name) == (table.schema, table.name))
            {
                // Its names are those of a table checked already, so valid.
                return Err(SqlError::TableWatchedTwice {
                    table: table.qualified_name().to_string(),
                    first: other.type_name,
                    second: table.type_name,
                });
            }
            if capture == Capture::Wal {
                if let Some(column) = table.columns.iter().find(|c| c.sql.is_some()) {
                    return Err(SqlError::OverrideInWal {
                        type_name: table.type_name,
                        column: column.name,
                    });
                }
            }
            checked.push(CheckedTable::check(table)?);
        }
        Ok(CheckedTables(checked, capture))
    }

    /// The tables, in the order given.
    pub(super) fn tables(&self) -> &[CheckedTable] {
        &self.0
    }

    /// How the tables are captured.
    pub(super) fn capture(&self) -> Capture {
        self.1
    }
}

impl CheckedTable {
    fn check(table: &Table) -> Result<CheckedTable, SqlError> {
        check_ident("schema", table.schema)?;
        check_ident("table", table.name)?;
        if table.columns.is_empty() {
            return Err(SqlError::NoColumns {
                type_name: table.type_name,
            });
        }
        let actions: Vec<Action> = Action::CAPTURED
            .into_iter()
            .filter(|a| table.events.contains(*a))
            .collect();
        if actions.is_empty() {
            return Err(SqlError::NoEvents {
                type_name: table.type_name,
            });
        }
        if table.primary_key().next().is_none() {
            return Err(SqlError::NoPrimaryKey {
                type_name: table.type_name,
            });
        }
        let mut columns = Vec::with_capacity(table.columns.len());
        for (j, column) in table.columns.iter().enumerate() {
            check_ident("column", column.name)?;
            if table.columns[..j].iter().any(|c| c.name == column.name) {
                return Err(SqlError::DuplicateColumn {
                    type_name: table.type_name,
                    column: column.name,
                });
            }
            let reference =
                PerRecord::from_fn(|record| format!("{}.{}", record.alias(), ident(column.name)));
            let value = match column.sql {
                Some(expr) => {
                    let expand = |record| {
                        expand_override(expr, reference.get(record))
                            .map(|expanded| format!("({expanded})"))
                            .map_err(|problem| SqlError::InvalidOverride {
                                type_name: table.type_name,
                                column: column.name,
                                expr,
                                problem,
                            })
                    };
                    PerRecord {
                        old: expand(Record::Old)?,
                        new: expand(Record::New)?,
                    }
                }
                None => reference.clone(),
            };
            columns.push(CheckedColumn {
                json_key: literal(column.name),
                name: ident(column.name),
                primary_key: column.primary_key,
                encoding: column.encoding,
                reference,
                value,
                stored: PerRecord::from_fn(|record| {
                    ident(&object_name(record.prefix(), &[column.name]))
                }),
            });
        }
        Ok(CheckedTable {
            type_name: table.type_name,
            comment: table
                .qualified_name()
                .to_string()
                .chars()
                .map(|c| if c.is_control() { '?' } else { c })
                .collect(),
            target: qualified(table.schema, table.name),
            schema_literal: literal(table.schema),
            name_literal: literal(table.name),
            function: qualified(
                SCHEMA,
                &object_name("capture:", &[table.schema, table.name]),
            ),
            reader: qualified(SCHEMA, &object_name("read:", &[table.schema, table.name])),
            text_reader: qualified(
                SCHEMA,
                &object_name("read_text:", &[table.schema, table.name]),
            ),
            snapshot: qualified(
                SCHEMA,
                &object_name("snapshot:", &[table.schema, table.name]),
            ),
            row_function: qualified(
                SCHEMA,
                &object_name("capture_row:", &[table.schema, table.name]),
            ),
            install: qualified(
                SCHEMA,
                &object_name("install:", &[table.schema, table.name]),
            ),
            prepare: qualified(
                SCHEMA,
                &object_name("prepare:", &[table.schema, table.name]),
            ),
            key_literal: literal(&format!("{}.{}", table.schema, table.name)),
            slots: (0..SLOTS)
                .map(|slot| {
                    qualified(
                        SCHEMA,
                        &object_name(&format!("changes:{slot}:"), &[table.schema, table.name]),
                    )
                })
                .collect(),
            slot_indexes: (0..SLOTS)
                .map(|slot| {
                    object_name(
                        &format!("changes:{slot}:order:"),
                        &[table.schema, table.name],
                    )
                })
                .collect(),
            old_slot_indexes: (0..SLOTS)
                .map(|slot| {
                    object_name(
                        &format!("changes:{slot}:txid:"),
                        &[table.schema, table.name],
                    )
                })
                .collect(),
            actions,
            capture_unchanged: table.capture_unchanged,
            capture_replica: table.capture_replica,
            column_names: table.columns.iter().map(|c| c.name.to_owned()).collect(),
            mark: format!(
                "{:016x}",
                crate::fnv::fnv(
                    crate::fnv::OFFSET_BASIS,
                    format!("{}\0{}", table.schema, table.name).as_bytes()
                )
            ),
            columns,
        })
    }

    /// The columns of the primary key, in field order.
    pub(super) fn primary_key(&self) -> impl Iterator<Item = &CheckedColumn> {
        self.columns.iter().filter(|c| c.primary_key)
    }
}

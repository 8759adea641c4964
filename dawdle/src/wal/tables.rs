//! The tables captured from the WAL, as `up` described them in
//! `dawdle.captures`, and the relations of the stream mapped onto them.

use std::collections::HashMap;

use serde::Deserialize;
use tokio_postgres::Client;

use super::encode::TypeCatalog;
use super::pgoutput::Relation;
use crate::database::DisplayPgError;
use crate::table::{Action, Encoding};
use crate::watcher::WatcherError;

/// Why the captured tables or a relation could not be read: the database
/// failed (the connection went, say: the watcher connects again and reads
/// them again), or what it holds cannot be captured (until up runs).
#[derive(Debug)]
pub(crate) enum ReadError {
    Database(tokio_postgres::Error),
    Invalid(String),
}

impl From<tokio_postgres::Error> for ReadError {
    fn from(error: tokio_postgres::Error) -> ReadError {
        ReadError::Database(error)
    }
}

impl From<String> for ReadError {
    fn from(message: String) -> ReadError {
        ReadError::Invalid(message)
    }
}

impl From<ReadError> for WatcherError {
    fn from(error: ReadError) -> WatcherError {
        match error {
            ReadError::Database(e) => WatcherError::Database(e),
            ReadError::Invalid(message) => WatcherError::Unsupported(message),
        }
    }
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ReadError::Database(e) => DisplayPgError::new(e).fmt(f),
            ReadError::Invalid(message) => f.write_str(message),
        }
    }
}

/// One captured table.
#[derive(Debug)]
pub(crate) struct Captured {
    pub oid: u32,
    pub schema: String,
    pub name: String,
    pub columns: Vec<CapturedColumn>,
    pub actions: Vec<Action>,
    /// Updates that change no captured column give events too.
    pub unchanged: bool,
}

#[derive(Debug)]
pub(crate) struct CapturedColumn {
    pub name: String,
    /// The key in the event's row objects, as a JSON string.
    pub json_key: String,
    pub encoding: Encoding,
    pub key: bool,
}

#[derive(Deserialize)]
struct Spec {
    columns: Vec<SpecColumn>,
    actions: Vec<String>,
    unchanged: bool,
}

#[derive(Deserialize)]
struct SpecColumn {
    name: String,
    encoding: String,
    key: bool,
}

fn encoding(name: &str) -> Option<Encoding> {
    Some(match name {
        "json" => Encoding::Json,
        "text" => Encoding::Text,
        "text_array" => Encoding::TextArray,
        "float" => Encoding::Float,
        "instant" => Encoding::Instant,
        _ => return None,
    })
}

fn action(name: &str) -> Option<Action> {
    Action::CAPTURED.into_iter().find(|a| a.as_str() == name)
}

/// The tables `up` registered for capture from the WAL.
pub(crate) async fn load(client: &Client) -> Result<Vec<Captured>, ReadError> {
    let rows = client
        .query(
            r#"SELECT c.oid, n.nspname::text, c.relname::text, k."wal"::text
               FROM "dawdle"."captures" k
               JOIN pg_catalog.pg_class c ON c.oid = to_regclass(k."target")
               JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
               WHERE k."wal" IS NOT NULL ORDER BY k."name""#,
            &[],
        )
        .await?;
    let mut tables = Vec::with_capacity(rows.len());
    for row in rows {
        tables.push(captured(row.get(0), row.get(1), row.get(2), row.get(3))?);
    }
    Ok(tables)
}

/// A captured table as its `spec` (the registry's `wal`, or `encode`)
/// describes it.
pub(crate) fn captured(
    oid: u32,
    schema: String,
    name: String,
    spec: &str,
) -> Result<Captured, String> {
    let spec: Spec = serde_json::from_str(spec).map_err(|e| {
        format!("dawdle.captures describes {schema}.{name} in a form this watcher cannot read ({e}): apply this version's up")
    })?;
    let mut columns = Vec::with_capacity(spec.columns.len());
    for c in spec.columns {
        let encoding = encoding(&c.encoding).ok_or_else(|| {
            format!(
                "{schema}.{name}.{}: unknown encoding {:?}",
                c.name, c.encoding
            )
        })?;
        columns.push(CapturedColumn {
            json_key: serde_json::to_string(&c.name).expect("a string"),
            name: c.name,
            encoding,
            key: c.key,
        });
    }
    Ok(Captured {
        oid,
        schema,
        name,
        columns,
        actions: spec.actions.iter().filter_map(|a| action(a)).collect(),
        unchanged: spec.unchanged,
    })
}

/// A relation of the stream that is a captured table or below one: where
/// each captured column is among its columns, and the column's type.
#[derive(Debug)]
pub(crate) struct Mapped {
    /// The captured table's oid (the registry may be read again, so not
    /// an index into it).
    pub table: u32,
    /// Per captured column: its position in the relation's tuples and its
    /// type.
    pub columns: Vec<(usize, u32)>,
}

/// The relations of the stream met so far: `None` for those not captured
/// (another publication's, or a table no longer captured).
#[derive(Debug, Default)]
pub(crate) struct Relations {
    map: HashMap<u32, Option<Mapped>>,
}

impl Relations {
    pub(crate) fn get(&self, id: u32) -> Option<&Option<Mapped>> {
        self.map.get(&id)
    }

    /// Maps `relation` onto the captured table it is, or is below (an
    /// inheritance child), loading its column types.
    pub(crate) async fn learn(
        &mut self,
        client: &Client,
        tables: &[Captured],
        types: &mut TypeCatalog,
        relation: &Relation,
    ) -> Result<(), ReadError> {
        let table = match tables.iter().position(|t| t.oid == relation.id) {
            Some(table) => Some(table),
            None => {
                let ancestors: Vec<u32> = client
                    .query(
                        "WITH RECURSIVE up(oid) AS (SELECT $1::oid UNION \
                         SELECT i.inhparent FROM pg_catalog.pg_inherits i JOIN up ON i.inhrelid = up.oid) \
                         SELECT oid FROM up",
                        &[&relation.id],
                    )
                    .await?
                    .iter()
                    .map(|r| r.get(0))
                    .collect();
                tables.iter().position(|t| ancestors.contains(&t.oid))
            }
        };
        let Some(table) = table else {
            self.map.insert(relation.id, None);
            return Ok(());
        };
        let captured = &tables[table];
        let mut columns = Vec::with_capacity(captured.columns.len());
        for column in &captured.columns {
            let position = relation
                .columns
                .iter()
                .position(|c| c.name == column.name)
                .ok_or_else(|| {
                    format!(
                        "{}.{} captures column {:?}, which {}.{} does not have (renamed or dropped?): \
                         apply up for the table as it is now, then start the watcher again",
                        captured.schema, captured.name, column.name, relation.schema, relation.name
                    )
                })?;
            columns.push((position, relation.columns[position].type_oid));
        }
        let oids: Vec<u32> = columns.iter().map(|&(_, oid)| oid).collect();
        types.load(client, &oids).await?;
        for (column, &(_, oid)) in captured.columns.iter().zip(&columns) {
            let checked = if column.key {
                types
                    .check(oid, column.encoding)
                    .and_then(|()| types.check_key(oid, column.encoding))
            } else {
                types.check(oid, column.encoding)
            };
            checked.map_err(|reason| {
                format!(
                    "{}.{}.{} cannot be captured from the WAL: {reason}",
                    captured.schema, captured.name, column.name
                )
            })?;
        }
        self.map.insert(
            relation.id,
            Some(Mapped {
                table: captured.oid,
                columns,
            }),
        );
        Ok(())
    }
}

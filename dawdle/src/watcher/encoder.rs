//! The events of the text readers, built in the watcher rather than by
//! PostgreSQL: each row's captured columns arrive as the text of one
//! record, and are turned into the event JSON by the code that builds the
//! events captured from the WAL (`wal::event`), with the encodings the SQL
//! readers use. The watcher's backend then only reads and prints the
//! columns, and the JSON is built beside it, in this process.
//!
//! What is known of a table holds for one *shape*: the hash of its
//! `encode` spec and of its event tables' column types, which each row
//! carries as the text reader read it. A row of another shape (after an
//! `ALTER TABLE` or a new `up`) makes the watcher read the table again; a
//! row it cannot build (a type whose JSON the encoder cannot reproduce, a
//! shape the registry no longer has) is built by PostgreSQL instead, as
//! every event was before.

use std::collections::HashMap;

use bytes::Bytes;
use chrono::{DateTime, Utc};

use tokio_postgres::{Client, Row};

use super::error::WatcherError;
use crate::sql::catalog::watcher;
use crate::table::Action;
use crate::wal::encode::{fields, Malformed, TypeCatalog};
use crate::wal::event::{self, Built, Meta};
use crate::wal::pgoutput::Datum;
use crate::wal::tables::{self, Captured, Mapped};

/// What the watcher knows of the captured tables' columns.
#[derive(Debug, Default)]
pub(crate) struct Encoder {
    /// By schema, then table name (looked up without allocating).
    tables: HashMap<String, HashMap<String, Known>>,
    types: TypeCatalog,
}

#[derive(Debug)]
struct Known {
    shape: i32,
    /// `None`: the table's rows of this shape are built by PostgreSQL.
    table: Option<(Captured, Mapped)>,
}

/// One row of a text reader, as [`PAGE_TEXT`](watcher::PAGE_TEXT) returns it.
struct TextRow<'r> {
    pub id: i64,
    pub txid: &'r str,
    pub captured_at: DateTime<Utc>,
    pub schema: &'r str,
    pub table: &'r str,
    pub action: &'r str,
    pub old: Option<&'r str>,
    pub new: Option<&'r str>,
    pub shape: i32,
}

impl Encoder {
    /// Makes sure the table is known in `shape`, reading the registry and
    /// the column types when it is not.
    async fn learn(
        &mut self,
        client: &Client,
        schema: &str,
        table: &str,
        shape: i32,
    ) -> Result<(), WatcherError> {
        if self.known(schema, table).is_some_and(|k| k.shape == shape) {
            return Ok(());
        }
        let rows = client
            .query(watcher::ENCODE_SPEC, &[&format!("{schema}.{table}")])
            .await?;
        let known = match rows.first() {
            Some(row) if row.get::<_, Option<i32>>(1) == Some(shape) => {
                let spec: String = row.get(0);
                let types: String = row.get(2);
                match self.load(client, schema, table, &spec, &types).await? {
                    Ok(known) => Some(known),
                    Err(reason) => {
                        tracing::info!(
                            schema,
                            table,
                            %reason,
                            "the events of this table are built by PostgreSQL"
                        );
                        None
                    }
                }
            }
            // Changed again since the rows were read: PostgreSQL builds
            // the rows of this shape.
            _ => None,
        };
        self.tables.entry(schema.to_owned()).or_default().insert(
            table.to_owned(),
            Known {
                shape,
                table: known,
            },
        );
        Ok(())
    }

    fn known(&self, schema: &str, table: &str) -> Option<&Known> {
        self.tables.get(schema)?.get(table)
    }

    /// The table as its spec describes it, with its columns' types
    /// checked: `Ok(Err(reason))` when the encoder cannot build its events.
    async fn load(
        &mut self,
        client: &Client,
        schema: &str,
        table: &str,
        spec: &str,
        types: &str,
    ) -> Result<Result<(Captured, Mapped), String>, WatcherError> {
        let captured = match tables::captured(0, schema.to_owned(), table.to_owned(), spec) {
            Ok(captured) => captured,
            Err(reason) => return Ok(Err(reason)),
        };
        let oids: Result<Vec<u32>, _> = types.split(',').map(str::parse).collect();
        let oids = match oids {
            Ok(oids) if oids.len() == captured.columns.len() => oids,
            _ => {
                return Ok(Err(format!(
                    "its event tables' column types read {types:?}, for {} columns",
                    captured.columns.len()
                )))
            }
        };
        self.types
            .load(client, &oids)
            .await
            .map_err(WatcherError::from)?;
        for (column, &oid) in captured.columns.iter().zip(&oids) {
            let checked = self.types.check(oid, column.encoding).and_then(|()| {
                if column.key {
                    self.types.check_key(oid, column.encoding)
                } else {
                    Ok(())
                }
            });
            if let Err(reason) = checked {
                return Ok(Err(format!("{}: {reason}", column.name)));
            }
        }
        let mapped = Mapped {
            table: 0,
            columns: oids.into_iter().enumerate().collect(),
        };
        Ok(Ok((captured, mapped)))
    }

    /// The events of a page of [`PAGE_TEXT`](watcher::PAGE_TEXT), each
    /// with its FIFO group: built here where a text reader read the row,
    /// taken from the row where PostgreSQL built it, `None` where the
    /// encoder could not build it (which PostgreSQL must then do).
    pub(crate) async fn page(
        &mut self,
        client: &Client,
        rows: &[Row],
    ) -> Result<Vec<Option<(String, String)>>, WatcherError> {
        for row in rows {
            if let Some(text) = text_row(row) {
                self.learn(client, text.schema, text.table, text.shape)
                    .await?;
            }
        }
        let mut meta = MetaCache::default();
        Ok(rows
            .iter()
            .map(|row| match text_row(row) {
                Some(text) => {
                    let source: &str = row.get(13);
                    self.build(&text, &meta.of(source, &text))
                        .map(|b| (b.json, b.group))
                }
                None => Some((row.get(2), row.get(3))),
            })
            .collect())
    }

    /// The event of `row`, or `None` where PostgreSQL must build it (the
    /// table is not known in the row's shape, or a value did not read).
    fn build(&self, row: &TextRow<'_>, meta: &Meta<'_>) -> Option<Built> {
        let known = self.known(row.schema, row.table)?;
        let (captured, mapped) = known.table.as_ref().filter(|_| known.shape == row.shape)?;
        let action = Action::ALL.into_iter().find(|a| a.as_str() == row.action)?;
        let n = mapped.columns.len();
        let old = match row.old {
            Some(text) => Some(split(text, n)?),
            None => None,
        };
        let new = match row.new {
            Some(text) => Some(split(text, n)?),
            None => None,
        };
        match event::build(
            row.id,
            meta,
            captured,
            mapped,
            &self.types,
            action,
            old.as_deref(),
            new.as_deref(),
        ) {
            Ok(built) => Some(built),
            Err(error) => {
                tracing::warn!(
                    id = row.id,
                    error = %error.0,
                    "an event's row did not encode: PostgreSQL builds it"
                );
                None
            }
        }
    }
}

/// The fields of a record's text, `n` of them, or `None` when it has
/// another number or does not read.
fn split(text: &str, n: usize) -> Option<Vec<Datum>> {
    let mut row = Vec::with_capacity(n);
    let read = fields::<()>(text, &mut |_, field| {
        row.push(match field {
            None => Datum::Null,
            Some(field) => Datum::Text(Bytes::copy_from_slice(field.as_bytes())),
        });
        Ok(())
    });
    match read {
        Ok(count) if count == n => Some(row),
        Ok(_) | Err(Malformed::At(_) | Malformed::Field(())) => None,
    }
}

/// A row of [`PAGE_TEXT`](watcher::PAGE_TEXT) that a text reader read
/// (`None` for those whose events PostgreSQL built).
fn text_row(row: &Row) -> Option<TextRow<'_>> {
    let shape = row.get::<_, Option<i32>>(12)?;
    Some(TextRow {
        id: row.get(0),
        txid: row.get(1),
        schema: row.get(5),
        table: row.get(6),
        action: row.get(8),
        captured_at: row.get(9),
        old: row.get(10),
        new: row.get(11),
        shape,
    })
}

/// What the events of a page share, spelled once per value rather than per
/// event: the origin, and the last capture time and transaction met.
#[derive(Default)]
struct MetaCache {
    source: String,
    captured_at: Option<(DateTime<Utc>, String)>,
    txid: Option<(String, String)>,
}

impl MetaCache {
    /// The shared values of `row`'s event.
    fn of(&mut self, source: &str, row: &TextRow<'_>) -> Meta<'_> {
        if self.source.len() < 2 || &self.source[1..self.source.len() - 1] != source {
            self.source.clear();
            event::push_string(&mut self.source, source);
        }
        if self
            .captured_at
            .as_ref()
            .is_none_or(|(at, _)| *at != row.captured_at)
        {
            let micros = row.captured_at.timestamp_micros() - POSTGRES_EPOCH_MICROS;
            self.captured_at = Some((row.captured_at, super::wal::commit_time(micros)));
        }
        if self.txid.as_ref().is_none_or(|(txid, _)| txid != row.txid) {
            let mut json = String::with_capacity(row.txid.len() + 2);
            event::push_string(&mut json, row.txid);
            self.txid = Some((row.txid.to_owned(), json));
        }
        Meta {
            source: &self.source,
            captured_at: &self.captured_at.as_ref().expect("set above").1,
            txid: &self.txid.as_ref().expect("set above").1,
        }
    }
}

/// 2000-01-01 UTC, PostgreSQL's epoch, in microseconds since 1970.
const POSTGRES_EPOCH_MICROS: i64 = 946_684_800_000_000;

/// Reads the events waiting in the database both ways, built by the
/// encoder and by PostgreSQL, and compares them byte for byte: how many
/// the encoder built, and how many it left to PostgreSQL. For tests (the
/// SQL readers are the encoder's oracle); `Err` names the first event that
/// differs.
pub(crate) async fn compare(client: &Client) -> Result<(usize, usize), String> {
    let error = |e: tokio_postgres::Error| crate::database::DisplayPgError::new(&e).to_string();
    // The SQL readers spell the capture time in the session's time zone.
    client
        .batch_execute("BEGIN; SET LOCAL TimeZone = 'UTC'")
        .await
        .map_err(error)?;
    let compared = async {
        let cursor = client.query_one(watcher::CURSOR, &[]).await.map_err(error)?;
        let now: String = client
            .query_one("SELECT pg_current_snapshot()::text", &[])
            .await
            .map_err(error)?
            .get(0);
        let (read, window, after): (String, Option<String>, i64) =
            (cursor.get(0), cursor.get(1), cursor.get(2));
        let mut windows = vec![(read, window.clone().unwrap_or(now.clone()), after)];
        if let Some(window) = window {
            windows.push((window, now, 0));
        }
        let mut encoder = Encoder::default();
        let (mut built, mut by_sql) = (0, 0);
        let limit: Option<i64> = None;
        for (read, upto, after) in windows {
            let upto = Some(upto);
            let params: [&(dyn tokio_postgres::types::ToSql + Sync); 4] =
                [&read, &upto, &after, &limit];
            let text = client.query(watcher::PAGE_TEXT, &params).await.map_err(error)?;
            let sql = client.query(watcher::PAGE, &params).await.map_err(error)?;
            if text.len() != sql.len() {
                return Err(format!(
                    "the text readers read {} events, the readers {}",
                    text.len(),
                    sql.len()
                ));
            }
            let events = encoder.page(client, &text).await.map_err(|e| e.to_string())?;
            for ((event, row), text_row) in events.into_iter().zip(&sql).zip(&text) {
                let Some((json, group)) = event else {
                    by_sql += 1;
                    continue;
                };
                if text_row.get::<_, Option<i32>>(12).is_some() {
                    built += 1;
                }
                let (expected, expected_group): (String, String) = (row.get(2), row.get(3));
                if json != expected || group != expected_group {
                    return Err(format!(
                        "event {} differs:\n  encoder:    {json}\n              {group}\n  PostgreSQL: {expected}\n              {expected_group}",
                        row.get::<_, i64>(0)
                    ));
                }
            }
        }
        Ok((built, by_sql))
    }
    .await;
    client.batch_execute("COMMIT").await.map_err(error)?;
    compared
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_split_into_their_fields() {
        let text = |d: &Datum| match d {
            Datum::Text(b) => Some(String::from_utf8(b.to_vec()).unwrap()),
            _ => None,
        };
        let row = split(r#"(1,,"a, b","say ""hi""","back\\slash",{x})"#, 6).unwrap();
        let row: Vec<_> = row.iter().map(text).collect();
        assert_eq!(
            row,
            [
                Some("1".into()),
                None,
                Some("a, b".into()),
                Some("say \"hi\"".into()),
                Some("back\\slash".into()),
                Some("{x}".into()),
            ]
        );
        assert!(split("(1,2)", 3).is_none(), "a field too few");
        assert!(split("(1,2", 2).is_none(), "not closed");
        assert!(split("1,2)", 2).is_none(), "not opened");
        assert!(split("(1,2)x", 2).is_none(), "trailing text");
        assert_eq!(split("()", 1).unwrap().len(), 1, "one NULL field");
    }
}

//! The SQL that captures changes: dawdle's event table, and per watched table
//! a trigger function and AFTER row triggers.
//!
//! [`up`] and [`down`] render the migrations for any set of [`Table`]s;
//! [`up_registered`] and [`down_registered`] for every `Watched` type linked
//! into the program; [`apply`] runs SQL on a database in one transaction; and
//! [`cli`] is the whole `dawdle-sql` command:
//!
//! ```no_run
//! // src/bin/dawdle-sql.rs
//! use my_app as _; // link the crate that defines the `Watched` types
//! fn main() -> std::process::ExitCode { dawdle::sql::cli() }
//! # mod my_app {}
//! ```
//!
//! # What up creates
//!
//! - the schema `dawdle` and the table `dawdle.events` (a monotonic `id`,
//!   `schema_name`, `table_name`, `action`, `row_key` (the primary key as a
//!   JSON array), `old` and `new` (JSON objects holding only the captured
//!   columns), `captured_at` and `txid`), tuned for autovacuum;
//!   `dawdle.payloads`, where rows of events too large for a queue message
//!   wait; and `dawdle.origin`, a random id of the database;
//! - per table, the function `dawdle."capture:<schema>.<table>"()` and the
//!   triggers `dawdle_insert`, `dawdle_update`, `dawdle_delete` on the table,
//!   for the events the type captures. The update trigger fires only when a
//!   captured column changed, unless the type says `capture_unchanged`.
//!
//! Every identifier is quoted. Up can run again (it converges to the current
//! types); down drops exactly what up created, the pending events included.
//! The triggers send a NOTIFY only while the watcher sleeps (it then holds
//! the advisory lock [`DOORBELL_LOCK`], which the triggers try to share): a
//! notifying commit takes a cluster-wide lock that serializes every writer,
//! so under load, when the watcher polls, nobody notifies. A trigger function
//! fixes only the session settings its columns' JSON depends on (see
//! [`SessionSettings`](crate::SessionSettings)); for most tables, none.

mod cli;
mod quote;
mod render;

use tokio_postgres::Client;

pub use cli::cli;
pub use render::{
    DOORBELL_CHANNEL, DOORBELL_LOCK, EVENTS_TABLE, ORIGIN_TABLE, PAYLOADS_TABLE, SCHEMA,
};

use crate::table::Table;

/// What is wrong with a set of tables, or with applying SQL.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SqlError {
    /// A schema, table or column name PostgreSQL cannot hold as given.
    #[error("invalid {what} name {name:?}: it {problem}")]
    InvalidIdentifier {
        /// `schema`, `table` or `column`.
        what: &'static str,
        /// The name.
        name: String,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// Two `Watched` types name the same table.
    #[error("table {table} is watched by two types, {first} and {second}; keep one")]
    TableWatchedTwice {
        /// `schema.table`.
        table: String,
        /// One type.
        first: &'static str,
        /// The other.
        second: &'static str,
    },
    /// A type captures no column.
    #[error("{type_name} captures no column")]
    NoColumns {
        /// The type.
        type_name: &'static str,
    },
    /// A type captures none of insert, update and delete.
    #[error("{type_name} captures no event; enable at least one of insert, update, delete")]
    NoEvents {
        /// The type.
        type_name: &'static str,
    },
    /// A type has no primary key column.
    #[error("{type_name} has no primary key; mark its key fields with #[dawdle(primary_key)]")]
    NoPrimaryKey {
        /// The type.
        type_name: &'static str,
    },
    /// Two fields map to one column.
    #[error("{type_name} captures column {column:?} twice")]
    DuplicateColumn {
        /// The type.
        type_name: &'static str,
        /// The column.
        column: &'static str,
    },
    /// A column's `sql` override is not a single expression using `$1`.
    #[error("the sql override of {type_name}.{column}, {expr:?}, {problem}")]
    InvalidOverride {
        /// The type.
        type_name: &'static str,
        /// The column.
        column: &'static str,
        /// The override.
        expr: &'static str,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// The database refused the SQL.
    #[error("applying dawdle's SQL failed: {0}")]
    Database(#[from] tokio_postgres::Error),
}

/// The up migration for `tables`: the event table, then each table's triggers.
pub fn up(tables: &[&Table]) -> Result<String, SqlError> {
    render::check(tables)?;
    Ok(render::up(tables))
}

/// The down migration for `tables`: removes what [`up`] created.
pub fn down(tables: &[&Table]) -> Result<String, SqlError> {
    render::check(tables)?;
    Ok(render::down(tables))
}

/// [`up`] for every `Watched` type linked into the program.
pub fn up_registered() -> Result<String, SqlError> {
    up(&crate::registry::tables())
}

/// [`down`] for every `Watched` type linked into the program.
pub fn down_registered() -> Result<String, SqlError> {
    down(&crate::registry::tables())
}

/// Runs `sql` (from [`up`] or [`down`]) in one transaction, holding an
/// advisory lock so that two processes applying at once take turns.
pub async fn apply(client: &mut Client, sql: &str) -> Result<(), SqlError> {
    let tx = client.transaction().await?;
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtext('dawdle.sql.apply'))",
        &[],
    )
    .await?;
    tx.batch_execute(sql).await?;
    tx.commit().await?;
    Ok(())
}

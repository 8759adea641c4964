//! The SQL that captures changes: dawdle's event table, and per watched table
//! a trigger function and AFTER row triggers.
//!
//! [`up`] and [`down`] render the migrations for any set of
//! [`Table`](crate::Table)s; [`up_registered`] and [`down_registered`] for
//! every `Watched` type linked into the program; [`apply`] runs SQL on a
//! database in one transaction; and [`cli`] is the whole `dawdle-sql` command:
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
//!   wait; `dawdle.origin`, a random id of the database; and
//!   `dawdle.queue_messages` and `dawdle.queue_dead_letters`, the tables of
//!   [`PgQueue`](crate::PgQueue);
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

pub(crate) mod catalog;
mod cli;
mod error;
mod migration;
mod model;
mod quote;
mod render;

pub use catalog::{
    CAPTURES_TABLE, CURSOR_TABLE, DOORBELL_CHANNEL, DOORBELL_LOCK, EVENTS_TABLE, EVENT_ID_SEQUENCE,
    HELD_TABLE, ORIGIN_TABLE, PAYLOADS_TABLE, SCHEMA,
};
pub use cli::cli;
pub use error::SqlError;
pub use migration::{apply, down, down_registered, up, up_registered};

//! The SQL that captures changes: dawdle's own tables, and per watched
//! table its event tables, a trigger function and statement-level triggers.
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
//! # How changes are captured: the design
//!
//! Capture costs the application's writers, on the same cores as
//! everything else: it is built to cost them as little as it can while no
//! event is ever lost.
//!
//! - **Statement-level triggers copy, not encode.** Per table and action,
//!   one `AFTER ... FOR EACH STATEMENT` trigger over the statement's
//!   transition tables copies the captured columns of the changed rows, as
//!   they are and in their own types (or an override's), into an event table
//!   of dawdle's, with one `INSERT ... SELECT` per statement. Nothing is
//!   turned into JSON in the writer's transaction: a bulk statement pays one
//!   trigger call, not one per row. An update's old and new rows are paired
//!   by their positions in the transition tables (PostgreSQL stores them in
//!   step), so an update that changes the primary key is still one event;
//!   rows whose captured columns did not change (compared as binary images)
//!   give none. Undeclared columns are never copied.
//! - **Every way a row is written.** A statement naming a partition or an
//!   inheritance child fires that table's statement triggers, not the
//!   parent's, so the triggers go on every table below the watched one
//!   too, and an event trigger puts them on those made later (or, where
//!   the applying role may not create one, a row trigger on a partitioned
//!   table refuses writes to a partition without them). The logical
//!   replication apply worker fires row triggers only: with
//!   `capture_replica`, replicating sessions fire row triggers and
//!   ordinary ones the statement triggers, so each change is captured once.
//! - **A row's events in the order applied.** A statement's AFTER trigger
//!   runs after the statements run inside it (row triggers, cascades), and
//!   the parts of a writable CTE fire theirs in no useful order. A BEFORE
//!   statement trigger marks, per trigger depth, the last id the
//!   transaction's captures took (a transaction-local setting); a
//!   statement that ends with another capture after its mark renumbers
//!   those events after its own (its command's parts deletes first, then
//!   updates, then inserts). Writers without nesting pay two settings read
//!   and one written per statement.
//! - **JSON is built when the watcher reads.** A reader function per table,
//!   `dawdle."read:<schema>.<table>"`, turns the copies into the event JSON
//!   with fixed session settings (`TimeZone` UTC, `DateStyle` ISO,
//!   `IntervalStyle` iso_8601, `bytea_output` hex, `extra_float_digits` 1),
//!   so an event reads the same whatever the writer's or reader's session
//!   says; the JSON expressions are those of the first design, so a row
//!   decodes as a direct query reads it. The view `dawdle.events` reads
//!   through them. The watcher reads through a second function per table,
//!   `dawdle."read_text:<schema>.<table>"`, which prints the old and the new
//!   row's copies as one record's text each, under the same settings, and
//!   builds the JSON itself, in Rust, with the encoder of capture from the
//!   WAL: the watcher's backend only reads and prints. Each of its rows
//!   carries the *shape* it was read with (a hash of the table's spec in
//!   `dawdle.captures.encode` and of the copies' column types), so that an
//!   `ALTER TABLE` that retypes a copy makes the watcher read the types
//!   again. Where the encoder cannot build an event as `to_json` would (a
//!   type with its own cast to json, say), PostgreSQL builds it through the
//!   reader, as it does signals'. The fidelity tests build every event both
//!   ways and compare them byte for byte.
//! - **No DELETE per event.** The watcher keeps a cursor, a `pg_snapshot` in
//!   `dawdle.cursor`: every event of a transaction visible in it was sent.
//!   Each round reads the *window* of transactions visible in the current
//!   snapshot and not in the cursor, in event-id order, and moves the cursor
//!   in the same transaction once the queue accepted them (with a
//!   [`PgQueue`](crate::PgQueue) in the same database, the messages go in
//!   that transaction too). A snapshot is a cut in commit order, so a
//!   transaction that took ids early and committed late is simply in a later
//!   window, and two changes of one row come in order.
//! - **Drained tables are truncated.** Each captured table has
//!   three event tables, `dawdle."changes:<slot>:<schema>.<table>"`; a
//!   transaction writes to slot `(txid >> 12) % 3`. Once no running
//!   transaction can write to a slot and the cursor passed all of them, the
//!   watcher empties the slot's tables with one TRUNCATE (see
//!   `watcher/rotate.rs`): no dead rows, no vacuum debt, no index bloat.
//!   The event tables' only index is on `txid`, which the window's bounds use.
//!
//! The figures that chose this design, and the first design beside it, are
//! in BENCHMARKS.md (`cargo bench -p dawdle --bench pipeline -- --diagnose`).
//!
//! # What up creates
//!
//! - the schema `dawdle`; the sequence `dawdle.event_id` (one value at a
//!   time, shared by every table: a later change of a row always has a
//!   higher id); `dawdle.cursor`; `dawdle.captures`, the registry of captured
//!   tables; `dawdle.payloads`, where rows of events too large for a queue
//!   message wait; `dawdle.held`, where a standard queue's refusals wait
//!   with their reason; `dawdle.origin`, a random id of the database; and
//!   [`PgQueue`](crate::PgQueue)'s tables `dawdle.queue_messages` and
//!   `dawdle.queue_dead_letters`;
//! - [signals](mod@crate::signal): their event tables `dawdle."signals:<slot>"`
//!   (registered in `dawdle.captures` like a table's) and their reader;
//!   `dawdle.delayed`, where signals wait for their time; the functions
//!   `dawdle.signal(name, payload, deliver_at)`, `dawdle.cancel_signal(id)`
//!   and `dawdle.release_signals(max)` (which the watcher calls); and
//!   `dawdle.backfills`, the cursors of [backfills](crate::backfill);
//! - the view `dawdle.events`: the events waiting to be sent, one row per
//!   change, with `id`, `txid`, `captured_at`, `schema_name`, `table_name`,
//!   `action`, `row_key` (the primary key as a JSON array), `old` and `new`
//!   (JSON objects of the captured columns), and for signals `signal`,
//!   `payload` and `deliver_at`, as the watcher reads them; and
//!   `dawdle.backlog()`, which counts them without building their JSON;
//! - per table: its three event tables, the trigger function
//!   `dawdle."capture:<schema>.<table>"()`, the triggers `dawdle_insert`,
//!   `dawdle_update`, `dawdle_delete` and `dawdle_truncate` for the events
//!   the type captures, its reader, and `dawdle."snapshot:<schema>.<table>"(batch)`,
//!   which writes one batch of a backfill as snapshot events with the
//!   triggers' own expressions (so that the `dawdle backfill` command needs
//!   none of the program's types).
//!
//! - per table also `dawdle."prepare:<schema>.<table>"()` (makes the event
//!   tables ready), `dawdle."install:<schema>.<table>"(rel)` (puts the
//!   triggers on the table or a table below it, with `dawdle_enter`, and
//!   with `capture_replica` the row triggers `dawdle_replica_*`), and a
//!   `dawdle_guard` row trigger on a partitioned table; the shared
//!   `dawdle.enter()`, `dawdle.reorder(...)`, `dawdle.sync()` (installs on
//!   every table below a watched one), `dawdle.uncaptured()` (which the
//!   watcher checks at start) and, where the role may, the event trigger
//!   `dawdle_ddl`.
//!
//! With [`Capture::Wal`] ([`up_with`]), each table gets, instead of the
//! triggers, `REPLICA IDENTITY FULL` (on it and every table below it) and
//! a place in the publication `dawdle` (`publish_via_partition_root`);
//! `dawdle.captures.wal` describes its columns for the watcher, which
//! reads the database's logical replication slot, `dawdle_<database oid>`,
//! made by [`ensure_slot`] once up committed (which [`apply`] runs). The
//! event tables and readers stay, for signals and backfills.
//! `dawdle.unpublished()` lists the tables below a captured one that are
//! not ready (the watcher refuses to start while there are any).
//!
//! Every identifier is quoted. Up can run again: it converges to the
//! current types, keeping waiting events, and when nothing changed it takes
//! no lock that writers wait for; a changing up locks each watched table
//! before its event tables, and [`apply`] gives way (a short lock timeout,
//! then again) rather than deadlock a writer. With the event trigger, an
//! `ALTER TABLE` that renames or drops a captured column is refused, and
//! one that retypes it converges the event tables in the same transaction;
//! without it, run up again in the ALTER's transaction. Up
//! also upgrades dawdle 0.1's installation: its `dawdle.events` table is
//! renamed `dawdle."events:0.1"`, read to its end by the watcher first, and
//! dropped by the next up once empty. Down drops exactly what up created,
//! the waiting events included.
//!
//! The triggers send a NOTIFY only while the watcher sleeps (it then holds
//! the advisory lock [`DOORBELL_LOCK`], which the triggers try to share): a
//! notifying commit takes a cluster-wide lock that serializes every writer,
//! so under load, when the watcher polls, nobody notifies.

pub(crate) mod catalog;
#[cfg(feature = "cli")]
mod cli;
mod error;
mod health;
mod migration;
mod model;
mod quote;
mod render;

pub use catalog::{
    ACTIVITY_TABLE, BACKFILLS_TABLE, CAPTURES_TABLE, CURSOR_TABLE, DELAYED_TABLE, DOORBELL_CHANNEL,
    DOORBELL_LOCK, EVENTS_TABLE, EVENT_ID_SEQUENCE, HELD_TABLE, ORIGIN_TABLE, PAYLOADS_TABLE,
    SCHEMA,
};
#[cfg(feature = "cli")]
pub use cli::cli;
pub use error::SqlError;
pub use health::{capture_health, CaptureHealth};
pub use migration::{
    apply, down, down_registered, ensure_slot, up, up_registered, up_registered_with, up_with,
};

/// How changes of the watched tables are captured: by triggers (the
/// default, which needs no server setting) or from the write-ahead log
/// (which needs `wal_level = logical`; writers pay almost nothing). See
/// README, "Choosing a capture mode".
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Hash)]
pub enum Capture {
    /// Statement-level triggers copy the changed rows into event tables.
    #[default]
    Triggers,
    /// A logical replication slot (`pgoutput`) over the publication
    /// `dawdle`, read by the watcher; the tables get `REPLICA IDENTITY
    /// FULL`, so that updates and deletes carry the old row.
    Wal,
}

impl Capture {
    /// `triggers` or `wal`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Capture::Triggers => "triggers",
            Capture::Wal => "wal",
        }
    }
}

impl std::fmt::Display for Capture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Capture {
    type Err = String;

    fn from_str(s: &str) -> Result<Capture, String> {
        match s {
            "triggers" => Ok(Capture::Triggers),
            "wal" => Ok(Capture::Wal),
            other => Err(format!("{other:?} is no capture mode: use triggers or wal")),
        }
    }
}
pub(crate) use render::SchemaPiece;

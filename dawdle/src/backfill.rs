//! Backfills: snapshot events of the rows a table already holds, for
//! handlers that must see every row, not only those changed from now on.
//!
//! A backfill walks the table's primary key in batches. Each batch is one
//! transaction that writes one [`Snapshot`](crate::Snapshot) event per row
//! (action `snapshot`, never `insert`: an [`Insert`](crate::Insert) handler
//! that sends welcome mails is not called for a million old users), with
//! the same JSON as the capture triggers, and moves the backfill's cursor
//! in `dawdle.backfills`. A backfill that is stopped, killed or loses its
//! connection continues where it stopped when it is started again; a row
//! may then be sent twice, never skipped. (The key columns must be a key:
//! NOT NULL, with a unique index on them, which the batch checks.)
//!
//! The SQL of a batch is the up migration's (`dawdle."snapshot:<table>"`),
//! so that the `dawdle backfill` command needs none of the application's
//! types.
//!
//! ```no_run
//! # async fn demo(client: &tokio_postgres::Client) -> Result<(), dawdle::backfill::BackfillError> {
//! let done = dawdle::backfill::Backfill::new("public.users")
//!     .filter("created_at < '2026-01-01'")
//!     .batch(1_000)
//!     .run(client, |p| eprintln!("{} of ~{:?} rows", p.rows_read, p.total))
//!     .await?;
//! assert!(done.finished);
//! # Ok(()) }
//! ```
//!
//! # Ordering with live changes
//!
//! A batch chooses its keys first, then locks the rows it reads (`FOR
//! SHARE`) until it commits. A change of one of those rows either committed
//! before the batch read it (the snapshot shows its result, and its event
//! has a lower id), or waits for the batch (its event has a higher id). A
//! row whose key changed meanwhile is left to its update event (and read
//! again later, if its key moved ahead). Events are sent in id order, and
//! on a FIFO queue a snapshot is in its row's message group: a handler
//! never sees a snapshot after a later change of its row. On a standard
//! queue, as for any two events, order is not kept: compare `meta.id`.
//!
//! # Pacing
//!
//! A backfill must not starve the application. After each batch it rests
//! as long as the batch took (half the time working, by default), keeps to
//! [`max_rate`](Backfill::max_rate) when one is set, and waits while more
//! than [`max_backlog`](Backfill::max_backlog) events wait for the watcher,
//! so that changes made meanwhile are sent soon after they happen, not
//! after every snapshot.

use std::time::Duration;

use tokio::time::Instant;

use tokio_postgres::Client;

/// Why a backfill could not start or go on.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BackfillError {
    /// No capture of that table is installed.
    #[error(
        "dawdle captures no table {table:?} in this database (captured: {captured}); \
         name it schema.table, as in dawdle.captures, and apply the up migration of its Watched type"
    )]
    UnknownTable {
        /// The name given.
        table: String,
        /// The names that can be backfilled.
        captured: String,
    },
    /// A backfill of the table with another filter has not finished.
    #[error(
        "a backfill of {table} with filter {filter:?} has not finished: run it again with that \
         filter to resume it, or restart it"
    )]
    Unfinished {
        /// The table.
        table: String,
        /// Its filter (`None`: every row).
        filter: Option<String>,
    },
    /// The database refused, or is unreachable; a backfill started again
    /// resumes after the last batch that committed. Another backfill of
    /// the same table running at the same time is refused this way too.
    /// The message is the server's, as
    /// [`DisplayPgError`](crate::database::DisplayPgError) shows it, so the
    /// error is not also a [`source`](std::error::Error::source).
    #[error("backfill failed: {}", crate::database::DisplayPgError::new(.0))]
    Database(tokio_postgres::Error),
}

impl From<tokio_postgres::Error> for BackfillError {
    fn from(error: tokio_postgres::Error) -> BackfillError {
        BackfillError::Database(error)
    }
}

/// How far a backfill got.
#[derive(Debug, Clone, PartialEq)]
pub struct Progress {
    /// The table, as given.
    pub table: String,
    /// Rows sent as snapshots since the backfill started, over every run.
    pub rows_read: u64,
    /// The rows the backfill selects, counted (with a filter) or estimated
    /// from the planner's statistics when it started; `None` if unknown.
    pub total: Option<u64>,
    /// Rows per second in this run.
    pub rate: f64,
    /// Whether every row was read.
    pub finished: bool,
    /// Events waiting for the watcher, when the backfill last waited for
    /// them to drain.
    pub backlog: Option<i64>,
}

impl Progress {
    /// The time left at the current rate, when the total is known.
    pub fn eta(&self) -> Option<Duration> {
        let left = self.total?.saturating_sub(self.rows_read) as f64;
        (self.rate > 0.0).then(|| Duration::from_secs_f64(left / self.rate))
    }
}

/// A backfill of one table: see the [module docs](self).
#[derive(Debug, Clone)]
pub struct Backfill {
    table: String,
    filter: Option<String>,
    batch: i32,
    restart: bool,
    rest: f64,
    max_rate: Option<f64>,
    max_backlog: Option<i64>,
}

impl Backfill {
    /// [`batch`](Self::batch)'s default.
    pub const DEFAULT_BATCH: u32 = 1_000;

    /// [`rest`](Self::rest)'s default.
    pub const DEFAULT_REST: f64 = 1.0;

    /// A backfill of `table`, named `schema.table` as in `dawdle.captures`
    /// (unquoted). By default: every row, 1,000 per batch, resting as long
    /// as each batch took, waiting while more than 10 batches' worth of
    /// events wait for the watcher.
    pub fn new(table: impl Into<String>) -> Backfill {
        Backfill {
            table: table.into(),
            filter: None,
            batch: Self::DEFAULT_BATCH as i32,
            restart: false,
            rest: Self::DEFAULT_REST,
            max_rate: None,
            max_backlog: Some(10 * i64::from(Self::DEFAULT_BATCH)),
        }
    }

    /// Only the rows for which `condition` (SQL over the table's columns,
    /// as after `WHERE`) holds. It is stored with the cursor: a resumed
    /// backfill must give the same one.
    pub fn filter(mut self, condition: impl Into<String>) -> Backfill {
        self.filter = Some(condition.into());
        self
    }

    /// Rows per batch, each batch one transaction (default 1,000).
    pub fn batch(mut self, rows: u32) -> Backfill {
        self.batch = rows.clamp(1, i32::MAX as u32) as i32;
        self.max_backlog = self.max_backlog.map(|_| 10 * i64::from(self.batch));
        self
    }

    /// Starts again from the first row, even if an earlier backfill of the
    /// table has not finished.
    pub fn restart(mut self, restart: bool) -> Backfill {
        self.restart = restart;
        self
    }

    /// After each batch, rest `ratio` times as long as it took (default 1:
    /// half the time working; 0: no rest).
    pub fn rest(mut self, ratio: f64) -> Backfill {
        self.rest = ratio.max(0.0);
        self
    }

    /// At most this many rows per second.
    pub fn max_rate(mut self, rows_per_second: f64) -> Backfill {
        self.max_rate = (rows_per_second > 0.0).then_some(rows_per_second);
        self
    }

    /// Before each batch, wait while more than `events` wait for the
    /// watcher (`None`: never wait; default: 10 batches).
    pub fn max_backlog(mut self, events: Option<i64>) -> Backfill {
        self.max_backlog = events;
        self
    }

    /// Starts or resumes the backfill, then reads batches until every row
    /// was read, calling `progress` after each. Each batch commits on its
    /// own, on `client` (a deadpool client derefs to one): in a transaction,
    /// the locks of every batch would be held to its end.
    pub async fn run(
        &self,
        client: &Client,
        mut progress: impl FnMut(&Progress),
    ) -> Result<Progress, BackfillError> {
        let (function, mut state) = self.start(client).await?;
        progress(&state);
        let started = Instant::now();
        let rows_before = state.rows_read;
        while !state.finished {
            if let Some(limit) = self.max_backlog {
                state.backlog = Some(wait_for_backlog(client, limit, || progress(&state)).await?);
            }
            let batch_started = Instant::now();
            let row = client
                .query_one(
                    &format!(r#"SELECT "read", "finished" FROM {function}($1)"#),
                    &[&self.batch],
                )
                .await?;
            let read: i32 = row.get(0);
            state.finished = row.get(1);
            state.rows_read += read as u64;
            let took = batch_started.elapsed();
            state.rate = (state.rows_read - rows_before) as f64 / started.elapsed().as_secs_f64();
            progress(&state);
            if !state.finished {
                tokio::time::sleep(self.pause(took, read)).await;
            }
        }
        Ok(state)
    }

    /// The rest after a batch of `read` rows that took `took`.
    fn pause(&self, took: Duration, read: i32) -> Duration {
        let rest = took.mul_f64(self.rest);
        match self.max_rate {
            Some(rate) => {
                rest.max(Duration::from_secs_f64(read as f64 / rate).saturating_sub(took))
            }
            None => rest,
        }
    }

    /// Registers the backfill (or finds the one to resume): the batch
    /// function, and the progress so far.
    async fn start(&self, client: &Client) -> Result<(String, Progress), BackfillError> {
        let row = client
            .query_one(
                r#"SELECT (SELECT "snapshot" FROM "dawdle"."captures" WHERE "name" = $1),
                          (SELECT "target" FROM "dawdle"."captures" WHERE "name" = $1),
                          (SELECT string_agg("name", ', ' ORDER BY "name") FROM "dawdle"."captures"
                           WHERE "snapshot" IS NOT NULL)"#,
                &[&self.table],
            )
            .await?;
        let (Some(function), Some(target)) = (
            row.get::<_, Option<String>>(0),
            row.get::<_, Option<String>>(1),
        ) else {
            return Err(BackfillError::UnknownTable {
                table: self.table.clone(),
                captured: row
                    .get::<_, Option<String>>(2)
                    .unwrap_or_else(|| "none".to_owned()),
            });
        };
        // A finished backfill, or one restarted, begins anew; an unfinished
        // one resumes, with the same filter only.
        let row = client
            .query_one(
                r#"WITH fresh AS (
  INSERT INTO "dawdle"."backfills" ("name", "filter") VALUES ($1, $2)
  ON CONFLICT ("name") DO UPDATE SET "filter" = EXCLUDED."filter", "after" = NULL, "rows_read" = 0,
    "started_at" = now(), "updated_at" = now(), "finished_at" = NULL
  WHERE $3 OR "backfills"."finished_at" IS NOT NULL
  RETURNING "filter", "rows_read")
SELECT * FROM fresh
UNION ALL
SELECT "filter", "rows_read" FROM "dawdle"."backfills" WHERE "name" = $1 AND NOT EXISTS (SELECT FROM fresh)"#,
                &[&self.table, &self.filter, &self.restart],
            )
            .await?;
        let filter: Option<String> = row.get(0);
        if filter != self.filter {
            return Err(BackfillError::Unfinished {
                table: self.table.clone(),
                filter,
            });
        }
        let rows_read = row.get::<_, i64>(1) as u64;
        let total = match &self.filter {
            Some(filter) => {
                let count = format!("SELECT count(*) FROM {target} WHERE ({filter})");
                Some(client.query_one(&count, &[]).await?.get::<_, i64>(0) as u64)
            }
            None => {
                let estimate = client
                    .query_one(
                        "SELECT reltuples::int8 FROM pg_catalog.pg_class WHERE oid = $1::text::regclass",
                        &[&target],
                    )
                    .await?
                    .get::<_, i64>(0);
                // -1: never analyzed.
                u64::try_from(estimate).ok()
            }
        };
        Ok((
            function,
            Progress {
                table: self.table.clone(),
                rows_read,
                total,
                rate: 0.0,
                finished: false,
                backlog: None,
            },
        ))
    }
}

/// Waits while more than `limit` events wait for the watcher; returns the
/// last count. `waiting` is called while it waits.
async fn wait_for_backlog(
    client: &Client,
    limit: i64,
    mut waiting: impl FnMut(),
) -> Result<i64, BackfillError> {
    loop {
        let row = client
            .query_one(r#"SELECT "events" FROM "dawdle"."backlog"()"#, &[])
            .await?;
        let backlog: i64 = row.get(0);
        if backlog <= limit {
            return Ok(backlog);
        }
        waiting();
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Backfills every row of `table` (`schema.table`) with the default
/// settings of [`Backfill`]; resumes an unfinished backfill of it.
pub async fn backfill(client: &Client, table: &str) -> Result<Progress, BackfillError> {
    Backfill::new(table).run(client, |_| {}).await
}

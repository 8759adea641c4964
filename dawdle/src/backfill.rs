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
//!
//! # Pausing, resuming and cancelling
//!
//! Operators' tools (the `dawdle backfill --pause`, `--resume`, `--cancel`
//! and `--list` flags, a console) work on the backfill's row in
//! `dawdle.backfills`, from any process: [`pause`], [`resume`], [`cancel`]
//! and [`backfills`], which lists every backfill with its progress, its
//! [`rate`](BackfillStatus::rate) and its [`eta`](BackfillStatus::eta). A
//! backfill's name is its table's, `schema.table`.
//!
//! A running backfill reads its row before each batch, and at least every
//! [`CONTROL_POLL`](Backfill::CONTROL_POLL) while it rests or waits for the
//! watcher:
//!
//! - **Paused**, it waits, looking again every `CONTROL_POLL` (it logs
//!   once that it is paused, and its [`Progress`] says
//!   [`paused`](Progress::paused)), until it is resumed or cancelled. The
//!   pause is kept in the database: a paused backfill that is started again
//!   waits too, until resumed ([`restart`](Backfill::restart) starts it
//!   over, unpaused). Time paused does not count in its rate.
//! - **Cancelled**, it stops before its next batch, and
//!   [`run`](Backfill::run) returns [`BackfillError::Cancelled`]: an error,
//!   since not every row was sent, so that code that goes on after `?` as
//!   if they were does not. A cancel finishes the backfill at once (its
//!   row has `finished_at` and `cancelled_at`), so that even a runner that
//!   does not look reads no further batch; started again, a cancelled
//!   backfill begins at the first row, as a finished one does.
//! - **Taken over**: one run works on a backfill at a time. A run that
//!   starts takes the backfill over (its row names the run); the run that
//!   worked on it stops before its next batch with
//!   [`BackfillError::TakenOver`], and the new one goes on from the same
//!   cursor (or from the first row, [restarted](Backfill::restart)).
//!
//! ```no_run
//! # async fn demo(client: &tokio_postgres::Client) -> Result<(), dawdle::backfill::BackfillError> {
//! use dawdle::backfill;
//!
//! for b in backfill::backfills(client).await? {
//!     println!(
//!         "{} ({}): {} of ~{:?} rows, {:?} rows/s, {:?} left",
//!         b.name, b.state(), b.rows_read, b.rows_total, b.rate(), b.eta()
//!     );
//! }
//! backfill::pause(client, "public.users").await?;
//! backfill::resume(client, "public.users").await?;
//! if !backfill::cancel(client, "public.users").await? {
//!     println!("no unfinished backfill of public.users");
//! }
//! # Ok(()) }
//! ```

use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::time::Instant;
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, Row};

use crate::sql::catalog::{backfill as sql, watcher::BACKLOG};

/// How long a batch waits between tries while the backfill's row is locked
/// (an operator's pause, resume or cancel holds it for a moment).
const LOCK_RETRY: Duration = Duration::from_millis(50);

/// How many times a batch tries while the backfill's row is locked: five
/// seconds, far longer than an operator's update holds it.
const LOCK_TRIES: u32 = 100;

/// How long a backfill waits between looks at the watcher's backlog.
const BACKLOG_POLL: Duration = Duration::from_millis(100);

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
    /// An operator [cancelled](cancel) the backfill while it ran: it
    /// stopped before its next batch, and not every row was sent. Its row
    /// is finished and marked cancelled; started again, the backfill begins
    /// at the first row.
    #[error("the backfill of {table} was cancelled after {rows_read} rows")]
    Cancelled {
        /// The table.
        table: String,
        /// Rows sent as snapshots before it stopped, over every run.
        rows_read: u64,
    },
    /// Another run of the same backfill started (in this process or
    /// another, restarted or not) and took it over: this run stopped before
    /// its next batch, so that one runs at a time. The backfill goes on in
    /// the other run.
    #[error("another run of the backfill of {table} started and took it over; this run stopped")]
    TakenOver {
        /// The table.
        table: String,
    },
    /// The database refused, or is unreachable; a backfill started again
    /// resumes after the last batch that committed. The message is the
    /// server's, as [`DisplayPgError`](crate::database::DisplayPgError)
    /// shows it, so the error is not also a
    /// [`source`](std::error::Error::source).
    #[error("backfill failed: {}", crate::database::DisplayPgError::new(.0))]
    Database(tokio_postgres::Error),
}

impl From<tokio_postgres::Error> for BackfillError {
    fn from(error: tokio_postgres::Error) -> BackfillError {
        BackfillError::Database(error)
    }
}

/// How far a running backfill got, as [`Backfill::run`] reports it.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Progress {
    /// The table, as given.
    pub table: String,
    /// Rows sent as snapshots since the backfill started, over every run.
    pub rows_read: u64,
    /// The rows the backfill selects, counted (with a filter) or estimated
    /// from the planner's statistics when it started; `None` if unknown.
    pub total: Option<u64>,
    /// Rows per second in this run, time paused left out.
    pub rate: f64,
    /// Whether every row was read.
    pub finished: bool,
    /// Whether it waits, [paused](pause), until it is resumed or cancelled.
    pub paused: bool,
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

    /// How often a running backfill reads its row while it rests or waits
    /// for the watcher, and a paused one whether it was resumed or
    /// cancelled (it reads it before each batch too).
    pub const CONTROL_POLL: Duration = Duration::from_secs(1);

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
    /// table has not finished (or is paused).
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
    /// was read, calling `progress` after each, and when it is paused or
    /// resumed. Each batch commits on its own, on `client` (a deadpool
    /// client derefs to one): in a transaction, the locks of every batch
    /// would be held to its end.
    ///
    /// It obeys its row in `dawdle.backfills` (see the [module
    /// docs](self#pausing-resuming-and-cancelling)): while [paused](pause)
    /// it waits; [cancelled](cancel), it returns
    /// [`BackfillError::Cancelled`]. One run works on a backfill at a time:
    /// a run takes the backfill over from any other, which returns
    /// [`BackfillError::TakenOver`] before its next batch.
    pub async fn run(
        &self,
        client: &Client,
        progress: impl FnMut(&Progress),
    ) -> Result<Progress, BackfillError> {
        let run_id = uuid::Uuid::new_v4().to_string();
        let (function, state) = self.start(client, &run_id).await?;
        Runner {
            backfill: self,
            client,
            run_id,
            batch: sql::batch(&function),
            rows_before: state.rows_read,
            state,
            started: Instant::now(),
            paused_for: Duration::ZERO,
            progress,
        }
        .until_the_end()
        .await
    }

    /// The rest after a batch of `read` rows that took `took`.
    fn rest_after(&self, took: Duration, read: i32) -> Duration {
        let rest = took.mul_f64(self.rest);
        match self.max_rate {
            Some(rate) => {
                rest.max(Duration::from_secs_f64(read as f64 / rate).saturating_sub(took))
            }
            None => rest,
        }
    }

    /// Registers the backfill (or finds the one to resume), and records
    /// its total and that run `run_id` begins: the batch function, and the
    /// progress so far.
    async fn start(
        &self,
        client: &Client,
        run_id: &str,
    ) -> Result<(String, Progress), BackfillError> {
        let row = client.query_one(sql::CAPTURE, &[&self.table]).await?;
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
        // A finished (or cancelled) backfill, or one restarted, begins
        // anew; an unfinished one resumes, with the same filter only.
        let row = client
            .query_one(sql::START, &[&self.table, &self.filter, &self.restart])
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
                let count = sql::count(&target, filter);
                Some(client.query_one(&count, &[]).await?.get::<_, i64>(0) as u64)
            }
            None => {
                let estimate = client
                    .query_one(sql::ESTIMATE, &[&target])
                    .await?
                    .get::<_, i64>(0);
                // -1: never analyzed.
                u64::try_from(estimate).ok()
            }
        };
        let stored_total = total.map(|t| t as i64);
        client
            .execute(sql::RUN, &[&self.table, &stored_total, &run_id])
            .await?;
        Ok((
            function,
            Progress {
                table: self.table.clone(),
                rows_read,
                total,
                rate: 0.0,
                finished: false,
                paused: false,
                backlog: None,
            },
        ))
    }
}

/// A run of a backfill, one method per state: working (a batch), resting,
/// waiting for the watcher, and paused. Between them it obeys its row.
struct Runner<'a, F> {
    backfill: &'a Backfill,
    client: &'a Client,
    /// This run's id (a uuid) in the backfill's row, while no other took
    /// it over.
    run_id: String,
    /// The query of one batch.
    batch: String,
    state: Progress,
    /// Rows read when this run began.
    rows_before: u64,
    started: Instant,
    /// Time spent paused in this run, which its rate leaves out.
    paused_for: Duration,
    progress: F,
}

impl<F: FnMut(&Progress)> Runner<'_, F> {
    async fn until_the_end(mut self) -> Result<Progress, BackfillError> {
        (self.progress)(&self.state);
        loop {
            self.obey().await?;
            if let Some(limit) = self.backfill.max_backlog {
                self.waiting_for_backlog(limit).await?;
            }
            let (read, took) = self.working().await?;
            if self.state.finished {
                return Ok(self.state);
            }
            self.resting(self.backfill.rest_after(took, read)).await?;
        }
    }

    /// Reads the backfill's row: stops when it was cancelled or another run
    /// took it over, waits while it is paused.
    async fn obey(&mut self) -> Result<(), BackfillError> {
        if self.control().await? {
            self.paused().await?;
        }
        Ok(())
    }

    /// Whether the backfill is paused; an error when it was cancelled or
    /// another run took it over. Its rows read are the row's (a batch of a
    /// run that was taken over may have committed since this run began). A
    /// row that is gone is left to the next batch, which says so.
    async fn control(&mut self) -> Result<bool, BackfillError> {
        let Some(row) = self
            .client
            .query_opt(sql::CONTROL, &[&self.state.table, &self.run_id])
            .await?
        else {
            return Ok(false);
        };
        let (paused, cancelled, taken_over): (bool, bool, bool) =
            (row.get(0), row.get(1), row.get(2));
        self.state.rows_read = row.get::<_, i64>(3).max(0) as u64;
        if cancelled {
            tracing::info!(
                table = %self.state.table,
                rows_read = self.state.rows_read,
                "backfill cancelled"
            );
            return Err(BackfillError::Cancelled {
                table: self.state.table.clone(),
                rows_read: self.state.rows_read,
            });
        }
        if taken_over {
            return Err(BackfillError::TakenOver {
                table: self.state.table.clone(),
            });
        }
        Ok(paused)
    }

    /// Paused: waits until the backfill is resumed, or stops when it is
    /// cancelled.
    async fn paused(&mut self) -> Result<(), BackfillError> {
        tracing::info!(
            table = %self.state.table,
            rows_read = self.state.rows_read,
            "backfill paused; waiting until it is resumed or cancelled"
        );
        self.state.paused = true;
        (self.progress)(&self.state);
        let since = Instant::now();
        let resumed = loop {
            tokio::time::sleep(Backfill::CONTROL_POLL).await;
            match self.control().await {
                Ok(true) => {}
                Ok(false) => break Ok(()),
                Err(error) => break Err(error),
            }
        };
        self.paused_for += since.elapsed();
        self.state.paused = false;
        resumed?;
        tracing::info!(table = %self.state.table, "backfill resumed");
        (self.progress)(&self.state);
        Ok(())
    }

    /// Waits while more than `limit` events wait for the watcher.
    async fn waiting_for_backlog(&mut self, limit: i64) -> Result<(), BackfillError> {
        let mut looked = Instant::now();
        loop {
            // Its first column is the number of events waiting.
            let backlog: i64 = self.client.query_one(BACKLOG, &[]).await?.get(0);
            self.state.backlog = Some(backlog);
            if backlog <= limit {
                return Ok(());
            }
            (self.progress)(&self.state);
            tokio::time::sleep(BACKLOG_POLL).await;
            if looked.elapsed() >= Backfill::CONTROL_POLL {
                self.obey().await?;
                looked = Instant::now();
            }
        }
    }

    /// Working: reads one batch; the rows read and how long it took.
    async fn working(&mut self) -> Result<(i32, Duration), BackfillError> {
        let mut tries = 0;
        let (row, took) = loop {
            let started = Instant::now();
            match self
                .client
                .query_one(&self.batch, &[&self.backfill.batch])
                .await
            {
                Ok(row) => break (row, started.elapsed()),
                // The batch takes the backfill's row without waiting (NOWAIT),
                // which an operator's pause, resume or cancel holds for a
                // moment; or another run's batch holds it, which the row
                // then shows.
                Err(error)
                    if error.code() == Some(&SqlState::LOCK_NOT_AVAILABLE)
                        && tries < LOCK_TRIES =>
                {
                    tries += 1;
                    tokio::time::sleep(LOCK_RETRY).await;
                    self.obey().await?;
                }
                Err(error) => return Err(error.into()),
            }
        };
        let read: i32 = row.get(0);
        let finished: bool = row.get(1);
        self.state.rows_read += read as u64;
        if finished {
            // A cancel that came after the last look finished the backfill
            // too: the batch then read nothing, and must not pass for the
            // end of the table.
            self.control().await?;
        }
        self.state.finished = finished;
        let working = self.started.elapsed().saturating_sub(self.paused_for);
        if !working.is_zero() {
            self.state.rate = self.state.rows_read.saturating_sub(self.rows_before) as f64
                / working.as_secs_f64();
        }
        (self.progress)(&self.state);
        Ok((read, took))
    }

    /// Resting for `rest` after a batch, reading the row every
    /// [`CONTROL_POLL`](Backfill::CONTROL_POLL) of a long rest.
    async fn resting(&mut self, rest: Duration) -> Result<(), BackfillError> {
        let until = Instant::now() + rest;
        loop {
            let left = until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(());
            }
            tokio::time::sleep(left.min(Backfill::CONTROL_POLL)).await;
            if left > Backfill::CONTROL_POLL {
                self.obey().await?;
            }
        }
    }
}

/// Backfills every row of `table` (`schema.table`) with the default
/// settings of [`Backfill`]; resumes an unfinished backfill of it.
pub async fn backfill(client: &Client, table: &str) -> Result<Progress, BackfillError> {
    Backfill::new(table).run(client, |_| {}).await
}

/// Where a backfill stands, as its row in `dawdle.backfills` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum BackfillState {
    /// Not finished, paused nor cancelled: a run works on it, or will when
    /// one is started again (a run that died leaves
    /// [`updated_at`](BackfillStatus::updated_at) behind).
    Running,
    /// [Paused](pause): a run waits until it is [resumed](resume).
    Paused,
    /// Every row it selects was sent.
    Finished,
    /// [Cancelled](cancel) before every row was sent.
    Cancelled,
}

impl BackfillState {
    /// Its name in lowercase (`running`, `paused`, ...), for tools.
    pub fn as_str(self) -> &'static str {
        match self {
            BackfillState::Running => "running",
            BackfillState::Paused => "paused",
            BackfillState::Finished => "finished",
            BackfillState::Cancelled => "cancelled",
        }
    }
}

impl std::fmt::Display for BackfillState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A backfill, as [`backfills`] lists it for operators' tools: its row in
/// `dawdle.backfills`, with its [`state`](Self::state),
/// [`rate`](Self::rate) and [`eta`](Self::eta).
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct BackfillStatus {
    /// Its name: the table's, `schema.table`.
    pub name: String,
    /// The rows it selects, SQL as after `WHERE`; `None`: every row.
    pub filter: Option<String>,
    /// Rows sent as snapshots since it started, over every run.
    pub rows_read: u64,
    /// The rows it selects, counted (with a filter) or estimated from the
    /// planner's statistics when its latest run began; `None` if unknown.
    /// An estimate may be below [`rows_read`](Self::rows_read).
    pub rows_total: Option<u64>,
    /// When it started from the first row.
    pub started_at: DateTime<Utc>,
    /// When its latest batch committed (when it started, before the first).
    pub updated_at: DateTime<Utc>,
    /// When it ended: every row read, or [cancelled](Self::cancelled_at).
    pub finished_at: Option<DateTime<Utc>>,
    /// Since when it is paused; `None` when it is not.
    pub paused_at: Option<DateTime<Utc>>,
    /// When it was cancelled; `None` when it was not.
    pub cancelled_at: Option<DateTime<Utc>>,
    /// When its rate is measured from: its latest run began, or it was
    /// resumed (`None`: never, by a dawdle older than pausing).
    resumed_at: Option<DateTime<Utc>>,
    /// Rows read at `resumed_at`.
    rows_at_resume: u64,
}

impl BackfillStatus {
    fn from_row(row: &Row) -> BackfillStatus {
        let count = |i: usize| row.get::<_, i64>(i).max(0) as u64;
        BackfillStatus {
            name: row.get(0),
            filter: row.get(1),
            rows_read: count(2),
            rows_total: row.get::<_, Option<i64>>(3).map(|t| t.max(0) as u64),
            started_at: row.get(4),
            updated_at: row.get(5),
            finished_at: row.get(6),
            paused_at: row.get(7),
            cancelled_at: row.get(8),
            resumed_at: row.get(9),
            rows_at_resume: count(10),
        }
    }

    /// Whether it ended: every row was read, or it was cancelled.
    pub fn is_finished(&self) -> bool {
        self.finished_at.is_some()
    }

    /// Whether it is paused (and not ended).
    pub fn is_paused(&self) -> bool {
        self.paused_at.is_some() && !self.is_finished()
    }

    /// Whether it was cancelled.
    pub fn is_cancelled(&self) -> bool {
        self.cancelled_at.is_some()
    }

    /// Where it stands: cancelled, finished, paused or running, the first
    /// that holds.
    pub fn state(&self) -> BackfillState {
        if self.cancelled_at.is_some() {
            BackfillState::Cancelled
        } else if self.finished_at.is_some() {
            BackfillState::Finished
        } else if self.paused_at.is_some() {
            BackfillState::Paused
        } else {
            BackfillState::Running
        }
    }

    /// Rows per second: the rows read since its latest run began or it was
    /// last resumed, over the time to its latest batch, rests and waits for
    /// the watcher included, pauses left out. `None` before a batch of that
    /// stretch committed. While it is paused, the rate before the pause; for
    /// a run that died, the rate until it died.
    pub fn rate(&self) -> Option<f64> {
        let since = self.resumed_at?;
        let seconds = (self.updated_at - since).num_microseconds()? as f64 / 1e6;
        let rows = self.rows_read.checked_sub(self.rows_at_resume)?;
        (seconds > 0.0).then(|| rows as f64 / seconds)
    }

    /// The time left at [`rate`](Self::rate) for a
    /// [running](BackfillState::Running) backfill whose total is known;
    /// `None` otherwise (paused, finished, cancelled, or no rate yet).
    pub fn eta(&self) -> Option<Duration> {
        if self.state() != BackfillState::Running {
            return None;
        }
        let rate = self.rate().filter(|rate| *rate > 0.0)?;
        let left = self.rows_total?.saturating_sub(self.rows_read);
        Some(Duration::from_secs_f64(left as f64 / rate))
    }
}

/// Every backfill of the database `client` is connected to, by name:
/// running, paused, finished and cancelled ones (a finished one stays
/// until its table is backfilled again).
pub async fn backfills(client: &Client) -> Result<Vec<BackfillStatus>, BackfillError> {
    let rows = client.query(sql::LIST, &[]).await?;
    Ok(rows.iter().map(BackfillStatus::from_row).collect())
}

/// Pauses the backfill `name` (`schema.table`): its run waits before its
/// next batch (a batch in flight ends first) until it is [resumed](resume)
/// or [cancelled](cancel). Whether an unfinished backfill of that name
/// exists (`true` too when it was paused already); `false`: none, or it
/// finished or was cancelled.
pub async fn pause(client: &Client, name: &str) -> Result<bool, BackfillError> {
    Ok(client.query_opt(sql::PAUSE, &[&name]).await?.is_some())
}

/// Resumes the paused backfill `name` (`schema.table`): its run, if one
/// waits, goes on within [`CONTROL_POLL`](Backfill::CONTROL_POLL). Whether
/// an unfinished backfill of that name exists (`true` too when it was not
/// paused); `false`: none, or it finished or was cancelled.
pub async fn resume(client: &Client, name: &str) -> Result<bool, BackfillError> {
    Ok(client.query_opt(sql::RESUME, &[&name]).await?.is_some())
}

/// Cancels the backfill `name` (`schema.table`), paused or not: it is
/// finished at once and marked cancelled; its run stops before its next
/// batch with [`BackfillError::Cancelled`], and a backfill of the table
/// started again begins at the first row. Whether an unfinished backfill
/// of that name was there to cancel; `false`: none, or it finished or was
/// cancelled already.
pub async fn cancel(client: &Client, name: &str) -> Result<bool, BackfillError> {
    Ok(client.query_opt(sql::CANCEL, &[&name]).await?.is_some())
}

#[cfg(test)]
mod tests {
    use chrono::TimeDelta;

    use super::*;

    fn status(rows_read: u64, total: Option<u64>) -> BackfillStatus {
        let resumed = DateTime::from_timestamp(1_000, 0).unwrap();
        BackfillStatus {
            name: "public.t".to_owned(),
            filter: None,
            rows_read,
            rows_total: total,
            started_at: resumed - TimeDelta::hours(1),
            updated_at: resumed + TimeDelta::seconds(10),
            finished_at: None,
            paused_at: None,
            cancelled_at: None,
            resumed_at: Some(resumed),
            rows_at_resume: 1_000,
        }
    }

    #[test]
    fn the_rate_counts_from_the_latest_resume_and_the_eta_only_while_running() {
        let running = status(3_000, Some(10_000));
        assert_eq!(running.state(), BackfillState::Running);
        assert_eq!(running.rate(), Some(200.0));
        assert_eq!(running.eta(), Some(Duration::from_secs(35)));

        let paused = BackfillStatus {
            paused_at: Some(running.updated_at),
            ..running.clone()
        };
        assert_eq!(paused.state(), BackfillState::Paused);
        assert_eq!((paused.rate(), paused.eta()), (Some(200.0), None));

        let cancelled = BackfillStatus {
            finished_at: Some(running.updated_at),
            cancelled_at: Some(running.updated_at),
            ..running.clone()
        };
        assert_eq!(cancelled.state(), BackfillState::Cancelled);
        assert_eq!(cancelled.eta(), None);

        // No total, an estimate below the rows read, no batch since the resume.
        assert_eq!(status(3_000, None).eta(), None);
        assert_eq!(status(3_000, Some(2_000)).eta(), Some(Duration::ZERO));
        let resumed_now = BackfillStatus {
            resumed_at: Some(running.updated_at + TimeDelta::seconds(1)),
            ..running
        };
        assert_eq!((resumed_now.rate(), resumed_now.eta()), (None, None));
    }
}

//! The watcher: moves captured events from dawdle's event tables to a
//! [`Queue`], in order, promptly, and without losing any.
//!
//! # One active watcher
//!
//! Every watcher opens a dedicated connection and tries to take a PostgreSQL
//! advisory lock on it. The one that holds it drains; the others retry every
//! [`standby_retry`](WatcherBuilder::standby_retry) (1 s by default). The lock
//! goes with the connection: when the leader dies, its session ends (the
//! connection sets server-side TCP keepalives and `tcp_user_timeout`, so a
//! vanished client is noticed within about 3 s) and a standby takes over. The
//! leader runs every query of the drain on that same connection, so a leader
//! that loses it stops at its next query.
//!
//! # Never losing an event
//!
//! The watcher keeps a cursor in `dawdle.cursor`: a snapshot such that every
//! event of a transaction visible in it was sent. Each round reads the
//! events of the transactions committed since (a *window*, in event-id
//! order), sends them, and moves the cursor in the same transaction, only
//! past what the queue accepted. A crash before the move sends them again
//! (at-least-once: duplicates carry the same event id); with a
//! [`PgQueue`](crate::PgQueue) in the same database, the messages are
//! written in that transaction, and a crash leaves neither. Nothing depends
//! on a notification arriving: each round reads whatever was committed, so
//! events written while no watcher ran are sent when one starts. Event
//! tables are emptied by TRUNCATE once the cursor passed every transaction
//! that could write to them (see [`crate::sql`] for the design).
//!
//! # Waking up without a NOTIFY per transaction
//!
//! A transaction that sends NOTIFY takes a cluster-wide lock at commit and
//! holds it through the commit's WAL flush: with a NOTIFY per transaction,
//! concurrent writers commit one at a time (measured at 0.19–0.29 of plain
//! insert throughput with 8 writers). So writers only notify while the
//! doorbell is armed, and the watcher arms it only when it is idle.
//!
//! The doorbell is an advisory lock ([`DOORBELL_LOCK`](crate::sql::DOORBELL_LOCK)).
//! Armed, the watcher holds it exclusively on its connection. Every capture
//! trigger runs `pg_try_advisory_xact_lock_shared` on it: while the doorbell
//! is disarmed that succeeds, and the writer holds the lock in shared mode
//! until its transaction ends, without notifying; while it is armed it fails,
//! and the writer notifies. A lock check costs a writer far less than a
//! query, and a lock, unlike a flag in a table, cannot be read stale:
//!
//! These are the states of the leader's loop (`watcher/leader.rs`), one
//! method each:
//!
//! 1. **Busy.** While rounds find events, the watcher reads again at once.
//! 2. **Lingering.** When a round finds nothing, it polls every
//!    [`linger_poll`](WatcherBuilder::linger_poll) (3 ms) for
//!    [`linger`](WatcherBuilder::linger) (250 ms). Under steady load the next
//!    event comes sooner, so a loaded system never arms the doorbell and its
//!    writers never notify.
//! 3. **Arming.** Past the linger, the watcher tries to take the lock
//!    exclusively, without waiting. It gets it only when no transaction that
//!    captured a row without ringing is still running, and since a lock is
//!    released after its transaction's commit is visible, one more round then
//!    sees every such event. While such a transaction stays open (a long
//!    batch job), the watcher keeps polling instead, at intervals doubling up
//!    to 100 ms.
//! 4. **Asleep.** Armed, the watcher waits on LISTEN. The first writer rings;
//!    the watcher disarms (unlocks) and drains. A timer
//!    ([`poll_interval`](WatcherBuilder::poll_interval), 1 s) wakes it
//!    anyway, as a safety net. If the watcher dies, its session ends and the
//!    lock with it: writers stop ringing a doorbell nobody listens to.
//!
//! An armed doorbell costs writers one NOTIFY per transaction, but only
//! while the watcher sleeps, that is while writes are rare.
//!
//! # Capture from the WAL
//!
//! With [`Capture::Wal`] (and up rendered for it), the leader also reads
//! the database's logical replication slot, over the streaming
//! replication protocol, and builds each change's event in Rust; it
//! confirms a position to the slot only once every route's queue accepted
//! the events before it, so a crash sends them again rather than losing
//! them. Signals and backfills still go through the event tables, in the
//! rounds above. README, "Choosing a capture mode", says what each mode
//! costs and needs.

mod activity;
mod drain;
mod encoder;
pub(crate) use encoder::compare as compare_encoders;
pub(crate) use wal::{peek as peek_wal_events, FLUSH_WAL};
mod error;
mod leader;
pub(crate) mod pack;
mod rotate;
mod route;
mod session;
mod settings;
mod stats;
mod wal;
mod window;

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::backoff::{sleep_or_stop, Backoff};
use crate::database::Database;
use crate::queue::Queue;
pub use crate::sql::Capture;
pub use error::WatcherError;
use leader::Leader;
pub use route::Route;
use session::Session;
use settings::Settings;
pub use stats::Stats;

/// Moves captured events from PostgreSQL to a queue. See the [module
/// docs](self) for how it elects one leader, never loses an event and wakes
/// up without costing writers a NOTIFY.
#[derive(Debug, Clone)]
pub struct Watcher {
    database: Database,
    routes: Vec<Route>,
    settings: Settings,
    capture: Capture,
}

/// Settings of a [`Watcher`].
#[derive(Debug, Clone)]
pub struct WatcherBuilder {
    watcher: Watcher,
}

impl WatcherBuilder {
    /// [`batch_size`](Self::batch_size)'s default.
    pub const DEFAULT_BATCH_SIZE: usize = 1000;
    /// [`max_events_per_message`](Self::max_events_per_message)'s default.
    pub const DEFAULT_MAX_EVENTS_PER_MESSAGE: usize = 100;
    /// [`poll_interval`](Self::poll_interval)'s default.
    pub const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(1);
    /// [`linger`](Self::linger)'s default.
    pub const DEFAULT_LINGER: Duration = Duration::from_millis(250);
    /// [`linger_poll`](Self::linger_poll)'s default.
    pub const DEFAULT_LINGER_POLL: Duration = Duration::from_millis(3);
    /// [`standby_retry`](Self::standby_retry)'s default.
    pub const DEFAULT_STANDBY_RETRY: Duration = Duration::from_secs(1);
    /// [`payload_retention`](Self::payload_retention)'s default: SQS's
    /// default retention.
    pub const DEFAULT_PAYLOAD_RETENTION: Duration = Duration::from_secs(4 * 24 * 3600);
    /// [`send_timeout`](Self::send_timeout)'s default.
    pub const DEFAULT_SEND_TIMEOUT: Duration = Duration::from_secs(30);

    /// Events read per round (default 1,000).
    pub fn batch_size(mut self, events: usize) -> Self {
        self.watcher.settings.batch_size = events.max(1);
        self
    }

    /// Most events packed into one message (default 100).
    pub fn max_events_per_message(mut self, events: usize) -> Self {
        self.watcher.settings.max_events_per_message = events.max(1);
        self
    }

    /// The safety-net timer while asleep (default 1 s).
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.watcher.settings.poll_interval = interval.max(Duration::from_millis(10));
        self
    }

    /// How long to keep polling after the last event before arming the
    /// doorbell (default 250 ms).
    pub fn linger(mut self, linger: Duration) -> Self {
        self.watcher.settings.linger = linger;
        self
    }

    /// The polling interval while lingering (default 3 ms): under load, the watcher waits this long between rounds, so that each carries more events.
    pub fn linger_poll(mut self, interval: Duration) -> Self {
        self.watcher.settings.linger_poll = interval.max(Duration::from_micros(100));
        self
    }

    /// How often a standby tries to become the leader (default 1 s).
    pub fn standby_retry(mut self, interval: Duration) -> Self {
        self.watcher.settings.standby_retry = interval;
        self
    }

    /// The least time the rows of a by-reference event wait in
    /// `dawdle.payloads` for a listener to handle it (default 4 days, SQS's
    /// default retention). They wait longer when the queue may deliver the
    /// message later ([`Queue::retention`]):
    /// on a [`PgQueue`](crate::PgQueue) or a [`MemoryQueue`](crate::MemoryQueue),
    /// until handled (a PgQueue's dead letter, until discarded), however
    /// long that takes; on an SQS queue, its retention period plus its
    /// dead-letter queue's.
    pub fn payload_retention(mut self, retention: Duration) -> Self {
        self.watcher.settings.payload_retention = retention;
        self
    }

    /// The longest a send call to the queue may take before it counts as
    /// failed (default 30 s): the events stay in PostgreSQL and are sent
    /// again after a backoff. Queues should time their own calls out
    /// sooner ([`SqsQueue`](crate::SqsQueue) does); this bounds any queue,
    /// so that a hung call never holds the leadership.
    pub fn send_timeout(mut self, timeout: Duration) -> Self {
        self.watcher.settings.send_timeout = timeout.max(Duration::from_millis(1));
        self
    }

    /// How the database captures changes (default
    /// [`Capture::Triggers`]): as the up migration was rendered
    /// (`dawdle-sql --capture`). With [`Capture::Wal`], the leader reads
    /// the database's replication slot (see README, "Choosing a capture
    /// mode"); signals and backfills go through dawdle's event tables in
    /// both modes.
    pub fn capture(mut self, capture: Capture) -> Self {
        self.watcher.capture = capture;
        self
    }

    /// Also sends the events `route` takes to its queue: each event goes to
    /// every route that takes it (see [`Route`]).
    pub fn route(mut self, route: Route) -> Self {
        self.watcher.routes.push(route);
        self
    }

    /// The watcher.
    pub fn build(self) -> Watcher {
        self.watcher
    }
}

/// A running watcher.
#[derive(Debug)]
pub struct WatcherHandle {
    stats: Arc<Stats>,
    stop: watch::Sender<bool>,
    task: JoinHandle<Result<(), WatcherError>>,
}

impl WatcherHandle {
    /// What the watcher has done so far.
    pub fn stats(&self) -> &Stats {
        &self.stats
    }

    /// [`stats`](Self::stats), to keep after the handle is gone (a health
    /// endpoint's, say).
    pub fn shared_stats(&self) -> Arc<Stats> {
        self.stats.clone()
    }

    /// Stops after the current round (whose events are sent or left in
    /// PostgreSQL, never lost) and waits for it.
    pub async fn shutdown(mut self) -> Result<(), WatcherError> {
        let _ = self.stop.send(true);
        (&mut self.task).await?
    }

    /// Whether the watcher has stopped: after [`shutdown`](Self::shutdown),
    /// or by itself on a [fatal](WatcherError::is_fatal) error, which
    /// `shutdown` then returns.
    pub fn is_finished(&self) -> bool {
        self.task.is_finished()
    }

    /// Stops at once, as a crash would: nothing is cleaned up.
    pub fn abort(self) {
        self.task.abort();
    }
}

impl Drop for WatcherHandle {
    /// A dropped handle stops the watcher after its current round, rather
    /// than leaving it running with no way to stop it.
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}

impl Watcher {
    /// A watcher of `database` (a [`tokio_postgres::Config`] or a
    /// [`Database`]), sending every event to `queue` (a route named
    /// `default`; [`route`](WatcherBuilder::route) adds others).
    pub fn builder(database: impl Into<Database>, queue: impl Queue) -> WatcherBuilder {
        Self::builder_shared(database, Arc::new(queue))
    }

    /// [`Watcher::builder`] with a queue that is shared already.
    pub fn builder_shared(database: impl Into<Database>, queue: Arc<dyn Queue>) -> WatcherBuilder {
        Self::routed(database, Route::shared("default", queue))
    }

    /// A watcher of `database` that sends the events `route` takes to its
    /// queue; [`route`](WatcherBuilder::route) adds others. Events that no
    /// route takes are not sent.
    pub fn routed(database: impl Into<Database>, route: Route) -> WatcherBuilder {
        WatcherBuilder {
            watcher: Watcher {
                database: database.into(),
                routes: vec![route],
                capture: Capture::Triggers,
                settings: Settings {
                    batch_size: WatcherBuilder::DEFAULT_BATCH_SIZE,
                    max_events_per_message: WatcherBuilder::DEFAULT_MAX_EVENTS_PER_MESSAGE,
                    poll_interval: WatcherBuilder::DEFAULT_POLL_INTERVAL,
                    linger: WatcherBuilder::DEFAULT_LINGER,
                    linger_poll: WatcherBuilder::DEFAULT_LINGER_POLL,
                    standby_retry: WatcherBuilder::DEFAULT_STANDBY_RETRY,
                    payload_retention: WatcherBuilder::DEFAULT_PAYLOAD_RETENTION,
                    backlog_interval: Duration::from_secs(5),
                    send_timeout: WatcherBuilder::DEFAULT_SEND_TIMEOUT,
                },
            },
        }
    }

    /// The routes.
    pub fn routes(&self) -> &[Route] {
        &self.routes
    }

    /// Runs the watcher on a task of its own. Routes that cannot run
    /// (two of one name, more than 64) stop it at once with
    /// [`WatcherError::Unsupported`].
    pub fn start(self) -> WatcherHandle {
        crate::observability::describe();
        let stats = Arc::new(Stats::default());
        let (stop, stopped) = watch::channel(false);
        let task = tokio::spawn(self.run(stats.clone(), stopped));
        WatcherHandle { stats, stop, task }
    }

    /// Runs until `stop` turns true: elects, drains, reconnects.
    async fn run(
        self,
        stats: Arc<Stats>,
        mut stop: watch::Receiver<bool>,
    ) -> Result<(), WatcherError> {
        route::check(&self.routes).map_err(WatcherError::Unsupported)?;
        if self.routes.len() > drain::Routing::MAX_ROUTES {
            return Err(WatcherError::Unsupported(format!(
                "a watcher has at most {} routes; this one has {}",
                drain::Routing::MAX_ROUTES,
                self.routes.len()
            )));
        }
        let mut backoff = Backoff::new();
        while !*stop.borrow() {
            let result = self.session(&stats, &mut stop, &mut backoff).await;
            stats.set_leading(false);
            stats.set_connected(false);
            if let Err(error) = result {
                if error.is_fatal() {
                    tracing::error!(%error, "the watcher stops");
                    return Err(error);
                }
                let delay = backoff.next();
                tracing::warn!(%error, retry_in_ms = delay.as_millis() as u64, "watcher lost its database connection");
                sleep_or_stop(delay, &mut stop).await;
            }
        }
        Ok(())
    }

    /// One connection's life: wait to lead, then drain until stopped or lost.
    async fn session(
        &self,
        stats: &Stats,
        stop: &mut watch::Receiver<bool>,
        backoff: &mut Backoff,
    ) -> Result<(), WatcherError> {
        let session = Session::connect(&self.database).await?;
        loop {
            if *stop.borrow() {
                return Ok(());
            }
            let leads = session.try_lead().await?;
            // Connected, and the database answers: leading or standing by.
            stats.set_connected(true);
            if leads {
                break;
            }
            backoff.reset();
            sleep_or_stop(self.settings.standby_retry, stop).await;
        }
        tracing::info!("this watcher is now the active one");
        stats.set_leading(true);
        backoff.reset();
        let leader = Leader::new(&self.settings, &self.routes, &session, stats).await?;
        match self.capture {
            Capture::Triggers => leader.run(stop).await,
            Capture::Wal => {
                // The event tables still carry signals and backfills.
                let mut wal_stop = stop.clone();
                let reader = wal::WalReader::new(
                    &self.database,
                    &self.routes,
                    &self.settings,
                    stats,
                    &session,
                );
                tokio::try_join!(leader.run(stop), reader.run(&mut wal_stop)).map(|_| ())
            }
        }
    }
}

//! The leader's dedicated connection: it holds the advisory lock that makes
//! this watcher the only active one, holds the doorbell while the watcher
//! sleeps, receives the doorbell's notifications, and runs every query of the
//! drain, so that losing it stops sending at once.

use std::collections::HashMap;
use std::future::{poll_fn, Future};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_postgres::types::ToSql;
use tokio_postgres::{AsyncMessage, Client, Row, SimpleQueryMessage, Statement};

use super::error::WatcherError;
use crate::database::Database;
use crate::sql::catalog::watcher;

// The advisory lock key of the active watcher, defined beside the query of
// `dawdle status` that looks for its holder.
use crate::sql::catalog::LEADER_LOCK;

/// A query that takes longer than this counts as a lost connection.
const QUERY_TIMEOUT: Duration = Duration::from_secs(5);

/// The same for reading a page of a window, which walks the window's index
/// entries: after an outage, that can be millions of events. (A vanished server is
/// noticed sooner, by TCP keepalives.)
const WINDOW_TIMEOUT: Duration = Duration::from_secs(600);

#[derive(Debug)]
pub(crate) struct Session {
    client: Client,
    /// Identifies the database among all that may feed one queue.
    source: u64,
    driver: JoinHandle<()>,
    doorbell: Arc<Notify>,
    /// Every query the watcher runs, prepared once per connection: parsing
    /// and planning them on every round would cost the server more than
    /// running them.
    statements: Mutex<HashMap<&'static str, Statement>>,
}

impl Drop for Session {
    fn drop(&mut self) {
        // Closing the connection releases the advisory lock.
        self.driver.abort();
    }
}

impl Session {
    pub(crate) async fn connect(database: &Database) -> Result<Session, WatcherError> {
        let mut database = database.clone();
        database
            .config_mut()
            .application_name("dawdle-watcher")
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(1))
            .connect_timeout(Duration::from_secs(5));
        let (client, mut connection) = tokio::time::timeout(QUERY_TIMEOUT, database.connect())
            .await
            .map_err(|_| WatcherError::Timeout {
                what: "connecting",
                limit: QUERY_TIMEOUT,
            })??;
        let doorbell = Arc::new(Notify::new());
        let bell = doorbell.clone();
        let driver = tokio::spawn(async move {
            while let Some(message) = poll_fn(|cx| connection.poll_message(cx)).await {
                match message {
                    Ok(AsyncMessage::Notification(_)) => bell.notify_one(),
                    Ok(_) => {}
                    Err(error) => {
                        tracing::warn!(%error, "watcher connection failed");
                        break;
                    }
                }
            }
            // Wake a waiting drain loop: its next query fails and it reconnects.
            bell.notify_one();
        });
        let mut session = Session {
            client,
            driver,
            doorbell,
            source: 0,
            statements: Mutex::new(HashMap::new()),
        };
        // The server drops the session (and with it the lock) within a few
        // seconds of losing the client, so that a standby takes over.
        // No JIT: the watcher's queries are short, and the planner's
        // estimates of the readers' rows can make compiling one (tens of
        // milliseconds) look worth it, which stalls the rounds.
        // Commits need not wait for the disk: a cursor move that a crash
        // undoes sends its events again (at least once), and WAL is replayed
        // in order, so a TRUNCATE never survives without the cursor move
        // before it, nor a cursor move without the payloads parked before it.
        session
            .batch(
                "SET TimeZone = 'UTC'; SET synchronous_commit = off; SET jit = off;
                 SET tcp_keepalives_idle = 1; SET tcp_keepalives_interval = 1; SET tcp_keepalives_count = 2;
                 SET tcp_user_timeout = 3000;",
            )
            .await?;
        let source: String = session.query_one(watcher::SOURCE, &[]).await?.get(0);
        session.source = crate::fnv::fnv(crate::fnv::OFFSET_BASIS, source.as_bytes());
        Ok(session)
    }

    /// A hash of this database's `dawdle.doorbell.source`, a random id made
    /// by the migration: FIFO deduplication ids include it, so that two
    /// databases feeding one queue never collide.
    pub(crate) fn source(&self) -> u64 {
        self.source
    }

    /// Tries to arm the doorbell (see the watcher's module docs): fails
    /// while a writer that captured a row without ringing is still running.
    pub(crate) async fn arm(&self) -> Result<bool, WatcherError> {
        let (class, object) = crate::sql::DOORBELL_LOCK;
        let row = self.query_one(watcher::ARM, &[&class, &object]).await?;
        Ok(row.get(0))
    }

    /// Disarms the doorbell: writers stop notifying.
    pub(crate) async fn disarm(&self) -> Result<(), WatcherError> {
        let (class, object) = crate::sql::DOORBELL_LOCK;
        self.query_one(watcher::DISARM, &[&class, &object]).await?;
        Ok(())
    }

    /// Tries to become the active watcher.
    pub(crate) async fn try_lead(&self) -> Result<bool, WatcherError> {
        let row = self.query_one(watcher::LEAD, &[&LEADER_LOCK]).await?;
        let leading: bool = row.get(0);
        if leading {
            if !self.still_leads().await? {
                // The lock was taken by one server session and looked for
                // from another: statements of this connection do not share
                // a session. Draining so would lose the lock unnoticed.
                return Err(WatcherError::Unsupported(
                    "the watcher's statements run in different server sessions: a connection \
                     pooler in transaction mode (PgBouncer, RDS Proxy) sits between; the watcher \
                     needs a direct session (session advisory locks and LISTEN)"
                        .to_owned(),
                ));
            }
            self.check_event_ids().await?;
            self.check_capture().await?;
            self.batch(&format!("LISTEN \"{}\"", crate::sql::DOORBELL_CHANNEL))
                .await?;
        }
        Ok(leading)
    }

    /// Whether this session still holds the leader's lock: checked before
    /// every send, so that a leader that lost it never sends again.
    pub(crate) async fn still_leads(&self) -> Result<bool, WatcherError> {
        // A bigint key is held as (high 32 bits, low 32 bits, 1).
        let row = self
            .query_one(
                watcher::STILL_LEADS,
                &[&(LEADER_LOCK >> 32), &(LEADER_LOCK & 0xffff_ffff)],
            )
            .await?;
        Ok(row.get(0))
    }

    /// Refuses an installation of an older version, and an event-id
    /// sequence that hands out ids in blocks: a window is sent in id order,
    /// which is the order of a row's changes only if ids are taken one at a
    /// time (see `window.rs`).
    async fn check_event_ids(&self) -> Result<(), WatcherError> {
        let cache: Option<i64> = self.query_one(watcher::ID_CACHE, &[]).await?.get(0);
        match cache {
            None => Err(WatcherError::Unsupported(
                "the database has no dawdle.event_id sequence: apply the up migration of this \
                 version of dawdle (dawdle-sql), which also upgrades an earlier installation"
                    .to_owned(),
            )),
            Some(cache) if cache > 1 => Err(WatcherError::Unsupported(format!(
                "the sequence dawdle.event_id has CACHE {cache}; with more than 1, a later \
                 change of a row can get a lower id than an earlier one, and be sent before it. \
                 Run: ALTER SEQUENCE dawdle.event_id CACHE 1"
            ))),
            Some(_) => Ok(()),
        }
    }

    /// Refuses to run while a partition or inheritance child of a captured
    /// table lacks its triggers (made after up, where no event trigger
    /// installs them): its writes would not be captured.
    async fn check_capture(&self) -> Result<(), WatcherError> {
        let uncaptured = self.uncaptured().await?;
        if uncaptured.is_empty() {
            return Ok(());
        }
        Err(WatcherError::Unsupported(uncaptured_message(&uncaptured)))
    }

    /// The tables below a captured one that lack its triggers.
    pub(crate) async fn uncaptured(&self) -> Result<Vec<String>, WatcherError> {
        Ok(self.query_one(watcher::UNCAPTURED, &[]).await?.get(0))
    }

    /// Resolves when the doorbell rings (or the connection dies).
    pub(crate) fn rung(&self) -> impl Future<Output = ()> + '_ {
        self.doorbell.notified()
    }

    /// The connection, for a queue that sends in the drain's transaction.
    pub(crate) fn client(&self) -> &Client {
        &self.client
    }

    pub(crate) fn is_alive(&self) -> bool {
        !self.driver.is_finished() && !self.client.is_closed()
    }

    async fn timed<T>(
        &self,
        future: impl Future<Output = Result<T, tokio_postgres::Error>>,
    ) -> Result<T, WatcherError> {
        timed("query", QUERY_TIMEOUT, future).await
    }

    pub(crate) async fn batch(&self, sql: &str) -> Result<(), WatcherError> {
        self.timed(self.client.batch_execute(sql)).await
    }

    /// Runs `sql` (several statements, no parameters) and returns what
    /// each answered.
    pub(crate) async fn simple(&self, sql: &str) -> Result<Vec<SimpleQueryMessage>, WatcherError> {
        self.timed(self.client.simple_query(sql)).await
    }

    fn statements(&self) -> std::sync::MutexGuard<'_, HashMap<&'static str, Statement>> {
        crate::sync::lock(&self.statements)
    }

    /// `sql`, prepared on this connection at its first use.
    async fn prepared(&self, sql: &'static str) -> Result<Statement, WatcherError> {
        let cached = self.statements().get(sql).cloned();
        if let Some(statement) = cached {
            return Ok(statement);
        }
        let statement = self.timed(self.client.prepare(sql)).await?;
        self.statements().insert(sql, statement.clone());
        Ok(statement)
    }

    pub(crate) async fn query(
        &self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, WatcherError> {
        let statement = self.prepared(sql).await?;
        self.timed(self.client.query(&statement, params)).await
    }

    /// [`query`](Self::query), for reading a window.
    pub(crate) async fn query_long(
        &self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Vec<Row>, WatcherError> {
        let statement = self.prepared(sql).await?;
        timed(
            "reading a window",
            WINDOW_TIMEOUT,
            self.client.query(&statement, params),
        )
        .await
    }

    pub(crate) async fn query_one(
        &self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Row, WatcherError> {
        let statement = self.prepared(sql).await?;
        self.timed(self.client.query_one(&statement, params)).await
    }

    pub(crate) async fn execute(
        &self,
        sql: &'static str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<u64, WatcherError> {
        let statement = self.prepared(sql).await?;
        self.timed(self.client.execute(&statement, params)).await
    }
}

/// `future`, or [`WatcherError::Timeout`] past `limit`.
async fn timed<T>(
    what: &'static str,
    limit: Duration,
    future: impl Future<Output = Result<T, tokio_postgres::Error>>,
) -> Result<T, WatcherError> {
    match tokio::time::timeout(limit, future).await {
        Ok(result) => Ok(result?),
        Err(_) => Err(WatcherError::Timeout { what, limit }),
    }
}

/// What to say about tables whose writes are not captured.
pub(crate) fn uncaptured_message(tables: &[String]) -> String {
    let one = tables.len() == 1;
    format!(
        "{} below a captured table lack{} dawdle's triggers (made after the up migration, \
         without its event trigger): writes to {} are not captured. Run the up migration again \
         (dawdle-sql apply); applied by a superuser, it also installs the event trigger that \
         does this for tables made later",
        tables.join(", "),
        if one { "s" } else { "" },
        if one { "it" } else { "them" },
    )
}

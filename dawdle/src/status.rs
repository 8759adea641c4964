//! What waits in a database and who works on it, for operators' tools
//! (`dawdle status` prints these): the backlog of events, the watcher that
//! leads, the by-reference payloads and the delayed signals.
//!
//! Each is one read on a client of the database; the capture's health is
//! [`sql::capture_health`](crate::sql::capture_health), and a queue's depth
//! and dead letters its [`QueueAdmin`](crate::queue::QueueAdmin).
//!
//! ```no_run
//! # async fn demo(client: &tokio_postgres::Client) -> Result<(), dawdle::status::StatusError> {
//! let backlog = dawdle::status::backlog(client).await?;
//! println!("{} events waiting", backlog.events);
//! match dawdle::status::leader(client).await? {
//!     Some(leader) => println!("led by pid {}", leader.pid),
//!     None => println!("no watcher leads"),
//! }
//! # Ok(()) }
//! ```

use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use tokio_postgres::error::SqlState;
use tokio_postgres::Client;

use crate::sql::catalog::watcher;
use crate::sql::catalog::{status, LEADER_LOCK};

/// A read of [`dawdle::status`](self) failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StatusError {
    /// The database lacks dawdle's objects, or has those of an older
    /// version: apply dawdle's up migration ([`sql::up`](crate::sql::up)).
    #[error(
        "reading {what}: the database has no dawdle objects of this version; apply dawdle's up \
         migration first"
    )]
    NotInstalled {
        /// What was read.
        what: &'static str,
        /// What PostgreSQL said.
        #[source]
        source: tokio_postgres::Error,
    },
    /// The query failed otherwise.
    #[error("reading {what}")]
    Query {
        /// What was read.
        what: &'static str,
        /// What PostgreSQL said.
        #[source]
        source: tokio_postgres::Error,
    },
}

impl StatusError {
    fn reading(what: &'static str) -> impl FnOnce(tokio_postgres::Error) -> StatusError {
        move |source| match source.code() {
            Some(
                &SqlState::UNDEFINED_TABLE
                | &SqlState::UNDEFINED_FUNCTION
                | &SqlState::INVALID_SCHEMA_NAME,
            ) => StatusError::NotInstalled { what, source },
            _ => StatusError::Query { what, source },
        }
    }
}

/// The events waiting to be sent, as the watcher measures them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Backlog {
    /// Events the watcher's cursor has not passed: the id range of the
    /// waiting events (rolled-back ids included), counted without building
    /// their JSON.
    pub events: u64,
    /// How long ago the oldest of them was captured; `None` when none waits.
    pub oldest_age: Option<Duration>,
}

/// The session holding the watcher's leader lock: the active watcher.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Leader {
    /// Its server process id.
    pub pid: i32,
    /// Its `application_name` (`dawdle-watcher`; empty when none is set).
    pub application_name: String,
    /// The client's address; `None` over a Unix socket.
    pub client_addr: Option<String>,
    /// When it connected.
    pub backend_start: DateTime<Utc>,
    /// How long it has been connected.
    pub connected_for: Duration,
}

/// The rows of by-reference events waiting in `dawdle.payloads` for their
/// message to be handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct Payloads {
    /// Rows waiting.
    pub pending: u64,
    /// Of those, rows past their expiry, which the watcher removes.
    pub expired: u64,
}

/// Signals waiting in `dawdle.delayed` for their time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub struct DelayedSignals {
    /// How many wait.
    pub delayed: u64,
    /// In how long the earliest is due: negative when overdue (a watcher
    /// releases it when it next looks); `None` when none waits.
    pub next_due_in: Option<TimeDelta>,
}

/// The replication slot of capture from the WAL.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct WalSlot {
    /// Its name (`dawdle_<database oid>`).
    pub name: String,
    /// A watcher reads it now.
    pub active: bool,
    /// PostgreSQL's `wal_status`: `reserved`, `extended`, `unreserved`
    /// (WAL it needs may go at the next checkpoint), or `lost` (it went:
    /// the slot is invalidated, see README).
    pub wal_status: Option<String>,
    /// Bytes of WAL the slot keeps the server from removing.
    pub retained_bytes: u64,
    /// Bytes of WAL written since its confirmed position: changes not sent
    /// or not confirmed yet.
    pub lag_bytes: u64,
}

/// The replication slot of the database `client` is connected to, when it
/// is captured from the WAL (`None` otherwise, or before the slot is made).
pub async fn wal_slot(client: &Client) -> Result<Option<WalSlot>, StatusError> {
    let row = client
        .query_opt(status::WAL_SLOT, &[])
        .await
        .map_err(StatusError::reading("the replication slot"))?;
    Ok(row.map(|row| WalSlot {
        name: row.get(0),
        active: row.get(1),
        wal_status: row.get(2),
        retained_bytes: count(row.get::<_, Option<i64>>(3).unwrap_or(0)),
        lag_bytes: count(row.get::<_, Option<i64>>(4).unwrap_or(0)),
    }))
}

/// A count from PostgreSQL, never negative.
fn count(value: i64) -> u64 {
    value.max(0) as u64
}

/// Seconds from PostgreSQL as a duration (zero when negative).
fn duration(seconds: f64) -> Duration {
    Duration::try_from_secs_f64(seconds).unwrap_or_default()
}

/// The backlog of the database `client` is connected to.
pub async fn backlog(client: &Client) -> Result<Backlog, StatusError> {
    let row = client
        .query_one(watcher::BACKLOG, &[])
        .await
        .map_err(StatusError::reading("the backlog"))?;
    Ok(Backlog {
        events: count(row.get(0)),
        oldest_age: row.get::<_, Option<f64>>(1).map(duration),
    })
}

/// The session holding the watcher's leader lock in the database `client`
/// is connected to; `None` when no watcher leads.
pub async fn leader(client: &Client) -> Result<Option<Leader>, StatusError> {
    let row = client
        .query_opt(
            status::LEADER,
            &[&(LEADER_LOCK >> 32), &(LEADER_LOCK & 0xffff_ffff)],
        )
        .await
        .map_err(StatusError::reading("the leader"))?;
    Ok(row.map(|row| Leader {
        pid: row.get(0),
        application_name: row.get(1),
        client_addr: row.get(2),
        backend_start: row
            .get::<_, Option<i64>>(3)
            .and_then(DateTime::from_timestamp_micros)
            .unwrap_or_default(),
        connected_for: row
            .get::<_, Option<f64>>(4)
            .map_or(Duration::ZERO, duration),
    }))
}

/// The by-reference payloads waiting in the database `client` is
/// connected to.
pub async fn payloads(client: &Client) -> Result<Payloads, StatusError> {
    let row = client
        .query_one(status::PAYLOADS, &[])
        .await
        .map_err(StatusError::reading("the payloads"))?;
    Ok(Payloads {
        pending: count(row.get(0)),
        expired: count(row.get(1)),
    })
}

/// The delayed signals waiting in the database `client` is connected to.
pub async fn delayed_signals(client: &Client) -> Result<DelayedSignals, StatusError> {
    let row = client
        .query_one(status::DELAYED_SIGNALS, &[])
        .await
        .map_err(StatusError::reading("the delayed signals"))?;
    Ok(DelayedSignals {
        delayed: count(row.get(0)),
        next_due_in: row
            .get::<_, Option<f64>>(1)
            .and_then(|seconds| TimeDelta::try_milliseconds((seconds * 1000.0).round() as i64)),
    })
}

#[cfg(test)]
mod tests {
    use dawdle_test::TestDb;

    use super::*;

    async fn database() -> (TestDb, Client) {
        let db = TestDb::new().await.unwrap();
        let mut client = db.connect().await.unwrap();
        let up = crate::sql::up(&[]).unwrap();
        crate::sql::apply(&mut client, &up).await.unwrap();
        (db, client)
    }

    #[tokio::test]
    async fn an_idle_database_has_nothing_waiting_and_no_leader() {
        let (_db, client) = database().await;
        assert_eq!(
            backlog(&client).await.unwrap(),
            Backlog {
                events: 0,
                oldest_age: None
            }
        );
        assert_eq!(leader(&client).await.unwrap(), None);
        assert_eq!(
            payloads(&client).await.unwrap(),
            Payloads {
                pending: 0,
                expired: 0
            }
        );
        assert_eq!(
            delayed_signals(&client).await.unwrap(),
            DelayedSignals {
                delayed: 0,
                next_due_in: None
            }
        );
    }

    #[tokio::test]
    async fn the_leader_is_the_session_holding_the_watchers_lock() {
        let (db, client) = database().await;
        let holder = db.connect().await.unwrap();
        holder
            .batch_execute("SET application_name = 'the-leader'")
            .await
            .unwrap();
        holder
            .query_one("SELECT pg_try_advisory_lock($1)", &[&LEADER_LOCK])
            .await
            .unwrap();
        let pid: i32 = holder
            .query_one("SELECT pg_backend_pid()", &[])
            .await
            .unwrap()
            .get(0);
        let leader = leader(&client).await.unwrap().expect("a leader");
        assert_eq!(
            (leader.pid, leader.application_name.as_str()),
            (pid, "the-leader")
        );
        assert!(leader.backend_start <= Utc::now());
        assert!(leader.connected_for < Duration::from_secs(600));
        // Another key is not the leader's.
        holder
            .batch_execute("SELECT pg_advisory_unlock_all(); SELECT pg_advisory_lock(42)")
            .await
            .unwrap();
        assert_eq!(super::leader(&client).await.unwrap(), None);
    }

    #[tokio::test]
    async fn payloads_and_delayed_signals_are_counted() {
        let (_db, client) = database().await;
        client
            .batch_execute(
                r#"INSERT INTO "dawdle"."payloads" ("id", "new", "expires_at")
                   VALUES (1, '{}', now() - interval '1 hour'), (2, '{}', NULL)"#,
            )
            .await
            .unwrap();
        assert_eq!(
            payloads(&client).await.unwrap(),
            Payloads {
                pending: 2,
                expired: 1
            }
        );
        client
            .execute(
                r#"SELECT "dawdle"."signal"('later', '{}'::json, now() + interval '1 hour')"#,
                &[],
            )
            .await
            .unwrap();
        let signals = delayed_signals(&client).await.unwrap();
        assert_eq!(signals.delayed, 1);
        let due = signals.next_due_in.expect("one waits");
        assert!(
            TimeDelta::minutes(59) < due && due <= TimeDelta::hours(1),
            "{due}"
        );
    }

    #[tokio::test]
    async fn a_database_without_dawdle_says_so() {
        let db = TestDb::new().await.unwrap();
        let client = db.connect().await.unwrap();
        let error = backlog(&client).await.unwrap_err();
        assert!(
            matches!(error, StatusError::NotInstalled { .. }),
            "{error:?}"
        );
        assert!(
            error.to_string().contains("apply dawdle's up migration"),
            "{error}"
        );
    }
}

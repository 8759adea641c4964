//! Why a watcher stops, or its connection ends.

use std::time::Duration;

use crate::database::{ConnectError, DisplayPgError};

/// Why a watcher's connection ended, or why its task did. The watcher
/// retries connection failures itself; [`WatcherHandle::shutdown`](super::WatcherHandle::shutdown) returns
/// the error only when the task itself failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WatcherError {
    /// A query failed, or the connection did. The message is the
    /// server's, as [`DisplayPgError`] shows it, so the error is not also
    /// a [`source`](std::error::Error::source).
    #[error("watcher database error: {}", DisplayPgError::new(.0))]
    Database(tokio_postgres::Error),
    /// Connecting failed.
    #[error("the watcher cannot connect: {0}")]
    Connect(#[from] ConnectError),
    /// Connecting or a query took longer than the limit: the connection
    /// counts as lost, so that a hung server cannot hold the leadership.
    #[error("the watcher's {what} took longer than {limit:?}; treating the connection as lost")]
    Timeout {
        /// `connecting` or `query`.
        what: &'static str,
        /// The limit.
        limit: Duration,
    },
    /// The connection closed.
    #[error("the watcher's database connection closed")]
    ConnectionClosed,
    /// The database is set up in a way the watcher cannot work with; it
    /// stops rather than lose events. Fix the cause and start it again.
    #[error("the watcher cannot run on this database: {0}")]
    Unsupported(String),
    /// The session no longer holds the leader's lock: it must not send.
    #[error("the watcher lost its leadership")]
    LostLeadership,
    /// The watcher's task panicked or was cancelled.
    #[error("the watcher task failed: {0}")]
    Task(#[from] tokio::task::JoinError),
}

impl From<tokio_postgres::Error> for WatcherError {
    fn from(error: tokio_postgres::Error) -> WatcherError {
        WatcherError::Database(error)
    }
}

impl WatcherError {
    /// Whether retrying cannot help: the watcher stops on such an error.
    pub fn is_fatal(&self) -> bool {
        matches!(self, WatcherError::Unsupported(_))
    }
}

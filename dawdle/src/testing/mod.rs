//! Helpers for your own handler tests (feature `testing`): a fresh database
//! per test, the [`Meta`](crate::Meta) of events you build by hand, and a
//! wait until the watcher has moved every event out of the database.
//!
//! Handlers are plain async functions, so most tests call them directly with
//! an event built in the test:
//!
//! ```
//! use dawdle::testing::MetaBuilder;
//! use dawdle::{Action, Insert, Watched};
//!
//! #[derive(Debug, Clone, PartialEq, Watched)]
//! #[dawdle(table = "users")]
//! struct User {
//!     id: i64,
//!     name: String,
//! }
//!
//! #[dawdle::handler]
//! async fn welcome(event: Insert<User>) -> Result<(), String> {
//!     if event.new.name.is_empty() {
//!         return Err(format!("event {}: a user without a name", event.meta.id));
//!     }
//!     Ok(())
//! }
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let event = Insert {
//!     new: User { id: 1, name: String::new() },
//!     meta: MetaBuilder::new::<User>(Action::Insert).id(7).build(),
//! };
//! assert_eq!(welcome(event).await, Err("event 7: a user without a name".to_owned()));
//! # });
//! ```
//!
//! Tests of the whole pipeline run on a real PostgreSQL: [`TestDatabase`]
//! creates an empty database on the server `DATABASE_URL` names and drops it
//! afterwards, and [`wait_until_drained`] waits until the watcher has sent
//! every captured change to the queue:
//!
//! ```no_run
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//!
//! let db = dawdle::testing::TestDatabase::new().await?; // on DATABASE_URL
//! let mut client = db.connect().await?;
//! client.batch_execute("CREATE TABLE users (id bigint PRIMARY KEY, name text NOT NULL)").await?;
//! dawdle::sql::apply(&mut client, &dawdle::sql::up_registered()?).await?;
//! let handle = dawdle::Runtime::builder()
//!     .database(db.database().clone())
//!     .queue(dawdle::MemoryQueue::new())
//!     .watch()
//!     .listen()
//!     .build()?
//!     .start();
//! client.batch_execute("INSERT INTO users VALUES (1, 'ada')").await?;
//! dawdle::testing::wait_until_drained(&client, Duration::from_secs(10)).await?;
//! handle.shutdown().await?;
//! # Ok(()) }
//! ```

mod database;
mod drained;
mod meta;

pub use database::TestDatabase;
pub use drained::wait_until_drained;
pub use meta::MetaBuilder;

use std::time::Duration;

/// A test helper failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TestingError {
    /// `DATABASE_URL` is not set (or not Unicode), so there is no server to
    /// create test databases on.
    #[error(
        "DATABASE_URL is not set: point it at a PostgreSQL server where tests may create \
         databases, e.g. postgres://postgres@localhost:5432/postgres"
    )]
    DatabaseUrlUnset,
    /// `DATABASE_URL` is not a PostgreSQL connection string.
    #[error("DATABASE_URL is not a PostgreSQL connection string: {0}")]
    DatabaseUrlInvalid(#[source] crate::database::ParseError),
    /// Connecting failed.
    #[error("PostgreSQL for tests: {0}")]
    Connect(#[from] crate::database::ConnectError),
    /// A query failed. The message is the server's, as
    /// [`DisplayPgError`](crate::database::DisplayPgError) shows it, so the
    /// error is not also a [`source`](std::error::Error::source).
    #[error("PostgreSQL for tests: {}", crate::database::DisplayPgError::new(.0))]
    Postgres(tokio_postgres::Error),
    /// `dawdle.events` still held events when the timeout passed.
    #[error("dawdle.events still holds {left} events after {timeout:?}: is a watcher running?")]
    NotDrained {
        /// Events left in `dawdle.events` at the last look.
        left: i64,
        /// How long [`wait_until_drained`] waited.
        timeout: Duration,
    },
    /// Capture from the WAL: the watcher had not confirmed the changes
    /// committed before the wait when the timeout passed.
    #[error("the replication slot {slot} was not confirmed past the changes after {timeout:?}: is a watcher running with Capture::Wal?")]
    NotConfirmed {
        /// The slot.
        slot: String,
        /// How long [`wait_until_drained`] waited.
        timeout: Duration,
    },
}

impl From<tokio_postgres::Error> for TestingError {
    fn from(error: tokio_postgres::Error) -> TestingError {
        TestingError::Postgres(error)
    }
}

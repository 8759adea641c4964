//! The test infrastructure of dawdle's own tests, benches and examples; not
//! published. What users get for their own tests is `dawdle::testing`,
//! which this builds on.
//!
//! - [`TestDb`]: a fresh database per test, on `DATABASE_URL` when it is set,
//!   else on a throwaway [`Cluster`] started once per process.
//! - [`Cluster`]: a PostgreSQL cluster of one's own from the installed
//!   binaries (also the `dawdle-test-cluster` bin, which `scripts/test` runs).
//! - [`SqsServer`]: moto's SQS server on loopback.
//! - [`CountingQueue`]: a queue wrapper that counts the calls made to it.
//! - [`contract`]: the queue contract, one suite for every queue backend.
//! - [`demo`]: a database with something in every corner of the console.

mod cluster;
pub mod contract;
mod counting;
mod db;
pub mod demo;
mod error;
mod process;
mod sqs;
mod wait;

pub use cluster::{Cluster, ClusterBuilder};
pub use counting::{CountingQueue, QueueCalls};
pub use db::TestDb;
pub use error::Error;
pub use sqs::SqsServer;
pub use wait::{eventually, until, wait_for, wait_until};

/// SQL that marks every event committed so far as sent: the watcher's
/// cursor moves past them, and `dawdle.events` no longer lists them. For
/// tests that look at the events of one step at a time.
pub const DISCARD_EVENTS: &str =
    r#"UPDATE "dawdle"."cursor" SET "read" = pg_current_snapshot(), "window" = NULL, "after" = 0"#;

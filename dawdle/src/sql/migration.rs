//! The migrations for a set of tables, checked then rendered, and applying
//! one to a database.

use std::time::{Duration, Instant};

use tokio_postgres::error::SqlState;
use tokio_postgres::Client;

use super::error::SqlError;
use super::model::CheckedTables;
use super::render;
use super::Capture;
use crate::table::Table;

/// The up migration for `tables`, captured by triggers: dawdle's own
/// tables, then each table's triggers.
pub fn up(tables: &[&Table]) -> Result<String, SqlError> {
    up_with(tables, Capture::Triggers)
}

/// The up migration for `tables`, captured as `capture` says. With
/// [`Capture::Wal`], run [`ensure_slot`] once it has committed ([`apply`]
/// does).
pub fn up_with(tables: &[&Table], capture: Capture) -> Result<String, SqlError> {
    Ok(render::up(&CheckedTables::check(tables, capture)?))
}

/// The down migration for `tables`: removes what [`up`] or [`up_with`]
/// created, in either capture mode (the publication and the replication
/// slot of [`Capture::Wal`] too).
pub fn down(tables: &[&Table]) -> Result<String, SqlError> {
    Ok(render::down(&CheckedTables::check(
        tables,
        Capture::Triggers,
    )?))
}

/// [`up`] for every `Watched` type linked into the program.
pub fn up_registered() -> Result<String, SqlError> {
    up(&crate::registry::tables())
}

/// [`up_with`] for every `Watched` type linked into the program.
pub fn up_registered_with(capture: Capture) -> Result<String, SqlError> {
    up_with(&crate::registry::tables(), capture)
}

/// [`down`] for every `Watched` type linked into the program.
pub fn down_registered() -> Result<String, SqlError> {
    down(&crate::registry::tables())
}

/// How long [`apply`] keeps trying to take the locks a changing migration
/// needs while writers hold them.
const APPLY_PATIENCE: Duration = Duration::from_secs(120);

/// Runs `sql` (from [`up`] or [`down`]) in one transaction, holding an
/// advisory lock so that two processes applying at once take turns.
///
/// Re-applying an unchanged up takes no lock that writers wait for. A
/// changing one locks each captured table before its event tables, as
/// writers do; but a writer may hold locks on two captured tables, so the
/// migration waits for a lock only briefly (half of the server's
/// `deadlock_timeout`), and on a lock timeout or a deadlock it rolls back and
/// tries again after a pause: the migration gives way, never a writer. It
/// gives up after two minutes of trying.
pub async fn apply(client: &mut Client, sql: &str) -> Result<(), SqlError> {
    let started = Instant::now();
    let mut pause = Duration::from_millis(50);
    loop {
        match apply_once(client, sql).await {
            Err(SqlError::Database(e))
                if is_lock_conflict(&e) && started.elapsed() < APPLY_PATIENCE =>
            {
                tracing::debug!(error = %e, "a writer holds a lock the migration needs; trying again");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(2));
            }
            result => return result,
        }
    }
}

async fn apply_once(client: &mut Client, sql: &str) -> Result<(), SqlError> {
    let tx = client.transaction().await?;
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtext('dawdle.sql.apply'))",
        &[],
    )
    .await?;
    // Warnings (the event trigger a role may not create) still show; the
    // notices of objects already there (a re-run) do not.
    tx.batch_execute("SET LOCAL client_min_messages = warning")
        .await?;
    // Below deadlock_timeout: the migration, not a writer, is the one to
    // give up when they wait on each other.
    tx.execute(
        "SELECT set_config('lock_timeout', greatest(setting::int8 / 2, 10)::text || 'ms', true) \
         FROM pg_catalog.pg_settings WHERE name = 'deadlock_timeout'",
        &[],
    )
    .await?;
    tx.batch_execute(sql).await?;
    tx.commit().await?;
    // A replication slot is made outside a transaction that wrote, and
    // after the publication it reads committed.
    ensure_slot(client).await?;
    Ok(())
}

/// Creates the logical replication slot of [`Capture::Wal`] unless it
/// exists (nothing when the database is not captured from the WAL), and
/// says whether it did. Changes are captured from the moment it exists:
/// run it right after applying the up migration by other means than
/// [`apply`] (which runs it), outside a transaction that wrote. The
/// watcher runs it at start too, warning when it had to create the slot.
pub async fn ensure_slot(client: &Client) -> Result<bool, SqlError> {
    let row = client
        .query_one(
            "SELECT CASE WHEN to_regprocedure('\"dawdle\".\"ensure_slot\"()') IS NOT NULL \
                AND EXISTS (SELECT FROM pg_catalog.pg_publication WHERE pubname = 'dawdle') \
             THEN true ELSE false END",
            &[],
        )
        .await?;
    if !row.get::<_, bool>(0) {
        return Ok(false);
    }
    let row = client
        .query_one("SELECT \"dawdle\".\"ensure_slot\"()", &[])
        .await?;
    Ok(row.get(0))
}

/// A lock timeout or a deadlock: the migration may try again.
fn is_lock_conflict(error: &tokio_postgres::Error) -> bool {
    matches!(
        error.code(),
        Some(&SqlState::LOCK_NOT_AVAILABLE) | Some(&SqlState::T_R_DEADLOCK_DETECTED)
    )
}

//! The migrations for a set of tables, checked then rendered, and applying
//! one to a database.

use std::time::{Duration, Instant};

use tokio_postgres::error::SqlState;
use tokio_postgres::Client;

use super::error::SqlError;
use super::model::CheckedTables;
use super::render;
use crate::table::Table;

/// The up migration for `tables`: the event table, then each table's triggers.
pub fn up(tables: &[&Table]) -> Result<String, SqlError> {
    Ok(render::up(&CheckedTables::check(tables)?))
}

/// The down migration for `tables`: removes what [`up`] created.
pub fn down(tables: &[&Table]) -> Result<String, SqlError> {
    Ok(render::down(&CheckedTables::check(tables)?))
}

/// [`up`] for every `Watched` type linked into the program.
pub fn up_registered() -> Result<String, SqlError> {
    up(&crate::registry::tables())
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
    Ok(())
}

/// A lock timeout or a deadlock: the migration may try again.
fn is_lock_conflict(error: &tokio_postgres::Error) -> bool {
    matches!(
        error.code(),
        Some(&SqlState::LOCK_NOT_AVAILABLE) | Some(&SqlState::T_R_DEADLOCK_DETECTED)
    )
}

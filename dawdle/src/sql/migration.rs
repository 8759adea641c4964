//! The migrations for a set of tables, checked then rendered, and applying
//! one to a database.

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

/// Runs `sql` (from [`up`] or [`down`]) in one transaction, holding an
/// advisory lock so that two processes applying at once take turns.
pub async fn apply(client: &mut Client, sql: &str) -> Result<(), SqlError> {
    let tx = client.transaction().await?;
    tx.execute(
        "SELECT pg_advisory_xact_lock(hashtext('dawdle.sql.apply'))",
        &[],
    )
    .await?;
    tx.batch_execute(sql).await?;
    tx.commit().await?;
    Ok(())
}

//! How whole the capture of a database is, for operators' tools.

use tokio_postgres::Client;

use super::catalog::watcher::UNCAPTURED;
use super::error::SqlError;

/// Whether every table dawdle watches is captured however it is written.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct CaptureHealth {
    /// Partitions and inheritance children of watched tables that lack
    /// dawdle's triggers (made after the up migration without its event
    /// trigger): writes to them are not captured (a partition refuses
    /// them). Empty when all are captured. The watcher refuses to start
    /// while any is listed.
    pub uncaptured: Vec<String>,
    /// Whether the event trigger `dawdle_ddl` is installed (up installs it
    /// when the applying role may): it puts the triggers on partitions and
    /// children made later, and refuses renaming or dropping a captured
    /// column.
    pub event_trigger: bool,
    /// Tables captured from the WAL: those below a captured one that are
    /// not ready (`REPLICA IDENTITY` not full, or not in the publication),
    /// each with what is wrong. The watcher refuses to start while any is
    /// listed.
    pub unpublished: Vec<String>,
    /// How many tables are captured from the WAL (the others, by triggers).
    pub wal_tables: u64,
}

/// Reads the [`CaptureHealth`] of the database `client` is connected to.
pub async fn capture_health(client: &Client) -> Result<CaptureHealth, SqlError> {
    let uncaptured: Vec<String> = client.query_one(UNCAPTURED, &[]).await?.get(0);
    let event_trigger: bool = client
        .query_one(
            "SELECT EXISTS (SELECT FROM pg_catalog.pg_event_trigger \
             WHERE evtname = 'dawdle_ddl' AND evtenabled <> 'D')",
            &[],
        )
        .await?
        .get(0);
    let row = client
        .query_one(
            "SELECT CASE WHEN to_regprocedure('\"dawdle\".\"unpublished\"()') IS NULL THEN '{}'::text[] \
                    ELSE \"dawdle\".\"unpublished\"() END, \
                    (SELECT count(*) FROM \"dawdle\".\"captures\" WHERE \"wal\" IS NOT NULL)",
            &[],
        )
        .await;
    let (unpublished, wal_tables) = match row {
        Ok(row) => (row.get(0), row.get::<_, i64>(1).max(0) as u64),
        // An installation from before capture from the WAL.
        Err(_) => (Vec::new(), 0),
    };
    Ok(CaptureHealth {
        uncaptured,
        event_trigger,
        unpublished,
        wal_tables,
    })
}

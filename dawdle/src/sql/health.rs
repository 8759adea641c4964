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
    Ok(CaptureHealth {
        uncaptured,
        event_trigger,
    })
}

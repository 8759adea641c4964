//! The doorbell: a connection of its own that LISTENs for sends, so that a
//! long poll ends as soon as a message arrives rather than at its next poll.

use std::future::poll_fn;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::Notify;
use tokio_postgres::AsyncMessage;

use super::schema::DOORBELL_CHANNEL;
use crate::backoff::Backoff;
use crate::database::Database;
use crate::sync::{lock, AbortOnDrop};

/// Connecting and LISTEN take at most this long.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// Rings `rung` whenever a send to the queue commits, from a task started
/// at the first receive and stopped with the queue.
pub(super) struct Doorbell {
    database: Database,
    task: Mutex<Option<AbortOnDrop<()>>>,
}

impl std::fmt::Debug for Doorbell {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Doorbell")
            .field("database", &self.database)
            .field("listening", &lock(&self.task).is_some())
            .finish()
    }
}

impl Doorbell {
    pub(super) fn new(database: Database) -> Doorbell {
        Doorbell {
            database,
            task: Mutex::new(None),
        }
    }

    /// Starts listening, unless it already does. Needs a tokio runtime,
    /// which a receive has.
    pub(super) fn start(&self, queue: &str, rung: &Arc<Notify>) {
        let mut task = lock(&self.task);
        if task.is_some() {
            return;
        }
        let (database, queue, rung) = (self.database.clone(), queue.to_owned(), rung.clone());
        *task = Some(AbortOnDrop(tokio::spawn(ring(database, queue, rung))));
    }
}

/// Listens, and listens again after a lost connection. While it is down,
/// receivers fall back on their poll interval.
async fn ring(mut database: Database, queue: String, rung: Arc<Notify>) {
    database
        .config_mut()
        .application_name("dawdle-queue-doorbell")
        .keepalives(true)
        .keepalives_idle(Duration::from_secs(5))
        .connect_timeout(CONNECT_TIMEOUT);
    let mut backoff = Backoff::new();
    loop {
        match listen(&database, &queue, &rung, &mut backoff).await {
            Ok(()) => tracing::warn!("PgQueue's doorbell connection closed; reconnecting"),
            Err(error) => {
                tracing::warn!(%error, "PgQueue's doorbell is down; receivers poll meanwhile")
            }
        }
        // Whatever was sent while it was down is found by the next poll.
        rung.notify_waiters();
        tokio::time::sleep(backoff.next()).await;
    }
}

async fn listen(
    database: &Database,
    queue: &str,
    rung: &Arc<Notify>,
    backoff: &mut Backoff,
) -> Result<(), String> {
    let (client, mut connection) = tokio::time::timeout(CONNECT_TIMEOUT, database.connect())
        .await
        .map_err(|_| format!("connecting took longer than {CONNECT_TIMEOUT:?}"))?
        .map_err(|error| error.to_string())?;
    let (bell, queue) = (rung.clone(), queue.to_owned());
    let driver = tokio::spawn(async move {
        while let Some(message) = poll_fn(|cx| connection.poll_message(cx)).await {
            match message {
                Ok(AsyncMessage::Notification(n)) if n.payload() == queue => bell.notify_waiters(),
                Ok(_) => {}
                Err(error) => return Err(error.to_string()),
            }
        }
        Ok(())
    });
    let mut driver = AbortOnDrop(driver);
    tokio::time::timeout(
        CONNECT_TIMEOUT,
        client.batch_execute(&format!("LISTEN \"{DOORBELL_CHANNEL}\"")),
    )
    .await
    .map_err(|_| format!("LISTEN took longer than {CONNECT_TIMEOUT:?}"))?
    .map_err(|error| error.to_string())?;
    backoff.reset();
    // Sends may have committed before LISTEN did.
    rung.notify_waiters();
    let ended = (&mut driver.0).await;
    drop(client);
    match ended {
        Ok(result) => result,
        Err(error) => Err(error.to_string()),
    }
}

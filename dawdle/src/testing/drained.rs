//! Waiting until the watcher has moved every event out of the database.

use std::time::Duration;

use tokio::time::Instant;
use tokio_postgres::Client;

use super::TestingError;

/// How often `dawdle.events` is counted: the watcher's progress sends no
/// notification.
const POLL: Duration = Duration::from_millis(20);

/// Waits until `dawdle.events` (the view of the events waiting to be sent)
/// of the database `client` is connected to is empty, that is until a
/// watcher has sent every captured change to the queue; [`TestingError::NotDrained`] if it still is not after `timeout`.
///
/// Handlers may still be running on what was sent: wait for their effects
/// (or shut the runtime down, which lets them finish) before asserting on
/// them.
///
/// ```no_run
/// # async fn demo(client: tokio_postgres::Client) -> Result<(), dawdle::testing::TestingError> {
/// client.batch_execute("INSERT INTO users VALUES (1, 'ada')").await?;
/// dawdle::testing::wait_until_drained(&client, std::time::Duration::from_secs(10)).await?;
/// # Ok(()) }
/// ```
///
/// With capture from the WAL, it also waits until the watcher confirmed a
/// mark it writes to the WAL now (`pg_logical_emit_message`, which needs a
/// superuser or a role with `REPLICATION`): the changes committed before
/// the call were sent.
pub async fn wait_until_drained(client: &Client, timeout: Duration) -> Result<(), TestingError> {
    let deadline = Instant::now() + timeout;
    let slot = crate::status::wal_slot(client)
        .await
        .ok()
        .flatten()
        .map(|slot| slot.name);
    if let Some(slot) = slot {
        // A transaction of its own, whose commit the watcher confirms once
        // it sent every change committed before it.
        let mark: String = client
            .query_one(
                "SELECT pg_logical_emit_message(true, 'dawdle.drained', '')::text",
                &[],
            )
            .await?
            .get(0);
        loop {
            let confirmed: bool = client
                .query_one(
                    "SELECT coalesce(confirmed_flush_lsn >= $2::text::pg_lsn, false) \
                     FROM pg_catalog.pg_replication_slots WHERE slot_name = $1",
                    &[&slot, &mark],
                )
                .await?
                .get(0);
            if confirmed {
                break;
            }
            if Instant::now() >= deadline {
                return Err(TestingError::NotConfirmed { slot, timeout });
            }
            tokio::time::sleep(POLL.min(deadline - Instant::now())).await;
        }
    }
    loop {
        let left: i64 = client
            .query_one("SELECT count(*) FROM dawdle.events", &[])
            .await?
            .get(0);
        if left == 0 {
            return Ok(());
        }
        if Instant::now() >= deadline {
            return Err(TestingError::NotDrained { left, timeout });
        }
        tokio::time::sleep(POLL.min(deadline - Instant::now())).await;
    }
}

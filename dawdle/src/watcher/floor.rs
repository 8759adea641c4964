//! Where the watcher's reads start: the lowest event id that may still
//! appear, raised in checkpoints while events flow.

use std::time::Duration;

use tokio::time::Instant;

use super::error::WatcherError;
use super::session::Session;
use crate::sql::catalog::watcher;

/// How often the watcher tries to raise its [`Floor`].
const FLOOR_INTERVAL: Duration = Duration::from_millis(100);

/// The lowest event id that may still be read: every read starts there.
///
/// Deleted events leave dead entries at the low end of the id index until
/// VACUUM removes them, and a read that starts from the lowest id steps over
/// all of them: with events streaming through, each round would cost more
/// and more (half a millisecond per 100,000 dead entries, measured). But
/// ids are taken when rows are written, not when they commit, so the
/// watcher cannot just start after the last id it sent: a transaction still
/// running may hold a lower one.
///
/// So the floor rises in checkpoints. A checkpoint notes the highest event
/// id read so far, then takes a transaction id of its own. Event ids come
/// from the identity sequence in order (it caches one value at a time, as
/// the migration creates it), so every lower id was taken before the noted
/// event committed, by a transaction that had its transaction id already (a
/// capture trigger runs after its row was written): lower than the
/// checkpoint's own. Once the oldest running transaction is past the
/// checkpoint's, every event up to the noted id is visible or will never
/// exist; the floor rises to the lowest of them still waiting, or past the
/// noted id. (A snapshot's `xmax` would not do: it is one past
/// the latest *completed* transaction, and a running one may be higher.)
/// Checkpoints are taken only while events flow, so an idle watcher uses
/// no transaction ids.
#[derive(Debug)]
pub(crate) struct Floor {
    value: i64,
    /// The highest event id read.
    highest: i64,
    /// (highest event id read, the checkpoint's transaction id after it).
    checkpoint: Option<(i64, i64)>,
    next_check: Instant,
}

impl Floor {
    pub(crate) fn new() -> Floor {
        Floor {
            value: 0,
            highest: 0,
            checkpoint: None,
            next_check: Instant::now(),
        }
    }

    /// Raises the floor if the pending checkpoint allows it and takes the
    /// next one, at most every [`FLOOR_INTERVAL`], and only while events
    /// flow (some were read since the last checkpoint).
    pub(crate) async fn raise(&mut self, session: &Session) -> Result<(), WatcherError> {
        let noted = self.checkpoint.map_or(0, |(last_id, _)| last_id);
        if self.highest <= noted || Instant::now() < self.next_check {
            return Ok(());
        }
        self.next_check = Instant::now() + FLOOR_INTERVAL;
        if let Some((last_id, xid)) = self.checkpoint {
            // One statement, one snapshot: the check and the lowest waiting id.
            let raised: Option<i64> = session
                .query_one(watcher::RAISE_FLOOR, &[&self.value, &last_id, &xid])
                .await?
                .get(0);
            match raised {
                Some(raised) => self.value = self.value.max(raised),
                None => return Ok(()), // a writer of the checkpoint is still running
            }
        }
        // A transaction id taken after the highest event id was read (the
        // watcher's session commits asynchronously: this costs no flush).
        let last_id = self.highest;
        let xid: i64 = session.query_one(watcher::CHECKPOINT, &[]).await?.get(0);
        self.checkpoint = Some((last_id, xid));
        Ok(())
    }

    pub(crate) fn value(&self) -> i64 {
        self.value
    }

    /// Notes an event id that a round read.
    pub(crate) fn saw(&mut self, id: i64) {
        self.highest = self.highest.max(id);
    }
}

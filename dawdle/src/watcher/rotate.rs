//! Emptying event tables once their events were sent: one TRUNCATE per
//! slot, instead of a DELETE per event.
//!
//! A transaction writes its events to slot `(txid >> SPAN_BITS) % SLOTS` of
//! each captured table: consecutive spans of 4,096 transaction ids take the
//! slots in turn. A slot `s` may be emptied when
//!
//! 1. the span of the current transaction id is not one of `s`'s, so that
//!    every transaction that wrote to `s` has an id below the end `E` of the
//!    latest span of `s`; and
//! 2. the cursor's `read` snapshot has `xmin >= E`: each of those
//!    transactions had ended when it was taken, so its events were sent.
//!
//! The watcher checks both with the slot's tables locked and a transaction
//! id of its own taken after the locks: a writer that wrote to them before
//! the locks has a lower id, and one that writes after waits for the
//! TRUNCATE to commit. Locks are taken with a short timeout, so that a
//! reader of `dawdle.events` only delays the TRUNCATE.

use std::time::Duration;

use tokio::time::Instant;
use tokio_postgres::error::SqlState;
use tokio_postgres::SimpleQueryMessage;

use super::error::WatcherError;
use super::session::Session;
use super::window::Snapshot;
use crate::sql::catalog::{watcher, SLOTS, SPAN_BITS};

/// How often the watcher looks for slots to empty.
const INTERVAL: Duration = Duration::from_millis(100);

/// The slot a transaction id writes to.
pub(crate) fn slot(txid: u64) -> usize {
    ((txid >> SPAN_BITS) % SLOTS) as usize
}

/// The end of the latest span of `slot` that begins at or before `txid`:
/// every transaction that can have written to the slot by `txid` has a
/// lower id. None if `txid` is in a span of the slot itself.
fn written_below(slot: usize, txid: u64) -> Option<u64> {
    let span = txid >> SPAN_BITS;
    let back = (span + SLOTS - slot as u64) % SLOTS;
    if back == 0 {
        return None;
    }
    // The latest span of `slot` is `span - back`; it ends where the next
    // begins. Before the first, nothing wrote to it.
    Some(
        span.checked_sub(back)
            .map_or(0, |latest| (latest + 1) << SPAN_BITS),
    )
}

/// Which slots may hold events, and when to look again.
#[derive(Debug)]
pub(crate) struct Rotation {
    /// Slots that may hold events (all, until a TRUNCATE proves otherwise).
    dirty: [bool; SLOTS as usize],
    /// dawdle 0.1's event table may hold events.
    legacy_dirty: bool,
    /// The `xmax` of the latest window: a recent transaction id.
    recent: u64,
    next_check: Instant,
}

impl Rotation {
    pub(crate) fn new() -> Rotation {
        Rotation {
            dirty: [true; SLOTS as usize],
            legacy_dirty: true,
            recent: 0,
            next_check: Instant::now(),
        }
    }

    /// Notes the transaction id of an event read.
    pub(crate) fn saw(&mut self, txid: u64) {
        self.dirty[slot(txid)] = true;
    }

    /// Notes a window's end.
    pub(crate) fn note_upto(&mut self, upto: &Snapshot) {
        self.recent = self.recent.max(upto.xmax());
    }

    /// Empties the slots (and dawdle 0.1's table) whose events were all
    /// sent, at most every [`INTERVAL`].
    pub(crate) async fn run(
        &mut self,
        session: &Session,
        read: &Snapshot,
    ) -> Result<(), WatcherError> {
        if Instant::now() < self.next_check {
            return Ok(());
        }
        self.next_check = Instant::now() + INTERVAL;
        let xmin = read.xmin();
        let candidates: Vec<usize> = (0..SLOTS as usize)
            .filter(|&s| self.dirty[s])
            .filter(|&s| written_below(s, self.recent.max(xmin)).is_some_and(|end| end <= xmin))
            .collect();
        if candidates.is_empty() && !self.legacy_dirty {
            return Ok(());
        }
        let mut slots: Vec<Vec<String>> = vec![Vec::new(); SLOTS as usize];
        let mut legacy: Vec<String> = Vec::new();
        let mut legacy_waits = false;
        for row in session.query(watcher::EVENT_TABLES, &[]).await? {
            let tables: Vec<String> = row.get(0);
            match row.get::<_, Option<i64>>(1) {
                // dawdle 0.1's table: nothing writes to it after `until`.
                Some(until) if xmin >= until as u64 => legacy.extend(tables),
                Some(_) => legacy_waits = true,
                None => {
                    for (s, table) in tables.into_iter().enumerate().take(SLOTS as usize) {
                        slots[s].push(table);
                    }
                }
            }
        }
        for s in candidates {
            let emptied = self
                .truncate(session, &slots[s], |txid| {
                    written_below(s, txid).is_some_and(|end| end <= xmin)
                })
                .await?;
            if emptied {
                self.dirty[s] = false;
            }
        }
        if self.legacy_dirty && self.truncate(session, &legacy, |_| true).await? && !legacy_waits {
            self.legacy_dirty = false;
        }
        Ok(())
    }

    /// Locks `tables`, and empties them if `safe` holds for a transaction id
    /// taken after the locks. Says whether they are empty.
    async fn truncate(
        &self,
        session: &Session,
        tables: &[String],
        safe: impl Fn(u64) -> bool,
    ) -> Result<bool, WatcherError> {
        if tables.is_empty() {
            return Ok(true);
        }
        let txid = match session.simple(&watcher::lock(tables)).await {
            Ok(messages) => messages.into_iter().find_map(|m| match m {
                SimpleQueryMessage::Row(row) => row.get(0).and_then(|t| t.parse::<u64>().ok()),
                _ => None,
            }),
            Err(WatcherError::Database(error))
                if error.code() == Some(&SqlState::LOCK_NOT_AVAILABLE) =>
            {
                // A reader holds them: next time.
                session.simple(watcher::ROLLBACK).await?;
                return Ok(false);
            }
            Err(error) => return Err(error),
        };
        if txid.is_some_and(safe) {
            session.simple(&watcher::truncate(tables)).await?;
            tracing::debug!(tables = tables.len(), "emptied event tables");
            Ok(true)
        } else {
            session.simple(watcher::ROLLBACK).await?;
            Ok(false)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPAN: u64 = 1 << SPAN_BITS;

    #[test]
    fn a_slot_is_written_below_the_end_of_its_latest_span() {
        // Span 0 is slot 0, span 1 slot 1, span 2 slot 2, span 3 slot 0 ...
        assert_eq!(slot(5), 0);
        assert_eq!(slot(SPAN + 5), 1);
        assert_eq!(slot(3 * SPAN), 0);
        // In span 4 (slot 1): slot 0 was last written in span 3, slot 2 in span 2.
        let now = 4 * SPAN + 7;
        assert_eq!(written_below(1, now), None);
        assert_eq!(written_below(0, now), Some(4 * SPAN));
        assert_eq!(written_below(2, now), Some(3 * SPAN));
        // Early on, nothing has written to a slot not yet used.
        assert_eq!(written_below(2, 10), Some(0));
        assert_eq!(written_below(0, 10), None);
    }
}

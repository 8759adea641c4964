//! One round of the drain: read the oldest events, park the rows of those
//! too large for a message, send them, and remove them only once the queue
//! accepted them.

use std::collections::HashSet;
use std::time::Duration;

use tokio::time::Instant;

use tracing::Instrument;

use super::error::WatcherError;
use super::floor::Floor;
use super::pack::{self, Limits, PendingEvent};
use super::session::Session;
use super::settings::Settings;
use super::stats::Stats;
use crate::queue::{Queue, QueueError};
use crate::sql::catalog::watcher;
use crate::wire;

/// What one round did.
#[derive(Debug, Default)]
pub(crate) struct Round {
    /// Events read.
    pub read: usize,
    /// Events the queue accepted (and that were removed).
    pub sent: usize,
    /// A transient queue failure: back off before the next round.
    pub queue_error: Option<QueueError>,
    /// Events of messages the queue refused for what they contain: they go
    /// by reference next time, which carries no row data.
    pub refused: Vec<i64>,
}

/// One event as read from `dawdle.events`.
#[derive(Debug)]
pub(crate) struct ReadEvent {
    id: i64,
    /// The wire event, built by PostgreSQL.
    json: String,
    /// The FIFO group: `schema.table:key`.
    group: String,
}

/// One round of the drain: [`read`], [`park`], [`send`].
pub(crate) async fn round(
    session: &Session,
    queue: &dyn Queue,
    settings: &Settings,
    stats: &Stats,
    by_reference: &HashSet<i64>,
    floor: &mut Floor,
) -> Result<Round, WatcherError> {
    let read = read(session, settings, floor).await?;
    if read.is_empty() {
        return Ok(Round::default());
    }
    let span = tracing::debug_span!("drain", events = read.len());
    async {
        let count = read.len();
        let events = park(
            session,
            settings,
            queue.max_message_bytes(),
            by_reference,
            read,
        )
        .await?;
        let mut round = send(session, queue, settings, stats, events).await?;
        round.read = count;
        Ok(round)
    }
    .instrument(span)
    .await
}

/// How old the session's last answer may be before a send is fenced on a
/// check of the leader's lock.
const FENCE_AFTER: Duration = Duration::from_millis(100);

/// Reads the oldest events from the floor up, each already as its wire JSON
/// (built by PostgreSQL, so the watcher only concatenates text).
async fn read(
    session: &Session,
    settings: &Settings,
    floor: &mut Floor,
) -> Result<Vec<ReadEvent>, WatcherError> {
    let limit = settings.batch_size as i64;
    let rows = session
        .query(watcher::FETCH, &[&limit, &floor.value()])
        .await?;
    Ok(rows
        .into_iter()
        .map(|row| {
            let event = ReadEvent {
                id: row.get(0),
                json: row.get(1),
                group: row.get(2),
            };
            floor.saw(event.id);
            event
        })
        .collect())
}

/// Parks the rows of events that cannot travel in a message (larger than
/// one, or refused by the queue before) in `dawdle.payloads`, and gives
/// those events their by-reference form, which carries no row data.
async fn park(
    session: &Session,
    settings: &Settings,
    max_bytes: usize,
    by_reference: &HashSet<i64>,
    read: Vec<ReadEvent>,
) -> Result<Vec<PendingEvent>, WatcherError> {
    let mut events = Vec::with_capacity(read.len());
    for ReadEvent { id, json, group } in read {
        let json = if json.len() + wire::ENVELOPE_OVERHEAD > max_bytes || by_reference.contains(&id)
        {
            let retention = settings.payload_retention.as_secs_f64();
            session.execute(watcher::PARK, &[&id, &retention]).await?;
            let reference: String = session
                .query_one(watcher::FETCH_REFERENCE, &[&id])
                .await?
                .get(0);
            tracing::info!(
                event = id,
                bytes = json.len(),
                "event larger than a message: sending it by reference"
            );
            reference
        } else {
            json
        };
        events.push(PendingEvent { id, json, group });
    }
    Ok(events)
}

/// Packs `events` into messages, sends them, and removes from
/// `dawdle.events` exactly those the queue accepted.
async fn send(
    session: &Session,
    queue: &dyn Queue,
    settings: &Settings,
    stats: &Stats,
    events: Vec<PendingEvent>,
) -> Result<Round, WatcherError> {
    let mut round = Round::default();
    let limits = Limits {
        fifo: queue.is_fifo(),
        max_bytes: queue.max_message_bytes(),
        max_events_per_message: settings.max_events_per_message,
        source: session.source(),
    };
    // The read and park queries of this round have just been answered.
    let mut answered = Instant::now();
    for call in pack::pack(events, limits) {
        let messages: Vec<_> = call.iter().map(|p| p.message.clone()).collect();
        // The fence: a leader that lost its lock never sends again. The
        // lock is a session lock the watcher never releases, so a session
        // that answered a moment ago held it then: the check is needed, and
        // made, only when the last answer is older than `FENCE_AFTER` (after
        // a slow send, say). Under load, rounds take milliseconds, and a
        // query per send would cost the writers' cores for nothing.
        if answered.elapsed() >= FENCE_AFTER {
            if !session.still_leads().await? {
                return Err(WatcherError::LostLeadership);
            }
            answered = Instant::now();
        }
        let started = Instant::now();
        let sent = tokio::time::timeout(settings.send_timeout, queue.send(&messages)).await;
        let sent = sent.unwrap_or_else(|_| {
            Err(QueueError::Unavailable(format!(
                "the send call took longer than {:?}",
                settings.send_timeout
            )))
        });
        let outcome = match sent {
            Ok(outcome) => outcome,
            Err(error) => {
                // Logged by the caller, which backs off.
                round.queue_error = Some(error);
                break;
            }
        };
        let sent: Vec<i64> = outcome
            .accepted
            .iter()
            .filter_map(|&index| call.get(index))
            .flat_map(|packed| packed.events.iter().copied())
            .collect();
        stats.record_send(sent.len(), outcome.accepted.len(), started.elapsed());
        if !sent.is_empty() {
            session.execute(watcher::DELETE, &[&sent]).await?;
            answered = Instant::now();
        }
        round.sent += sent.len();
        tracing::debug!(
            messages = messages.len(),
            events = sent.len(),
            latency_ms = started.elapsed().as_secs_f64() * 1e3,
            "sent"
        );
        for (index, error) in outcome.failed {
            let Some(packed) = call.get(index) else {
                continue;
            };
            if error.is_transient() {
                tracing::warn!(events = packed.events.len(), %error, "the queue failed a message; its events stay in PostgreSQL");
                round.queue_error = Some(error);
            } else {
                // Backing off would not help: the same message would be
                // refused again, and hold up everything behind it.
                tracing::error!(events = packed.events.len(), %error, "the queue refused a message; its events go by reference");
                round.refused.extend(packed.events.iter().copied());
            }
        }
        if (round.queue_error.is_some() || !round.refused.is_empty()) && limits.fifo {
            // Later calls may hold later changes of the refused rows.
            break;
        }
    }
    Ok(round)
}

/// Deletes expired payloads of by-reference events, and says how many.
pub(crate) async fn expire_payloads(session: &Session) -> Result<u64, WatcherError> {
    session.execute(watcher::EXPIRE_PAYLOADS, &[]).await
}

/// Backlog depth (from the id range: two index probes, where `count(*)`
/// could take longer than the query timeout on a large backlog) and the age
/// of the oldest event.
pub(crate) async fn backlog(
    session: &Session,
    floor: &Floor,
) -> Result<(i64, Option<Duration>), WatcherError> {
    let rows = session.query(watcher::BACKLOG, &[&floor.value()]).await?;
    let Some(row) = rows.into_iter().next() else {
        return Ok((0, None));
    };
    let age: Option<f64> = row.get(1);
    Ok((
        row.get::<_, Option<i64>>(0).unwrap_or(0),
        age.map(|s| Duration::from_secs_f64(s.max(0.0))),
    ))
}

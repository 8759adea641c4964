//! One round of the drain: read the oldest events, send them, and remove
//! them only once the queue accepted them.

use std::collections::HashSet;
use std::time::Duration;

use tokio::time::Instant;

use tracing::Instrument;

use super::pack::{self, Limits, PendingEvent};
use super::session::Session;
use super::{Settings, Stats, WatcherError};
use crate::queue::{Queue, QueueError};
use crate::wire;

/// Reads the oldest events, each already as its wire JSON (built by
/// PostgreSQL, so the watcher only concatenates text).
const FETCH: &str = r#"
SELECT e."id",
       json_build_object('id', e."id", 'schema', e."schema_name", 'table', e."table_name",
                         'action', e."action", 'key', e."row_key", 'captured_at', e."captured_at",
                         'txid', e."txid"::text, 'old', e."old", 'new', e."new")::text,
       e."schema_name" || '.' || e."table_name" || ':' || e."row_key"::text
FROM "dawdle"."events" e
WHERE e."id" >= $2
ORDER BY e."id"
LIMIT $1"#;

/// The same event without its rows, for events too large for a message.
const FETCH_REFERENCE: &str = r#"
SELECT json_build_object('id', e."id", 'schema', e."schema_name", 'table', e."table_name",
                         'action', e."action", 'key', e."row_key", 'captured_at', e."captured_at",
                         'txid', e."txid"::text, 'by_ref', true)::text
FROM "dawdle"."events" e
WHERE e."id" = $1"#;

const DELETE: &str = r#"DELETE FROM "dawdle"."events" WHERE "id" = ANY($1)"#;

/// Before an event goes by reference, its rows are copied to
/// `dawdle.payloads`, so that they are there when the message is received.
const PARK: &str = r#"
INSERT INTO "dawdle"."payloads" ("id", "old", "new", "expires_at")
SELECT "id", "old", "new", now() + make_interval(secs => $2) FROM "dawdle"."events" WHERE "id" = $1
ON CONFLICT ("id") DO NOTHING"#;

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
                .query_one(
                    r#"SELECT CASE WHEN pg_snapshot_xmin(pg_current_snapshot())::text::int8 >= $3::int8
                              THEN (SELECT coalesce(min("id"), $2::int8 + 1) FROM "dawdle"."events"
                                    WHERE "id" >= $1::int8 AND "id" <= $2::int8) END"#,
                    &[&self.value, &last_id, &xid],
                )
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
        let xid: i64 = session
            .query_one("SELECT pg_current_xact_id()::text::int8", &[])
            .await?
            .get(0);
        self.checkpoint = Some((last_id, xid));
        Ok(())
    }

    pub(crate) fn value(&self) -> i64 {
        self.value
    }

    /// Notes an event id that a round read.
    fn saw(&mut self, id: i64) {
        self.highest = self.highest.max(id);
    }
}

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

pub(crate) async fn round(
    session: &Session,
    queue: &dyn Queue,
    settings: &Settings,
    stats: &Stats,
    by_reference: &HashSet<i64>,
    floor: &mut Floor,
) -> Result<Round, WatcherError> {
    let limit = settings.batch_size as i64;
    let rows = session.query(FETCH, &[&limit, &floor.value()]).await?;
    for row in &rows {
        floor.saw(row.get(0));
    }
    let mut round = Round {
        read: rows.len(),
        ..Round::default()
    };
    if rows.is_empty() {
        return Ok(round);
    }
    let span = tracing::debug_span!("drain", events = rows.len());
    async {
        let max_bytes = queue.max_message_bytes();
        let mut events = Vec::with_capacity(rows.len());
        for row in rows {
            let id: i64 = row.get(0);
            let json: String = row.get(1);
            let group: String = row.get(2);
            let json = if json.len() + wire::ENVELOPE_OVERHEAD > max_bytes || by_reference.contains(&id) {
                let retention = settings.payload_retention.as_secs_f64();
                session.execute(PARK, &[&id, &retention]).await?;
                let reference: String = session.query_one(FETCH_REFERENCE, &[&id]).await?.get(0);
                tracing::info!(event = id, bytes = json.len(), "event larger than a message: sending it by reference");
                reference
            } else {
                json
            };
            events.push(PendingEvent { id, json, group });
        }
        let limits = Limits {
            fifo: queue.is_fifo(),
            max_bytes,
            max_events_per_message: settings.max_events_per_message,
            source: session.source(),
        };
        for call in pack::pack(events, limits) {
            let messages: Vec<_> = call.iter().map(|p| p.message.clone()).collect();
            let started = Instant::now();
            let outcome = match queue.send(&messages).await {
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
            stats.record_send(sent.len(), started.elapsed());
            if !sent.is_empty() {
                session.execute(DELETE, &[&sent]).await?;
            }
            round.sent += sent.len();
            tracing::debug!(
                messages = messages.len(),
                events = sent.len(),
                latency_ms = started.elapsed().as_secs_f64() * 1e3,
                "sent"
            );
            for (index, error) in outcome.failed {
                let Some(packed) = call.get(index) else { continue };
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
    .instrument(span)
    .await
}

/// Deletes expired payloads of by-reference events, and says how many.
pub(crate) async fn expire_payloads(session: &Session) -> Result<u64, WatcherError> {
    session
        .execute(
            r#"DELETE FROM "dawdle"."payloads" WHERE "expires_at" < now()"#,
            &[],
        )
        .await
}

/// Backlog depth (from the id range: two index probes, where `count(*)`
/// could take longer than the query timeout on a large backlog) and the age
/// of the oldest event.
pub(crate) async fn backlog(
    session: &Session,
    floor: &Floor,
) -> Result<(i64, Option<Duration>), WatcherError> {
    let rows = session
        .query(
            r#"SELECT (SELECT max("id") FROM "dawdle"."events") - o."id" + 1,
                      extract(epoch FROM now() - o."captured_at")::float8
               FROM (SELECT "id", "captured_at" FROM "dawdle"."events" WHERE "id" >= $1
                     ORDER BY "id" LIMIT 1) o"#,
            &[&floor.value()],
        )
        .await?;
    let Some(row) = rows.into_iter().next() else {
        return Ok((0, None));
    };
    let age: Option<f64> = row.get(1);
    Ok((
        row.get::<_, Option<i64>>(0).unwrap_or(0),
        age.map(|s| Duration::from_secs_f64(s.max(0.0))),
    ))
}

//! One round of the drain: read the oldest events, send them, and remove
//! them only once the queue accepted them.

use std::time::{Duration, Instant};

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

/// What one round did.
#[derive(Debug, Default)]
pub(crate) struct Round {
    /// Events read.
    pub read: usize,
    /// Events the queue accepted (and that were removed).
    pub sent: usize,
    /// A transient queue failure: back off before the next round.
    pub queue_error: Option<QueueError>,
}

pub(crate) async fn round(
    session: &Session,
    queue: &dyn Queue,
    settings: &Settings,
    stats: &Stats,
) -> Result<Round, WatcherError> {
    let limit = settings.batch_size as i64;
    let rows = session.query(FETCH, &[&limit]).await?;
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
            let json = if json.len() + wire::ENVELOPE_OVERHEAD > max_bytes {
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
            stats.record_send(call.iter().map(|p| p.events.len()).sum(), started.elapsed());
            let sent: Vec<i64> = outcome
                .accepted
                .iter()
                .flat_map(|&index| call[index].events.iter().copied())
                .collect();
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
                tracing::warn!(events = call[index].events.len(), %error, "the queue refused a message; its events stay in PostgreSQL");
                if round.queue_error.is_none() || error.is_transient() {
                    round.queue_error = Some(error);
                }
            }
            if round.queue_error.is_some() && limits.fifo {
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

/// Backlog depth and the age of the oldest event.
pub(crate) async fn backlog(session: &Session) -> Result<(i64, Option<Duration>), WatcherError> {
    let row = session
        .query_one(
            r#"SELECT count(*), extract(epoch FROM now() - min("captured_at"))::float8 FROM "dawdle"."events""#,
            &[],
        )
        .await?;
    let age: Option<f64> = row.get(1);
    Ok((row.get(0), age.map(|s| Duration::from_secs_f64(s.max(0.0)))))
}

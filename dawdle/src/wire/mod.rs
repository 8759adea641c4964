//! The wire format: what dawdle puts on the queue. JSON, versioned, readable
//! from any language.
//!
//! # Messages
//!
//! Every message body is one JSON object, an *envelope* of one or more events:
//!
//! ```json
//! {
//!   "dawdle": 1,
//!   "events": [
//!     {
//!       "id": 42,
//!       "source": "0b3c6d0e-5a8f-4f27-9c57-3f0d2f3c6a11",
//!       "schema": "public",
//!       "table": "users",
//!       "action": "update",
//!       "key": ["6c1c0f5e-8d1a-4c61-9a8e-2f6f1f1b2a10"],
//!       "captured_at": "2026-11-27T10:11:12.123456+00:00",
//!       "txid": "1234567",
//!       "old": {"id": "6c1c0f5e-8d1a-4c61-9a8e-2f6f1f1b2a10", "name": "ada"},
//!       "new": {"id": "6c1c0f5e-8d1a-4c61-9a8e-2f6f1f1b2a10", "name": "Ada"}
//!     }
//!   ]
//! }
//! ```
//!
//! - `dawdle` is the format version, an integer; this is version **1**. A
//!   reader must refuse a version it does not know.
//! - `events` are in capture order. On a FIFO queue all events of one message
//!   belong to one row (its `MessageGroupId`).
//! - `id` is the event's id, unique within the source database and the same
//!   on every redelivery. It fits in an `i64`.
//! - `source` is the source database's origin id (a UUID, from the one-row
//!   table `dawdle.origin`, made at random when dawdle's SQL is first
//!   installed). **`(source, id)` is the idempotency key**: ids alone repeat
//!   across databases that feed one queue. A database cloned or restored
//!   from another keeps its origin, and would repeat the other's ids: give
//!   the copy a new one before its watcher starts, with
//!   `UPDATE dawdle.origin SET source = gen_random_uuid();`. Messages
//!   written before `source` existed lack it.
//! - `schema` and `table` name the table, unquoted and case-sensitive.
//! - `action` is `insert`, `update`, `delete`, `truncate`, `snapshot` or
//!   `signal`. A `truncate` is one event for the whole table (a `TRUNCATE`
//!   statement): `key` is `[]`, `old` and `new` are `null`. On a FIFO queue
//!   it is a group of its own (the table's), so it is not ordered with the
//!   row events before it: compare `id`s, or `captured_at`, when that
//!   matters. A `snapshot` is a row as a backfill read it (see
//!   [`backfill`](crate::backfill)): like an insert, it has `new` and not
//!   `old`, but it is not an insert; on a FIFO queue it is in its row's
//!   group, after every change committed before it was read. A `signal`
//!   is an application's own event (see [Signals](#signals) below).
//! - `key` is the primary key of the row, a JSON array in key column order,
//!   spelled alike by every session (a `timestamptz` key column in UTC,
//!   without an offset), so that it can name the row's FIFO group. On an
//!   update it is the key **after** the change (`new`'s); an update that
//!   changes the key is the last event of the old key and the first of the
//!   new one.
//! - `captured_at` is when the trigger ran: ISO 8601 with the UTC offset,
//!   as PostgreSQL spells a `timestamptz` in JSON, which drops trailing
//!   zeros of the fraction (`10:11:12.1234+00:00`, `10:11:12+00:00`): read
//!   it with an ISO 8601 parser, not a fixed-width one.
//! - `txid` is the PostgreSQL transaction id (`xid8`) as a decimal string:
//!   events with the same `txid` were committed together.
//! - `old` (updates and deletes) and `new` (inserts, updates and
//!   snapshots) are the rows:
//!   objects keyed by column name, holding only the captured columns, `null`
//!   when not applicable. Column values are PostgreSQL's `to_json` form, except
//!   `real`, `double precision` and `numeric` (and arrays of them), which are
//!   strings holding PostgreSQL's text form, so that `-0`, `NaN`, `Infinity`
//!   and every digit survive any JSON parser (a float written by a session
//!   whose `extra_float_digits` is 0 or less, where that form would round,
//!   has 17 significant digits instead, e.g. `"1.0000000000000001e-01"`:
//!   the same value to any float parser); likewise a `json`/`jsonb`
//!   column that the Rust type reads as `Option<serde_json::Value>` is a
//!   string holding the JSON text, so that SQL NULL (`null`) and a JSON
//!   `null` (`"null"`) stay apart. (The triggers choose the form from the
//!   `Watched` type's fields; [`Table`](crate::Table)'s `Encoding` per
//!   column says which.) Timestamps with time zone are ISO 8601 with the
//!   UTC offset of the session that wrote them (compare them as instants),
//!   intervals ISO 8601 (`P1Y2M3DT4H5M6S`), `bytea` as `"\\x0a0b"`.
//! - An event too large for one message (or refused by the queue as it was)
//!   travels **by reference**: it has `"by_ref": true` and no `old` or `new`.
//!   Its rows wait in the table `dawdle.payloads` of the *source* database
//!   (the one whose `dawdle.origin` holds `source`), under the event's `id`:
//!
//!   ```sql
//!   SELECT "old"::text, "new"::text FROM "dawdle"."payloads" WHERE "id" = $1
//!   ```
//!
//!   `old` and `new` there are the same JSON objects the event would have
//!   carried (a signal's `payload` is in `new`). The reader that handled the event deletes the row
//!   (`DELETE FROM "dawdle"."payloads" WHERE "id" = $1`) after deleting the
//!   message.
//!
//!   A watcher with several routes sends an event to each route that takes
//!   it, and then each copy by reference carries `"route"`, its route's
//!   name: the rows are shared by the routes named in the row's `routes`
//!   column, and the reader removes only its route's claim, in two
//!   statements, one after the other (not in one transaction), so that of
//!   two readers at once the later one deletes the row:
//!
//!   ```sql
//!   UPDATE "dawdle"."payloads" SET "routes" = array_remove("routes", $2)
//!   WHERE "id" = $1 AND $2 = ANY("routes");
//!   DELETE FROM "dawdle"."payloads"
//!   WHERE "id" = $1 AND ("routes" IS NULL OR "routes" = '{}');
//!   ```
//!
//!   A row waits as long as the queue may still deliver the
//!   message: on a PgQueue until the message is deleted, or its dead letter
//!   discarded (`expires_at` is NULL); on SQS its retention period plus its
//!   dead-letter queue's, and at least the watcher's `payload_retention`
//!   (4 days by default). After `expires_at` the watcher removes it. A
//!   by-reference event whose row is gone cannot be handled: dead-letter it.
//!
//! # Signals
//!
//! An event with `"action": "signal"` is an application's own event (see
//! [`signal`](crate::signal())), not a row change:
//!
//! ```json
//! {
//!   "id": 43,
//!   "source": "0b3c6d0e-5a8f-4f27-9c57-3f0d2f3c6a11",
//!   "schema": "dawdle",
//!   "table": "signals",
//!   "action": "signal",
//!   "key": [43],
//!   "captured_at": "2026-11-27T10:11:12.123456+00:00",
//!   "txid": "1234570",
//!   "signal": "billing.invoice_due",
//!   "deliver_at": "2026-12-27T10:11:12.123456+00:00",
//!   "payload": {"invoice": 7}
//! }
//! ```
//!
//! - `schema` and `table` are always `dawdle` and `signals`; `key` is
//!   `[id]`, so that on a FIFO queue each signal is a group of its own.
//!   There is no `old` nor `new`.
//! - `signal` is its name, which chooses the handlers (a reader that
//!   knows no handler for it dead-letters it).
//! - `payload` is the JSON the sender gave, as it gave it.
//! - `captured_at` is when it was sent; `deliver_at` when it was to be
//!   delivered (the same, unless it was delayed). A delayed signal keeps
//!   the `id` it got when it was sent, and its `txid` is the transaction
//!   that released it when it fell due.
//! - Sent by reference (`by_ref`), its payload waits in `dawdle.payloads`
//!   as `new`.
//! - Signals sent without a database (`RuntimeHandle::signal`) carry, in
//!   `source`, a random id of the sending process instead of a
//!   database's, and `txid` `"0"`.
//!
//! Readers must ignore members they do not know: later versions of format 1
//! may add some.
//!
//! # A schema per program
//!
//! Which of the spellings above a column uses depends on the Rust type that
//! describes it. [`json_schema`] (and `dawdle-sql schema`, which prints it
//! for every `Watched` type of a program) gives a JSON Schema of the
//! messages, with each column's spelling.

mod schema;

use serde::Deserialize;
use serde_json::value::RawValue;

pub use schema::json_schema;

use crate::table::Action;

/// The format version this crate writes and reads.
pub const VERSION: u64 = 1;

/// Bytes an envelope adds around its events: `{"dawdle":1,"events":[` and `]}`.
pub(crate) const ENVELOPE_OVERHEAD: usize = r#"{"dawdle":1,"events":[]}"#.len();

/// Wraps already-encoded events (JSON objects) into a message body.
pub(crate) fn envelope<'a>(events: impl IntoIterator<Item = &'a str>) -> String {
    let mut body = String::from(r#"{"dawdle":1,"events":["#);
    for (i, event) in events.into_iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str(event);
    }
    body.push_str("]}");
    body
}

/// `event` (a by-reference event's JSON object) naming `route`.
pub(crate) fn with_route(event: &str, route: &str) -> Result<String, serde_json::Error> {
    let mut object: serde_json::Map<String, serde_json::Value> = serde_json::from_str(event)?;
    object.insert("route".to_owned(), route.into());
    serde_json::to_string(&object)
}

/// Why a message body is not a dawdle message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum WireError {
    /// Not JSON, or not the shape of an envelope.
    #[error("not a dawdle message: {0}")]
    Malformed(String),
    /// A version this crate does not read.
    #[error("unknown dawdle message version {0}; this reader knows version {VERSION}")]
    UnknownVersion(u64),
}

/// One decoded message: the events it carries.
#[derive(Debug, Clone)]
pub struct Envelope {
    /// The events, in capture order.
    pub events: Vec<WireEvent>,
    /// Each event's JSON as it arrived, to send an event on by itself.
    pub raw: Vec<Box<RawValue>>,
}

/// One event as it travels, before its rows are decoded into a `Watched` type.
#[derive(Debug, Clone, Deserialize)]
pub struct WireEvent {
    /// The event id, stable across redeliveries; unique within its source.
    pub id: i64,
    /// The source database's origin id: with `id`, the idempotency key.
    /// `None` in messages written before it was added.
    #[serde(default)]
    pub source: Option<String>,
    /// Schema of the table.
    pub schema: String,
    /// Name of the table.
    pub table: String,
    /// What happened.
    #[serde(deserialize_with = "action")]
    pub action: Action,
    /// The primary key, as a JSON array.
    pub key: Box<RawValue>,
    /// When the trigger ran.
    pub captured_at: chrono::DateTime<chrono::FixedOffset>,
    /// The transaction id, in decimal.
    pub txid: String,
    /// The row before the change.
    #[serde(default)]
    pub old: Option<serde_json::Value>,
    /// The row after the change.
    #[serde(default)]
    pub new: Option<serde_json::Value>,
    /// The rows (or a signal's payload) are in `dawdle.payloads` rather
    /// than here.
    #[serde(default)]
    pub by_ref: bool,
    /// With `by_ref`, when the watcher sent the event to several routes:
    /// the route this copy went to, whose claim on the rows its reader
    /// removes.
    #[serde(default)]
    pub route: Option<String>,
    /// A signal's wire name (`action` is `signal`).
    #[serde(default)]
    pub signal: Option<String>,
    /// A signal's value.
    #[serde(default)]
    pub payload: Option<serde_json::Value>,
    /// When a signal was to be delivered.
    #[serde(default)]
    pub deliver_at: Option<chrono::DateTime<chrono::FixedOffset>>,
}

fn action<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Action, D::Error> {
    let name = <std::borrow::Cow<'de, str>>::deserialize(d)?;
    Action::parse(&name).ok_or_else(|| {
        serde::de::Error::custom(format_args!(
            "unknown action {name:?}; expected insert, update, delete, truncate, snapshot or signal"
        ))
    })
}

impl Envelope {
    /// Reads a message body.
    pub fn parse(body: &str) -> Result<Envelope, WireError> {
        #[derive(Deserialize)]
        struct Version {
            dawdle: u64,
        }
        #[derive(Deserialize)]
        struct Body {
            events: Vec<Box<RawValue>>,
        }
        let version: Version =
            serde_json::from_str(body).map_err(|e| WireError::Malformed(e.to_string()))?;
        if version.dawdle != VERSION {
            return Err(WireError::UnknownVersion(version.dawdle));
        }
        let parsed: Body =
            serde_json::from_str(body).map_err(|e| WireError::Malformed(e.to_string()))?;
        if parsed.events.is_empty() {
            return Err(WireError::Malformed("a message without events".to_owned()));
        }
        let events = parsed
            .events
            .iter()
            .enumerate()
            .map(|(i, raw)| {
                serde_json::from_str(raw.get())
                    .map_err(|e| WireError::Malformed(format!("event {i}: {e}")))
            })
            .collect::<Result<_, _>>()?;
        Ok(Envelope {
            events,
            raw: parsed.events,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const EVENT: &str = r#"{"id":7,"schema":"public","table":"users","action":"insert","key":[1],"captured_at":"2026-11-27T10:11:12.123456+00:00","txid":"99","old":null,"new":{"id":1}}"#;

    #[test]
    fn round_trips_an_envelope() {
        let body = envelope([EVENT, EVENT]);
        assert_eq!(body.len(), ENVELOPE_OVERHEAD + 2 * EVENT.len() + 1);
        let parsed = Envelope::parse(&body).unwrap();
        assert_eq!(parsed.events.len(), 2);
        let e = &parsed.events[0];
        assert_eq!((e.id, e.action, e.key.get()), (7, Action::Insert, "[1]"));
        assert_eq!(e.new, Some(serde_json::json!({"id": 1})));
        assert!(e.old.is_none() && !e.by_ref && e.source.is_none());
        let sourced = EVENT.replace(
            r#""id":7,"#,
            r#""id":7,"source":"0b3c6d0e-5a8f-4f27-9c57-3f0d2f3c6a11","#,
        );
        let parsed = Envelope::parse(&envelope([sourced.as_str()])).unwrap();
        assert_eq!(
            parsed.events[0].source.as_deref(),
            Some("0b3c6d0e-5a8f-4f27-9c57-3f0d2f3c6a11")
        );
    }

    #[test]
    fn names_what_is_wrong() {
        assert!(matches!(
            Envelope::parse("nope"),
            Err(WireError::Malformed(_))
        ));
        assert_eq!(
            Envelope::parse(r#"{"dawdle":2,"events":[]}"#).unwrap_err(),
            WireError::UnknownVersion(2)
        );
        let bad_action = envelope([EVENT.replace("insert", "upsert").as_str()]);
        let err = Envelope::parse(&bad_action).unwrap_err().to_string();
        assert!(err.contains("unknown action \"upsert\""), "{err}");
        assert!(Envelope::parse(r#"{"dawdle":1,"events":[]}"#).is_err());
    }
}

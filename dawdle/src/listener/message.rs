//! Handling one received message: check it, decode it for every handler,
//! call them all, and delete it only when every one succeeded.

use std::any::Any;
use std::sync::Arc;

use tokio::time::Instant;
use tracing::Instrument;

use super::deleter::Deleter;
use super::shared::Listener;
use crate::handler::{Handler, HandlerError};
use crate::observability;
use crate::queue::{OutgoingMessage, ReceivedMessage, MAX_BATCH_MESSAGES};
use crate::sync::AbortOnDrop;
use crate::table::Action;
use crate::wire;
use crate::wire::{Envelope, WireEvent};

/// How handling a message ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Handled,
    Failed,
    DeadLettered,
}

/// Why a message cannot be handled now.
enum NotReady {
    /// Never: dead-letter it.
    Invalid(String),
    /// Not now (the database is down): let it come back.
    Retry(String),
}

use NotReady::{Invalid, Retry};

/// Calls, for each event of the message, every handler of its table and action.
/// Deletes go through `deleter`, batched with those of other messages.
pub(super) async fn handle(
    listener: Arc<Listener>,
    message: ReceivedMessage,
    deleter: &Deleter,
) -> Outcome {
    let span = tracing::info_span!(
        "message",
        id = %message.message_id,
        receives = message.receive_count
    );
    async move {
        let split_allowed = !listener.queue.is_fifo();
        let (calls, invalid) = match prepare(&listener, &message).await {
            // Some events can never be handled, and they are not alone:
            // those go on by themselves (and to the dead-letter queue from
            // there) while the others are handled, on standard queues.
            Ok(p) if p.invalid.is_empty() || (split_allowed && !p.calls.is_empty()) => {
                for (_, reason) in &p.invalid {
                    tracing::error!(%reason, "an event of the message cannot be handled; sending it on alone");
                }
                (p.calls, p.invalid.into_iter().map(|(raw, _)| raw).collect::<Vec<_>>())
            }
            Ok(p) => {
                let reason: Vec<String> = p.invalid.into_iter().map(|(_, reason)| reason).collect();
                dead_letter(&listener, &message, &reason.join("; ")).await;
                return Outcome::DeadLettered;
            }
            Err(Retry(reason)) => {
                tracing::warn!(%reason, "cannot handle the message now; it will be retried");
                let delay = listener.settings.retry_delay(message.receive_count);
                let _ = listener.queue.change_visibility(&message.receipt, delay).await;
                return Outcome::Failed;
            }
            Err(Invalid(reason)) => {
                dead_letter(&listener, &message, &reason).await;
                return Outcome::DeadLettered;
            }
        };
        let mut failed = invalid.len();
        let mut done = Vec::new(); // events whose handlers all succeeded
        let mut failed_events = invalid;
        let fifo = listener.queue.is_fifo();
        for call in calls {
            if failed > 0 && fifo {
                // The message's later events are later changes of the same
                // row: they wait until the failed one succeeds.
                break;
            }
            let mut ok = true;
            if message.receive_count == 1 {
                let age = chrono::Utc::now().signed_duration_since(call.captured_at);
                metrics::histogram!(observability::COMMIT_TO_HANDLER, "table" => call.table.clone())
                    .record(age.to_std().map_or(0.0, observability::seconds));
            }
            for (handler, arg) in call.handlers {
                if let Err(error) = call_handler(&listener, handler, arg, &call.table, call.action, call.event_id).await {
                    failed += 1;
                    ok = false;
                    tracing::warn!(handler = handler.name, event = call.event_id, %error, "handler failed; the event will be retried");
                }
            }
            if ok {
                done.push((call.event_id, call.by_ref));
            } else {
                failed_events.push(call.raw);
            }
        }
        if failed > 0 && !done.is_empty() && !listener.queue.is_fifo() {
            // Do not let a failing event drag the others of its message into
            // retries and the dead-letter queue: send each failed event on in
            // a message of its own, and count the rest as handled.
            if split(&listener, deleter, &message, &failed_events).await {
                forget(&listener, &done).await;
                return Outcome::Failed;
            }
        }
        if failed > 0 {
            let delay = listener.settings.retry_delay(message.receive_count);
            if let Err(error) = listener.queue.change_visibility(&message.receipt, delay).await {
                tracing::debug!(%error, "could not shorten the visibility; the message returns after its timeout");
            }
            return Outcome::Failed;
        }
        if let Err(error) = deleter.delete(&message.receipt).await {
            tracing::warn!(%error, "handled, but the delete failed: the message will be handled again");
            return Outcome::Failed;
        }
        forget(&listener, &done).await;
        Outcome::Handled
    }
    .instrument(span)
    .await
}

async fn dead_letter(listener: &Listener, message: &ReceivedMessage, reason: &str) {
    tracing::error!(%reason, "dead-lettering a message that cannot be handled");
    metrics::counter!(observability::DEAD_LETTERED).increment(1);
    if let Err(error) = listener.queue.dead_letter(message, reason).await {
        tracing::warn!(%error, "could not dead-letter the message; it will be received again");
    }
}

/// Re-sends `failed` events one per message, then deletes the original.
/// Says whether it did; if not, the whole message is retried instead.
/// The delete goes to the deleter only once every re-send was accepted, so
/// batching it keeps the order: never the original gone and a copy missing.
async fn split(
    listener: &Listener,
    deleter: &Deleter,
    message: &ReceivedMessage,
    failed: &[String],
) -> bool {
    let messages: Vec<OutgoingMessage> = failed
        .iter()
        .map(|raw| OutgoingMessage {
            body: wire::envelope([raw.as_str()]),
            group_id: None,
            dedup_id: None,
        })
        .collect();
    // Within the queue's limits: ten messages and its byte limit per call.
    let mut start = 0;
    while start < messages.len() {
        let mut end = start;
        let mut bytes = 0;
        while end < messages.len()
            && end - start < MAX_BATCH_MESSAGES
            && (end == start
                || bytes + messages[end].body.len() <= listener.queue.max_message_bytes())
        {
            bytes += messages[end].body.len();
            end += 1;
        }
        match listener.queue.send(&messages[start..end]).await {
            Ok(outcome) if outcome.failed.is_empty() => {}
            // Those sent are duplicates of the original, which is retried.
            _ => return false,
        }
        start = end;
    }
    match deleter.delete(&message.receipt).await {
        Ok(()) => {
            tracing::info!(
                events = failed.len(),
                "re-sent the failed events of a message on their own"
            );
            true
        }
        // The original comes back too: duplicates, never losses.
        Err(_) => true,
    }
}

/// Removes the payloads of handled by-reference events.
async fn forget(listener: &Listener, done: &[(i64, bool)]) {
    let by_ref: Vec<i64> = done.iter().filter(|(_, r)| *r).map(|(id, _)| *id).collect();
    if !by_ref.is_empty() {
        if let Err(error) = listener.forget_payloads(&by_ref).await {
            tracing::warn!(%error, "could not remove the payloads of handled by-reference events: they stay in dawdle.payloads until they expire (on a PgQueue, never)");
        }
    }
}

/// Calls one handler in a task of its own, in a span of its own (its logs
/// carry the event), within the handler timeout.
async fn call_handler(
    listener: &Listener,
    handler: &'static Handler,
    arg: Box<dyn Any + Send>,
    table: &str,
    action: Action,
    event_id: i64,
) -> Result<(), HandlerError> {
    let span = tracing::info_span!(
        "handler",
        handler = handler.name,
        event = event_id,
        table,
        action = action.as_str()
    );
    let started = Instant::now();
    // A task of its own: a panic fails this handler only. Aborted with this
    // one, should a shutdown abandon the message, or at the timeout.
    let mut task = AbortOnDrop(tokio::spawn((handler.call)(arg).instrument(span)));
    let result = match listener.settings.handler_timeout {
        Some(limit) => match tokio::time::timeout(limit, &mut task.0).await {
            Ok(result) => result,
            Err(_) => Ok(Err(HandlerError::other(format!(
                "timed out after {limit:?} (the runtime's handler_timeout)"
            )))),
        },
        None => (&mut task.0).await,
    };
    let result = result.unwrap_or_else(|join| Err(HandlerError::from_join(join)));
    let labels = [("handler", handler.name)];
    metrics::histogram!(observability::HANDLER_DURATION, &labels)
        .record(observability::seconds(started.elapsed()));
    match &result {
        Ok(()) => metrics::counter!(observability::HANDLED, &labels).increment(1),
        Err(_) => metrics::counter!(observability::FAILED, &labels).increment(1),
    }
    result
}

struct Call {
    event_id: i64,
    by_ref: bool,
    /// `schema.table`, for spans and metrics.
    table: String,
    action: Action,
    captured_at: chrono::DateTime<chrono::FixedOffset>,
    /// The event's JSON as received.
    raw: String,
    handlers: Vec<(&'static Handler, Box<dyn Any + Send>)>,
}

/// Parses the message and decodes every event for every handler before any
/// handler runs: a message that cannot be handled calls none.
/// The events of a message, ready to call, and those that never can be.
struct Prepared {
    calls: Vec<Call>,
    /// Each invalid event's JSON and the reason.
    invalid: Vec<(String, String)>,
}

async fn prepare(listener: &Listener, message: &ReceivedMessage) -> Result<Prepared, NotReady> {
    let envelope = Envelope::parse(&message.body).map_err(|e| Invalid(e.to_string()))?;
    let mut prepared = Prepared {
        calls: Vec::with_capacity(envelope.events.len()),
        invalid: Vec::new(),
    };
    for (event, raw) in envelope.events.into_iter().zip(envelope.raw) {
        let (event_id, table, action, captured_at) = (
            event.id,
            format!("{}.{}", event.schema, event.table),
            event.action,
            // A delayed signal is late from its due time, not from when it was sent.
            event
                .deliver_at
                .unwrap_or(event.captured_at)
                .max(event.captured_at),
        );
        match prepare_event(listener, event).await {
            Ok((by_ref, handlers)) => prepared.calls.push(Call {
                event_id,
                by_ref,
                table,
                action,
                captured_at,
                raw: raw.get().to_owned(),
                handlers,
            }),
            Err(Invalid(reason)) => prepared.invalid.push((raw.get().to_owned(), reason)),
            Err(retry) => return Err(retry),
        }
    }
    Ok(prepared)
}

/// Whether the event came by reference, and each handler with its argument.
type Prepare = (bool, Vec<(&'static Handler, Box<dyn Any + Send>)>);

async fn prepare_event(listener: &Listener, mut event: WireEvent) -> Result<Prepare, NotReady> {
    let handlers = match event.action {
        Action::Signal => {
            let name = event
                .signal
                .as_deref()
                .ok_or_else(|| Invalid(format!("event {} is a signal without a name", event.id)))?;
            let handlers = listener.registry.handlers_of_signal(name);
            if handlers.is_empty() {
                return Err(Invalid(format!(
                    "event {} is signal {name:?}, which no handler in this program takes \
                     (a Signaled<T> of a Signal type of that name)",
                    event.id
                )));
            }
            handlers.to_vec()
        }
        _ if !listener.registry.knows(&event.schema, &event.table) => {
            return Err(Invalid(format!(
                "event {} is for table {}.{}, which no Watched type in this program describes",
                event.id, event.schema, event.table
            )));
        }
        action => listener
            .registry
            .handlers_of(&event.schema, &event.table, action),
    };
    if event.by_ref {
        fetch_payload(listener, &mut event).await?;
    }
    let mut calls = Vec::with_capacity(handlers.len());
    for handler in handlers {
        let arg =
            (handler.decode)(&event).map_err(|e| Invalid(format!("event {}: {e}", event.id)))?;
        calls.push((handler, arg));
    }
    Ok((event.by_ref, calls))
}

async fn fetch_payload(listener: &Listener, event: &mut WireEvent) -> Result<(), NotReady> {
    match listener.fetch_payload(event.id).await {
        // A signal's payload is parked as `new`.
        Ok(Some((_, payload))) if event.action == Action::Signal => {
            event.payload = payload;
            Ok(())
        }
        Ok(Some((old, new))) => {
            event.old = old;
            event.new = new;
            Ok(())
        }
        Ok(None) => Err(Invalid(format!(
            "event {} was sent by reference and its payload is gone from dawdle.payloads (expired?)",
            event.id
        ))),
        // A database outage is not the message's fault.
        Err(error) => Err(Retry(format!(
            "cannot fetch the payload of by-reference event {}: {error}",
            event.id
        ))),
    }
}

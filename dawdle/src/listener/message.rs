//! Handling one received message: check it, decode it for every handler,
//! call them all, and delete it only when every one succeeded.

use std::any::Any;
use std::sync::Arc;
use std::time::Duration;

use tracing::Instrument;

use super::deleter::Deleter;
use super::payloads::Claim;
use super::shared::Listener;
use crate::handler::Handler;
use crate::observability;
use crate::queue::{Failure, OutgoingMessage, ReceivedMessage, MAX_BATCH_MESSAGES};
use crate::table::Action;
use crate::watcher::pack;
use crate::wire;
use crate::wire::{Envelope, WireEvent};

/// How handling a message ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Handled,
    Failed,
    DeadLettered,
}

/// Why a message or an event cannot be handled now.
enum NotReady {
    /// Never: dead-letter it.
    Invalid(String),
    /// Not by this program: an event of a table or signal it has no type
    /// or handler for (a newer version's, during a rollout). It goes back
    /// for another listener, with a backoff.
    Unknown {
        /// `schema.table`, or `signal:name`.
        subject: String,
        reason: String,
    },
    /// Not now (the database is down): let it come back.
    Retry(String),
}

use NotReady::{Invalid, Retry, Unknown};

/// An event of a message that was not handled, and why.
struct Leftover {
    /// The event's JSON as received.
    raw: String,
    failure: Failure,
    /// Whether it can never be handled (dead-lettered rather than retried).
    invalid: bool,
}

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
        let prepared = match prepare(&listener, &message).await {
            Ok(prepared) => prepared,
            Err(Invalid(reason)) => {
                let failure = failure_of(&message, None, reason, false);
                return dead_letter(&listener, &message, &failure).await;
            }
            Err(Unknown { reason, .. }) | Err(Retry(reason)) => {
                tracing::warn!(%reason, "cannot handle the message now; it will be retried");
                let failure = failure_of(&message, None, reason, false);
                return retry(&listener, &message, failure).await;
            }
        };
        let fifo = listener.queue.is_fifo();
        let mut left: Vec<Leftover> = prepared.left;
        if fifo && !left.is_empty() {
            // One row's changes, in order: none may run before the earlier ones.
            return give_back(&listener, &message, left).await;
        }
        let mut done = Vec::new(); // events whose handlers all succeeded
        for call in prepared.calls {
            if fifo && !left.is_empty() {
                // The message's later events are later changes of the same
                // row: they wait until the failed one succeeds.
                break;
            }
            if message.receive_count == 1 {
                let age = chrono::Utc::now().signed_duration_since(call.captured_at);
                metrics::histogram!(observability::COMMIT_TO_HANDLER, "table" => call.table.clone())
                    .record(age.to_std().map_or(0.0, observability::seconds));
            }
            let mut failed = None;
            for (handler, arg) in call.handlers {
                let timeout = listener.settings.handler_timeout;
                if let Err(error) = crate::handler::call(handler, arg, call.event_id, &call.table, call.action, timeout).await {
                    tracing::warn!(handler = handler.name, event = call.event_id, error = format!("{error:#}"), "handler failed; the event will be retried");
                    failed = Some(failure_of(&message, Some(handler.name), format!("{error:#}"), error.is_panic()));
                }
            }
            match failed {
                None => done.push((call.event_id, call.by_ref)),
                Some(failure) => left.push(Leftover { raw: call.raw, failure, invalid: false }),
            }
        }
        if left.is_empty() {
            if let Err(error) = deleter.delete(&message.receipt).await {
                tracing::warn!(%error, "handled, but the delete failed: the message will be handled again");
                return Outcome::Failed;
            }
            forget(&listener, &done).await;
            return Outcome::Handled;
        }
        if fifo || done.is_empty() {
            return give_back(&listener, &message, left).await;
        }
        // Do not let failing events drag the others of the message into
        // retries and the dead-letter queue: send the failed events on
        // together, with their failure, and count the rest as handled.
        // Their attempts go on counting in the new message, which is
        // dead-lettered when it fails again past the queue's maximum.
        if split(&listener, deleter, &message, &left).await {
            forget(&listener, &done).await;
            return Outcome::Failed;
        }
        retry(&listener, &message, last_failure(&left).clone()).await
    }
    .instrument(span)
    .await
}

/// This attempt's failure of `message`: of `handler`, or of the message.
fn failure_of(
    message: &ReceivedMessage,
    handler: Option<&str>,
    error: String,
    panicked: bool,
) -> Failure {
    Failure::new(handler, error, panicked)
        .following(message.failure.as_ref(), message.receive_count)
}

/// The failure to record for a message's events that were not handled:
/// the last handler failure, else the last reason.
fn last_failure(left: &[Leftover]) -> &Failure {
    let last = left.last().expect("called with events left");
    left.iter()
        .rev()
        .find(|l| l.failure.handler.is_some())
        .map_or(&last.failure, |l| &l.failure)
}

/// A whole message that was not handled: dead-lettered when every event
/// left can never be handled, else handed back for a retry with its last
/// failure.
async fn give_back(listener: &Listener, message: &ReceivedMessage, left: Vec<Leftover>) -> Outcome {
    let failure = last_failure(&left).clone();
    if left.iter().all(|l| l.invalid) {
        return dead_letter(listener, message, &failure).await;
    }
    retry(listener, message, failure).await
}

/// Whether this failure was the message's last chance: it was received,
/// or failed, as many times as the queue allows.
async fn is_last(listener: &Listener, message: &ReceivedMessage, failure: &Failure) -> bool {
    match listener.queue.max_receives().await {
        Ok(Some(max)) => message.receive_count >= max || failure.attempts >= max,
        Ok(None) => false,
        Err(error) => {
            tracing::debug!(%error, "cannot read the queue's maximum receive count");
            false
        }
    }
}

/// Hands a failed message back with its failure, to return after a
/// backoff; on its last receive, dead-letters it instead.
async fn retry(listener: &Listener, message: &ReceivedMessage, failure: Failure) -> Outcome {
    if is_last(listener, message, &failure).await {
        return dead_letter(listener, message, &failure).await;
    }
    let delay = listener.settings.retry_delay(failure.attempts);
    if let Err(error) = listener.queue.retry(message, delay, &failure).await {
        tracing::debug!(%error, "could not hand the message back; it returns after its visibility timeout");
    }
    Outcome::Failed
}

async fn dead_letter(listener: &Listener, message: &ReceivedMessage, failure: &Failure) -> Outcome {
    tracing::error!(reason = %failure, "dead-lettering a message");
    metrics::counter!(observability::DEAD_LETTERED).increment(1);
    if let Err(error) = listener.queue.dead_letter(message, failure).await {
        tracing::warn!(%error, "could not dead-letter the message; it will be received again");
        return Outcome::Failed;
    }
    Outcome::DeadLettered
}

/// Re-sends the events `left` over, packed into as few messages as the
/// queue takes (those that can never be handled apart from the others),
/// each with its last failure and the retry backoff, then deletes the
/// original. Says whether it did; if not, the whole message is retried
/// instead. The delete goes to the deleter only once every re-send was
/// accepted, so batching it keeps the order: never the original gone and a
/// copy missing.
async fn split(
    listener: &Listener,
    deleter: &Deleter,
    message: &ReceivedMessage,
    left: &[Leftover],
) -> bool {
    let max_bytes = listener.queue.max_message_bytes();
    let mut messages: Vec<OutgoingMessage> = Vec::new();
    for invalid in [true, false] {
        let events: Vec<&Leftover> = left.iter().filter(|l| l.invalid == invalid).collect();
        let Some(last) = events.last() else { continue };
        let failure = if invalid {
            last.failure.clone()
        } else {
            last_failure(left).clone()
        };
        let delay = if invalid {
            Duration::ZERO
        } else {
            listener.settings.retry_delay(failure.attempts)
        };
        let target = max_bytes / MAX_BATCH_MESSAGES;
        for chunk in pack::by_size(events, |event| event.raw.len(), target, usize::MAX) {
            messages.push(OutgoingMessage {
                failure: Some(failure.clone()),
                delay,
                ..OutgoingMessage::new(wire::envelope(chunk.iter().map(|e| e.raw.as_str())))
            });
        }
    }
    // Within the queue's limits: ten messages and its byte limit per call.
    let mut start = 0;
    while start < messages.len() {
        let mut end = start;
        let mut bytes = 0;
        while end < messages.len()
            && end - start < MAX_BATCH_MESSAGES
            && (end == start || bytes + messages[end].body.len() <= max_bytes)
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
                events = left.len(),
                messages = messages.len(),
                "re-sent the events of a message that were not handled"
            );
            true
        }
        // The original comes back too: duplicates, never losses.
        Err(_) => true,
    }
}

/// Removes the payloads of handled by-reference events.
async fn forget(listener: &Listener, done: &[(i64, Option<Claim>)]) {
    let by_ref: Vec<(i64, Option<&str>)> = done
        .iter()
        .filter_map(|(id, claim)| Some((*id, claim.as_ref()?.route.as_deref())))
        .collect();
    if !by_ref.is_empty() {
        if let Err(error) = listener.forget_payloads(&by_ref).await {
            tracing::warn!(%error, "could not remove the payloads of handled by-reference events: they stay in dawdle.payloads until they expire (on a PgQueue, never)");
        }
    }
}

struct Call {
    event_id: i64,
    /// Came by reference: its claim on the rows in `dawdle.payloads`.
    by_ref: Option<Claim>,
    /// `schema.table`, for spans and metrics.
    table: String,
    action: Action,
    captured_at: chrono::DateTime<chrono::FixedOffset>,
    /// The event's JSON as received.
    raw: String,
    handlers: Vec<(&'static Handler, Box<dyn Any + Send>)>,
}

/// The events of a message, ready to call, and those that are not.
struct Prepared {
    calls: Vec<Call>,
    /// The events that cannot be handled here: never, or not by this program.
    left: Vec<Leftover>,
}

/// Parses the message and decodes every event for every handler before any
/// handler runs: a message that cannot be handled calls none.
async fn prepare(listener: &Listener, message: &ReceivedMessage) -> Result<Prepared, NotReady> {
    let envelope = Envelope::parse(&message.body).map_err(|e| Invalid(e.to_string()))?;
    let mut prepared = Prepared {
        calls: Vec::with_capacity(envelope.events.len()),
        left: Vec::new(),
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
        let (reason, invalid) = match prepare_event(listener, event).await {
            Ok((by_ref, handlers)) => {
                prepared.calls.push(Call {
                    event_id,
                    by_ref,
                    table,
                    action,
                    captured_at,
                    raw: raw.get().to_owned(),
                    handlers,
                });
                continue;
            }
            Err(Invalid(reason)) => {
                tracing::error!(%reason, "an event of the message can never be handled");
                (reason, true)
            }
            Err(Unknown { subject, reason }) => {
                unknown(listener, subject, &reason);
                (reason, false)
            }
            Err(retry) => return Err(retry),
        };
        prepared.left.push(Leftover {
            raw: raw.get().to_owned(),
            failure: failure_of(message, None, reason, false),
            invalid,
        });
    }
    Ok(prepared)
}

/// Counts an event that this program has no type or handler for, and logs
/// the first of each table or signal.
fn unknown(listener: &Listener, subject: String, reason: &str) {
    metrics::counter!(observability::UNKNOWN_EVENTS, "table" => subject.clone()).increment(1);
    if crate::sync::lock(&listener.unknown).insert(subject) {
        tracing::warn!(
            %reason,
            "handing back events this program cannot handle, for a listener that can \
             (a newer version, during a rollout); they are dead-lettered after the \
             queue's maximum receive count. Logged once per table or signal."
        );
    }
}

/// The event's claim on its rows, when it came by reference, and each
/// handler with its argument.
type Prepare = (Option<Claim>, Vec<(&'static Handler, Box<dyn Any + Send>)>);

async fn prepare_event(listener: &Listener, mut event: WireEvent) -> Result<Prepare, NotReady> {
    let handlers = match event.action {
        Action::Signal => {
            let name = event
                .signal
                .as_deref()
                .ok_or_else(|| Invalid(format!("event {} is a signal without a name", event.id)))?;
            let handlers = listener.registry.handlers_of_signal(name);
            if handlers.is_empty() {
                return Err(Unknown {
                    subject: format!("signal:{name}"),
                    reason: format!(
                        "event {} is signal {name:?}, which no handler in this program takes \
                         (a Signaled<T> of a Signal type of that name)",
                        event.id
                    ),
                });
            }
            handlers.to_vec()
        }
        _ if !listener.registry.knows(&event.schema, &event.table) => {
            return Err(Unknown {
                subject: format!("{}.{}", event.schema, event.table),
                reason: format!(
                    "event {} is for table {}.{}, which no Watched type in this program describes",
                    event.id, event.schema, event.table
                ),
            });
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
    let claim = event.by_ref.then(|| Claim {
        route: event.route.take(),
    });
    Ok((claim, calls))
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

//! Handling one received message: check it, decode it for every handler,
//! call them all, and delete it only when every one succeeded.

use std::any::Any;
use std::sync::Arc;

use tracing::Instrument;

use super::{Listener, Outcome};
use crate::handler::Handler;
use crate::queue::{OutgoingMessage, ReceivedMessage};
use crate::wire;
use crate::wire::{Envelope, WireEvent};

/// Why a message cannot be handled now.
enum NotReady {
    /// Never: dead-letter it.
    Invalid(String),
    /// Not now (the database is down): let it come back.
    Retry(String),
}

use NotReady::{Invalid, Retry};

/// Calls, for each event of the message, every handler of its table and action.
pub(super) async fn handle(listener: Arc<Listener>, message: ReceivedMessage) -> Outcome {
    let span = tracing::info_span!(
        "message",
        id = %message.message_id,
        receives = message.receive_count
    );
    async move {
        let calls = match prepare(&listener, &message).await {
            Ok(calls) => calls,
            Err(Retry(reason)) => {
                tracing::warn!(%reason, "cannot handle the message now; it will be retried");
                let delay = listener.settings.retry_delay(message.receive_count);
                let _ = listener.queue.change_visibility(&message.receipt, delay).await;
                return Outcome::Failed;
            }
            Err(Invalid(reason)) => {
                tracing::error!(%reason, "dead-lettering a message that cannot be handled");
                return match listener.queue.dead_letter(&message, &reason).await {
                    Ok(()) => Outcome::DeadLettered,
                    Err(error) => {
                        tracing::warn!(%error, "could not dead-letter the message; it will be received again");
                        Outcome::Failed
                    }
                };
            }
        };
        let mut failed = 0;
        let mut done = Vec::new(); // events whose handlers all succeeded
        let mut failed_events = Vec::new();
        for call in calls {
            let mut ok = true;
            for (handler, arg) in call.handlers {
                // A task of its own: a panic fails this handler only.
                let result = tokio::spawn((handler.call)(arg)).await;
                let error = match result {
                    Ok(Ok(())) => continue,
                    Ok(Err(error)) => error.to_string(),
                    Err(join) if join.is_panic() => format!("panicked: {}", panic_message(join.into_panic())),
                    Err(join) => format!("was cancelled: {join}"),
                };
                failed += 1;
                ok = false;
                tracing::warn!(handler = handler.name, event = call.event_id, %error, "handler failed; the event will be retried");
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
            if split(&listener, &message, &failed_events).await {
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
        if let Err(error) = listener.queue.delete(std::slice::from_ref(&message.receipt)).await {
            tracing::warn!(%error, "handled, but the delete failed: the message will be handled again");
            return Outcome::Failed;
        }
        forget(&listener, &done).await;
        Outcome::Handled
    }
    .instrument(span)
    .await
}

/// Re-sends `failed` events one per message, then deletes the original.
/// Says whether it did; if not, the whole message is retried instead.
async fn split(listener: &Listener, message: &ReceivedMessage, failed: &[String]) -> bool {
    let messages: Vec<OutgoingMessage> = failed
        .iter()
        .map(|raw| OutgoingMessage {
            body: wire::envelope([raw.as_str()]),
            group_id: None,
            dedup_id: None,
        })
        .collect();
    match listener.queue.send(&messages).await {
        Ok(outcome) if outcome.failed.is_empty() => {}
        _ => return false,
    }
    match listener
        .queue
        .delete(std::slice::from_ref(&message.receipt))
        .await
    {
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
            tracing::warn!(%error, "could not remove handled payloads; they expire later");
        }
    }
}

fn panic_message(panic: Box<dyn Any + Send>) -> String {
    match panic.downcast::<String>() {
        Ok(s) => *s,
        Err(panic) => panic
            .downcast_ref::<&str>()
            .map_or_else(|| "(no message)".to_owned(), |s| (*s).to_owned()),
    }
}

struct Call {
    event_id: i64,
    by_ref: bool,
    /// The event's JSON as received.
    raw: String,
    handlers: Vec<(&'static Handler, Box<dyn Any + Send>)>,
}

/// Parses the message and decodes every event for every handler before any
/// handler runs: a message that cannot be handled calls none.
async fn prepare(listener: &Listener, message: &ReceivedMessage) -> Result<Vec<Call>, NotReady> {
    let envelope = Envelope::parse(&message.body).map_err(|e| Invalid(e.to_string()))?;
    let mut calls = Vec::with_capacity(envelope.events.len());
    for (mut event, raw) in envelope.events.into_iter().zip(envelope.raw) {
        if !listener.registry.knows(&event.schema, &event.table) {
            return Err(Invalid(format!(
                "event {} is for table {}.{}, which no Watched type in this program describes",
                event.id, event.schema, event.table
            )));
        }
        if event.by_ref {
            fetch_payload(listener, &mut event).await?;
        }
        let mut handlers = Vec::new();
        for handler in listener
            .registry
            .handlers_of(&event.schema, &event.table, event.action)
        {
            let arg = (handler.decode)(&event)
                .map_err(|e| Invalid(format!("event {}: {e}", event.id)))?;
            handlers.push((handler, arg));
        }
        calls.push(Call {
            event_id: event.id,
            by_ref: event.by_ref,
            raw: raw.get().to_owned(),
            handlers,
        });
    }
    Ok(calls)
}

async fn fetch_payload(listener: &Listener, event: &mut WireEvent) -> Result<(), NotReady> {
    match listener.fetch_payload(event.id).await {
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

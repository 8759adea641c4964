//! Signals sent without a database, by [`RuntimeHandle::signal`]: straight
//! to the queue, or in direct mode to this process's handlers.
//!
//! [`RuntimeHandle::signal`]: crate::RuntimeHandle::signal

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use super::{Signal, SignalError};
use crate::handler::{HandlerError, Registry};
use crate::queue::{OutgoingMessage, Queue};
use crate::sync::AbortOnDrop;
use crate::wire::{self, WireEvent};

/// Where [`RuntimeHandle::signal`](crate::RuntimeHandle::signal) sends.
#[derive(Debug)]
pub(crate) struct Sender {
    queue: Arc<dyn Queue>,
    registry: Arc<Registry>,
    direct: bool,
    /// This sender's own random id, in `source`: with the counter, a
    /// signal's idempotency key, apart from every database's events.
    source: String,
    next_id: AtomicI64,
}

impl Sender {
    pub(crate) fn new(queue: Arc<dyn Queue>, registry: Arc<Registry>, direct: bool) -> Sender {
        Sender {
            queue,
            registry,
            direct,
            source: uuid::Uuid::new_v4().to_string(),
            next_id: AtomicI64::new(1),
        }
    }

    pub(crate) async fn send<T: Signal>(&self, value: &T) -> Result<i64, SignalError> {
        let payload = serde_json::to_value(value).map_err(|source| SignalError::Serialize {
            name: T::NAME,
            source,
        })?;
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let now = chrono::Utc::now().fixed_offset();
        let event = serde_json::json!({
            "id": id,
            "source": self.source,
            "schema": crate::sql::catalog::SCHEMA,
            "table": "signals",
            "action": "signal",
            "key": [id],
            "captured_at": now,
            "txid": "0",
            "signal": T::NAME,
            "deliver_at": now,
            "payload": payload,
        });
        if self.direct {
            let event: WireEvent =
                serde_json::from_value(event).map_err(|source| SignalError::Serialize {
                    name: T::NAME,
                    source,
                })?;
            self.call_here(&event).await?;
            return Ok(id);
        }
        let fifo = self.queue.is_fifo();
        let message = OutgoingMessage {
            body: wire::envelope([event.to_string().as_str()]),
            group_id: fifo.then(|| {
                crate::watcher::pack::group_id(&format!("dawdle.signals:{}:{id}", self.source))
            }),
            dedup_id: fifo.then(|| format!("{}-{id}", self.source)),
            failure: None,
            delay: std::time::Duration::ZERO,
        };
        let outcome = self.queue.send(std::slice::from_ref(&message)).await?;
        match outcome.failed.into_iter().next() {
            Some((_, error)) => Err(SignalError::Queue(error)),
            None => Ok(id),
        }
    }

    /// Calls every handler of the signal in this process, each in a task
    /// of its own (a panic fails that handler only), one after another.
    async fn call_here(&self, event: &WireEvent) -> Result<(), SignalError> {
        let name = event.signal.as_deref().unwrap_or_default();
        let handlers = self.registry.handlers_of_signal(name);
        if handlers.is_empty() {
            return Err(SignalError::NoHandler(name.to_owned()));
        }
        for handler in handlers {
            let failed = |error| SignalError::Handler {
                handler: handler.name,
                error,
            };
            let arg =
                (handler.decode)(event).map_err(|e| failed(HandlerError::other(e.to_string())))?;
            let mut task = AbortOnDrop(tokio::spawn((handler.call)(arg)));
            (&mut task.0)
                .await
                .unwrap_or_else(|join| Err(HandlerError::from_join(join)))
                .map_err(failed)?;
        }
        Ok(())
    }
}

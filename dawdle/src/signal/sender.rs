//! Signals sent without a database, by [`RuntimeHandle::signal`]: straight
//! to the queue, or in direct mode to this process's handlers.
//!
//! [`RuntimeHandle::signal`]: crate::RuntimeHandle::signal

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::{Signal, SignalError};
use crate::handler::{Handler, HandlerError, Registry};
use crate::queue::{OutgoingMessage, Queue};
use crate::watcher::Route;
use crate::wire::{self, WireEvent};

/// Where [`RuntimeHandle::signal`](crate::RuntimeHandle::signal) sends.
#[derive(Debug)]
pub(crate) struct Sender {
    queue: Arc<dyn Queue>,
    /// The runtime's routes: when there are some, a signal goes to those
    /// that take it rather than to `queue`.
    routes: Vec<Route>,
    registry: Arc<Registry>,
    direct: bool,
    /// The runtime's handler timeout, for the calls of direct mode.
    handler_timeout: Option<Duration>,
    /// This sender's own random id, in `source`: with the counter, a
    /// signal's idempotency key, apart from every database's events.
    source: String,
    next_id: AtomicI64,
}

impl Sender {
    pub(crate) fn new(
        queue: Arc<dyn Queue>,
        routes: Vec<Route>,
        registry: Arc<Registry>,
        direct: bool,
        handler_timeout: Option<Duration>,
    ) -> Sender {
        Sender {
            queue,
            routes,
            registry,
            direct,
            handler_timeout,
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
        let queues: Vec<&Arc<dyn Queue>> = if self.routes.is_empty() {
            vec![&self.queue]
        } else {
            let taking = self.routes.iter().filter(|r| r.takes_signal(T::NAME));
            taking.map(Route::queue).collect()
        };
        if queues.is_empty() {
            return Err(SignalError::NoRoute(T::NAME.to_owned()));
        }
        let body = wire::envelope([event.to_string().as_str()]);
        for queue in queues {
            let fifo = queue.is_fifo();
            let message = OutgoingMessage {
                body: body.clone(),
                group_id: fifo.then(|| {
                    let group = format!("dawdle.signals:{}:{id}", self.source);
                    crate::watcher::pack::group_id(&group)
                }),
                dedup_id: fifo.then(|| format!("{}-{id}", self.source)),
                failure: None,
                delay: std::time::Duration::ZERO,
            };
            let outcome = queue.send(std::slice::from_ref(&message)).await?;
            if let Some((_, error)) = outcome.failed.into_iter().next() {
                return Err(SignalError::Queue(error));
            }
        }
        Ok(id)
    }

    /// Calls every handler of the signal in this process, one after
    /// another, as the listener calls them ([`crate::handler::call`]: a
    /// task, span, timeout and metrics of its own each); returns the first
    /// failure. Like the listener, it decodes the event for every handler
    /// before it calls any, and a failed handler does not keep the others
    /// from running.
    async fn call_here(&self, event: &WireEvent) -> Result<(), SignalError> {
        let name = event.signal.as_deref().unwrap_or_default();
        let handlers = self.registry.handlers_of_signal(name);
        if handlers.is_empty() {
            return Err(SignalError::NoHandler(name.to_owned()));
        }
        let failed = |handler: &Handler, error| SignalError::Handler {
            handler: handler.name,
            error,
        };
        let mut calls = Vec::with_capacity(handlers.len());
        for &handler in handlers {
            let arg = (handler.decode)(event)
                .map_err(|e| failed(handler, HandlerError::other(e.to_string())))?;
            calls.push((handler, arg));
        }
        let table = format!("{}.{}", event.schema, event.table);
        let timeout = self.handler_timeout;
        let mut first = None;
        for (handler, arg) in calls {
            if let Err(error) =
                crate::handler::call(handler, arg, event.id, &table, event.action, timeout).await
            {
                first.get_or_insert(failed(handler, error));
            }
        }
        first.map_or(Ok(()), Err)
    }
}

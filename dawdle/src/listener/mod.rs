//! The listener: receives messages, decodes their events into the handlers'
//! types, calls every handler, and deletes a message only when all of its
//! handlers succeeded.
//!
//! - **Bounded concurrency.** At most [`concurrency`](crate::RuntimeBuilder::concurrency)
//!   messages are handled at once; the listener receives only when a slot is
//!   free, so a slow handler slows receiving rather than piling up messages.
//! - **Failures.** A handler that returns an error or panics does not stop
//!   the other handlers of the event; the message stays on the queue and
//!   returns after a backoff that grows with its receive count. After the
//!   queue's maximum receive count, the queue dead-letters it (SQS redrive
//!   policy; [`MemoryQueue`](crate::MemoryQueue)'s `max_receives`). Handlers
//!   therefore run at least once per event: use the event id to make them
//!   idempotent.
//! - **Invalid messages** (not JSON, an unknown version, a table no `Watched`
//!   type describes, a row that does not decode, an expired by-reference
//!   payload) are logged with the reason and dead-lettered at once, without
//!   calling any handler.
//! - **Slow handlers** get their message's visibility extended while they run.
//! - **Batched deletes.** Handled messages are deleted up to ten per call
//!   (SQS's DeleteMessageBatch limit) by a `Deleter` the listener owns:
//!   one request per ten messages rather than one per message, for at most
//!   a couple of milliseconds of delay, and none when no other message is
//!   being handled.

mod deleter;
mod message;
mod payloads;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::backoff::Backoff;
use crate::handler::Registry;
use crate::queue::{Queue, QueueError, Receipt, ReceivedMessage};
use deleter::Deleter;

/// How handling a message ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    Handled,
    Failed,
    DeadLettered,
}

/// Tuning of the listener.
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    pub concurrency: usize,
    pub wait: Duration,
    pub visibility: Duration,
    pub retry_base: Duration,
    pub retry_max: Duration,
    pub shutdown_timeout: Duration,
}

impl Settings {
    /// The delay before a failed message returns: doubling per receive.
    pub(crate) fn retry_delay(&self, receive_count: u32) -> Duration {
        self.retry_base
            .saturating_mul(1 << receive_count.saturating_sub(1).min(16))
            .min(self.retry_max)
    }
}

#[derive(Debug)]
pub(crate) struct Listener {
    pub queue: Arc<dyn Queue>,
    pub registry: Registry,
    pub pool: Option<deadpool_postgres::Pool>,
    pub settings: Settings,
}

impl Listener {
    /// Receives and handles until `stop`, then lets in-flight messages finish
    /// within the shutdown timeout; those still running are abandoned to
    /// the queue, which redelivers them.
    pub(crate) async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let slots = Arc::new(Semaphore::new(self.settings.concurrency));
        // Receipts of messages being handled, to hand back on a hurried shutdown.
        let in_flight: Arc<std::sync::Mutex<HashSet<Receipt>>> = Arc::default();
        let (deleter, deleting) = Deleter::start(self.queue.clone(), in_flight.clone());
        let mut tasks: JoinSet<()> = JoinSet::new();
        let mut backoff = Backoff::new();
        loop {
            // Reap finished tasks so the set does not grow.
            while tasks.try_join_next().is_some() {}
            let free = tokio::select! {
                permit = slots.clone().acquire_many_owned(1) => permit,
                _ = stop.changed() => break,
            };
            let Ok(first) = free else { break };
            let available = 1 + slots.available_permits().min(9);
            let received = tokio::select! {
                received = self.queue.receive(available, self.settings.wait, self.settings.visibility) => received,
                _ = stop.changed() => break,
            };
            let messages = match received {
                Ok(messages) => {
                    backoff.reset();
                    messages
                }
                Err(error) => {
                    let delay = backoff.next();
                    tracing::warn!(%error, retry_in_ms = delay.as_millis() as u64, "receive failed");
                    drop(first);
                    tokio::select! {
                        _ = tokio::time::sleep(delay) => continue,
                        _ = stop.changed() => break,
                    }
                }
            };
            let mut first = Some(first);
            for message in messages {
                let permit = match first.take() {
                    Some(permit) => permit,
                    None => match slots.clone().try_acquire_owned() {
                        Ok(permit) => permit,
                        // More than asked for: hand it back at once.
                        Err(_) => {
                            let _ = self
                                .queue
                                .change_visibility(&message.receipt, Duration::ZERO)
                                .await;
                            continue;
                        }
                    },
                };
                let listener = self.clone();
                let in_flight = in_flight.clone();
                let deleter = deleter.clone();
                lock(&in_flight).insert(message.receipt.clone());
                tasks.spawn(async move {
                    let receipt = message.receipt.clone();
                    listener.handle_with_extension(message, &deleter).await;
                    lock(&in_flight).remove(&receipt);
                    drop(permit);
                });
            }
        }
        let deadline = Instant::now() + self.settings.shutdown_timeout;
        while !tasks.is_empty() {
            match tokio::time::timeout_at(deadline, tasks.join_next()).await {
                Ok(_) => {}
                Err(_) => {
                    tracing::warn!(
                        unfinished = tasks.len(),
                        "shutdown timeout: abandoning unfinished messages to the queue"
                    );
                    tasks.abort_all();
                    // Visible again at once rather than after the timeout.
                    // Those whose handlers all finished were handed to the
                    // deleter and are no longer in the set: they are deleted
                    // below rather than redelivered.
                    let abandoned: Vec<Receipt> = lock(&in_flight).drain().collect();
                    for receipt in abandoned {
                        let _ = self.queue.change_visibility(&receipt, Duration::ZERO).await;
                    }
                    break;
                }
            }
        }
        // Every handled message was handed over by now (the set is drained or
        // every task is done): the deletes still waiting go out before the
        // listener reports it is done.
        deleting.finish().await;
    }

    /// Handles one message, extending its visibility while handlers run.
    async fn handle_with_extension(self: Arc<Self>, message: ReceivedMessage, deleter: &Deleter) {
        let visibility = self.settings.visibility;
        let queue = self.queue.clone();
        let receipt = message.receipt.clone();
        let extender = tokio::spawn(async move {
            loop {
                tokio::time::sleep(visibility / 2).await;
                match queue.change_visibility(&receipt, visibility).await {
                    Ok(()) => tracing::debug!("extended the visibility of a slow message"),
                    Err(QueueError::StaleReceipt(_)) => break,
                    Err(error) => tracing::warn!(%error, "could not extend visibility"),
                }
            }
        });
        // Aborted with this task too, should the shutdown abandon it.
        let _extender = AbortOnDrop(extender);
        let outcome = message::handle(self, message, deleter).await;
        tracing::debug!(?outcome, "message done");
    }
}

fn lock<T>(mutex: &std::sync::Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// Aborts a task when dropped.
pub(crate) struct AbortOnDrop<T>(pub(crate) tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

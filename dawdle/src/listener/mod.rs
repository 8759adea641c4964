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
//!   (SQS's DeleteMessageBatch limit) by a [`Deleter`] the listener owns:
//!   one request per ten messages rather than one per message, for at most
//!   a couple of milliseconds of delay, and none when no other message is
//!   being handled.

mod message;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot, watch, Semaphore};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

use crate::handler::Registry;
use crate::queue::{Queue, QueueError, Receipt, ReceivedMessage, MAX_BATCH_MESSAGES};

/// How long the deleter waits for more receipts to fill a batch while other
/// messages are still being handled. Short: a delete that waits holds its
/// message's concurrency slot, and a FIFO group stays blocked until it.
const DELETE_LINGER: Duration = Duration::from_millis(2);

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
    async fn fetch_payload(
        &self,
        id: i64,
    ) -> Result<Option<(Option<serde_json::Value>, Option<serde_json::Value>)>, String> {
        let pool = self.pool.as_ref().ok_or("no database pool configured")?;
        let client = pool.get().await.map_err(|e| e.to_string())?;
        let row = client
            .query_opt(
                r#"SELECT "old"::text, "new"::text FROM "dawdle"."payloads" WHERE "id" = $1"#,
                &[&id],
            )
            .await
            .map_err(|e| e.to_string())?;
        let parse = |text: Option<String>| -> Result<Option<serde_json::Value>, String> {
            text.map(|t| serde_json::from_str(&t).map_err(|e| e.to_string()))
                .transpose()
        };
        match row {
            Some(row) => Ok(Some((parse(row.get(0))?, parse(row.get(1))?))),
            None => Ok(None),
        }
    }

    async fn forget_payloads(&self, ids: &[i64]) -> Result<(), String> {
        let pool = self.pool.as_ref().ok_or("no database pool configured")?;
        let client = pool.get().await.map_err(|e| e.to_string())?;
        client
            .execute(
                r#"DELETE FROM "dawdle"."payloads" WHERE "id" = ANY($1)"#,
                &[&ids],
            )
            .await
            .map_err(|e| e.to_string())?;
        Ok(())
    }

    /// Receives and handles until `stop`, then lets in-flight messages finish
    /// within the shutdown timeout; those still running are abandoned to
    /// the queue, which redelivers them.
    pub(crate) async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let slots = Arc::new(Semaphore::new(self.settings.concurrency));
        // Receipts of messages being handled, to hand back on a hurried shutdown.
        let in_flight: Arc<std::sync::Mutex<HashSet<Receipt>>> = Arc::default();
        let (deleter, deleting) = Deleter::start(self.queue.clone(), in_flight.clone());
        let mut tasks: JoinSet<()> = JoinSet::new();
        let mut backoff = crate::watcher::Backoff::new();
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

/// Deletes handled messages in batches of up to ten receipts, the most one
/// SQS DeleteMessageBatch request takes.
///
/// A message's task hands its receipt over and waits for the outcome of the
/// call that carried it, so that a failed delete is logged and leaves the
/// message's by-reference payloads in place, as a delete of its own would.
/// A batch is sent when ten receipts are waiting, when no other message is
/// being handled (nothing else could join it: a lone message is deleted at
/// once), or [`DELETE_LINGER`] after its first receipt. Batches are sent
/// concurrently: one slow request does not hold up the deletes behind it.
#[derive(Debug, Clone)]
pub(crate) struct Deleter {
    /// The receive loop's set of messages being handled.
    in_flight: Arc<std::sync::Mutex<HashSet<Receipt>>>,
    /// Unbounded, but never longer than the concurrency: each receipt holds
    /// its message's slot until its delete is done. Unbounded also means
    /// sending does not wait, so it happens under the `in_flight` lock.
    pending: mpsc::UnboundedSender<PendingDelete>,
}

/// A receipt waiting for the deleter, and where to tell how its delete went.
#[derive(Debug)]
struct PendingDelete {
    receipt: Receipt,
    done: oneshot::Sender<Result<(), QueueError>>,
}

/// The deleter's task, for the listener to stop.
#[derive(Debug)]
struct Deleting {
    close: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl Deleter {
    fn start(
        queue: Arc<dyn Queue>,
        in_flight: Arc<std::sync::Mutex<HashSet<Receipt>>>,
    ) -> (Deleter, Deleting) {
        let (pending, receiver) = mpsc::unbounded_channel();
        let (close, closed) = oneshot::channel();
        let task = tokio::spawn(delete_batches(queue, in_flight.clone(), receiver, closed));
        (Deleter { in_flight, pending }, Deleting { close, task })
    }

    /// Deletes a handled message, in a batch with others, and says how the
    /// call that carried it went. On a partial failure the queue reports
    /// one error for the batch: every message of it takes that error, and
    /// those that were deleted nonetheless just keep their by-reference
    /// payloads until these expire.
    pub(crate) async fn delete(&self, receipt: &Receipt) -> Result<(), QueueError> {
        let (done, outcome) = oneshot::channel();
        {
            // Handed over and out of the set at once, under the lock a hurried
            // shutdown drains the set with: the message is either deleted or
            // made visible again, never both.
            let mut in_flight = lock(&self.in_flight);
            if !in_flight.contains(receipt) {
                return Err(QueueError::Unavailable(
                    "the shutdown timeout passed: the message was handed back to the queue"
                        .to_owned(),
                ));
            }
            self.pending
                .send(PendingDelete {
                    receipt: receipt.clone(),
                    done,
                })
                .map_err(|_| QueueError::Unavailable("the deleter has stopped".to_owned()))?;
            in_flight.remove(receipt);
        }
        outcome.await.unwrap_or_else(|_| {
            Err(QueueError::Unavailable(
                "the deleter stopped before deleting the message".to_owned(),
            ))
        })
    }
}

impl Deleting {
    /// Sends the deletes still waiting, waits for those under way, and stops.
    /// Call it once no task can hand a receipt over any more.
    async fn finish(self) {
        let _ = self.close.send(());
        if let Err(error) = self.task.await {
            tracing::warn!(%error, "the deleter failed: some handled messages will be handled again");
        }
    }
}

/// The deleter's task: gathers receipts into batches and sends each in a
/// task of its own, until closed (or the listener is dropped); then sends
/// what is left and waits for every batch.
async fn delete_batches(
    queue: Arc<dyn Queue>,
    in_flight: Arc<std::sync::Mutex<HashSet<Receipt>>>,
    mut pending: mpsc::UnboundedReceiver<PendingDelete>,
    mut closed: oneshot::Receiver<()>,
) {
    let mut calls: JoinSet<()> = JoinSet::new();
    loop {
        // Reap finished calls so the set does not grow.
        while calls.try_join_next().is_some() {}
        let first = tokio::select! {
            biased;
            next = pending.recv() => match next {
                Some(first) => first,
                None => break,
            },
            _ = &mut closed => break,
        };
        let mut batch = vec![first];
        let linger = tokio::time::sleep(DELETE_LINGER);
        tokio::pin!(linger);
        loop {
            while batch.len() < MAX_BATCH_MESSAGES {
                match pending.try_recv() {
                    Ok(next) => batch.push(next),
                    Err(_) => break,
                }
            }
            if batch.len() >= MAX_BATCH_MESSAGES || lock(&in_flight).is_empty() {
                break;
            }
            tokio::select! {
                next = pending.recv() => match next {
                    Some(next) => batch.push(next),
                    None => break,
                },
                _ = &mut linger => break,
            }
        }
        calls.spawn(delete_batch(queue.clone(), batch));
    }
    // Closed: the receipts handed over before are deleted all the same.
    pending.close();
    let mut rest = Vec::new();
    while let Ok(next) = pending.try_recv() {
        rest.push(next);
        if rest.len() == MAX_BATCH_MESSAGES {
            calls.spawn(delete_batch(queue.clone(), std::mem::take(&mut rest)));
        }
    }
    if !rest.is_empty() {
        calls.spawn(delete_batch(queue.clone(), rest));
    }
    while calls.join_next().await.is_some() {}
}

/// One delete call for a batch; every message of it learns the outcome.
async fn delete_batch(queue: Arc<dyn Queue>, batch: Vec<PendingDelete>) {
    let receipts: Vec<Receipt> = batch.iter().map(|p| p.receipt.clone()).collect();
    let result = queue.delete(&receipts).await;
    if let Err(error) = &result {
        tracing::debug!(%error, receipts = receipts.len(), "a batched delete failed");
    }
    for pending in batch {
        // Its task may be gone (aborted by a hurried shutdown): nobody to tell.
        let _ = pending.done.send(result.clone());
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

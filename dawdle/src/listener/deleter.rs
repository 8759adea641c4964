//! Deleting handled messages in batches.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio::task::{JoinHandle, JoinSet};

use crate::queue::{Queue, QueueError, Receipt, MAX_BATCH_MESSAGES};
use crate::sync::lock;

/// How long the deleter waits for more receipts to fill a batch while other
/// messages are still being handled. Short: a delete that waits holds its
/// message's concurrency slot, and a FIFO group stays blocked until it.
const DELETE_LINGER: Duration = Duration::from_millis(2);

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
pub(super) struct Deleting {
    close: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl Deleter {
    pub(super) fn start(
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
    pub(super) async fn finish(self) {
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

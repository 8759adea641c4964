//! The listener: receives messages, decodes their events into the handlers'
//! types, calls every handler, and deletes a message only when all of its
//! handlers succeeded.
//!
//! - **Bounded concurrency.** At most [`concurrency`](crate::RuntimeBuilder::concurrency)
//!   messages are handled at once; the listener receives only when a slot is
//!   free, so a slow handler slows receiving rather than piling up messages.
//! - **Failures.** A handler that returns an error or panics does not stop
//!   the other handlers of the event; the message goes back to the queue
//!   with its [`Failure`](crate::queue::Failure) ([`Queue::retry`](crate::Queue::retry)) and
//!   returns after a backoff that grows with its attempts. On its last
//!   receive ([`Queue::max_receives`](crate::Queue::max_receives)) the listener dead-letters it itself,
//!   with the failure, so that the dead letter says why. Handlers
//!   therefore run at least once per event: use the event id to make them
//!   idempotent. On standard queues, the events of a message that failed
//!   are re-sent together, packed, with their failure and the backoff,
//!   and the others count as handled.
//! - **Unknown events** (a table or signal this program has no type or
//!   handler for, as during a rolling deploy) go back with the backoff for
//!   a listener that knows them, logged once per table or signal, until
//!   the maximum receive count dead-letters them.
//! - **Invalid messages** (not JSON, an unknown version, a row that does
//!   not decode, an expired by-reference payload) are logged with the
//!   reason and dead-lettered at once, without calling any handler.
//! - **Slow handlers** get their message's visibility extended while they run.
//! - **Batched deletes.** Handled messages are deleted up to ten per call
//!   (SQS's DeleteMessageBatch limit) by a `Deleter` the listener owns:
//!   one request per ten messages rather than one per message, for at most
//!   a couple of milliseconds of delay, and none when no other message is
//!   being handled.

mod deleter;
mod message;
pub(crate) mod payloads;
mod shared;

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::backoff::Backoff;
use crate::queue::{QueueError, Receipt, ReceivedMessage};
use crate::sync::{lock, AbortOnDrop};
use deleter::Deleter;
use message::Outcome;
pub(crate) use shared::{Listener, Settings};

impl Listener {
    /// Receives and handles until `stop`. Then, if the queue does not
    /// outlive the process, empties it (the watcher has stopped filling it
    /// by then); and lets in-flight messages finish. Both within the
    /// shutdown timeout: messages still running after it are abandoned to
    /// the queue, which redelivers them.
    pub(crate) async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        crate::observability::describe();
        let in_flight: Arc<std::sync::Mutex<HashSet<Receipt>>> = Arc::default();
        let (deleter, deleting) = Deleter::start(self.queue.clone(), in_flight.clone());
        let mut run = Run {
            slots: Arc::new(Semaphore::new(self.settings.concurrency)),
            listener: self.clone(),
            in_flight,
            deleter,
            tasks: JoinSet::new(),
            backoff: Backoff::new(),
        };
        run.receive(&mut stop).await;
        let deadline = Instant::now() + self.settings.shutdown_timeout;
        if !self.queue.is_durable() {
            run.empty(deadline).await;
        }
        run.finish(deadline).await;
        // Every handled message was handed over by now (the set is drained or
        // every task is done): the deletes still waiting go out before the
        // listener reports it is done.
        deleting.finish().await;
    }

    /// Handles one message, extending its visibility while handlers run.
    async fn handle_with_extension(
        self: Arc<Self>,
        message: ReceivedMessage,
        deleter: &Deleter,
    ) -> Outcome {
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
        outcome
    }

    /// Makes received messages that will not be handled now visible again
    /// at once, unless a hurried shutdown handed them back already.
    async fn hand_back(
        &self,
        messages: impl IntoIterator<Item = ReceivedMessage>,
        in_flight: &std::sync::Mutex<HashSet<Receipt>>,
    ) {
        for message in messages {
            if lock(in_flight).remove(&message.receipt) {
                let _ = self
                    .queue
                    .change_visibility(&message.receipt, Duration::ZERO)
                    .await;
            }
        }
    }
}

/// The listener's receive loop and what it shares with its tasks.
struct Run {
    listener: Arc<Listener>,
    /// One permit per message being handled (per group on FIFO queues).
    slots: Arc<Semaphore>,
    /// Receipts of messages received and not yet handed to the deleter, to
    /// hand back on a hurried shutdown.
    in_flight: Arc<std::sync::Mutex<HashSet<Receipt>>>,
    deleter: Deleter,
    tasks: JoinSet<()>,
    backoff: Backoff,
}

impl Run {
    /// Receives and handles until `stop`.
    async fn receive(&mut self, stop: &mut watch::Receiver<bool>) {
        let wait = self.listener.settings.wait;
        loop {
            let next = tokio::select! {
                next = self.receive_once(wait) => next,
                _ = stop.changed() => return,
            };
            if let Err(delay) = next {
                tokio::select! {
                    _ = tokio::time::sleep(delay) => {}
                    _ = stop.changed() => return,
                }
            }
        }
    }

    /// After `stop`, with an in-process queue: handles what it still holds,
    /// until a receive finds it empty with nothing left running, or the
    /// deadline. Messages waiting for a retry are not visible and stay.
    async fn empty(&mut self, deadline: Instant) {
        loop {
            let now = Instant::now();
            if now >= deadline {
                return;
            }
            let wait = (deadline - now).min(Duration::from_millis(100));
            match tokio::time::timeout_at(deadline, self.receive_once(wait)).await {
                Ok(Ok(0)) if self.tasks.is_empty() => return,
                Ok(Ok(0)) => {
                    let _ = tokio::time::timeout_at(deadline, self.tasks.join_next()).await;
                }
                Ok(Ok(_)) => {}
                Ok(Err(delay)) => tokio::time::sleep_until((now + delay).min(deadline)).await,
                Err(_) => return,
            }
        }
    }

    /// Lets running messages finish until `deadline`, then abandons the rest.
    async fn finish(&mut self, deadline: Instant) {
        while !self.tasks.is_empty() {
            if tokio::time::timeout_at(deadline, self.tasks.join_next())
                .await
                .is_err()
            {
                tracing::warn!(
                    unfinished = self.tasks.len(),
                    "shutdown timeout: abandoning unfinished messages to the queue"
                );
                self.tasks.abort_all();
                // Visible again at once rather than after the timeout.
                // Those whose handlers all finished were handed to the
                // deleter and are no longer in the set: they are deleted
                // rather than redelivered.
                let abandoned: Vec<Receipt> = lock(&self.in_flight).drain().collect();
                for receipt in abandoned {
                    let _ = self
                        .listener
                        .queue
                        .change_visibility(&receipt, Duration::ZERO)
                        .await;
                }
                return;
            }
        }
    }

    /// Waits for a free slot, receives once and starts handling what came:
    /// how many messages, or after a failed receive, how long to back off.
    async fn receive_once(&mut self, wait: Duration) -> Result<usize, Duration> {
        // Reap finished tasks so the set does not grow.
        while self.tasks.try_join_next().is_some() {}
        let Ok(first) = self.slots.clone().acquire_owned().await else {
            return Ok(0); // never closed
        };
        let available = 1 + self.slots.available_permits().min(9);
        let settings = &self.listener.settings;
        match self
            .listener
            .queue
            .receive(available, wait, settings.visibility)
            .await
        {
            Ok(messages) => {
                self.backoff.reset();
                let count = messages.len();
                if self.listener.queue.is_fifo() {
                    self.start_groups(first, messages).await;
                } else {
                    self.start_each(first, messages).await;
                }
                Ok(count)
            }
            Err(error) => {
                let delay = self.backoff.next();
                tracing::warn!(%error, retry_in_ms = delay.as_millis() as u64, "receive failed");
                Err(delay)
            }
        }
    }

    /// Standard queues: each message in a task of its own.
    async fn start_each(&mut self, first: OwnedSemaphorePermit, messages: Vec<ReceivedMessage>) {
        let mut first = Some(first);
        for message in messages {
            let Some(permit) = first
                .take()
                .or_else(|| self.slots.clone().try_acquire_owned().ok())
            else {
                // More than asked for: hand it back at once.
                lock(&self.in_flight).insert(message.receipt.clone());
                self.listener.hand_back([message], &self.in_flight).await;
                continue;
            };
            self.spawn(permit, vec![message]);
        }
    }

    /// FIFO queues: a receive may hold several messages of one group, in
    /// order. Each group's messages run one after the other in one task, so
    /// that change k+1 is first handled only after change k succeeded;
    /// groups run concurrently.
    async fn start_groups(&mut self, first: OwnedSemaphorePermit, messages: Vec<ReceivedMessage>) {
        // A message without a group id (a queue that does not say) joins
        // the others without one: one after the other, which is always safe.
        let mut groups: Vec<(Option<String>, Vec<ReceivedMessage>)> = Vec::new();
        for message in messages {
            match groups.iter_mut().find(|(id, _)| *id == message.group_id) {
                Some((_, group)) => group.push(message),
                None => groups.push((message.group_id.clone(), vec![message])),
            }
        }
        let mut first = Some(first);
        for (_, group) in groups {
            let Some(permit) = first
                .take()
                .or_else(|| self.slots.clone().try_acquire_owned().ok())
            else {
                // No slot: the whole group goes back, its order intact.
                lock(&self.in_flight).extend(group.iter().map(|m| m.receipt.clone()));
                self.listener.hand_back(group, &self.in_flight).await;
                continue;
            };
            self.spawn(permit, group);
        }
    }

    /// Handles `messages` one after the other in a task holding `permit`;
    /// the first that fails hands the rest back.
    fn spawn(&mut self, permit: OwnedSemaphorePermit, messages: Vec<ReceivedMessage>) {
        lock(&self.in_flight).extend(messages.iter().map(|m| m.receipt.clone()));
        let listener = self.listener.clone();
        let in_flight = self.in_flight.clone();
        let deleter = self.deleter.clone();
        self.tasks.spawn(async move {
            let mut messages = messages.into_iter();
            while let Some(message) = messages.next() {
                let receipt = message.receipt.clone();
                let outcome = listener
                    .clone()
                    .handle_with_extension(message, &deleter)
                    .await;
                lock(&in_flight).remove(&receipt);
                if outcome == Outcome::Failed {
                    // Later changes of the group wait until this one succeeds.
                    listener.hand_back(messages, &in_flight).await;
                    break;
                }
            }
            drop(permit);
        });
    }
}

//! An in-process queue that behaves like SQS where handlers can notice:
//! visibility timeouts, receive counts, a dead-letter queue, FIFO groups.

mod admin;

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use chrono::{SubsecRound, Utc};
use tokio::sync::Notify;
use tokio::time::Instant;

use super::{
    BoxFuture, DeadLetter, Failure, OutgoingMessage, Queue, QueueAdmin, QueueError, Receipt,
    ReceivedMessage, Retention, SendOutcome, SQS_MAX_MESSAGE_BYTES,
};

const DEDUP_WINDOW: Duration = Duration::from_secs(300);

/// An in-process [`Queue`], for tests and for users who accept losing
/// events on a crash.
///
/// **What a crash costs:** the watcher counts events as sent once this
/// queue holds them, and the queue lives in the process's memory.
/// A crash (a panic that aborts, `kill -9`, an out-of-memory kill, a power
/// loss) loses every event it held and not yet handled, and its dead
/// letters. A graceful [`shutdown`](crate::RuntimeHandle::shutdown) loses
/// nothing that it can handle within its timeout: the watcher stops first,
/// then the listener empties the queue; messages waiting for a retry at
/// that point are lost. Use a durable queue when events must survive the
/// process: [`PgQueue`](crate::PgQueue), the default, or
/// [`SqsQueue`](crate::SqsQueue).
///
/// Bounded (a full queue makes senders wait, then fail with
/// [`QueueError::Unavailable`], so the watcher keeps events in PostgreSQL);
/// messages received and neither deleted nor made visible again reappear
/// after their visibility timeout; a message received more than
/// `max_receives` times moves to the queue's own dead-letter list, which
/// [`MemoryQueue::dead_letters`] and its [`QueueAdmin`] ([`Queue::admin`])
/// show, the latter with the message's sequence number as the id.
/// Clones share the queue.
#[derive(Debug, Clone)]
pub struct MemoryQueue {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    state: Mutex<State>,
    /// Woken when a message may have become receivable or space freed up.
    changed: Notify,
    capacity: usize,
    max_receives: Option<u32>,
    max_message_bytes: usize,
    fifo: bool,
    dead_letter_capacity: usize,
}

#[derive(Debug, Default)]
struct State {
    /// Receivable messages by sequence number: order of sending, kept on redelivery.
    ready: BTreeMap<u64, Stored>,
    /// Received and not yet deleted, or sent with a delay (never received),
    /// by sequence number, with the time they become receivable.
    in_flight: HashMap<u64, (Stored, Instant)>,
    /// The newest dead letters, at most `dead_letter_capacity`, oldest
    /// first, by the sequence number of their message.
    dead: VecDeque<(u64, DeadLetter)>,
    /// Dead letters dropped to keep within the capacity.
    dead_dropped: u64,
    next: u64,
    /// FIFO deduplication ids seen in the last five minutes, as SQS keeps them.
    dedup: HashMap<String, Instant>,
}

#[derive(Debug, Clone)]
struct Stored {
    body: String,
    group: Option<String>,
    receive_count: u32,
    failure: Option<Failure>,
    /// When it was sent, for the age of the oldest message.
    sent_at: Instant,
}

impl Stored {
    /// The message as a dead letter, for `reason`.
    fn bury(self, seq: u64, receive_count: u32, reason: String) -> DeadLetter {
        DeadLetter {
            id: seq.to_string(),
            body: self.body,
            group_id: self.group,
            receive_count,
            reason,
            failure: self.failure,
            dead_lettered_at: Some(Utc::now().trunc_subsecs(6)),
        }
    }
}

/// Settings of a [`MemoryQueue`].
#[derive(Debug, Clone)]
pub struct MemoryQueueBuilder {
    capacity: usize,
    max_receives: Option<u32>,
    max_message_bytes: usize,
    fifo: bool,
    dead_letter_capacity: usize,
}

impl MemoryQueueBuilder {
    /// At most this many messages, waiting or received (default 10,000).
    pub fn capacity(mut self, messages: usize) -> Self {
        self.capacity = messages.max(1);
        self
    }

    /// Dead-letter a message on its receive past this many (default 5; `None`: never).
    pub fn max_receives(mut self, receives: Option<u32>) -> Self {
        self.max_receives = receives;
        self
    }

    /// The largest message body (default 1 MiB, as SQS).
    pub fn max_message_bytes(mut self, bytes: usize) -> Self {
        self.max_message_bytes = bytes;
        self
    }

    /// Behave as a FIFO queue: a group's next message is not delivered while
    /// one of its messages is in flight, and, as on SQS, one receive may hold
    /// several messages of a group, in order.
    pub fn fifo(mut self, fifo: bool) -> Self {
        self.fifo = fifo;
        self
    }

    /// Dead letters kept (default 1,000): past it, the oldest is dropped,
    /// with a warning, so that a stream of bad messages cannot grow the
    /// process without bound.
    pub fn dead_letter_capacity(mut self, messages: usize) -> Self {
        self.dead_letter_capacity = messages;
        self
    }

    /// The queue.
    pub fn build(self) -> MemoryQueue {
        MemoryQueue {
            inner: Arc::new(Inner {
                state: Mutex::default(),
                changed: Notify::new(),
                capacity: self.capacity,
                max_receives: self.max_receives,
                max_message_bytes: self.max_message_bytes,
                fifo: self.fifo,
                dead_letter_capacity: self.dead_letter_capacity,
            }),
        }
    }
}

impl Default for MemoryQueue {
    fn default() -> Self {
        MemoryQueue::new()
    }
}

impl MemoryQueue {
    /// A standard queue with the default settings.
    pub fn new() -> MemoryQueue {
        MemoryQueue::builder().build()
    }

    /// Settings for a queue.
    pub fn builder() -> MemoryQueueBuilder {
        MemoryQueueBuilder {
            capacity: 10_000,
            max_receives: Some(5),
            max_message_bytes: SQS_MAX_MESSAGE_BYTES,
            fifo: false,
            dead_letter_capacity: 1000,
        }
    }

    /// Messages waiting to be received.
    pub fn waiting(&self) -> usize {
        self.lock().ready.len()
    }

    /// Messages received and not yet deleted, and those sent with a delay
    /// that has not been received yet (its [`QueueAdmin::depth`] tells the
    /// two apart).
    pub fn in_flight(&self) -> usize {
        self.lock().in_flight.len()
    }

    /// The messages moved to the dead-letter queue, oldest first: the
    /// newest [`dead_letter_capacity`](MemoryQueueBuilder::dead_letter_capacity).
    pub fn dead_letters(&self) -> Vec<DeadLetter> {
        self.lock()
            .dead
            .iter()
            .map(|(_, letter)| letter.clone())
            .collect()
    }

    /// Dead letters dropped so far to keep within the capacity.
    pub fn dead_letters_dropped(&self) -> u64 {
        self.lock().dead_dropped
    }

    fn bury(state: &mut State, capacity: usize, seq: u64, letter: DeadLetter) {
        if state.dead.len() >= capacity {
            state.dead.pop_front();
            state.dead_dropped += 1;
            tracing::warn!(
                capacity,
                "MemoryQueue's dead-letter list is full: dropped its oldest message"
            );
        }
        if capacity > 0 {
            state.dead.push_back((seq, letter));
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock cannot leave State half-updated in a
        // way that matters more than losing the queue: keep going.
        crate::sync::lock(&self.inner.state)
    }

    /// Moves messages whose visibility timeout passed back to `ready`.
    fn expire(state: &mut State, now: Instant) {
        let expired: Vec<u64> = state
            .in_flight
            .iter()
            .filter(|(_, (_, visible_at))| *visible_at <= now)
            .map(|(seq, _)| *seq)
            .collect();
        for seq in expired {
            if let Some((stored, _)) = state.in_flight.remove(&seq) {
                state.ready.insert(seq, stored);
            }
        }
    }

    fn take(
        &self,
        state: &mut State,
        max: usize,
        visibility: Duration,
        now: Instant,
    ) -> Vec<ReceivedMessage> {
        let busy_groups: HashSet<String> = if self.inner.fifo {
            state
                .in_flight
                .values()
                .filter_map(|(s, _)| s.group.clone())
                .collect()
        } else {
            HashSet::new()
        };
        // As SQS does, a receive may hold several messages of one group, in
        // order: the listener must handle them one after the other.
        let mut picked = Vec::new();
        for (seq, stored) in &state.ready {
            if picked.len() == max {
                break;
            }
            if let Some(group) = &stored.group {
                if busy_groups.contains(group) {
                    continue;
                }
            }
            picked.push(*seq);
        }
        let mut received = Vec::with_capacity(picked.len());
        for seq in picked {
            let Some(mut stored) = state.ready.remove(&seq) else {
                continue;
            };
            stored.receive_count += 1;
            if self
                .inner
                .max_receives
                .is_some_and(|max| stored.receive_count > max)
            {
                let count = stored.receive_count - 1;
                let reason = "received more than max_receives times".to_owned();
                Self::bury(
                    state,
                    self.inner.dead_letter_capacity,
                    seq,
                    stored.bury(seq, count, reason),
                );
                continue;
            }
            received.push(ReceivedMessage {
                body: stored.body.clone(),
                receipt: Receipt(format!("{seq}:{}", stored.receive_count)),
                receive_count: stored.receive_count,
                message_id: seq.to_string(),
                group_id: stored.group.clone().filter(|_| self.inner.fifo),
                failure: stored.failure.clone(),
            });
            state.in_flight.insert(seq, (stored, now + visibility));
        }
        received
    }

    fn has_space(&self) -> bool {
        let state = self.lock();
        state.ready.len() + state.in_flight.len() < self.inner.capacity
    }

    /// Adds messages from `*next` on while there is space; says whether any was added.
    fn push(
        &self,
        messages: &[OutgoingMessage],
        next: &mut usize,
        outcome: &mut SendOutcome,
    ) -> bool {
        let mut state = self.lock();
        let mut added = false;
        while let Some(message) = messages.get(*next) {
            if message.body.len() > self.inner.max_message_bytes {
                outcome.failed.push((
                    *next,
                    QueueError::Refused(format!(
                        "message of {} bytes exceeds the limit of {}",
                        message.body.len(),
                        self.inner.max_message_bytes
                    )),
                ));
                *next += 1;
                continue;
            }
            let dedup = message.dedup_id.as_ref().filter(|_| self.inner.fifo);
            if let Some(dedup) = dedup {
                let now = Instant::now();
                state
                    .dedup
                    .retain(|_, at| now.duration_since(*at) < DEDUP_WINDOW);
                if state.dedup.contains_key(dedup) {
                    outcome.accepted.push(*next);
                    *next += 1;
                    continue;
                }
            }
            if state.ready.len() + state.in_flight.len() >= self.inner.capacity {
                break;
            }
            // Only a message actually stored counts as seen: a refused one
            // must not be taken for a duplicate when it is sent again.
            if let Some(dedup) = dedup {
                state.dedup.insert(dedup.clone(), Instant::now());
            }
            let seq = state.next;
            state.next += 1;
            let stored = Stored {
                body: message.body.clone(),
                group: message.group_id.clone(),
                receive_count: 0,
                failure: message.failure.clone(),
                sent_at: Instant::now(),
            };
            if message.delay.is_zero() || self.inner.fifo {
                state.ready.insert(seq, stored);
            } else {
                // Hidden until the delay passes, as a received message is
                // until its visibility timeout: no receipt names it.
                state
                    .in_flight
                    .insert(seq, (stored, Instant::now() + message.delay));
            }
            outcome.accepted.push(*next);
            *next += 1;
            added = true;
        }
        added
    }

    /// The sequence number of a receipt that is still current.
    fn current(state: &State, receipt: &Receipt) -> Result<u64, QueueError> {
        let stale = || QueueError::StaleReceipt(receipt.0.clone());
        let (seq, count) = receipt.0.split_once(':').ok_or_else(stale)?;
        let seq: u64 = seq.parse().map_err(|_| stale())?;
        match state.in_flight.get(&seq) {
            Some((stored, _)) if stored.receive_count.to_string() == count => Ok(seq),
            _ => Err(stale()),
        }
    }
}

impl Queue for MemoryQueue {
    fn admin(&self) -> Option<&dyn QueueAdmin> {
        Some(self)
    }

    fn max_receives(&self) -> BoxFuture<'_, Result<Option<u32>, QueueError>> {
        Box::pin(async { Ok(self.inner.max_receives) })
    }

    fn retry<'a>(
        &'a self,
        message: &'a ReceivedMessage,
        delay: Duration,
        failure: &'a Failure,
    ) -> BoxFuture<'a, Result<(), QueueError>> {
        Box::pin(async move {
            let mut state = self.lock();
            let seq = Self::current(&state, &message.receipt)?;
            if let Some((stored, visible_at)) = state.in_flight.get_mut(&seq) {
                stored.failure = Some(failure.clone());
                *visible_at = Instant::now() + delay;
            }
            drop(state);
            self.inner.changed.notify_waiters();
            Ok(())
        })
    }

    fn dead_letter<'a>(
        &'a self,
        message: &'a ReceivedMessage,
        failure: &'a Failure,
    ) -> BoxFuture<'a, Result<(), QueueError>> {
        Box::pin(async move {
            let mut state = self.lock();
            let seq = Self::current(&state, &message.receipt)?;
            if let Some((mut stored, _)) = state.in_flight.remove(&seq) {
                stored.failure = Some(failure.clone());
                let count = stored.receive_count;
                let letter = stored.bury(seq, count, failure.reason());
                Self::bury(&mut state, self.inner.dead_letter_capacity, seq, letter);
            }
            drop(state);
            self.inner.changed.notify_waiters();
            Ok(())
        })
    }

    fn max_message_bytes(&self) -> usize {
        self.inner.max_message_bytes
    }

    fn is_fifo(&self) -> bool {
        self.inner.fifo
    }

    fn is_durable(&self) -> bool {
        false
    }

    /// Messages wait until handled, or until the process ends (which no
    /// payload retention could make up for).
    fn retention(&self) -> BoxFuture<'_, Result<Retention, QueueError>> {
        Box::pin(async { Ok(Retention::UntilDeleted) })
    }

    fn send<'a>(
        &'a self,
        messages: &'a [OutgoingMessage],
    ) -> BoxFuture<'a, Result<SendOutcome, QueueError>> {
        Box::pin(async move {
            let mut outcome = SendOutcome::default();
            let deadline = Instant::now() + Duration::from_secs(1);
            let mut next = 0;
            loop {
                let added = self.push(messages, &mut next, &mut outcome);
                if added {
                    self.inner.changed.notify_waiters();
                }
                if next == messages.len() {
                    break;
                }
                // Full: wait for a delete to free space, up to the deadline.
                let changed = self.inner.changed.notified();
                tokio::pin!(changed);
                changed.as_mut().enable();
                if self.has_space() {
                    continue;
                }
                if tokio::time::timeout_at(deadline, changed).await.is_err() {
                    for index in next..messages.len() {
                        outcome.failed.push((
                            index,
                            QueueError::Unavailable("the memory queue is full".to_owned()),
                        ));
                    }
                    break;
                }
            }
            Ok(outcome)
        })
    }

    fn receive(
        &self,
        max: usize,
        wait: Duration,
        visibility: Duration,
    ) -> BoxFuture<'_, Result<Vec<ReceivedMessage>, QueueError>> {
        Box::pin(async move {
            let deadline = Instant::now() + wait;
            loop {
                let changed = self.inner.changed.notified();
                tokio::pin!(changed);
                changed.as_mut().enable();
                let now = Instant::now();
                let next_expiry = {
                    let mut state = self.lock();
                    Self::expire(&mut state, now);
                    let received = self.take(&mut state, max.clamp(1, 10), visibility, now);
                    if !received.is_empty() || now >= deadline {
                        return Ok(received);
                    }
                    state.in_flight.values().map(|(_, at)| *at).min()
                };
                let until = next_expiry.map_or(deadline, |at| at.min(deadline));
                let _ = tokio::time::timeout_at(until, changed).await;
            }
        })
    }

    fn delete<'a>(&'a self, receipts: &'a [Receipt]) -> BoxFuture<'a, Result<(), QueueError>> {
        Box::pin(async move {
            let mut state = self.lock();
            let mut stale = Vec::new();
            for receipt in receipts {
                match Self::current(&state, receipt) {
                    Ok(seq) => {
                        state.in_flight.remove(&seq);
                    }
                    Err(_) => stale.push(receipt.0.clone()),
                }
            }
            drop(state);
            // Space freed, and a FIFO group may be unblocked.
            self.inner.changed.notify_waiters();
            if stale.is_empty() {
                Ok(())
            } else {
                Err(QueueError::StaleReceipt(stale.join(", ")))
            }
        })
    }

    fn change_visibility<'a>(
        &'a self,
        receipt: &'a Receipt,
        visibility: Duration,
    ) -> BoxFuture<'a, Result<(), QueueError>> {
        Box::pin(async move {
            let mut state = self.lock();
            let seq = Self::current(&state, receipt)?;
            if let Some((_, visible_at)) = state.in_flight.get_mut(&seq) {
                *visible_at = Instant::now() + visibility;
            }
            drop(state);
            self.inner.changed.notify_waiters();
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(body: &str, group: Option<&str>) -> OutgoingMessage {
        OutgoingMessage {
            body: body.to_owned(),
            group_id: group.map(str::to_owned),
            dedup_id: None,
            failure: None,
            delay: Duration::ZERO,
        }
    }

    const SHORT: Duration = Duration::from_millis(20);

    #[tokio::test]
    async fn redelivers_after_visibility_and_dead_letters() {
        let queue = MemoryQueue::builder().max_receives(Some(2)).build();
        let outcome = queue.send(&[message("a", None)]).await.unwrap();
        assert_eq!(outcome.accepted, vec![0]);
        let first = queue.receive(10, SHORT, SHORT).await.unwrap();
        assert_eq!(first.len(), 1);
        assert!(
            queue
                .receive(10, Duration::ZERO, SHORT)
                .await
                .unwrap()
                .is_empty(),
            "hidden"
        );
        let second = queue
            .receive(10, Duration::from_secs(5), SHORT)
            .await
            .unwrap();
        assert_eq!(second[0].receive_count, 2);
        assert!(matches!(
            queue.delete(&[first[0].receipt.clone()]).await,
            Err(QueueError::StaleReceipt(_))
        ));
        tokio::time::sleep(SHORT * 2).await;
        assert!(queue
            .receive(10, Duration::ZERO, SHORT)
            .await
            .unwrap()
            .is_empty());
        let dead = queue.dead_letters();
        assert_eq!((dead[0].body.as_str(), dead[0].receive_count), ("a", 2));
    }

    #[tokio::test]
    async fn the_dead_letter_list_keeps_the_newest() {
        let queue = MemoryQueue::builder()
            .max_receives(Some(1))
            .dead_letter_capacity(2)
            .build();
        for body in ["a", "b", "c"] {
            queue.send(&[message(body, None)]).await.unwrap();
            let got = queue.receive(1, SHORT, Duration::ZERO).await.unwrap();
            let bad = Failure::new(None, "bad", false);
            queue.dead_letter(&got[0], &bad).await.unwrap();
        }
        let bodies: Vec<_> = queue.dead_letters().into_iter().map(|d| d.body).collect();
        assert_eq!(bodies, ["b", "c"]);
        assert_eq!(queue.dead_letters_dropped(), 1);
    }

    #[tokio::test]
    async fn a_retried_message_keeps_its_failure_into_its_dead_letter() {
        let queue = MemoryQueue::builder().max_receives(Some(2)).build();
        queue.send(&[message("a", None)]).await.unwrap();
        let got = queue.receive(1, SHORT, Duration::ZERO).await.unwrap();
        assert_eq!(got[0].failure, None);
        let failure = Failure::new(Some("on_a"), "boom", false);
        queue
            .retry(&got[0], Duration::ZERO, &failure)
            .await
            .unwrap();
        let got = queue.receive(1, SHORT, Duration::ZERO).await.unwrap();
        assert_eq!(got[0].failure.as_ref(), Some(&failure));
        let second = Failure::new(Some("on_a"), "bang", true).following(got[0].failure.as_ref(), 2);
        queue.dead_letter(&got[0], &second).await.unwrap();
        let dead = queue.dead_letters();
        assert_eq!(dead[0].failure.as_ref().map(|f| f.attempts), Some(2));
        assert_eq!(
            dead[0].reason,
            "handler on_a failed 2 times, last by panicking: bang"
        );
    }

    #[tokio::test]
    async fn a_delayed_message_waits_before_it_can_be_received() {
        let queue = MemoryQueue::new();
        let delayed = OutgoingMessage {
            delay: Duration::from_millis(300),
            ..message("later", None)
        };
        queue.send(&[delayed]).await.unwrap();
        assert!(queue
            .receive(1, SHORT, Duration::ZERO)
            .await
            .unwrap()
            .is_empty());
        let got = queue
            .receive(1, Duration::from_secs(2), Duration::ZERO)
            .await
            .unwrap();
        assert_eq!(got[0].body, "later");
    }

    #[tokio::test]
    async fn long_poll_wakes_on_send() {
        let queue = MemoryQueue::new();
        let receiver = tokio::spawn({
            let queue = queue.clone();
            async move {
                queue
                    .receive(10, Duration::from_secs(10), Duration::from_secs(30))
                    .await
            }
        });
        tokio::time::sleep(SHORT).await;
        queue.send(&[message("x", None)]).await.unwrap();
        let got = tokio::time::timeout(Duration::from_secs(5), receiver)
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        assert_eq!(got[0].body, "x");
        queue.delete(&[got[0].receipt.clone()]).await.unwrap();
        assert_eq!((queue.waiting(), queue.in_flight()), (0, 0));
    }

    #[tokio::test]
    async fn fifo_hands_out_a_group_in_order_and_holds_it_while_in_flight() {
        let queue = MemoryQueue::builder().fifo(true).build();
        queue
            .send(&[
                message("a1", Some("a")),
                message("a2", Some("a")),
                message("b1", Some("b")),
                message("a3", Some("a")),
            ])
            .await
            .unwrap();
        let receive = |max| queue.receive(max, Duration::ZERO, Duration::from_secs(30));
        // As SQS does: several messages of one group in one receive, in order.
        let got = receive(2).await.unwrap();
        let bodies: Vec<_> = got.iter().map(|m| m.body.as_str()).collect();
        assert_eq!(bodies, ["a1", "a2"]);
        assert_eq!(got[0].group_id.as_deref(), Some("a"));
        // Group a is in flight: only b comes, though a3 waits.
        let b = receive(10).await.unwrap();
        let bodies: Vec<_> = b.iter().map(|m| m.body.as_str()).collect();
        assert_eq!(bodies, ["b1"]);
        queue.delete(&[got[0].receipt.clone()]).await.unwrap();
        assert!(
            receive(10).await.unwrap().is_empty(),
            "a2 is still in flight"
        );
        // a2 handed back: it comes before a3.
        queue
            .change_visibility(&got[1].receipt, Duration::ZERO)
            .await
            .unwrap();
        let rest = receive(10).await.unwrap();
        let bodies: Vec<_> = rest.iter().map(|m| m.body.as_str()).collect();
        assert_eq!(bodies, ["a2", "a3"]);
    }

    #[tokio::test]
    async fn a_fifo_message_refused_for_space_is_stored_when_sent_again() {
        let queue = MemoryQueue::builder().fifo(true).capacity(1).build();
        let with_dedup = |body: &str| OutgoingMessage {
            dedup_id: Some(body.to_owned()),
            ..message(body, Some("g"))
        };
        queue.send(&[with_dedup("a")]).await.unwrap();
        let refused = queue.send(&[with_dedup("b")]).await.unwrap();
        assert_eq!(refused.failed.len(), 1);
        let a = queue
            .receive(1, Duration::ZERO, Duration::from_secs(30))
            .await
            .unwrap();
        queue.delete(&[a[0].receipt.clone()]).await.unwrap();
        assert_eq!(
            queue.send(&[with_dedup("b")]).await.unwrap().accepted,
            vec![0]
        );
        assert_eq!(queue.waiting(), 1, "stored, not taken for a duplicate");
    }

    #[tokio::test]
    async fn a_full_queue_fails_the_rest_as_transient() {
        let queue = MemoryQueue::builder().capacity(1).build();
        let outcome = queue
            .send(&[message("a", None), message("b", None)])
            .await
            .unwrap();
        assert_eq!(outcome.accepted, vec![0]);
        assert_eq!(outcome.failed.len(), 1);
        assert!(outcome.failed[0].1.is_transient());
    }
}

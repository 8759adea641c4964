//! Where events travel between the watcher and the listeners: the [`Queue`]
//! trait, [`PgQueue`] (tables in PostgreSQL, the durable default),
//! [`SqsQueue`] (Amazon SQS) and [`MemoryQueue`] (in-process, for tests).
//!
//! Each has two capabilities beyond the trait, asked for with a method
//! that returns `None` where a queue lacks one: [`Queue::transactional`]
//! ([`TransactionalQueue`]: send in the caller's transaction; PgQueue) and
//! [`Queue::admin`] ([`QueueAdmin`]: its depth and its dead letters; all
//! three). [`sample_depth`] reports a queue's depth as gauges.

mod admin;
mod failure;
mod gauges;
mod memory;
pub(crate) mod pg;
#[cfg(feature = "sqs")]
mod sqs;

use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

pub use admin::{
    DeadLetter, DeadLetterOutcome, DeadLetterPage, DeadLetterSelection, QueueAdmin, QueueDepth,
};
pub use failure::Failure;
pub use gauges::{sample_depth, DEPTH_SAMPLE_INTERVAL};
pub use memory::{MemoryQueue, MemoryQueueBuilder};
pub use pg::{PgDeadLetter, PgQueue, PgQueueBuilder, PgQueueDepth, PG_MAX_MESSAGE_BYTES};

#[cfg(feature = "sqs")]
pub use sqs::{SqsQueue, SqsQueueBuilder, FAILURE_ATTRIBUTE, REASON_ATTRIBUTE};

/// A boxed future, as `Queue` methods return (the trait is used as `dyn Queue`).
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The largest message SQS takes: 1 MiB, for a message and for a whole batch.
pub const SQS_MAX_MESSAGE_BYTES: usize = 1024 * 1024;

/// How long a message that can never be handled stays hidden when the
/// queue has nowhere to dead-letter it at once: the listener receives it
/// again only this much later, and the queue's own redrive policy moves it
/// after its maximum receive count.
pub(crate) const REDRIVE_BACKOFF: Duration = Duration::from_secs(10);

/// At most this many messages go in one send call (SQS's batch limit).
pub const MAX_BATCH_MESSAGES: usize = 10;

/// One message to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingMessage {
    /// The body: a [wire](crate::wire) envelope.
    pub body: String,
    /// FIFO only: the ordering group (one row).
    pub group_id: Option<String>,
    /// FIFO only: the deduplication id (from the event ids).
    pub dedup_id: Option<String>,
    /// The failures its events had before (the listener re-sends the
    /// failed events of a message together, with their history): the
    /// queue keeps it as it keeps a [retried](Queue::retry) message's.
    pub failure: Option<Failure>,
    /// How long the message stays hidden after it is sent (zero: visible at
    /// once); for a re-sent failed event, its retry backoff. Not on FIFO
    /// queues, where a delayed message would hold back its group.
    pub delay: Duration,
}

impl OutgoingMessage {
    /// A message with this body, no FIFO ids and no failure.
    pub fn new(body: impl Into<String>) -> OutgoingMessage {
        OutgoingMessage {
            body: body.into(),
            group_id: None,
            dedup_id: None,
            failure: None,
            delay: Duration::ZERO,
        }
    }
}

/// What happened to each message of a send call, by index into the call's messages.
#[derive(Debug, Default)]
pub struct SendOutcome {
    /// Indices of the messages the queue accepted.
    pub accepted: Vec<usize>,
    /// Indices of the messages it refused, with the reason.
    pub failed: Vec<(usize, QueueError)>,
}

/// A received message, invisible to other receivers until deleted or its
/// visibility timeout passes.
#[derive(Debug, Clone)]
pub struct ReceivedMessage {
    /// The body as sent.
    pub body: String,
    /// Handle for [`Queue::delete`] and [`Queue::change_visibility`].
    pub receipt: Receipt,
    /// How many times this message has been received, this time included.
    pub receive_count: u32,
    /// The queue's id of the message, for logs.
    pub message_id: String,
    /// FIFO only: the message's ordering group. One receive may hold
    /// several messages of a group, in order.
    pub group_id: Option<String>,
    /// Its last failure, when it failed before and the queue kept it
    /// ([`Queue::retry`], [`OutgoingMessage::failure`]).
    pub failure: Option<Failure>,
}

/// Identifies one receipt of a message.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Receipt(pub String);

/// A queue failed, or refused a message.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum QueueError {
    /// The queue could not be reached or answered with an error; worth retrying.
    #[error("queue unavailable: {0}")]
    Unavailable(String),
    /// The queue refused this message for what it is (too large, invalid); retrying it unchanged will not help.
    #[error("queue refused the message: {0}")]
    Refused(String),
    /// The receipt is no longer valid (the message was redelivered or deleted).
    #[error("stale receipt: {0}")]
    StaleReceipt(String),
    /// A dead letter's id that cannot name one of this queue's ([`QueueAdmin`]):
    /// the message says what its ids look like.
    #[error("{0}")]
    InvalidId(String),
}

impl QueueError {
    /// Whether trying again later may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, QueueError::Unavailable(_))
    }
}

/// How long a queue keeps a message that nobody deletes: how long the rows
/// of a by-reference event must wait in `dawdle.payloads` (see
/// [`Queue::retention`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retention {
    /// Until it is deleted (handled), however long that takes; a dead
    /// letter, which can be redriven, until it is discarded.
    UntilDeleted,
    /// At most this long after it was sent, dead-letter queue included:
    /// then it is gone, delivered or not.
    AtMost(Duration),
}

/// A message queue with at-least-once delivery, visibility timeouts and a
/// dead-letter queue: what SQS offers, and what [`MemoryQueue`] mimics.
pub trait Queue: Send + Sync + std::fmt::Debug + 'static {
    /// The largest message body, in bytes; also the limit of one send call.
    fn max_message_bytes(&self) -> usize;

    /// Whether this is a FIFO queue: messages carry group and deduplication ids.
    fn is_fifo(&self) -> bool;

    /// Whether messages survive the end of this process. A queue that does
    /// not (an in-process one) is emptied by the listener on a graceful
    /// shutdown, after the watcher stopped filling it.
    fn is_durable(&self) -> bool {
        true
    }

    /// How long a message can still be delivered after it is sent, its time
    /// as a dead letter included. The watcher keeps the rows of a
    /// by-reference event that long at least (or its `payload_retention`,
    /// when longer), so that they are there whenever the message comes.
    ///
    /// Asked before each round of the watcher that parks such rows: a queue
    /// that looks it up remotely should cache it. The default,
    /// [`Retention::UntilDeleted`], never loses a payload; a queue that
    /// drops messages after a time should say so, or the rows of its lost
    /// messages stay forever.
    fn retention(&self) -> BoxFuture<'_, Result<Retention, QueueError>> {
        Box::pin(async { Ok(Retention::UntilDeleted) })
    }

    /// Sends up to [`MAX_BATCH_MESSAGES`] messages whose bodies total at most
    /// [`max_message_bytes`](Queue::max_message_bytes). `Err` means nothing
    /// is known to be sent; `Ok` says which were accepted.
    fn send<'a>(
        &'a self,
        messages: &'a [OutgoingMessage],
    ) -> BoxFuture<'a, Result<SendOutcome, QueueError>>;

    /// Receives up to `max` (≤ 10) messages, waiting up to `wait` for the
    /// first, and hides them for `visibility`.
    fn receive(
        &self,
        max: usize,
        wait: Duration,
        visibility: Duration,
    ) -> BoxFuture<'_, Result<Vec<ReceivedMessage>, QueueError>>;

    /// Deletes received messages: they were handled.
    fn delete<'a>(&'a self, receipts: &'a [Receipt]) -> BoxFuture<'a, Result<(), QueueError>>;

    /// Hides a received message for `visibility` from now (zero: at once visible again).
    fn change_visibility<'a>(
        &'a self,
        receipt: &'a Receipt,
        visibility: Duration,
    ) -> BoxFuture<'a, Result<(), QueueError>>;

    /// After how many receives the queue dead-letters a message by itself
    /// (SQS: its redrive policy's `maxReceiveCount`); `None` for never.
    ///
    /// The listener moves a failing message to the dead-letter queue itself
    /// ([`dead_letter`](Queue::dead_letter)) on its last receive, so that
    /// its dead letter keeps the failure; the queue's own count then
    /// catches only messages whose listener died. A queue that cannot say
    /// returns `Ok(None)` (the default), and its own policy applies.
    fn max_receives(&self) -> BoxFuture<'_, Result<Option<u32>, QueueError>> {
        Box::pin(async { Ok(None) })
    }

    /// Hands a received message whose handling failed back to the queue,
    /// hidden for `delay`, keeping `failure` with it so that its next
    /// receive ([`ReceivedMessage::failure`]) and its dead letter know why.
    ///
    /// The default only changes the visibility: a queue that cannot keep
    /// anything with a message loses the failure until the listener
    /// dead-letters it.
    fn retry<'a>(
        &'a self,
        message: &'a ReceivedMessage,
        delay: Duration,
        failure: &'a Failure,
    ) -> BoxFuture<'a, Result<(), QueueError>> {
        let _ = failure;
        self.change_visibility(&message.receipt, delay)
    }

    /// Moves a message that will not be handled (not a dawdle message, a
    /// row that does not decode, a message that failed on its last receive)
    /// to the dead-letter queue, with `failure`, which says why.
    ///
    /// The default makes it visible again after ten seconds, so that the
    /// queue's own redrive policy moves it after its maximum receive count
    /// without the listener spinning on it.
    fn dead_letter<'a>(
        &'a self,
        message: &'a ReceivedMessage,
        failure: &'a Failure,
    ) -> BoxFuture<'a, Result<(), QueueError>> {
        let _ = failure;
        self.change_visibility(&message.receipt, REDRIVE_BACKOFF)
    }

    /// The queue as a [`TransactionalQueue`], when it can send in the
    /// caller's transaction; `None` (the default) when it cannot.
    fn transactional(&self) -> Option<&dyn TransactionalQueue> {
        None
    }

    /// The queue as a [`QueueAdmin`], when it can tell its depth and work
    /// on its dead letters; `None` (the default) when it cannot.
    fn admin(&self) -> Option<&dyn QueueAdmin> {
        None
    }
}

/// What a queue whose messages are rows of a PostgreSQL database can do
/// beyond [`Queue`]: send in a transaction of the caller, so that the
/// messages exist only if and when it commits. [`PgQueue`] has it.
///
/// The watcher asks for it with [`Queue::transactional`]: when its source
/// database is the queue's, each round moves events from the event tables
/// into the queue in one transaction, and a crash between the two cannot
/// duplicate them.
pub trait TransactionalQueue: Queue {
    /// Whether the queue's messages live in the database `client` is
    /// connected to.
    fn lives_in<'a>(
        &'a self,
        client: &'a tokio_postgres::Client,
    ) -> BoxFuture<'a, Result<bool, QueueError>>;

    /// Sends `messages` in the transaction open on `client` (a database it
    /// [`lives_in`](TransactionalQueue::lives_in)): they exist, and
    /// receivers learn of them, only if and when it commits. Every message
    /// is accepted or refused at once; an `Err` aborts the transaction.
    fn send_in<'a>(
        &'a self,
        client: &'a tokio_postgres::Client,
        messages: &'a [OutgoingMessage],
    ) -> BoxFuture<'a, Result<SendOutcome, QueueError>>;
}

//! A queue that counts the calls made to the queue it wraps: SQS requests
//! per 1,000 events (SendMessageBatch, ReceiveMessage, DeleteMessageBatch).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use dawdle::queue::{
    BoxFuture, OutgoingMessage, Queue, QueueError, Receipt, ReceivedMessage, SendOutcome,
};

#[derive(Debug, Default)]
pub struct Calls {
    pub send: AtomicU64,
    pub receive: AtomicU64,
    pub delete: AtomicU64,
}

impl Calls {
    pub fn get(&self) -> (u64, u64, u64) {
        (
            self.send.load(Ordering::Relaxed),
            self.receive.load(Ordering::Relaxed),
            self.delete.load(Ordering::Relaxed),
        )
    }
}

#[derive(Debug)]
pub struct Counting<Q> {
    inner: Q,
    pub calls: Arc<Calls>,
}

impl<Q: Queue> Counting<Q> {
    pub fn new(inner: Q) -> Counting<Q> {
        Counting {
            inner,
            calls: Arc::default(),
        }
    }
}

impl<Q: Queue> Queue for Counting<Q> {
    fn max_message_bytes(&self) -> usize {
        self.inner.max_message_bytes()
    }

    fn is_fifo(&self) -> bool {
        self.inner.is_fifo()
    }

    fn send<'a>(
        &'a self,
        messages: &'a [OutgoingMessage],
    ) -> BoxFuture<'a, Result<SendOutcome, QueueError>> {
        self.calls.send.fetch_add(1, Ordering::Relaxed);
        self.inner.send(messages)
    }

    fn receive(
        &self,
        max: usize,
        wait: Duration,
        visibility: Duration,
    ) -> BoxFuture<'_, Result<Vec<ReceivedMessage>, QueueError>> {
        self.calls.receive.fetch_add(1, Ordering::Relaxed);
        self.inner.receive(max, wait, visibility)
    }

    fn delete<'a>(&'a self, receipts: &'a [Receipt]) -> BoxFuture<'a, Result<(), QueueError>> {
        self.calls.delete.fetch_add(1, Ordering::Relaxed);
        self.inner.delete(receipts)
    }

    fn change_visibility<'a>(
        &'a self,
        receipt: &'a Receipt,
        visibility: Duration,
    ) -> BoxFuture<'a, Result<(), QueueError>> {
        self.inner.change_visibility(receipt, visibility)
    }

    fn dead_letter<'a>(
        &'a self,
        message: &'a ReceivedMessage,
        reason: &'a str,
    ) -> BoxFuture<'a, Result<(), QueueError>> {
        self.inner.dead_letter(message, reason)
    }
}

//! A queue wrapper that counts the calls made to it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use dawdle::queue::{
    BoxFuture, Failure, OutgoingMessage, Queue, QueueError, Receipt, ReceivedMessage, SendOutcome,
};

/// A [`Queue`] that counts the calls made to the queue it
/// wraps (on SQS, each is one request), and can make every delete call slow.
///
/// ```
/// # async fn demo() {
/// use dawdle_test::CountingQueue;
/// let queue = CountingQueue::new(dawdle::MemoryQueue::new());
/// let calls = queue.calls();
/// // ... run a Runtime on `queue.clone()` ...
/// assert_eq!(calls.deletes(), 0);
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct CountingQueue<Q> {
    inner: Q,
    calls: Arc<QueueCalls>,
    delete_delay: Duration,
}

/// What a [`CountingQueue`] counted so far.
#[derive(Debug, Default)]
pub struct QueueCalls {
    sends: AtomicU64,
    receives: AtomicU64,
    deletes: AtomicU64,
    deleted: AtomicU64,
}

impl QueueCalls {
    /// Send calls (SendMessageBatch on SQS).
    pub fn sends(&self) -> u64 {
        self.sends.load(Ordering::SeqCst)
    }

    /// Receive calls (ReceiveMessage on SQS).
    pub fn receives(&self) -> u64 {
        self.receives.load(Ordering::SeqCst)
    }

    /// Delete calls (DeleteMessageBatch on SQS).
    pub fn deletes(&self) -> u64 {
        self.deletes.load(Ordering::SeqCst)
    }

    /// Receipts those delete calls carried.
    pub fn deleted(&self) -> u64 {
        self.deleted.load(Ordering::SeqCst)
    }
}

impl<Q: Queue> CountingQueue<Q> {
    /// Counts the calls made to `inner`.
    pub fn new(inner: Q) -> CountingQueue<Q> {
        CountingQueue {
            inner,
            calls: Arc::default(),
            delete_delay: Duration::ZERO,
        }
    }

    /// Makes every delete call wait `delay` first, as a slow queue would.
    pub fn delete_delay(mut self, delay: Duration) -> CountingQueue<Q> {
        self.delete_delay = delay;
        self
    }

    /// The counts, shared with every clone of this queue.
    pub fn calls(&self) -> Arc<QueueCalls> {
        self.calls.clone()
    }
}

impl<Q: Queue> Queue for CountingQueue<Q> {
    fn max_message_bytes(&self) -> usize {
        self.inner.max_message_bytes()
    }

    fn is_fifo(&self) -> bool {
        self.inner.is_fifo()
    }

    fn is_durable(&self) -> bool {
        self.inner.is_durable()
    }

    fn send<'a>(
        &'a self,
        messages: &'a [OutgoingMessage],
    ) -> BoxFuture<'a, Result<SendOutcome, QueueError>> {
        self.calls.sends.fetch_add(1, Ordering::SeqCst);
        self.inner.send(messages)
    }

    fn receive(
        &self,
        max: usize,
        wait: Duration,
        visibility: Duration,
    ) -> BoxFuture<'_, Result<Vec<ReceivedMessage>, QueueError>> {
        self.calls.receives.fetch_add(1, Ordering::SeqCst);
        self.inner.receive(max, wait, visibility)
    }

    fn delete<'a>(&'a self, receipts: &'a [Receipt]) -> BoxFuture<'a, Result<(), QueueError>> {
        Box::pin(async move {
            tokio::time::sleep(self.delete_delay).await;
            self.calls.deletes.fetch_add(1, Ordering::SeqCst);
            self.calls
                .deleted
                .fetch_add(receipts.len() as u64, Ordering::SeqCst);
            self.inner.delete(receipts).await
        })
    }

    fn change_visibility<'a>(
        &'a self,
        receipt: &'a Receipt,
        visibility: Duration,
    ) -> BoxFuture<'a, Result<(), QueueError>> {
        self.inner.change_visibility(receipt, visibility)
    }

    fn max_receives(&self) -> BoxFuture<'_, Result<Option<u32>, QueueError>> {
        self.inner.max_receives()
    }

    fn retry<'a>(
        &'a self,
        message: &'a ReceivedMessage,
        delay: Duration,
        failure: &'a Failure,
    ) -> BoxFuture<'a, Result<(), QueueError>> {
        self.inner.retry(message, delay, failure)
    }

    fn dead_letter<'a>(
        &'a self,
        message: &'a ReceivedMessage,
        failure: &'a Failure,
    ) -> BoxFuture<'a, Result<(), QueueError>> {
        self.inner.dead_letter(message, failure)
    }

    /// The wrapped queue's administration (its calls are not counted).
    fn admin(&self) -> Option<&dyn dawdle::queue::QueueAdmin> {
        self.inner.admin()
    }
}

//! [`PgQueue`]: a durable queue in PostgreSQL tables, with SQS's semantics.

mod admin;
mod doorbell;
mod queries;
pub(crate) mod schema;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::{Notify, OnceCell};
use tokio::time::Instant;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::ToSql;
use tokio_postgres::{GenericClient, Row};

use super::{
    BoxFuture, DeadLetter, Failure, OutgoingMessage, Queue, QueueAdmin, QueueDepth, QueueError,
    Receipt, ReceivedMessage, Retention, SendOutcome, TransactionalQueue, MAX_BATCH_MESSAGES,
};
use crate::database::Database;
use crate::wire::Envelope;
use doorbell::Doorbell;

/// The default [`max_message_bytes`](PgQueueBuilder::max_message_bytes):
/// 64 MiB. Events are rows here, so even large rows travel in a message;
/// only larger ones go by reference.
pub const PG_MAX_MESSAGE_BYTES: usize = 64 * 1024 * 1024;

/// A [`Queue`] in PostgreSQL: the durable default, shared by any number of
/// processes, with no other service to run.
///
/// Messages are rows of `dawdle.queue_messages`, which `dawdle::sql`'s up
/// migration creates (with `dawdle.queue_dead_letters`) next to
/// `dawdle.events`. It behaves as SQS does:
///
/// - **Send** stores up to ten messages in one statement, and rings a
///   doorbell (NOTIFY) that ends the receivers' long polls.
/// - **Receive** claims up to ten visible messages with `FOR UPDATE SKIP
///   LOCKED`, hides them for the visibility timeout and raises their
///   receive count: receivers in any number of processes claim different
///   messages. A message not deleted before its visibility timeout passes
///   is received again, with a higher count. A receive waits up to `wait`
///   for a message: it wakes on the doorbell (a connection of its own that
///   LISTENs), and polls every [`poll_interval`](PgQueueBuilder::poll_interval)
///   in case a notification was missed.
/// - **Receipts** name one receipt of a message: once the message is
///   received again, a delete or visibility change with an older receipt
///   fails with [`QueueError::StaleReceipt`].
/// - **Dead letters.** A message received [`max_receives`](PgQueueBuilder::max_receives)
///   times and still not deleted, and one a listener found impossible to
///   handle ([`Queue::dead_letter`]), moves to `dawdle.queue_dead_letters`
///   with its body, its receive count, the reason and the times it was
///   sent, first received and dead-lettered. [`PgQueue::dead_letters`]
///   lists them, [`PgQueue::redrive`] sends them again, and
///   [`PgQueue::discard`] deletes them; so does its [`QueueAdmin`]
///   ([`Queue::admin`]), as for any queue, with the ids as text.
/// - **Retention.** A message waits until it is deleted, and a dead letter
///   until it is discarded, however long that takes; so do the rows of
///   their by-reference events ([`Retention::UntilDeleted`]).
/// - **FIFO** ([`fifo`](PgQueueBuilder::fifo)): no message of a group is
///   handed out while another of the group is in flight (received and
///   neither deleted nor visible again), and a receive may hold several
///   messages of one group, in order: per-row order holds across
///   processes. Receives of a FIFO queue take turns (a transaction-level
///   advisory lock), so they cost more than on a standard queue.
/// - **Durable.** A message is a committed row: it survives the crash of
///   any process, and of PostgreSQL.
///
/// Several queues can share the tables under different
/// [`name`](PgQueueBuilder::name)s. The watcher's database and the queue's
/// may be the same or differ (several source databases can feed one queue
/// database); each needs dawdle's up migration.
///
/// ```no_run
/// # async fn demo(config: tokio_postgres::Config) -> Result<(), Box<dyn std::error::Error>> {
/// use std::time::Duration;
/// use dawdle::queue::{PgQueue, Queue};
///
/// // The default queue, as Runtime::builder() uses when given no queue:
/// let queue = PgQueue::new(config.clone());
/// // Or with settings:
/// let orders = PgQueue::builder(config)
///     .name("orders")
///     .fifo(true)
///     .max_receives(Some(10))
///     .build();
///
/// let got = queue.receive(10, Duration::from_secs(20), Duration::from_secs(30)).await?;
/// for message in &got {
///     // ... handle message.body, then:
///     queue.delete(&[message.receipt.clone()]).await?;
/// }
/// # Ok(()) }
/// ```
///
/// Clones share the queue, its pool and its doorbell.
#[derive(Debug, Clone)]
pub struct PgQueue {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    pool: deadpool_postgres::Pool,
    name: String,
    fifo: bool,
    max_receives: Option<u32>,
    max_message_bytes: usize,
    poll_interval: Duration,
    call_timeout: Duration,
    doorbell: Option<Doorbell>,
    /// Rung by the doorbell, and by this process's own sends, deletes and
    /// visibility changes: a message may have become receivable.
    rung: Arc<Notify>,
    /// The origin id of the queue's database.
    source: OnceCell<String>,
}

/// Settings of a [`PgQueue`].
#[derive(Debug)]
pub struct PgQueueBuilder {
    pool: Option<deadpool_postgres::Pool>,
    database: Option<Database>,
    max_connections: usize,
    name: String,
    fifo: bool,
    max_receives: Option<u32>,
    max_message_bytes: usize,
    poll_interval: Duration,
    call_timeout: Duration,
}

impl PgQueueBuilder {
    /// The queue's name (default `default`): queues of different names
    /// share the tables and nothing else.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Behave as a FIFO queue (default: standard). See [`PgQueue`].
    pub fn fifo(mut self, fifo: bool) -> Self {
        self.fifo = fifo;
        self
    }

    /// Dead-letter a message on its receive past this many (default 5;
    /// `None`: never).
    pub fn max_receives(mut self, receives: Option<u32>) -> Self {
        self.max_receives = receives.map(|r| r.max(1));
        self
    }

    /// The largest message body, and the most bytes of one send call
    /// (default [`PG_MAX_MESSAGE_BYTES`]).
    pub fn max_message_bytes(mut self, bytes: usize) -> Self {
        self.max_message_bytes = bytes.max(1);
        self
    }

    /// How often a waiting receive looks for messages the doorbell did not
    /// announce: visibility timeouts that passed, sends while the doorbell
    /// was down (default 1 s).
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.poll_interval = interval.max(Duration::from_millis(1));
        self
    }

    /// The longest one call to the database may take, waiting for a pooled
    /// connection included; past it, the call fails with
    /// [`QueueError::Unavailable`] (default 10 s).
    pub fn call_timeout(mut self, timeout: Duration) -> Self {
        self.call_timeout = timeout;
        self
    }

    /// Connections of the queue's own pool (default 8). Without effect
    /// with [`pool`](PgQueueBuilder::pool).
    pub fn max_connections(mut self, connections: usize) -> Self {
        self.max_connections = connections.max(1);
        self
    }

    /// Uses `pool` for the queue's calls instead of a pool of its own.
    pub fn pool(mut self, pool: deadpool_postgres::Pool) -> Self {
        self.pool = Some(pool);
        self
    }

    /// The doorbell's connection settings: a connection of its own that
    /// LISTENs, so that a waiting receive wakes as soon as a message is
    /// sent. Set by [`PgQueue::builder`]; without it (a queue made
    /// [`from_pool`](PgQueue::from_pool) alone), receives find new
    /// messages at their [`poll_interval`](PgQueueBuilder::poll_interval).
    pub fn doorbell(mut self, database: impl Into<Database>) -> Self {
        self.database = Some(database.into());
        self
    }

    /// The queue. Connects only when first used.
    pub fn build(self) -> PgQueue {
        let pool = match (self.pool, &self.database) {
            (Some(pool), _) => pool,
            (None, Some(database)) => database
                .pool(self.max_connections)
                .expect("a pool without a runtime-specific timeout always builds"),
            (None, None) => unreachable!("PgQueue's constructors give a pool or a database"),
        };
        PgQueue {
            inner: Arc::new(Inner {
                pool,
                name: self.name,
                fifo: self.fifo,
                max_receives: self.max_receives,
                max_message_bytes: self.max_message_bytes,
                poll_interval: self.poll_interval,
                call_timeout: self.call_timeout,
                doorbell: self.database.map(Doorbell::new),
                rung: Arc::new(Notify::new()),
                source: OnceCell::new(),
            }),
        }
    }
}

/// A message in `dawdle.queue_dead_letters`.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct PgDeadLetter {
    /// The message's id, as its [`ReceivedMessage::message_id`] was.
    pub id: i64,
    /// The body as sent.
    pub body: String,
    /// FIFO only: its group.
    pub group_id: Option<String>,
    /// How many times it was received.
    pub receive_count: u32,
    /// Why it was dead-lettered.
    pub reason: String,
    /// When it was sent.
    pub sent_at: DateTime<Utc>,
    /// When it was first received.
    pub received_at: Option<DateTime<Utc>>,
    /// When it was dead-lettered.
    pub dead_lettered_at: DateTime<Utc>,
    /// Its last failure, when it failed before (or was dead-lettered by a
    /// listener, which records why).
    pub failure: Option<Failure>,
}

impl From<PgDeadLetter> for DeadLetter {
    fn from(dead: PgDeadLetter) -> DeadLetter {
        DeadLetter {
            id: dead.id.to_string(),
            body: dead.body,
            group_id: dead.group_id,
            receive_count: dead.receive_count,
            reason: dead.reason,
            failure: dead.failure,
            dead_lettered_at: Some(dead.dead_lettered_at),
        }
    }
}

/// How many messages a [`PgQueue`] holds, as [`PgQueue::depth`] tells: the
/// [`QueueDepth`] that any queue's [`QueueAdmin::depth`] tells.
pub type PgQueueDepth = QueueDepth;

impl PgQueue {
    /// A standard queue named `default` on `database` (a
    /// [`tokio_postgres::Config`] or a [`Database`], TLS as its `sslmode`
    /// says), with a pool and a doorbell of its own.
    pub fn new(database: impl Into<Database>) -> PgQueue {
        PgQueue::builder(database).build()
    }

    /// Settings for a queue on `database`, with a pool and a doorbell of its own.
    pub fn builder(database: impl Into<Database>) -> PgQueueBuilder {
        PgQueueBuilder {
            database: Some(database.into()),
            ..PgQueue::defaults()
        }
    }

    /// Settings for a queue on the database of `pool`. Add a
    /// [`doorbell`](PgQueueBuilder::doorbell) for prompt wake-ups.
    pub fn from_pool(pool: deadpool_postgres::Pool) -> PgQueueBuilder {
        PgQueueBuilder {
            pool: Some(pool),
            ..PgQueue::defaults()
        }
    }

    fn defaults() -> PgQueueBuilder {
        PgQueueBuilder {
            pool: None,
            database: None,
            max_connections: 8,
            name: "default".to_owned(),
            fifo: false,
            max_receives: Some(5),
            max_message_bytes: PG_MAX_MESSAGE_BYTES,
            poll_interval: Duration::from_secs(1),
            call_timeout: Duration::from_secs(10),
        }
    }

    /// The queue's name.
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// Dead letters of this queue from id `from` on, oldest first, at most `limit`.
    pub async fn dead_letters(
        &self,
        from: i64,
        limit: usize,
    ) -> Result<Vec<PgDeadLetter>, QueueError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows = self
            .call("listing dead letters", |client| async move {
                let statement = client.prepare_cached(queries::DEAD_LETTERS).await?;
                client
                    .query(&statement, &[&self.inner.name, &from, &limit])
                    .await
            })
            .await?;
        rows.iter().map(dead_letter).collect()
    }

    /// Moves dead letters back to the queue as new messages, never
    /// received; says how many were moved (ids that are not dead letters of
    /// this queue are left out).
    pub async fn redrive(&self, ids: &[i64]) -> Result<u64, QueueError> {
        Ok(self.redrive_ids(ids).await?.len() as u64)
    }

    /// [`PgQueue::redrive`], saying which ids were moved, in order.
    async fn redrive_ids(&self, ids: &[i64]) -> Result<Vec<i64>, QueueError> {
        let row = self
            .call("redriving dead letters", |client| async move {
                let statement = client.prepare_cached(queries::REDRIVE).await?;
                client
                    .query_one(&statement, &[&self.inner.name, &ids])
                    .await
            })
            .await?;
        self.inner.rung.notify_waiters();
        Ok(row.get(0))
    }

    /// Deletes dead letters of this queue for good, with the rows of their
    /// by-reference events in `dawdle.payloads` (which wait as long as the
    /// dead letter, since it can be redriven); says how many dead letters
    /// were deleted (ids that are not dead letters of this queue are left
    /// out).
    ///
    /// Those rows are removed where they are in the queue's database, for
    /// the events this database's watcher sent. The rows of events from
    /// another source database stay in that database's `dawdle.payloads`:
    /// remove them there (`DELETE FROM "dawdle"."payloads" WHERE "id" = ...`,
    /// the event ids with `"by_ref": true` and that database's `source`).
    pub async fn discard(&self, ids: &[i64]) -> Result<u64, QueueError> {
        Ok(self.discard_ids(ids).await?.len() as u64)
    }

    /// [`PgQueue::discard`], saying which ids were deleted, in order.
    async fn discard_ids(&self, ids: &[i64]) -> Result<Vec<i64>, QueueError> {
        let origin = self.origin().await?;
        self.call("discarding dead letters", |mut client| async move {
            let tx = client.transaction().await?;
            let discard = tx.prepare_cached(queries::DISCARD).await?;
            let deleted = tx.query(&discard, &[&self.inner.name, &ids]).await?;
            let by_reference: Vec<(i64, Option<String>)> = deleted
                .iter()
                .filter_map(|row| Envelope::parse(row.get(1)).ok())
                .flat_map(|envelope| envelope.events)
                .filter(|event| event.by_ref && event.source.as_deref() == Some(origin))
                .map(|event| (event.id, event.route))
                .collect();
            if !by_reference.is_empty() {
                // Of an event sent to several routes, only this route's
                // claim goes: the others' listeners may still need the rows.
                let claims: Vec<(i64, Option<&str>)> = by_reference
                    .iter()
                    .map(|(id, route)| (*id, route.as_deref()))
                    .collect();
                crate::listener::payloads::forget_payloads(&*tx, &claims).await?;
            }
            tx.commit().await?;
            let mut ids: Vec<i64> = deleted.iter().map(|row| row.get(0)).collect();
            ids.sort_unstable();
            Ok(ids)
        })
        .await
    }

    /// How many messages are waiting, in flight and delayed, the age of
    /// the oldest, and how many are dead-lettered.
    pub async fn depth(&self) -> Result<PgQueueDepth, QueueError> {
        let row = self
            .call("counting messages", |client| async move {
                let statement = client.prepare_cached(queries::COUNTS).await?;
                client.query_one(&statement, &[&self.inner.name]).await
            })
            .await?;
        let count = |index: usize| row.get::<_, i64>(index).max(0) as u64;
        let age = row.get::<_, f64>(3);
        Ok(QueueDepth {
            waiting: count(0),
            in_flight: count(1),
            delayed: count(2),
            oldest_age: Some(Duration::try_from_secs_f64(age).unwrap_or_default()),
            dead_letters: count(4),
        })
    }

    /// Sends `messages` on `client`, in the caller's transaction when
    /// `client` is one: the messages exist, and the receivers' doorbell
    /// rings, only if and when it commits. Otherwise as [`Queue::send`].
    ///
    /// This is the watcher's hand-off when its source database is the
    /// queue's database ([`PgQueue::lives_in`]): moving events from
    /// `dawdle.events` into the queue in one transaction, the delete of
    /// the events and the send commit together, so that a crash between
    /// the two cannot duplicate them:
    ///
    /// ```text
    /// let tx = client.transaction().await?;
    /// let outcome = queue.send_in(&tx, &messages).await?;
    /// tx.execute(DELETE_EVENTS, &[&accepted_event_ids(&outcome)]).await?;
    /// tx.commit().await?;
    /// ```
    ///
    /// Every message is accepted or refused (too large) at once: nothing
    /// fails transiently but the whole call, and then the transaction is
    /// aborted and should be rolled back.
    pub(crate) async fn send_in_tx(
        &self,
        client: &impl GenericClient,
        messages: &[OutgoingMessage],
    ) -> Result<SendOutcome, QueueError> {
        let (mut outcome, batch) = self.check(messages);
        if batch.indices.is_empty() {
            return Ok(outcome);
        }
        let sent = tokio::time::timeout(self.inner.call_timeout, async {
            let (query, params) = batch.send(&self.inner.name);
            client.query_one(query, &params).await
        })
        .await;
        match sent {
            Ok(Ok(_)) => {}
            Ok(Err(error)) => return Err(unavailable("sending", &error)),
            Err(_) => return Err(self.timed_out("sending")),
        }
        outcome.accepted.extend(batch.indices);
        Ok(outcome)
    }

    /// Whether the queue's tables are in the database `client` is
    /// connected to: both databases have the same `dawdle.origin` id. Then
    /// [`PgQueue::send_in`] can send in a transaction of `client`.
    pub(crate) async fn lives_in_db(
        &self,
        client: &impl GenericClient,
    ) -> Result<bool, QueueError> {
        let ours = self.origin().await?;
        let theirs = tokio::time::timeout(
            self.inner.call_timeout,
            client.query_one(queries::SOURCE, &[]),
        )
        .await
        .map_err(|_| self.timed_out("reading the origin"))?
        .map_err(|error| unavailable("reading the origin", &error))?;
        Ok(theirs.get::<_, String>(0) == ours)
    }

    /// The origin id of the queue's database.
    async fn origin(&self) -> Result<&str, QueueError> {
        let origin = self
            .inner
            .source
            .get_or_try_init(|| async {
                let row = self
                    .call("reading the queue database's origin", |client| async move {
                        client.query_one(queries::SOURCE, &[]).await
                    })
                    .await?;
                Ok::<_, QueueError>(row.get::<_, String>(0))
            })
            .await?;
        Ok(origin)
    }

    /// Splits `messages` into those refused for what they are and the
    /// arrays of the others.
    fn check<'m>(&self, messages: &'m [OutgoingMessage]) -> (SendOutcome, Batch<'m>) {
        let mut outcome = SendOutcome::default();
        let mut batch = Batch::default();
        let mut bytes = 0;
        for (index, message) in messages.iter().enumerate() {
            let size = message.body.len();
            let refused = if size > self.inner.max_message_bytes {
                Some(format!(
                    "message of {size} bytes exceeds the limit of {}",
                    self.inner.max_message_bytes
                ))
            } else if index >= MAX_BATCH_MESSAGES || bytes + size > self.inner.max_message_bytes {
                // Within the queue's limits for one call, as the trait asks:
                // the rest is refused rather than silently stretched.
                Some(format!(
                    "a send call holds at most {MAX_BATCH_MESSAGES} messages of {} bytes in all",
                    self.inner.max_message_bytes
                ))
            } else if [
                Some(&message.body),
                message.group_id.as_ref(),
                message.dedup_id.as_ref(),
            ]
            .into_iter()
            .flatten()
            .any(|text| text.contains('\0'))
            {
                Some("PostgreSQL text cannot hold a NUL character".to_owned())
            } else {
                None
            };
            if let Some(reason) = refused {
                outcome.failed.push((index, QueueError::Refused(reason)));
                continue;
            }
            bytes += size;
            let fifo = |id: &'m Option<String>| id.as_deref().filter(|_| self.inner.fifo);
            batch.indices.push(index);
            batch.bodies.push(&message.body);
            batch.groups.push(fifo(&message.group_id));
            batch.dedups.push(fifo(&message.dedup_id));
        }
        let retried = |m: &OutgoingMessage| m.failure.is_some() || !m.delay.is_zero();
        if batch.indices.iter().any(|&i| retried(&messages[i])) {
            for &i in &batch.indices {
                let message = &messages[i];
                let failure = message.failure.as_ref();
                batch
                    .failures
                    .push(failure.and_then(|f| serde_json::to_string(f).ok()));
                // A FIFO message is never delayed: it would hold back its group.
                let delay = if self.inner.fifo {
                    Duration::ZERO
                } else {
                    message.delay
                };
                batch.delays.push(delay.as_secs_f64());
            }
        }
        (outcome, batch)
    }

    /// Runs `query` on a pooled connection within the call timeout.
    async fn call<'a, T, F>(
        &'a self,
        what: &'static str,
        query: impl FnOnce(deadpool_postgres::Object) -> F,
    ) -> Result<T, QueueError>
    where
        F: std::future::Future<Output = Result<T, tokio_postgres::Error>> + 'a,
    {
        let call = async {
            let client = self.inner.pool.get().await.map_err(|error| {
                QueueError::Unavailable(format!("{what}: no database connection: {error}"))
            })?;
            query(client)
                .await
                .map_err(|error| unavailable(what, &error))
        };
        tokio::time::timeout(self.inner.call_timeout, call)
            .await
            .unwrap_or_else(|_| Err(self.timed_out(what)))
    }

    /// Runs `query` on the message of a receipt, with `$4` = `fourth` and
    /// `failure`'s columns as `$5` to `$10` ([`queries::RETRY`],
    /// [`queries::DEAD_LETTER`]); a receipt that matched no row is stale.
    async fn with_failure(
        &self,
        what: &'static str,
        query: &'static str,
        message: &ReceivedMessage,
        fourth: &(dyn ToSql + Sync),
        failure: &Failure,
    ) -> Result<(), QueueError> {
        let (id, count) = parse_receipt(&message.receipt)?;
        let (handler, error, panicked, attempts, first, last) = failure_params(failure);
        let changed = self
            .call(what, |client| async move {
                let statement = client.prepare_cached(query).await?;
                let params: [&(dyn ToSql + Sync); 10] = [
                    &self.inner.name,
                    &id,
                    &count,
                    fourth,
                    &handler,
                    &error,
                    &panicked,
                    &attempts,
                    &first,
                    &last,
                ];
                client.execute(&statement, &params).await
            })
            .await?;
        if changed == 0 {
            return Err(QueueError::StaleReceipt(message.receipt.0.clone()));
        }
        Ok(())
    }

    fn timed_out(&self, what: &str) -> QueueError {
        QueueError::Unavailable(format!(
            "{what} took longer than {:?} (the queue's call_timeout)",
            self.inner.call_timeout
        ))
    }

    /// One claim: the messages received, and how many were dead-lettered
    /// for their receive count instead.
    async fn claim(
        &self,
        max: usize,
        visibility: Duration,
    ) -> Result<(Vec<ReceivedMessage>, usize), QueueError> {
        let name = &self.inner.name;
        let max = max.clamp(1, MAX_BATCH_MESSAGES) as i64;
        let seconds = visibility.as_secs_f64();
        let max_receives = self
            .inner
            .max_receives
            .map_or(i32::MAX, |max| i32::try_from(max).unwrap_or(i32::MAX));
        let rows = self
            .call("receiving", |mut client| async move {
                if self.inner.fifo {
                    let tx = client.transaction().await?;
                    let lock = tx.prepare_cached(queries::FIFO_LOCK).await?;
                    tx.execute(&lock, &[name]).await?;
                    let receive = tx.prepare_cached(queries::RECEIVE_FIFO).await?;
                    let rows = tx
                        .query(&receive, &[name, &max, &seconds, &max_receives])
                        .await?;
                    tx.commit().await?;
                    Ok(rows)
                } else {
                    let receive = client.prepare_cached(queries::RECEIVE).await?;
                    client
                        .query(&receive, &[name, &max, &seconds, &max_receives])
                        .await
                }
            })
            .await?;
        let mut received = Vec::with_capacity(rows.len());
        let mut buried = 0;
        for row in rows {
            let id: i64 = row.get(0);
            if row.get::<_, bool>(4) {
                tracing::warn!(
                    queue = %self.inner.name,
                    message = id,
                    "dead-lettered a message received max_receives times"
                );
                buried += 1;
                continue;
            }
            let receive_count: i32 = row.get(2);
            received.push(ReceivedMessage {
                body: row.get(1),
                receipt: Receipt(format!("{id}:{receive_count}")),
                receive_count: receive_count as u32,
                message_id: id.to_string(),
                group_id: row.get::<_, Option<String>>(3).filter(|_| self.inner.fifo),
                failure: failure_at(&row, 5),
            });
        }
        Ok((received, buried))
    }
}

/// The messages of a send call that go to the database, as its arrays.
#[derive(Default)]
struct Batch<'m> {
    indices: Vec<usize>,
    bodies: Vec<&'m str>,
    groups: Vec<Option<&'m str>>,
    dedups: Vec<Option<&'m str>>,
    /// Each message's earlier failure as JSON, and its delay in seconds;
    /// empty when no message has either.
    failures: Vec<Option<String>>,
    delays: Vec<f64>,
}

impl Batch<'_> {
    /// The statement that sends the batch to queue `name`, and its parameters.
    fn send<'b>(&'b self, name: &'b String) -> (&'static str, Vec<&'b (dyn ToSql + Sync)>) {
        let mut params: Vec<&(dyn ToSql + Sync)> =
            vec![name, &self.bodies, &self.groups, &self.dedups];
        if self.failures.is_empty() {
            (queries::SEND, params)
        } else {
            params.push(&self.failures);
            params.push(&self.delays);
            (queries::SEND_FAILED, params)
        }
    }
}

/// A receipt's message id and receive count.
fn parse_receipt(receipt: &Receipt) -> Result<(i64, i32), QueueError> {
    let stale = || QueueError::StaleReceipt(format!("{} is not a receipt of a PgQueue", receipt.0));
    let (id, count) = receipt.0.split_once(':').ok_or_else(stale)?;
    Ok((
        id.parse().map_err(|_| stale())?,
        count.parse().map_err(|_| stale())?,
    ))
}

fn unavailable(what: &str, error: &tokio_postgres::Error) -> QueueError {
    if error.code() == Some(&SqlState::UNDEFINED_TABLE) {
        return QueueError::Unavailable(format!(
            "{what}: PgQueue's tables are missing: apply dawdle's up migration (dawdle::sql::up) \
             to the queue's database ({error})"
        ));
    }
    let mut text = format!("{what}: {error}");
    let mut source = std::error::Error::source(error);
    while let Some(error) = source {
        text.push_str(&format!(": {error}"));
        source = error.source();
    }
    QueueError::Unavailable(text)
}

fn dead_letter(row: &Row) -> Result<PgDeadLetter, QueueError> {
    let time = |index: usize| -> Option<DateTime<Utc>> {
        row.get::<_, Option<i64>>(index)
            .and_then(DateTime::from_timestamp_micros)
    };
    Ok(PgDeadLetter {
        id: row.get(0),
        body: row.get(1),
        group_id: row.get(2),
        receive_count: row.get::<_, i32>(3) as u32,
        reason: row.get(4),
        sent_at: time(5).unwrap_or_default(),
        received_at: time(6),
        dead_lettered_at: time(7).unwrap_or_default(),
        failure: failure_at(row, 8),
    })
}

/// The [`queries::failure_columns`] of `row` from `index` on, when the
/// message failed before.
pub(super) fn failure_at(row: &Row, index: usize) -> Option<Failure> {
    Some(Failure {
        handler: row.get(index),
        error: row.get::<_, Option<String>>(index + 1)?,
        panicked: row.get::<_, Option<bool>>(index + 2).unwrap_or(false),
        attempts: row
            .get::<_, Option<i32>>(index + 3)
            .map_or(1, |n| n.max(1) as u32),
        first_at: DateTime::from_timestamp_micros(row.get::<_, Option<i64>>(index + 4)?)?,
        last_at: DateTime::from_timestamp_micros(row.get::<_, Option<i64>>(index + 5)?)?,
    })
}

/// `failure` as the parameters of its columns (times in microseconds).
fn failure_params(failure: &Failure) -> (Option<&str>, &str, bool, i32, i64, i64) {
    (
        failure.handler.as_deref(),
        &failure.error,
        failure.panicked,
        i32::try_from(failure.attempts).unwrap_or(i32::MAX),
        failure.first_at.timestamp_micros(),
        failure.last_at.timestamp_micros(),
    )
}

impl TransactionalQueue for PgQueue {
    fn lives_in<'a>(
        &'a self,
        client: &'a tokio_postgres::Client,
    ) -> BoxFuture<'a, Result<bool, QueueError>> {
        Box::pin(self.lives_in_db(client))
    }

    fn send_in<'a>(
        &'a self,
        client: &'a tokio_postgres::Client,
        messages: &'a [OutgoingMessage],
    ) -> BoxFuture<'a, Result<SendOutcome, QueueError>> {
        Box::pin(self.send_in_tx(client, messages))
    }
}

impl Queue for PgQueue {
    fn transactional(&self) -> Option<&dyn TransactionalQueue> {
        Some(self)
    }

    fn admin(&self) -> Option<&dyn QueueAdmin> {
        Some(self)
    }

    fn max_message_bytes(&self) -> usize {
        self.inner.max_message_bytes
    }

    fn is_fifo(&self) -> bool {
        self.inner.fifo
    }

    fn is_durable(&self) -> bool {
        true
    }

    /// Messages wait until deleted, however long; dead letters until
    /// discarded ([`PgQueue::discard`]), since they can be redriven.
    fn retention(&self) -> BoxFuture<'_, Result<Retention, QueueError>> {
        Box::pin(async { Ok(Retention::UntilDeleted) })
    }

    fn send<'a>(
        &'a self,
        messages: &'a [OutgoingMessage],
    ) -> BoxFuture<'a, Result<SendOutcome, QueueError>> {
        Box::pin(async move {
            let (mut outcome, batch) = self.check(messages);
            if batch.indices.is_empty() {
                return Ok(outcome);
            }
            let batch = &batch;
            self.call("sending", |client| async move {
                let (query, params) = batch.send(&self.inner.name);
                let statement = client.prepare_cached(query).await?;
                client.query_one(&statement, &params).await
            })
            .await?;
            // Receivers of this process need not wait for the NOTIFY.
            self.inner.rung.notify_waiters();
            outcome.accepted.extend(batch.indices.iter().copied());
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
            if let Some(doorbell) = &self.inner.doorbell {
                doorbell.start(&self.inner.name, &self.inner.rung);
            }
            let deadline = Instant::now() + wait;
            loop {
                // Registered before the claim: a ring during it counts.
                let rung = self.inner.rung.notified();
                tokio::pin!(rung);
                rung.as_mut().enable();
                let (received, buried) = self.claim(max, visibility).await?;
                let now = Instant::now();
                if !received.is_empty() || now >= deadline {
                    return Ok(received);
                }
                if buried > 0 {
                    continue; // others may be waiting behind them
                }
                let until = deadline.min(now + self.inner.poll_interval);
                let _ = tokio::time::timeout_at(until, rung).await;
            }
        })
    }

    fn delete<'a>(&'a self, receipts: &'a [Receipt]) -> BoxFuture<'a, Result<(), QueueError>> {
        Box::pin(async move {
            let mut ids = Vec::with_capacity(receipts.len());
            let mut counts = Vec::with_capacity(receipts.len());
            let mut stale = Vec::new();
            for receipt in receipts {
                match parse_receipt(receipt) {
                    Ok((id, count)) => {
                        ids.push(id);
                        counts.push(count);
                    }
                    Err(_) => stale.push(receipt.0.clone()),
                }
            }
            if !ids.is_empty() {
                let (ids, counts) = (&ids, &counts);
                let rows = self
                    .call("deleting", |client| async move {
                        let statement = client.prepare_cached(queries::DELETE).await?;
                        client
                            .query(&statement, &[&self.inner.name, ids, counts])
                            .await
                    })
                    .await?;
                if self.inner.fifo {
                    // The next message of a group may be receivable now.
                    self.inner.rung.notify_waiters();
                }
                let deleted: std::collections::HashSet<i64> =
                    rows.iter().map(|row| row.get(0)).collect();
                stale.extend(
                    ids.iter()
                        .zip(counts)
                        .filter(|(id, _)| !deleted.contains(id))
                        .map(|(id, count)| format!("{id}:{count}")),
                );
            }
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
            let (id, count) = parse_receipt(receipt)?;
            let seconds = visibility.as_secs_f64();
            let changed = self
                .call("changing visibility", |client| async move {
                    let statement = client.prepare_cached(queries::CHANGE_VISIBILITY).await?;
                    client
                        .execute(&statement, &[&self.inner.name, &id, &count, &seconds])
                        .await
                })
                .await?;
            if changed == 0 {
                return Err(QueueError::StaleReceipt(receipt.0.clone()));
            }
            if visibility.is_zero() {
                self.inner.rung.notify_waiters();
            }
            Ok(())
        })
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
            let seconds = delay.as_secs_f64();
            self.with_failure("retrying", queries::RETRY, message, &seconds, failure)
                .await
        })
    }

    fn dead_letter<'a>(
        &'a self,
        message: &'a ReceivedMessage,
        failure: &'a Failure,
    ) -> BoxFuture<'a, Result<(), QueueError>> {
        Box::pin(async move {
            let reason = failure.reason();
            self.with_failure(
                "dead-lettering",
                queries::DEAD_LETTER,
                message,
                &reason,
                failure,
            )
            .await?;
            if self.inner.fifo {
                self.inner.rung.notify_waiters();
            }
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests;

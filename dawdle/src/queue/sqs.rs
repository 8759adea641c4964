//! Amazon SQS through aws-sdk-sqs: standard and FIFO queues.

mod admin;

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use aws_sdk_sqs::config::http::HttpResponse;
use aws_sdk_sqs::config::timeout::TimeoutConfig;
use aws_sdk_sqs::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};
use aws_sdk_sqs::operation::get_queue_attributes::{
    GetQueueAttributesError, GetQueueAttributesOutput,
};
use aws_sdk_sqs::operation::send_message_batch::{SendMessageBatchError, SendMessageBatchOutput};
use aws_sdk_sqs::types::{
    DeleteMessageBatchRequestEntry, MessageAttributeValue, MessageSystemAttributeName,
    QueueAttributeName, SendMessageBatchRequestEntry,
};
use aws_sdk_sqs::Client;
use tokio::time::Instant;

use super::{
    BoxFuture, Failure, OutgoingMessage, Queue, QueueAdmin, QueueError, Receipt, ReceivedMessage,
    Retention, SendOutcome, REDRIVE_BACKOFF, SQS_MAX_MESSAGE_BYTES,
};

/// Send attempts for the entries of one call that failed for a transient reason.
const SEND_ATTEMPTS: u32 = 4;

/// SQS's longest `MessageRetentionPeriod`, 14 days: what a queue whose
/// attributes cannot be read is taken to keep.
const MAX_RETENTION: Duration = Duration::from_secs(14 * 24 * 3600);

/// How long a [`Retention`] read from SQS is used before it is read again:
/// SQS itself takes up to 15 minutes to apply a new retention period.
const RETENTION_REREAD: Duration = Duration::from_secs(300);

/// An Amazon SQS queue (standard, or FIFO when its URL ends in `.fifo`).
///
/// Sends use SendMessageBatch and retry only the entries that failed, with
/// backoff; receives long-poll (up to 20 s) and ask for the receive count.
/// Configure the dead-letter queue with the queue's redrive policy.
///
/// Every call has an [operation timeout](SqsQueueBuilder::operation_timeout)
/// and an [attempt timeout](SqsQueueBuilder::attempt_timeout) (a receive
/// also its long-poll wait): a call to an endpoint that stopped answering
/// fails as [`QueueError::Unavailable`], which the watcher and the listener
/// retry with backoff, so a hung call cannot freeze either of them, nor hold
/// the watcher's leadership.
///
/// At its first send it reads the queue's `MaximumMessageSize`
/// (`sqs:GetQueueAttributes`) and never sends a message larger than that:
/// such a message is refused without a call, and the watcher sends its
/// events by reference.
///
/// Its [`retention`](Queue::retention), which the rows of by-reference
/// events wait for, is the queue's `MessageRetentionPeriod` plus the
/// longest of its dead-letter queues' (the one its `RedrivePolicy` names,
/// and [`dead_letter_queue`](SqsQueueBuilder::dead_letter_queue)): a
/// message can spend its whole retention in the queue before it moves to
/// a dead-letter queue, where a FIFO queue's message and one that a
/// listener dead-letters start their retention anew (a standard queue's
/// moved by the redrive policy keeps its first enqueue time, so this is
/// more than it needs). A message redriven from a dead-letter queue by
/// hand later than that finds its rows gone. Read with
/// `sqs:GetQueueAttributes` (and `sqs:GetQueueUrl` for the redrive
/// policy's queue) every five minutes; a queue whose attributes cannot be
/// read counts as keeping messages 14 days, SQS's longest.
///
/// Its [`QueueAdmin`] ([`Queue::admin`]) tells the queue's approximate
/// counts (`sqs:GetQueueAttributes`), and works on the messages of its
/// [dead-letter queue](SqsQueue::dead_letter_queue_url) by receive, send
/// and delete (`sqs:ReceiveMessage`, `sqs:ChangeMessageVisibility`,
/// `sqs:DeleteMessage` on it, `sqs:SendMessage` on this queue to redrive):
/// a listing receives every message (up to 1000), hiding them for a
/// minute at most and making them visible again at once, so each listing
/// adds one to their receive counts. Dead letters are named by their SQS
/// message ids.
#[derive(Debug, Clone)]
pub struct SqsQueue {
    client: Client,
    url: String,
    dead_letter_url: Option<String>,
    fifo: bool,
    max_message_bytes: usize,
    operation_timeout: Duration,
    attempt_timeout: Duration,
    /// The queue's `MaximumMessageSize` as read at the first send (0 until
    /// then, or after SQS refused a call for its size), shared by clones.
    queue_max_bytes: Arc<AtomicUsize>,
    /// What the queue's attributes say, as last read, and when, shared by clones.
    facts: Arc<Mutex<Option<(Facts, Instant)>>>,
}

/// What the listener and the watcher need of the queue's attributes.
#[derive(Debug, Clone)]
struct Facts {
    /// See [`Queue::retention`].
    retention: Duration,
    /// The redrive policy's `maxReceiveCount`.
    max_receives: Option<u32>,
    /// The URL of the redrive policy's dead-letter queue.
    dead_letter_url: Option<String>,
}

/// The message attribute that carries a message's [`Failure`] as JSON.
pub const FAILURE_ATTRIBUTE: &str = "dawdle_failure";

/// The message attribute that carries why a message was dead-lettered.
pub const REASON_ATTRIBUTE: &str = "dawdle_reason";

/// Settings of an [`SqsQueue`].
#[derive(Debug, Clone)]
pub struct SqsQueueBuilder {
    queue: SqsQueue,
}

impl SqsQueueBuilder {
    /// [`operation_timeout`](Self::operation_timeout)'s default: the limit
    /// of one call, retries included.
    pub const DEFAULT_OPERATION_TIMEOUT: Duration = Duration::from_secs(10);

    /// [`attempt_timeout`](Self::attempt_timeout)'s default: the limit of
    /// one attempt of a call.
    pub const DEFAULT_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);

    /// The largest message body to send, at most SQS's 1 MiB (the default).
    /// The queue's own `MaximumMessageSize` applies too, when it is lower.
    pub fn max_message_bytes(mut self, bytes: usize) -> Self {
        self.queue.max_message_bytes = bytes.clamp(1024, SQS_MAX_MESSAGE_BYTES);
        self
    }

    /// Where listeners move messages that can never be handled (not a
    /// dawdle message, an unknown table, a row that does not decode): at
    /// once, with the reason as the message attribute `dawdle_reason`.
    /// Without it, such a message is hidden for 10 s each time it is
    /// received, until the queue's redrive policy moves it after its
    /// maximum receive count.
    pub fn dead_letter_queue(mut self, url: impl Into<String>) -> Self {
        self.queue.dead_letter_url = Some(url.into());
        self
    }

    /// Whether the queue is FIFO; by default, whether its URL ends in `.fifo`.
    pub fn fifo(mut self, fifo: bool) -> Self {
        self.queue.fifo = fifo;
        self
    }

    /// The longest one call to SQS may take, the SDK's retries included
    /// (default 10 s); a receive may take its long-poll wait on top. A call
    /// that takes longer fails as [`QueueError::Unavailable`].
    pub fn operation_timeout(mut self, timeout: Duration) -> Self {
        self.queue.operation_timeout = timeout;
        self
    }

    /// The longest one attempt of a call may take before the SDK tries
    /// again, within the operation timeout (default 5 s); a receive may take
    /// its long-poll wait on top.
    pub fn attempt_timeout(mut self, timeout: Duration) -> Self {
        self.queue.attempt_timeout = timeout;
        self
    }

    /// The queue.
    pub fn build(self) -> SqsQueue {
        self.queue
    }
}

impl SqsQueue {
    /// The queue at `url`, through `client`.
    pub fn new(client: Client, url: impl Into<String>) -> SqsQueue {
        SqsQueue::builder(client, url).build()
    }

    /// Settings for the queue at `url`.
    pub fn builder(client: Client, url: impl Into<String>) -> SqsQueueBuilder {
        let url = url.into();
        SqsQueueBuilder {
            queue: SqsQueue {
                client,
                fifo: url.ends_with(".fifo"),
                url,
                dead_letter_url: None,
                max_message_bytes: SQS_MAX_MESSAGE_BYTES,
                operation_timeout: SqsQueueBuilder::DEFAULT_OPERATION_TIMEOUT,
                attempt_timeout: SqsQueueBuilder::DEFAULT_ATTEMPT_TIMEOUT,
                queue_max_bytes: Arc::default(),
                facts: Arc::default(),
            },
        }
    }

    /// A client from aws-config's standard chain (environment, profile,
    /// instance role; `AWS_ENDPOINT_URL` for emulators), optionally pointed at
    /// `endpoint`.
    pub async fn client_from_env(endpoint: Option<&str>) -> Client {
        let mut loader = aws_config::defaults(aws_config::BehaviorVersion::latest());
        if let Some(endpoint) = endpoint {
            loader = loader.endpoint_url(endpoint);
        }
        Client::new(&loader.load().await)
    }

    /// The queue's URL.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The underlying client, without the queue's timeouts (they are set on
    /// each call).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// The queue's timeouts for one call that may take `extra` longer (a
    /// long poll), over the client's other timeout settings (its connect
    /// timeout).
    fn timeouts(&self, extra: Duration) -> aws_sdk_sqs::config::Builder {
        let mut timeouts = TimeoutConfig::builder()
            .operation_timeout(self.operation_timeout + extra)
            .operation_attempt_timeout(self.attempt_timeout + extra)
            .build();
        if let Some(client) = self.client.config().timeout_config() {
            timeouts.take_defaults_from(client);
        }
        aws_sdk_sqs::Config::builder().timeout_config(timeouts)
    }

    /// A failed call, as a transient error that names the timeout when it
    /// was one.
    fn unavailable<E, R>(&self, call: &str, extra: Duration, error: SdkError<E, R>) -> QueueError
    where
        E: std::error::Error + 'static,
        R: std::fmt::Debug,
    {
        match error {
            SdkError::TimeoutError(_) => QueueError::Unavailable(format!(
                "{call} timed out (attempt timeout {:?}, operation timeout {:?})",
                self.attempt_timeout + extra,
                self.operation_timeout + extra
            )),
            error => QueueError::Unavailable(format!("{call}: {}", DisplayErrorContext(error))),
        }
    }

    /// The largest message to send: `max_message_bytes`, or the queue's
    /// `MaximumMessageSize` when that is lower, read at the first send.
    async fn limit(&self) -> Result<usize, QueueError> {
        let known = self.queue_max_bytes.load(Ordering::Relaxed);
        if known > 0 {
            return Ok(known.min(self.max_message_bytes));
        }
        let name = QueueAttributeName::MaximumMessageSize;
        let queue_max = match self
            .attributes(&self.url, std::slice::from_ref(&name))
            .await?
        {
            Some(attributes) => attributes
                .get(&name)
                .and_then(|bytes| bytes.parse().ok())
                .unwrap_or(SQS_MAX_MESSAGE_BYTES),
            None => {
                tracing::warn!(
                    "could not read the queue's MaximumMessageSize; sending messages up to max_message_bytes"
                );
                SQS_MAX_MESSAGE_BYTES
            }
        };
        let queue_max = queue_max.max(1);
        self.queue_max_bytes.store(queue_max, Ordering::Relaxed);
        Ok(queue_max.min(self.max_message_bytes))
    }

    /// One `GetQueueAttributes` call for the queue at `url`, within the
    /// queue's timeouts.
    async fn get_attributes(
        &self,
        url: &str,
        names: &[QueueAttributeName],
    ) -> Result<GetQueueAttributesOutput, SdkError<GetQueueAttributesError, HttpResponse>> {
        self.client
            .get_queue_attributes()
            .queue_url(url)
            .set_attribute_names(Some(names.to_vec()))
            .customize()
            .config_override(self.timeouts(Duration::ZERO))
            .send()
            .await
    }

    /// Attributes of the queue at `url`; `None` when SQS refuses to tell
    /// for good (no `sqs:GetQueueAttributes`, say).
    async fn attributes(
        &self,
        url: &str,
        names: &[QueueAttributeName],
    ) -> Result<Option<HashMap<QueueAttributeName, String>>, QueueError> {
        match self.get_attributes(url, names).await {
            Ok(output) => Ok(Some(output.attributes.unwrap_or_default())),
            Err(error)
                if refused_for_good(&error, |e| {
                    e.is_queue_does_not_exist() || e.is_request_throttled()
                }) =>
            {
                tracing::warn!(
                    queue = url,
                    error = %DisplayErrorContext(error),
                    "could not read the queue's attributes"
                );
                Ok(None)
            }
            Err(error) => Err(self.unavailable("GetQueueAttributes", Duration::ZERO, error)),
        }
    }

    /// The queue's `MessageRetentionPeriod`, its `RedrivePolicy`'s
    /// `maxReceiveCount`, and the URL of the dead-letter queue that policy
    /// names; `None` when they cannot be read.
    async fn own_retention(&self) -> Result<Option<OwnFacts>, QueueError> {
        let (period, policy) = (
            QueueAttributeName::MessageRetentionPeriod,
            QueueAttributeName::RedrivePolicy,
        );
        let Some(attributes) = self
            .attributes(&self.url, &[period.clone(), policy.clone()])
            .await?
        else {
            return Ok(None);
        };
        let retention = seconds(attributes.get(&period));
        let policy = attributes
            .get(&policy)
            .and_then(|policy| serde_json::from_str::<serde_json::Value>(policy).ok());
        // SQS gives the count as a number, some emulators as a string.
        let max_receives = policy.as_ref().and_then(|policy| {
            let count = &policy["maxReceiveCount"];
            count
                .as_u64()
                .or_else(|| count.as_str()?.parse().ok())
                .and_then(|n| u32::try_from(n).ok())
        });
        let Some(arn) = policy
            .as_ref()
            .and_then(|policy| policy["deadLetterTargetArn"].as_str().map(str::to_owned))
        else {
            return Ok(Some((retention, max_receives, None)));
        };
        // arn:aws:sqs:region:account:name
        let mut parts = arn.rsplitn(3, ':');
        let (Some(name), Some(account)) = (parts.next(), parts.next()) else {
            tracing::warn!(%arn, "the queue's redrive policy names no SQS queue");
            return Ok(Some((retention, max_receives, None)));
        };
        let result = self
            .client
            .get_queue_url()
            .queue_name(name)
            .queue_owner_aws_account_id(account)
            .customize()
            .config_override(self.timeouts(Duration::ZERO))
            .send()
            .await;
        match result {
            Ok(output) => Ok(Some((retention, max_receives, output.queue_url))),
            Err(error)
                if refused_for_good(&error, |e| {
                    e.is_queue_does_not_exist() || e.is_request_throttled()
                }) =>
            {
                tracing::warn!(
                    %arn,
                    error = %DisplayErrorContext(error),
                    "could not find the redrive policy's dead-letter queue; counting 14 days for it"
                );
                Ok(Some((retention + MAX_RETENTION, max_receives, None)))
            }
            Err(error) => Err(self.unavailable("GetQueueUrl", Duration::ZERO, error)),
        }
    }

    /// The queue's [`Facts`], read again every [`RETENTION_REREAD`].
    async fn facts(&self) -> Result<Facts, QueueError> {
        let cached = self.facts.lock().unwrap_or_else(|e| e.into_inner()).clone();
        if let Some((facts, read_at)) = cached {
            if read_at.elapsed() < RETENTION_REREAD {
                return Ok(facts);
            }
        }
        let facts = self.read_facts().await?;
        *self.facts.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((facts.clone(), Instant::now()));
        Ok(facts)
    }

    /// The queue's [`Facts`], read now. Its retention is how long a message
    /// can still be delivered: see [`SqsQueue`].
    async fn read_facts(&self) -> Result<Facts, QueueError> {
        let Some((own, max_receives, redrive_dlq)) = self.own_retention().await? else {
            return Ok(Facts {
                retention: MAX_RETENTION * 2,
                max_receives: None,
                dead_letter_url: None,
            });
        };
        let mut longest_dlq = Duration::ZERO;
        for dlq in redrive_dlq.iter().chain(&self.dead_letter_url) {
            let period = QueueAttributeName::MessageRetentionPeriod;
            let retention = match self.attributes(dlq, std::slice::from_ref(&period)).await? {
                Some(attributes) => seconds(attributes.get(&period)),
                None => MAX_RETENTION,
            };
            longest_dlq = longest_dlq.max(retention);
        }
        Ok(Facts {
            retention: own + longest_dlq,
            max_receives,
            dead_letter_url: redrive_dlq,
        })
    }

    /// One SendMessageBatch of the messages at `indices`. A call SQS refuses
    /// as a whole for what its messages are is `Refused`; any other failure
    /// is `Unavailable`.
    async fn send_batch(
        &self,
        messages: &[OutgoingMessage],
        indices: &[usize],
    ) -> Result<SendMessageBatchOutput, QueueError> {
        let entries = indices
            .iter()
            .map(|&i| {
                let m = &messages[i];
                let mut entry = SendMessageBatchRequestEntry::builder()
                    .id(i.to_string())
                    .message_body(&m.body)
                    .set_message_group_id(m.group_id.clone().filter(|_| self.fifo))
                    .set_message_deduplication_id(m.dedup_id.clone().filter(|_| self.fifo));
                if !m.delay.is_zero() && !self.fifo {
                    // SQS delays a message by at most 15 minutes.
                    entry = entry.delay_seconds(m.delay.as_secs_f64().ceil().min(900.0) as i32);
                }
                if let Some(failure) = &m.failure {
                    entry =
                        entry.message_attributes(FAILURE_ATTRIBUTE, failure_attribute(failure)?);
                }
                entry
                    .build()
                    .map_err(|e| QueueError::Refused(e.to_string()))
            })
            .collect::<Result<Vec<_>, _>>()?;
        self.client
            .send_message_batch()
            .queue_url(&self.url)
            .set_entries(Some(entries))
            .customize()
            .config_override(self.timeouts(Duration::ZERO))
            .send()
            .await
            .map_err(|error| match refusal(&error) {
                Some(reason) => QueueError::Refused(reason),
                None => self.unavailable("SendMessageBatch", Duration::ZERO, error),
            })
    }

    /// After SQS refused a whole call for what one of its messages is (too
    /// long for a queue whose `MaximumMessageSize` was lowered since it was
    /// read, or content it does not take), sends each message alone rather
    /// than the same call again: only those refused on their own come back
    /// refused, and go by reference.
    async fn send_each(
        &self,
        messages: &[OutgoingMessage],
        pending: &[usize],
        reason: String,
        outcome: &mut SendOutcome,
    ) {
        // Read the limit again at the next send.
        self.queue_max_bytes.store(0, Ordering::Relaxed);
        if let [index] = pending {
            outcome.failed.push((*index, QueueError::Refused(reason)));
            return;
        }
        tracing::warn!(
            %reason,
            messages = pending.len(),
            "SQS refused a whole SendMessageBatch; sending its messages one by one"
        );
        for (n, &index) in pending.iter().enumerate() {
            match self.send(std::slice::from_ref(&messages[index])).await {
                Ok(one) => {
                    if !one.accepted.is_empty() {
                        outcome.accepted.push(index);
                    }
                    outcome
                        .failed
                        .extend(one.failed.into_iter().map(|(_, error)| (index, error)));
                }
                Err(error) => {
                    // The queue failed: the rest waits, as after any failure.
                    outcome
                        .failed
                        .extend(pending[n..].iter().map(|&i| (i, error.clone())));
                    return;
                }
            }
        }
    }
}

/// The [`FAILURE_ATTRIBUTE`] of a received message, when it has one that
/// reads as a [`Failure`].
pub(crate) fn failure_of(message: &aws_sdk_sqs::types::Message) -> Option<Failure> {
    let value = message.message_attributes()?.get(FAILURE_ATTRIBUTE)?;
    serde_json::from_str(value.string_value()?).ok()
}

/// The queue's retention, its redrive policy's `maxReceiveCount` and the
/// URL of that policy's dead-letter queue.
type OwnFacts = (Duration, Option<u32>, Option<String>);

/// A string message attribute.
fn string_attribute(value: impl Into<String>) -> Result<MessageAttributeValue, QueueError> {
    MessageAttributeValue::builder()
        .data_type("String")
        .string_value(value)
        .build()
        .map_err(|e| QueueError::Refused(e.to_string()))
}

/// `failure` as the value of its [`FAILURE_ATTRIBUTE`]: JSON.
fn failure_attribute(failure: &Failure) -> Result<MessageAttributeValue, QueueError> {
    let json = serde_json::to_string(failure)
        .map_err(|e| QueueError::Refused(format!("the failure as JSON: {e}")))?;
    string_attribute(json)
}

/// Whether SQS refused a call for good (a client error that `may_pass`
/// does not call passing, as a missing queue or throttling): asking again
/// will not help.
fn refused_for_good<E>(error: &SdkError<E, HttpResponse>, may_pass: impl Fn(&E) -> bool) -> bool {
    error.as_service_error().is_some_and(|e| !may_pass(e))
        && error
            .raw_response()
            .is_some_and(|r| r.status().is_client_error())
}

/// A queue attribute of seconds; SQS's default retention, 4 days, when it
/// is missing.
fn seconds(value: Option<&String>) -> Duration {
    Duration::from_secs(value.and_then(|s| s.parse().ok()).unwrap_or(4 * 24 * 3600))
}

/// Why SQS refused a whole SendMessageBatch for what its messages are, if
/// that is why: retrying the same call would be refused again.
fn refusal<R>(error: &SdkError<SendMessageBatchError, R>) -> Option<String> {
    let error = error.as_service_error()?;
    let code = error.code().unwrap_or_default();
    // Query-compatible codes carry a prefix (`AWS.SimpleQueueService.`).
    let for_content = error.is_batch_request_too_long()
        || code.ends_with("InvalidParameterValue")
        || code.ends_with("InvalidMessageContents");
    for_content.then(|| format!("{code}: {}", error.message().unwrap_or_default()))
}

impl Queue for SqsQueue {
    fn admin(&self) -> Option<&dyn QueueAdmin> {
        Some(self)
    }

    fn max_receives(&self) -> BoxFuture<'_, Result<Option<u32>, QueueError>> {
        Box::pin(async move { Ok(self.facts().await?.max_receives) })
    }

    /// Sends the message to the [dead-letter
    /// queue](SqsQueueBuilder::dead_letter_queue), else to the one the
    /// queue's redrive policy names, with the reason and the failure as
    /// message attributes ([`REASON_ATTRIBUTE`], [`FAILURE_ATTRIBUTE`]),
    /// then deletes it here. With neither, it stays hidden for ten seconds
    /// each time, until the redrive policy moves it.
    fn dead_letter<'a>(
        &'a self,
        message: &'a ReceivedMessage,
        failure: &'a Failure,
    ) -> BoxFuture<'a, Result<(), QueueError>> {
        Box::pin(async move {
            let redrive_dlq = match &self.dead_letter_url {
                Some(_) => None,
                None => self.facts().await?.dead_letter_url,
            };
            let Some(dlq) = self.dead_letter_url.as_ref().or(redrive_dlq.as_ref()) else {
                // Not visible again at once: the listener would receive it
                // straight back and spin on it (holding up its FIFO group)
                // until the redrive policy moves it.
                return self
                    .change_visibility(&message.receipt, REDRIVE_BACKOFF)
                    .await;
            };
            let mut request = self
                .client
                .send_message()
                .queue_url(dlq)
                .message_body(&message.body)
                .message_attributes(
                    REASON_ATTRIBUTE,
                    string_attribute(failure.reason().chars().take(1000).collect::<String>())?,
                )
                .message_attributes(FAILURE_ATTRIBUTE, failure_attribute(failure)?);
            if dlq.ends_with(".fifo") {
                request = request
                    .message_group_id("dawdle-dead-letters")
                    .message_deduplication_id(&message.message_id);
            }
            request
                .customize()
                .config_override(self.timeouts(Duration::ZERO))
                .send()
                .await
                .map_err(|e| self.unavailable("SendMessage (dead letter)", Duration::ZERO, e))?;
            self.delete(std::slice::from_ref(&message.receipt)).await
        })
    }

    fn max_message_bytes(&self) -> usize {
        match self.queue_max_bytes.load(Ordering::Relaxed) {
            0 => self.max_message_bytes,
            queue_max => queue_max.min(self.max_message_bytes),
        }
    }

    fn is_fifo(&self) -> bool {
        self.fifo
    }

    fn retention(&self) -> BoxFuture<'_, Result<Retention, QueueError>> {
        Box::pin(async move { Ok(Retention::AtMost(self.facts().await?.retention)) })
    }

    fn send<'a>(
        &'a self,
        messages: &'a [OutgoingMessage],
    ) -> BoxFuture<'a, Result<SendOutcome, QueueError>> {
        Box::pin(async move {
            let limit = self.limit().await?;
            let mut outcome = SendOutcome::default();
            // SQS would refuse the whole call for one of these.
            let mut pending = Vec::with_capacity(messages.len());
            for (index, message) in messages.iter().enumerate() {
                if message.body.len() > limit {
                    let reason = format!(
                        "a message of {} bytes is larger than the queue's limit of {limit} bytes",
                        message.body.len()
                    );
                    outcome.failed.push((index, QueueError::Refused(reason)));
                } else {
                    pending.push(index);
                }
            }
            let mut delay = Duration::from_millis(50);
            for attempt in 1..=SEND_ATTEMPTS {
                if pending.is_empty() {
                    break;
                }
                let output = match self.send_batch(messages, &pending).await {
                    Ok(output) => output,
                    Err(QueueError::Refused(reason)) => {
                        self.send_each(messages, &pending, reason, &mut outcome)
                            .await;
                        break;
                    }
                    // Nothing is known to be sent: the caller keeps the events.
                    Err(error) if outcome.accepted.is_empty() => return Err(error),
                    Err(error) => {
                        outcome
                            .failed
                            .extend(pending.iter().map(|&i| (i, error.clone())));
                        break;
                    }
                };
                outcome.accepted.extend(
                    output
                        .successful()
                        .iter()
                        .filter_map(|s| s.id().parse::<usize>().ok()),
                );
                let mut retry = Vec::new();
                for failed in output.failed() {
                    let Ok(index) = failed.id().parse::<usize>() else {
                        continue;
                    };
                    let reason = format!(
                        "{}: {}",
                        failed.code(),
                        failed.message().unwrap_or_default()
                    );
                    if failed.sender_fault() {
                        outcome.failed.push((index, QueueError::Refused(reason)));
                    } else if attempt == SEND_ATTEMPTS {
                        outcome
                            .failed
                            .push((index, QueueError::Unavailable(reason)));
                    } else {
                        retry.push(index);
                    }
                }
                if retry.is_empty() {
                    break;
                }
                tracing::debug!(
                    entries = retry.len(),
                    attempt,
                    "retrying failed SendMessageBatch entries"
                );
                tokio::time::sleep(delay).await;
                delay *= 2;
                pending = retry;
            }
            outcome.accepted.sort_unstable();
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
            let wait = Duration::from_secs(wait.as_secs().min(20));
            let output = self
                .client
                .receive_message()
                .queue_url(&self.url)
                .max_number_of_messages(max.clamp(1, 10) as i32)
                .wait_time_seconds(wait.as_secs() as i32)
                .visibility_timeout(visibility.as_secs_f64().ceil().clamp(0.0, 43_200.0) as i32)
                .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
                .message_system_attribute_names(MessageSystemAttributeName::MessageGroupId)
                .message_attribute_names(FAILURE_ATTRIBUTE)
                .customize()
                // The long poll is no reason to give up.
                .config_override(self.timeouts(wait))
                .send()
                .await
                .map_err(|e| self.unavailable("ReceiveMessage", wait, e))?;
            Ok(output
                .messages()
                .iter()
                .filter_map(|m| {
                    let receive_count = m
                        .attributes()
                        .and_then(|a| a.get(&MessageSystemAttributeName::ApproximateReceiveCount))
                        .and_then(|c| c.parse().ok())
                        .unwrap_or(1);
                    let group_id = m
                        .attributes()
                        .and_then(|a| a.get(&MessageSystemAttributeName::MessageGroupId))
                        .cloned();
                    Some(ReceivedMessage {
                        body: m.body()?.to_owned(),
                        receipt: Receipt(m.receipt_handle()?.to_owned()),
                        receive_count,
                        message_id: m.message_id().unwrap_or_default().to_owned(),
                        group_id,
                        failure: failure_of(m),
                    })
                })
                .collect())
        })
    }

    fn delete<'a>(&'a self, receipts: &'a [Receipt]) -> BoxFuture<'a, Result<(), QueueError>> {
        Box::pin(async move {
            for chunk in receipts.chunks(10) {
                let entries = chunk
                    .iter()
                    .enumerate()
                    .map(|(i, r)| {
                        DeleteMessageBatchRequestEntry::builder()
                            .id(i.to_string())
                            .receipt_handle(&r.0)
                            .build()
                            .map_err(|e| QueueError::Refused(e.to_string()))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                let output = self
                    .client
                    .delete_message_batch()
                    .queue_url(&self.url)
                    .set_entries(Some(entries))
                    .customize()
                    .config_override(self.timeouts(Duration::ZERO))
                    .send()
                    .await
                    .map_err(|e| self.unavailable("DeleteMessageBatch", Duration::ZERO, e))?;
                if let Some(failed) = output.failed().first() {
                    let reason = format!(
                        "{}: {}",
                        failed.code(),
                        failed.message().unwrap_or_default()
                    );
                    return Err(if failed.code() == "ReceiptHandleIsInvalid" {
                        QueueError::StaleReceipt(reason)
                    } else {
                        QueueError::Unavailable(reason)
                    });
                }
            }
            Ok(())
        })
    }

    fn change_visibility<'a>(
        &'a self,
        receipt: &'a Receipt,
        visibility: Duration,
    ) -> BoxFuture<'a, Result<(), QueueError>> {
        Box::pin(async move {
            self.client
                .change_message_visibility()
                .queue_url(&self.url)
                .receipt_handle(&receipt.0)
                .visibility_timeout(visibility.as_secs_f64().ceil().clamp(0.0, 43_200.0) as i32)
                .customize()
                .config_override(self.timeouts(Duration::ZERO))
                .send()
                .await
                .map_err(|e| self.unavailable("ChangeMessageVisibility", Duration::ZERO, e))?;
            Ok(())
        })
    }
}

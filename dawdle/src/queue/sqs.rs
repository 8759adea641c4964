//! Amazon SQS through aws-sdk-sqs: standard and FIFO queues.

use std::time::Duration;

use aws_sdk_sqs::error::{DisplayErrorContext, SdkError};
use aws_sdk_sqs::types::{
    DeleteMessageBatchRequestEntry, MessageSystemAttributeName, SendMessageBatchRequestEntry,
};
use aws_sdk_sqs::Client;

use super::{
    BoxFuture, OutgoingMessage, Queue, QueueError, Receipt, ReceivedMessage, SendOutcome,
    SQS_MAX_MESSAGE_BYTES,
};

/// Send attempts for the entries of one call that failed for a transient reason.
const SEND_ATTEMPTS: u32 = 4;

/// An Amazon SQS queue (standard, or FIFO when its URL ends in `.fifo`).
///
/// Sends use SendMessageBatch and retry only the entries that failed, with
/// backoff; receives long-poll (up to 20 s) and ask for the receive count.
/// Configure the dead-letter queue with the queue's redrive policy.
#[derive(Debug, Clone)]
pub struct SqsQueue {
    client: Client,
    url: String,
    dead_letter_url: Option<String>,
    fifo: bool,
    max_message_bytes: usize,
}

/// Settings of an [`SqsQueue`].
#[derive(Debug, Clone)]
pub struct SqsQueueBuilder {
    queue: SqsQueue,
}

impl SqsQueueBuilder {
    /// The largest message body to send, at most SQS's 1 MiB (the default).
    /// Set it to the queue's `MaximumMessageSize` if that is lower.
    pub fn max_message_bytes(mut self, bytes: usize) -> Self {
        self.queue.max_message_bytes = bytes.clamp(1024, SQS_MAX_MESSAGE_BYTES);
        self
    }

    /// Where listeners move messages that can never be handled (not a
    /// dawdle message, an unknown table, a row that does not decode): at
    /// once, with the reason as the message attribute `dawdle_reason`.
    /// Without it, such a message is made visible again until the queue's
    /// redrive policy moves it after its maximum receive count.
    pub fn dead_letter_queue(mut self, url: impl Into<String>) -> Self {
        self.queue.dead_letter_url = Some(url.into());
        self
    }

    /// Whether the queue is FIFO; by default, whether its URL ends in `.fifo`.
    pub fn fifo(mut self, fifo: bool) -> Self {
        self.queue.fifo = fifo;
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

    /// The underlying client.
    pub fn client(&self) -> &Client {
        &self.client
    }
}

fn unavailable<E: std::error::Error + 'static, R: std::fmt::Debug>(
    error: SdkError<E, R>,
) -> QueueError {
    QueueError::Unavailable(DisplayErrorContext(error).to_string())
}

impl Queue for SqsQueue {
    fn dead_letter<'a>(
        &'a self,
        message: &'a ReceivedMessage,
        reason: &'a str,
    ) -> BoxFuture<'a, Result<(), QueueError>> {
        Box::pin(async move {
            let Some(dlq) = &self.dead_letter_url else {
                return self
                    .change_visibility(&message.receipt, Duration::ZERO)
                    .await;
            };
            let mut request = self
                .client
                .send_message()
                .queue_url(dlq)
                .message_body(&message.body)
                .message_attributes(
                    "dawdle_reason",
                    aws_sdk_sqs::types::MessageAttributeValue::builder()
                        .data_type("String")
                        .string_value(reason.chars().take(1000).collect::<String>())
                        .build()
                        .map_err(|e| QueueError::Refused(e.to_string()))?,
                );
            if dlq.ends_with(".fifo") {
                request = request
                    .message_group_id("dawdle-dead-letters")
                    .message_deduplication_id(&message.message_id);
            }
            request.send().await.map_err(unavailable)?;
            self.delete(std::slice::from_ref(&message.receipt)).await
        })
    }

    fn max_message_bytes(&self) -> usize {
        self.max_message_bytes
    }

    fn is_fifo(&self) -> bool {
        self.fifo
    }

    fn send<'a>(
        &'a self,
        messages: &'a [OutgoingMessage],
    ) -> BoxFuture<'a, Result<SendOutcome, QueueError>> {
        Box::pin(async move {
            let mut outcome = SendOutcome::default();
            let mut pending: Vec<usize> = (0..messages.len()).collect();
            let mut delay = Duration::from_millis(50);
            for attempt in 1..=SEND_ATTEMPTS {
                let entries = pending
                    .iter()
                    .map(|&i| {
                        let m = &messages[i];
                        SendMessageBatchRequestEntry::builder()
                            .id(i.to_string())
                            .message_body(&m.body)
                            .set_message_group_id(m.group_id.clone().filter(|_| self.fifo))
                            .set_message_deduplication_id(m.dedup_id.clone().filter(|_| self.fifo))
                            .build()
                            .map_err(|e| QueueError::Refused(e.to_string()))
                    })
                    .collect::<Result<Vec<_>, _>>()?;
                let result = self
                    .client
                    .send_message_batch()
                    .queue_url(&self.url)
                    .set_entries(Some(entries))
                    .send()
                    .await;
                let output = match result {
                    Ok(output) => output,
                    // Nothing is known to be sent: the caller keeps the events.
                    Err(e) if outcome.accepted.is_empty() => return Err(unavailable(e)),
                    Err(e) => {
                        let error = unavailable(e);
                        outcome
                            .failed
                            .extend(pending.iter().map(|&i| (i, error.clone())));
                        return Ok(outcome);
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
            let output = self
                .client
                .receive_message()
                .queue_url(&self.url)
                .max_number_of_messages(max.clamp(1, 10) as i32)
                .wait_time_seconds(wait.as_secs().min(20) as i32)
                .visibility_timeout(visibility.as_secs_f64().ceil().clamp(0.0, 43_200.0) as i32)
                .message_system_attribute_names(MessageSystemAttributeName::ApproximateReceiveCount)
                .message_system_attribute_names(MessageSystemAttributeName::MessageGroupId)
                .send()
                .await
                .map_err(unavailable)?;
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
                    .send()
                    .await
                    .map_err(unavailable)?;
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
                .send()
                .await
                .map_err(unavailable)?;
            Ok(())
        })
    }
}

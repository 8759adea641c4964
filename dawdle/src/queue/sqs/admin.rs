//! [`QueueAdmin`] for [`SqsQueue`]: the counts from GetQueueAttributes,
//! and the dead letters of its dead-letter queue by receive, send and
//! delete, not SQS's message move tasks, which emulators lack and which
//! cannot pick messages by id.
//!
//! Listing receives the messages of the dead-letter queue (hiding them for
//! [`HOLD`] at most) and makes them visible again at once: it deletes
//! nothing, but it adds one to each message's receive count. In a FIFO
//! dead-letter queue only the first ten messages of each group can be seen
//! before the earlier ones are redriven or discarded.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_sqs::types::{
    ChangeMessageVisibilityBatchRequestEntry, Message, MessageSystemAttributeName,
    QueueAttributeName,
};
use chrono::{DateTime, Utc};

use super::{failure_of, SqsQueue, REASON_ATTRIBUTE};
use crate::queue::{
    BoxFuture, DeadLetter, DeadLetterOutcome, DeadLetterPage, DeadLetterSelection, OutgoingMessage,
    Queue, QueueAdmin, QueueDepth, QueueError, FAILURE_ATTRIBUTE,
};

/// How long a message of the dead-letter queue that this admin received
/// stays hidden (from listeners, and from its own next receive) while it
/// works; it is made visible again as soon as the work is done.
const HOLD: Duration = Duration::from_secs(60);

/// The most messages a listing looks at in the dead-letter queue: one
/// larger holds more dead letters than [`QueueAdmin::dead_letters`] and
/// [`QueueAdmin::find_dead_letter`] see (a redrive or discard of them all
/// sees every one).
const SCAN_LIMIT: usize = 1000;

/// The long poll of a receive from the dead-letter queue: however short,
/// it asks every SQS server, so that an empty answer means an empty queue.
const POLL: Duration = Duration::from_secs(1);

/// A message received from the dead-letter queue, still hidden.
#[derive(Debug)]
struct Held {
    letter: DeadLetter,
    receipt: String,
    dedup_id: Option<String>,
}

impl Held {
    fn new(message: Message) -> Held {
        let system = |name| {
            message
                .attributes()
                .and_then(|a| a.get(&name))
                .map(String::from)
        };
        let attribute = |name| {
            message
                .message_attributes()
                .and_then(|a| a.get(name))
                .and_then(|v| v.string_value())
                .map(String::from)
        };
        let id = message.message_id().unwrap_or_default().to_owned();
        let failure = failure_of(&message);
        if failure.is_none() && attribute(FAILURE_ATTRIBUTE).is_some() {
            tracing::warn!(message = %id, "{FAILURE_ATTRIBUTE} is not a failure");
        }
        let reason = attribute(REASON_ATTRIBUTE)
            .or_else(|| failure.as_ref().map(|f| f.reason()))
            .or_else(|| {
                system(MessageSystemAttributeName::DeadLetterQueueSourceArn)
                    .map(|arn| format!("moved here by the redrive policy of {arn}"))
            })
            .unwrap_or_else(|| "none recorded: not dead-lettered by a dawdle listener".to_owned());
        let dead_lettered_at = system(MessageSystemAttributeName::SentTimestamp)
            .and_then(|millis| millis.parse().ok())
            .and_then(DateTime::<Utc>::from_timestamp_millis);
        let group_id = system(MessageSystemAttributeName::MessageGroupId);
        let receive_count = system(MessageSystemAttributeName::ApproximateReceiveCount)
            .and_then(|n| n.parse().ok())
            .unwrap_or(0);
        let dedup_id = system(MessageSystemAttributeName::MessageDeduplicationId);
        Held {
            letter: DeadLetter {
                id,
                group_id,
                receive_count,
                reason,
                failure,
                dead_lettered_at,
                body: message.body.unwrap_or_default(),
            },
            receipt: message.receipt_handle.unwrap_or_default(),
            dedup_id,
        }
    }
}

impl SqsQueue {
    /// The dead-letter queue whose messages [`QueueAdmin`] works on: the
    /// [builder's](super::SqsQueueBuilder::dead_letter_queue), else the one
    /// the queue's redrive policy names (read with `sqs:GetQueueAttributes`
    /// and `sqs:GetQueueUrl`, again every five minutes); `None` when there
    /// is neither.
    pub async fn dead_letter_queue_url(&self) -> Result<Option<String>, QueueError> {
        match &self.dead_letter_url {
            Some(url) => Ok(Some(url.clone())),
            None => Ok(self.facts().await?.dead_letter_url),
        }
    }

    /// The approximate counts of the queue at `url`: visible, not visible,
    /// delayed.
    async fn counts(&self, url: &str) -> Result<(u64, u64, u64), QueueError> {
        let names = [
            QueueAttributeName::ApproximateNumberOfMessages,
            QueueAttributeName::ApproximateNumberOfMessagesNotVisible,
            QueueAttributeName::ApproximateNumberOfMessagesDelayed,
        ];
        let output = self
            .get_attributes(url, &names)
            .await
            .map_err(|e| self.unavailable("GetQueueAttributes", Duration::ZERO, e))?;
        let attributes: HashMap<_, _> = output.attributes.unwrap_or_default();
        let count = |name: &QueueAttributeName| -> u64 {
            attributes
                .get(name)
                .and_then(|n| n.parse().ok())
                .unwrap_or(0)
        };
        Ok((count(&names[0]), count(&names[1]), count(&names[2])))
    }

    /// Up to ten messages of the dead-letter queue `dlq`, hidden for
    /// [`HOLD`]; none once it is empty (or, FIFO, every group's next
    /// messages are held).
    async fn receive_dead(&self, dlq: &str) -> Result<Vec<Held>, QueueError> {
        let output = self
            .client
            .receive_message()
            .queue_url(dlq)
            .max_number_of_messages(10)
            .visibility_timeout(HOLD.as_secs() as i32)
            .wait_time_seconds(POLL.as_secs() as i32)
            .message_system_attribute_names(MessageSystemAttributeName::All)
            .message_attribute_names(REASON_ATTRIBUTE)
            .message_attribute_names(FAILURE_ATTRIBUTE)
            .customize()
            .config_override(self.timeouts(POLL))
            .send()
            .await
            .map_err(|e| self.unavailable("ReceiveMessage (dead letters)", POLL, e))?;
        Ok(output
            .messages
            .unwrap_or_default()
            .into_iter()
            .map(Held::new)
            .collect())
    }

    /// Every message of `dlq` up to [`SCAN_LIMIT`], visible again when it
    /// returns, in the order of their ids.
    async fn scan(&self, dlq: &str) -> Result<Vec<DeadLetter>, QueueError> {
        let mut seen = Vec::new();
        let result = async {
            while seen.len() < SCAN_LIMIT {
                let batch = self.receive_dead(dlq).await?;
                if batch.is_empty() {
                    break;
                }
                seen.extend(batch);
            }
            Ok(())
        }
        .await;
        let released = self.release(dlq, &seen).await;
        result.and(released)?;
        let mut letters: Vec<DeadLetter> = seen.into_iter().map(|held| held.letter).collect();
        letters.sort_by(|a, b| a.id.cmp(&b.id));
        // A message received twice (its hold ran out during a long scan) once.
        letters.dedup_by(|a, b| a.id == b.id);
        Ok(letters)
    }

    /// Makes `held` visible again at once.
    async fn release(&self, dlq: &str, held: &[Held]) -> Result<(), QueueError> {
        for chunk in held.chunks(10) {
            let entries = chunk
                .iter()
                .enumerate()
                .map(|(i, held)| {
                    ChangeMessageVisibilityBatchRequestEntry::builder()
                        .id(i.to_string())
                        .receipt_handle(&held.receipt)
                        .visibility_timeout(0)
                        .build()
                        .map_err(|e| QueueError::Refused(e.to_string()))
                })
                .collect::<Result<Vec<_>, _>>()?;
            let output = self
                .client
                .change_message_visibility_batch()
                .queue_url(dlq)
                .set_entries(Some(entries))
                .customize()
                .config_override(self.timeouts(Duration::ZERO))
                .send()
                .await
                .map_err(|e| self.unavailable("ChangeMessageVisibilityBatch", Duration::ZERO, e))?;
            // One whose receipt went stale was received again by someone
            // else, which is as visible as it gets.
            if let Some(failed) = output.failed().iter().find(|f| f.sender_fault()) {
                if failed.code() != "ReceiptHandleIsInvalid" {
                    tracing::warn!(
                        code = failed.code(),
                        message = failed.message().unwrap_or_default(),
                        "could not make a dead letter visible again; it will be after {HOLD:?}"
                    );
                }
            }
        }
        Ok(())
    }

    /// Sends a dead letter's body back to this queue, in its FIFO group and
    /// with its deduplication id where it had them.
    async fn send_back(&self, held: &Held) -> Result<(), QueueError> {
        let letter = &held.letter;
        let mut message = OutgoingMessage::new(letter.body.clone());
        if self.fifo {
            message.group_id = Some(
                letter
                    .group_id
                    .clone()
                    .unwrap_or_else(|| "dawdle-redrive".to_owned()),
            );
            message.dedup_id = Some(held.dedup_id.clone().unwrap_or_else(|| letter.id.clone()));
        }
        let mut outcome = self.send(std::slice::from_ref(&message)).await?;
        match outcome.failed.pop() {
            Some((_, error)) => Err(error),
            None => Ok(()),
        }
    }

    /// Deletes a received dead letter from `dlq`.
    async fn delete_dead(&self, dlq: &str, held: &Held) -> Result<(), QueueError> {
        self.client
            .delete_message()
            .queue_url(dlq)
            .receipt_handle(&held.receipt)
            .customize()
            .config_override(self.timeouts(Duration::ZERO))
            .send()
            .await
            .map_err(|e| self.unavailable("DeleteMessage (dead letter)", Duration::ZERO, e))?;
        Ok(())
    }

    /// Redrives (`redrive`: sends back, then deletes) or discards the dead
    /// letters `which`. The others it receives are made visible again at
    /// the end.
    async fn sweep(
        &self,
        which: DeadLetterSelection<'_>,
        redrive: bool,
    ) -> Result<DeadLetterOutcome, QueueError> {
        let mut wanted: Option<BTreeSet<String>> =
            which.chosen_ids().map(|ids| ids.iter().cloned().collect());
        let Some(dlq) = self.dead_letter_queue_url().await? else {
            let not_found = wanted.unwrap_or_default().into_iter().collect();
            return Ok(DeadLetterOutcome { done: 0, not_found });
        };
        // Every one there now: one dead-lettered again while this runs (a
        // redriven one failing again) is sent later than this, and left.
        let started = Utc::now();
        let mut others = Vec::new();
        let mut done = 0;
        let result = async {
            while wanted.as_ref().is_none_or(|wanted| !wanted.is_empty()) {
                let batch = self.receive_dead(&dlq).await?;
                if batch.is_empty() {
                    break;
                }
                for held in batch {
                    let picked = match &mut wanted {
                        Some(wanted) => wanted.remove(&held.letter.id),
                        None => held.letter.dead_lettered_at.is_none_or(|at| at <= started),
                    };
                    if !picked {
                        others.push(held);
                        continue;
                    }
                    if redrive {
                        self.send_back(&held).await?;
                    }
                    self.delete_dead(&dlq, &held).await?;
                    done += 1;
                    which.report(1);
                }
            }
            Ok(())
        }
        .await;
        let released = self.release(&dlq, &others).await;
        result.and(released)?;
        Ok(DeadLetterOutcome {
            done,
            not_found: wanted.unwrap_or_default().into_iter().collect(),
        })
    }
}

impl QueueAdmin for SqsQueue {
    fn name(&self) -> &str {
        &self.url
    }

    /// The queue's `ApproximateNumberOfMessages`, `...NotVisible` and
    /// `...Delayed`, and its dead-letter queue's visible and not visible
    /// messages; no oldest age, which SQS does not tell.
    fn depth(&self) -> BoxFuture<'_, Result<QueueDepth, QueueError>> {
        Box::pin(async move {
            let (waiting, in_flight, delayed) = self.counts(&self.url).await?;
            let dead_letters = match self.dead_letter_queue_url().await? {
                Some(dlq) => {
                    let (visible, hidden, _) = self.counts(&dlq).await?;
                    visible + hidden
                }
                None => 0,
            };
            Ok(QueueDepth {
                waiting,
                in_flight,
                delayed,
                oldest_age: None,
                dead_letters,
            })
        })
    }

    fn dead_letters(
        &self,
        page: DeadLetterPage,
    ) -> BoxFuture<'_, Result<Vec<DeadLetter>, QueueError>> {
        Box::pin(async move {
            let Some(dlq) = self.dead_letter_queue_url().await? else {
                return Ok(Vec::new());
            };
            let letters = self.scan(&dlq).await?;
            Ok(letters
                .into_iter()
                .filter(|letter| page.after.as_ref().is_none_or(|after| letter.id > *after))
                .take(page.limit)
                .collect())
        })
    }

    fn find_dead_letter<'a>(
        &'a self,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Option<DeadLetter>, QueueError>> {
        Box::pin(async move {
            let Some(dlq) = self.dead_letter_queue_url().await? else {
                return Ok(None);
            };
            let letters = self.scan(&dlq).await?;
            Ok(letters.into_iter().find(|letter| letter.id == id))
        })
    }

    /// Sends each back to this queue (FIFO: in its group, with its
    /// deduplication id), and only then deletes it from the dead-letter
    /// queue.
    fn redrive<'a>(
        &'a self,
        which: DeadLetterSelection<'a>,
    ) -> BoxFuture<'a, Result<DeadLetterOutcome, QueueError>> {
        Box::pin(self.sweep(which, true))
    }

    fn discard<'a>(
        &'a self,
        which: DeadLetterSelection<'a>,
    ) -> BoxFuture<'a, Result<DeadLetterOutcome, QueueError>> {
        Box::pin(self.sweep(which, false))
    }

    fn to_shared(&self) -> Arc<dyn QueueAdmin> {
        Arc::new(self.clone())
    }
}

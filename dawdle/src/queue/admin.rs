//! [`QueueAdmin`]: what an operator does with a queue beyond sending and
//! receiving (count its messages; list, show, redrive and discard its dead
//! letters), as a capability a [`Queue`](super::Queue) offers through
//! [`Queue::admin`](super::Queue::admin).

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Serialize, Serializer};

use super::{BoxFuture, Failure, QueueError};

/// What a queue can tell and do for its operator: how many messages it
/// holds, and its dead letters, to list, show, send back (redrive) or
/// delete (discard). [`PgQueue`](crate::PgQueue),
/// [`SqsQueue`](crate::SqsQueue) and [`MemoryQueue`](crate::MemoryQueue)
/// have it; ask a queue with [`Queue::admin`](super::Queue::admin).
///
/// The `dawdle` command's `status` and `dlq` work through it, and so does
/// [`sample_depth`](super::sample_depth), which reports the depth as gauges.
///
/// ```no_run
/// # async fn demo(queue: &dyn dawdle::Queue) -> Result<(), dawdle::queue::QueueError> {
/// use dawdle::queue::{DeadLetterPage, DeadLetterSelection};
///
/// let admin = queue.admin().expect("the queue can be administered");
/// let depth = admin.depth().await?;
/// println!("{} waiting, {} dead letters", depth.waiting, depth.dead_letters);
/// let mut page = DeadLetterPage::first(100);
/// loop {
///     let letters = admin.dead_letters(page.clone()).await?;
///     let Some(last) = letters.last() else { break };
///     for letter in &letters {
///         println!("{}: {}", letter.id, letter.reason);
///     }
///     page = page.after(&last.id);
/// }
/// admin.redrive(DeadLetterSelection::all()).await?;
/// # Ok(()) }
/// ```
pub trait QueueAdmin: Send + Sync {
    /// What names the queue to people and in the `queue` label of the
    /// [depth gauges](super::sample_depth): a [`PgQueue`](crate::PgQueue)'s
    /// name, an [`SqsQueue`](crate::SqsQueue)'s URL, `memory`.
    fn name(&self) -> &str;

    /// How many messages the queue holds, and how many dead letters.
    fn depth(&self) -> BoxFuture<'_, Result<QueueDepth, QueueError>>;

    /// A page of the dead letters, in the order of their ids (the oldest
    /// first, except on SQS, whose message ids say nothing of age).
    fn dead_letters(
        &self,
        page: DeadLetterPage,
    ) -> BoxFuture<'_, Result<Vec<DeadLetter>, QueueError>>;

    /// The dead letter `id` ([`DeadLetter::id`]); `None` when the queue has
    /// no such dead letter. An id that cannot be one of this queue's fails
    /// with [`QueueError::InvalidId`].
    fn find_dead_letter<'a>(
        &'a self,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Option<DeadLetter>, QueueError>>;

    /// Sends dead letters back to the queue as new messages: never
    /// received, without their failure (a fresh set of attempts), in their
    /// FIFO group. With [`DeadLetterSelection::all`], those there when it
    /// starts: a message dead-lettered again meanwhile is left for later.
    ///
    /// Every id is checked before any dead letter is touched: one that
    /// cannot be this queue's fails the call ([`QueueError::InvalidId`]);
    /// one that is not there is named in [`DeadLetterOutcome::not_found`].
    fn redrive<'a>(
        &'a self,
        which: DeadLetterSelection<'a>,
    ) -> BoxFuture<'a, Result<DeadLetterOutcome, QueueError>>;

    /// Deletes dead letters for good (a [`PgQueue`](crate::PgQueue) with
    /// the rows of their by-reference events that its database keeps; see
    /// [`PgQueue::discard`](crate::PgQueue::discard)). Ids as for
    /// [`redrive`](QueueAdmin::redrive).
    fn discard<'a>(
        &'a self,
        which: DeadLetterSelection<'a>,
    ) -> BoxFuture<'a, Result<DeadLetterOutcome, QueueError>>;

    /// An owned handle on the same queue, for work that outlives the borrow
    /// [`Queue::admin`](super::Queue::admin) gives (as
    /// [`sample_depth`](super::sample_depth)'s task). Clones of the queue
    /// share it, so this is cheap.
    fn to_shared(&self) -> Arc<dyn QueueAdmin>;
}

/// How many messages a queue holds, as [`QueueAdmin::depth`] tells.
///
/// SQS's counts are approximate (its `ApproximateNumberOf...` attributes);
/// the others' are exact at the moment they are read.
///
/// Serialized (serde) with these field names, the age as
/// `oldest_age_seconds` (a number, or null). The default is the depth of
/// an empty queue: no message (so an oldest age of zero), no dead letter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct QueueDepth {
    /// Visible: waiting to be received.
    pub waiting: u64,
    /// Received and hidden: being handled, or waiting for a retry.
    pub in_flight: u64,
    /// Sent with a delay that has not passed yet, never received.
    pub delayed: u64,
    /// How long the oldest message the queue holds (waiting, in flight or
    /// delayed) has been in it; zero when it holds none. `None` when the
    /// queue cannot tell: SQS (whose age of the oldest message is a
    /// CloudWatch metric, not a queue attribute).
    #[serde(rename = "oldest_age_seconds", serialize_with = "seconds")]
    pub oldest_age: Option<Duration>,
    /// Dead letters: in a [`PgQueue`](crate::PgQueue)'s dead-letter table,
    /// in a [`MemoryQueue`](crate::MemoryQueue)'s list, in an
    /// [`SqsQueue`](crate::SqsQueue)'s dead-letter queue (its visible and
    /// in-flight messages; zero when it has none).
    pub dead_letters: u64,
}

impl Default for QueueDepth {
    fn default() -> QueueDepth {
        QueueDepth {
            waiting: 0,
            in_flight: 0,
            delayed: 0,
            oldest_age: Some(Duration::ZERO),
            dead_letters: 0,
        }
    }
}

fn seconds<S: Serializer>(age: &Option<Duration>, serializer: S) -> Result<S::Ok, S::Error> {
    match age {
        Some(age) => serializer.serialize_f64(age.as_secs_f64()),
        None => serializer.serialize_none(),
    }
}

/// A message that will not be handled, as any queue's
/// [`QueueAdmin::dead_letters`] shows it.
///
/// Serialized (serde) with these field names.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct DeadLetter {
    /// Names the dead letter to [`QueueAdmin::find_dead_letter`],
    /// [`redrive`](QueueAdmin::redrive) and [`discard`](QueueAdmin::discard):
    /// a [`PgQueue`](crate::PgQueue)'s is the message's id (a number, as
    /// its [`ReceivedMessage::message_id`](super::ReceivedMessage::message_id)
    /// was), an [`SqsQueue`](crate::SqsQueue)'s the SQS message id in the
    /// dead-letter queue. Opaque otherwise.
    pub id: String,
    /// The body as sent.
    pub body: String,
    /// FIFO only: its group.
    pub group_id: Option<String>,
    /// How many times it was received. On SQS, its
    /// `ApproximateReceiveCount` in the dead-letter queue, which counts the
    /// receives that list it too (the failure's
    /// [`attempts`](Failure::attempts) count the listener's).
    pub receive_count: u32,
    /// Why it was dead-lettered: as the listener or the queue said it;
    /// on SQS, for a message without the `dawdle_reason` attribute, what is
    /// known of how it got there.
    pub reason: String,
    /// Its last failure, when it failed before and the queue kept it, or
    /// a listener dead-lettered it (which records why).
    pub failure: Option<Failure>,
    /// When it was dead-lettered. On SQS, when it was sent to the
    /// dead-letter queue (for a message SQS moved there by its redrive
    /// policy, when it was first sent); `None` when unknown.
    pub dead_lettered_at: Option<DateTime<Utc>>,
}

/// Which page of dead letters [`QueueAdmin::dead_letters`] returns: at most
/// `limit`, after the dead letter `after` (from the first when `None`).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeadLetterPage {
    /// The [`id`](DeadLetter::id) of the last dead letter of the page
    /// before; `None` for the first page.
    pub after: Option<String>,
    /// The most dead letters on the page (at least 1).
    pub limit: usize,
}

impl DeadLetterPage {
    /// The first page, of at most `limit` dead letters.
    pub fn first(limit: usize) -> DeadLetterPage {
        DeadLetterPage {
            after: None,
            limit: limit.max(1),
        }
    }

    /// The page after the dead letter `id`, of the same size: the next page
    /// when `id` is the last of this one. It need not still be there.
    pub fn after(&self, id: &str) -> DeadLetterPage {
        DeadLetterPage {
            after: Some(id.to_owned()),
            limit: self.limit,
        }
    }
}

/// Which dead letters [`QueueAdmin::redrive`] and [`QueueAdmin::discard`]
/// take: every one, or those of some ids; and, optionally, whom to tell
/// how far it got.
#[derive(Clone, Copy)]
pub struct DeadLetterSelection<'a> {
    ids: Option<&'a [String]>,
    progress: Option<&'a (dyn Fn(u64) + Send + Sync)>,
}

impl<'a> DeadLetterSelection<'a> {
    /// Every dead letter the queue has when the call starts.
    pub fn all() -> DeadLetterSelection<'a> {
        DeadLetterSelection {
            ids: None,
            progress: None,
        }
    }

    /// The dead letters of these [ids](DeadLetter::id) (a repeated id
    /// counts once).
    pub fn ids(ids: &'a [String]) -> DeadLetterSelection<'a> {
        DeadLetterSelection {
            ids: Some(ids),
            progress: None,
        }
    }

    /// Calls `progress` with the number of dead letters done since its last
    /// call, as the work goes on (for a progress bar).
    pub fn on_progress(mut self, progress: &'a (dyn Fn(u64) + Send + Sync)) -> Self {
        self.progress = Some(progress);
        self
    }

    /// The ids chosen; `None` for every dead letter.
    pub fn chosen_ids(&self) -> Option<&'a [String]> {
        self.ids
    }

    /// Tells the [`on_progress`](Self::on_progress) callback, if any, that
    /// `done` more dead letters are done. For implementations of
    /// [`QueueAdmin`].
    pub fn report(&self, done: u64) {
        if let (Some(progress), 1..) = (self.progress, done) {
            progress(done);
        }
    }
}

impl fmt::Debug for DeadLetterSelection<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DeadLetterSelection")
            .field("ids", &self.ids)
            .field("progress", &self.progress.map(|_| "..."))
            .finish()
    }
}

/// What a [`QueueAdmin::redrive`] or [`QueueAdmin::discard`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeadLetterOutcome {
    /// How many dead letters were redriven or discarded.
    pub done: u64,
    /// The ids asked for that are not dead letters of the queue (redriven
    /// or discarded before, or never there), in the order of their ids.
    pub not_found: Vec<String>,
}

impl DeadLetterOutcome {
    /// `done` dead letters done, none missing.
    pub fn done(done: u64) -> DeadLetterOutcome {
        DeadLetterOutcome {
            done,
            not_found: Vec::new(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU64, Ordering};

    #[test]
    fn the_depth_serializes_its_age_in_seconds() {
        let depth = QueueDepth {
            waiting: 3,
            oldest_age: Some(Duration::from_millis(1500)),
            ..QueueDepth::default()
        };
        let json = serde_json::to_value(depth).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"waiting": 3, "in_flight": 0, "delayed": 0,
                               "oldest_age_seconds": 1.5, "dead_letters": 0})
        );
        let empty = serde_json::to_value(QueueDepth::default()).unwrap();
        assert_eq!(empty["oldest_age_seconds"], 0.0);
        let unknown = QueueDepth {
            oldest_age: None,
            ..QueueDepth::default()
        };
        let unknown = serde_json::to_value(unknown).unwrap();
        assert_eq!(unknown["oldest_age_seconds"], serde_json::Value::Null);
    }

    #[test]
    fn a_selection_reports_progress_only_when_something_was_done() {
        let seen = AtomicU64::new(0);
        let calls = AtomicU64::new(0);
        let progress = |n: u64| {
            seen.fetch_add(n, Ordering::Relaxed);
            calls.fetch_add(1, Ordering::Relaxed);
        };
        let ids = ["7".to_owned()];
        let selection = DeadLetterSelection::ids(&ids).on_progress(&progress);
        selection.report(0);
        selection.report(2);
        selection.report(1);
        assert_eq!(seen.load(Ordering::Relaxed), 3);
        assert_eq!(calls.load(Ordering::Relaxed), 2);
        assert_eq!(selection.chosen_ids(), Some(&ids[..]));
        assert_eq!(DeadLetterSelection::all().chosen_ids(), None);
        DeadLetterSelection::all().report(5); // no callback: nothing to call
    }

    #[test]
    fn pages_follow_the_last_id() {
        let first = DeadLetterPage::first(0);
        assert_eq!((first.after.as_deref(), first.limit), (None, 1));
        let next = DeadLetterPage::first(50).after("41");
        assert_eq!((next.after.as_deref(), next.limit), (Some("41"), 50));
    }
}

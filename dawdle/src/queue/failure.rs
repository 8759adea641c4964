//! [`Failure`]: why a message could not be handled, as a queue keeps it
//! with the message and carries it into its dead letter.

use std::fmt;

use chrono::{DateTime, SubsecRound, Utc};
use serde::{Deserialize, Serialize};

/// The last failure of a message, and how many came before it.
///
/// The listener records one each time handling a message fails (a handler
/// returned an error or panicked, or no handler of this program knows an
/// event), and the queue keeps it with the message ([`Queue::retry`]) and
/// into its dead letter ([`Queue::dead_letter`]). [`PgQueue`] keeps it in
/// columns of its tables; [`SqsQueue`] cannot change a message it holds,
/// so a retried message there carries only what it was sent with, and the
/// listener moves a message that reached its last receive to the
/// dead-letter queue itself, with the failure as message attributes.
///
/// Serialized (serde) with these field names, as `dawdle dlq show --json`
/// prints it.
///
/// [`Queue::retry`]: crate::Queue::retry
/// [`Queue::dead_letter`]: crate::Queue::dead_letter
/// [`PgQueue`]: crate::PgQueue
/// [`SqsQueue`]: crate::queue::SqsQueue
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Failure {
    /// The handler that failed (the last of them, when several did); `None`
    /// when none could run: an event of a table or signal that this program
    /// has no type or handler for, a row that does not decode, a message
    /// that is not dawdle's.
    pub handler: Option<String>,
    /// The error as its `Display` chain (`{:#}`, which `anyhow` renders as
    /// `outer: cause: root cause`), or the panic's message.
    pub error: String,
    /// Whether the handler panicked.
    pub panicked: bool,
    /// How many times handling the message failed, this time included.
    /// Where the queue kept no earlier failure (SQS retries in place), at
    /// least the message's receive count.
    pub attempts: u32,
    /// When handling it failed the first time (where the queue kept no
    /// earlier failure: this time).
    pub first_at: DateTime<Utc>,
    /// When handling it failed this time.
    pub last_at: DateTime<Utc>,
}

impl Failure {
    /// A first failure, now: of `handler`, or of the message when `None`.
    pub fn new(handler: Option<&str>, error: impl Into<String>, panicked: bool) -> Failure {
        // Microseconds, as PostgreSQL keeps them: what is stored reads back equal.
        let now = Utc::now().trunc_subsecs(6);
        Failure {
            handler: handler.map(str::to_owned),
            error: error.into(),
            panicked,
            attempts: 1,
            first_at: now,
            last_at: now,
        }
    }

    /// This failure as the next of `previous`, the message's earlier
    /// failure if the queue kept one, on its `receive_count`th receive:
    /// the attempts go on from there, and the first time is kept.
    pub fn following(mut self, previous: Option<&Failure>, receive_count: u32) -> Failure {
        if let Some(previous) = previous {
            self.attempts = previous.attempts.saturating_add(1);
            self.first_at = previous.first_at.min(self.first_at);
        }
        self.attempts = self.attempts.max(receive_count);
        self
    }

    /// One line for a dead letter's reason and for logs.
    pub fn reason(&self) -> String {
        self.to_string()
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let times = match self.attempts {
            1 => "once".to_owned(),
            n => format!("{n} times"),
        };
        match &self.handler {
            Some(handler) if self.panicked => {
                write!(
                    f,
                    "handler {handler} failed {times}, last by panicking: {}",
                    self.error
                )
            }
            Some(handler) => write!(f, "handler {handler} failed {times}: {}", self.error),
            None => write!(f, "could not be handled ({times}): {}", self.error),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn following_counts_on_and_keeps_the_first_time() {
        let first = Failure::new(Some("on_user"), "boom", false);
        let second = Failure::new(Some("on_user"), "bang", true).following(Some(&first), 2);
        assert_eq!(second.attempts, 2);
        assert_eq!(second.first_at, first.first_at);
        assert_eq!(
            second.reason(),
            "handler on_user failed 2 times, last by panicking: bang"
        );
        // Nothing kept (SQS): at least the receive count.
        let sqs = Failure::new(None, "no type for public.t", false).following(None, 4);
        assert_eq!(sqs.attempts, 4);
        assert_eq!(
            sqs.reason(),
            "could not be handled (4 times): no type for public.t"
        );
    }
}

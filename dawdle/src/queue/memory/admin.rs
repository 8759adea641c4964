//! [`QueueAdmin`] for [`MemoryQueue`]: its counts and its dead-letter list,
//! with the sequence numbers of the messages as the dead letters' ids.

use std::collections::{BTreeSet, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;

use super::{MemoryQueue, Stored};
use crate::queue::{
    BoxFuture, DeadLetter, DeadLetterOutcome, DeadLetterPage, DeadLetterSelection, QueueAdmin,
    QueueDepth, QueueError,
};

/// A dead letter's id as text, as the sequence number it is.
fn parse_id(text: &str) -> Result<u64, QueueError> {
    text.parse().map_err(|_| {
        QueueError::InvalidId(format!(
            "{text:?} is not the id of a MemoryQueue dead letter: those are numbers"
        ))
    })
}

impl MemoryQueue {
    /// The depth now. A message whose visibility timeout or delay passed
    /// counts as waiting, as the next receive will find it.
    fn depth_now(&self) -> QueueDepth {
        let state = self.lock();
        let now = Instant::now();
        let mut depth = QueueDepth {
            waiting: state.ready.len() as u64,
            in_flight: 0,
            delayed: 0,
            oldest_age: None,
            dead_letters: state.dead.len() as u64,
        };
        for (stored, visible_at) in state.in_flight.values() {
            if *visible_at <= now {
                depth.waiting += 1;
            } else if stored.receive_count == 0 {
                depth.delayed += 1;
            } else {
                depth.in_flight += 1;
            }
        }
        let oldest = state
            .ready
            .values()
            .chain(state.in_flight.values().map(|(stored, _)| stored))
            .map(|stored| stored.sent_at)
            .min();
        depth.oldest_age = Some(oldest.map_or(Duration::ZERO, |at| now.duration_since(at)));
        depth
    }

    /// Redrives (`redrive`) or discards the dead letters `which`, all or
    /// none: a redrive the queue has no room for changes nothing.
    fn sweep(
        &self,
        which: DeadLetterSelection<'_>,
        redrive: bool,
    ) -> Result<DeadLetterOutcome, QueueError> {
        let wanted: Option<BTreeSet<u64>> = which
            .chosen_ids()
            .map(|ids| ids.iter().map(|id| parse_id(id)).collect())
            .transpose()?;
        let picked = |seq: &u64| wanted.as_ref().is_none_or(|wanted| wanted.contains(seq));
        let mut state = self.lock();
        let taken = state.dead.iter().filter(|(seq, _)| picked(seq)).count();
        let room = self
            .inner
            .capacity
            .saturating_sub(state.ready.len() + state.in_flight.len());
        if redrive && taken > room {
            return Err(QueueError::Unavailable(format!(
                "the memory queue has room for {room} more messages, not the {taken} dead \
                 letters to redrive"
            )));
        }
        let (taken, kept): (VecDeque<_>, VecDeque<_>) = std::mem::take(&mut state.dead)
            .into_iter()
            .partition(|(seq, _)| picked(seq));
        state.dead = kept;
        let mut taken = Vec::from(taken);
        taken.sort_by_key(|(seq, _)| *seq);
        if redrive {
            let now = Instant::now();
            for (_, letter) in &taken {
                let seq = state.next;
                state.next += 1;
                let stored = Stored {
                    body: letter.body.clone(),
                    group: letter.group_id.clone(),
                    receive_count: 0,
                    failure: None,
                    sent_at: now,
                };
                state.ready.insert(seq, stored);
            }
        }
        drop(state);
        self.inner.changed.notify_waiters();
        let found: BTreeSet<u64> = taken.iter().map(|(seq, _)| *seq).collect();
        let not_found = wanted
            .map(|wanted| wanted.difference(&found).map(u64::to_string).collect())
            .unwrap_or_default();
        which.report(taken.len() as u64);
        Ok(DeadLetterOutcome {
            done: taken.len() as u64,
            not_found,
        })
    }
}

impl QueueAdmin for MemoryQueue {
    fn name(&self) -> &str {
        "memory"
    }

    fn depth(&self) -> BoxFuture<'_, Result<QueueDepth, QueueError>> {
        Box::pin(async move { Ok(self.depth_now()) })
    }

    fn dead_letters(
        &self,
        page: DeadLetterPage,
    ) -> BoxFuture<'_, Result<Vec<DeadLetter>, QueueError>> {
        Box::pin(async move {
            let after = page.after.as_deref().map(parse_id).transpose()?;
            let state = self.lock();
            let mut letters: Vec<&(u64, DeadLetter)> = state
                .dead
                .iter()
                .filter(|(seq, _)| after.is_none_or(|after| *seq > after))
                .collect();
            letters.sort_by_key(|(seq, _)| *seq);
            Ok(letters
                .into_iter()
                .take(page.limit)
                .map(|(_, letter)| letter.clone())
                .collect())
        })
    }

    fn find_dead_letter<'a>(
        &'a self,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Option<DeadLetter>, QueueError>> {
        Box::pin(async move {
            let id = parse_id(id)?;
            let state = self.lock();
            let found = state.dead.iter().find(|(seq, _)| *seq == id);
            Ok(found.map(|(_, letter)| letter.clone()))
        })
    }

    fn redrive<'a>(
        &'a self,
        which: DeadLetterSelection<'a>,
    ) -> BoxFuture<'a, Result<DeadLetterOutcome, QueueError>> {
        Box::pin(async move { self.sweep(which, true) })
    }

    fn discard<'a>(
        &'a self,
        which: DeadLetterSelection<'a>,
    ) -> BoxFuture<'a, Result<DeadLetterOutcome, QueueError>> {
        Box::pin(async move { self.sweep(which, false) })
    }

    fn to_shared(&self) -> Arc<dyn QueueAdmin> {
        Arc::new(self.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queue::{Failure, OutgoingMessage, Queue};

    #[tokio::test]
    async fn a_redrive_it_has_no_room_for_changes_nothing() {
        let queue = MemoryQueue::builder().capacity(2).build();
        queue
            .send(&[OutgoingMessage::new("a"), OutgoingMessage::new("b")])
            .await
            .unwrap();
        let got = queue
            .receive(2, Duration::ZERO, Duration::from_secs(60))
            .await
            .unwrap();
        let failure = Failure::new(None, "bad", false);
        for message in &got {
            queue.dead_letter(message, &failure).await.unwrap();
        }
        queue.send(&[OutgoingMessage::new("c")]).await.unwrap();
        let error = QueueAdmin::redrive(&queue, DeadLetterSelection::all())
            .await
            .unwrap_err();
        assert!(error.is_transient(), "{error}");
        assert_eq!(queue.dead_letters().len(), 2, "both still dead letters");
        assert_eq!(queue.waiting(), 1);
    }

    #[tokio::test]
    async fn ids_are_sequence_numbers() {
        let queue = MemoryQueue::new();
        let error = queue.find_dead_letter("x").await.unwrap_err();
        assert!(matches!(error, QueueError::InvalidId(_)), "{error}");
        assert_eq!(queue.find_dead_letter("7").await.unwrap(), None);
        let ids = ["7".to_owned(), "x".to_owned()];
        let error = QueueAdmin::discard(&queue, DeadLetterSelection::ids(&ids))
            .await
            .unwrap_err();
        assert!(matches!(error, QueueError::InvalidId(_)), "{error}");
    }
}

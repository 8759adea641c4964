//! [`QueueAdmin`] for [`PgQueue`]: its depth and its dead-letter calls,
//! with the dead letters' ids (numbers) as text.

use std::collections::{BTreeSet, HashSet};
use std::sync::Arc;

use super::{queries, PgQueue};
use crate::queue::{
    BoxFuture, DeadLetter, DeadLetterOutcome, DeadLetterPage, DeadLetterSelection, QueueAdmin,
    QueueDepth, QueueError,
};

/// How many dead letters one statement of a redrive or discard takes.
const CHUNK: usize = 1000;

/// A dead letter's id as text, as the number it is.
fn parse_id(text: &str) -> Result<i64, QueueError> {
    text.parse().map_err(|_| {
        QueueError::InvalidId(format!(
            "{text:?} is not the id of a PgQueue dead letter: those are numbers"
        ))
    })
}

impl PgQueue {
    /// The ids of every dead letter of this queue now, in order.
    async fn dead_letter_ids(&self) -> Result<Vec<i64>, QueueError> {
        let mut ids = Vec::new();
        let limit = CHUNK as i64;
        loop {
            let after = ids.last().copied().unwrap_or(i64::MIN);
            let rows = self
                .call("listing dead letters", |client| async move {
                    let statement = client.prepare_cached(queries::DEAD_LETTER_IDS).await?;
                    client
                        .query(&statement, &[&self.inner.name, &after, &limit])
                        .await
                })
                .await?;
            let full = rows.len() == CHUNK;
            ids.extend(rows.iter().map(|row| row.get::<_, i64>(0)));
            if !full {
                return Ok(ids);
            }
        }
    }

    /// Redrives (`redrive`) or discards the dead letters `which`, a chunk
    /// of ids per statement.
    async fn sweep(
        &self,
        which: DeadLetterSelection<'_>,
        redrive: bool,
    ) -> Result<DeadLetterOutcome, QueueError> {
        let ids: Vec<i64> = match which.chosen_ids() {
            // All checked before any is touched.
            Some(ids) => ids
                .iter()
                .map(|id| parse_id(id))
                .collect::<Result<BTreeSet<i64>, _>>()?
                .into_iter()
                .collect(),
            // Those there now: one dead-lettered again meanwhile has a
            // higher id, and is not among them.
            None => self.dead_letter_ids().await?,
        };
        let mut outcome = DeadLetterOutcome::default();
        for chunk in ids.chunks(CHUNK) {
            let done = if redrive {
                self.redrive_ids(chunk).await?
            } else {
                self.discard_ids(chunk).await?
            };
            outcome.done += done.len() as u64;
            which.report(done.len() as u64);
            if which.chosen_ids().is_some() {
                let done: HashSet<i64> = done.into_iter().collect();
                outcome.not_found.extend(
                    chunk
                        .iter()
                        .filter(|id| !done.contains(id))
                        .map(i64::to_string),
                );
            }
        }
        Ok(outcome)
    }
}

impl QueueAdmin for PgQueue {
    fn name(&self) -> &str {
        &self.inner.name
    }

    fn depth(&self) -> BoxFuture<'_, Result<QueueDepth, QueueError>> {
        Box::pin(PgQueue::depth(self))
    }

    fn dead_letters(
        &self,
        page: DeadLetterPage,
    ) -> BoxFuture<'_, Result<Vec<DeadLetter>, QueueError>> {
        Box::pin(async move {
            let from = match page.after.as_deref().map(parse_id).transpose()? {
                None => i64::MIN,
                Some(i64::MAX) => return Ok(Vec::new()),
                Some(after) => after + 1,
            };
            let letters = PgQueue::dead_letters(self, from, page.limit).await?;
            Ok(letters.into_iter().map(DeadLetter::from).collect())
        })
    }

    fn find_dead_letter<'a>(
        &'a self,
        id: &'a str,
    ) -> BoxFuture<'a, Result<Option<DeadLetter>, QueueError>> {
        Box::pin(async move {
            let id = parse_id(id)?;
            let found = PgQueue::dead_letters(self, id, 1)
                .await?
                .into_iter()
                .find(|dead| dead.id == id);
            Ok(found.map(DeadLetter::from))
        })
    }

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_id_that_is_not_a_number_is_refused_with_what_ids_look_like() {
        assert_eq!(parse_id("42").unwrap(), 42);
        let error = parse_id("5fd2c6e1").unwrap_err();
        assert!(matches!(error, QueueError::InvalidId(_)));
        assert_eq!(
            error.to_string(),
            r#""5fd2c6e1" is not the id of a PgQueue dead letter: those are numbers"#
        );
    }
}

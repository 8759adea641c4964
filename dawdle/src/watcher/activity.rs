//! How many events the watcher read, per table and action: kept in memory
//! between rounds and added to `dawdle.activity`, by the minute, with the
//! backlog report. The console draws it; nothing else depends on it, so a
//! failed save is logged and the counts wait for the next one.

use std::collections::HashMap;

use super::error::WatcherError;
use super::session::Session;
use crate::sql::catalog::watcher;

/// Counts since the last save.
#[derive(Debug, Default)]
pub(crate) struct Activity {
    /// `schema \0 table \0 action` → events.
    counts: HashMap<String, i64>,
    /// A reused buffer for the key.
    key: String,
    /// Whether a failed save was logged at warn level already.
    warned: bool,
}

impl Activity {
    /// Counts one event.
    pub(crate) fn count(&mut self, schema: &str, table: &str, action: &str) {
        self.key.clear();
        for (i, part) in [schema, table, action].into_iter().enumerate() {
            if i > 0 {
                self.key.push('\0');
            }
            self.key.push_str(part);
        }
        match self.counts.get_mut(self.key.as_str()) {
            Some(events) => *events += 1,
            None => {
                self.counts.insert(self.key.clone(), 1);
            }
        }
    }

    /// Adds the counts to `dawdle.activity` (the current minute), drops
    /// what is older than a day, and starts counting afresh. A failure (the
    /// table missing before the up migration is re-run, say) is logged and
    /// the counts are kept for the next try, unless the connection is gone.
    pub(crate) async fn save(&mut self, session: &Session) -> Result<(), WatcherError> {
        if self.counts.is_empty() {
            return Ok(());
        }
        let (schemas, tables, actions, events) = self.columns();
        let saved = session
            .execute(watcher::ACTIVITY, &[&schemas, &tables, &actions, &events])
            .await
            .map(|_| ());
        match saved {
            Ok(()) => self.saved(),
            Err(error) if session.is_alive() => self.unsaved(&error),
            Err(error) => return Err(error),
        }
        Ok(())
    }

    /// [`save`](Self::save) on a connection of its own (the WAL reader's),
    /// which a failure does not end.
    pub(crate) async fn save_on(&mut self, client: &tokio_postgres::Client) {
        if self.counts.is_empty() {
            return;
        }
        let (schemas, tables, actions, events) = self.columns();
        let saved = client
            .execute(watcher::ACTIVITY, &[&schemas, &tables, &actions, &events])
            .await;
        match saved {
            Ok(_) => self.saved(),
            Err(error) => self.unsaved(&error),
        }
    }

    /// The counts as the query's four arrays.
    fn columns(&self) -> (Vec<String>, Vec<String>, Vec<String>, Vec<i64>) {
        let mut columns: [Vec<String>; 3] = Default::default();
        let mut events = Vec::with_capacity(self.counts.len());
        for (key, n) in &self.counts {
            let mut parts = key.split('\0');
            for column in &mut columns {
                column.push(parts.next().unwrap_or_default().to_owned());
            }
            events.push(*n);
        }
        let [schemas, tables, actions] = columns;
        (schemas, tables, actions, events)
    }

    fn saved(&mut self) {
        self.counts.clear();
        self.warned = false;
    }

    /// Logged once; the counts wait for the next try (bounded: one entry
    /// per table and action).
    fn unsaved(&mut self, error: &dyn std::fmt::Display) {
        if !std::mem::replace(&mut self.warned, true) {
            tracing::warn!(%error, "could not save the watcher's activity (re-run the up migration?); the console's charts miss it");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_add_up_per_table_and_action() {
        let mut activity = Activity::default();
        for _ in 0..3 {
            activity.count("public", "users", "insert");
        }
        activity.count("public", "users", "update");
        activity.count("dawdle", "signals", "signal");
        assert_eq!(activity.counts["public\0users\0insert"], 3);
        assert_eq!(activity.counts["public\0users\0update"], 1);
        assert_eq!(activity.counts.len(), 3);
    }
}

//! The watcher's position in the stream of events: which transactions'
//! events were sent, as PostgreSQL snapshots.
//!
//! Events are never deleted one by one; the watcher keeps a cursor instead,
//! in `dawdle.cursor`, and TRUNCATEs whole event tables behind it (see
//! `rotate.rs`). The cursor is a snapshot, `read`: every event of a
//! transaction visible in it was sent. Each round takes the current snapshot,
//! `upto`, and reads the *window* between the two: the events of the
//! transactions visible in `upto` and not in `read`, in id order. Once the
//! queue accepted them all, `upto` becomes the new `read`.
//!
//! A snapshot is a cut in commit order, so this holds however events
//! interleave: a transaction that took its event ids early and commits late
//! is simply in a later window, and two changes of one row, whose
//! transactions commit one after the other (the second waits for the first's
//! row lock, and takes its ids after), are either in one window, in id
//! order, or in successive ones.
//!
//! A window the round could not finish (the queue failed, or refused an
//! event that must go by reference) is kept as it is: `window` holds its
//! `upto`, and `after` the id up to which every event of it was sent. The
//! next round reads the same window from there.

use std::fmt;

/// A `pg_snapshot` in PostgreSQL's text form, `xmin:xmax:xip,...`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Snapshot(String);

impl Snapshot {
    /// Checks that `text` is a snapshot's text (digits, colons and commas
    /// only): it is spliced into SQL as a literal.
    pub(crate) fn parse(text: String) -> Option<Snapshot> {
        let parts: Vec<&str> = text.split(':').collect();
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        let valid = parts.len() == 3
            && digits(parts[0])
            && digits(parts[1])
            && (parts[2].is_empty() || parts[2].split(',').all(digits));
        valid.then_some(Snapshot(text))
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }

    /// The oldest transaction still running when it was taken: every
    /// transaction before it had ended.
    pub(crate) fn xmin(&self) -> u64 {
        self.0
            .split(':')
            .next()
            .and_then(|x| x.parse().ok())
            .expect("checked by Snapshot::parse")
    }
}

impl Snapshot {
    /// One past the newest transaction that had started when it was taken.
    pub(crate) fn xmax(&self) -> u64 {
        self.0
            .split(':')
            .nth(1)
            .and_then(|x| x.parse().ok())
            .expect("checked by Snapshot::parse")
    }
}

impl fmt::Display for Snapshot {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The watcher's position, as in `dawdle.cursor`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Cursor {
    /// Every event of a transaction visible in it was sent.
    pub read: Snapshot,
    /// A window read in part: its `upto`, and the id up to which its
    /// events were sent.
    pub partial: Option<(Snapshot, i64)>,
}

impl Cursor {
    /// The window of the next round: `upto` (None: the current snapshot)
    /// and the id after which it starts.
    pub(crate) fn next_window(&self) -> (Option<&Snapshot>, i64) {
        match &self.partial {
            Some((upto, after)) => (Some(upto), *after),
            None => (None, 0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshots_are_checked_before_they_reach_sql() {
        for good in ["1:1:", "100:105:101,103", "3:3:"] {
            assert!(Snapshot::parse(good.to_owned()).is_some(), "{good}");
        }
        for bad in ["", "1:1", "1:1:'", "a:1:", "1:2:3,", "1:2:3;DROP", "1::"] {
            assert!(Snapshot::parse(bad.to_owned()).is_none(), "{bad}");
        }
        assert_eq!(
            Snapshot::parse("100:105:101".to_owned()).unwrap().xmin(),
            100
        );
    }
}

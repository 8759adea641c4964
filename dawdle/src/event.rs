//! The values handlers receive: [`Insert`], [`Update`], [`Delete`],
//! [`Truncate`], [`Snapshot`] and [`Change`], each with the event's
//! [`Meta`], and [`Signaled`] for signals.

// Not public itself: its trait and description are at `crate::signal`.
pub(crate) mod signaled;

use chrono::{DateTime, FixedOffset};

use crate::decode::DecodeError;
use crate::table::{Action, Table};
use crate::wire::WireEvent;
use crate::Watched;

use signaled::SignalType;
pub use signaled::Signaled;

/// What every event carries besides its rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Meta {
    /// The event's id: unique within its database and the same on every
    /// redelivery. Handlers run at least once per event: use it, with
    /// [`source`](Meta::source), to make them idempotent.
    pub id: i64,
    /// The origin id of the database the event comes from (a UUID, see
    /// [`wire`](crate::wire)): `(source, id)` is unique across every
    /// database that feeds a queue. `None` for messages written before
    /// sources existed.
    pub source: Option<String>,
    /// Schema of the table.
    pub schema: String,
    /// Name of the table.
    pub table: String,
    /// What happened.
    pub action: Action,
    /// When the change was captured (the trigger ran).
    pub captured_at: DateTime<FixedOffset>,
    /// The PostgreSQL transaction id, in decimal: events with the same
    /// `txid` were committed together.
    pub txid: String,
}

impl Meta {
    fn of(event: &WireEvent) -> Meta {
        Meta {
            id: event.id,
            source: event.source.clone(),
            schema: event.schema.clone(),
            table: event.table.clone(),
            action: event.action,
            captured_at: event.captured_at,
            txid: event.txid.clone(),
        }
    }
}

/// A row was inserted.
#[derive(Debug, Clone, PartialEq)]
pub struct Insert<T> {
    /// The row as inserted.
    pub new: T,
    /// The event's metadata.
    pub meta: Meta,
}

/// A row was updated.
#[derive(Debug, Clone, PartialEq)]
pub struct Update<T> {
    /// The row before.
    pub old: T,
    /// The row after.
    pub new: T,
    /// The event's metadata.
    pub meta: Meta,
}

/// A row was deleted.
#[derive(Debug, Clone, PartialEq)]
pub struct Delete<T> {
    /// The row as it was.
    pub old: T,
    /// The event's metadata.
    pub meta: Meta,
}

/// The table was truncated: every row is gone, at once. One event for the
/// table, without rows; a handler taking `Truncate<T>` receives it.
/// ([`Change`] is about single rows, and does not.)
#[derive(Debug, Clone, PartialEq)]
pub struct Truncate<T> {
    /// The event's metadata.
    pub meta: Meta,
    table: std::marker::PhantomData<fn() -> T>,
}

impl<T> Truncate<T> {
    /// The truncation of `T`'s table that `meta` describes.
    pub fn new(meta: Meta) -> Truncate<T> {
        Truncate {
            meta,
            table: std::marker::PhantomData,
        }
    }
}

/// A row as a backfill read it ([`crate::backfill`]): not a change, but
/// the state of a row that existed before dawdle watched it, or that an
/// operator asked to send again. An [`Insert`] handler never sees it.
#[derive(Debug, Clone, PartialEq)]
pub struct Snapshot<T> {
    /// The row as read.
    pub row: T,
    /// The event's metadata.
    pub meta: Meta,
}

/// Any change to a row: a handler taking `Change<T>` sees inserts, updates,
/// deletes and the snapshots of a backfill (not a [`Truncate`], which is
/// not about one row).
#[derive(Debug, Clone, PartialEq)]
pub enum Change<T> {
    /// A row was inserted.
    Insert(Insert<T>),
    /// A row was updated.
    Update(Update<T>),
    /// A row was deleted.
    Delete(Delete<T>),
    /// A backfill read the row.
    Snapshot(Snapshot<T>),
}

impl<T> Change<T> {
    /// The event's metadata.
    pub fn meta(&self) -> &Meta {
        match self {
            Change::Insert(e) => &e.meta,
            Change::Update(e) => &e.meta,
            Change::Delete(e) => &e.meta,
            Change::Snapshot(e) => &e.meta,
        }
    }

    /// The row after the change (`None` for a delete; the row read, for a
    /// snapshot).
    // Named after the `new` row, like the fields of the other events.
    #[allow(clippy::new_ret_no_self)]
    pub fn new(&self) -> Option<&T> {
        match self {
            Change::Insert(e) => Some(&e.new),
            Change::Update(e) => Some(&e.new),
            Change::Delete(_) => None,
            Change::Snapshot(e) => Some(&e.row),
        }
    }

    /// The row before the change (`None` for an insert and a snapshot).
    pub fn old(&self) -> Option<&T> {
        match self {
            Change::Insert(_) | Change::Snapshot(_) => None,
            Change::Update(e) => Some(&e.old),
            Change::Delete(e) => Some(&e.old),
        }
    }
}

/// What a handler subscribes to. Not public API: emitted by [`EventArg`].
#[doc(hidden)]
#[derive(Debug, Clone, Copy)]
pub enum Subject {
    /// These actions on the table.
    Rows {
        /// The table of the handler's `Watched` type.
        table: &'static Table,
        /// The actions.
        actions: &'static [Action],
    },
    /// A signal type.
    Signal(&'static SignalType),
}

/// An event type a handler can take: [`Insert`], [`Update`], [`Delete`],
/// [`Truncate`], [`Snapshot`] or [`Change`] of a [`Watched`] type, or
/// [`Signaled`] of a [`Signal`](trait@crate::Signal). Not meant to be
/// implemented elsewhere.
pub trait EventArg: Sized + Send + 'static {
    /// What the argument subscribes to.
    #[doc(hidden)]
    const SUBJECT: Subject;

    /// Builds the argument from an event whose rows are present.
    fn from_event(event: &WireEvent) -> Result<Self, DecodeError>;
}

fn row<T: Watched>(
    event: &WireEvent,
    row: Option<&serde_json::Value>,
    which: &'static str,
) -> Result<T, DecodeError> {
    match row {
        Some(value) => T::from_json(value),
        None => Err(DecodeError::MissingRow {
            table: T::TABLE.qualified_name().to_string(),
            action: event.action,
            which,
        }),
    }
}

const fn rows<T: Watched>(actions: &'static [Action]) -> Subject {
    Subject::Rows {
        table: T::TABLE,
        actions,
    }
}

impl<T: Watched> EventArg for Insert<T> {
    const SUBJECT: Subject = rows::<T>(&[Action::Insert]);

    fn from_event(event: &WireEvent) -> Result<Self, DecodeError> {
        Ok(Insert {
            new: row(event, event.new.as_ref(), "new")?,
            meta: Meta::of(event),
        })
    }
}

impl<T: Watched> EventArg for Update<T> {
    const SUBJECT: Subject = rows::<T>(&[Action::Update]);

    fn from_event(event: &WireEvent) -> Result<Self, DecodeError> {
        Ok(Update {
            old: row(event, event.old.as_ref(), "old")?,
            new: row(event, event.new.as_ref(), "new")?,
            meta: Meta::of(event),
        })
    }
}

impl<T: Watched> EventArg for Delete<T> {
    const SUBJECT: Subject = rows::<T>(&[Action::Delete]);

    fn from_event(event: &WireEvent) -> Result<Self, DecodeError> {
        Ok(Delete {
            old: row(event, event.old.as_ref(), "old")?,
            meta: Meta::of(event),
        })
    }
}

impl<T: Watched> EventArg for Truncate<T> {
    const SUBJECT: Subject = rows::<T>(&[Action::Truncate]);

    fn from_event(event: &WireEvent) -> Result<Self, DecodeError> {
        Ok(Truncate::new(Meta::of(event)))
    }
}

impl<T: Watched> EventArg for Snapshot<T> {
    const SUBJECT: Subject = rows::<T>(&[Action::Snapshot]);

    fn from_event(event: &WireEvent) -> Result<Self, DecodeError> {
        Ok(Snapshot {
            row: row(event, event.new.as_ref(), "new")?,
            meta: Meta::of(event),
        })
    }
}

impl<T: Watched> EventArg for Change<T> {
    const SUBJECT: Subject = rows::<T>(&[
        Action::Insert,
        Action::Update,
        Action::Delete,
        Action::Snapshot,
    ]);

    fn from_event(event: &WireEvent) -> Result<Self, DecodeError> {
        Ok(match event.action {
            Action::Insert => Change::Insert(Insert::from_event(event)?),
            Action::Update => Change::Update(Update::from_event(event)?),
            Action::Delete => Change::Delete(Delete::from_event(event)?),
            Action::Snapshot => Change::Snapshot(Snapshot::from_event(event)?),
            // Not subscribed to (`SUBJECT`): a truncate has no row.
            _ => Change::Delete(Delete {
                old: row(event, None, "old")?,
                meta: Meta::of(event),
            }),
        })
    }
}

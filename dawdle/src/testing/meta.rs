//! The [`Meta`] of events built by hand, for calling handlers directly.

use std::sync::atomic::{AtomicI64, Ordering};

use chrono::{DateTime, FixedOffset, Utc};

use crate::{Action, Meta, Watched};

/// Builds the [`Meta`] of an event on the table of a [`Watched`] type, for
/// an [`Insert`](crate::Insert), [`Update`](crate::Update),
/// [`Delete`](crate::Delete) or [`Change`](crate::Change) made in a test.
///
/// Unless set, the id is the next of a counter shared by the whole process
/// (starting at 1), so that two events never share an id by accident; the
/// transaction id is the event id in decimal, as if each event were
/// committed alone; the capture time is now, in UTC; there is no source.
///
/// ```
/// # use dawdle::Watched;
/// # #[derive(Debug, Clone, Watched)]
/// # #[dawdle(schema = "shop", table = "orders")]
/// # struct Order { id: i64 }
/// use dawdle::testing::MetaBuilder;
/// use dawdle::{Action, Update};
///
/// let meta = MetaBuilder::new::<Order>(Action::Update).id(42).txid("7").build();
/// assert_eq!((meta.schema.as_str(), meta.table.as_str()), ("shop", "orders"));
/// let event = Update { old: Order { id: 1 }, new: Order { id: 1 }, meta };
/// assert_eq!(event.meta.id, 42);
/// ```
#[derive(Debug, Clone)]
pub struct MetaBuilder {
    meta: Meta,
    /// Unset: the event id's, whatever id is set last.
    txid: Option<String>,
}

impl MetaBuilder {
    /// The metadata of an `action` on `T`'s table.
    pub fn new<T: Watched>(action: Action) -> MetaBuilder {
        static NEXT_ID: AtomicI64 = AtomicI64::new(1);
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        MetaBuilder {
            meta: Meta {
                id,
                source: None,
                schema: T::TABLE.schema.to_owned(),
                table: T::TABLE.name.to_owned(),
                action,
                captured_at: Utc::now().fixed_offset(),
                txid: String::new(),
            },
            txid: None,
        }
    }

    /// The event id, which handlers use as their idempotency key.
    pub fn id(mut self, id: i64) -> MetaBuilder {
        self.meta.id = id;
        self
    }

    /// The origin id of the database the event comes from (unset: `None`,
    /// as in a message without one).
    pub fn source(mut self, source: impl Into<String>) -> MetaBuilder {
        self.meta.source = Some(source.into());
        self
    }

    /// When the change was captured.
    pub fn captured_at(mut self, captured_at: DateTime<FixedOffset>) -> MetaBuilder {
        self.meta.captured_at = captured_at;
        self
    }

    /// The PostgreSQL transaction id, in decimal: give events the same one
    /// to have them committed together.
    pub fn txid(mut self, txid: impl Into<String>) -> MetaBuilder {
        self.txid = Some(txid.into());
        self
    }

    /// The metadata.
    pub fn build(self) -> Meta {
        let txid = self.txid.unwrap_or_else(|| self.meta.id.to_string());
        Meta { txid, ..self.meta }
    }
}

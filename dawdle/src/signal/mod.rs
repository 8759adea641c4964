//! Signals: an application's own events, sent now or at a later time, and
//! received by handlers on any node like row events.
//!
//! A type becomes a signal with `#[derive(Signal)]` (beside serde's
//! `Serialize` and `Deserialize`), which gives it a stable wire name:
//!
//! ```
//! use serde::{Deserialize, Serialize};
//!
//! #[derive(Debug, Serialize, Deserialize, dawdle::Signal)]
//! #[dawdle(name = "billing.invoice_due")]   // default: the type's path
//! pub struct InvoiceDue {
//!     pub invoice: i64,
//! }
//!
//! #[dawdle::handler]
//! async fn remind(due: dawdle::Signaled<InvoiceDue>) {
//!     println!("invoice {} is due (signal {})", due.payload.invoice, due.meta.id);
//! }
//! ```
//!
//! [`signal`] records one in the caller's transaction, a *transactional
//! outbox*: it is delivered if and only if the transaction commits. Its id
//! comes from the same sequence as the row events' (a signal sent after a
//! write has a higher id), but each signal is a FIFO group of its own:
//! handlers may see it before or after the transaction's row events.
//!
//! ```no_run
//! # use serde::{Deserialize, Serialize};
//! # #[derive(Debug, Serialize, Deserialize, dawdle::Signal)]
//! # pub struct InvoiceDue { pub invoice: i64 }
//! # async fn demo(client: &mut tokio_postgres::Client) -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//!
//! let tx = client.transaction().await?;
//! // ... the application's writes ...
//! dawdle::signal(&tx, &InvoiceDue { invoice: 7 }).await?;
//! let id = dawdle::signal::SignalBuilder::new(&InvoiceDue { invoice: 8 })
//!     .delay(Duration::from_secs(30 * 24 * 3600))
//!     .send(&tx)
//!     .await?;
//! tx.commit().await?;
//! // Changed our mind: a delayed signal can be cancelled until it is due.
//! dawdle::signal::cancel(&*client, id).await?;
//! # Ok(()) }
//! ```
//!
//! Underneath is an SQL function, so that any client signals alike:
//!
//! ```sql
//! SELECT dawdle.signal('billing.invoice_due', '{"invoice": 7}');
//! SELECT dawdle.signal('billing.invoice_due', '{"invoice": 8}', now() + interval '30 days');
//! SELECT dawdle.cancel_signal(42);
//! ```
//!
//! # Delays
//!
//! A signal to deliver later waits in PostgreSQL, in `dawdle.delayed`, as
//! long as it takes: restarts and outages of the watcher or the queue do
//! not lose it. The active watcher keeps the earliest due time (an index
//! lookup, whatever the number waiting) and releases each signal within a
//! second of its time, or at once when it starts after a signal fell due.
//! Its due time can be changed with an `UPDATE` of `deliver_at` there.
//! A released signal keeps the id it was given when it was sent; its
//! `txid` is the transaction that released it.
//!
//! # Without a database
//!
//! [`RuntimeHandle::signal`](crate::RuntimeHandle::signal) sends a signal
//! straight to the queue (no delay, no transaction); in
//! [direct mode](crate::RuntimeBuilder::signal_directly), meant for tests,
//! it calls this process's handlers at once instead.

mod sender;

use std::fmt;
use std::future::Future;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;

// What a signal is, and how handlers receive it, are event types
// (`crate::event`); this module sends them.
pub use crate::event::signaled::{Signal, SignalType};
pub use crate::event::Signaled;
pub(crate) use sender::Sender;

/// Not public API: what `#[derive(Signal)]` submits.
#[doc(hidden)]
#[derive(Debug)]
pub struct SignalRegistration {
    pub signal: &'static SignalType,
}

inventory::collect!(SignalRegistration);

/// Every `Signal` type linked into the program, sorted by name.
pub fn signals() -> Vec<&'static SignalType> {
    let mut all: Vec<_> = inventory::iter::<SignalRegistration>
        .into_iter()
        .map(|r| r.signal)
        .collect();
    all.sort_by_key(|s| (s.name, s.type_name));
    all.dedup();
    all
}

/// Each wire name that more than one type claims, with those types.
pub(crate) fn name_clashes(signals: &[&'static SignalType]) -> Vec<String> {
    let mut clashes = Vec::new();
    for (i, signal) in signals.iter().enumerate() {
        if i > 0 && signals[i - 1].name == signal.name {
            continue;
        }
        let types: Vec<&str> = signals[i..]
            .iter()
            .take_while(|s| s.name == signal.name)
            .map(|s| s.type_name)
            .collect();
        if types.len() > 1 {
            clashes.push(format!("{:?} ({})", signal.name, types.join(", ")));
        }
    }
    clashes
}

/// Why a signal could not be sent or cancelled.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SignalError {
    /// The value does not serialize to JSON.
    #[error("cannot serialize signal {name}: {source}")]
    Serialize {
        /// The signal's wire name.
        name: &'static str,
        /// serde_json's error.
        source: serde_json::Error,
    },
    /// The database refused, or is unreachable. Without dawdle's SQL
    /// installed, this says that `dawdle.signal` does not exist: apply
    /// the up migration. The message is the server's, as
    /// [`DisplayPgError`](crate::database::DisplayPgError) shows it, so the
    /// error is not also a [`source`](std::error::Error::source).
    #[error("cannot record the signal in PostgreSQL: {}", crate::database::DisplayPgError::new(.0))]
    Database(tokio_postgres::Error),
    /// The queue refused a signal sent without a database.
    #[error("the queue refused the signal: {0}")]
    Queue(#[from] crate::queue::QueueError),
    /// In direct mode, a handler failed.
    #[error("handler {handler} failed: {error}")]
    Handler {
        /// The handler's name.
        handler: &'static str,
        /// What it returned, or its panic.
        error: crate::handler::HandlerError,
    },
    /// Direct mode needs a handler for the signal, as the listener would.
    #[error("no handler for signal {0:?} is linked into this program")]
    NoHandler(String),
    /// The runtime has routes, and none of them takes the signal.
    #[error("no route of the runtime takes signal {0:?}")]
    NoRoute(String),
}

impl From<tokio_postgres::Error> for SignalError {
    fn from(error: tokio_postgres::Error) -> SignalError {
        SignalError::Database(error)
    }
}

/// A tokio-postgres or deadpool client or transaction: what [`signal`]
/// and [`cancel`] run their query on.
pub trait GenericClient: Sync {
    #[doc(hidden)]
    fn query_one_for_dawdle(
        &self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> impl Future<Output = Result<Row, tokio_postgres::Error>> + Send;
}

macro_rules! generic_client {
    ($($ty:ty => $inner:ty),* $(,)?) => {$(
        impl GenericClient for $ty {
            fn query_one_for_dawdle(
                &self,
                sql: &str,
                params: &[&(dyn ToSql + Sync)],
            ) -> impl Future<Output = Result<Row, tokio_postgres::Error>> + Send {
                <$inner>::query_one(self, sql, params)
            }
        }
    )*};
}

generic_client!(
    tokio_postgres::Client => tokio_postgres::Client,
    deadpool_postgres::ClientWrapper => tokio_postgres::Client,
    deadpool_postgres::Client => tokio_postgres::Client,
    tokio_postgres::Transaction<'_> => tokio_postgres::Transaction<'_>,
    deadpool_postgres::Transaction<'_> => tokio_postgres::Transaction<'_>,
);

/// Records `value` in the transaction of `client`, to be delivered at once
/// when it commits; returns its id, the `meta.id` its handlers see.
pub async fn signal<C, T>(client: &C, value: &T) -> Result<i64, SignalError>
where
    C: GenericClient + ?Sized,
    T: Signal,
{
    SignalBuilder::new(value).send(client).await
}

/// A signal with a delay or a time to deliver it at.
pub struct SignalBuilder<'a, T> {
    value: &'a T,
    at: Option<DateTime<Utc>>,
    delay: Duration,
}

impl<T> fmt::Debug for SignalBuilder<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignalBuilder")
            .field("at", &self.at)
            .field("delay", &self.delay)
            .finish_non_exhaustive()
    }
}

impl<'a, T: Signal> SignalBuilder<'a, T> {
    /// A signal of `value`, delivered when its transaction commits.
    pub fn new(value: &'a T) -> Self {
        SignalBuilder {
            value,
            at: None,
            delay: Duration::ZERO,
        }
    }

    /// Delivers it `delay` after it is sent (by the database's clock).
    pub fn delay(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }

    /// Delivers it at `at` (at once if that has passed; a
    /// [`delay`](Self::delay) adds to it).
    pub fn at(mut self, at: DateTime<Utc>) -> Self {
        self.at = Some(at);
        self
    }

    /// Records it in the transaction of `client`; returns its id, with
    /// which it can be [cancelled](cancel) until it is due.
    pub async fn send<C: GenericClient + ?Sized>(self, client: &C) -> Result<i64, SignalError> {
        let payload =
            serde_json::to_string(self.value).map_err(|source| SignalError::Serialize {
                name: T::NAME,
                source,
            })?;
        let at = self.at.map(|at| at.to_rfc3339());
        let delay = self.delay.as_secs_f64();
        let row = client
            .query_one_for_dawdle(
                crate::sql::catalog::signals::SIGNAL,
                &[&T::NAME, &payload, &at, &delay],
            )
            .await?;
        Ok(row.get(0))
    }
}

/// Cancels a signal that waits for its time; says whether it did (`false`:
/// it was released already, or never delayed, or the id is unknown).
pub async fn cancel<C: GenericClient + ?Sized>(client: &C, id: i64) -> Result<bool, SignalError> {
    let row = client
        .query_one_for_dawdle(crate::sql::catalog::signals::CANCEL, &[&id])
        .await?;
    Ok(row.get(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_each_name_claimed_twice_with_its_types() {
        let a = &SignalType {
            name: "a",
            type_name: "x::A",
        };
        let a2 = &SignalType {
            name: "a",
            type_name: "y::A",
        };
        let b = &SignalType {
            name: "b",
            type_name: "x::B",
        };
        assert!(name_clashes(&[a, b]).is_empty());
        assert_eq!(name_clashes(&[a, a2, b]), vec![r#""a" (x::A, y::A)"#]);
    }
}

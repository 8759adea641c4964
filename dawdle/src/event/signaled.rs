//! Signals as handlers receive them: [`Signaled<T>`], and the [`Signal`]
//! trait and [`SignalType`] description that make a type a signal. Sending
//! them is [`crate::signal`]'s job.

use chrono::{DateTime, FixedOffset};
use serde::de::DeserializeOwned;
use serde::Serialize;

use super::{EventArg, Meta, Subject};
use crate::decode::DecodeError;
use crate::wire::WireEvent;

/// An application event type: `#[derive(Signal)]` implements it.
///
/// Its [`NAME`](Signal::NAME) travels in every message and chooses the
/// handlers: keep it stable when the type moves or is renamed.
pub trait Signal: Serialize + DeserializeOwned + Send + Sync + 'static {
    /// The wire name (`#[dawdle(name = "...")]`, by default the type's path).
    const NAME: &'static str;
    /// The signal's description, registered with the runtime.
    const SIGNAL: &'static SignalType;
}

/// A signal type, as the runtime knows it: its wire name and Rust type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SignalType {
    /// The wire name.
    pub name: &'static str,
    /// The Rust type, as written (for messages only).
    pub type_name: &'static str,
}

/// A received signal, as a handler taking `Signaled<T>` gets it.
#[derive(Debug, Clone, PartialEq)]
pub struct Signaled<T> {
    /// The value that was signalled.
    pub payload: T,
    /// When it was to be delivered: when it was sent, unless delayed.
    pub deliver_at: DateTime<FixedOffset>,
    /// The event's metadata: `meta.id` is the id [`signal`](crate::signal())
    /// returned, `meta.action` is [`Action::Signal`](crate::Action::Signal),
    /// and `meta.captured_at` when it was sent.
    pub meta: Meta,
}

impl<T: Signal> EventArg for Signaled<T> {
    const SUBJECT: Subject = Subject::Signal(T::SIGNAL);

    fn from_event(event: &WireEvent) -> Result<Self, DecodeError> {
        let payload = event.payload.as_ref().unwrap_or(&serde_json::Value::Null);
        let fail = |reason: String| DecodeError::Signal {
            name: T::NAME.to_owned(),
            rust_type: T::SIGNAL.type_name,
            value: crate::decode::shorten(payload),
            reason,
        };
        Ok(Signaled {
            payload: T::deserialize(payload).map_err(|e| fail(e.to_string()))?,
            deliver_at: event
                .deliver_at
                .ok_or_else(|| fail("the event has no deliver_at".to_owned()))?,
            meta: Meta::of(event),
        })
    }
}

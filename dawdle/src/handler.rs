//! Handler registration: what `#[dawdle::handler]` submits, how the
//! listener finds every handler of an event, and how a handler is called.

use std::any::Any;
use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use tokio::time::Instant;
use tracing::Instrument;

use crate::decode::DecodeError;
use crate::event::{EventArg, Subject};
use crate::observability;
use crate::queue::BoxFuture;
use crate::sync::AbortOnDrop;
use crate::table::{Action, Table};
use crate::wire::WireEvent;

/// A handler's failure: the error it returned, or its panic.
///
/// The returned error is kept as it was, not rendered to text: its
/// `Display` is what the listener logs, and [`HandlerError::downcast`]
/// gives it back. It is `Send + Sync` whatever the handler's error type is,
/// so that it fits into `anyhow::Error` and `Box<dyn Error + Send + Sync>`.
pub struct HandlerError(Failure);

enum Failure {
    /// The handler returned `Err`. Behind a mutex only to be `Sync`: the
    /// handler's error type need not be.
    Returned(std::sync::Mutex<Box<dyn Returned>>),
    /// The handler panicked, with this message.
    Panicked(String),
    /// The handler's task was cancelled, or dawdle broke a promise of its own.
    Other(String),
}

/// A handler's error type, seen through `dyn`.
trait Returned: fmt::Display + Send {
    fn as_any(&self) -> &(dyn Any + Send);
    fn into_any(self: Box<Self>) -> Box<dyn Any + Send>;
}

impl<E: fmt::Display + Send + 'static> Returned for E {
    fn as_any(&self) -> &(dyn Any + Send) {
        self
    }

    fn into_any(self: Box<Self>) -> Box<dyn Any + Send> {
        self
    }
}

/// The message of a panic, from a task's `JoinError::into_panic`.
fn panic_message(panic: Box<dyn Any + Send>) -> String {
    match panic.downcast::<String>() {
        Ok(s) => *s,
        Err(panic) => panic
            .downcast_ref::<&str>()
            .map_or_else(|| "(no message)".to_owned(), |s| (*s).to_owned()),
    }
}

impl HandlerError {
    /// The error a handler returned.
    pub fn returned<E: fmt::Display + Send + 'static>(error: E) -> HandlerError {
        HandlerError(Failure::Returned(std::sync::Mutex::new(Box::new(error))))
    }

    /// A handler's panic, with the panic's message.
    pub fn panicked(message: impl Into<String>) -> HandlerError {
        HandlerError(Failure::Panicked(message.into()))
    }

    pub(crate) fn other(message: impl Into<String>) -> HandlerError {
        HandlerError(Failure::Other(message.into()))
    }

    /// A handler's task that did not return: its panic, or its cancellation.
    pub(crate) fn from_join(join: tokio::task::JoinError) -> HandlerError {
        if join.is_panic() {
            HandlerError::panicked(panic_message(join.into_panic()))
        } else {
            HandlerError::other(format!("was cancelled: {join}"))
        }
    }

    /// Whether the handler panicked (rather than returned an error).
    pub fn is_panic(&self) -> bool {
        matches!(self.0, Failure::Panicked(_))
    }

    /// The error the handler returned, as its own type `E`; `Err(self)`
    /// when it returned another type, or panicked.
    pub fn downcast<E: 'static>(self) -> Result<E, HandlerError> {
        let Failure::Returned(error) = self.0 else {
            return Err(self);
        };
        let error = error.into_inner().unwrap_or_else(|e| e.into_inner());
        // `*error`: the box itself is a `Returned` too, and would answer for itself.
        if !(*error).as_any().is::<E>() {
            return Err(HandlerError(Failure::Returned(std::sync::Mutex::new(
                error,
            ))));
        }
        match error.into_any().downcast::<E>() {
            Ok(error) => Ok(*error),
            Err(_) => Err(HandlerError::other(
                "internal error: a checked downcast failed",
            )),
        }
    }
}

impl fmt::Display for HandlerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Failure::Returned(error) => {
                let error = error.lock().unwrap_or_else(|e| e.into_inner());
                fmt::Display::fmt(&**error, f)
            }
            Failure::Panicked(message) => write!(f, "panicked: {message}"),
            Failure::Other(message) => f.write_str(message),
        }
    }
}

impl fmt::Debug for HandlerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.0 {
            Failure::Returned(_) => "Returned",
            Failure::Panicked(_) => "Panicked",
            Failure::Other(_) => "Other",
        };
        f.debug_tuple("HandlerError")
            .field(&format_args!("{kind}: {self}"))
            .finish()
    }
}

impl std::error::Error for HandlerError {}

/// What a handler may return: `()` or `Result<(), E>` with a displayable `E`.
pub trait HandlerResult: Send + 'static {
    /// The outcome, with the error kept as it was.
    fn into_result(self) -> Result<(), HandlerError>;
}

impl HandlerResult for () {
    fn into_result(self) -> Result<(), HandlerError> {
        Ok(())
    }
}

impl<E: fmt::Display + Send + 'static> HandlerResult for Result<(), E> {
    fn into_result(self) -> Result<(), HandlerError> {
        self.map_err(HandlerError::returned)
    }
}

/// Not public API: what `#[dawdle::handler]` submits to `inventory`.
#[doc(hidden)]
pub struct Handler {
    /// Stable name: module path and function name, or `name = "..."`.
    pub name: &'static str,
    /// What it subscribes to.
    pub subject: Subject,
    /// Decodes the event into the handler's argument.
    pub decode: DecodeFn,
    /// Calls the handler with what `decode` returned.
    pub call: CallFn,
}

/// Not public API: the `decode` of a registration.
#[doc(hidden)]
pub type DecodeFn = fn(&WireEvent) -> Result<Box<dyn Any + Send>, DecodeError>;

/// Not public API: the `call` of a registration, which calls the handler
/// with the argument its `decode` made.
#[doc(hidden)]
pub type CallFn = fn(Box<dyn Any + Send>) -> BoxFuture<'static, Result<(), HandlerError>>;

impl Handler {
    /// The table of a row handler (`None` for a signal's).
    pub fn table(&self) -> Option<&'static Table> {
        match self.subject {
            Subject::Rows { table, .. } => Some(table),
            Subject::Signal(_) => None,
        }
    }

    /// The actions a row handler subscribes to (`[Signal]` for a signal's).
    pub fn actions(&self) -> &'static [Action] {
        match self.subject {
            Subject::Rows { actions, .. } => actions,
            Subject::Signal(_) => &[Action::Signal],
        }
    }
}

impl fmt::Debug for Handler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handler")
            .field("name", &self.name)
            .field("subject", &self.subject)
            .finish_non_exhaustive()
    }
}

inventory::collect!(Handler);

/// Not public API: the `decode` of a handler taking `A`.
#[doc(hidden)]
pub fn decode_arg<A: EventArg>(event: &WireEvent) -> Result<Box<dyn Any + Send>, DecodeError> {
    Ok(Box::new(A::from_event(event)?))
}

/// Every handler linked into the program, sorted by name.
pub fn handlers() -> Vec<&'static Handler> {
    let mut all: Vec<_> = inventory::iter::<Handler>.into_iter().collect();
    all.sort_by_key(|h| h.name);
    all
}

/// Calls `handler` with `arg`, the argument its `decode` made of event
/// `event_id` of `table` (`schema.table`): the one way dawdle calls a
/// handler, for the listener's messages and for signals sent in
/// [direct mode](crate::RuntimeBuilder::signal_directly) alike.
///
/// The handler runs in a task of its own, so that a panic fails this call
/// only and comes back as an error ([`HandlerError::is_panic`]); inside a
/// `handler` span, so that its own logs carry the event; and within
/// `timeout`, past which it is cancelled and the call fails. The call's
/// duration and outcome go to the handler metrics of
/// [`observability`](crate::observability).
pub(crate) async fn call(
    handler: &'static Handler,
    arg: Box<dyn Any + Send>,
    event_id: i64,
    table: &str,
    action: Action,
    timeout: Option<Duration>,
) -> Result<(), HandlerError> {
    let span = tracing::info_span!(
        "handler",
        handler = handler.name,
        event = event_id,
        table,
        action = action.as_str()
    );
    let started = Instant::now();
    // Aborted with this future, should a shutdown abandon the message, or
    // at the timeout.
    let mut task = AbortOnDrop(tokio::spawn((handler.call)(arg).instrument(span)));
    let result = match timeout {
        Some(limit) => match tokio::time::timeout(limit, &mut task.0).await {
            Ok(result) => result,
            Err(_) => Ok(Err(HandlerError::other(format!(
                "timed out after {limit:?} (the runtime's handler_timeout)"
            )))),
        },
        None => (&mut task.0).await,
    };
    let result = result.unwrap_or_else(|join| Err(HandlerError::from_join(join)));
    let labels = [("handler", handler.name)];
    metrics::histogram!(observability::HANDLER_DURATION, &labels)
        .record(observability::seconds(started.elapsed()));
    match &result {
        Ok(()) => metrics::counter!(observability::HANDLED, &labels).increment(1),
        Err(_) => metrics::counter!(observability::FAILED, &labels).increment(1),
    }
    result
}

/// Handlers indexed by table and action, and by signal, checked for
/// duplicate names.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    by_table: BTreeMap<(&'static str, &'static str), Vec<&'static Handler>>,
    tables: BTreeMap<(&'static str, &'static str), &'static Table>,
    by_signal: BTreeMap<&'static str, Vec<&'static Handler>>,
}

impl Registry {
    /// Indexes `handlers`; every name used twice is an error, all listed.
    pub(crate) fn new(
        handlers: Vec<&'static Handler>,
        tables: Vec<&'static Table>,
    ) -> Result<Registry, Vec<&'static str>> {
        let mut names: BTreeMap<&str, usize> = BTreeMap::new();
        for h in &handlers {
            *names.entry(h.name).or_default() += 1;
        }
        let duplicates: Vec<&str> = names
            .into_iter()
            .filter(|(_, n)| *n > 1)
            .map(|(name, _)| name)
            .collect();
        if !duplicates.is_empty() {
            return Err(duplicates);
        }
        let mut registry = Registry::default();
        for table in tables {
            registry.tables.insert((table.schema, table.name), table);
        }
        for handler in handlers {
            match handler.subject {
                Subject::Rows { table, .. } => {
                    registry.tables.insert((table.schema, table.name), table);
                    registry
                        .by_table
                        .entry((table.schema, table.name))
                        .or_default()
                        .push(handler);
                }
                Subject::Signal(signal) => registry
                    .by_signal
                    .entry(signal.name)
                    .or_default()
                    .push(handler),
            }
        }
        Ok(registry)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.by_table.is_empty() && self.by_signal.is_empty()
    }

    /// Whether a `Watched` type is registered for the table.
    pub(crate) fn knows(&self, schema: &str, table: &str) -> bool {
        self.tables.keys().any(|(s, t)| *s == schema && *t == table)
    }

    /// The handlers of `action` on the table.
    pub(crate) fn handlers_of(
        &self,
        schema: &str,
        table: &str,
        action: Action,
    ) -> Vec<&'static Handler> {
        self.by_table
            .iter()
            .filter(|((s, t), _)| *s == schema && *t == table)
            .flat_map(|(_, handlers)| handlers.iter().copied())
            .filter(|h| h.actions().contains(&action))
            .collect()
    }

    /// The handlers of the signal named `name`.
    pub(crate) fn handlers_of_signal(&self, name: &str) -> &[&'static Handler] {
        self.by_signal.get(name).map_or(&[], Vec::as_slice)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::{Column, Encoding, Events, SessionSettings};

    static TABLE: Table = Table {
        type_name: "t::T",
        schema: "public",
        name: "t",
        columns: &[Column {
            name: "id",
            field: "id",
            primary_key: true,
            sql: None,
            encoding: Encoding::Json,
            settings: SessionSettings::NONE,
        }],
        events: Events::ALL,
        capture_unchanged: false,
        capture_replica: false,
    };

    fn decode(_: &WireEvent) -> Result<Box<dyn Any + Send>, DecodeError> {
        Ok(Box::new(()))
    }

    fn call(_: Box<dyn Any + Send>) -> BoxFuture<'static, Result<(), HandlerError>> {
        Box::pin(async { Ok(()) })
    }

    fn handler(name: &'static str) -> &'static Handler {
        Box::leak(Box::new(Handler {
            name,
            subject: Subject::Rows {
                table: &TABLE,
                actions: &Action::ALL,
            },
            decode,
            call,
        }))
    }

    #[test]
    fn a_handler_error_keeps_what_was_returned() {
        #[derive(Debug, PartialEq)]
        struct Mine(u32);
        impl fmt::Display for Mine {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write!(f, "mine {}", self.0)
            }
        }
        let error = Err::<(), _>(Mine(7)).into_result().unwrap_err();
        assert_eq!(error.to_string(), "mine 7");
        // The wrong type gives the error back, still displayable.
        let error = error.downcast::<String>().unwrap_err();
        assert_eq!(error.to_string(), "mine 7");
        assert_eq!(error.downcast::<Mine>().unwrap(), Mine(7));

        let panic = HandlerError::panicked("boom");
        assert!(panic.is_panic());
        assert_eq!(panic.to_string(), "panicked: boom");
        assert!(panic.downcast::<String>().is_err());
        // Fits where errors must be Send + Sync.
        let boxed: Box<dyn std::error::Error + Send + Sync> = Box::new(HandlerError::returned("x"));
        assert_eq!(boxed.to_string(), "x");
    }

    #[test]
    fn duplicate_names_are_all_listed() {
        let handlers = vec![
            handler("a"),
            handler("b"),
            handler("a"),
            handler("c"),
            handler("c"),
        ];
        assert_eq!(Registry::new(handlers, vec![]).unwrap_err(), vec!["a", "c"]);
        let registry = Registry::new(vec![handler("a"), handler("b")], vec![]).unwrap();
        assert!(registry.knows("public", "t") && !registry.knows("public", "u"));
        assert_eq!(registry.handlers_of("public", "t", Action::Delete).len(), 2);
    }
}

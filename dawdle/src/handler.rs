//! Handler registration: what `#[dawdle::handler]` submits, and how the
//! listener finds every handler of an event.

use std::any::Any;
use std::collections::BTreeMap;
use std::fmt;

use crate::decode::DecodeError;
use crate::event::EventArg;
use crate::queue::BoxFuture;
use crate::table::{Action, Events, Table};
use crate::wire::WireEvent;

/// A handler's failure, as the listener logs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HandlerError(pub String);

impl fmt::Display for HandlerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for HandlerError {}

/// What a handler may return: `()` or `Result<(), E>` with a displayable `E`.
pub trait HandlerResult: Send + 'static {
    /// The outcome, with the error rendered for the logs.
    fn into_result(self) -> Result<(), HandlerError>;
}

impl HandlerResult for () {
    fn into_result(self) -> Result<(), HandlerError> {
        Ok(())
    }
}

impl<E: fmt::Display + Send + 'static> HandlerResult for Result<(), E> {
    fn into_result(self) -> Result<(), HandlerError> {
        self.map_err(|e| HandlerError(e.to_string()))
    }
}

/// Not public API: what `#[dawdle::handler]` submits to `inventory`.
#[doc(hidden)]
pub struct Handler {
    /// Stable name: module path and function name, or `name = "..."`.
    pub name: &'static str,
    /// The table of the handler's `Watched` type.
    pub table: &'static Table,
    /// The actions it subscribes to.
    pub actions: Events,
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

impl fmt::Debug for Handler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Handler")
            .field("name", &self.name)
            .field("table", &self.table.qualified_name().to_string())
            .field("actions", &self.actions)
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

/// Handlers indexed by table and action, checked for duplicate names.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    by_table: BTreeMap<(&'static str, &'static str), Vec<&'static Handler>>,
    tables: BTreeMap<(&'static str, &'static str), &'static Table>,
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
        for table in tables.into_iter().chain(handlers.iter().map(|h| h.table)) {
            registry.tables.insert((table.schema, table.name), table);
        }
        for handler in handlers {
            registry
                .by_table
                .entry((handler.table.schema, handler.table.name))
                .or_default()
                .push(handler);
        }
        Ok(registry)
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.by_table.is_empty()
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
            .filter(|h| h.actions.contains(action))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::{Column, Encoding, SessionSettings};

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
            table: &TABLE,
            actions: Events::ALL,
            decode,
            call,
        }))
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

//! Routes: which queues a watcher delivers each table's and each signal's
//! events to.

use std::collections::BTreeSet;
use std::sync::Arc;

use crate::queue::Queue;
use crate::signal::Signal;
use crate::watched::Watched;

/// One destination of a [`Watcher`](super::Watcher): a queue, and the
/// tables and signals whose events go to it.
///
/// A watcher delivers every event to each route that takes it: several
/// routes that take the same table each get their own copy (fan-out), so
/// that several services, each with its own queue, each see every change.
/// The guarantees hold per route: every event reaches each of its routes at
/// least once, and on a FIFO queue a row's events arrive in order.
///
/// ```no_run
/// # async fn routes(config: tokio_postgres::Config) {
/// use dawdle::watcher::{Route, Watcher};
/// use dawdle::PgQueue;
///
/// let billing = PgQueue::builder(config.clone()).name("billing").build();
/// let search = PgQueue::builder(config.clone()).name("search").build();
/// let watcher = Watcher::routed(
///     config,
///     // Orders and the invoice signal, for the billing service.
///     Route::new("billing", billing)
///         .tables(["public.orders"])
///         .signals(["invoice.due"]),
/// )
/// // Every table and signal, for the search indexer.
/// .route(Route::new("search", search))
/// .build();
/// # let _ = watcher; }
/// ```
#[derive(Debug, Clone)]
pub struct Route {
    name: String,
    queue: Arc<dyn Queue>,
    /// `(schema, table)` pairs.
    tables: Option<BTreeSet<(String, String)>>,
    signals: Option<BTreeSet<String>>,
}

impl Route {
    /// A route named `name` (in logs, metrics and by-reference events;
    /// unique among a watcher's routes) to `queue`, taking every event until
    /// [`tables`](Route::tables) or [`signals`](Route::signals) narrows it.
    pub fn new(name: impl Into<String>, queue: impl Queue) -> Route {
        Route::shared(name, Arc::new(queue))
    }

    /// [`Route::new`] with a queue that is shared already.
    pub fn shared(name: impl Into<String>, queue: Arc<dyn Queue>) -> Route {
        Route {
            name: name.into(),
            queue,
            tables: None,
            signals: None,
        }
    }

    /// Takes the events of these tables (`schema.table`, or `table` for
    /// `public.table`; a partitioned or inherited table's events are its
    /// root's). Once `tables` or `signals` is called, the route takes only
    /// what they name: tables named here, and signals named by `signals`.
    pub fn tables<I, S>(mut self, tables: I) -> Route
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let named = tables.into_iter().map(|t| qualify(t.as_ref()));
        self.tables.get_or_insert_with(BTreeSet::new).extend(named);
        self.signals.get_or_insert_with(BTreeSet::new);
        self
    }

    /// Takes the events of `T`'s table.
    pub fn table<T: Watched>(mut self) -> Route {
        let table = T::TABLE;
        let pair = (table.schema.to_owned(), table.name.to_owned());
        self.tables.get_or_insert_with(BTreeSet::new).insert(pair);
        self.signals.get_or_insert_with(BTreeSet::new);
        self
    }

    /// Takes the signals with these wire names ([`Signal::NAME`]). Once
    /// `tables` or `signals` is called, the route takes only what they name.
    pub fn signals<I, S>(mut self, signals: I) -> Route
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let named = signals.into_iter().map(|s| s.as_ref().to_owned());
        self.signals.get_or_insert_with(BTreeSet::new).extend(named);
        self.tables.get_or_insert_with(BTreeSet::new);
        self
    }

    /// Takes signal `S`.
    pub fn signal<S: Signal>(self) -> Route {
        self.signals([S::NAME])
    }

    /// The route's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The route's queue.
    pub fn queue(&self) -> &Arc<dyn Queue> {
        &self.queue
    }

    /// Whether the route takes every event.
    pub fn takes_everything(&self) -> bool {
        self.tables.is_none() && self.signals.is_none()
    }

    /// Whether the route takes the events of table `schema.table`.
    pub fn takes_table(&self, schema: &str, table: &str) -> bool {
        match &self.tables {
            None => true,
            Some(tables) => tables.contains(&(schema.to_owned(), table.to_owned())),
        }
    }

    /// Whether the route takes the signal named `signal`.
    pub fn takes_signal(&self, signal: &str) -> bool {
        self.signals.as_ref().is_none_or(|s| s.contains(signal))
    }

    /// The tables named, as `(schema, table)` (`None`: every table).
    pub fn table_names(&self) -> Option<impl Iterator<Item = (&str, &str)>> {
        self.tables
            .as_ref()
            .map(|t| t.iter().map(|(s, n)| (s.as_str(), n.as_str())))
    }

    /// The signals named (`None`: every signal).
    pub fn signal_names(&self) -> Option<impl Iterator<Item = &str>> {
        self.signals.as_ref().map(|s| s.iter().map(String::as_str))
    }
}

/// `schema.table` (or `table`, in `public`) as `(schema, table)`.
fn qualify(table: &str) -> (String, String) {
    match table.split_once('.') {
        Some((schema, name)) => (schema.to_owned(), name.to_owned()),
        None => ("public".to_owned(), table.to_owned()),
    }
}

/// Why a watcher's routes cannot run.
pub(crate) fn check(routes: &[Route]) -> Result<(), String> {
    if routes.is_empty() {
        return Err("the watcher has no route: give it a queue".to_owned());
    }
    let mut names = BTreeSet::new();
    for route in routes {
        if route.name.is_empty() {
            return Err("a route's name is empty".to_owned());
        }
        if !names.insert(route.name.as_str()) {
            return Err(format!(
                "route names must be unique; {:?} is used twice",
                route.name
            ));
        }
        if route.tables.as_ref().is_some_and(BTreeSet::is_empty)
            && route.signals.as_ref().is_some_and(BTreeSet::is_empty)
        {
            return Err(format!(
                "route {:?} takes nothing: name its tables or signals, or neither for everything",
                route.name
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::MemoryQueue;

    #[test]
    fn a_route_takes_what_it_names() {
        let all = Route::new("all", MemoryQueue::new());
        assert!(all.takes_everything() && all.takes_table("a", "b") && all.takes_signal("s"));
        let orders = Route::new("orders", MemoryQueue::new()).tables(["orders", "shop.items"]);
        assert!(orders.takes_table("public", "orders") && orders.takes_table("shop", "items"));
        assert!(!orders.takes_table("shop", "orders") && !orders.takes_signal("s"));
        let due = Route::new("due", MemoryQueue::new()).signals(["invoice.due"]);
        assert!(due.takes_signal("invoice.due") && !due.takes_table("public", "orders"));
    }

    #[test]
    fn routes_are_checked() {
        let queue = || MemoryQueue::new();
        assert!(check(&[]).is_err());
        let twice = [Route::new("a", queue()), Route::new("a", queue())];
        assert!(check(&twice).unwrap_err().contains("\"a\" is used twice"));
        let none = [Route::new("a", queue()).tables(Vec::<String>::new())];
        assert!(check(&none).unwrap_err().contains("takes nothing"));
        assert!(check(&[Route::new("a", queue()), Route::new("b", queue())]).is_ok());
    }
}

//! [`Runtime`]: runs the watcher side, the listener side, or both.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::database::Database;
use crate::handler::Registry;
use crate::listener::{self, Listener};
use crate::queue::Queue;
use crate::signal::{Sender, Signal, SignalError};
use crate::watcher::{Route, Watcher, WatcherBuilder, WatcherError, WatcherHandle};

/// Why a [`Runtime`] cannot be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BuildError {
    /// Neither `.watch()` nor `.listen()` was called.
    #[error("the runtime runs nothing: call .watch(), .listen() or both")]
    NothingToRun,
    /// No queue was given, and no database to make the default
    /// [`PgQueue`](crate::PgQueue) on.
    #[error(
        "no queue: call .database(..) for a PgQueue on that database, or .queue(..) with a \
         dawdle::PgQueue, dawdle::SqsQueue or dawdle::MemoryQueue"
    )]
    NoQueue,
    /// The watcher needs connection settings for its dedicated connection.
    #[error(
        "the watcher needs its own connection: call .database(..) with a tokio_postgres::Config \
         or a dawdle::Database"
    )]
    NoDatabase,
    /// The listener runs with no handler linked into the program.
    #[error("the listener has no handler: write a #[dawdle::handler] fn and link its crate")]
    NoHandlers,
    /// Several handlers share a name.
    #[error("handler names must be unique; used more than once: {}", .0.join(", "))]
    DuplicateHandlers(Vec<String>),
    /// Several `Signal` types share a wire name: a message could not say
    /// which one it carries.
    #[error("signal names must be unique; claimed by more than one type: {}", .0.join("; "))]
    DuplicateSignals(Vec<String>),
    /// The listener's connection pool could not be built from `.database(..)`.
    #[error("cannot build the listener's connection pool: {0}")]
    Pool(#[source] deadpool_postgres::BuildError),
}

/// Settings of a [`Runtime`].
#[derive(Debug)]
pub struct RuntimeBuilder {
    pool: Option<deadpool_postgres::Pool>,
    database: Option<Database>,
    queue: Option<Arc<dyn Queue>>,
    routes: Vec<Route>,
    watch: bool,
    listen: bool,
    settings: listener::Settings,
    watcher: Option<TuneWatcher>,
    signal_directly: bool,
}

/// A deferred change to the watcher's settings.
struct TuneWatcher(Box<dyn FnOnce(WatcherBuilder) -> WatcherBuilder + Send>);

impl std::fmt::Debug for TuneWatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TuneWatcher")
    }
}

impl RuntimeBuilder {
    /// The pool the listener fetches by-reference payloads with.
    pub fn pool(mut self, pool: deadpool_postgres::Pool) -> Self {
        self.pool = Some(pool);
        self
    }

    /// Connection settings of the database: the watcher's dedicated
    /// connection (advisory lock and LISTEN need one of their own), and the
    /// listener's pool when `.pool()` gives none. A
    /// [`tokio_postgres::Config`], or a [`Database`] for libpq's `sslmode`s
    /// that tokio-postgres lacks (`verify-full`, ...) and `sslrootcert`:
    /// `.database(Database::from_url(&url)?)`.
    pub fn database(mut self, database: impl Into<Database>) -> Self {
        self.database = Some(database.into());
        self
    }

    /// The queue between watcher and listeners. Without one, the runtime
    /// uses a [`PgQueue`](crate::PgQueue) named `default` on the
    /// [`database`](RuntimeBuilder::database), with its default settings:
    /// durable, shared by every process that uses the same database.
    pub fn queue(mut self, queue: impl Queue) -> Self {
        self.queue = Some(Arc::new(queue));
        self
    }

    /// Sends the events `route` takes to its queue. Once a route is given,
    /// the watcher sends by the routes alone (each event to every route
    /// that takes it), and [`queue`](RuntimeBuilder::queue) is only where
    /// this program's listener receives; [`RuntimeHandle::signal`] sends
    /// to the routes that take the signal.
    ///
    /// ```no_run
    /// # async fn demo(config: tokio_postgres::Config) -> Result<(), Box<dyn std::error::Error>> {
    /// use dawdle::watcher::Route;
    /// use dawdle::PgQueue;
    ///
    /// let billing = PgQueue::builder(config.clone()).name("billing").build();
    /// let search = PgQueue::builder(config.clone()).name("search").build();
    /// let runtime = dawdle::Runtime::builder()
    ///     .database(config)
    ///     .route(Route::new("billing", billing.clone()).tables(["public.orders"]))
    ///     .route(Route::new("search", search))
    ///     .queue(billing) // this program's listener: the billing service
    ///     .watch()
    ///     .listen()
    ///     .build()?;
    /// # Ok(()) }
    /// ```
    pub fn route(mut self, route: Route) -> Self {
        self.routes.push(route);
        self
    }

    /// Runs the watcher here: one active watcher per database, whatever
    /// number of processes call this.
    pub fn watch(mut self) -> Self {
        self.watch = true;
        self
    }

    /// Runs the listener here: calls the handlers linked into this program.
    pub fn listen(mut self) -> Self {
        self.listen = true;
        self
    }

    /// Messages handled at once (default 16).
    pub fn concurrency(mut self, messages: usize) -> Self {
        self.settings.concurrency = messages.max(1);
        self
    }

    /// How long a received message stays hidden while it is handled, and
    /// the step by which a slow handler's message is extended (default 30 s).
    pub fn visibility_timeout(mut self, timeout: Duration) -> Self {
        self.settings.visibility = timeout.max(Duration::from_secs(1));
        self
    }

    /// Longest wait of one receive (default 20 s, SQS's maximum long poll).
    pub fn receive_wait(mut self, wait: Duration) -> Self {
        self.settings.wait = wait;
        self
    }

    /// Backoff of a failed message: `base` doubling per receive, at most
    /// `max` (default 1 s to 5 min).
    pub fn retry_backoff(mut self, base: Duration, max: Duration) -> Self {
        self.settings.retry_base = base;
        self.settings.retry_max = max.max(base);
        self
    }

    /// How long `shutdown` lets the listener handle what an in-process
    /// queue still holds and running handlers finish (default 30 s).
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.settings.shutdown_timeout = timeout;
        self
    }

    /// The longest one handler call may take (default 15 min; `None`: no
    /// limit). Past it, the call is cancelled and counts as failed: the
    /// event is delivered again later, so that a hung handler cannot hold
    /// its message, and its slot, forever.
    pub fn handler_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.settings.handler_timeout = timeout;
        self
    }

    /// Tunes the watcher (batch sizes, polling, linger).
    pub fn watcher(
        mut self,
        tune: impl FnOnce(WatcherBuilder) -> WatcherBuilder + Send + 'static,
    ) -> Self {
        self.watcher = Some(TuneWatcher(Box::new(tune)));
        self
    }

    /// Direct mode, for tests: [`RuntimeHandle::signal`] calls this
    /// program's handlers of the signal at once, one after another, and
    /// returns the first failure, instead of sending it to the queue.
    ///
    /// Each handler is called as the listener calls it: within the
    /// [handler timeout](RuntimeBuilder::handler_timeout), in its `handler`
    /// span, counted in the handler [metrics](crate::observability); a
    /// handler that fails, panics or times out does not keep the others
    /// from running. Its failure comes back as
    /// [`SignalError::Handler`](crate::signal::SignalError::Handler) (a
    /// panic too, with [`HandlerError::is_panic`](crate::handler::HandlerError::is_panic)):
    /// it does not unwind into the caller.
    pub fn signal_directly(mut self) -> Self {
        self.signal_directly = true;
        self
    }

    /// Checks the settings and the handlers linked into the program.
    pub fn build(self) -> Result<Runtime, BuildError> {
        if !self.watch && !self.listen {
            return Err(BuildError::NothingToRun);
        }
        let queue = match (self.queue, &self.database) {
            (Some(queue), _) => queue,
            (None, Some(database)) => Arc::new(crate::PgQueue::new(database.clone())),
            (None, None) => return Err(BuildError::NoQueue),
        };
        if self.watch && self.database.is_none() {
            return Err(BuildError::NoDatabase);
        }
        let clashes = crate::signal::name_clashes(&crate::signal::signals());
        if !clashes.is_empty() {
            return Err(BuildError::DuplicateSignals(clashes));
        }
        let registry = Registry::new(crate::handler::handlers(), crate::registry::tables())
            .map_err(|names| {
                BuildError::DuplicateHandlers(names.into_iter().map(str::to_owned).collect())
            })?;
        let registry = Arc::new(registry);
        if self.listen && registry.is_empty() {
            return Err(BuildError::NoHandlers);
        }
        let pool = match (self.pool, &self.database) {
            (Some(pool), _) => Some(pool),
            (None, Some(database)) => Some(database.pool(4).map_err(BuildError::Pool)?),
            (None, None) => None,
        };
        let routes = self.routes.clone();
        let watcher = match (self.watch, self.database) {
            (true, Some(database)) => {
                let mut each = routes.clone().into_iter();
                let builder = match each.next() {
                    None => Watcher::builder_shared(database, queue.clone()),
                    Some(first) => {
                        each.fold(Watcher::routed(database, first), WatcherBuilder::route)
                    }
                };
                let builder = match self.watcher {
                    Some(TuneWatcher(tune)) => tune(builder),
                    None => builder,
                };
                Some(builder.build())
            }
            _ => None,
        };
        let signals = Sender::new(
            queue.clone(),
            routes,
            registry.clone(),
            self.signal_directly,
            self.settings.handler_timeout,
        );
        let listener = self.listen.then(|| Listener {
            queue: queue.clone(),
            registry,
            pool,
            settings: self.settings,
            unknown: Default::default(),
        });
        Ok(Runtime {
            watcher,
            listener,
            signals,
        })
    }
}

/// Runs the watcher side, the listener side, or both, in this process.
///
/// ```no_run
/// # async fn demo(config: tokio_postgres::Config) -> Result<(), Box<dyn std::error::Error>> {
/// let runtime = dawdle::Runtime::builder()
///     .database(config)                 // and, without .queue(..), a PgQueue on it
///     .watch()
///     .listen()
///     .build()?;
/// let handle = runtime.start();
/// // ...
/// handle.shutdown().await?;
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct Runtime {
    watcher: Option<Watcher>,
    listener: Option<Listener>,
    signals: Sender,
}

impl Runtime {
    /// Settings for a runtime.
    pub fn builder() -> RuntimeBuilder {
        RuntimeBuilder {
            pool: None,
            database: None,
            queue: None,
            routes: Vec::new(),
            watch: false,
            listen: false,
            settings: listener::Settings {
                concurrency: 16,
                wait: Duration::from_secs(20),
                visibility: Duration::from_secs(30),
                retry_base: Duration::from_secs(1),
                retry_max: Duration::from_secs(300),
                shutdown_timeout: Duration::from_secs(30),
                handler_timeout: Some(Duration::from_secs(15 * 60)),
            },
            watcher: None,
            signal_directly: false,
        }
    }

    /// Starts the configured sides, each on tasks of its own, on the
    /// current tokio runtime. Connection failures are retried in the
    /// background, not returned.
    ///
    /// # Panics
    ///
    /// Outside a tokio runtime, as `tokio::spawn` does.
    pub fn start(self) -> RuntimeHandle {
        let watcher = self.watcher.map(Watcher::start);
        let (stop, stopped) = watch::channel(false);
        let listener = self
            .listener
            .map(|listener| tokio::spawn(Arc::new(listener).run(stopped)));
        RuntimeHandle {
            watcher,
            listener,
            stop,
            signals: self.signals,
        }
    }
}

/// A running [`Runtime`].
#[derive(Debug)]
pub struct RuntimeHandle {
    watcher: Option<WatcherHandle>,
    listener: Option<JoinHandle<()>>,
    stop: watch::Sender<bool>,
    signals: Sender,
}

impl RuntimeHandle {
    /// Sends a signal straight to the queue (with
    /// [routes](RuntimeBuilder::route), to the queue of each route that
    /// takes it: [`SignalError::NoRoute`] when none does), without a
    /// database: no transaction, no delay (use [`signal`](crate::signal())
    /// in a transaction for those). Handlers receive it as any signal; its
    /// `meta.source` is a random id of this runtime, and `meta.id` counts
    /// from 1. In [direct mode](RuntimeBuilder::signal_directly) this
    /// program's handlers are called instead, before it returns.
    pub async fn signal<T: Signal>(&self, value: &T) -> Result<i64, SignalError> {
        self.signals.send(value).await
    }

    /// The watcher's statistics, when this runtime watches.
    pub fn watcher_stats(&self) -> Option<&crate::watcher::Stats> {
        self.watcher.as_ref().map(WatcherHandle::stats)
    }

    /// Stops gracefully, losing nothing:
    ///
    /// 1. The watcher stops first, after its current round: events it did
    ///    not send stay in PostgreSQL for the next watcher.
    /// 2. The listener stops receiving. With a queue that does not outlive
    ///    the process ([`MemoryQueue`](crate::MemoryQueue)), it first
    ///    handles what the queue still holds, so that nothing the watcher
    ///    moved there is lost with the process.
    /// 3. Running handlers finish. Messages not fully handled stay on the
    ///    queue, which delivers them again.
    ///
    /// Steps 2 and 3 share the [shutdown timeout](RuntimeBuilder::shutdown_timeout).
    /// Past it, unfinished messages are handed back to the queue; on a
    /// `MemoryQueue` those, and messages waiting for a retry, are lost.
    pub async fn shutdown(self) -> Result<(), WatcherError> {
        // Nothing may enter an in-process queue once its listener stops.
        let watched = match self.watcher {
            Some(watcher) => watcher.shutdown().await,
            None => Ok(()),
        };
        let _ = self.stop.send(true);
        if let Some(listener) = self.listener {
            let _ = listener.await;
        }
        watched
    }
}

//! The operator's console: a read-mostly web page for one database.
//!
//! It shows the pipeline (backlog, the oldest waiting event's age, events
//! per minute over the last hour, the leading watcher and its standbys,
//! events per table and action), every queue with its depth and its dead
//! letters (each with its reason, its last failure and its events,
//! decoded), the delayed signals, and the backfills; and it redrives or
//! discards dead letters, cancels delayed signals, and pauses, resumes or
//! cancels backfills. Pages are server-rendered HTML with every asset
//! embedded: no script, nothing fetched from elsewhere.
//!
//! Serve it with `dawdle console --addr 127.0.0.1:8080`, or mount its
//! [`router`](Console::router) in your own axum service:
//!
//! ```no_run
//! # async fn demo(config: tokio_postgres::Config) -> Result<(), Box<dyn std::error::Error>> {
//! let console = dawdle::console::Console::builder(config)
//!     .base_path("/dawdle")
//!     .build()?;
//! let app = axum::Router::new().nest("/dawdle", console.router());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! axum::serve(listener, app).await?;
//! # Ok(()) }
//! ```
//!
//! # Safety rules
//!
//! - **Who.** [`Console::serve`] binds to loopback addresses only, unless a
//!   [token](ConsoleBuilder::token) is set (`DAWDLE_CONSOLE_TOKEN` for the
//!   command); with one, every request must carry it (see `guard.rs`: a
//!   bearer header, or a cookie set by opening `?token=...` once). Without
//!   one, it answers only to requests for `localhost` or a loopback address
//!   (against DNS rebinding), or for the hosts of
//!   [`allow_host`](ConsoleBuilder::allow_host). Mounted in your service,
//!   your own authentication applies too.
//! - **Actions** are POSTs with a double-submitted CSRF token and an
//!   `Origin` check; [`read_only`](ConsoleBuilder::read_only) hides them
//!   and refuses every POST.
//! - **Secrets.** No page shows the connection string, host or password:
//!   only the database's name, and the columns the events carry.
//! - **Size.** Lists come in pages (keyset, 50 a page), so that pages stay
//!   fast with 100,000 waiting events and 10,000 dead letters.

mod guard;
mod html;
mod pages;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::routing::{get, post};
use axum::Router;

use crate::database::Database;
use crate::queue::Queue;

/// Why a console cannot be built or served.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConsoleError {
    /// A non-loopback address without a token.
    #[error(
        "refusing to serve the console on {0}, which is not a loopback address, without a \
         token: set DAWDLE_CONSOLE_TOKEN (ConsoleBuilder::token), or bind to 127.0.0.1"
    )]
    Unprotected(SocketAddr),
    /// An empty token would let anyone in.
    #[error("the console's token is empty")]
    EmptyToken,
    /// The connection pool could not be built.
    #[error("cannot build the console's connection pool: {0}")]
    Pool(#[source] deadpool_postgres::BuildError),
    /// The address could not be bound, or serving failed.
    #[error("cannot serve the console on {addr}: {source}")]
    Serve {
        /// The address.
        addr: SocketAddr,
        /// What failed.
        source: std::io::Error,
    },
}

/// Settings of a [`Console`].
#[derive(Debug)]
pub struct ConsoleBuilder {
    database: Database,
    queues: Vec<Arc<dyn Queue>>,
    read_only: bool,
    token: Option<String>,
    base_path: String,
    allowed_hosts: Vec<String>,
}

impl ConsoleBuilder {
    /// Also shows `queue` (an SQS queue, say), beside the database's
    /// PgQueues, which it finds by itself.
    pub fn queue(mut self, queue: impl Queue) -> Self {
        self.queues.push(Arc::new(queue));
        self
    }

    /// [`queue`](Self::queue) with a queue that is shared already.
    pub fn queue_shared(mut self, queue: Arc<dyn Queue>) -> Self {
        self.queues.push(queue);
        self
    }

    /// Shows, never changes: no action buttons, and every POST refused.
    pub fn read_only(mut self, read_only: bool) -> Self {
        self.read_only = read_only;
        self
    }

    /// The token every request must carry (see the [module docs](self)).
    /// Required to [serve](Console::serve) on an address that is not
    /// loopback.
    pub fn token(mut self, token: Option<String>) -> Self {
        self.token = token;
        self
    }

    /// Without a [token](Self::token), the console answers only to
    /// requests for `localhost` and loopback addresses (so that a page of
    /// another site whose name resolves to 127.0.0.1 cannot use it); this
    /// adds a host name it answers to as well (without the port), for a
    /// console mounted in a service that authenticates its users itself.
    pub fn allow_host(mut self, host: impl Into<String>) -> Self {
        self.allowed_hosts.push(host.into().to_ascii_lowercase());
        self
    }

    /// Where the router is mounted (`/dawdle` for
    /// `Router::new().nest("/dawdle", console.router())`), for the
    /// console's links; empty by default.
    pub fn base_path(mut self, path: impl Into<String>) -> Self {
        self.base_path = path.into().trim_end_matches('/').to_owned();
        self
    }

    /// The console.
    pub fn build(self) -> Result<Console, ConsoleError> {
        if self.token.as_deref() == Some("") {
            return Err(ConsoleError::EmptyToken);
        }
        // Pages run their queries at once, each on a connection of its own.
        let pool = self.database.pool(8).map_err(ConsoleError::Pool)?;
        Ok(Console {
            shared: Arc::new(Inner {
                pool,
                queues: self.queues,
                read_only: self.read_only,
                token: self.token,
                base: self.base_path,
                allowed_hosts: self.allowed_hosts,
            }),
        })
    }
}

/// The operator's console for one database. See the [module docs](self).
#[derive(Debug, Clone)]
pub struct Console {
    shared: Shared,
}

/// What every request handler shares.
type Shared = Arc<Inner>;

#[derive(Debug)]
struct Inner {
    pool: deadpool_postgres::Pool,
    /// Queues beyond the database's PgQueues.
    queues: Vec<Arc<dyn Queue>>,
    read_only: bool,
    token: Option<String>,
    /// The path the router is mounted at, for links.
    base: String,
    /// Host names answered without a token, beside loopback ones.
    allowed_hosts: Vec<String>,
}

impl Console {
    /// A console of `database` (a [`tokio_postgres::Config`] or a
    /// [`Database`]).
    pub fn builder(database: impl Into<Database>) -> ConsoleBuilder {
        ConsoleBuilder {
            database: database.into(),
            queues: Vec::new(),
            read_only: false,
            token: None,
            base_path: String::new(),
            allowed_hosts: Vec::new(),
        }
    }

    /// The console's pages and actions, to serve or to mount.
    pub fn router(&self) -> Router {
        let shared = self.shared.clone();
        Router::new()
            .route("/", get(pages::pipeline))
            .route("/queues", get(pages::queues))
            .route("/queues/{queue}/dead-letters", get(pages::dead_letters))
            .route("/queues/{queue}/dead-letters/{id}", get(pages::dead_letter))
            .route("/queues/{queue}/redrive", post(pages::redrive))
            .route("/queues/{queue}/discard", post(pages::discard))
            .route("/signals", get(pages::signals))
            .route("/signals/cancel", post(pages::cancel_signal))
            .route("/backfills", get(pages::backfills))
            .route("/backfills/act", post(pages::act_on_backfill))
            .layer(axum::middleware::from_fn_with_state(
                shared.clone(),
                guard::token,
            ))
            .with_state(shared)
    }

    /// Whether the console may be served on `addr`: a loopback address, or
    /// any with a token.
    pub fn check_address(&self, addr: SocketAddr) -> Result<(), ConsoleError> {
        match (addr.ip().is_loopback(), &self.shared.token) {
            (false, None) => Err(ConsoleError::Unprotected(addr)),
            _ => Ok(()),
        }
    }

    /// Serves the console on `addr` until `shutdown` completes. Refuses an
    /// address that is not loopback without a token.
    pub async fn serve(
        self,
        addr: SocketAddr,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> Result<(), ConsoleError> {
        self.check_address(addr)?;
        let failed = |source| ConsoleError::Serve { addr, source };
        let listener = tokio::net::TcpListener::bind(addr).await.map_err(failed)?;
        let bound = listener.local_addr().map_err(failed)?;
        tracing::info!(addr = %bound, read_only = self.shared.read_only, "dawdle console serving");
        axum::serve(listener, self.router())
            .with_graceful_shutdown(shutdown)
            .await
            .map_err(failed)
    }
}

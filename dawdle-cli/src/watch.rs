//! `dawdle watch`: the standalone watcher.

use std::time::Duration;

use clap::Args;
use std::sync::Arc;

use dawdle::queue::{PgQueue, Queue, SqsQueue, SqsQueueBuilder};
use dawdle::watcher::{Route, Watcher, WatcherBuilder};

use crate::opts::{self, Database, PgQueueName, Sqs};
use crate::Failure;

/// Forwards captured events from PostgreSQL to a queue, with no
/// application code: the PgQueue in the same database by default (named
/// with `--queue`), or an SQS queue (`--queue-url`), or, with `--route`,
/// each table's and signal's events to the queues of the routes that take
/// them.
///
/// Several may run against one database: one leads and sends, the others
/// stand by. SIGTERM or ctrl-c stops it gracefully: the current round
/// finishes, and whatever was not sent stays in PostgreSQL. Durations take
/// units: `250ms`, `5s`, `4days`. The defaults are the library's
/// (`dawdle::watcher::WatcherBuilder`, `dawdle::queue::SqsQueueBuilder`,
/// `dawdle::queue::PgQueueBuilder`).
#[derive(Debug, Args)]
pub struct Watch {
    #[command(flatten)]
    database: Database,

    #[command(flatten)]
    sqs: Sqs,

    #[command(flatten)]
    queue: PgQueueName,

    /// An SQS queue to send to instead of the PgQueue.
    #[arg(long, env = "DAWDLE_SQS_QUEUE_URL", value_name = "URL")]
    queue_url: Option<String>,

    /// A route: `NAME=QUEUE[;tables=T1,T2][;signals=S1,S2][;fifo=BOOL]`,
    /// repeatable. QUEUE is `pg:QUEUE_NAME` (a PgQueue in this database) or
    /// an SQS queue URL. Each event goes to every route that takes it (a
    /// route that names no tables or signals takes everything); with
    /// routes, `--queue` and `--queue-url` are not used. E.g.
    /// `--route 'billing=pg:billing;tables=public.orders;signals=invoice.due'
    /// --route 'search=https://sqs.eu-west-1.amazonaws.com/1234/search'`.
    /// In the environment, one route per line.
    #[arg(
        long = "route",
        env = "DAWDLE_ROUTES",
        value_name = "ROUTE",
        value_delimiter = '\n',
        value_parser = RouteSpec::parse
    )]
    routes: Vec<RouteSpec>,

    /// Whether the queue is FIFO; by default, for SQS whether its URL ends
    /// in `.fifo`, for a PgQueue not (its listeners must say the same).
    #[arg(long, env = "DAWDLE_SQS_FIFO", value_name = "BOOL")]
    fifo: Option<bool>,

    /// The largest message to send to SQS, at most SQS's 1 MiB; the
    /// queue's own `MaximumMessageSize` applies when lower. Larger batches
    /// go by reference. (A PgQueue takes its own default.)
    #[arg(
        long,
        env = "DAWDLE_MAX_MESSAGE_BYTES",
        value_name = "BYTES",
        default_value_t = dawdle::queue::SQS_MAX_MESSAGE_BYTES
    )]
    max_message_bytes: usize,

    /// The dead-letter queue of the queue's listeners. The watcher never
    /// dead-letters a message; this lets one environment serve both.
    #[arg(long, env = "DAWDLE_SQS_DEAD_LETTER_QUEUE", value_name = "URL")]
    dead_letter_queue: Option<String>,

    /// The longest one SQS call may take, retries included.
    #[arg(
        long,
        env = "DAWDLE_SQS_OPERATION_TIMEOUT",
        value_name = "DURATION",
        default_value_t = SqsQueueBuilder::DEFAULT_OPERATION_TIMEOUT.into()
    )]
    sqs_operation_timeout: humantime::Duration,

    /// The longest one attempt of an SQS call may take.
    #[arg(
        long,
        env = "DAWDLE_SQS_ATTEMPT_TIMEOUT",
        value_name = "DURATION",
        default_value_t = SqsQueueBuilder::DEFAULT_ATTEMPT_TIMEOUT.into()
    )]
    sqs_attempt_timeout: humantime::Duration,

    /// Serve Prometheus text at `/metrics`, `/healthz` (the process is
    /// alive) and `/readyz` (connected to the database, leading or standing
    /// by) on this address, e.g. `0.0.0.0:9187`. Off by default.
    #[arg(long, env = "DAWDLE_METRICS_ADDR", value_name = "ADDR")]
    metrics_addr: Option<std::net::SocketAddr>,

    /// How the database captures changes, as its up migration was
    /// rendered (`dawdle-sql --capture`): `triggers`, or `wal` (the leader
    /// reads the database's logical replication slot; the server needs
    /// `wal_level = logical`, the role `REPLICATION`).
    #[arg(
        long,
        env = "DAWDLE_CAPTURE",
        value_name = "MODE",
        default_value_t = dawdle::sql::Capture::Triggers
    )]
    capture: dawdle::sql::Capture,

    /// Events read per round.
    #[arg(
        long,
        env = "DAWDLE_BATCH_SIZE",
        value_name = "EVENTS",
        default_value_t = WatcherBuilder::DEFAULT_BATCH_SIZE
    )]
    batch_size: usize,

    /// Most events packed into one message.
    #[arg(
        long,
        env = "DAWDLE_EVENTS_PER_MESSAGE",
        value_name = "EVENTS",
        default_value_t = WatcherBuilder::DEFAULT_MAX_EVENTS_PER_MESSAGE
    )]
    events_per_message: usize,

    /// How long to keep polling after the last event before waiting for a
    /// notification.
    #[arg(
        long,
        env = "DAWDLE_LINGER",
        value_name = "DURATION",
        default_value_t = WatcherBuilder::DEFAULT_LINGER.into()
    )]
    linger: humantime::Duration,

    /// The polling interval while lingering.
    #[arg(
        long,
        env = "DAWDLE_LINGER_POLL",
        value_name = "DURATION",
        default_value_t = WatcherBuilder::DEFAULT_LINGER_POLL.into()
    )]
    linger_poll: humantime::Duration,

    /// The safety-net poll while waiting for a notification.
    #[arg(
        long,
        env = "DAWDLE_POLL_INTERVAL",
        value_name = "DURATION",
        default_value_t = WatcherBuilder::DEFAULT_POLL_INTERVAL.into()
    )]
    poll_interval: humantime::Duration,

    /// How often a standby tries to become the leader.
    #[arg(
        long,
        env = "DAWDLE_STANDBY_RETRY",
        value_name = "DURATION",
        default_value_t = WatcherBuilder::DEFAULT_STANDBY_RETRY.into()
    )]
    standby_retry: humantime::Duration,

    /// The least time by-reference payloads wait in `dawdle.payloads`;
    /// longer while the queue may still deliver their message: on a
    /// PgQueue until handled, on SQS its retention plus its dead-letter
    /// queue's.
    #[arg(
        long,
        env = "DAWDLE_PAYLOAD_RETENTION",
        value_name = "DURATION",
        default_value_t = WatcherBuilder::DEFAULT_PAYLOAD_RETENTION.into()
    )]
    payload_retention: humantime::Duration,

    /// The longest a send to the queue may take before it counts as failed
    /// and is retried.
    #[arg(
        long,
        env = "DAWDLE_SEND_TIMEOUT",
        value_name = "DURATION",
        default_value_t = WatcherBuilder::DEFAULT_SEND_TIMEOUT.into()
    )]
    send_timeout: humantime::Duration,
}

/// How often to look whether the watcher stopped by itself.
const CHECK_INTERVAL: Duration = Duration::from_millis(500);

impl Watch {
    pub async fn run(self) -> Result<(), Failure> {
        let config = self.database.config()?;
        // The watcher retries a database or a queue it cannot reach forever;
        // at startup that is far more likely a wrong URL than an outage, so
        // say so at once instead.
        drop(self.database.connect().await?);
        let routes = if self.routes.is_empty() {
            let destination = match &self.queue_url {
                Some(url) => Destination::Sqs(url.clone()),
                None => Destination::Pg(self.queue.name.clone()),
            };
            let queue = self.queue(&config, &destination, self.fifo).await?;
            vec![Route::shared("default", queue)]
        } else {
            let mut routes = Vec::with_capacity(self.routes.len());
            for spec in &self.routes {
                let queue = self
                    .queue(&config, &spec.queue, spec.fifo.or(self.fifo))
                    .await?;
                routes.push(spec.route(queue));
            }
            routes
        };

        let endpoint = match self.metrics_addr {
            Some(addr) => Some(crate::serve::Endpoint::bind(addr).await?.sampling(&routes)),
            None => None,
        };
        for spec in &self.routes {
            tracing::info!(route = %spec.name, queue = %spec.queue, "route");
        }
        match (&self.queue_url, self.routes.len()) {
            (_, 1..) => tracing::info!(routes = self.routes.len(), "dawdle watch starting"),
            (Some(url), _) => tracing::info!(queue = %url, "dawdle watch starting"),
            (None, _) => {
                tracing::info!(queue = %self.queue.name, "dawdle watch starting, to the database's PgQueue")
            }
        }
        let watcher = self.watcher(config, routes);
        let handle = watcher.start();
        if let Some(endpoint) = endpoint {
            endpoint.serve(handle.shared_stats());
        }
        let mut check = tokio::time::interval(CHECK_INTERVAL);
        let stopped_by_signal = tokio::select! {
            () = shutdown_signal() => true,
            () = async { while !handle.is_finished() { check.tick().await; } } => false,
        };
        if stopped_by_signal {
            tracing::info!("shutting down");
        }
        let result = handle.shutdown().await;
        match (result, stopped_by_signal) {
            (Ok(()), true) => Ok(()),
            (Ok(()), false) => Err(Failure::Message("the watcher stopped by itself".into())),
            (Err(e), _) => Err(Failure::runtime("the watcher stopped")(e)),
        }
    }

    /// The queue of `destination`; an SQS queue is looked up first, so
    /// that a wrong URL fails at once rather than in the watcher's retries.
    async fn queue(
        &self,
        config: &dawdle::Database,
        destination: &Destination,
        fifo: Option<bool>,
    ) -> Result<Arc<dyn Queue>, Failure> {
        Ok(match destination {
            Destination::Sqs(url) => {
                let client = self.sqs.client().await;
                opts::attributes(
                    &client,
                    url,
                    &[aws_sdk_sqs::types::QueueAttributeName::QueueArn],
                )
                .await?;
                Arc::new(self.sqs_queue(client, url, fifo))
            }
            Destination::Pg(name) => Arc::new(
                PgQueue::builder(config.clone())
                    .name(name)
                    .fifo(fifo.unwrap_or(false))
                    .build(),
            ),
        })
    }

    fn sqs_queue(&self, client: aws_sdk_sqs::Client, url: &str, fifo: Option<bool>) -> SqsQueue {
        let mut queue = SqsQueue::builder(client, url)
            .max_message_bytes(self.max_message_bytes)
            .operation_timeout(*self.sqs_operation_timeout)
            .attempt_timeout(*self.sqs_attempt_timeout);
        if let Some(fifo) = fifo {
            queue = queue.fifo(fifo);
        }
        if let Some(url) = &self.dead_letter_queue {
            queue = queue.dead_letter_queue(url);
        }
        queue.build()
    }

    fn watcher(&self, config: dawdle::Database, routes: Vec<Route>) -> Watcher {
        let mut routes = routes.into_iter();
        let first = routes.next().expect("at least one route");
        let watcher = routes
            .fold(Watcher::routed(config, first), WatcherBuilder::route)
            .batch_size(self.batch_size)
            .max_events_per_message(self.events_per_message)
            .linger(*self.linger)
            .linger_poll(*self.linger_poll)
            .poll_interval(*self.poll_interval)
            .standby_retry(*self.standby_retry)
            .payload_retention(*self.payload_retention)
            .send_timeout(*self.send_timeout)
            .capture(self.capture);
        watcher.build()
    }
}

/// Where a route sends.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Destination {
    /// A PgQueue of this name in the watched database.
    Pg(String),
    /// An SQS queue URL.
    Sqs(String),
}

impl std::fmt::Display for Destination {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Destination::Pg(name) => write!(f, "pg:{name}"),
            Destination::Sqs(url) => f.write_str(url),
        }
    }
}

/// One `--route`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct RouteSpec {
    name: String,
    queue: Destination,
    tables: Option<Vec<String>>,
    signals: Option<Vec<String>>,
    fifo: Option<bool>,
}

impl RouteSpec {
    /// `NAME=QUEUE[;tables=T1,T2][;signals=S1,S2][;fifo=BOOL]`.
    fn parse(text: &str) -> Result<RouteSpec, String> {
        let mut parts = text.split(';');
        let head = parts.next().unwrap_or_default();
        let (name, queue) = head.split_once('=').ok_or_else(|| {
            format!("{head:?} is not NAME=QUEUE (QUEUE: pg:QUEUE_NAME or an SQS queue URL)")
        })?;
        let name = name.trim();
        if name.is_empty() {
            return Err("the route's name is empty".to_owned());
        }
        let queue = queue.trim();
        let queue = if let Some(pg) = queue.strip_prefix("pg:") {
            if pg.is_empty() {
                return Err("pg: needs a queue name, e.g. pg:default".to_owned());
            }
            Destination::Pg(pg.to_owned())
        } else if queue.starts_with("https://") || queue.starts_with("http://") {
            Destination::Sqs(queue.to_owned())
        } else {
            return Err(format!(
                "{queue:?} is not a queue: pg:QUEUE_NAME or an SQS queue URL (https://...)"
            ));
        };
        let mut spec = RouteSpec {
            name: name.to_owned(),
            queue,
            tables: None,
            signals: None,
            fifo: None,
        };
        let list = |value: &str| -> Vec<String> {
            value
                .split(',')
                .map(str::trim)
                .filter(|item| !item.is_empty())
                .map(str::to_owned)
                .collect()
        };
        for part in parts.map(str::trim).filter(|p| !p.is_empty()) {
            match part.split_once('=') {
                Some(("tables", value)) => {
                    spec.tables.get_or_insert_with(Vec::new).extend(list(value))
                }
                Some(("signals", value)) => spec
                    .signals
                    .get_or_insert_with(Vec::new)
                    .extend(list(value)),
                Some(("fifo", value)) => {
                    spec.fifo = Some(
                        value
                            .trim()
                            .parse()
                            .map_err(|_| format!("fifo={value:?}: expected true or false"))?,
                    )
                }
                _ => {
                    return Err(format!(
                        "{part:?}: a route takes tables=..., signals=... and fifo=..."
                    ))
                }
            }
        }
        if spec.tables.as_ref().is_some_and(Vec::is_empty)
            && spec.signals.as_ref().is_none_or(Vec::is_empty)
        {
            return Err(format!("route {name:?} names no table or signal"));
        }
        Ok(spec)
    }

    fn route(&self, queue: Arc<dyn Queue>) -> Route {
        let mut route = Route::shared(&self.name, queue);
        if let Some(tables) = &self.tables {
            route = route.tables(tables);
        }
        if let Some(signals) = &self.signals {
            route = route.signals(signals);
        }
        route
    }
}

/// SIGTERM (what container runtimes send) or ctrl-c.
pub(crate) async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "cannot listen for SIGTERM; only ctrl-c stops");
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_parse() {
        let spec =
            RouteSpec::parse("billing=pg:billing;tables=public.orders, items;signals=invoice.due")
                .unwrap();
        assert_eq!(spec.name, "billing");
        assert_eq!(spec.queue, Destination::Pg("billing".into()));
        assert_eq!(
            spec.tables,
            Some(vec!["public.orders".into(), "items".into()])
        );
        assert_eq!(spec.signals, Some(vec!["invoice.due".into()]));
        let route = spec.route(Arc::new(dawdle::MemoryQueue::new()));
        assert!(route.takes_table("public", "items") && !route.takes_table("public", "users"));

        let spec = RouteSpec::parse("search=https://sqs.example/1/search.fifo;fifo=true").unwrap();
        assert_eq!(
            spec.queue,
            Destination::Sqs("https://sqs.example/1/search.fifo".into())
        );
        assert_eq!((spec.tables, spec.fifo), (None, Some(true)));
    }

    #[test]
    fn bad_routes_say_what_is_wrong() {
        for (text, says) in [
            ("billing", "is not NAME=QUEUE"),
            ("=pg:x", "name is empty"),
            ("a=pg:", "needs a queue name"),
            ("a=billing", "is not a queue"),
            ("a=pg:a;colour=red", "a route takes tables="),
            ("a=pg:a;fifo=maybe", "expected true or false"),
            ("a=pg:a;tables=", "names no table or signal"),
        ] {
            let error = RouteSpec::parse(text).unwrap_err();
            assert!(error.contains(says), "{text}: {error}");
        }
    }
}

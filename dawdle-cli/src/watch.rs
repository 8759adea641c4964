//! `dawdle watch`: the standalone watcher.

use std::time::Duration;

use clap::Args;
use dawdle::queue::{PgQueue, Queue, SqsQueue, SqsQueueBuilder};
use dawdle::watcher::{Watcher, WatcherBuilder};

use crate::opts::{self, Database, PgQueueName, Sqs};
use crate::Failure;

/// Forwards captured events from PostgreSQL to a queue, with no
/// application code: the PgQueue in the same database by default (named
/// with `--queue`), or an SQS queue (`--queue-url`).
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
        let queue: Box<dyn Queue> = match &self.queue_url {
            Some(url) => {
                let client = self.sqs.client().await;
                opts::attributes(
                    &client,
                    url,
                    &[aws_sdk_sqs::types::QueueAttributeName::QueueArn],
                )
                .await?;
                Box::new(self.sqs_queue(client, url))
            }
            None => Box::new(
                PgQueue::builder(config.clone())
                    .name(&self.queue.name)
                    .fifo(self.fifo.unwrap_or(false))
                    .build(),
            ),
        };

        let endpoint = match self.metrics_addr {
            Some(addr) => Some(crate::serve::Endpoint::bind(addr).await?),
            None => None,
        };
        let watcher = self.watcher(config, queue);
        match &self.queue_url {
            Some(url) => tracing::info!(queue = %url, "dawdle watch starting"),
            None => {
                tracing::info!(queue = %self.queue.name, "dawdle watch starting, to the database's PgQueue")
            }
        }
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

    fn sqs_queue(&self, client: aws_sdk_sqs::Client, url: &str) -> SqsQueue {
        let mut queue = SqsQueue::builder(client, url)
            .max_message_bytes(self.max_message_bytes)
            .operation_timeout(*self.sqs_operation_timeout)
            .attempt_timeout(*self.sqs_attempt_timeout);
        if let Some(fifo) = self.fifo {
            queue = queue.fifo(fifo);
        }
        if let Some(url) = &self.dead_letter_queue {
            queue = queue.dead_letter_queue(url);
        }
        queue.build()
    }

    fn watcher(&self, config: dawdle::Database, queue: Box<dyn Queue>) -> Watcher {
        let watcher = Watcher::builder_shared(config, std::sync::Arc::from(queue))
            .batch_size(self.batch_size)
            .max_events_per_message(self.events_per_message)
            .linger(*self.linger)
            .linger_poll(*self.linger_poll)
            .poll_interval(*self.poll_interval)
            .standby_retry(*self.standby_retry)
            .payload_retention(*self.payload_retention)
            .send_timeout(*self.send_timeout);
        watcher.build()
    }
}

/// SIGTERM (what container runtimes send) or ctrl-c.
async fn shutdown_signal() {
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

//! The standalone watcher: forwards captured events from PostgreSQL to an
//! SQS queue, with no application code.
//!
//! Configured by environment:
//!
//! | variable | meaning |
//! |---|---|
//! | `DATABASE_URL` | the database whose `dawdle.events` to drain (required; `sslmode` and `sslrootcert` as libpq reads them) |
//! | `DAWDLE_SQS_QUEUE_URL` | the queue (required; FIFO when it ends in `.fifo`) |
//! | `DAWDLE_SQS_ENDPOINT` | endpoint override, for emulators (also `AWS_ENDPOINT_URL`) |
//! | `DAWDLE_MAX_MESSAGE_BYTES` | largest message, default 1048576 (SQS's limit) |
//! | `DAWDLE_BATCH_SIZE` | events read per round, default 1000 |
//! | `DAWDLE_EVENTS_PER_MESSAGE` | most events in one message, default 100 |
//! | `RUST_LOG` | log filter, default `info` |
//!
//! AWS credentials and region come from the standard chain (environment,
//! profile, instance role). Stops gracefully on SIGTERM or ctrl-c: the
//! current round finishes, and whatever was not sent stays in PostgreSQL.

use std::process::ExitCode;

use dawdle::queue::SqsQueue;
use dawdle::watcher::Watcher;

fn env(name: &str) -> Result<Option<String>, String> {
    match std::env::var(name) {
        Ok(value) if !value.is_empty() => Ok(Some(value)),
        Ok(_) | Err(std::env::VarError::NotPresent) => Ok(None),
        Err(e) => Err(format!("{name}: {e}")),
    }
}

fn required(name: &str) -> Result<String, String> {
    env(name)?.ok_or_else(|| format!("{name} is not set"))
}

fn number(name: &str) -> Result<Option<usize>, String> {
    env(name)?
        .map(|v| {
            v.parse()
                .map_err(|_| format!("{name}={v:?} is not a number"))
        })
        .transpose()
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
            .expect("installing a SIGTERM handler");
        tokio::select! {
            _ = ctrl_c => {}
            _ = term.recv() => {}
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

async fn run() -> Result<(), String> {
    let database = dawdle::Database::from_url(&required("DATABASE_URL")?)
        .map_err(|e| format!("DATABASE_URL: {e}"))?;
    let queue_url = required("DAWDLE_SQS_QUEUE_URL")?;
    let endpoint = env("DAWDLE_SQS_ENDPOINT")?;
    let client = SqsQueue::client_from_env(endpoint.as_deref()).await;
    let mut queue = SqsQueue::builder(client, &queue_url);
    if let Some(bytes) = number("DAWDLE_MAX_MESSAGE_BYTES")? {
        queue = queue.max_message_bytes(bytes);
    }
    let mut watcher = Watcher::builder(database, queue.build());
    if let Some(n) = number("DAWDLE_BATCH_SIZE")? {
        watcher = watcher.batch_size(n);
    }
    if let Some(n) = number("DAWDLE_EVENTS_PER_MESSAGE")? {
        watcher = watcher.max_events_per_message(n);
    }
    tracing::info!(queue = %queue_url, "dawdle-watcher starting");
    let handle = watcher.build().start();
    shutdown_signal().await;
    tracing::info!("shutting down");
    handle.shutdown().await.map_err(|e| e.to_string())
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    match run().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("dawdle-watcher: {message}");
            ExitCode::FAILURE
        }
    }
}

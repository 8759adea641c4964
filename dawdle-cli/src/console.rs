//! `dawdle console`: the operator's web console.

use std::net::SocketAddr;

use clap::Args;
use dawdle::console::{Console, ConsoleError};
use dawdle::queue::SqsQueue;

use crate::opts::{Database, Sqs};
use crate::Failure;

/// Serves the operator's web console for one database: the pipeline
/// (backlog, events per second, watchers, tables), every queue with its
/// depth and dead letters (redrive, discard), the delayed signals
/// (cancel) and the backfills (pause, resume, cancel).
///
/// It binds to loopback by default, and refuses another address unless
/// `DAWDLE_CONSOLE_TOKEN` is set: then every request must carry the token
/// (open the console once with `?token=...`, or send `Authorization:
/// Bearer ...`). Every page is served from the binary: it works offline.
#[derive(Debug, Args)]
pub struct ConsoleArgs {
    #[command(flatten)]
    database: Database,

    #[command(flatten)]
    sqs: Sqs,

    /// Where to serve the console.
    #[arg(
        long,
        env = "DAWDLE_CONSOLE_ADDR",
        value_name = "ADDR",
        default_value = "127.0.0.1:8080"
    )]
    addr: SocketAddr,

    /// The token every request must carry; required to serve on an
    /// address that is not loopback.
    #[arg(
        long,
        env = "DAWDLE_CONSOLE_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    token: Option<String>,

    /// Show, never change: no buttons, and every POST refused.
    #[arg(long, env = "DAWDLE_CONSOLE_READ_ONLY")]
    read_only: bool,

    /// An SQS queue to show beside the database's PgQueues (repeatable).
    #[arg(
        long = "queue-url",
        env = "DAWDLE_SQS_QUEUE_URL",
        value_name = "URL",
        value_delimiter = ','
    )]
    queue_urls: Vec<String>,
}

impl ConsoleArgs {
    pub async fn run(self) -> Result<(), Failure> {
        let config = self.database.config()?;
        // A wrong URL fails now, not on the first page.
        drop(self.database.connect().await?);
        let mut console = Console::builder(config)
            .read_only(self.read_only)
            .token(self.token.clone());
        if !self.queue_urls.is_empty() {
            let client = self.sqs.client().await;
            for url in &self.queue_urls {
                console = console.queue(SqsQueue::builder(client.clone(), url).build());
            }
        }
        let console = console.build().map_err(usage)?;
        console.check_address(self.addr).map_err(usage)?;
        console
            .serve(self.addr, crate::watch::shutdown_signal())
            .await
            .map_err(|e| Failure::Message(e.to_string()))
    }
}

fn usage(error: ConsoleError) -> Failure {
    Failure::Usage(error.to_string())
}

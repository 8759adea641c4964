//! `dawdle`: the standalone watcher, the state of a database's events, the
//! SQS dead-letter queues of its listeners, and backfills.
//!
//! Every flag has an environment variable, shown beside it in `--help`, so
//! that the command runs as well from a container's environment as from a
//! shell.

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use dawdle::database::DisplayPgError;

/// The exit codes, for every `--help`; a macro so that `concat!` can add it
/// to a subcommand's own after-help.
macro_rules! exit_codes {
    () => {
        "Exit codes:
  0  done (for watch: stopped by SIGTERM or ctrl-c)
  1  failed while running (a watcher that stopped by itself, an SQS call refused, ...)
  2  usage error: an unknown flag, a missing or malformed value
  3  cannot connect to the database or to SQS"
    };
}

mod backfill;
mod dlq;
mod opts;
mod serve;
mod status;
mod watch;

const EXIT_CODES: &str = exit_codes!();

/// Forwards captured PostgreSQL events to SQS, shows where they are,
/// manages the dead-letter queues of their listeners, and backfills
/// existing rows.
#[derive(Debug, Parser)]
#[command(name = "dawdle", version, after_help = EXIT_CODES)]
struct Cli {
    /// The log filter (tracing-subscriber's `EnvFilter` syntax); default
    /// `info` for watch, `warn` otherwise. Logs go to stderr.
    #[arg(long, global = true, env = "RUST_LOG", value_name = "FILTER")]
    log: Option<String>,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    #[command(after_help = EXIT_CODES)]
    Watch(Box<watch::Watch>),
    #[command(after_help = EXIT_CODES)]
    Status(status::Status),
    #[command(after_help = EXIT_CODES)]
    Dlq(dlq::Dlq),
    #[command(after_help = EXIT_CODES)]
    Backfill(backfill::Backfill),
}

/// Why the command failed, which decides its exit code. A variant with a
/// source does not print it: [`report`] prints the whole chain.
#[derive(Debug, thiserror::Error)]
pub enum Failure {
    /// The database or SQS could not be reached (exit code 3).
    #[error("cannot connect to {what}")]
    Connect {
        what: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// Flags that are each well-formed but do not go together (exit code 2).
    #[error("{0}")]
    Usage(String),
    /// Anything else (exit code 1).
    #[error("{what}")]
    Runtime {
        what: String,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// A failure whose message says it all (exit code 1).
    #[error("{0}")]
    Message(String),
}

impl Failure {
    /// For `map_err`: the database or SQS (`what`) could not be reached.
    pub fn connect<E>(what: impl Into<String>) -> impl FnOnce(E) -> Failure
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        let what = what.into();
        move |source| Failure::Connect {
            what,
            source: Box::new(source),
        }
    }

    /// For `map_err`: `what` failed.
    pub fn runtime<E>(what: impl Into<String>) -> impl FnOnce(E) -> Failure
    where
        E: std::error::Error + Send + Sync + 'static,
    {
        let what = what.into();
        move |source| Failure::Runtime {
            what,
            source: Box::new(source),
        }
    }

    fn exit_code(&self) -> ExitCode {
        match self {
            Failure::Connect { .. } => ExitCode::from(3),
            Failure::Usage(_) => ExitCode::from(2),
            Failure::Runtime { .. } | Failure::Message(_) => ExitCode::FAILURE,
        }
    }
}

/// The message with every source in the chain, `: `-separated: the SDK's
/// and the database driver's top-level messages alone say too little. A
/// database error is shown as the server wrote it (its message, detail,
/// hint and context, on lines of their own), not as `db error`.
fn report(failure: &Failure) -> String {
    let mut message = failure.to_string();
    let mut source = std::error::Error::source(failure);
    while let Some(cause) = source {
        if let Some(error) = cause.downcast_ref::<tokio_postgres::Error>() {
            // Its sources included.
            message.push_str(&format!(": {}", DisplayPgError::new(error)));
            break;
        }
        // Some errors print their source in their own message too.
        let text = cause.to_string();
        if !message.contains(&text) {
            message.push_str(": ");
            message.push_str(&text);
        }
        source = cause.source();
    }
    message
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let default_filter = match cli.command {
        // A backfill logs its progress where no terminal shows the bar.
        Command::Watch(_) | Command::Backfill(_) => "info",
        Command::Status(_) | Command::Dlq(_) => "warn",
    };
    let filter = match cli.log.as_deref() {
        Some(filter) => match tracing_subscriber::EnvFilter::try_new(filter) {
            Ok(filter) => filter,
            Err(e) => {
                eprintln!("dawdle: --log (RUST_LOG) {filter:?}: {e}");
                return ExitCode::from(2);
            }
        },
        None => tracing_subscriber::EnvFilter::new(default_filter),
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter)
        .init();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("dawdle: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Watch(watch) => watch.run().await,
            Command::Status(status) => status.run().await,
            Command::Dlq(dlq) => dlq.run().await,
            Command::Backfill(backfill) => backfill.run().await,
        }
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("dawdle: {}", report(&failure));
            failure.exit_code()
        }
    }
}

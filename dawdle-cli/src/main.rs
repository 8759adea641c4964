//! `dawdle`: the standalone watcher, the state of a database's events, the
//! dead letters of its listeners (PgQueue or SQS), and backfills.
//!
//! Every flag has an environment variable, shown beside it in `--help`, so
//! that the command runs as well from a container's environment as from a
//! shell.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand, ValueEnum};
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

/// `print!` that returns a [`Failure`] instead of panicking when stdout
/// cannot be written: a closed pipe (`dawdle ... | head`) ends the command
/// quietly.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::write_stdout(format_args!($($arg)*))
    };
}

/// [`out!`] with a newline.
macro_rules! outln {
    ($($arg:tt)*) => {
        $crate::write_stdout(format_args!("{}\n", format_args!($($arg)*)))
    };
}

mod backfill;
mod console;
mod dlq;
mod opts;
mod serve;
mod status;
mod watch;

const EXIT_CODES: &str = exit_codes!();

/// Forwards captured PostgreSQL events to their queues (the database's
/// PgQueue, SQS, or each route's), shows where they are, manages the
/// dead letters of their listeners, backfills existing rows, and serves
/// the operator's web console.
#[derive(Debug, Parser)]
#[command(name = "dawdle", version, after_help = EXIT_CODES)]
struct Cli {
    /// The log filter (tracing-subscriber's `EnvFilter` syntax); default
    /// `info` for watch, `warn` otherwise. Logs go to stderr.
    #[arg(long, global = true, env = "RUST_LOG", value_name = "FILTER")]
    log: Option<String>,

    /// How log lines are written: `text` for people (coloured only on a
    /// terminal and without `NO_COLOR`), `json` for log shippers (one
    /// object per line).
    #[arg(
        long,
        global = true,
        env = "DAWDLE_LOG_FORMAT",
        value_enum,
        default_value_t = LogFormat::Text,
        value_name = "FORMAT"
    )]
    log_format: LogFormat,

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
    #[command(after_help = EXIT_CODES)]
    Console(console::ConsoleArgs),
    /// Prints a completion script for a shell, to source from its startup
    /// file (bash: `source <(dawdle completions bash)`) or to install where
    /// it loads them (zsh: a `_dawdle` file on `$fpath`; fish:
    /// `~/.config/fish/completions/dawdle.fish`).
    #[command(after_help = EXIT_CODES)]
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Prints the man page of `dawdle` and each of its subcommands, as
    /// roff: `dawdle man | man -l -`, or `dawdle man --out DIR` to write
    /// `dawdle.1`, `dawdle-watch.1`, ... there (e.g. into
    /// `/usr/local/share/man/man1`).
    #[command(after_help = EXIT_CODES)]
    Man {
        /// Write one file per page into this directory instead.
        #[arg(long, value_name = "DIR")]
        out: Option<std::path::PathBuf>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LogFormat {
    /// Lines for people.
    Text,
    /// One JSON object per line.
    Json,
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
    /// Whoever read stdout closed it (`dawdle ... | head`): the command
    /// stops quietly, with exit code 0, as a reader that has seen enough
    /// expects.
    #[error("stdout was closed")]
    ClosedPipe,
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

    /// For `map_err`: stdout could not be written.
    pub fn stdout(error: std::io::Error) -> Failure {
        if error.kind() == std::io::ErrorKind::BrokenPipe {
            Failure::ClosedPipe
        } else {
            Failure::runtime("cannot write to stdout")(error)
        }
    }

    fn exit_code(&self) -> ExitCode {
        match self {
            Failure::Connect { .. } => ExitCode::from(3),
            Failure::Usage(_) => ExitCode::from(2),
            Failure::Runtime { .. } | Failure::Message(_) => ExitCode::FAILURE,
            Failure::ClosedPipe => ExitCode::SUCCESS,
        }
    }
}

/// Writes to stdout, flushed, for [`out!`] and [`outln!`].
fn write_stdout(args: std::fmt::Arguments<'_>) -> Result<(), Failure> {
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_fmt(args)
        .and_then(|()| stdout.flush())
        .map_err(Failure::stdout)
}

/// The completion script for `shell`. It is generated into memory first:
/// clap_complete panics when its writer fails, as a closed pipe makes it.
fn completions(shell: clap_complete::Shell) -> Result<(), Failure> {
    let mut script = Vec::new();
    clap_complete::generate(shell, &mut Cli::command(), "dawdle", &mut script);
    let mut stdout = std::io::stdout().lock();
    stdout
        .write_all(&script)
        .and_then(|()| stdout.flush())
        .map_err(Failure::stdout)
}

/// The man pages of `dawdle` and every subcommand: to stdout, one after
/// the other, or one file each into `out`.
fn man(out: Option<&std::path::Path>) -> Result<(), Failure> {
    let mut command = Cli::command();
    command.build();
    let mut pages = vec![("dawdle".to_owned(), command.clone())];
    for sub in command.get_subcommands() {
        let name = format!("dawdle-{}", sub.get_name());
        pages.push((name.clone(), sub.clone().display_name(name)));
    }
    let mut stdout = std::io::stdout().lock();
    for (name, page) in pages {
        let mut roff = Vec::new();
        clap_mangen::Man::new(page)
            .render(&mut roff)
            .map_err(Failure::stdout)?;
        match out {
            Some(dir) => {
                let path = dir.join(format!("{name}.1"));
                std::fs::write(&path, roff).map_err(|e| {
                    Failure::Message(format!("cannot write {}: {e}", path.display()))
                })?;
            }
            None => stdout.write_all(&roff).map_err(Failure::stdout)?,
        }
    }
    stdout.flush().map_err(Failure::stdout)
}

/// Colour in text logs only where someone sees it: on a terminal, and not
/// when `NO_COLOR` is set (<https://no-color.org>).
fn log_colours() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
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
        Command::Watch(_) | Command::Backfill(_) | Command::Console(_) => "info",
        Command::Status(_)
        | Command::Dlq(_)
        | Command::Completions { .. }
        | Command::Man { .. } => "warn",
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
    let logs = tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter);
    match cli.log_format {
        LogFormat::Text => logs.with_ansi(log_colours()).init(),
        LogFormat::Json => logs.json().with_ansi(false).init(),
    }
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
            Command::Console(console) => console.run().await,
            Command::Completions { shell } => completions(shell),
            Command::Man { out } => man(out.as_deref()),
        }
    });
    finish(result)
}

/// The exit code of `result`, its failure reported on stderr.
fn finish(result: Result<(), Failure>) -> ExitCode {
    match result {
        Ok(()) | Err(Failure::ClosedPipe) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("dawdle: {}", report(&failure));
            failure.exit_code()
        }
    }
}

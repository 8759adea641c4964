//! `dawdle-sql`: the migration command a user crate gets in three lines.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::error::{ContextKind, ContextValue, ErrorKind};
use clap::{CommandFactory, Parser, Subcommand, ValueEnum};

use super::error::SqlError;
use super::migration::{apply, down_registered, up_registered_with};
use super::Capture;
use crate::database::DisplayPgError;

/// `--help`'s layout: the command's summary, then its commands and options
/// under headings of their own.
const HELP_TEMPLATE: &str = "\
{name}: {about}

USAGE:
    {usage}

COMMANDS:
{subcommands}

OPTIONS:
{options}{after-help}";

/// The SQL that captures changes of every Watched type in this program.
#[derive(Debug, Parser)]
#[command(
    name = "dawdle-sql",
    help_template = HELP_TEMPLATE,
    disable_help_subcommand = true,
    after_help = "Run it again after changing a Watched type: the up migration \
                  converges to the types as they are now."
)]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,

    /// Write the migration into DIR instead of printing it: sqlx:
    /// `<timestamp>_<name>.up.sql` and `.down.sql`; refinery:
    /// `V<timestamp>__<name>.sql` (up only). With up or down only.
    #[arg(long, global = true, env = "DAWDLE_SQL_DIR", value_name = "DIR")]
    dir: Option<PathBuf>,

    /// How changes are captured: `triggers` (the default) or `wal` (a
    /// publication and a logical replication slot; the server needs
    /// `wal_level = logical`). Up, apply and the watcher must agree.
    #[arg(
        long,
        global = true,
        env = "DAWDLE_CAPTURE",
        default_value_t = Capture::Triggers,
        value_name = "MODE"
    )]
    capture: Capture,

    /// The layout of the files `--dir` writes.
    #[arg(
        long,
        global = true,
        env = "DAWDLE_SQL_FORMAT",
        value_enum,
        default_value_t = Format::Sqlx,
        value_name = "FORMAT"
    )]
    format: Format,

    /// The migration's name in file names: letters, digits and `_`.
    #[arg(
        long,
        global = true,
        env = "DAWDLE_SQL_NAME",
        default_value = "dawdle",
        value_parser = migration_name,
        value_name = "NAME"
    )]
    name: String,

    /// The database apply and revert run on, as a PostgreSQL URL
    /// (`postgres://user:password@host:5432/name`) or key=value string.
    #[arg(
        long = "database-url",
        global = true,
        env = "DATABASE_URL",
        hide_env_values = true,
        value_name = "URL"
    )]
    database_url: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Subcommand)]
enum Command {
    /// Print the up migration (the default).
    Up,
    /// Print the down migration.
    Down,
    /// Run the up migration on the database, in one transaction.
    Apply,
    /// Run the down migration on the database, in one transaction.
    Revert,
    /// Print a JSON Schema of the queue messages: each table's events and
    /// how each captured column is spelled, for readers in other languages.
    Schema,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Format {
    /// sqlx-cli's reversible migrations.
    Sqlx,
    /// refinery's (up only).
    Refinery,
}

fn migration_name(name: &str) -> Result<String, String> {
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
        return Err("use letters, digits and _".to_owned());
    }
    Ok(name.to_owned())
}

/// The arguments, checked: `--dir` goes with the commands that write a
/// migration.
fn parse<I, T>(args: I) -> Result<Args, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let args = Args::try_parse_from(args)?;
    if args.dir.is_some()
        && matches!(
            args.command,
            Some(Command::Apply | Command::Revert | Command::Schema)
        )
    {
        return Err(Args::command().error(
            ErrorKind::ArgumentConflict,
            "--dir writes migrations; it goes with up or down only",
        ));
    }
    Ok(args)
}

/// A usage error as `dawdle-sql: <what is wrong>`, clap's usage and hint
/// after it.
fn usage_error(error: &clap::Error) -> String {
    let rendered = error.render().to_string();
    let rendered = rendered.strip_prefix("error: ").unwrap_or(&rendered);
    let text = match (error.kind(), error.get(ContextKind::InvalidArg)) {
        // The wording dawdle-sql has always used, which scripts may match.
        (ErrorKind::UnknownArgument, Some(ContextValue::String(arg))) => {
            let rest = rendered.split_once('\n').map_or("\n", |(_, rest)| rest);
            format!("unexpected argument {arg:?}\n{rest}")
        }
        _ => rendered.to_owned(),
    };
    format!("dawdle-sql: {text}")
}

/// Why [`run`] stopped early.
#[derive(Debug)]
enum Stop {
    /// A failure, its message for stderr.
    Failed(String),
    /// Whoever read stdout closed it (`dawdle-sql schema | head`): not a
    /// failure, the reader has seen enough.
    ClosedPipe,
}

impl From<String> for Stop {
    fn from(message: String) -> Stop {
        Stop::Failed(message)
    }
}

/// Runs `dawdle-sql` with the process's arguments; see `--help`.
///
/// Only `Watched` types linked into the program are seen: the bin must use
/// the crate that defines them (`use my_app as _;`).
pub fn cli() -> ExitCode {
    let args = match parse(std::env::args_os()) {
        Ok(args) => args,
        // --help: clap prints it, and ignores a closed pipe.
        Err(error) if !error.use_stderr() => {
            let _ = error.print();
            return ExitCode::SUCCESS;
        }
        Err(error) => {
            eprint!("{}", usage_error(&error));
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(()) | Err(Stop::ClosedPipe) => ExitCode::SUCCESS,
        Err(Stop::Failed(message)) => {
            eprintln!("dawdle-sql: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<(), Stop> {
    let up = up_registered_with(args.capture).map_err(|e| e.to_string())?;
    let down = down_registered().map_err(|e| e.to_string())?;
    if crate::registry::tables().is_empty() {
        eprintln!("dawdle-sql: warning: no Watched type is linked into this program; only dawdle's own table is created");
    }
    let stdout = &mut std::io::stdout();
    let command = args.command.unwrap_or(Command::Up);
    match (command, &args.dir) {
        (Command::Schema, _) => {
            let schema = crate::wire::json_schema(&crate::registry::tables());
            let text = serde_json::to_string_pretty(&schema).map_err(|e| e.to_string())?;
            write_out(stdout, &format!("{text}\n"))?;
        }
        (Command::Up, None) => write_out(stdout, &up)?,
        (Command::Down, None) => write_out(stdout, &down)?,
        (Command::Up | Command::Down, Some(dir)) => {
            let stamp = chrono::Utc::now().format("%Y%m%d%H%M%S").to_string();
            for path in write_files(dir, args.format, &args.name, &stamp, &up, &down)? {
                write_out(stdout, &format!("wrote {}\n", path.display()))?;
            }
        }
        (Command::Apply | Command::Revert, _) => {
            let sql = if command == Command::Apply { up } else { down };
            let url = args
                .database_url
                .as_deref()
                .ok_or_else(|| "DATABASE_URL is not set (nor --database-url)".to_owned())?;
            apply_to_database(url, &sql)?;
            write_out(stdout, "applied to DATABASE_URL\n")?;
        }
    }
    Ok(())
}

/// Writes `text` and flushes it, so that a closed pipe shows here, as
/// [`Stop::ClosedPipe`], rather than in a panic of `print!`.
fn write_out(out: &mut impl Write, text: &str) -> Result<(), Stop> {
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::BrokenPipe => Stop::ClosedPipe,
            _ => Stop::Failed(format!("cannot write to stdout: {e}")),
        })
}

fn write_files(
    dir: &Path,
    format: Format,
    name: &str,
    stamp: &str,
    up: &str,
    down: &str,
) -> Result<Vec<PathBuf>, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let files = match format {
        Format::Sqlx => vec![
            (dir.join(format!("{stamp}_{name}.up.sql")), up),
            (dir.join(format!("{stamp}_{name}.down.sql")), down),
        ],
        Format::Refinery => vec![(dir.join(format!("V{stamp}__{name}.sql")), up)],
    };
    for (path, sql) in &files {
        std::fs::write(path, sql).map_err(|e| format!("cannot write {}: {e}", path.display()))?;
    }
    Ok(files.into_iter().map(|(path, _)| path).collect())
}

fn apply_to_database(url: &str, sql: &str) -> Result<(), String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start a runtime: {e}"))?;
    runtime.block_on(async {
        let database = crate::Database::from_url(url).map_err(|e| format!("DATABASE_URL: {e}"))?;
        let (mut client, connection) = database
            .connect()
            .await
            .map_err(|e| format!("cannot connect to DATABASE_URL: {e}"))?;
        let connection = tokio::spawn(connection);
        let result = apply(&mut client, sql).await.map_err(|e| match e {
            // The line of the migration the server points at, if any:
            // a character position in it tells a reader little.
            SqlError::Database(error) => format!(
                "applying dawdle's SQL failed: {}",
                DisplayPgError::new(&error).in_statement(sql)
            ),
            e => e.to_string(),
        });
        drop(client);
        let _ = connection.await;
        result
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Result<Args, clap::Error> {
        parse(std::iter::once("dawdle-sql").chain(list.iter().copied()))
    }

    #[test]
    fn the_command_is_well_formed() {
        Args::command().debug_assert();
    }

    #[test]
    fn parses_commands_and_options() {
        let a = args(&["down", "--dir", "m", "--format", "refinery"]).unwrap();
        assert_eq!(
            (a.command, a.format),
            (Some(Command::Down), Format::Refinery)
        );
        assert_eq!(a.dir.as_deref(), Some(Path::new("m")));
        // Options before the command, and no command: up.
        let a = args(&["--dir", "m", "--name", "capture"]).unwrap();
        assert_eq!((a.command, a.name.as_str()), (None, "capture"));
        assert_eq!(a.format, Format::Sqlx);
        assert!(!args(&["--help"]).unwrap_err().use_stderr());
        let unknown = usage_error(&args(&["--frobnicate"]).unwrap_err());
        assert!(
            unknown.starts_with("dawdle-sql: unexpected argument \"--frobnicate\"\n"),
            "{unknown}"
        );
        assert!(usage_error(&args(&["sideways"]).unwrap_err()).contains("sideways"));
        let dir = usage_error(&args(&["apply", "--dir", "m"]).unwrap_err());
        assert!(
            dir.starts_with("dawdle-sql: --dir writes migrations"),
            "{dir}"
        );
        assert!(usage_error(&args(&["--format", "flyway"]).unwrap_err()).contains("flyway"));
        assert!(usage_error(&args(&["--name", "a-b"]).unwrap_err()).contains("letters"));
    }

    #[test]
    fn a_closed_pipe_stops_quietly() {
        let (reader, mut writer) = std::io::pipe().unwrap();
        drop(reader);
        assert!(matches!(
            write_out(&mut writer, "UP\n"),
            Err(Stop::ClosedPipe)
        ));
    }

    #[test]
    fn writes_sqlx_and_refinery_layouts() {
        let dir = std::env::temp_dir().join(format!("dawdle-cli-{}", std::process::id()));
        let sqlx =
            write_files(&dir, Format::Sqlx, "dawdle", "20260101000000", "UP", "DOWN").unwrap();
        assert!(sqlx[0].ends_with("20260101000000_dawdle.up.sql"));
        assert_eq!(std::fs::read_to_string(&sqlx[1]).unwrap(), "DOWN");
        let refinery = write_files(
            &dir,
            Format::Refinery,
            "dawdle",
            "20260101000000",
            "UP",
            "DOWN",
        )
        .unwrap();
        assert!(refinery[0].ends_with("V20260101000000__dawdle.sql"));
        std::fs::remove_dir_all(dir).unwrap();
    }
}

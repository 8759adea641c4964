//! `dawdle-sql`: the migration command a user crate gets in three lines.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::error::SqlError;
use super::migration::{apply, down_registered, up_registered};
use crate::database::DisplayPgError;

const HELP: &str = "\
dawdle-sql: the SQL that captures changes of every Watched type in this program

USAGE:
    dawdle-sql [COMMAND] [OPTIONS]

COMMANDS:
    up        print the up migration (the default)
    down      print the down migration
    apply     run the up migration on DATABASE_URL, in one transaction
    revert    run the down migration on DATABASE_URL, in one transaction
    schema    print a JSON Schema of the queue messages: each table's events
              and how each captured column is spelled, for readers in other
              languages

OPTIONS:
    --dir DIR          write the migration into DIR instead of printing it:
                       sqlx: <timestamp>_<name>.up.sql and .down.sql
                       refinery: V<timestamp>__<name>.sql (up only)
    --format FORMAT    sqlx (the default) or refinery
    --name NAME        migration name in file names [default: dawdle]
    -h, --help         print this help

Run it again after changing a Watched type: the up migration converges to the
types as they are now.
";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Command {
    Up,
    Down,
    Apply,
    Revert,
    Schema,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    Sqlx,
    Refinery,
}

#[derive(Debug)]
struct Args {
    command: Command,
    dir: Option<PathBuf>,
    format: Format,
    name: String,
}

fn parse(args: impl IntoIterator<Item = String>) -> Result<Option<Args>, String> {
    let mut parsed = Args {
        command: Command::Up,
        dir: None,
        format: Format::Sqlx,
        name: "dawdle".to_owned(),
    };
    let mut command = None;
    let mut args = args.into_iter();
    while let Some(arg) = args.next() {
        let mut value = |flag: &str| args.next().ok_or_else(|| format!("{flag} needs a value"));
        match arg.as_str() {
            "-h" | "--help" => return Ok(None),
            "--dir" => parsed.dir = Some(value("--dir")?.into()),
            "--format" => {
                parsed.format = match value("--format")?.as_str() {
                    "sqlx" => Format::Sqlx,
                    "refinery" => Format::Refinery,
                    other => {
                        return Err(format!(
                            "unknown format {other:?}; expected sqlx or refinery"
                        ))
                    }
                }
            }
            "--name" => {
                let name = value("--name")?;
                if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
                    return Err(format!("invalid name {name:?}; use letters, digits and _"));
                }
                parsed.name = name;
            }
            "up" | "down" | "apply" | "revert" | "schema" if command.is_none() => {
                command = Some(match arg.as_str() {
                    "up" => Command::Up,
                    "down" => Command::Down,
                    "apply" => Command::Apply,
                    "schema" => Command::Schema,
                    _ => Command::Revert,
                })
            }
            other => return Err(format!("unexpected argument {other:?}")),
        }
    }
    parsed.command = command.unwrap_or(Command::Up);
    if parsed.dir.is_some()
        && matches!(
            parsed.command,
            Command::Apply | Command::Revert | Command::Schema
        )
    {
        return Err("--dir writes migrations; it goes with up or down only".to_owned());
    }
    Ok(Some(parsed))
}

/// Runs `dawdle-sql` with the process's arguments; see `--help`.
///
/// Only `Watched` types linked into the program are seen: the bin must use
/// the crate that defines them (`use my_app as _;`).
pub fn cli() -> ExitCode {
    let args = match parse(std::env::args().skip(1)) {
        Ok(Some(args)) => args,
        Ok(None) => {
            print!("{HELP}");
            return ExitCode::SUCCESS;
        }
        Err(message) => {
            eprintln!("dawdle-sql: {message}\n\n{HELP}");
            return ExitCode::from(2);
        }
    };
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("dawdle-sql: {message}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<(), String> {
    let up = up_registered().map_err(|e| e.to_string())?;
    let down = down_registered().map_err(|e| e.to_string())?;
    if crate::registry::tables().is_empty() {
        eprintln!("dawdle-sql: warning: no Watched type is linked into this program; only dawdle's own table is created");
    }
    match (args.command, &args.dir) {
        (Command::Schema, _) => {
            let schema = crate::wire::json_schema(&crate::registry::tables());
            let text = serde_json::to_string_pretty(&schema).map_err(|e| e.to_string())?;
            println!("{text}");
        }
        (Command::Up, None) => print!("{up}"),
        (Command::Down, None) => print!("{down}"),
        (Command::Up | Command::Down, Some(dir)) => {
            let stamp = chrono::Utc::now().format("%Y%m%d%H%M%S").to_string();
            for path in write_files(dir, args.format, &args.name, &stamp, &up, &down)? {
                println!("wrote {}", path.display());
            }
        }
        (Command::Apply | Command::Revert, _) => {
            let sql = if args.command == Command::Apply {
                up
            } else {
                down
            };
            apply_to_env_database(&sql)?;
            println!("applied to DATABASE_URL");
        }
    }
    Ok(())
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

fn apply_to_env_database(sql: &str) -> Result<(), String> {
    let url = std::env::var("DATABASE_URL").map_err(|_| "DATABASE_URL is not set".to_owned())?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start a runtime: {e}"))?;
    runtime.block_on(async {
        let database = crate::Database::from_url(&url).map_err(|e| format!("DATABASE_URL: {e}"))?;
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

    fn args(list: &[&str]) -> Result<Option<Args>, String> {
        parse(list.iter().map(|s| s.to_string()))
    }

    #[test]
    fn parses_commands_and_options() {
        let a = args(&["down", "--dir", "m", "--format", "refinery"])
            .unwrap()
            .unwrap();
        assert_eq!((a.command, a.format), (Command::Down, Format::Refinery));
        assert_eq!(a.dir.as_deref(), Some(Path::new("m")));
        assert!(args(&["--help"]).unwrap().is_none());
        assert!(args(&["sideways"]).unwrap_err().contains("sideways"));
        assert!(args(&["apply", "--dir", "m"]).is_err());
        assert!(args(&["--format", "flyway"])
            .unwrap_err()
            .contains("flyway"));
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
